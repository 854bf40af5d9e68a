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

"""Metric scale of a reconstruction from the ground plane it stands on.

A single image fixes a shape only up to scale: the mesh scaled by s and its translation scaled
by s (a similarity about the camera centre) projects to exactly the same silhouette. The known
height of the camera above the floor removes that ambiguity: the object rests on the floor, so
its lowest point must lie on the ground plane.

Ground plane convention (camera optical frame, REP-103: x right, y down, z forward): the
points X with n . X + h = 0, where n is the unit *upward* normal of the floor and h > 0 is the
height of the camera centre above it; n . X + h is then the height of X above the floor.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..geometry import check_rigid
from ..mesh import Mesh


def ground_plane_from_height(camera_height: float, camera_pitch: float = 0.0
                             ) -> tuple[np.ndarray, float]:
    """Ground plane (n, h) in the optical frame of a camera at `camera_height` metres.

    `camera_pitch` (radians) is the tilt of the optical axis below the horizon (positive:
    looking down), with no roll: n = R_x(pitch) @ [0, -1, 0] = [0, -cos(pitch), -sin(pitch)],
    h = camera_height.
    """
    h = float(camera_height)
    pitch = float(camera_pitch)
    if not np.isfinite(h) or h <= 0:
        raise ValueError(f'camera_height must be > 0 metres, got {camera_height}')
    if not np.isfinite(pitch) or abs(pitch) >= np.pi / 2:
        raise ValueError(f'camera_pitch must be in (-pi/2, pi/2) radians, got {camera_pitch}')
    c, s = np.cos(pitch), np.sin(pitch)
    R_pitch = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    return R_pitch @ np.array([0.0, -1.0, 0.0]), h


def ground_plane_from_transform(T_base_cam: np.ndarray) -> tuple[np.ndarray, float]:
    """Ground plane (n, h) in the camera frame from T_base_cam, the floor being z = 0 of base.

    This is the TF route: `base_frame` -> camera optical frame, +z of base up.
    """
    T = check_rigid(T_base_cam, 'T_base_cam')
    n = T[2, :3].copy()  # base's +z expressed in the camera frame
    h = float(T[2, 3])  # height of the camera centre above z = 0
    if h <= 0:
        raise ValueError(f'the camera is not above the ground plane (height {h:.3f} m)')
    return n, h


def scale_to_ground(mesh: Mesh, T_cam_obj: np.ndarray, plane_normal_cam: np.ndarray,
                    plane_offset: float) -> tuple[float, Mesh, np.ndarray]:
    """Scale a posed up-to-scale mesh so that its lowest point touches the ground plane.

    Args:
        mesh: the mesh in its own (normalised) units, e.g. ONet's unit cube.
        T_cam_obj: 4x4 pose of the mesh fitted in those units (its silhouette matches).
        plane_normal_cam: (3,) upward normal n of the floor in the camera frame.
        plane_offset: h in n . X + h = 0 (metres), the camera's height above the floor.

    Returns:
        (scale s, the mesh with vertices times s, T_cam_obj with its translation times s).
        Rotation and silhouette are unchanged; the lowest vertex along n lies on the plane.

    """
    T = check_rigid(T_cam_obj, 'T_cam_obj')
    n = np.asarray(plane_normal_cam, np.float64).reshape(-1)
    if n.shape != (3,) or not np.all(np.isfinite(n)) or np.linalg.norm(n) < 1e-9:
        raise ValueError(f'plane normal must be a finite non-zero 3-vector, got {n}')
    h = float(plane_offset) / np.linalg.norm(n)
    n = n / np.linalg.norm(n)
    if not np.isfinite(h) or h <= 0:
        raise ValueError(f'the camera must be above the ground plane (offset {plane_offset})')
    verts_cam = mesh.vertices @ T[:3, :3].T + T[:3, 3]
    lowest = float((verts_cam @ n).min())
    # s * lowest + h = 0 needs part of the object below the camera centre (along n)
    if lowest >= -1e-9 * max(np.linalg.norm(T[:3, 3]), 1.0):
        raise ValueError('the posed object does not reach below the camera centre, so it '
                         'cannot stand on the ground plane; check the pose and the plane')
    s = -h / lowest
    scaled = dataclasses.replace(mesh, vertices=mesh.vertices * s)
    T_scaled = T.copy()
    T_scaled[:3, 3] *= s
    return s, scaled, T_scaled
