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

"""Refine a reconstruction's shape code until its silhouette matches the mask.

The encoder's code c is a guess from one image; where the image is ambiguous the decoded
shape is blurred (too thick, parts smeared). Once the pose is fitted, the camera of the view
is known in the canonical frame, and the paper's "rasterize and backprop" applies to the shape
as well: render the occupancy field's silhouette, compare it with the mask and move c by
gradient descent. The network's weights stay frozen, so c stays a code of the shape family
the network learnt; a pull towards the encoder's code keeps it near the first guess.

The silhouette of the field is rendered by sampling camera rays: on a square grid of rays over
the mask's box, `samples` points per ray where it crosses the padded canonical cube; the
probability that a ray hits the object is 1 - prod(1 - p_i) over its samples. Loss: binary
cross-entropy against the mask's share of each ray's cell (thin parts give fractional
targets), plus `prior_weight` * |c - c0|^2 / |c0|^2. Adam on c and, with `pose`, on a
similarity of the canonical frame (rotation vector, translation, log scale): the pose fitted to
the first, blurred mesh is itself a little off, and the code alone would bend the shape to
make up for it.

One view constrains the shape only across the line of sight: on objects unlike those the
network learnt, the refined shape can fit this view better and the others worse. That is why
`ObjectReconstructor` leaves it off unless asked (`refine_iterations`).
"""

from __future__ import annotations

from dataclasses import dataclass
import time

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..camera import PinholeCamera
from .mise import logit
from .onet import OccupancyNetworkBase


@dataclass
class RefineSettings:
    """How the shape code is refined against the mask (`iterations` = 0: not at all)."""

    iterations: int = 30
    """Adam steps on the code."""
    rays: int = 40
    """Rays per side of the square grid over the mask's box."""
    samples: int = 40
    """Samples per ray inside the canonical cube."""
    lr: float = 0.05
    """Adam step size (code units)."""
    prior_weight: float = 0.1
    """Weight of |c - c0|^2 / |c0|^2, the pull towards the encoder's code."""
    margin: float = 0.1
    """Background around the mask's box covered by rays, as a fraction of its longer side."""
    padding: float = 0.1
    """Padding of the canonical cube the field lives in (ONet's: 0.1)."""
    pose: bool = True
    """Refine the fitted pose (and scale) with the code."""
    pose_lr: float = 0.01
    """Adam step size of the pose (radians, canonical units, log scale)."""
    surface_probability: float = 0.2
    """Probability with which a sample on the surface (at `threshold`) counts as inside the
    object: a ray's many samples multiply, so a ray grazing the surface must not count as a
    hit. The field's logits are shifted to give it, whatever the threshold."""
    threshold: float | None = None
    """Occupancy probability of the surface the mesh will be extracted at (None: the
    network's own)."""

    def check(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        if self.iterations < 0:
            raise ValueError(f'refine iterations must be >= 0, got {self.iterations}')
        if self.rays < 2 or self.samples < 2:
            raise ValueError(f'need rays >= 2 and samples >= 2, got {self.rays} and '
                             f'{self.samples}')
        if not 0 < self.surface_probability < 1 or not (
                self.threshold is None or 0 < self.threshold < 1):
            raise ValueError('surface_probability and threshold must be in (0, 1), got '
                             f'{self.surface_probability} and {self.threshold}')
        if not (self.lr > 0 and self.pose_lr > 0 and self.prior_weight >= 0 and self.margin >= 0
                and self.padding >= 0):
            raise ValueError('need lr > 0, pose_lr > 0, prior_weight >= 0, margin >= 0 and '
                             f'padding >= 0, got {self.lr}, {self.pose_lr}, {self.prior_weight}, '
                             f'{self.margin}, {self.padding}')


@dataclass(frozen=True)
class CodeRefinement:
    """The refined code and how far the silhouette loss came down."""

    code: torch.Tensor
    """(1, c_dim) refined code."""
    loss_before: float
    """Silhouette cross-entropy of the encoder's code."""
    loss_after: float
    """... and of the refined code."""
    seconds: float
    S: np.ndarray
    """4x4 similarity of the canonical frame found with the code (identity without `pose`)."""


@dataclass(frozen=True)
class SilhouetteRays:
    """Rays through the canonical cube and the mask's coverage of each ray's cell."""

    origin: torch.Tensor
    """(3,) camera centre in the canonical frame."""
    directions: torch.Tensor
    """(R, 3) unit directions in the canonical frame."""
    near: torch.Tensor
    """(R,) distance along the ray where it enters the padded cube (0 on rays missing it) ..."""
    far: torch.Tensor
    """(R,) ... and where it leaves."""
    hits_cube: torch.Tensor
    """(R,) bool: the ray crosses the cube (rays that do not can only see background)."""
    target: torch.Tensor
    """(R,) share of the ray's pixel cell covered by the mask, in [0, 1]."""
    weight: torch.Tensor
    """(R,) share of the cell that is known (not hidden by other objects), in [0, 1]."""

    def points(self, samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Return (H, samples, 3) canonical points on the H rays that cross the cube.

        One point per equal stretch of the ray inside the cube: its middle, or a uniformly
        random place in it with a `generator` (no thin part then hides between samples).
        """
        hit = self.hits_cube
        k = torch.arange(samples, dtype=torch.float32)
        offset = (torch.rand(int(hit.sum()), samples, generator=generator)
                  if generator is not None else torch.full((int(hit.sum()), samples), 0.5))
        near, far = self.near[hit, None], self.far[hit, None]
        t = near + (far - near) * (k + offset) / samples
        return self.origin + t[..., None] * self.directions[hit, None, :]


def silhouette_rays(mask: np.ndarray, camera: PinholeCamera, T_cam_can: np.ndarray,
                    settings: RefineSettings, ignore: np.ndarray | None = None
                    ) -> SilhouetteRays:
    """Cast the grid of rays over the mask's box into the canonical frame.

    `T_cam_can` maps canonical points into the camera's optical frame; it may scale
    (a similarity: the fit works in canonical units, the camera in metres). `ignore` marks
    pixels that may hide the object (other objects): they count neither way.
    """
    mask = np.asarray(mask) != 0
    if mask.shape != (camera.height, camera.width):
        raise ValueError(f'mask {mask.shape} does not match the camera '
                         f'({camera.height}, {camera.width})')
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError('the mask is empty: no object pixels')
    T = np.asarray(T_cam_can, dtype=np.float64)
    if T.shape != (4, 4) or not np.isfinite(T).all() or abs(np.linalg.det(T[:3, :3])) < 1e-12:
        raise ValueError('T_cam_can must be a finite, invertible 4x4 transform')
    n = settings.rays
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    side = max(x1 - x0, y1 - y0) * (1 + 2 * settings.margin)
    left, top = (x0 + x1 - side) / 2, (y0 + y1 - side) / 2
    # the mask's share of each cell: resample the box (zero outside the image) by area
    cell = max(1, int(np.ceil(side / n)))
    size = cell * n
    px = left + (np.arange(size) + 0.5) * side / size
    py = top + (np.arange(size) + 0.5) * side / size
    ix, iy = np.floor(px).astype(int), np.floor(py).astype(int)
    okx, oky = (ix >= 0) & (ix < camera.width), (iy >= 0) & (iy < camera.height)

    def by_area(image: np.ndarray) -> np.ndarray:
        fine = np.zeros((size, size), np.float32)
        fine[np.ix_(oky, okx)] = image[np.ix_(iy[oky], ix[okx])]
        return cv2.resize(fine, (n, n), interpolation=cv2.INTER_AREA).reshape(-1)

    target = by_area(mask)
    weight = np.ones_like(target)
    if ignore is not None:
        ignore = np.asarray(ignore) != 0
        if ignore.shape != mask.shape:
            raise ValueError(f'ignore map is {ignore.shape}, the mask {mask.shape}')
        weight = 1 - by_area(ignore & ~mask)
    # rays through the cell centres, in the canonical frame
    c = left + (np.arange(n) + 0.5) * side / n
    r = top + (np.arange(n) + 0.5) * side / n
    u, v = np.meshgrid(c, r)
    d_cam = np.stack([(u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy,
                      np.ones_like(u)], -1).reshape(-1, 3)
    A_inv = np.linalg.inv(T[:3, :3])
    origin = -A_inv @ T[:3, 3]
    d = d_cam @ A_inv.T
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    # slab test against the padded cube
    h = (1 + settings.padding) / 2
    with np.errstate(divide='ignore', invalid='ignore'):
        t0, t1 = (-h - origin) / d, (h - origin) / d
    near = np.nanmax(np.minimum(t0, t1), axis=1)
    far = np.nanmin(np.maximum(t0, t1), axis=1)
    hits = (far > near) & (far > 0)
    near, far = np.where(hits, np.maximum(near, 0), 0), np.where(hits, far, 0)

    def f32(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(a, np.float32))

    return SilhouetteRays(f32(origin), f32(d), f32(near), f32(far), torch.from_numpy(hits),
                          f32(target), f32(weight))


def similarity(omega: torch.Tensor, tau: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """4x4 similarity q = exp(sigma) R(omega) p + tau (R from the rotation vector omega)."""
    zero = torch.zeros((), dtype=omega.dtype)
    K = torch.stack([torch.stack([zero, -omega[2], omega[1]]),
                     torch.stack([omega[2], zero, -omega[0]]),
                     torch.stack([-omega[1], omega[0], zero])])
    top = torch.cat([torch.exp(sigma) * torch.linalg.matrix_exp(K), tau[:, None]], 1)
    return torch.cat([top, torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=omega.dtype)])


def silhouette_loss(net: OccupancyNetworkBase, rays: SilhouetteRays, c: torch.Tensor,
                    samples: int, S: torch.Tensor | None = None,
                    generator: torch.Generator | None = None, shift: float = 0.0
                    ) -> torch.Tensor:
    """Weighted mean cross-entropy of the rays' hit probabilities under code c and the mask.

    `samples` points per ray (see `SilhouetteRays.points`). With `S` (a `similarity`), the
    field is moved by it first: it is queried at S^-1 q. `shift` is added to the logits of the
    samples (see `RefineSettings.surface_probability`).
    """
    hit = rays.hits_cube
    pts = rays.points(samples, generator).reshape(-1, 3)
    if S is not None:
        A = S[:3, :3]  # scale times rotation: A^-1 = A^T / scale^2
        pts = (pts - S[:3, 3]) @ A / (A[:, 0] ** 2).sum()
    logits = net.decode(pts[None].to(net.device), c).reshape(int(hit.sum()), -1) + shift
    # log(1 - p_hit) = sum_i log(1 - sigmoid(l_i)) = -sum_i softplus(l_i)
    log_miss = torch.zeros(len(hit), device=net.device)
    log_miss = log_miss.masked_scatter(hit.to(net.device), -F.softplus(logits).sum(1))
    log_hit = torch.log(-torch.expm1(log_miss.clamp(max=-1e-6)))
    target, weight = rays.target.to(net.device), rays.weight.to(net.device)
    ce = -(target * log_hit + (1 - target) * log_miss)
    return (weight * ce).sum() / weight.sum().clamp_min(1e-6)


def refine_code(net: OccupancyNetworkBase, c0: torch.Tensor, mask: np.ndarray,
                camera: PinholeCamera, T_cam_can: np.ndarray,
                settings: RefineSettings | None = None, ignore: np.ndarray | None = None
                ) -> CodeRefinement:
    """Move the code c0 (1, c_dim) until the field's silhouette at T_cam_can matches the mask.

    With `settings.pose`, a similarity S of the canonical frame is refined with the code: the
    shape then sits at T_cam_can @ S. `ignore` marks pixels that may hide the object. The
    network's weights and mode are left as they were.
    """
    settings = settings or RefineSettings()
    settings.check()
    t_start = time.perf_counter()
    rays = silhouette_rays(mask, camera, T_cam_can, settings, ignore)
    c0 = c0.detach().to(net.device)
    with net.evaluating():
        return _descend(net, c0, rays, settings, t_start)


def _descend(net: OccupancyNetworkBase, c0: torch.Tensor, rays: SilhouetteRays,
             settings: RefineSettings, t_start: float) -> CodeRefinement:
    threshold = net.threshold if settings.threshold is None else settings.threshold
    shift = logit(settings.surface_probability) - logit(threshold)
    if not rays.hits_cube.any() or settings.iterations == 0:
        with torch.no_grad():
            loss = (float(silhouette_loss(net, rays, c0, settings.samples, shift=shift))
                    if rays.hits_cube.any() else np.nan)
        return CodeRefinement(c0, loss, loss, time.perf_counter() - t_start, np.eye(4))
    grads = [p.requires_grad for p in net.parameters()]
    net.requires_grad_(False)
    try:
        c = c0.clone().requires_grad_(True)
        pose = [torch.zeros(3, requires_grad=True), torch.zeros(3, requires_grad=True),
                torch.zeros((), requires_grad=True)]
        groups = [{'params': [c], 'lr': settings.lr}]
        if settings.pose:
            groups.append({'params': pose, 'lr': settings.pose_lr})
        opt = torch.optim.Adam(groups)
        norm = float((c0 ** 2).sum()) or 1.0
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            first = float(silhouette_loss(net, rays, c0, settings.samples, shift=shift))
        for _ in range(settings.iterations):
            sil = silhouette_loss(net, rays, c, settings.samples,
                                  similarity(*pose) if settings.pose else None, generator, shift)
            loss = sil + settings.prior_weight * ((c - c0) ** 2).sum() / norm
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            S = similarity(*pose)
            last = float(silhouette_loss(net, rays, c, settings.samples, S, shift=shift))
    finally:
        for p, g in zip(net.parameters(), grads):
            p.requires_grad_(g)
    return CodeRefinement(c.detach(), first, last, time.perf_counter() - t_start,
                          S.double().numpy())
