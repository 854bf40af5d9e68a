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

"""Overlays for people: fitted silhouette outlines and object axes drawn on the image."""

from __future__ import annotations

import cv2
import numpy as np

from .camera import PinholeCamera
from .mesh import Mesh
from .render import hard_silhouette

PALETTE = [(255, 64, 64), (64, 200, 64), (64, 128, 255), (255, 200, 0), (200, 64, 255),
           (0, 220, 220)]
"""RGB colours given to objects in turn."""


def draw_pose(image_rgb: np.ndarray, mesh: Mesh, T_cam_obj: np.ndarray,  # noqa: N803
              camera: PinholeCamera, color: tuple[int, int, int] = PALETTE[0],
              label: str | None = None) -> np.ndarray:
    """Draw the silhouette outline and the x (red) / y (green) / z (blue) axes in place.

    image_rgb: (H, W, 3) uint8, the camera's image. Returns the same array.
    """
    R, t = T_cam_obj[:3, :3], T_cam_obj[:3, 3]
    sil = hard_silhouette(mesh.vertices @ R.T + t, mesh.faces, camera).astype(np.uint8)
    contours, _ = cv2.findContours(sil, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(image_rgb, contours, -1, color, 2, cv2.LINE_AA)
    axis_len = 0.5 * float(mesh.extents.max())
    pts = np.vstack([np.zeros(3), np.eye(3) * axis_len]) @ R.T + t
    if np.all(pts[:, 2] > 1e-3):
        uv = camera.project(pts)
        if np.all(np.abs(uv) < 1e5):
            o = tuple(int(round(c)) for c in uv[0])
            for k, c in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
                cv2.line(image_rgb, o, tuple(int(round(v)) for v in uv[k + 1]), c, 2,
                         cv2.LINE_AA)
            if label:
                cv2.putText(image_rgb, label, (o[0] + 4, o[1] - 6), cv2.FONT_HERSHEY_SIMPLEX,
                            0.5, color, 1, cv2.LINE_AA)
    return image_rgb


def mask_to_rgb(mask: np.ndarray) -> np.ndarray:
    """Paint a mask grey on dark (for overlays when no camera image exists)."""
    img = np.full(mask.shape + (3,), 40, np.uint8)
    img[np.asarray(mask) != 0] = 150
    return img
