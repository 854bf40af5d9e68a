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

"""pose_node end to end: the console script as a separate process, talking over DDS on loopback.

One node process serves most tests of the module (start-up and the first global fit cost
seconds); a second one, in its own namespace, runs without camera_info latching. The test side
is an `rclpy.Context` with a `SingleThreadedExecutor` spinning in a thread; every wait is on
matched endpoints, received messages or log lines, bounded, never a fixed sleep.
"""

import math
import re
import time

from conftest import set_parameter, spinning_test_node
from frame_publisher import (
    ChairScene,
    FRAME_ID,
    Harness,
    LABEL,
    next_stamp,
    PoseNodeProcess,
)
import numpy as np
import pytest
from visualization_msgs.msg import Marker

from rrb_ros.core.geometry import from_rotvec, rotation_angle
from rrb_ros.core.mesh import load_mesh
from rrb_ros.core.objects import procedural_chair, subdivide
from rrb_ros.ros import convert

DISCOVERY_TIMEOUT = 30.0   # s; ~0.3 s on an idle machine, seconds with both cores busy
GLOBAL_FIT_TIMEOUT = 120.0  # s; the first fit warms torch up: ~3 s idle, far more when loaded
TRACK_TIMEOUT = 60.0        # s; ~0.5 s per tracked frame when idle
STOP_TIMEOUT = 30.0
WARN_PERIOD = 600.0         # s; longer than the module, so each kind of warning shows once


@pytest.fixture(scope='module')
def ros():
    """Return a test node whose own context is spun by an executor in a thread."""
    yield from spinning_test_node('pose_node_test')


@pytest.fixture(scope='module')
def scene():
    """Return a procedural chair at a known pose (the mesh the nodes load)."""
    rng = np.random.default_rng(1234)
    return ChairScene(subdivide(procedural_chair(rng), 1500), rng)


@pytest.fixture(scope='module')
def mesh_file(tmp_path_factory, scene):
    path = tmp_path_factory.mktemp('mesh') / 'chair.obj'
    scene.mesh.to_trimesh().export(path)
    return path


def node_params(mesh_file, **extra):
    return {'objects': {'names': ['chair'], 'chair': {'label': LABEL, 'mesh': str(mesh_file)}},
            'warn_period': WARN_PERIOD, **extra}


def start_node(ros, scene, workdir, params, namespace='', overrides=None):
    """Start pose_node and wait until it answers a frame; return (process, harness)."""
    node = PoseNodeProcess(workdir, params, overrides=overrides, namespace=namespace).start()
    harness = Harness(ros, namespace, node.output)
    try:
        harness.wait_for_discovery(DISCOVERY_TIMEOUT)
        harness.handshake(scene, DISCOVERY_TIMEOUT)
    except BaseException:
        node.kill()
        raise
    return node, harness


def stop_node(node):
    alive = node.alive()
    code = node.stop(STOP_TIMEOUT)
    assert alive, 'pose_node died during the tests' + node.output()
    assert code == 0, f'pose_node did not exit cleanly on SIGINT (code {code})' + node.output()
    assert 'Traceback' not in node.stderr(), node.output()


@pytest.fixture(scope='module')
def pose_node(ros, scene, mesh_file, tmp_path_factory):
    """Run one pose_node (root namespace, defaults) for the module; stop it with SIGINT."""
    node, harness = start_node(ros, scene, tmp_path_factory.mktemp('pose_node'),
                               node_params(mesh_file))
    yield node, harness
    stop_node(node)


@pytest.fixture(scope='module')
def unlatched_node(ros, scene, mesh_file, tmp_path_factory):
    """Run a pose_node that needs a camera_info per frame, with an unknown YAML parameter."""
    node, harness = start_node(
        ros, scene, tmp_path_factory.mktemp('unlatched_node'),
        node_params(mesh_file, not_a_parameter=42), namespace='/unlatched',
        overrides={'latch_camera_info': 'false', 'sync_tolerance': '0',  # an int for a double
                   'rectified': 'true'})
    yield node, harness
    stop_node(node)


@pytest.fixture(scope='module')
def masks(scene):
    """Return rendered masks by pose name (rendering one takes a fraction of a second)."""
    return {'T0': scene.mask(scene.T0)}


def pose_errors(T, T_gt):
    """Return (rotation error in degrees, translation error over distance)."""
    rot = math.degrees(rotation_angle(T[:3, :3], T_gt[:3, :3]))
    return rot, float(np.linalg.norm(T[:3, 3] - T_gt[:3, 3]) / np.linalg.norm(T_gt[:3, 3]))


def assert_header(header, stamp):
    assert convert.stamp_to_ns(header.stamp) == stamp
    assert header.frame_id == FRAME_ID


def send(harness, scene, mask, timeout=TRACK_TIMEOUT, topics=('overlay',)):
    """Publish a frame of `mask` and wait for its answer; return its stamp."""
    stamp = next_stamp()
    harness.publish(scene.messages(mask, stamp))
    harness.wait_for_answer(stamp, timeout, topics)
    return stamp


# -- a frame in, every output out -----------------------------------------------------------------

def test_known_pose(pose_node, scene, masks, mesh_file):
    node, harness = pose_node
    n_iou = harness.count('fit_iou')
    stamp = next_stamp()
    msgs = scene.messages(masks['T0'], stamp)
    harness.publish(msgs)
    topics = ['object_pose', 'overlay', 'markers'] + [
        t for t in ('/tf', 'detections') if t in harness.subscriptions]
    harness.wait_for_answer(stamp, GLOBAL_FIT_TIMEOUT, topics)
    # fit_iou has no header: it is the first finite value after this frame was sent
    harness.wait_for(lambda: any(np.isfinite(m.data).all()
                                 for m in harness.received['fit_iou'][n_iou:]),
                     TRACK_TIMEOUT, 'a finite fit_iou')

    (pose,) = harness.with_stamp('object_pose', stamp)
    assert_header(pose.header, stamp)
    T = convert.pose_to_matrix(pose.pose)
    rot, trans = pose_errors(T, scene.T0)
    assert rot < 3.0 and trans < 0.03, f'rotation error {rot:.2f} deg, translation {trans:.3%}'

    if '/tf' in harness.subscriptions:
        (tf,) = harness.with_stamp('/tf', stamp)
        (ts,) = tf.transforms
        assert_header(ts.header, stamp)
        assert ts.child_frame_id == 'rrb/chair'
        t, q = ts.transform.translation, ts.transform.rotation
        assert np.allclose([t.x, t.y, t.z], T[:3, 3], atol=1e-6)
        assert np.allclose([q.x, q.y, q.z, q.w], [pose.pose.orientation.x,
                           pose.pose.orientation.y, pose.pose.orientation.z,
                           pose.pose.orientation.w], atol=1e-6)

    (markers,) = harness.with_stamp('markers', stamp)
    (marker,) = markers.markers
    assert marker.type == Marker.TRIANGLE_LIST and marker.action == Marker.ADD
    assert marker.header.frame_id == 'rrb/chair' and marker.ns == 'chair'
    assert convert.stamp_to_ns(marker.header.stamp) == stamp
    assert len(marker.points) == 3 * len(load_mesh(mesh_file).faces)

    (overlay,) = harness.with_stamp('overlay', stamp)
    assert_header(overlay.header, stamp)
    assert (overlay.width, overlay.height) == (msgs['image'].width, msgs['image'].height)
    assert overlay.encoding == 'rgb8'
    assert convert.image_to_rgb(overlay).shape == (480, 640, 3)

    ious = [m for m in harness.received['fit_iou'][n_iou:] if np.isfinite(m.data).all()]
    assert len(ious[0].data) == 1 and 0.75 <= ious[0].data[0] <= 1.0
    assert ious[0].layout.dim[0].label == 'objects: chair'

    if 'detections' in harness.subscriptions:
        (dets,) = harness.with_stamp('detections', stamp)
        assert_header(dets.header, stamp)
        (det,) = dets.detections
        assert_header(det.header, stamp)
        (hyp,) = det.results
        assert hyp.hypothesis.class_id == 'chair'
        assert hyp.hypothesis.score == pytest.approx(ious[0].data[0], abs=1e-6)
        assert np.allclose(convert.pose_to_matrix(hyp.pose.pose), T, atol=1e-6)
        size = det.bbox.size
        assert np.allclose([size.x, size.y, size.z], scene.mesh.extents, atol=1e-6)


def test_tracking_follows_the_object(pose_node, scene, masks):
    node, harness = pose_node
    first = send(harness, scene, masks['T0'], GLOBAL_FIT_TIMEOUT, ('object_pose', 'overlay'))
    T1 = scene.T0.copy()
    T1[:3, :3] = from_rotvec(np.deg2rad([0.0, 4.0, 0.0])) @ scene.T0[:3, :3]
    T1[:3, 3] += [0.03, -0.01, 0.02]
    second = send(harness, scene, scene.mask(T1), TRACK_TIMEOUT, ('object_pose', 'overlay'))

    (pose0,) = harness.with_stamp('object_pose', first)
    (pose1,) = harness.with_stamp('object_pose', second)
    T_first = convert.pose_to_matrix(pose0.pose)
    T_second = convert.pose_to_matrix(pose1.pose)
    rot, trans = pose_errors(T_second, T1)
    assert rot < 3.0 and trans < 0.03, f'rotation error {rot:.2f} deg, translation {trans:.3%}'
    # it moved with the object, not stayed where it was
    assert np.linalg.norm(T_second[:3, 3] - T_first[:3, 3]) > 0.02


# -- bad input: skipped with one warning per kind, the next good frame is answered ----------------

def _wrong_image_encoding(msgs):
    img = msgs['image']
    img.encoding, img.step = '32FC1', img.width * 4
    img.data = bytes(img.height * img.step)


def _wrong_mask_encoding(msgs):
    mask = msgs['mask']
    mask.encoding, mask.step = 'rgb16', mask.width * 6
    mask.data = bytes(mask.height * mask.step)


def _mask_32FC1(msgs):
    mask = msgs['mask']
    mask.encoding, mask.step = '32FC1', mask.width * 4
    mask.data = bytes(mask.height * mask.step)


def _image_smaller_than_mask(msgs):
    img = convert.image_to_rgb(msgs['image'])[::2, ::2]
    msgs['image'] = convert.rgb_to_image(np.ascontiguousarray(img), msgs['image'].header)


def _mask_smaller_than_camera(msgs):
    mask = convert.image_to_mask(msgs['mask'])[::2, ::2]
    msgs['mask'] = convert.mask_to_image(np.ascontiguousarray(mask), msgs['mask'].header)


def _nan_in_k(msgs):
    k = list(msgs['camera_info'].k)
    k[0] = math.nan
    msgs['camera_info'].k = k


def _distortion(msgs):
    msgs['camera_info'].d = [0.1, -0.05, 0.0, 0.0, 0.0]


# name: (corrupt a good frame's messages, the kind of warning (a regex on the node's log; the
# node throttles each kind on its own), what the warning says)
IMAGE = r'frame skipped: image unusable: '
MASK = r'frame skipped: mask unusable: '
CAMERA_INFO = r'frame skipped: camera_info unusable: '
BAD_INPUTS = {
    'image_32FC1': (_wrong_image_encoding, IMAGE, "unsupported colour image encoding '32FC1'"),
    'mask_rgb16': (_wrong_mask_encoding, MASK, "unsupported mask encoding 'rgb16'"),
    'mask_32FC1': (_mask_32FC1, MASK, "unsupported mask encoding '32FC1'"),
    'image_mask_size_mismatch': (_image_smaller_than_mask, r'frame skipped: image is \d+x\d+',
                                 'image is 320x240 but the mask is 640x480'),
    'mask_camera_info_size_mismatch': (_mask_smaller_than_camera, r'frame skipped: mask is \d+x',
                                       'mask is 320x240 but camera_info says 640x480'),
    'nan_in_camera_info_k': (_nan_in_k, CAMERA_INFO, 'NaN'),
    'camera_info_distortion': (_distortion, CAMERA_INFO, 'distorted camera'),
}


def _warnings(log, kind):
    return [line for line in log.splitlines() if '[WARN]' in line and re.search(kind, line)]


@pytest.mark.parametrize('bad', list(BAD_INPUTS))
def test_bad_input_is_skipped_with_a_warning(pose_node, scene, masks, bad):
    node, harness = pose_node
    corrupt, kind, detail = BAD_INPUTS[bad]
    first_of_kind = not _warnings(node.stderr(), kind)
    stamp = next_stamp()
    msgs = scene.messages(masks['T0'], stamp)
    corrupt(msgs)
    harness.publish(msgs)
    if first_of_kind:
        # wait for the warning: a frame still waiting for the worker when the good one arrives
        # is dropped unseen (only the newest frame is processed)
        line = node.wait_for_log(f'(?=.*{kind})(?=.*{re.escape(detail)})', TRACK_TIMEOUT)
        assert line.startswith('[WARN]'), line
    good = send(harness, scene, masks['T0'], GLOBAL_FIT_TIMEOUT, ('object_pose', 'overlay'))
    assert node.alive(), node.output()
    # answers come in stamp order: had the bad frame been answered, it would be here by now
    for topic in ('object_pose', 'overlay', 'markers', '/tf', 'detections'):
        assert not harness.with_stamp(topic, stamp), f'bad frame answered on {topic}'
    assert harness.with_stamp('object_pose', good)
    # throttled: one warning per kind however many bad frames (warn_period is long)
    assert len(_warnings(node.stderr(), kind)) == 1, node.output()


def test_empty_mask_gives_no_pose(pose_node, scene):
    node, harness = pose_node
    n_iou = harness.count('fit_iou')
    topics = ['overlay'] + [t for t in ('detections',) if t in harness.subscriptions]
    empty = send(harness, scene, scene.empty_mask(), TRACK_TIMEOUT, topics)
    assert not harness.with_stamp('object_pose', empty)
    assert not harness.with_stamp('/tf', empty)
    for dets in harness.with_stamp('detections', empty):
        assert not dets.detections
    # fit_iou has no header; the empty frame's is NaN
    harness.wait_for(lambda: any(np.isnan(m.data).all()
                                 for m in harness.received['fit_iou'][n_iou:]),
                     TRACK_TIMEOUT, 'a NaN fit_iou for the empty frame')
    assert node.alive(), node.output()


# -- throughput: the newest frame wins, nothing queues up -----------------------------------------

def test_frames_faster_than_the_fit_keep_the_newest(pose_node, scene, masks):
    node, harness = pose_node
    send(harness, scene, masks['T0'], GLOBAL_FIT_TIMEOUT, ('object_pose',))  # tracking
    frames = []
    for _ in range(15):
        stamp = next_stamp()
        frames.append((stamp, scene.messages(masks['T0'], stamp)))
    t0 = time.monotonic()
    for i, (stamp, msgs) in enumerate(frames):
        time.sleep(max(0.0, t0 + i / 30.0 - time.monotonic()))  # a 30 Hz camera
        harness.publish(msgs)
    last = frames[-1][0]
    harness.wait_for_answer(last, TRACK_TIMEOUT, ('object_pose', 'overlay'))
    # the node answers in stamp order and drops older frames, so nothing for these comes later
    answered = [s for s, _ in frames if harness.answered(s)]
    assert last in answered
    assert len(answered) <= len(frames) // 2, (
        f'{len(answered)} of {len(frames)} frames answered: frames queue up')
    assert len(harness.with_stamp('object_pose', last)) == 1
    assert node.alive(), node.output()


# -- camera_info required per frame ---------------------------------------------------------------

def test_missing_camera_info_frame_is_not_answered(unlatched_node, scene, masks):
    node, harness = unlatched_node
    lonely = next_stamp()
    msgs = scene.messages(masks['T0'], lonely)
    del msgs['camera_info']
    harness.publish(msgs)
    full = send(harness, scene, scene.empty_mask(), TRACK_TIMEOUT)
    # the frame without camera_info would have been answered before the later, full one
    for topic in ('object_pose', 'overlay', 'markers', '/tf', 'detections'):
        assert not harness.with_stamp(topic, lonely), f'frame without camera_info on {topic}'
    assert harness.answered(full)
    assert node.alive(), node.output()


# -- frame ids and stamps of other sources --------------------------------------------------------

def _with_frame_id(msgs, frame_id):
    for msg in msgs.values():
        msg.header.frame_id = frame_id
    return msgs


def test_frame_id_with_a_leading_slash_is_used_without(pose_node, scene, masks):
    node, harness = pose_node
    stamp = next_stamp()
    harness.publish(_with_frame_id(scene.messages(masks['T0'], stamp), '/' + FRAME_ID))
    topics = ['object_pose', 'overlay'] + [t for t in ('/tf',) if t in harness.subscriptions]
    harness.wait_for_answer(stamp, GLOBAL_FIT_TIMEOUT, topics)
    (pose,) = harness.with_stamp('object_pose', stamp)
    assert_header(pose.header, stamp)  # as tf2 has it, without the '/'
    for tf in harness.with_stamp('/tf', stamp):
        assert_header(tf.transforms[0].header, stamp)
    assert node.wait_for_log(r"starts with '/'", TRACK_TIMEOUT).startswith('[WARN]')


def test_empty_frame_id_gives_poses_without_tf(pose_node, scene, masks):
    node, harness = pose_node
    stamp = next_stamp()
    harness.publish(_with_frame_id(scene.messages(masks['T0'], stamp), ''))
    harness.wait_for_answer(stamp, GLOBAL_FIT_TIMEOUT, ('object_pose', 'overlay'))
    (pose,) = harness.with_stamp('object_pose', stamp)
    assert pose.header.frame_id == ''
    assert not harness.with_stamp('/tf', stamp)
    assert node.wait_for_log('has no frame_id', TRACK_TIMEOUT).startswith('[WARN]')


def test_time_going_back_restarts_synchronisation(pose_node, scene, masks):
    node, harness = pose_node
    send(harness, scene, masks['T0'], GLOBAL_FIT_TIMEOUT, ('object_pose',))
    earlier = next_stamp() - 60_000_000_000  # a bag played again from a minute back
    harness.publish(scene.messages(masks['T0'], earlier))
    harness.wait_for_answer(earlier, GLOBAL_FIT_TIMEOUT, ('object_pose', 'overlay'))
    assert node.wait_for_log('time went back', TRACK_TIMEOUT).startswith('[WARN]')
    send(harness, scene, masks['T0'], GLOBAL_FIT_TIMEOUT, ('object_pose',))
    assert node.alive(), node.output()


def test_a_stream_that_never_comes_is_named(ros, scene, masks, mesh_file, tmp_path):
    node = PoseNodeProcess(tmp_path, node_params(mesh_file, warn_period=1.0),
                           namespace='/nocam').start()
    harness = Harness(ros, '/nocam', node.output)
    try:
        harness.wait_for_discovery(DISCOVERY_TIMEOUT)
        deadline = time.monotonic() + TRACK_TIMEOUT
        while 'nothing received on /nocam/camera_info' not in node.stderr():
            assert time.monotonic() < deadline, 'no warning about camera_info' + node.output()
            msgs = scene.messages(masks['T0'], next_stamp())
            del msgs['camera_info']
            harness.publish(msgs)
            time.sleep(0.1)  # a 10 Hz camera
    finally:
        stop_node(node)


def test_rectified_takes_p_beside_a_distorted_camera_info(unlatched_node, scene, masks):
    node, harness = unlatched_node  # rectified:=true; P = [K | 0]
    stamp = next_stamp()
    msgs = scene.messages(masks['T0'], stamp)
    msgs['camera_info'].d = [0.1, -0.05, 0.0, 0.0, 0.0]
    harness.publish(msgs)
    harness.wait_for_answer(stamp, GLOBAL_FIT_TIMEOUT, ('object_pose', 'overlay'))
    (pose,) = harness.with_stamp('object_pose', stamp)
    rot, trans = pose_errors(convert.pose_to_matrix(pose.pose), scene.T0)
    assert rot < 3.0 and trans < 0.03, (rot, trans)


# -- start-up -------------------------------------------------------------------------------------

def test_parameters_are_read_only(ros, pose_node):
    node, _ = pose_node
    result = set_parameter(ros, '/pose_node', 'min_iou', 0.1, DISCOVERY_TIMEOUT)
    assert not result.successful and 'read-only' in result.reason
    assert node.alive(), node.output()


def test_an_integer_for_a_double_parameter_is_taken(unlatched_node):
    node, _ = unlatched_node  # sync_tolerance:=0
    assert 'Traceback' not in node.stderr() and node.alive(), node.output()


@pytest.mark.parametrize('override, says', [
    ({'queue_size': '2.5'}, 'parameter queue_size must be an integer, got 2.5'),
    ({'object_frame_prefix': '/rrb/'}, 'object_frame_prefix must not start with "/"'),
])
def test_bad_parameter_stops_the_node_with_a_reason(tmp_path, mesh_file, override, says):
    node = PoseNodeProcess(tmp_path, node_params(mesh_file), overrides=override).start()
    code = node.wait_exit(STOP_TIMEOUT * 2)
    assert code == 1 and says in node.stderr(), node.output()
    assert 'Traceback' not in node.stderr(), node.output()


def test_unknown_parameter_is_reported_and_the_node_runs(unlatched_node):
    node, harness = unlatched_node
    # logged at start-up, before the fixture saw the node answer
    (line,) = [ln for ln in node.stderr().splitlines() if 'not_a_parameter' in ln]
    assert line.startswith('[WARN]') and 'unknown parameter' in line, node.output()
    assert node.alive(), node.output()


def test_missing_mesh_stops_the_node(tmp_path, mesh_file):
    missing = tmp_path / 'no_such_chair.obj'
    node = PoseNodeProcess(tmp_path, node_params(mesh_file),
                           overrides={'objects.chair.mesh': str(missing)}).start()
    code = node.wait_exit(STOP_TIMEOUT * 2)
    assert code != 0, node.output()
    assert str(missing) in node.stderr(), node.output()
    assert 'Traceback' not in node.stderr(), node.output()
