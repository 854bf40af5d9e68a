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

"""SO(3) / SE(3) helpers: rotation matrices in code, quaternions (x, y, z, w) at the boundary.

Transforms are named `T_a_b`: the 4x4 matrix that maps points in frame b to frame a
(`p_a = T_a_b @ p_b`), so `T_cam_obj` maps object-frame points into the camera optical frame.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation
import torch


def so3_exp(omega: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) from axis-angle vectors (..., 3) (radians), differentiable.

    Uses the Rodrigues formula with a Taylor expansion near zero so that the gradient at
    omega = 0 (where pose increments start) is exact.
    """
    if omega.shape[-1] != 3:
        raise ValueError(f'so3_exp expects (..., 3), got {tuple(omega.shape)}')
    theta2 = (omega * omega).sum(-1, keepdim=True)
    small = theta2 < 1e-8
    theta2_safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = torch.sqrt(theta2_safe)
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / theta2_safe)
    x, y, z = omega.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(omega.shape[:-1] + (3, 3))
    eye = torch.eye(3, dtype=omega.dtype, device=omega.device).expand_as(k)
    return eye + a[..., None] * k + b[..., None] * (k @ k)


def make_T(R: np.ndarray, t: np.ndarray) -> np.ndarray:  # noqa: N802, N803
    """4x4 homogeneous transform from a 3x3 rotation and a 3-vector."""
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = np.asarray(t, dtype=np.float64).reshape(3)
    return T


def invert_T(T: np.ndarray) -> np.ndarray:  # noqa: N802, N803
    """Inverse of a rigid transform (or a stack of them, (..., 4, 4))."""
    T = np.asarray(T, dtype=np.float64)
    R = T[..., :3, :3]
    t = T[..., :3, 3]
    out = np.zeros_like(T)
    Rt = np.swapaxes(R, -1, -2)
    out[..., :3, :3] = Rt
    out[..., :3, 3] = -(Rt @ t[..., None])[..., 0]
    out[..., 3, 3] = 1.0
    return out


def check_rigid(T: np.ndarray, name: str = 'T') -> np.ndarray:  # noqa: N803
    """Return T as a float64 4x4 rigid transform or raise ValueError saying what is wrong."""
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f'{name} must be 4x4, got shape {T.shape}')
    if not np.all(np.isfinite(T)):
        raise ValueError(f'{name} contains NaN or inf')
    R = T[:3, :3]
    if np.abs(R.T @ R - np.eye(3)).max() > 1e-4 or np.linalg.det(R) < 0:
        raise ValueError(f'{name} rotation part is not a rotation matrix')
    if np.abs(T[3] - [0, 0, 0, 1]).max() > 1e-9:
        raise ValueError(f'{name} last row must be [0, 0, 0, 1]')
    return T


def quat_from_matrix(R: np.ndarray) -> np.ndarray:  # noqa: N803
    """Convert to a unit quaternion (x, y, z, w), geometry_msgs/Quaternion order, w >= 0."""
    q = Rotation.from_matrix(np.asarray(R, dtype=np.float64)).as_quat()
    return q if q[..., 3] >= 0 else -q


def matrix_from_quat(q: np.ndarray) -> np.ndarray:
    """3x3 rotation from a quaternion (x, y, z, w); raises on a zero or non-finite one."""
    q = np.asarray(q, dtype=np.float64)
    n = np.linalg.norm(q)
    if not np.isfinite(n) or n < 1e-9:
        raise ValueError(f'invalid quaternion {q.tolist()}')
    return Rotation.from_quat(q / n).as_matrix()


def rotation_angle(R_a: np.ndarray, R_b: np.ndarray) -> float:  # noqa: N803
    """Geodesic angle ||log(R_a^T R_b)|| in radians."""
    R = np.asarray(R_a, dtype=np.float64).T @ np.asarray(R_b, dtype=np.float64)
    c = np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0)
    return float(np.arccos(c))


def rotvec(R: np.ndarray) -> np.ndarray:  # noqa: N803
    """Axis-angle vector (radians) of a rotation matrix."""
    return Rotation.from_matrix(np.asarray(R, dtype=np.float64)).as_rotvec()


def from_rotvec(v: np.ndarray) -> np.ndarray:
    """Rotation matrix from an axis-angle vector (radians)."""
    return Rotation.from_rotvec(np.asarray(v, dtype=np.float64)).as_matrix()


def viewpoint_rotation(azimuth: float, elevation: float, inplane: float) -> np.ndarray:
    """R_cam_obj of a camera on a sphere around the object, looking at its origin.

    The object's +z is up. Azimuth turns the camera about the object's z axis (0: camera on the
    object's -y side looking along +y), elevation lifts it above the object's xy plane, and the
    in-plane rotation turns the image about the optical axis. All angles in radians; the camera is
    in the ROS optical convention (z forward, x right, y down).
    """
    ca, sa = np.cos(azimuth), np.sin(azimuth)
    ce, se = np.cos(elevation), np.sin(elevation)
    # camera centre direction (object frame), from the object towards the camera
    c = np.array([sa * ce, -ca * ce, se])
    z_cam = -c                                   # optical axis points at the object
    x_cam = np.array([ca, sa, 0.0])              # right, horizontal
    y_cam = np.cross(z_cam, x_cam)               # down
    R_obj_cam = np.stack([x_cam, y_cam, z_cam], axis=1)
    ci, si = np.cos(inplane), np.sin(inplane)
    R_roll = np.array([[ci, -si, 0.0], [si, ci, 0.0], [0.0, 0.0, 1.0]])
    return R_roll @ R_obj_cam.T


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True
            ) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares similarity (R, t, s) with dst ~ s R src + t (Umeyama 1991).

    src, dst: (N, 3) corresponding points, N >= 3 (not all collinear for a unique rotation).
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3 or src.shape[0] < 3:
        raise ValueError(f'umeyama needs two (N>=3, 3) arrays, got {src.shape}, {dst.shape}')
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / src.shape[0]
    U, D, Vt = np.linalg.svd(cov)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1.0
    R = U @ S @ Vt
    var_s = (xs ** 2).sum() / src.shape[0]
    if with_scale and any((x ** 2).sum() <= 1e-20 * max(1.0, float((p ** 2).sum()))
                          for x, p in ((xs, src), (xd, dst))):
        raise ValueError('the points do not spread (a trajectory that does not move): no scale '
                         'can be estimated; align without scale (se3)')
    s = float(np.trace(np.diag(D) @ S) / var_s) if with_scale else 1.0
    t = mu_d - s * R @ mu_s
    return R, t, s
