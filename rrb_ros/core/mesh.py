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

"""Meshes: loading with trimesh, validation, decimation to a face budget, boxes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import trimesh


class MeshError(ValueError):
    """A mesh file that cannot be used (missing, unreadable, empty, non-finite, bad faces)."""


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh in its object frame (metres), as numpy arrays."""

    vertices: np.ndarray
    """(V, 3) float64 vertex positions."""
    faces: np.ndarray
    """(F, 3) int64 vertex indices, counter-clockwise seen from outside where known."""
    watertight: bool = False
    """True when every edge is shared by exactly two faces and the faces are wound consistently
    (then the silhouette is that of the front faces: back faces may be culled)."""

    @property
    def extents(self) -> np.ndarray:
        """Axis-aligned size (3,) of the mesh in its own frame."""
        return self.vertices.max(0) - self.vertices.min(0)

    @property
    def radius(self) -> float:
        """Largest distance of a vertex from the object origin."""
        return float(np.linalg.norm(self.vertices, axis=1).max())

    def to_trimesh(self) -> trimesh.Trimesh:
        """Return the mesh as a trimesh object (no processing)."""
        return trimesh.Trimesh(self.vertices, self.faces, process=False)

    def tensors(self, device: torch.device | str = 'cpu', dtype: torch.dtype = torch.float32
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(vertices (V, 3) float, faces (F, 3) long) on `device`."""
        return (torch.as_tensor(self.vertices, dtype=dtype, device=device),
                torch.as_tensor(self.faces, dtype=torch.long, device=device))


def validate(vertices: np.ndarray, faces: np.ndarray, name: str = 'mesh') -> Mesh:
    """Check a vertex/face array pair and return a Mesh; raise MeshError saying what is wrong."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3 or v.shape[0] < 3:
        raise MeshError(f'{name}: vertices must be (V>=3, 3), got {v.shape}')
    if f.ndim != 2 or f.shape[1] != 3 or f.shape[0] < 1:
        raise MeshError(f'{name}: no triangles (faces {f.shape})')
    if not np.issubdtype(f.dtype, np.integer):
        raise MeshError(f'{name}: face indices must be integers, got {f.dtype}')
    if not np.all(np.isfinite(v)):
        raise MeshError(f'{name}: vertices contain NaN or inf')
    if f.min() < 0 or f.max() >= v.shape[0]:
        raise MeshError(f'{name}: face index out of range [0, {v.shape[0]})')
    f = f.astype(np.int64)
    area2 = np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)
    keep = area2 > 1e-12 * max(float(np.ptp(v, axis=0).max()) ** 2, 1e-30)
    if not keep.any():
        raise MeshError(f'{name}: all triangles are degenerate')
    f = f[keep]
    tm = trimesh.Trimesh(v, f, process=False)
    # faces flipped here and there (CAD and STL exports) would cull front faces
    return Mesh(v, f, bool(tm.is_watertight and tm.is_winding_consistent))


def load_mesh(path: str | Path) -> Mesh:
    """Load obj/ply/stl/off/glb/... with trimesh (scenes are flattened), validated."""
    path = Path(path)
    if not path.is_file():
        raise MeshError(f'mesh file not found: {path}')
    try:
        loaded = trimesh.load(str(path), force='mesh', process=False)
    except Exception as exc:  # trimesh raises many types for bad files
        raise MeshError(f'cannot read mesh {path}: {exc}') from None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise MeshError(f'{path}: no triangles in file')
    # STL and some OBJ exporters repeat vertices per face; glTF splits them at UV and normal
    # seams: merged on position alone, the surface is closed again (and decimates)
    loaded.merge_vertices(merge_tex=True, merge_norm=True)
    return validate(loaded.vertices, loaded.faces, name=str(path))


def unit_warning(mesh: Mesh, name: str = 'mesh') -> str | None:
    """Return a warning when the mesh's size suggests units other than metres, else None.

    Poses come out in the mesh's units: a chair modelled in millimetres would sit kilometres
    away. Objects are taken to be between 1 cm and 20 m across.
    """
    size = float(mesh.extents.max())
    if 0.01 <= size <= 20.0:
        return None
    unit = 'millimetres' if size > 20.0 else 'kilometres or a wrong scale'
    return (f'{name} is {size:.4g} m across: is it in {unit}? Meshes must be in metres '
            '(poses come out in the mesh units)')


def decimate(mesh: Mesh, max_faces: int, min_iou: float = 0.97) -> Mesh:
    """Reduce the mesh towards `max_faces` triangles by quadric decimation; no-op if small.

    Quadric decimation can tear meshes made of overlapping parts, so every result is checked:
    its silhouettes from six axis views must match the original's (IoU >= min_iou); otherwise a
    gentler setting is tried, and the original mesh is returned if none passes.
    """
    if max_faces <= 0 or len(mesh.faces) <= max_faces:
        return mesh
    try:
        import fast_simplification
    except ImportError:
        raise MeshError(f'a mesh of {len(mesh.faces)} faces needs decimating to {max_faces}: '
                        'pip install fast-simplification (requirements.txt)') from None
    for agg in (5.0, 2.0, 0.5):
        v, f = fast_simplification.simplify(mesh.vertices, mesh.faces.astype(np.int32),
                                            target_count=max_faces, agg=agg)
        try:
            out = validate(v, f)
        except MeshError:
            continue
        if _silhouettes_agree(mesh, out, min_iou):
            return out
    return mesh


def _silhouettes_agree(a: Mesh, b: Mesh, min_iou: float, size: int = 96) -> bool:
    """Check that orthographic silhouettes along x, y and z agree to IoU >= min_iou."""
    import cv2
    lo, hi = a.vertices.min(0), a.vertices.max(0)
    scale = (size - 4) / max(float((hi - lo).max()), 1e-12)
    for axis in range(3):
        u, v = [k for k in range(3) if k != axis]
        masks = []
        for m in (a, b):
            img = np.zeros((size, size), np.uint8)
            xy = np.round(((m.vertices[:, [u, v]] - lo[[u, v]]) * scale + 2) * 16).astype(np.int32)
            for tri in xy[m.faces]:
                cv2.fillConvexPoly(img, tri, 1, shift=4)
            masks.append(img > 0)
        union = np.count_nonzero(masks[0] | masks[1])
        if union and np.count_nonzero(masks[0] & masks[1]) / union < min_iou:
            return False
    return True


def footprint_origin(vertices: np.ndarray) -> np.ndarray:
    """Return the (3,) origin of an object frame standing on z = 0 for these vertices.

    The centre of their box in x and y, at their lowest z: the centre of the footprint.
    """
    lo, hi = vertices.min(0), vertices.max(0)
    return np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])


def box_corners(mesh: Mesh) -> np.ndarray:
    """(8, 3) corners of the mesh's axis-aligned box in its own frame."""
    lo, hi = mesh.vertices.min(0), mesh.vertices.max(0)
    idx = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
    return np.where(idx == 0, lo, hi)
