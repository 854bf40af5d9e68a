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

"""Differentiable soft silhouette rasteriser (SoftRas / PyTorch3D `SoftSilhouetteShader` sense).

For pixel p and triangle f (projected with a pinhole K, ROS optical convention), let d(p, f) be
the distance from p to the triangle's boundary, positive inside. The triangle's coverage is
D_f(p) = sigmoid(sign * d^2 / sigma) and the silhouette is the probabilistic union
S(p) = 1 - prod_f (1 - D_f(p)). We accumulate log(1 - D) = -softplus(sign * d^2 / sigma), which
is stable where D saturates to 1.

`render_silhouette` only evaluates (face, pixel) pairs within the blur radius
r = sqrt(cutoff * sigma) of each face (beyond it a triangle adds less than exp(-cutoff) to
log(1 - S)), found per pixel row of the face's box (scanline spans); its cost scales with the
pixels the triangles cover. The dense `render_silhouette_dense` evaluates all pairs and is the
reference for tests and benchmarks.
Both are plain, device-agnostic torch; gradients flow to the camera-frame vertices.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from .camera import PinholeCamera


@dataclass
class RasterSettings:
    """How the soft silhouette is rasterised."""

    sigma: float = 1.0
    """Sharpness of the triangle edges (pixels^2); smaller is sharper (SoftRas's sigma)."""
    cutoff: float = 8.0
    """Pairs with d^2 / sigma beyond this outside a triangle are skipped (blur radius)."""
    znear: float = 1e-3
    """Triangles with a vertex closer than this (metres, along the optical axis) are dropped."""
    cull_backfaces: bool = False
    """Skip triangles facing away from the camera: halves the work, exact for closed meshes."""

    @property
    def blur_radius(self) -> float:
        """Distance (pixels) beyond which a triangle no longer contributes."""
        return math.sqrt(self.cutoff * self.sigma)


def project(verts_cam: torch.Tensor, K: torch.Tensor) -> torch.Tensor:  # noqa: N803
    """Project (B, V, 3) optical-frame points with K (3, 3) or (B, 3, 3) to (B, V, 2) pixels."""
    if K.dim() == 2:
        K = K.expand(verts_cam.shape[0], 3, 3)
    z = verts_cam[..., 2:3].clamp_min(1e-9)
    xy = verts_cam[..., :2] / z
    fx, fy = K[:, 0, 0, None], K[:, 1, 1, None]
    cx, cy = K[:, 0, 2, None], K[:, 1, 2, None]
    return torch.stack([fx * xy[..., 0] + cx, fy * xy[..., 1] + cy], -1)


def _check_inputs(verts_cam: torch.Tensor, faces: torch.Tensor, K: torch.Tensor,  # noqa: N803
                  width: int, height: int) -> None:
    if verts_cam.dim() != 3 or verts_cam.shape[-1] != 3:
        raise ValueError(f'verts_cam must be (B, V, 3), got {tuple(verts_cam.shape)}')
    if faces.dim() != 2 or faces.shape[-1] != 3 or faces.dtype not in (torch.int64, torch.int32):
        raise ValueError(f'faces must be (F, 3) integer, got {tuple(faces.shape)} {faces.dtype}')
    if K.shape not in ((3, 3), (verts_cam.shape[0], 3, 3)):
        raise ValueError(f'K must be (3, 3) or (B, 3, 3), got {tuple(K.shape)}')
    if faces.device != verts_cam.device or K.device != verts_cam.device:
        raise ValueError('verts_cam, faces and K must be on the same device')
    if width <= 0 or height <= 0:
        raise ValueError(f'image size must be positive, got {width}x{height}')


def _project_faces(verts_cam: torch.Tensor, faces: torch.Tensor, K: torch.Tensor,  # noqa: N803
                   settings: RasterSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """Projected triangles (B, F, 3, 2) and which of them are rasterised (B, F) bool."""
    tri3 = verts_cam[:, faces]                              # (B, F, 3, 3)
    tri = project(verts_cam, K)[:, faces]                   # (B, F, 3, 2)
    with torch.no_grad():
        valid = (tri3[..., 2] > settings.znear).all(-1)
        e1, e2 = tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0]
        valid &= (e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0]).abs() > 1e-10
        if settings.cull_backfaces:
            n = torch.linalg.cross(tri3[:, :, 1] - tri3[:, :, 0], tri3[:, :, 2] - tri3[:, :, 0])
            valid &= (n * tri3[:, :, 0]).sum(-1) < 0
    return tri, valid


def _log_uncovered(p: torch.Tensor, a: torch.Tensor, e: torch.Tensor,
                   inv_len2: torch.Tensor, orient: torch.Tensor, sigma: float) -> torch.Tensor:
    """log(1 - D) for points p (..., 2) against triangles given by a, e (..., 3, 2).

    All arguments broadcast; `orient` is the sign of the triangle's area (...,).
    """
    w = p.unsqueeze(-2) - a                                  # (..., 3, 2)
    t = ((w * e).sum(-1) * inv_len2).clamp(0.0, 1.0)         # (..., 3)
    d = w - t.unsqueeze(-1) * e
    d2 = (d * d).sum(-1).amin(-1)                            # (..., )
    cross = e[..., 0] * w[..., 1] - e[..., 1] * w[..., 0]    # (..., 3)
    inside = ((cross * orient.unsqueeze(-1)) >= 0).all(-1)
    x = torch.where(inside, d2, -d2) / sigma
    return -F.softplus(x)


def _pair_terms(tri: torch.Tensor, pair_face: torch.Tensor, p: torch.Tensor, pix: torch.Tensor,
            n_pix: int, sigma: float):
    """Forward pass over candidate pairs (no autograd).

    Returns log(1 - S) per pixel (n_pix,) and per pair: the closest edge k, the parameter t_k
    of the closest point on it, the offset d_k (2, P) from that point to the pixel, and
    sigmoid(x) * sign, the factor of d log(1 - S) / d(d^2) (up to -1 / sigma).
    """
    # structure of arrays: one gather of a (10, nF) per-face table gives contiguous (P,) rows,
    # which vectorise far better than (P, 3, 2) blocks or strided columns
    e = tri.roll(-1, dims=1) - tri                                   # (nF, 3, 2) edges
    orient = (e[:, 0, 0] * e[:, 1, 1] - e[:, 0, 1] * e[:, 1, 0]).sign()
    inv = 1.0 / (e * e).sum(-1).clamp_min(1e-12)                      # (nF, 3)
    table = torch.cat([tri[:, :, 0].T, tri[:, :, 1].T, inv.T, orient[None]])   # (10, nF)
    rows = table.index_select(1, pair_face)                          # (10, P)
    vx, vy, inv_p, o = rows[0:3], rows[3:6], rows[6:9], rows[9]
    px, py = p[0], p[1]
    best = None
    for i in range(3):
        j = (i + 1) % 3
        ex, ey = vx[j] - vx[i], vy[j] - vy[i]
        wx, wy = px - vx[i], py - vy[i]
        c_in = (ex * wy - ey * wx).mul_(o) >= 0
        t = torch.addcmul(wx * ex, wy, ey).mul_(inv_p[i])
        t.clamp_(0.0, 1.0)
        dx, dy = wx.sub_(t * ex), wy.sub_(t * ey)
        d2 = torch.addcmul(dx * dx, dy, dy)
        if best is None:
            inside = c_in
            best = [d2, t, dx, dy, torch.zeros_like(pair_face)]
        else:
            inside &= c_in
            closer = d2 < best[0]    # keep the closest edge's terms, no (3, P) gather
            for slot, value in enumerate((d2, t, dx, dy)):
                best[slot] = torch.where(closer, value, best[slot])
            best[4] = torch.where(closer, i, best[4])
    d2, t_k, dx, dy, k = best
    sgn = inside.to(p.dtype).mul_(2.0).sub_(1.0)
    x = (sgn * d2).mul_(1.0 / sigma)
    acc = torch.zeros(n_pix, dtype=p.dtype, device=p.device)
    acc.index_add_(0, pix, F.softplus(x), alpha=-1.0)
    return acc, k, t_k, torch.stack([dx, dy]), torch.sigmoid(x).mul_(sgn)


def _closest_edge_ends(pair_face: torch.Tensor, k: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat (face * 3 + corner) indices of the two ends a_k, a_k+1 of each pair's closest edge."""
    row = pair_face * 3
    return row + k, row + torch.where(k == 2, 0, k + 1)


class _SoftRasterPairs(torch.autograd.Function):
    """log(1 - S) per pixel from (face, pixel) candidate pairs, with a hand-written backward.

    Forward per pair: the closest edge k of the face, the closest point's parameter t on it and
    the offset d from it to the pixel. By the envelope theorem d(d^2)/d(a_k) = -2 (1 - t) d and
    d(d^2)/d(a_k+1) = -2 t d, so the backward needs no per-pair autograd graph: it is a few
    vector ops and two index_add_ calls into the per-face vertex gradients.
    """

    @staticmethod
    def forward(ctx, tri: torch.Tensor, pair_face: torch.Tensor, p: torch.Tensor,
                pix: torch.Tensor, n_pix: int, sigma: float) -> torch.Tensor:
        acc, k, t_k, d_k, sig_sgn = _pair_terms(tri, pair_face, p, pix, n_pix, sigma)
        ctx.save_for_backward(pair_face, pix, k, t_k, d_k, sig_sgn)
        ctx.sigma, ctx.n_face = sigma, tri.shape[0]
        return acc

    @staticmethod
    def backward(ctx, grad_acc: torch.Tensor):
        pair_face, pix, k, t_k, d_k, sig_sgn = ctx.saved_tensors
        coef = grad_acc.index_select(0, pix) * sig_sgn * (2.0 / ctx.sigma)
        a, b = _closest_edge_ends(pair_face, k)
        # one 1-D index_add_ per coordinate and edge end: (P, 2) rows take a much slower path
        n = ctx.n_face * 3
        grad = torch.zeros(2, n, dtype=coef.dtype, device=coef.device)
        coef_b = coef * t_k
        coef_a = coef.sub_(coef_b)
        for c in range(2):
            grad[c].index_add_(0, a, coef_a * d_k[c]).index_add_(0, b, coef_b * d_k[c])
        return grad.T.reshape(ctx.n_face, 3, 2), None, None, None, None, None


def _runs(count: torch.Tensor):
    """Flatten runs: for run lengths count (n,), the run of each item and its place in the run."""
    total = int(count.sum())
    run = torch.repeat_interleave(count, output_size=total)
    start = torch.cumsum(count, 0) - count
    return run, torch.arange(total, device=count.device) - start.index_select(0, run)


def _candidate_pairs(tri: torch.Tensor, valid: torch.Tensor, width: int, height: int,
                     r: float):
    """(face, pixel) pairs within r of each valid face (conservatively); None if there are none.

    Scanline spans: for each pixel row a face's box (grown by r) covers, only the columns
    within r of the triangle's part in the band [y - r, y + r] are kept. That is exact up to
    the rounded corners of the grown triangle and drops about 40 % of the box's pairs (box
    corners beside slanted edges), whose d^2 / sigma would exceed the cutoff anyway.

    Returns bf (nF,) indices into the flattened (B*F) faces that have pairs, pair_face (P,)
    index into bf, p (2, P) pixel coordinates and pix (P,) flat indices into (B, H, W).
    """
    F = tri.shape[1]
    t = tri.reshape(-1, 3, 2)
    with torch.no_grad():
        lo, hi = t.amin(1), t.amax(1)                                # (BF, 2) boxes
        y_first = (lo[:, 1] - r).ceil_().clamp_(0, height - 1)       # first pixel row
        y_last = (hi[:, 1] + r).floor_().clamp_(-1, height - 1)
        in_x = ((hi[:, 0] + r) >= 0) & ((lo[:, 0] - r) <= width - 1)
        n_rows = (y_last - y_first + 1).clamp_min_(0).long() * (valid.reshape(-1) & in_x)
        bf = torch.nonzero(n_rows, as_tuple=True)[0]                 # faces with pairs
        if len(bf) == 0:
            return None
        # one entry per (face, row), with the face's corners as rows of a (6, E) table
        row_face, row_i = _runs(n_rows.index_select(0, bf))
        corners = t.index_select(0, bf).reshape(-1, 6).T.index_select(1, row_face)
        row_y = y_first.index_select(0, bf).index_select(0, row_face) + row_i
        lo_band, hi_band = row_y - r, row_y + r
        x_min = torch.full_like(row_y, math.inf)
        x_max = torch.full_like(row_y, -math.inf)
        for i in range(3):  # the x range of edge i (a -> b) inside the band
            j = (i + 1) % 3
            xa, ya, xb, yb = corners[2 * i], corners[2 * i + 1], corners[2 * j], corners[2 * j + 1]
            y_lo = torch.maximum(torch.minimum(ya, yb), lo_band)
            y_hi = torch.minimum(torch.maximum(ya, yb), hi_band)
            miss = y_lo > y_hi
            # dx/dy, 0 for a horizontal edge (the adjacent edges cover its ends)
            dy = yb - ya
            slope = (xb - xa).div_(dy).nan_to_num_(0.0, 0.0, 0.0)
            x_a = torch.addcmul(xa, y_lo - ya, slope)
            x_b = torch.addcmul(xa, y_hi - ya, slope)
            x_min = torch.minimum(x_min, torch.minimum(x_a, x_b).masked_fill_(miss, math.inf))
            x_max = torch.maximum(x_max, torch.maximum(x_a, x_b).masked_fill_(miss, -math.inf))
        x_first = (x_min - r).ceil_().clamp_min_(0)
        x_last = (x_max + r).floor_().clamp_max_(width - 1)
        n_cols = (x_last - x_first + 1).clamp_min_(0).nan_to_num_(0.0).long()
        # one entry per (face, pixel)
        pair_row, col = _runs(n_cols)
        if len(pair_row) == 0:
            return None
        pair_face = row_face.index_select(0, pair_row)
        base = ((bf.index_select(0, row_face) // F) * height + row_y.long()) * width
        px = x_first.long().index_select(0, pair_row).add_(col)
        pix = base.index_select(0, pair_row).add_(px)
        p = torch.empty(2, len(pix), dtype=tri.dtype, device=tri.device)  # pixel centres
        p[0].copy_(px)
        torch.index_select(row_y, 0, pair_row, out=p[1])
    return bf, pair_face, p, pix


def render_silhouette(verts_cam: torch.Tensor, faces: torch.Tensor, K: torch.Tensor,  # noqa: N803
                      width: int, height: int,
                      settings: RasterSettings | None = None) -> torch.Tensor:
    """Soft silhouettes (B, H, W) in [0, 1] of B posed copies of one mesh.

    verts_cam: (B, V, 3) vertices in the camera optical frame (metres).
    faces: (F, 3) long. K: (3, 3) or (B, 3, 3) pinhole intrinsics for a width x height image.
    Differentiable w.r.t. verts_cam (and K); cost ~ the (face, pixel) pairs near each face.
    """
    settings = settings or RasterSettings()
    _check_inputs(verts_cam, faces, K, width, height)
    B = verts_cam.shape[0]
    tri, valid = _project_faces(verts_cam, faces, K, settings)
    pairs = _candidate_pairs(tri, valid, width, height, settings.blur_radius)
    if pairs is None:
        return torch.zeros(B, height, width, dtype=verts_cam.dtype, device=verts_cam.device)
    bf, pair_face, p, pix = pairs
    tri_bf = tri.reshape(-1, 3, 2).index_select(0, bf)
    acc = _SoftRasterPairs.apply(tri_bf, pair_face, p, pix, B * height * width,
                                 float(settings.sigma))
    return (1.0 - torch.exp(acc)).reshape(B, height, width)


def render_silhouette_dense(verts_cam: torch.Tensor, faces: torch.Tensor,
                            K: torch.Tensor, width: int, height: int,  # noqa: N803
                            settings: RasterSettings | None = None) -> torch.Tensor:
    """Evaluate the same soft silhouette on every (face, pixel) pair: the O(F H W) reference."""
    settings = settings or RasterSettings()
    _check_inputs(verts_cam, faces, K, width, height)
    B, dev, dt = verts_cam.shape[0], verts_cam.device, verts_cam.dtype
    tri, valid = _project_faces(verts_cam, faces, K, settings)
    e = tri.roll(-1, dims=2) - tri                                # edge i: vertex i -> i+1
    inv_len2 = 1.0 / (e * e).sum(-1).clamp_min(1e-12)             # (B, F, 3)
    area2 = e[..., 0, 0] * e[..., 1, 1] - e[..., 0, 1] * e[..., 1, 0]
    ys, xs = torch.meshgrid(torch.arange(height, device=dev, dtype=dt),
                            torch.arange(width, device=dev, dtype=dt), indexing='ij')
    p = torch.stack([xs, ys], -1).reshape(1, 1, -1, 2)            # (1, 1, HW, 2)
    log_unc = _log_uncovered(p, tri.unsqueeze(2), e.unsqueeze(2), inv_len2.unsqueeze(2),
                             area2.sign().unsqueeze(2).detach(), settings.sigma)  # (B, F, HW)
    log_unc = log_unc * valid.unsqueeze(-1)
    return (1.0 - torch.exp(log_unc.sum(1))).reshape(B, height, width)


def hard_silhouette(verts_cam: np.ndarray, faces: np.ndarray, camera: PinholeCamera,
                    znear: float = 1e-3) -> np.ndarray:
    """Binary silhouette (H, W) bool: pixels whose centre lies inside a projected triangle.

    Not differentiable; for evaluation and overlays. It is the soft rasteriser in the limit of a
    vanishing sigma, so it shares its conventions exactly (unlike `cv2.fillConvexPoly`, which
    also fills every pixel an edge touches and so grows shapes by about half a pixel).
    """
    with torch.no_grad():
        v = torch.as_tensor(np.asarray(verts_cam), dtype=torch.float64)[None]
        f = torch.as_tensor(np.asarray(faces), dtype=torch.long)
        K = torch.as_tensor(camera.K, dtype=torch.float64)
        s = render_silhouette(v, f, K, camera.width, camera.height,
                              RasterSettings(sigma=1e-6, cutoff=1.0, znear=znear))
    return s[0].numpy() > 0.5


def opencv_silhouette(verts_cam: np.ndarray, faces: np.ndarray, camera: PinholeCamera,
                      znear: float = 1e-3) -> np.ndarray:
    """Binary silhouette (H, W) uint8 {0, 1} filled with `cv2.fillConvexPoly` per triangle.

    The OpenCV rasterisation that tests and benchmarks compare against (1/16 px precision).
    """
    out = np.zeros((camera.height, camera.width), np.uint8)
    v = np.asarray(verts_cam, dtype=np.float64)
    f = np.asarray(faces)
    f = f[(v[f, 2] > znear).all(1)]
    if len(f) == 0:
        return out
    uv = camera.project(np.where(v[:, 2:3] > znear, v, np.array([0.0, 0.0, 1.0])))
    lim = 4.0 * max(camera.width, camera.height)  # keep int32 after the 4-bit shift
    tri = np.round(np.clip(uv[f], -lim, lim) * 16.0).astype(np.int32)
    for t in tri:  # fillPoly would XOR overlapping triangles; convex fills add up
        cv2.fillConvexPoly(out, t, 1, lineType=cv2.LINE_8, shift=4)
    return out


def render_silhouette_jacobian(verts_cam: torch.Tensor, dverts_cam: torch.Tensor,
                               faces: torch.Tensor, K: torch.Tensor,  # noqa: N803
                               width: int, height: int, settings: RasterSettings | None = None
                               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft silhouette of one pose and its Jacobian w.r.t. m parameters (forward mode).

    verts_cam: (V, 3) vertices in the optical frame; dverts_cam: (V, 3, m) their derivatives
    w.r.t. the parameters. Returns S (H, W) and dS/dparams (H, W, m), the same quantity that
    `render_silhouette` differentiates, accumulated per pixel in one pass (no autograd), for
    Gauss-Newton / Levenberg-Marquardt steps.
    """
    settings = settings or RasterSettings()
    _check_inputs(verts_cam[None], faces, K, width, height)
    V, m = verts_cam.shape[0], dverts_cam.shape[-1]
    if dverts_cam.shape != (V, 3, m):
        raise ValueError(f'dverts_cam must be (V, 3, m), got {tuple(dverts_cam.shape)}')
    n_pix = height * width
    with torch.no_grad():
        tri, valid = _project_faces(verts_cam[None], faces, K, settings)
        pairs = _candidate_pairs(tri, valid, width, height, settings.blur_radius)
        zeros = torch.zeros(n_pix, dtype=verts_cam.dtype, device=verts_cam.device)
        if pairs is None:
            return zeros.reshape(height, width), zeros.new_zeros(height, width, m)
        bf, pair_face, p, pix = pairs
        acc, k, t_k, d_k, sig_sgn = _pair_terms(tri.reshape(-1, 3, 2).index_select(0, bf),
                                               pair_face, p, pix, n_pix, settings.sigma)
        # d(u, v)/d(params) per vertex: the pinhole Jacobian times d(verts)/d(params)
        x, y, z = verts_cam.unbind(-1)
        iz = 1.0 / z.clamp_min(1e-9)
        fx, fy = K[0, 0], K[1, 1]
        du = fx * iz[:, None] * (dverts_cam[:, 0] - x[:, None] * iz[:, None] * dverts_cam[:, 2])
        dv = fy * iz[:, None] * (dverts_cam[:, 1] - y[:, None] * iz[:, None] * dverts_cam[:, 2])
        duv = torch.cat([du, dv], 1)                                    # (V, 2m): u | v
        fb = faces.index_select(0, bf).reshape(-1)                      # (nF * 3,) vertex ids
        va, vb = (fb.index_select(0, i) for i in _closest_edge_ends(pair_face, k))
        # d log(1 - D)/d(params) = -sig_sgn / sigma * d(d^2)/d(params), with
        # d(d^2) = -2 d . ((1 - t) d a_k + t d a_k+1)  (envelope theorem, closest edge k);
        # elementwise over (P, 2m) rows: far faster than a batch of (1, 2) x (2, m) products
        g = torch.lerp(duv.index_select(0, va), duv.index_select(0, vb), t_k[:, None])
        coef = (sig_sgn * (2.0 / settings.sigma))[:, None]
        dlog = torch.addcmul(g[:, :m] * (d_k[0, :, None] * coef), g[:, m:], d_k[1, :, None] * coef)
        dacc = zeros.new_zeros(n_pix, m).index_add_(0, pix, dlog)
        unc = torch.exp(acc)
        return (1.0 - unc).reshape(height, width), (-unc[:, None] * dacc).reshape(
            height, width, m)
