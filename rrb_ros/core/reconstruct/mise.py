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

"""Multiresolution IsoSurface Extraction (MISE) and marching cubes, as ONet's generator does it.

The octree of ONet's `libmise` is kept as dense arrays over the finest grid (resolution
R = resolution0 * 2**upsampling_steps, R + 1 grid points per axis):

1. Evaluate the (resolution0 + 1)^3 coarse grid points.
2. A leaf voxel is *active* when the known grid points on its closed boundary include one at or
   above the threshold and one at or below it. Because points that a finer neighbour added on a
   shared face count too, the neighbours of the surface get refined as well, as in the original.
   Active voxels below the finest level split into 8, their 27 lattice points are queued.
3. Evaluate the queued points and repeat until nothing is queued.
4. Densify: every never-evaluated point takes the value of its predecessor along x, then y,
   then z (ONet's `to_dense`), i.e. the coarse value of the voxel that holds it.

Marching cubes then runs on the grid padded with -1e6 so the mesh is closed, and vertex indices
(i, j, k) map to (1 + padding) * ((i, j, k) / R - 0.5): the unit cube plus the padding.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..mesh import decimate, Mesh, validate

LogitsFn = Callable[[np.ndarray], np.ndarray]
"""Points (N, 3) float32 in the padded cube -> occupancy logits (N,)."""

_MAX_GRID_POINTS = 2 ** 28


def logit(probability: float) -> float:
    """Return log(p / (1 - p)): ONet's threshold on probabilities turned into one on logits."""
    if not 0.0 < probability < 1.0:
        raise ValueError(f'threshold must be a probability in (0, 1), got {probability}')
    return float(np.log(probability) - np.log(1.0 - probability))


class MultiresolutionGrid:
    """The state of MISE: which grid points exist, which are known, and the leaf voxels.

    Use like ONet's `MISE`: `points = grid.query()`, evaluate them, `grid.update(points,
    values)`, until `query()` returns nothing; then `to_dense()`.
    """

    def __init__(self, resolution0: int, depth: int, threshold: float) -> None:
        """Set up the coarse grid; `threshold` applies to the values given to `update`."""
        self.resolution0 = int(resolution0)
        self.depth = int(depth)
        self.threshold = float(threshold)
        self.resolution = self.resolution0 << self.depth
        n = self.resolution + 1
        if n ** 3 > _MAX_GRID_POINTS:
            raise ValueError(f'finest grid {n}^3 is too large; lower resolution0 or the steps')
        self.values = np.zeros((n, n, n), np.float64)
        self.known = np.zeros((n, n, n), bool)
        self.exists = np.zeros((n, n, n), bool)
        s0 = 1 << self.depth
        self.exists[::s0, ::s0, ::s0] = True
        # level of the leaf voxel holding each finest cell (0 = coarse voxel)
        self.cell_level = np.zeros((self.resolution,) * 3, np.int8)

    def query(self) -> np.ndarray:
        """Integer lattice coordinates (M, 3) of the points still to be evaluated."""
        return np.argwhere(self.exists & ~self.known).astype(np.int64)

    def update(self, points: np.ndarray, values: np.ndarray) -> None:
        """Store values (M,) at lattice points (M, 3), then split the active voxels."""
        points = np.asarray(points, np.int64)
        values = np.asarray(values, np.float64).reshape(-1)
        if points.ndim != 2 or points.shape[1] != 3 or len(points) != len(values):
            raise ValueError(f'points (M, 3) and values (M,) expected, got {points.shape} and '
                             f'{values.shape}')
        i, j, k = points.T
        if len(points) and (points.min() < 0 or points.max() > self.resolution
                            or not self.exists[i, j, k].all()):
            raise ValueError('point not in grid')
        self.values[i, j, k] = values
        self.known[i, j, k] = True
        self._subdivide()

    def _subdivide(self) -> None:
        R = self.resolution
        above = self.known & (self.values >= self.threshold)
        below = self.known & (self.values <= self.threshold)
        # a finest cell touches a point if the point is one of its 8 corners
        cell_above = np.zeros((R, R, R), bool)
        cell_below = np.zeros((R, R, R), bool)
        for di in (0, 1):
            for dj in (0, 1):
                for dk in (0, 1):
                    cell_above |= above[di:di + R, dj:dj + R, dk:dk + R]
                    cell_below |= below[di:di + R, dj:dj + R, dk:dk + R]
        # finest levels first, so children made in this pass are not split again in it
        for level in range(self.depth - 1, -1, -1):
            size = 1 << (self.depth - level)
            n = R // size
            leaf = self.cell_level[::size, ::size, ::size] == level
            active = leaf & _block_any(cell_above, n, size) & _block_any(cell_below, n, size)
            if not active.any():
                continue
            blocks = self.cell_level.reshape(n, size, n, size, n, size)
            np.copyto(blocks, np.int8(level + 1), where=active[:, None, :, None, :, None])
            half = size // 2
            corners = np.zeros((2 * n + 1,) * 3, bool)
            for di in (0, 1, 2):
                for dj in (0, 1, 2):
                    for dk in (0, 1, 2):
                        corners[di:di + 2 * n:2, dj:dj + 2 * n:2, dk:dk + 2 * n:2] |= active
            self.exists[::half, ::half, ::half] |= corners

    def to_dense(self) -> np.ndarray:
        """Return the (R + 1)^3 grid; unknown points copy their x, then y, then z predecessor."""
        out = np.where(self.known, self.values, np.nan)
        for axis in range(3):
            out = _forward_fill(out, axis)
        if np.isnan(out).any():
            raise RuntimeError('MISE left grid points without a value')
        return out


def _block_any(cells: np.ndarray, n: int, size: int) -> np.ndarray:
    return cells.reshape(n, size, n, size, n, size).any(axis=(1, 3, 5))


def _forward_fill(a: np.ndarray, axis: int) -> np.ndarray:
    """Replace NaNs by the last non-NaN value before them along `axis`."""
    shape = [1, 1, 1]
    shape[axis] = a.shape[axis]
    idx = np.arange(a.shape[axis], dtype=np.int32).reshape(shape)
    idx = np.where(np.isnan(a), 0, idx)
    np.maximum.accumulate(idx, axis=axis, out=idx)
    return np.take_along_axis(a, idx, axis=axis)


def evaluate_grid(logits_fn: LogitsFn, threshold: float = 0.2, resolution0: int = 32,
                  upsampling_steps: int = 2, padding: float = 0.1, batch_points: int = 100_000
                  ) -> tuple[np.ndarray, int]:
    """Run MISE and return (dense logit grid (n, n, n) float64, number of points evaluated).

    n = resolution0 * 2**upsampling_steps + 1; with `upsampling_steps` 0 the plain
    resolution0^3 grid over the padded cube is evaluated instead, as ONet does.
    """
    _check_settings(threshold, resolution0, upsampling_steps, padding, batch_points)
    box_size = 1.0 + padding
    if upsampling_steps == 0:
        axis = np.linspace(-0.5, 0.5, resolution0, dtype=np.float32)
        grid = np.stack(np.meshgrid(axis, axis, axis, indexing='ij'), -1).reshape(-1, 3)
        values = _evaluate(logits_fn, np.float32(box_size) * grid, batch_points)
        return values.reshape((resolution0,) * 3), len(grid)
    mise = MultiresolutionGrid(resolution0, upsampling_steps, logit(threshold))
    n_evaluated = 0
    points = mise.query()
    while len(points):
        # same arithmetic as ONet: float32 lattice / R, centred, scaled to the padded box
        p = points.astype(np.float32) / np.float32(mise.resolution)
        p = np.float32(box_size) * (p - np.float32(0.5))
        mise.update(points, _evaluate(logits_fn, p, batch_points))
        n_evaluated += len(points)
        points = mise.query()
    return mise.to_dense(), n_evaluated


def _evaluate(logits_fn: LogitsFn, points: np.ndarray, batch_points: int) -> np.ndarray:
    out = []
    for start in range(0, len(points), batch_points):
        chunk = points[start:start + batch_points]
        values = np.asarray(_to_numpy(logits_fn(chunk)), np.float64).reshape(-1)
        if values.shape != (len(chunk),):
            raise ValueError(f'logits_fn returned {values.shape[0]} values for {len(chunk)} '
                             'points')
        if np.isnan(values).any():
            raise ValueError('logits_fn returned NaN')
        out.append(values)
    return np.concatenate(out) if out else np.zeros(0)


def _to_numpy(values) -> np.ndarray:
    if hasattr(values, 'detach'):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def grid_to_mesh(grid: np.ndarray, threshold: float = 0.2, padding: float = 0.1) -> Mesh:
    """Marching cubes on a logit grid (nx, ny, nz) spanning the padded cube; a closed Mesh."""
    from skimage import measure

    grid = np.asarray(grid, np.float64)
    if grid.ndim != 3 or min(grid.shape) < 2:
        raise ValueError(f'grid must be 3-D with at least 2 points per axis, got {grid.shape}')
    level = logit(threshold)
    if not (grid >= level).any():
        raise ValueError(f'no surface: the occupancy probability is below {threshold} '
                         'everywhere in the cube')
    padded = np.pad(grid, 1, mode='constant', constant_values=-1e6)
    # inside holds the larger values; with (i, j, k) as (x, y, z) 'ascent' winds faces outwards
    verts, faces, _, _ = measure.marching_cubes(padded, level, gradient_direction='ascent',
                                                allow_degenerate=False)
    verts = verts - 1.0
    verts /= np.array(grid.shape, np.float64) - 1.0
    verts = (1.0 + padding) * (verts - 0.5)
    return validate(verts, faces, name='reconstruction')


def extract_mesh(logits_fn: LogitsFn, threshold: float = 0.2, resolution0: int = 32,
                 upsampling_steps: int = 2, padding: float = 0.1, batch_points: int = 100_000,
                 max_faces: int | None = None) -> Mesh:
    """Extract the surface {sigmoid(logit) = threshold} of an occupancy function as a Mesh.

    Args:
        logits_fn: maps points (N, 3) float32 in the cube [-(1 + padding) / 2, (1 + padding) / 2]^3
            to occupancy logits (N,) (numpy or torch); called with at most `batch_points`.
        threshold: probability of the surface (ONet img2mesh: 0.2, a logit of -1.386).
        resolution0: voxels per axis of the coarse grid (its points: resolution0 + 1 per axis).
        upsampling_steps: times active voxels are halved (2: a 129^3 finest grid from 32).
        padding: the cube's margin around the unit cube.
        batch_points: largest number of points per call of `logits_fn`.
        max_faces: if given, decimate the mesh towards this many faces.

    Returns:
        The closed mesh in the canonical frame (unit cube units), faces wound outwards.

    """
    grid, _ = evaluate_grid(logits_fn, threshold, resolution0, upsampling_steps, padding,
                            batch_points)
    mesh = grid_to_mesh(grid, threshold, padding)
    if max_faces is not None:
        if max_faces < 4:
            raise ValueError(f'max_faces must be >= 4, got {max_faces}')
        mesh = decimate(mesh, int(max_faces))
    return mesh


def _check_settings(threshold: float, resolution0: int, upsampling_steps: int, padding: float,
                    batch_points: int) -> None:
    logit(threshold)
    if int(resolution0) != resolution0 or resolution0 < 2:
        raise ValueError(f'resolution0 must be an integer >= 2, got {resolution0}')
    if int(upsampling_steps) != upsampling_steps or upsampling_steps < 0:
        raise ValueError(f'upsampling_steps must be an integer >= 0, got {upsampling_steps}')
    if not np.isfinite(padding) or padding < 0:
        raise ValueError(f'padding must be >= 0, got {padding}')
    if int(batch_points) != batch_points or batch_points < 1:
        raise ValueError(f'batch_points must be a positive integer, got {batch_points}')
