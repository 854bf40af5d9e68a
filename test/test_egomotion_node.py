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

"""egomotion_node end to end: the console script as a process, object TF in, trajectory out.

The test side is an `rclpy.Context` with an executor spinning in a thread; it publishes the
poses of two static objects as pose_node does (on /tf, or as detections with the fit IoU, plus
a badly fitted moving "ghost" that must be ignored), and ORB-SLAM-like poses (a scaled and
rotated copy of the true trajectory). Every wait is bounded and on a condition, never a fixed
sleep.
"""

import json
import math
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time

from conftest import set_parameter, spinning_test_node
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path as PathMsg
import numpy as np
import pytest
from std_msgs.msg import Header, String

from rrb_ros.core.geometry import from_rotvec, invert_T, make_T
from rrb_ros.core.metrics import read_tum
from rrb_ros.ros import convert
from rrb_ros.ros.tf import TF_QOS

pytestmark = pytest.mark.skipif(not convert.HAVE_TF2_MSGS, reason='tf2_msgs is not built')

NODE = Path(sys.executable).parent / 'egomotion_node'
TIMEOUT = 60.0         # s; discovery takes ~0.3 s idle, seconds with both cores busy
OPTICAL = 'camera_optical'
N = 40
STAMPS_NS = [1_700_000_000_000_000_000 + i * 33_333_333 for i in range(N)]
OBJECTS = {'chair_a': make_T(from_rotvec([0.0, 0.0, 0.4]), [0.3, 0.2, 0.0]),
           'chair_b': make_T(from_rotvec([0.0, 0.0, -1.1]), [-0.5, 0.6, 0.0])}
LATE = 3  # chair_b is seen from this frame on


def camera_pose(i: int) -> np.ndarray:
    """Return the true T_world_cam of frame i: an arc 2 cm per frame, turning as it goes."""
    a = 0.01 * i
    R = from_rotvec([0.0, 0.0, a]) @ from_rotvec([-math.pi / 2 - 0.2, 0.0, 0.0])
    return make_T(R, [2.0 * math.sin(a), -2.0 * math.cos(a), 1.25])


def anchored(i: int) -> np.ndarray:
    """Return the true camera pose in chair_a's frame, the node's world frame."""
    return invert_T(OBJECTS['chair_a']) @ camera_pose(i)


def object_tf(i: int):
    """Return frame i's TFMessage: camera optical frame -> rrb/<name>, as pose_node sends it."""
    header = Header(stamp=convert.ns_to_stamp(STAMPS_NS[i]), frame_id=OPTICAL)
    names = ['chair_a'] + (['chair_b'] if i >= LATE else [])
    return convert.tf_message([convert.transform_stamped(
        invert_T(camera_pose(i)) @ OBJECTS[n], header, f'rrb/{n}') for n in names])


def object_detections(i: int):
    """Return frame i's Detection3DArray as pose_node sends it, plus a ghost of IoU 0.3.

    The ghost moves (0.2 m per frame), so it is no static landmark; its low fit IoU keeps it
    out (min_weight 0.5) even in the first frame, where no consistency check could.
    """
    header = Header(stamp=convert.ns_to_stamp(STAMPS_NS[i]), frame_id=OPTICAL)
    names = ['chair_a'] + (['chair_b'] if i >= LATE else [])
    dets = [convert.detection3d(invert_T(camera_pose(i)) @ OBJECTS[n], header, n, 0.95,
                                [0.5, 0.5, 0.9], [0, 0, 0.45], n) for n in names]
    ghost = make_T(from_rotvec([0.0, 0.0, 0.3 * i]), [0.2 * i, 0.0, 0.0])
    dets.insert(0, convert.detection3d(invert_T(camera_pose(i)) @ ghost, header, 'ghost', 0.3,
                                       [0.5, 0.5, 0.5], [0, 0, 0.25], 'ghost'))
    return convert.detection3d_array(dets, header)


class Recorder:
    """The test side: publishers of the node's inputs, a record of its outputs."""

    def __init__(self, node) -> None:
        """Create the publishers and subscriptions on `node` (spun elsewhere)."""
        self.node = node
        self.cond = threading.Condition()
        self.received = {'camera_path': [], 'orbslam_path': [], 'egomotion_metrics': [],
                         '/tf': []}
        self.pub_tf = node.create_publisher(convert.TFMessage, '/tf', TF_QOS)
        self.pub_det = (node.create_publisher(convert.Detection3DArray, 'detections', 100)
                        if convert.HAVE_VISION_MSGS else None)
        self.pub_orbslam = node.create_publisher(PoseStamped, 'orbslam_pose', 100)
        self.subs = [node.create_subscription(t, name, self._recorder(name), q) for t, name, q in (
            (PathMsg, 'camera_path', 10), (PathMsg, 'orbslam_path', 10),
            (String, 'egomotion_metrics', 10), (convert.TFMessage, '/tf', TF_QOS))]

    def _recorder(self, topic):
        def record(msg):
            with self.cond:
                self.received[topic].append(msg)
                self.cond.notify_all()
        return record

    def wait_for(self, predicate, what: str, timeout: float = TIMEOUT) -> None:
        with self.cond:
            assert self.cond.wait_for(predicate, timeout), f'timed out waiting for {what}'

    def last(self, topic: str):
        with self.cond:
            return self.received[topic][-1] if self.received[topic] else None

    def wait_for_discovery(self, proc, source: str) -> None:
        """Wait until egomotion_node's endpoints and ours are matched both ways."""
        deadline = time.monotonic() + TIMEOUT

        def node_on(infos) -> bool:
            return any(i.node_name == 'egomotion_node' for i in infos)

        def inputs() -> bool:
            if source == 'tf':
                return (node_on(self.node.get_subscriptions_info_by_topic('/tf'))
                        and self.pub_tf.get_subscription_count() >= 2)
            return self.pub_det.get_subscription_count() >= 1

        while not (inputs() and node_on(self.node.get_publishers_info_by_topic('/tf'))
                   and self.pub_orbslam.get_subscription_count() >= 1
                   and all(s.get_publisher_count() >= 1 for s in self.subs)):
            assert proc.poll() is None, 'egomotion_node exited' + output(proc)
            assert time.monotonic() < deadline, 'egomotion_node not discovered' + output(proc)
            time.sleep(0.05)


def first_frame(rec: Recorder, proc, publish) -> None:
    """Publish frame 0 again until it is answered on camera_path.

    Matched on our side does not prove the node's reader has matched our writer yet. Repeats
    have the same stamp and are ignored.
    """
    deadline = time.monotonic() + TIMEOUT
    while True:
        publish(0)
        with rec.cond:
            if rec.cond.wait_for(lambda: rec.received['camera_path'], 0.5):
                return
        assert time.monotonic() < deadline, 'no camera_path' + output(proc)


def output(proc) -> str:
    return f'\n--- stderr:\n{Path(proc.stderr_path).read_text(errors="replace")}'


def start(workdir: Path, *params: str) -> subprocess.Popen:
    argv = [str(NODE), '--ros-args']
    for p in params:
        argv += ['-p', p]
    env = dict(os.environ, RCUTILS_COLORIZED_OUTPUT='0', PYTHONUNBUFFERED='1')
    stderr_path = workdir / 'stderr.log'
    with open(workdir / 'stdout.log', 'wb') as out, open(stderr_path, 'wb') as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=workdir)
    proc.stderr_path = stderr_path
    return proc


@pytest.fixture(scope='module')
def ros():
    """Return a test node whose own context is spun by an executor in a thread."""
    yield from spinning_test_node('egomotion_node_test')


def poses_of(path_msg) -> tuple[list[int], np.ndarray]:
    return ([convert.stamp_to_ns(p.header.stamp) for p in path_msg.poses],
            np.array([convert.pose_to_matrix(p.pose) for p in path_msg.poses]))


@pytest.mark.parametrize('source', [
    'tf', pytest.param('detections', marks=pytest.mark.skipif(
        not convert.HAVE_VISION_MSGS, reason='vision_msgs is not built'))])
def test_trajectory_metrics_and_files(ros, tmp_path, source):
    assert NODE.is_file(), f'{NODE} is missing: pip install -e .'
    rrb_tum, orbslam_tum = tmp_path / 'rrb.tum', tmp_path / 'orbslam.tum'
    proc = start(tmp_path, f'rrb_tum:={rrb_tum}', f'orbslam_tum:={orbslam_tum}',
                 'metrics_period:=0.1', f'input:={source}', 'min_weight:=0.5')
    rec = Recorder(ros)

    def publish(i: int) -> None:
        if source == 'tf':
            rec.pub_tf.publish(object_tf(i))
        else:
            rec.pub_det.publish(object_detections(i))

    try:
        rec.wait_for_discovery(proc, source)
        first_frame(rec, proc, publish)
        for i in range(1, N):
            publish(i)
        rec.wait_for(lambda: rec.received['camera_path']
                     and len(rec.received['camera_path'][-1].poses) == N, f'{N} camera poses')

        path = rec.last('camera_path')
        assert path.header.frame_id == 'rrb/world'
        assert all(p.header.frame_id == 'rrb/world' for p in path.poses)
        stamps, poses = poses_of(path)
        assert stamps == STAMPS_NS
        assert np.allclose(poses, [anchored(i) for i in range(N)], atol=1e-9)
        rec.wait_for(lambda: sum(ts.child_frame_id == 'rrb/camera' for m in rec.received['/tf']
                                 for ts in m.transforms) == N, 'the camera on /tf')
        with rec.cond:
            cams = [ts for m in rec.received['/tf'] for ts in m.transforms
                    if ts.child_frame_id == 'rrb/camera']
        assert all(ts.header.frame_id == 'rrb/world' for ts in cams)
        assert convert.stamp_to_ns(cams[-1].header.stamp) == STAMPS_NS[-1]
        assert np.allclose(convert.pose_to_matrix(cams[-1].transform), anchored(N - 1),
                           atol=1e-9)

        # ORB-SLAM: its own map frame and scale, every other frame
        R, t, s = from_rotvec([0.3, -1.2, 0.5]), np.array([0.5, 1.0, -2.0]), 0.25
        sent = []
        for i in range(0, N, 2):
            T = camera_pose(i)
            T_orb = make_T(R @ T[:3, :3], s * R @ T[:3, 3] + t)
            sent.append(T_orb)
            header = Header(stamp=convert.ns_to_stamp(STAMPS_NS[i]), frame_id='orb_map')
            rec.pub_orbslam.publish(convert.pose_stamped(T_orb, header))
        n_orb = len(sent)
        rec.wait_for(lambda: any(json.loads(m.data)['pairs'] == n_orb
                                 for m in rec.received['egomotion_metrics']),
                     'metrics over every ORB-SLAM pose')
        with rec.cond:
            report = next(json.loads(m.data) for m in rec.received['egomotion_metrics']
                          if json.loads(m.data)['pairs'] == n_orb)
        assert report['ate_rmse'] < 1e-6 and report['rpe_trans_rmse'] < 1e-6
        assert report['rpe_rot_rmse_deg'] < 1e-4
        assert report['scale'] == pytest.approx(1.0 / s, rel=1e-6)
        assert report['align'] == 'sim3' and report['rrb_poses'] == N
        assert report['orbslam_poses'] == n_orb
        rec.wait_for(lambda: rec.received['orbslam_path']
                     and len(rec.received['orbslam_path'][-1].poses) == n_orb, 'orbslam_path')
        orb_stamps, orb_poses = poses_of(rec.last('orbslam_path'))
        assert orb_stamps == STAMPS_NS[::2]
        assert rec.last('orbslam_path').header.frame_id == 'rrb/world'
        assert np.allclose(orb_poses, [anchored(i) for i in range(0, N, 2)], atol=1e-6)
    finally:
        code = close(ros, rec, proc)
    assert code == 0, f'exit code {code}' + output(proc)
    log = Path(proc.stderr_path).read_text()
    assert 'Traceback' not in log and 'ghost' not in log, output(proc)
    assert 'added to the map: chair_b' in log, output(proc)
    traj = read_tum(rrb_tum)
    assert np.allclose(traj.stamps, np.array(STAMPS_NS) * 1e-9, rtol=0, atol=1e-6)
    assert np.allclose(traj.poses, [anchored(i) for i in range(N)], atol=1e-9)
    orb = read_tum(orbslam_tum)
    assert len(orb) == n_orb and np.allclose(orb.poses, sent, atol=1e-9)


def close(ros, rec: Recorder, proc) -> int:
    """Remove the test side's endpoints, stop the node with SIGINT; return its exit code."""
    for pub in (rec.pub_tf, rec.pub_det, rec.pub_orbslam):
        if pub is not None:
            ros.destroy_publisher(pub)
    for sub in rec.subs:
        ros.destroy_subscription(sub)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    return wait_exit(proc)


def wait_exit(proc) -> int:
    """Return the exit code of `proc`, killing it if it outlives TIMEOUT."""
    try:
        return proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def test_bad_parameter_fails_fast(tmp_path):
    proc = start(tmp_path, 'align:=umeyama')
    code = wait_exit(proc)
    assert code == 1
    assert 'cannot start: align must be' in Path(proc.stderr_path).read_text(), output(proc)


@pytest.mark.skipif(not convert.HAVE_VISION_MSGS, reason='vision_msgs is not built')
def test_bag_played_again_starts_a_new_trajectory(ros, tmp_path):
    """Instances of one class by Detection3D.id; time going back; ints for doubles."""
    rrb_tum = tmp_path / 'rrb.tum'
    proc = start(tmp_path, f'rrb_tum:={rrb_tum}', 'input:=detections', 'max_jump:=1',
                 'reliability:=best_effort')
    rec = Recorder(ros)

    def publish(i: int) -> None:
        # another detector's convention: class_id is the class, id the tracked instance
        header = Header(stamp=convert.ns_to_stamp(STAMPS_NS[i]), frame_id=OPTICAL)
        rec.pub_det.publish(convert.detection3d_array([convert.detection3d(
            invert_T(camera_pose(i)) @ OBJECTS[n], header, 'chair', 0.9, [0.5, 0.5, 0.9],
            [0, 0, 0.45], n) for n in OBJECTS], header))

    try:
        rec.wait_for_discovery(proc, 'detections')
        first_frame(rec, proc, publish)
        for loop in range(2):
            for i in range(loop == 0, N):
                publish(i)
            rec.wait_for(lambda: len(rec.last('camera_path').poses) == N
                         and convert.stamp_to_ns(rec.last('camera_path').header.stamp)
                         == STAMPS_NS[-1], f'loop {loop}: {N} camera poses')
            if loop == 0:
                rec.received['camera_path'].clear()
        stamps, poses = poses_of(rec.last('camera_path'))
        assert stamps == STAMPS_NS
        assert np.allclose(poses, [anchored(i) for i in range(N)], atol=1e-9)
    finally:
        code = close(ros, rec, proc)
    assert code == 0, f'exit code {code}' + output(proc)
    log = Path(proc.stderr_path).read_text()
    assert 'Traceback' not in log and 'added to the map: chair_b' in log, output(proc)
    assert log.count('time went back') == 1, output(proc)
    # the first trajectory was written when time went back, the second at shutdown
    for path in (rrb_tum, tmp_path / 'rrb.1.tum'):
        traj = read_tum(path)
        assert np.allclose(traj.stamps, np.array(STAMPS_NS) * 1e-9, rtol=0, atol=1e-6)
        assert np.allclose(traj.poses, [anchored(i) for i in range(N)], atol=1e-9)


def test_parameters_are_read_only(ros, tmp_path):
    """Parameters are read at start-up: a change on the running node is refused; typos warned."""
    proc = start(tmp_path, 'metrics_period:=2', 'write_evry:=5')  # an integer for a double
    try:
        result = set_parameter(ros, '/egomotion_node', 'max_jump', 0.5, TIMEOUT)
        assert not result.successful and 'read-only' in result.reason, output(proc)
    finally:
        proc.send_signal(signal.SIGINT)
        code = wait_exit(proc)
    assert code == 0, output(proc)
    (line,) = [ln for ln in Path(proc.stderr_path).read_text().splitlines() if 'write_evry' in ln]
    assert line.startswith('[WARN]') and 'ignoring unknown parameters' in line, output(proc)
