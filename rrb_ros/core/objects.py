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

"""Procedural objects and generated fitting cases (for tests, benchmarks and the demo).

Objects stand on the z = 0 plane with +z up, sizes in metres, origin at the floor centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from .camera import PinholeCamera
from .geometry import from_rotvec, make_T, viewpoint_rotation
from .mesh import Mesh, validate


def _box(size, centre) -> trimesh.Trimesh:
    return trimesh.creation.box(extents=size).apply_translation(centre)


def procedural_chair(rng: np.random.Generator) -> Mesh:
    """Build a chair with random proportions: seat, 4 legs, back, optional arms."""
    w, d = rng.uniform(0.38, 0.6), rng.uniform(0.38, 0.6)
    h_seat, t_seat = rng.uniform(0.38, 0.5), rng.uniform(0.03, 0.08)
    h_back = rng.uniform(0.3, 0.6)
    leg = rng.uniform(0.025, 0.06)
    parts = [_box((w, d, t_seat), (0, 0, h_seat - t_seat / 2))]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(_box((leg, leg, h_seat - t_seat),
                              (sx * (w / 2 - leg / 2), sy * (d / 2 - leg / 2),
                               (h_seat - t_seat) / 2)))
    t_back = rng.uniform(0.03, 0.07)
    parts.append(_box((w, t_back, h_back), (0, d / 2 - t_back / 2, h_seat + h_back / 2)))
    if rng.uniform() < 0.4:
        h_arm = rng.uniform(0.15, 0.25)
        for sx in (-1, 1):
            parts.append(_box((0.04, d, 0.04), (sx * (w / 2 - 0.02), 0, h_seat + h_arm)))
            parts.append(_box((0.04, 0.04, h_arm), (sx * (w / 2 - 0.02), -d / 2 + 0.02,
                                                    h_seat + h_arm / 2)))
    return _union(parts)


def procedural_object(rng: np.random.Generator) -> Mesh:
    """Build a random object: a chair, a table with a shelf, or a blob of parts."""
    kind = rng.integers(3)
    if kind == 0:
        return procedural_chair(rng)
    if kind == 1:
        w, d, h = rng.uniform(0.5, 1.0), rng.uniform(0.4, 0.7), rng.uniform(0.4, 0.8)
        parts = [_box((w, d, 0.04), (0, 0, h - 0.02)),
                 _box((w * 0.5, d, 0.03), (-w * 0.2, 0, h * 0.3))]
        for sx in (-1, 1):
            for sy in (-1, 1):
                parts.append(_box((0.05, 0.05, h - 0.04),
                                  (sx * (w / 2 - 0.03), sy * (d / 2 - 0.03), (h - 0.04) / 2)))
        return _union(parts)
    parts = []
    for _ in range(rng.integers(3, 6)):
        c = rng.uniform(-0.15, 0.15, 3) + [0, 0, 0.2]
        if rng.uniform() < 0.5:
            parts.append(_box(rng.uniform(0.05, 0.3, 3), c))
        else:
            cyl = trimesh.creation.cylinder(rng.uniform(0.03, 0.12), rng.uniform(0.1, 0.4),
                                            sections=24)
            cyl.apply_transform(make_T(from_rotvec(rng.normal(size=3)), c))
            parts.append(cyl)
    mesh = _union(parts)
    return validate(mesh.vertices - [0, 0, mesh.vertices[:, 2].min()], mesh.faces)


def _union(parts: list[trimesh.Trimesh]) -> Mesh:
    """Concatenate parts (overlaps allowed: silhouettes do not care) into one validated mesh."""
    m = trimesh.util.concatenate(parts)
    return validate(m.vertices, m.faces)


def subdivide(mesh: Mesh, min_faces: int) -> Mesh:
    """Split triangles until the mesh has at least `min_faces` faces (shape unchanged)."""
    v, f = mesh.vertices, mesh.faces
    while len(f) < min_faces:
        v, f = trimesh.remesh.subdivide(v, f)
    return validate(v, f)


@dataclass(frozen=True)
class FitCase:
    """A generated fitting problem: the mask of `mesh` at `T_cam_obj` seen by `camera`."""

    mesh: Mesh
    camera: PinholeCamera
    T_cam_obj: np.ndarray
    mask: np.ndarray


def default_camera() -> PinholeCamera:
    """640 x 480, 60 degree horizontal field of view."""
    return PinholeCamera(554.3, 554.3, 319.5, 239.5, 640, 480)


def random_view(mesh: Mesh, camera: PinholeCamera, rng: np.random.Generator,
                distance: tuple[float, float] = (1.6, 3.0)) -> np.ndarray:
    """Draw a T_cam_obj that sees the object from a random robot-like viewpoint."""
    az = rng.uniform(0, 2 * np.pi)
    el = np.deg2rad(rng.uniform(5, 50))
    roll = np.deg2rad(rng.uniform(-15, 15))
    R = viewpoint_rotation(az, el, roll)
    centre = (mesh.vertices.min(0) + mesh.vertices.max(0)) / 2
    z = rng.uniform(*distance) * max(mesh.extents.max(), 0.3)
    # object centre somewhere in the middle 40 % of the image
    u = camera.cx + rng.uniform(-0.2, 0.2) * camera.width
    v = camera.cy + rng.uniform(-0.2, 0.2) * camera.height
    target = camera.backproject(np.array([[u, v]]), z)[0]
    return make_T(R, target - R @ centre)


def perturb(T: np.ndarray, rng: np.random.Generator, angle_deg: float, trans_frac: float
            ) -> np.ndarray:
    """Turn T by exactly `angle_deg` about a random axis and shift it by `trans_frac` x distance.

    The rotation is about the object origin; the shift has a random direction.
    """
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    d = rng.normal(size=3)
    d /= np.linalg.norm(d)
    out = T.copy()
    out[:3, :3] = from_rotvec(axis * np.deg2rad(angle_deg)) @ T[:3, :3]
    out[:3, 3] = T[:3, 3] + d * trans_frac * np.linalg.norm(T[:3, 3])
    return out


def make_case(mesh: Mesh, rng: np.random.Generator, camera: PinholeCamera | None = None
              ) -> FitCase:
    """Render the exact mask of `mesh` from a random view."""
    from .render import hard_silhouette
    camera = camera or default_camera()
    T = random_view(mesh, camera, rng)
    mask = hard_silhouette(mesh.vertices @ T[:3, :3].T + T[:3, 3], mesh.faces, camera)
    return FitCase(mesh, camera, T, mask.astype(np.uint8))
