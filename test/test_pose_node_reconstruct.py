# Copyright 2026 rrb_ros contributors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""pose_node reconstructs an object that has no mesh, caches it, and redoes it on request.

The node runs the shipped network on rendered camera images of a procedural chair (a generator
the network was not trained on), with the camera height and pitch as parameters. Checked over
DDS: the object pose and the latched `reconstructions` marker (metric size), the cache file,
the `~/reconstruct` service, and that a restart takes the cached mesh instead of reconstructing.
"""

import time

from conftest import spinning_test_node
from frame_publisher import FRAME_ID, Harness, next_stamp, PoseNodeProcess
import numpy as np
import pytest
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from rrb_ros.core.geometry import invert_T
from rrb_ros.core.objects import default_camera
from rrb_ros.core.synth import look_at, render_frame, single_chair_scene
from rrb_ros.ros import convert

TIMEOUT = 240.0  # s; a reconstruction takes seconds idle, far more with both cores busy
HEIGHT = 1.1  # camera height (m); the pitch follows from looking at the chair


class ChairView:
    """A rendered view of a procedural chair from a camera HEIGHT above the floor."""

    def __init__(self) -> None:
        rng = np.random.default_rng(77)
        self.scene = single_chair_scene(rng)
        self.camera = default_camera()
        a = 0.8
        self.T_world_cam = look_at([2.3 * np.cos(a), 2.3 * np.sin(a), HEIGHT], [0, 0, 0.35])
        self.pitch = float(np.arcsin(-self.T_world_cam[2, 2]))
        self.rgb, labels = render_frame(self.scene, self.camera, self.T_world_cam)
        self.labels = labels.astype(np.uint8)
        obj = self.scene.objects[0]
        self.T_cam_obj = invert_T(self.T_world_cam) @ obj.T_world_obj
        self.true_height = float(obj.mesh.extents[2])

    def empty_mask(self) -> np.ndarray:
        return np.zeros_like(self.labels)

    def messages(self, mask: np.ndarray, stamp_ns: int) -> dict:
        def header() -> Header:
            return Header(stamp=convert.ns_to_stamp(stamp_ns), frame_id=FRAME_ID)
        return {'camera_info': convert.camera_to_camera_info(self.camera, header()),
                'mask': convert.mask_to_image(mask, header(), 'mono8'),
                'image': convert.rgb_to_image(self.rgb, header())}


@pytest.fixture(scope='module')
def ros():
    yield from spinning_test_node('reconstruct_test')


@pytest.fixture(scope='module')
def view():
    return ChairView()


def _params(view, cache_dir):
    return {'objects': {'names': ['chair'], 'chair': {'label': 1, 'mesh': ''}},
            'camera_height': HEIGHT, 'camera_pitch': view.pitch, 'warn_period': 1.0,
            'reconstruction': {'cache_dir': str(cache_dir)}}


def _start(ros, view, workdir, cache_dir):
    node = PoseNodeProcess(workdir, _params(view, cache_dir)).start()
    harness = Harness(ros, '', node.output)
    try:
        harness.wait_for_discovery(60.0)
        harness.handshake(view, 60.0)
    except BaseException:
        node.kill()
        raise
    return node, harness


def _posed_frame(harness, view, timeout=TIMEOUT):
    """Send the view until a frame is answered with the chair's pose; return that pose."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stamp = next_stamp()
        harness.publish(view.messages(view.labels, stamp))
        harness.wait_for_answer(stamp, timeout)
        poses = harness.with_stamp('object_pose', stamp)
        if poses:
            return convert.pose_to_matrix(poses[0].pose)
    raise AssertionError('no pose for the chair within the timeout' + harness.describe())


def _reconstruction_markers(ros, received):
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
    return ros.create_subscription(MarkerArray, '/reconstructions', received.append, qos)


def _wait(predicate, timeout, what, describe):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out waiting for {what}' + describe())
        time.sleep(0.05)


def test_reconstruct_cache_and_redo(ros, view, tmp_path):
    cache = tmp_path / 'cache'
    node, harness = _start(ros, view, tmp_path / 'run1', cache)
    try:
        node.wait_for_log(r'chair: label 1, no mesh: reconstructed from its first good view',
                          10.0)
        T = _posed_frame(harness, view)
        line = node.wait_for_log(r'chair: reconstructed in', 10.0)
        # the pose of a shape the network reconstructed: where the chair really is
        err = np.linalg.norm(T[:3, 3] - view.T_cam_obj[:3, 3])
        assert err < 0.12 * np.linalg.norm(view.T_cam_obj[:3, 3]), (T, view.T_cam_obj, line)
        # the latched marker: the mesh in the chair's frame, metres
        received = []
        sub = _reconstruction_markers(ros, received)
        _wait(lambda: received, 30.0, 'the latched reconstructions marker', node.output)
        marker = received[-1].markers[0]
        assert marker.header.frame_id == 'rrb/chair' and marker.type == marker.TRIANGLE_LIST
        assert convert.stamp_to_ns(marker.header.stamp) == 0  # latched: the latest transform
        z = np.array([p.z for p in marker.points])
        assert abs(z.min()) < 1e-6  # stands on the floor
        assert abs(z.max() / view.true_height - 1) < 0.15, (z.max(), view.true_height, line)
        assert (cache / 'chair.obj').is_file()
        # ask for a new reconstruction: cache cleared, rebuilt from the next good view
        client = ros.create_client(Trigger, '/pose_node/reconstruct')
        assert client.wait_for_service(timeout_sec=30.0)
        future = client.call_async(Trigger.Request())
        _wait(future.done, 30.0, 'the reconstruct service answer', node.output)
        assert future.result().success and 'chair' in future.result().message
        # viewers drop the forgotten mesh
        _wait(lambda: any(m.action == m.DELETE and m.ns == 'chair'
                          for a in received for m in a.markers), 30.0,
              'a DELETE of the forgotten mesh on reconstructions', node.output)
        _posed_frame(harness, view)
        _wait(lambda: node.stderr().count('chair: reconstructed in') == 2, 10.0,
              'the second reconstruction', node.output)
        ros.destroy_subscription(sub)
        ros.destroy_client(client)
    finally:
        assert node.stop(30.0) == 0, node.output()
    assert 'Traceback' not in node.stderr(), node.output()

    # a restart takes the cached mesh and tracks it without reconstructing
    node, harness = _start(ros, view, tmp_path / 'run2', cache)
    try:
        node.wait_for_log(r'chair: label 1, \d+ faces from the reconstruction cache', 10.0)
        T2 = _posed_frame(harness, view)
        assert np.linalg.norm(T2[:3, 3] - T[:3, 3]) < 0.05 * np.linalg.norm(T[:3, 3])
        assert 'reconstructed in' not in node.stderr()
    finally:
        assert node.stop(30.0) == 0, node.output()


def test_without_ground_the_node_says_why(ros, view, tmp_path):
    params = _params(view, tmp_path / 'cache')
    params['camera_height'] = 0.0
    node = PoseNodeProcess(tmp_path / 'run', params).start()
    try:
        node.wait_for_log(r'chair have no mesh, and neither camera_height nor base_frame is set',
                          60.0)
        harness = Harness(ros, '', node.output)
        harness.wait_for_discovery(60.0)
        harness.handshake(view, 60.0)
        stamp = next_stamp()
        harness.publish(view.messages(view.labels, stamp))
        harness.wait_for_answer(stamp, 60.0)
        assert not harness.with_stamp('object_pose', stamp)
        node.wait_for_log(r'chair: no mesh yet; reconstruction needs the ground plane', 30.0)
    finally:
        assert node.stop(30.0) == 0, node.output()
