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

"""Coarse viewpoint initialisation without a learned network.

Rotations come from a grid of viewpoints (azimuth x elevation x in-plane rotation, the
parameters Render for CNN predicts); for each, the translation puts the projected mesh's box
centre on the mask's box centre and the distance makes the projected size match the mask's.
The fitter scores all of them in one batched render and refines the best few.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .camera import PinholeCamera
from .geometry import viewpoint_rotation


@dataclass
class ViewpointGrid:
    """Viewpoints tried when no initial pose is known (degrees)."""

    azimuths: int = 12
    """Number of azimuths spread evenly over 360 degrees."""
    elevations: list[float] = field(default_factory=lambda: [-40.0, -10.0, 20.0, 50.0, 80.0])
    """Camera elevations above the object's xy plane (object +z is up)."""
    inplanes: list[float] = field(default_factory=lambda: [-30.0, 0.0, 30.0])
    """In-plane rotations of the image about the optical axis."""

    def rotations(self) -> np.ndarray:
        """(N, 3, 3) R_cam_obj of every grid viewpoint."""
        out = [viewpoint_rotation(np.deg2rad(a), np.deg2rad(e), np.deg2rad(i))
               for a in np.arange(self.azimuths) * 360.0 / self.azimuths
               for e in self.elevations for i in self.inplanes]
        return np.stack(out)


def place_in_mask(rotations: np.ndarray, vertices: np.ndarray, camera: PinholeCamera,
                  mask_box: tuple[float, float, float, float]) -> np.ndarray:
    """Compute translations (N, 3) fitting each rotated mesh's projection to the mask box.

    mask_box: (x0, y0, x1, y1) pixel box of the mask. The mesh is first placed at a nominal
    distance on the ray through the box centre; the distance is then scaled by the ratio of
    projected to observed box diagonals, and the lateral offset corrects the centre.
    """
    x0, y0, x1, y1 = mask_box
    centre = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0])
    diag_mask = max(np.hypot(x1 - x0, y1 - y0), 1.0)
    radius = float(np.linalg.norm(vertices - vertices.mean(0), axis=1).max())
    z0 = max(camera.fx, camera.fy) * 2.0 * radius / diag_mask
    ray = camera.backproject(centre[None], 1.0)[0]
    out = []
    for R in rotations:
        t = ray * z0
        for _ in range(2):  # projection is nonlinear in t; two corrections are plenty
            uv = camera.project(vertices @ R.T + t)
            lo, hi = uv.min(0), uv.max(0)
            diag = max(np.hypot(*(hi - lo)), 1e-6)
            z = t[2] * diag / diag_mask
            shift = centre - (lo + hi) / 2.0
            t = camera.backproject(((t[:2] / t[2]) * [camera.fx, camera.fy]
                                    + [camera.cx, camera.cy] + shift)[None], z)[0]
        out.append(t)
    return np.stack(out)


def upright_rotations(up_cam: np.ndarray, count: int = 36) -> np.ndarray:
    """(count, 3, 3) R_cam_obj whose object +z is `up_cam` (the floor normal, camera frame).

    The object stands upright on the floor; only its yaw about the normal varies, in `count`
    even steps. These replace the viewpoint grid when the ground plane is known.
    """
    n = np.asarray(up_cam, np.float64)
    n = n / np.linalg.norm(n)
    a = np.cross(n, [1.0, 0.0, 0.0] if abs(n[0]) < 0.9 else [0.0, 1.0, 0.0])
    a /= np.linalg.norm(a)
    b = np.cross(n, a)
    out = []
    for yaw in np.arange(count) * 2 * np.pi / count:
        x = np.cos(yaw) * a + np.sin(yaw) * b
        out.append(np.column_stack([x, np.cross(n, x), n]))
    return np.stack(out)
