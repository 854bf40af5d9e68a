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

"""Conversions between ROS messages and the numpy / core types; no other module touches both.

Images are numpy arrays (H, W, 3) uint8 RGB or (H, W) integer label masks, poses are 4x4
matrices `T_a_b` (see `rrb_ros.core.geometry`), cameras are `PinholeCamera`. Every function
checks its input and raises `ValueError` saying what is wrong. `vision_msgs` and `tf2_msgs`
are optional: `HAVE_VISION_MSGS` / `HAVE_TF2_MSGS` say whether they import, and the functions
that need them raise `ImportError` when they do not.
"""

from __future__ import annotations

import sys
from typing import Iterable, Sequence

from builtin_interfaces.msg import Time
import cv2
from geometry_msgs.msg import (
    Point,
    Pose,
    PoseStamped,
    Quaternion,
    Transform,
    TransformStamped,
    Vector3,
)
import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker

from rrb_ros.core.camera import PinholeCamera
from rrb_ros.core.geometry import check_rigid, matrix_from_quat, quat_from_matrix
from rrb_ros.core.mesh import Mesh

try:
    from vision_msgs.msg import (
        BoundingBox3D,
        Detection3D,
        Detection3DArray,
        ObjectHypothesisWithPose,
    )
    HAVE_VISION_MSGS = True
except ImportError:
    HAVE_VISION_MSGS = False

try:
    from tf2_msgs.msg import TFMessage
    HAVE_TF2_MSGS = True
except ImportError:
    HAVE_TF2_MSGS = False

# encoding -> (bytes per pixel, cv2 code to RGB or None when already RGB). cv2 swaps channels
# about 25x faster than numpy fancy indexing or negative strides.
_COLOUR_ENCODINGS = {
    'rgb8': (3, None),
    'bgr8': (3, cv2.COLOR_BGR2RGB),
    'rgba8': (4, cv2.COLOR_RGBA2RGB),
    'bgra8': (4, cv2.COLOR_BGRA2RGB),
    'mono8': (1, cv2.COLOR_GRAY2RGB),
}
# output encoding -> cv2 code from RGB (alpha = 255)
_FROM_RGB = {'rgb8': None, 'bgr8': cv2.COLOR_RGB2BGR, 'rgba8': cv2.COLOR_RGB2RGBA,
             'bgra8': cv2.COLOR_RGB2BGRA}
# encoding -> numpy dtype of one label (byte order applied from is_bigendian).
_MASK_ENCODINGS = {
    'mono8': np.dtype(np.uint8),
    '8UC1': np.dtype(np.uint8),
    '16UC1': np.dtype(np.uint16),
    'mono16': np.dtype(np.uint16),
    '32SC1': np.dtype(np.int32),
}
_MASK_ENCODING_OF_DTYPE = {np.dtype(np.uint8): 'mono8', np.dtype(np.uint16): '16UC1',
                           np.dtype(np.int32): '32SC1'}
_BIG_ENDIAN = sys.byteorder == 'big'
_NS_PER_S = 1_000_000_000
_INT32_MAX = 2 ** 31 - 1


# --- images -------------------------------------------------------------------------------------

def _image_rows(msg: Image, pixel_bytes: int) -> np.ndarray:
    """Check size fields against `data`; return the (H, W * pixel_bytes) uint8 view of the pixels.

    The view shares memory with `msg.data` (and is read-only when that is `bytes`).
    """
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise ValueError(f'{msg.encoding} image has zero size ({w}x{h})')
    row = w * pixel_bytes
    if step < row:
        raise ValueError(f'{msg.encoding} image step {step} is smaller than width * bytes per '
                         f'pixel = {w} * {pixel_bytes} = {row}')
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if buf.size != h * step:
        raise ValueError(f'{msg.encoding} image data has {buf.size} bytes, expected '
                         f'height * step = {h} * {step} = {h * step}')
    return buf.reshape(h, step)[:, :row]


def image_to_rgb(msg: Image) -> np.ndarray:
    """Return a sensor_msgs/Image as a new (H, W, 3) uint8 RGB array.

    Accepts rgb8, bgr8, rgba8, bgra8 (alpha dropped) and mono8 (grey copied to R, G and B);
    row padding (`step` > width * channels) is skipped. The result owns its memory.
    """
    enc = msg.encoding
    if enc not in _COLOUR_ENCODINGS:
        raise ValueError(f'unsupported colour image encoding {enc!r}; expected one of '
                         f'{sorted(_COLOUR_ENCODINGS)}')
    channels, code = _COLOUR_ENCODINGS[enc]
    rows = _image_rows(msg, channels)
    pixels = rows.reshape(rows.shape[0], int(msg.width), channels)
    if code is None:
        return pixels.copy()  # the view is read-only (bytes) or aliases msg.data
    if channels == 1:
        pixels = pixels[:, :, 0]
    return cv2.cvtColor(pixels, code)  # a new array; row padding is skipped by its strides


def image_to_mask(msg: Image) -> np.ndarray:
    """Return a label image (mono8, 8UC1, 16UC1 or 32SC1) as a new (H, W) integer array.

    The dtype is uint8, uint16 or int32 in native byte order (`is_bigendian` is honoured for the
    multi-byte encodings); 0 is background by convention.
    """
    enc = msg.encoding
    if enc not in _MASK_ENCODINGS:
        raise ValueError(f'unsupported mask encoding {enc!r}; expected one of '
                         f'{sorted(_MASK_ENCODINGS)}')
    dtype = _MASK_ENCODINGS[enc]
    rows = _image_rows(msg, dtype.itemsize)
    wire = dtype.newbyteorder('>' if msg.is_bigendian else '<')
    labels = np.ascontiguousarray(rows).view(wire).reshape(rows.shape[0], int(msg.width))
    return labels.astype(dtype)  # always a copy, native byte order


def _image_msg(pixels: np.ndarray, header: Header, encoding: str, big_endian: bool) -> Image:
    h, w = pixels.shape[:2]
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(h), int(w)
    msg.encoding = encoding
    msg.is_bigendian = big_endian
    msg.step = int(w * (pixels.shape[2] if pixels.ndim == 3 else 1) * pixels.dtype.itemsize)
    # Filling `data` from bytes is a memcpy; from a numpy array rclpy iterates per element.
    msg.data = np.ascontiguousarray(pixels).tobytes()
    return msg


def compressed_to_image(msg: CompressedImage, mask: bool = False) -> Image:
    """Decode a sensor_msgs/CompressedImage (image_transport's `compressed`) into an Image.

    A colour image becomes bgr8. A mask (`mask=True`) must be compressed losslessly (png) and
    have one channel of 8 or 16 bits: it becomes mono8 or 16UC1. ValueError says what is wrong.
    """
    fmt = msg.format.lower()
    if mask and ('jpeg' in fmt or 'jpg' in fmt):
        raise ValueError(f'a mask must be compressed losslessly (png), got format {msg.format!r}')
    img = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8),
                       cv2.IMREAD_UNCHANGED if mask else cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f'cannot decode the compressed image (format {msg.format!r}, '
                         f'{len(msg.data)} bytes)')
    if not mask:
        return _image_msg(img, msg.header, 'bgr8', False)
    if img.ndim != 2 or img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f'a compressed mask must have one channel of 8 or 16 bits, got '
                         f'{img.shape[2] if img.ndim == 3 else 1} channel(s) of {img.dtype}')
    return mask_to_image(img, msg.header)


def rgb_to_image(img: np.ndarray, header: Header, encoding: str = 'rgb8') -> Image:
    """Return an (H, W, 3) uint8 RGB array as a sensor_msgs/Image (rgb8, bgr8, rgba8 or bgra8).

    Alpha, where the encoding has one, is 255. The header is used as given (copy the input
    image's header so the output keeps its stamp and optical frame).
    """
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f'rgb_to_image expects a non-empty (H, W, 3) array, got {img.shape}')
    if img.dtype != np.uint8:
        raise ValueError(f'rgb_to_image expects uint8, got {img.dtype}')
    if encoding not in _FROM_RGB:
        raise ValueError(f'unsupported colour image encoding {encoding!r} for output; expected '
                         f'one of {sorted(_FROM_RGB)}')
    if _FROM_RGB[encoding] is not None:
        img = cv2.cvtColor(np.ascontiguousarray(img), _FROM_RGB[encoding])
    return _image_msg(img, header, encoding, False)


def mask_to_image(mask: np.ndarray, header: Header, encoding: str | None = None) -> Image:
    """Return an (H, W) label mask as a sensor_msgs/Image.

    Without `encoding`, it follows the dtype: bool and uint8 -> mono8 (bool as 0/1), uint16 ->
    16UC1, int32 -> 32SC1; other integer dtypes need an explicit encoding. With an encoding
    (mono8, 8UC1, 16UC1, 32SC1), labels outside its range raise ValueError.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.shape[0] == 0 or mask.shape[1] == 0:
        raise ValueError(f'mask_to_image expects a non-empty (H, W) array, got {mask.shape}')
    if mask.dtype == np.bool_:
        mask = mask.astype(np.uint8)
    if not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(f'mask_to_image expects integer or bool labels, got {mask.dtype}')
    if encoding is None:
        encoding = _MASK_ENCODING_OF_DTYPE.get(mask.dtype.newbyteorder('='))
        if encoding is None:
            raise ValueError(f'no default mask encoding for dtype {mask.dtype}; pass one of '
                             f'{sorted(_MASK_ENCODINGS)}')
    if encoding not in _MASK_ENCODINGS:
        raise ValueError(f'unsupported mask encoding {encoding!r}; expected one of '
                         f'{sorted(_MASK_ENCODINGS)}')
    dtype = _MASK_ENCODINGS[encoding]
    if mask.dtype.newbyteorder('=') != dtype:
        info = np.iinfo(dtype)
        lo, hi = int(mask.min()), int(mask.max())
        if lo < info.min or hi > info.max:
            raise ValueError(f'mask labels span [{lo}, {hi}], outside {encoding} '
                             f'[{info.min}, {info.max}]')
    return _image_msg(mask.astype(dtype, copy=False), header, encoding,
                      _BIG_ENDIAN and dtype.itemsize > 1)


# --- cameras ------------------------------------------------------------------------------------

def camera_info_to_camera(msg: CameraInfo, rectified: bool = False) -> PinholeCamera:
    """Return the pinhole camera of a sensor_msgs/CameraInfo.

    With `rectified=False` the intrinsics are K and D must be zero (an undistorted camera).
    With `rectified=True` the image is a rectified one (`image_rect` from image_proc, which is
    published next to the unchanged, distorted camera_info): the intrinsics are P[:3, :3] and D
    is ignored. Binning and a region of interest, when set, are applied to the intrinsics with
    pixel centres at integer coordinates (cx' = (cx - x_offset + 0.5) / binning - 0.5, where
    image_geometry uses (cx - x_offset) / binning). Raises ValueError for an uncalibrated
    camera_info (zero size or zero K), NaN, skew or distortion.
    """
    width, height = int(msg.width), int(msg.height)
    if width <= 0 or height <= 0:
        raise ValueError(f'camera_info has zero image size ({width}x{height}): the camera '
                         'is not calibrated or the driver does not fill width/height')
    if rectified:
        p = np.asarray(msg.p, dtype=np.float64).reshape(3, 4)
        k, model, d = p[:, :3].reshape(-1), '', ()
        source = 'P'
    else:
        k, model, d = np.asarray(msg.k, dtype=np.float64), msg.distortion_model, msg.d
        source = 'K'
    if np.all(k == 0):
        raise ValueError(f'camera_info {source} is all zero: the camera is not calibrated')
    try:
        camera = PinholeCamera.from_camera_info(k, width, height, model, d)
    except ValueError as exc:
        raise ValueError(f'camera_info ({source}): {exc}') from None
    bx, by = max(int(msg.binning_x), 1), max(int(msg.binning_y), 1)
    roi = msg.roi
    has_roi = roi.width > 0 and roi.height > 0 and (roi.width, roi.height) != (width, height)
    if bx == 1 and by == 1 and not has_roi:
        return camera
    x0, y0, rw, rh = ((roi.x_offset, roi.y_offset, roi.width, roi.height) if has_roi
                      else (0, 0, width, height))
    return camera.crop(x0, y0, rw, rh, int(rw) // bx, int(rh) // by)


def camera_to_camera_info(camera: PinholeCamera, header: Header) -> CameraInfo:
    """Return a sensor_msgs/CameraInfo of an undistorted camera (plumb_bob, D = 0, P = [K|0])."""
    msg = CameraInfo()
    msg.header = header
    msg.width, msg.height = int(camera.width), int(camera.height)
    msg.distortion_model = 'plumb_bob'
    msg.d = [0.0] * 5
    K = camera.K
    msg.k = K.reshape(-1).tolist()
    msg.r = np.eye(3).reshape(-1).tolist()
    msg.p = np.hstack([K, np.zeros((3, 1))]).reshape(-1).tolist()
    return msg


# --- poses and transforms -----------------------------------------------------------------------

def _quaternion(R: np.ndarray) -> Quaternion:  # noqa: N803
    x, y, z, w = (float(v) for v in quat_from_matrix(R))
    return Quaternion(x=x, y=y, z=z, w=w)


def matrix_to_pose(T: np.ndarray) -> Pose:  # noqa: N803
    """Return a 4x4 rigid transform as a geometry_msgs/Pose (quaternion x, y, z, w; w >= 0)."""
    T = check_rigid(T, 'T')
    x, y, z = (float(v) for v in T[:3, 3])
    return Pose(position=Point(x=x, y=y, z=z), orientation=_quaternion(T[:3, :3]))


def pose_to_matrix(pose: Pose | Transform) -> np.ndarray:
    """Return a geometry_msgs/Pose or Transform as a 4x4 float64 matrix (unit quaternion)."""
    if isinstance(pose, Transform):
        q, p = pose.rotation, pose.translation
    else:
        q, p = pose.orientation, pose.position
    T = np.eye(4)
    T[:3, :3] = matrix_from_quat([q.x, q.y, q.z, q.w])
    T[:3, 3] = [p.x, p.y, p.z]
    if not np.all(np.isfinite(T)):
        raise ValueError(f'pose position contains NaN or inf: {T[:3, 3].tolist()}')
    return T


def matrix_to_transform(T: np.ndarray) -> Transform:  # noqa: N803
    """Return a 4x4 rigid transform T_parent_child as a geometry_msgs/Transform."""
    T = check_rigid(T, 'T')
    x, y, z = (float(v) for v in T[:3, 3])
    return Transform(translation=Vector3(x=x, y=y, z=z), rotation=_quaternion(T[:3, :3]))


def transform_stamped(T: np.ndarray, header: Header, child_frame_id: str  # noqa: N803
                      ) -> TransformStamped:
    """Return T_parent_child as a TransformStamped (parent = header.frame_id).

    Frame ids must be non-empty, must not start with '/' (tf2 rejects them) and must differ.
    """
    parent = header.frame_id
    for role, frame in (('parent (header.frame_id)', parent), ('child', child_frame_id)):
        if not frame:
            raise ValueError(f'{role} frame id is empty')
        if frame.startswith('/'):
            raise ValueError(f'{role} frame id {frame!r} starts with "/", which tf2 rejects')
    if parent == child_frame_id:
        raise ValueError(f'child frame id equals the parent frame id {parent!r}')
    return TransformStamped(header=header, child_frame_id=child_frame_id,
                            transform=matrix_to_transform(T))


def pose_stamped(T: np.ndarray, header: Header) -> PoseStamped:  # noqa: N803
    """Return T_frame_obj as a PoseStamped in header.frame_id."""
    return PoseStamped(header=header, pose=matrix_to_pose(T))


def tf_message(transforms: Iterable[TransformStamped]) -> TFMessage:
    """Return a tf2_msgs/TFMessage of the given transforms (as published on /tf)."""
    if not HAVE_TF2_MSGS:
        raise ImportError('tf2_msgs is not installed: tf_message needs tf2_msgs.msg.TFMessage')
    return TFMessage(transforms=list(transforms))


# --- markers and detections ---------------------------------------------------------------------

def mesh_marker(mesh: Mesh, frame_id: str, stamp: Time | None, ns: str, marker_id: int,
                rgba: Sequence[float]) -> Marker:
    """Return the mesh as a TRIANGLE_LIST marker in `frame_id` (identity pose, frame_locked).

    Attach the marker to the object's frame (the TF child published for it), so RViz moves it
    with the TF and the mesh is sent once. A zero or None `stamp` means "latest transform".
    `rgba` is four floats in [0, 1]. About 5 ms for 2,000 faces (6,000 points) on one core;
    build it once per mesh and republish it, not per frame.
    """
    rgba = tuple(float(c) for c in rgba)
    if len(rgba) != 4 or not all(0.0 <= c <= 1.0 for c in rgba):
        raise ValueError(f'rgba must be four values in [0, 1], got {rgba}')
    if not frame_id:
        raise ValueError('marker frame id is empty')
    corners = np.asarray(mesh.vertices, dtype=np.float64)[np.asarray(mesh.faces)].reshape(-1, 3)
    if not np.all(np.isfinite(corners)):
        raise ValueError('mesh vertices contain NaN or inf')
    m = Marker()
    m.header.frame_id = frame_id
    if stamp is not None:
        m.header.stamp = stamp
    m.ns = ns
    m.id = int(marker_id)
    m.type = Marker.TRIANGLE_LIST
    m.action = Marker.ADD
    m.pose.orientation.w = 1.0
    m.scale = Vector3(x=1.0, y=1.0, z=1.0)
    m.color = ColorRGBA(r=rgba[0], g=rgba[1], b=rgba[2], a=rgba[3])
    m.frame_locked = True
    # tolist() gives Python floats, so the message setters skip numpy scalar conversions.
    m.points = [Point(x=x, y=y, z=z) for x, y, z in corners.tolist()]
    return m


def delete_marker(ns: str, marker_id: int, header: Header | None = None) -> Marker:
    """Return a DELETE marker for (ns, marker_id), with `header` when given."""
    m = Marker()
    if header is not None:
        m.header = header
    m.ns = ns
    m.id = int(marker_id)
    m.action = Marker.DELETE
    return m


def _require_vision_msgs(what: str) -> None:
    if not HAVE_VISION_MSGS:
        raise ImportError(f'vision_msgs is not installed: {what} needs vision_msgs.msg')


def detection3d(T: np.ndarray, header: Header, class_id: str, score: float,  # noqa: N803
                box_size: Sequence[float], box_centre_obj: Sequence[float],
                detection_id: str = '') -> Detection3D:
    """Return a vision_msgs/Detection3D of an object at T_cam_obj (camera = header.frame_id).

    bbox.center is the posed box centre (T_cam_obj @ box_centre_obj, the object's
    orientation), bbox.size the box size along the object axes (metres, e.g. `mesh.extents`);
    results hold one hypothesis (class_id, score) whose pose is the object origin.
    """
    _require_vision_msgs('detection3d')
    T = check_rigid(T, 'T_cam_obj')
    size = np.asarray(box_size, dtype=np.float64).reshape(-1)
    centre = np.asarray(box_centre_obj, dtype=np.float64).reshape(-1)
    if size.size != 3 or not np.all(np.isfinite(size)) or np.any(size < 0):
        raise ValueError(f'box_size must be three finite non-negative values, got {size}')
    if centre.size != 3 or not np.all(np.isfinite(centre)):
        raise ValueError(f'box_centre_obj must be three finite values, got {centre}')
    score = float(score)
    if not np.isfinite(score):
        raise ValueError(f'score must be finite, got {score}')
    T_cam_box = T.copy()
    T_cam_box[:3, 3] = T[:3, :3] @ centre + T[:3, 3]
    det = Detection3D(header=header, id=detection_id)
    det.bbox = BoundingBox3D(center=matrix_to_pose(T_cam_box),
                             size=Vector3(x=float(size[0]), y=float(size[1]), z=float(size[2])))
    hyp = ObjectHypothesisWithPose()
    hyp.hypothesis.class_id = class_id
    hyp.hypothesis.score = score
    hyp.pose.pose = matrix_to_pose(T)
    det.results = [hyp]
    return det


def detection3d_array(detections: Iterable[Detection3D], header: Header) -> Detection3DArray:
    """Return a vision_msgs/Detection3DArray of the detections (possibly none)."""
    _require_vision_msgs('detection3d_array')
    return Detection3DArray(header=header, detections=list(detections))


# --- time ---------------------------------------------------------------------------------------

def stamp_to_ns(stamp: Time) -> int:
    """Return a builtin_interfaces/Time as integer nanoseconds."""
    return int(stamp.sec) * _NS_PER_S + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    """Return integer nanoseconds (>= 0, within int32 seconds) as a builtin_interfaces/Time."""
    ns = int(ns)
    sec, nanosec = divmod(ns, _NS_PER_S)
    if ns < 0 or sec > _INT32_MAX:
        raise ValueError(f'stamp {ns} ns is outside [0, {_INT32_MAX}] s')
    return Time(sec=sec, nanosec=nanosec)
