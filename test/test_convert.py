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

"""Message conversions: images, masks, camera_info, poses, TF, markers, detections, stamps."""

from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose
import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
import trimesh
from visualization_msgs.msg import Marker

from rrb_ros.core.camera import PinholeCamera
from rrb_ros.core.geometry import make_T
from rrb_ros.core.mesh import Mesh
from rrb_ros.ros import convert

# Loading a message's C type support (serialisation) imports lark through rosidl_parser.
pytestmark = pytest.mark.filterwarnings(
    "ignore:module 'sre_(parse|constants)' is deprecated:DeprecationWarning")

HEADER = Header(stamp=Time(sec=12, nanosec=345), frame_id='camera_color_optical_frame')
CAMERA = PinholeCamera(500.0, 510.0, 320.5, 240.25, 640, 480)


def raw_image(pixels, encoding, pad=0, big_endian=False):
    """Build an Image from (H, W[, C]) pixels, with `pad` bytes of padding after each row."""
    pixels = np.asarray(pixels)
    h, w = pixels.shape[:2]
    if pixels.dtype.itemsize > 1:
        pixels = pixels.astype(pixels.dtype.newbyteorder('>' if big_endian else '<'))
    rows = pixels.reshape(h, -1).view(np.uint8).reshape(h, -1)
    padded = np.concatenate([rows, np.full((h, pad), 0xAB, np.uint8)], axis=1)
    return Image(header=HEADER, height=h, width=w, encoding=encoding,
                 is_bigendian=big_endian, step=padded.shape[1], data=padded.tobytes())


@pytest.fixture
def rgb(rng):
    return rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)


# --- images ---------------------------------------------------------------------------------

@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8'])
def test_rgb_round_trip(rgb, encoding):
    msg = convert.rgb_to_image(rgb, HEADER, encoding)
    assert (msg.encoding, msg.height, msg.width) == (encoding, 7, 5)
    assert msg.step == 5 * len(encoding[:-1]) and len(msg.data) == msg.step * 7
    assert msg.header == HEADER
    out = convert.image_to_rgb(msg)
    assert out.dtype == np.uint8 and out.shape == (7, 5, 3)
    assert np.array_equal(out, rgb)


@pytest.mark.parametrize('encoding, order, channels', [
    ('rgb8', [0, 1, 2], 3), ('bgr8', [2, 1, 0], 3), ('rgba8', [0, 1, 2], 4),
    ('bgra8', [2, 1, 0], 4)])
@pytest.mark.parametrize('pad', [0, 1, 6])
def test_colour_decoding_with_row_padding(rgb, encoding, order, channels, pad):
    wire = np.zeros(rgb.shape[:2] + (channels,), np.uint8)
    wire[..., order] = rgb
    if channels == 4:
        wire[..., 3] = 77
    msg = raw_image(wire, encoding, pad)
    assert msg.step == 5 * channels + pad
    assert np.array_equal(convert.image_to_rgb(msg), rgb)


@pytest.mark.parametrize('pad', [0, 3])
def test_mono8_is_grey(rng, pad):
    grey = rng.integers(0, 256, (4, 9), dtype=np.uint8)
    out = convert.image_to_rgb(raw_image(grey, 'mono8', pad))
    assert out.shape == (4, 9, 3)
    assert all(np.array_equal(out[..., c], grey) for c in range(3))


def test_bgr_channel_order():
    msg = raw_image(np.array([[[10, 20, 30]]], np.uint8), 'bgr8')
    assert convert.image_to_rgb(msg).tolist() == [[[30, 20, 10]]]
    assert list(convert.rgb_to_image(np.array([[[1, 2, 3]]], np.uint8), HEADER, 'bgr8').data) \
        == [3, 2, 1]


def test_decoded_image_owns_its_memory(rgb):
    msg = convert.rgb_to_image(rgb, HEADER)
    out = convert.image_to_rgb(msg)
    out[:] = 0
    assert np.array_equal(convert.image_to_rgb(msg), rgb)


def test_deserialised_message_decodes(rgb):
    msg = deserialize_message(serialize_message(convert.rgb_to_image(rgb, HEADER, 'bgr8')), Image)
    assert np.array_equal(convert.image_to_rgb(msg), rgb)


@pytest.mark.parametrize('mutate, match', [
    (dict(encoding='yuv422'), 'yuv422'),
    (dict(encoding='16UC1'), '16UC1'),
    (dict(encoding=''), 'encoding'),
    (dict(step=14), 'step 14 is smaller'),
    (dict(height=8), '105 bytes, expected height \\* step = 8 \\* 15'),
    (dict(data=bytes(104)), '104 bytes'),
    (dict(width=0), 'zero size'),
    (dict(height=0, data=b''), 'zero size'),
])
def test_bad_colour_image_is_rejected(rgb, mutate, match):
    msg = convert.rgb_to_image(rgb, HEADER)
    for key, value in mutate.items():
        setattr(msg, key, value)
    with pytest.raises(ValueError, match=match):
        convert.image_to_rgb(msg)


@pytest.mark.parametrize('img, encoding, match', [
    (np.zeros((4, 4), np.uint8), 'rgb8', r'\(H, W, 3\)'),
    (np.zeros((4, 4, 4), np.uint8), 'rgb8', r'\(H, W, 3\)'),
    (np.zeros((0, 4, 3), np.uint8), 'rgb8', 'non-empty'),
    (np.zeros((4, 4, 3), np.float32), 'rgb8', 'uint8'),
    (np.zeros((4, 4, 3), np.uint8), 'mono8', 'mono8'),
])
def test_bad_rgb_array_is_rejected(img, encoding, match):
    with pytest.raises(ValueError, match=match):
        convert.rgb_to_image(img, HEADER, encoding)


# --- masks ----------------------------------------------------------------------------------

@pytest.mark.parametrize('encoding, dtype', [
    ('mono8', np.uint8), ('8UC1', np.uint8), ('16UC1', np.uint16), ('mono16', np.uint16),
    ('32SC1', np.int32)])
@pytest.mark.parametrize('pad', [0, 3])
@pytest.mark.parametrize('big_endian', [False, True])
def test_mask_decoding(rng, encoding, dtype, pad, big_endian):
    info = np.iinfo(dtype)
    labels = rng.integers(info.min, info.max, (6, 5), dtype=np.int64, endpoint=True).astype(dtype)
    msg = raw_image(labels, encoding, pad, big_endian)
    out = convert.image_to_mask(msg)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert np.array_equal(out, labels)


@pytest.mark.parametrize('mask, encoding, expected', [
    (np.array([[0, 1], [2, 255]], np.uint8), None, 'mono8'),
    (np.array([[True, False]]), None, 'mono8'),
    (np.array([[0, 1], [2, 65535]], np.uint16), None, '16UC1'),
    (np.array([[-1, 0], [7, 2 ** 31 - 1]], np.int32), None, '32SC1'),
    (np.array([[0, 1], [2, 300]], np.int64), '16UC1', '16UC1'),
    (np.array([[0, 3]], np.int64), '8UC1', '8UC1'),
])
def test_mask_round_trip(mask, encoding, expected):
    msg = convert.mask_to_image(mask, HEADER, encoding)
    assert msg.encoding == expected and msg.header == HEADER
    assert np.array_equal(convert.image_to_mask(msg), mask.astype(np.int64))


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', '16UC3', '32FC1', 'mono16'])
def test_bad_mask_encoding_is_rejected(encoding):
    msg = raw_image(np.zeros((2, 2), np.uint8), encoding)
    with pytest.raises(ValueError, match=encoding):
        convert.image_to_mask(msg)


@pytest.mark.parametrize('mask, encoding, match', [
    (np.zeros((2, 2), np.float32), None, 'integer or bool'),
    (np.zeros((2, 2, 1), np.uint8), None, r'\(H, W\)'),
    (np.zeros((2, 0), np.uint8), None, 'non-empty'),
    (np.zeros((2, 2), np.int64), None, 'no default mask encoding'),
    (np.full((2, 2), 256, np.int64), 'mono8', r'\[256, 256\], outside mono8'),
    (np.full((2, 2), -1, np.int64), '16UC1', 'outside 16UC1'),
    (np.zeros((2, 2), np.uint8), 'rgb8', 'unsupported mask encoding'),
])
def test_bad_mask_array_is_rejected(mask, encoding, match):
    with pytest.raises(ValueError, match=match):
        convert.mask_to_image(mask, HEADER, encoding)


def test_mask_size_mismatch_is_rejected():
    msg = raw_image(np.zeros((3, 4), np.uint16), '16UC1')
    msg.data = bytes(len(msg.data) - 2)
    with pytest.raises(ValueError, match='22 bytes, expected height \\* step = 3 \\* 8'):
        convert.image_to_mask(msg)


# --- cameras --------------------------------------------------------------------------------

def test_camera_info_round_trip():
    msg = convert.camera_to_camera_info(CAMERA, HEADER)
    assert msg.header == HEADER and (msg.width, msg.height) == (640, 480)
    assert msg.distortion_model == 'plumb_bob' and list(msg.d) == [0.0] * 5
    assert np.array_equal(np.reshape(msg.r, (3, 3)), np.eye(3))
    assert np.array_equal(np.reshape(msg.p, (3, 4)), np.hstack([CAMERA.K, np.zeros((3, 1))]))
    assert convert.camera_info_to_camera(msg) == CAMERA
    again = deserialize_message(serialize_message(msg), CameraInfo)
    assert convert.camera_info_to_camera(again) == CAMERA


def _info(**fields):
    msg = convert.camera_to_camera_info(CAMERA, HEADER)
    for key, value in fields.items():
        setattr(msg, key, value)
    return msg


@pytest.mark.parametrize('fields, match', [
    (dict(k=[float('nan')] + [0.0] * 8), 'NaN'),
    (dict(d=[0.1, 0.0, 0.0, 0.0, 0.0]), 'distorted'),
    (dict(distortion_model='fisheye_magic'), 'unsupported distortion model'),
    (dict(width=0), r'zero image size \(0x480\)'),
    (dict(height=0), 'zero image size'),
    (dict(k=[0.0] * 9), 'K is all zero'),
    (dict(k=[500.0, 2.0, 320.0, 0.0, 510.0, 240.0, 0.0, 0.0, 1.0]), 'skew'),
])
def test_bad_camera_info_is_rejected(fields, match):
    with pytest.raises(ValueError, match=match):
        convert.camera_info_to_camera(_info(**fields))


def test_rectified_camera_info_uses_p():
    # image_proc publishes image_rect next to the raw (distorted) camera_info
    p = [480.0, 0.0, 300.0, 0.0, 0.0, 490.0, 230.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    msg = _info(d=[0.1, -0.05, 0.0, 0.0, 0.0], p=p)
    with pytest.raises(ValueError, match='distorted'):
        convert.camera_info_to_camera(msg)
    cam = convert.camera_info_to_camera(msg, rectified=True)
    assert (cam.fx, cam.fy, cam.cx, cam.cy, cam.width) == (480.0, 490.0, 300.0, 230.0, 640)
    with pytest.raises(ValueError, match='P is all zero'):
        convert.camera_info_to_camera(_info(p=[0.0] * 12), rectified=True)


def test_frame_from_messages_rectified_and_ros1_frame_id():
    from rrb_ros.ros.outputs import frame_from_messages
    info = _info(d=[0.1, -0.05, 0.0, 0.0, 0.0],
                 p=[480.0, 0.0, 300.0, 0.0, 0.0, 490.0, 230.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    mask = convert.mask_to_image(np.zeros((480, 640), np.uint8),
                                 Header(stamp=HEADER.stamp, frame_id='/camera_optical'))
    with pytest.raises(ValueError, match='camera_info unusable: .*distorted'):
        frame_from_messages(mask, info, None)
    frame, header, notes = frame_from_messages(mask, info, None, rectified=True)
    assert (frame.camera.fx, frame.camera.cy) == (480.0, 230.0)
    assert header.frame_id == frame.frame_id == 'camera_optical'
    assert header.stamp == HEADER.stamp
    assert list(notes) == ['frame_id'] and "'/camera_optical'" in notes['frame_id']
    mask.header.frame_id = ''
    assert list(frame_from_messages(mask, info, None, rectified=True)[2]) == ['no frame_id']
    mask.header.frame_id = 'camera_optical'
    assert frame_from_messages(mask, info, None, rectified=True)[2] == {}


def test_binning_and_roi():
    msg = _info(binning_x=2, binning_y=2)
    cam = convert.camera_info_to_camera(msg)
    assert (cam.width, cam.height, cam.fx, cam.fy) == (320, 240, 250.0, 255.0)
    # pixel centres at integer coordinates: binned pixel i is the mean of pixels 2i and 2i+1
    assert np.isclose(cam.cx, (CAMERA.cx - 0.5) / 2)
    msg = _info()
    msg.roi.x_offset, msg.roi.y_offset, msg.roi.width, msg.roi.height = 100, 50, 200, 100
    cam = convert.camera_info_to_camera(msg)
    assert (cam.width, cam.height, cam.fx) == (200, 100, CAMERA.fx)
    assert np.isclose(cam.cx, CAMERA.cx - 100) and np.isclose(cam.cy, CAMERA.cy - 50)


# --- poses and transforms -------------------------------------------------------------------

def test_pose_round_trip(rng):
    for R in Rotation.random(20, random_state=7).as_matrix():
        T = make_T(R, rng.normal(size=3))
        pose = convert.matrix_to_pose(T)
        assert pose.orientation.w >= 0
        assert np.allclose(convert.pose_to_matrix(pose), T, atol=1e-12)
        tf = convert.matrix_to_transform(T)
        assert [tf.rotation.x, tf.rotation.y, tf.rotation.z, tf.rotation.w] == \
            [pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w]
        assert [tf.translation.x, tf.translation.y, tf.translation.z] == T[:3, 3].tolist()


def test_quaternion_conventions():
    # geometry_msgs order is (x, y, z, w); 90 degrees about +z turns +x into +y (right-handed)
    R = Rotation.from_euler('z', 90, degrees=True).as_matrix()
    pose = convert.matrix_to_pose(make_T(R, [0.1, -0.2, 1.5]))
    q = pose.orientation
    assert np.allclose([q.x, q.y, q.z, q.w], [0, 0, np.sqrt(0.5), np.sqrt(0.5)])
    assert (pose.position.x, pose.position.y, pose.position.z) == (0.1, -0.2, 1.5)
    assert np.allclose(convert.pose_to_matrix(pose)[:3, :3] @ [1, 0, 0], [0, 1, 0])
    identity = convert.matrix_to_pose(np.eye(4))
    assert (identity.orientation.w, identity.orientation.x) == (1.0, 0.0)
    # w >= 0: the quaternion of a 270 degree turn is reported as -90 degrees
    q = convert.matrix_to_pose(make_T(Rotation.from_euler('x', 270, degrees=True).as_matrix(),
                                      [0, 0, 0])).orientation
    assert q.w > 0 and q.x < 0


def test_pose_to_matrix_normalises_and_rejects():
    pose = Pose()
    pose.orientation.z, pose.orientation.w = 2.0, 2.0
    R = convert.pose_to_matrix(pose)[:3, :3]
    assert np.allclose(R.T @ R, np.eye(3)) and np.isclose(np.linalg.det(R), 1.0)
    pose.orientation.z = pose.orientation.w = 0.0
    with pytest.raises(ValueError, match='invalid quaternion'):
        convert.pose_to_matrix(pose)
    pose = Pose()
    pose.position.x = float('nan')
    with pytest.raises(ValueError, match='NaN'):
        convert.pose_to_matrix(pose)


@pytest.mark.parametrize('T, match', [
    (np.eye(3), '4x4'),
    (np.diag([1.0, 1.0, -1.0, 1.0]), 'not a rotation'),
    (np.diag([2.0, 1.0, 1.0, 1.0]), 'not a rotation'),
    (np.full((4, 4), np.nan), 'NaN'),
])
def test_bad_matrix_is_rejected(T, match):
    for fn in (convert.matrix_to_pose, convert.matrix_to_transform):
        with pytest.raises(ValueError, match=match):
            fn(T)


def test_transform_stamped_and_tf_message():
    T = make_T(Rotation.from_euler('y', 30, degrees=True).as_matrix(), [0.0, 0.1, 0.8])
    ts = convert.transform_stamped(T, HEADER, 'chair_0')
    assert ts.header == HEADER and ts.child_frame_id == 'chair_0'
    assert ts.transform == convert.matrix_to_transform(T)
    assert convert.HAVE_TF2_MSGS
    other = convert.transform_stamped(np.eye(4), HEADER, 'chair_1')
    tf = convert.tf_message([ts, other])
    assert [t.child_frame_id for t in tf.transforms] == ['chair_0', 'chair_1']
    assert tf.transforms[0].header.frame_id == 'camera_color_optical_frame'
    ps = convert.pose_stamped(T, HEADER)
    assert ps.header == HEADER and ps.pose == convert.matrix_to_pose(T)


@pytest.mark.parametrize('parent, child, match', [
    ('camera', '', 'child frame id is empty'),
    ('', 'obj', 'parent'),
    ('camera', '/obj', 'starts with "/"'),
    ('/camera', 'obj', 'starts with "/"'),
    ('camera', 'camera', 'equals the parent'),
])
def test_bad_frame_ids_are_rejected(parent, child, match):
    with pytest.raises(ValueError, match=match):
        convert.transform_stamped(np.eye(4), Header(frame_id=parent), child)


def test_missing_tf2_msgs(monkeypatch):
    monkeypatch.setattr(convert, 'HAVE_TF2_MSGS', False)
    with pytest.raises(ImportError, match='tf2_msgs'):
        convert.tf_message([])


# --- markers and detections -----------------------------------------------------------------

@pytest.fixture
def box_mesh():
    box = trimesh.creation.box(extents=[0.4, 0.2, 0.1])
    box.apply_translation([0.05, 0.0, 0.05])
    return Mesh(np.asarray(box.vertices), np.asarray(box.faces, dtype=np.int64), True)


def test_mesh_marker(box_mesh):
    m = convert.mesh_marker(box_mesh, 'chair_0', Time(sec=3), 'rrb', 4, (0.1, 0.5, 1.0, 0.8))
    assert m.type == Marker.TRIANGLE_LIST and m.action == Marker.ADD
    assert len(m.points) == 3 * len(box_mesh.faces) == 36
    assert (m.header.frame_id, m.header.stamp.sec, m.ns, m.id) == ('chair_0', 3, 'rrb', 4)
    assert m.frame_locked
    assert (m.scale.x, m.scale.y, m.scale.z) == (1.0, 1.0, 1.0)
    assert m.pose == Pose()  # identity: orientation w = 1
    assert np.allclose([m.color.r, m.color.g, m.color.b, m.color.a], [0.1, 0.5, 1.0, 0.8])
    corners = box_mesh.vertices[box_mesh.faces].reshape(-1, 3)
    assert np.allclose([[p.x, p.y, p.z] for p in m.points], corners)
    assert convert.mesh_marker(box_mesh, 'chair_0', None, 'rrb', 4, (1, 1, 1, 1)) \
        .header.stamp == Time()


@pytest.mark.parametrize('frame, rgba, match', [
    ('obj', (1.0, 0.0, 0.0), 'four values'),
    ('obj', (1.0, 0.0, 0.0, 1.5), 'four values'),
    ('', (1.0, 0.0, 0.0, 1.0), 'frame id is empty'),
])
def test_bad_marker_input_is_rejected(box_mesh, frame, rgba, match):
    with pytest.raises(ValueError, match=match):
        convert.mesh_marker(box_mesh, frame, None, 'rrb', 0, rgba)


def test_delete_marker():
    m = convert.delete_marker('rrb', 4)
    assert (m.ns, m.id, m.action) == ('rrb', 4, Marker.DELETE)
    m = convert.delete_marker('chair', 0, HEADER)
    assert m.header == HEADER and m.action == Marker.DELETE


def test_detection3d(box_mesh):
    assert convert.HAVE_VISION_MSGS
    R = Rotation.from_euler('xyz', [10, -20, 30], degrees=True).as_matrix()
    T = make_T(R, [0.1, -0.05, 1.2])
    lo, hi = box_mesh.vertices.min(0), box_mesh.vertices.max(0)
    det = convert.detection3d(T, HEADER, 'chair', 0.87, box_mesh.extents, (lo + hi) / 2,
                              detection_id='chair_0')
    assert det.header == HEADER and det.id == 'chair_0'
    centre = convert.pose_to_matrix(det.bbox.center)
    assert np.allclose(centre[:3, 3], R @ [0.05, 0.0, 0.05] + T[:3, 3])
    assert np.allclose(centre[:3, :3], R)
    assert np.allclose([det.bbox.size.x, det.bbox.size.y, det.bbox.size.z], [0.4, 0.2, 0.1])
    assert len(det.results) == 1
    hyp = det.results[0]
    assert (hyp.hypothesis.class_id, hyp.hypothesis.score) == ('chair', 0.87)
    assert np.allclose(convert.pose_to_matrix(hyp.pose.pose), T)
    array = convert.detection3d_array([det], HEADER)
    assert array.header == HEADER and array.detections[0] == det
    assert convert.detection3d_array([], HEADER).detections == []


@pytest.mark.parametrize('kwargs, match', [
    (dict(box_size=(0.1, 0.2)), 'box_size'),
    (dict(box_size=(0.1, -0.2, 0.3)), 'box_size'),
    (dict(box_centre_obj=(0.0, float('nan'), 0.0)), 'box_centre_obj'),
    (dict(score=float('nan')), 'score'),
    (dict(T=np.zeros((4, 4))), 'T_cam_obj'),
])
def test_bad_detection_input_is_rejected(kwargs, match):
    args = dict(T=np.eye(4), header=HEADER, class_id='chair', score=0.5,
                box_size=(0.1, 0.2, 0.3), box_centre_obj=(0.0, 0.0, 0.0))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        convert.detection3d(**args)


def test_missing_vision_msgs(monkeypatch):
    monkeypatch.setattr(convert, 'HAVE_VISION_MSGS', False)
    with pytest.raises(ImportError, match='vision_msgs'):
        convert.detection3d(np.eye(4), HEADER, 'chair', 0.5, (1, 1, 1), (0, 0, 0))
    with pytest.raises(ImportError, match='vision_msgs'):
        convert.detection3d_array([], HEADER)


# --- time -----------------------------------------------------------------------------------

@pytest.mark.parametrize('ns', [0, 1, 999_999_999, 1_000_000_000, 1_712_345_678_123_456_789,
                                (2 ** 31 - 1) * 10 ** 9 + 999_999_999])
def test_stamp_round_trip(ns):
    stamp = convert.ns_to_stamp(ns)
    assert 0 <= stamp.nanosec < 10 ** 9
    assert convert.stamp_to_ns(stamp) == ns


def test_stamp_conversion():
    assert convert.stamp_to_ns(HEADER.stamp) == 12_000_000_345
    assert convert.ns_to_stamp(12_000_000_345) == HEADER.stamp
    with pytest.raises(ValueError, match='outside'):
        convert.ns_to_stamp(-1)
    with pytest.raises(ValueError, match='outside'):
        convert.ns_to_stamp(2 ** 31 * 10 ** 9)


def test_markers_of_large_meshes_are_decimated():
    import trimesh

    from rrb_ros.core.mesh import validate
    from rrb_ros.core.pipeline import FramePipeline, ObjectSpec
    from rrb_ros.ros.outputs import MARKER_FACES, OutputBuilder
    sphere = trimesh.creation.icosphere(6, radius=0.3)  # 81,920 faces
    pipeline = FramePipeline([ObjectSpec('ball', 1, validate(sphere.vertices, sphere.faces))])
    marker = OutputBuilder(pipeline).marker('ball')
    assert 0 < len(marker.points) <= 3 * MARKER_FACES
    assert marker.header.frame_id == 'rrb/ball'
