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

"""Pinhole camera in the ROS optical convention (z forward, x right, y down).

The same convention as OpenCV, so `K` from a ROS camera_info is used as is. Only undistorted
images are accepted: a `plumb_bob` / `rational_polynomial` / `equidistant` model whose
coefficients are not all zero is rejected with a clear error (rectify the image and the mask
first, e.g. with `image_proc`, and use the rectified camera_info).
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from pathlib import Path
from typing import Sequence

import numpy as np

_KNOWN_DISTORTION_MODELS = ('', 'plumb_bob', 'rational_polynomial', 'equidistant', 'none')


@dataclass(frozen=True)
class PinholeCamera:
    """Intrinsics of an undistorted pinhole camera, pixels, ROS optical frame."""

    fx: float
    """Focal length along x (pixels)."""
    fy: float
    """Focal length along y (pixels)."""
    cx: float
    """Principal point x (pixels; pixel centres at integer coordinates, as in OpenCV)."""
    cy: float
    """Principal point y (pixels)."""
    width: int
    """Image width (pixels)."""
    height: int
    """Image height (pixels)."""

    def __post_init__(self) -> None:
        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(math.isfinite(float(v)) for v in values):
            raise ValueError(f'camera intrinsics contain NaN or inf: fx, fy, cx, cy = {values}')
        if self.fx <= 0 or self.fy <= 0:
            raise ValueError(f'focal lengths must be positive, got fx={self.fx}, fy={self.fy}')
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise ValueError(f'image size must be positive, got {self.width}x{self.height}')

    @classmethod
    def from_camera_info(cls, k: Sequence[float], width: int, height: int,
                         distortion_model: str = '', d: Sequence[float] = ()) -> 'PinholeCamera':
        """Build from the fields of a sensor_msgs/CameraInfo (row-major 3x3 `k`)."""
        k = np.asarray(k, dtype=np.float64).reshape(-1)
        if k.size != 9:
            raise ValueError(f'K must have 9 entries, got {k.size}')
        if not np.all(np.isfinite(k)):
            raise ValueError('K contains NaN or inf')
        d = np.asarray(d, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(d)):
            raise ValueError('distortion coefficients contain NaN or inf')
        model = (distortion_model or '').strip()
        if model not in _KNOWN_DISTORTION_MODELS:
            raise ValueError(f'unsupported distortion model {model!r}; rectify the images first')
        if np.any(np.abs(d) > 1e-12):
            raise ValueError(
                f'distorted camera ({model}, D={d.tolist()}): rrb_ros works on rectified images; '
                'rectify image and mask (e.g. image_proc) and use the rectified camera_info')
        if abs(k[1]) > 1e-9 or abs(k[3]) > 1e-9 or np.any(np.abs(k[6:8]) > 1e-9) \
                or abs(k[8] - 1.0) > 1e-9:
            raise ValueError(f'K is not an upper-triangular pinhole matrix without skew: {k}')
        return cls(float(k[0]), float(k[4]), float(k[2]), float(k[5]), int(width), int(height))

    @classmethod
    def from_yaml(cls, path: str | Path) -> 'PinholeCamera':
        """Load a ROS camera calibration YAML (camera_calibration_parsers layout)."""
        import yaml
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ValueError(f'cannot read camera file {path}: {exc.strerror}') from None
        except yaml.YAMLError as exc:
            raise ValueError(f'camera file {path} is not valid YAML: {exc}') from None
        if not isinstance(data, dict):
            raise ValueError(f'camera file {path} is not a camera calibration YAML')
        try:
            width, height = int(data['image_width']), int(data['image_height'])
            k = data['camera_matrix']['data']
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f'camera file {path} lacks image_width/image_height/'
                             f'camera_matrix.data ({exc})') from None
        d = (data.get('distortion_coefficients') or {}).get('data') or []
        try:
            return cls.from_camera_info([float(v) for v in k], width, height,
                                        data.get('distortion_model', ''),
                                        [float(v) for v in d])
        except ValueError as exc:
            raise ValueError(f'camera file {path}: {exc}') from None

    def to_yaml_dict(self, name: str = 'camera') -> dict:
        """Return the ROS camera calibration YAML content for this camera."""
        k = self.K.reshape(-1).tolist()
        p = np.hstack([self.K, np.zeros((3, 1))]).reshape(-1).tolist()
        return {
            'image_width': self.width, 'image_height': self.height, 'camera_name': name,
            'camera_matrix': {'rows': 3, 'cols': 3, 'data': k},
            'distortion_model': 'plumb_bob',
            'distortion_coefficients': {'rows': 1, 'cols': 5, 'data': [0.0] * 5},
            'rectification_matrix': {'rows': 3, 'cols': 3,
                                     'data': np.eye(3).reshape(-1).tolist()},
            'projection_matrix': {'rows': 3, 'cols': 4, 'data': p},
        }

    @property
    def K(self) -> np.ndarray:  # noqa: N802 (the name every paper uses)
        """3x3 intrinsic matrix (float64)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.width), int(self.height)

    def crop(self, x0: float, y0: float, crop_w: float, crop_h: float,
             out_w: int, out_h: int) -> 'PinholeCamera':
        """Return the camera of window [x0, x0+crop_w) x [y0, y0+crop_h) resized to out_w x out_h.

        The window may extend past the image. Pixel centres follow `cv2.resize`: output pixel
        i covers input x0 + (i + 0.5) / s - 0.5, so u' = (u - x0 + 0.5) * s - 0.5.
        """
        sx, sy = out_w / float(crop_w), out_h / float(crop_h)
        return PinholeCamera(self.fx * sx, self.fy * sy, (self.cx - x0 + 0.5) * sx - 0.5,
                             (self.cy - y0 + 0.5) * sy - 0.5, int(out_w), int(out_h))

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """Project (N, 3) points in the optical frame to (N, 2) pixel coordinates."""
        p = np.asarray(points_cam, dtype=np.float64)
        z = p[:, 2:3]
        return np.hstack([self.fx * p[:, :1] / z + self.cx, self.fy * p[:, 1:2] / z + self.cy])

    def backproject(self, uv: np.ndarray, depth: float | np.ndarray) -> np.ndarray:
        """Pixel coordinates (N, 2) at given depth(s) to (N, 3) points in the optical frame."""
        uv = np.atleast_2d(np.asarray(uv, dtype=np.float64))
        z = np.broadcast_to(np.asarray(depth, dtype=np.float64), (uv.shape[0],))
        x = (uv[:, 0] - self.cx) / self.fx * z
        y = (uv[:, 1] - self.cy) / self.fy * z
        return np.stack([x, y, z], axis=1)
