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

"""Render-and-compare 6-DoF pose fitting ("Rasterize and Backprop").

One frame: the mask is cropped around its box (a square window, resampled to a fixed working
resolution, K adjusted to the crop), B pose hypotheses are rendered as soft silhouettes in one
batch, and Adam minimises (1 - soft IoU) + normalised squared error against the mask, coarse to
fine (small resolution with blurry edges first, then the working resolution with sharp edges).

Pose increments are local and well conditioned: the rotation is exp(omega) applied in the camera
frame about the mesh's box centre, the translation is an image-plane shift in working pixels
and a log-depth change. Without an initial pose, a viewpoint grid (`init.ViewpointGrid`) is
scored in one batched render and the best few are refined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
import time

import cv2
import numpy as np
import torch

from .camera import PinholeCamera
from .geometry import check_rigid, from_rotvec, so3_exp
from .init import place_in_mask, ViewpointGrid
from .mesh import decimate, Mesh
from .render import RasterSettings, render_silhouette, render_silhouette_jacobian


def local_rotations(R: np.ndarray, angle_deg: float) -> np.ndarray:  # noqa: N803
    """(7, 3, 3): R and R turned by +-angle about each camera axis (x, y, z)."""
    out = [R]
    for axis in np.eye(3):
        for sign in (-1.0, 1.0):
            out.append(from_rotvec(axis * sign * np.deg2rad(angle_deg)) @ R)
    return np.stack(out)


class FitError(ValueError):
    """The inputs cannot be fitted (empty mask, size mismatch, ...)."""


@dataclass
class FitSettings:
    """Settings of the render-and-compare optimiser."""

    resolution: int = 128
    """Working resolution of the square crop (pixels) for the fine stage."""
    coarse_resolution: int = 64
    """Resolution of the coarse stage and of the initialisation grid (pixels)."""
    crop_scale: float = 1.25
    """Side of the square crop over the longer side of the mask box."""
    max_faces: int = 1000
    """Face budget of the mesh used in the fine stage (quadric decimation). Fewer, larger
    faces are also more accurate: the soft union of many small faces along the contour
    inflates the silhouette, which biases depth."""
    coarse_faces: int = 400
    """Face budget in the coarse stage."""
    init_faces: int = 300
    """Face budget when scoring the initial hypotheses (hundreds of poses in one batch)."""
    init_resolution: int = 48
    """Resolution at which the initial hypotheses are scored (pixels)."""
    sigma_init: float = 0.5
    """Soft edge width when scoring the initial hypotheses (pixels^2)."""
    sigma_coarse: float = 0.7
    """Soft edge width in the coarse stage (coarse pixels^2)."""
    sigma_fine: float = 0.1
    """Soft edge width in the fine stage (working pixels^2)."""
    coarse_iterations: int = 20
    """Most steps in the coarse stage (Adam steps, or accepted Levenberg-Marquardt steps)."""
    fine_iterations: int = 25
    """Most steps in the fine stage (Adam steps, or accepted Levenberg-Marquardt steps)."""
    coarse_optimizer: str = 'auto'
    """Coarse stage: 'adam', 'lm', or 'auto': Levenberg-Marquardt when a single hypothesis is
    refined (tracking), Adam when several are (it optimises them in one batch)."""
    fine_optimizer: str = 'lm'
    """Fine stage: 'lm' (Levenberg-Marquardt on the squared silhouette error, with the
    rasteriser's forward-mode Jacobian; few steps) or 'adam' (as in the coarse stage)."""
    lr_rotation: float = 0.04
    """Adam step of the rotation (radians) at the start of a stage; decays to 5 %."""
    lr_translation: float = 1.0
    """Adam step of the image-plane translation (stage pixels) at the start of a stage."""
    lr_depth: float = 0.02
    """Adam step of log-depth at the start of a stage."""
    patience: int = 8
    """Stop a stage when the loss improved by less than `tolerance` for this many steps."""
    tolerance: float = 1e-4
    """Relative loss improvement that counts as progress (Adam)."""
    lm_tolerance: float = 1e-3
    """Levenberg-Marquardt stops after a step that lowers the loss by less than this
    (relative); the steps after it move the pose by hundredths of a degree."""
    grid: ViewpointGrid = field(default_factory=ViewpointGrid)
    """Viewpoints scored when there is no initial pose."""
    top_k: int = 4
    """Best-scoring grid hypotheses refined in the coarse stage (no initial pose)."""
    refine_top_k: int = 1
    """Best-scoring hypotheses refined when an initial pose is given (tracking)."""
    fine_top_k: int = 2
    """Best coarse-stage results refined in the fine stage, the highest silhouette IoU (the
    figure a fit is accepted on) winning. The coarse stage's low-resolution loss can rank a
    wrong pose first: on a reconstructed chair seen from behind it picked one 23 deg off (IoU
    0.65-0.71) over the right one (0.75-0.84). With two, a global initialisation takes 10-20 %
    longer."""
    local_angle: float = 20.0
    """With an initial pose, rotations this far (degrees) about each camera axis are also tried."""
    min_mask_pixels: int = 20
    """Masks with fewer pixels are rejected."""
    cull_backfaces: bool | None = None
    """Skip back faces; None: only for watertight meshes, where it is exact and 2x faster."""
    device: str = 'cpu'
    """Torch device ('cpu', 'cuda', 'cuda:1', ...)."""


@dataclass(frozen=True)
class FitResult:
    """Outcome of one fit."""

    T_cam_obj: np.ndarray
    """(4, 4) float64 transform from the object frame to the camera optical frame (metres)."""
    iou: float
    """Silhouette IoU of the fitted mesh against the mask (hard, 0..1; `silhouette_iou`)."""
    iterations: int
    """Optimiser steps taken (Adam or Levenberg-Marquardt), all stages, batches counted once."""
    seconds: float
    """Wall time of the fit."""
    loss: float
    """Final loss of the chosen hypothesis (fine stage)."""


@dataclass(frozen=True)
class _Crop:
    camera: PinholeCamera      # camera of the resampled crop
    target: torch.Tensor       # (H, W) mask in [0, 1]
    weight: torch.Tensor       # (H, W) 1 inside the image, 0 where the crop leaves it
    K: torch.Tensor            # (3, 3) float32 intrinsics of `camera`, on the fitting device


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) box of the non-zero pixels (inclusive pixel centres)."""
    ys, xs = np.nonzero(mask)
    return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())


def crop_window(box: tuple[float, float, float, float], scale: float) -> tuple[int, int, int]:
    """Square integer window (x0, y0, side) around a box, `scale` times its longer side."""
    x0, y0, x1, y1 = box
    side = int(math.ceil(max(x1 - x0 + 1, y1 - y0 + 1) * scale))
    side = max(side, 8)
    cx, cy = (x0 + x1 + 1) / 2.0, (y0 + y1 + 1) / 2.0
    return int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side


def _window(img: np.ndarray, x0: int, y0: int, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Extract img[y0:y0+side, x0:x0+side] as float32 with zero padding, and the inside map."""
    h, w = img.shape
    out = np.zeros((side, side), np.float32)
    valid = np.zeros((side, side), np.float32)
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if xb > xa and yb > ya:
        out[ya - y0:yb - y0, xa - x0:xb - x0] = img[ya:yb, xa:xb]
        valid[ya - y0:yb - y0, xa - x0:xb - x0] = 1.0
    return out, valid


class PoseFitter:
    """Fits the 6-DoF pose of one mesh to binary masks; reusable across frames."""

    def __init__(self, mesh: Mesh, settings: FitSettings | None = None) -> None:
        """Prepare the mesh (decimated, centred) on the settings' device."""
        self.settings = s = settings or FitSettings()
        if s.coarse_optimizer not in ('adam', 'lm', 'auto') or s.fine_optimizer not in (
                'adam', 'lm'):
            raise ValueError(f'unknown optimizer: coarse {s.coarse_optimizer!r}, fine '
                             f'{s.fine_optimizer!r} (adam, lm; coarse also auto)')
        if min(s.top_k, s.refine_top_k, s.fine_top_k) < 1:
            raise ValueError(f'need top_k, refine_top_k and fine_top_k >= 1, got {s.top_k}, '
                             f'{s.refine_top_k} and {s.fine_top_k}')
        self.device = torch.device(s.device)
        self.mesh = mesh
        # rotate about the box centre, so that rotation and translation steps decouple
        self.centre = (mesh.vertices.min(0) + mesh.vertices.max(0)) / 2.0
        self._fine = self._prepare(decimate(mesh, s.max_faces))
        self._coarse = self._prepare(decimate(mesh, s.coarse_faces))
        self._init = self._prepare(decimate(mesh, s.init_faces))
        self._cull = mesh.watertight if s.cull_backfaces is None else s.cull_backfaces

    def _prepare(self, m: Mesh) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        v = m.vertices - self.centre
        return (torch.as_tensor(v, dtype=torch.float32, device=self.device),
                torch.as_tensor(m.faces, dtype=torch.long, device=self.device), v)

    # -- public ------------------------------------------------------------------------------

    def fit(self, mask: np.ndarray, camera: PinholeCamera,
            T_init: np.ndarray | None = None,  # noqa: N803
            ignore: np.ndarray | None = None,
            rotations: np.ndarray | None = None) -> FitResult:
        """Fit the pose to `mask` (H, W; non-zero = object) seen by `camera`.

        With `T_init` (4x4 T_cam_obj) the pose is refined from it; without, the candidate
        `rotations` (N, 3, 3) R_cam_obj initialise it, by default the viewpoint grid's.
        `ignore` (H, W; non-zero = unknown) marks pixels that may hide the object, e.g. other
        objects in front of it: they count neither for nor against a pose.
        Raises FitError on unusable input.
        """
        t_start = time.perf_counter()
        s = self.settings
        mask = self._check_mask(mask, camera)
        if ignore is not None:
            ignore = np.asarray(ignore) != 0
            if ignore.shape != mask.shape:
                raise FitError(f'ignore map is {ignore.shape}, the mask {mask.shape}')
            ignore = ignore & ~mask
        box = mask_box(mask)
        x0, y0, side = crop_window(box, s.crop_scale)
        scoring = self._crop(mask, camera, x0, y0, side, s.init_resolution, ignore)
        coarse = self._crop(mask, camera, x0, y0, side, s.coarse_resolution, ignore)
        fine = self._crop(mask, camera, x0, y0, side, s.resolution, ignore)
        iterations = 0
        if T_init is None:
            rotations = s.grid.rotations() if rotations is None else np.asarray(rotations)
        else:
            T = check_rigid(T_init, 'T_init')
            rotations = local_rotations(T[:3, :3], s.local_angle)
        R, t = self._best_hypotheses(rotations, scoring, camera, box,
                                     None if T_init is None else T)
        R = torch.as_tensor(R, dtype=torch.float32, device=self.device)
        t = torch.as_tensor(t, dtype=torch.float32, device=self.device)
        lm = s.coarse_optimizer == 'lm' or (s.coarse_optimizer == 'auto' and len(R) == 1)
        R, t, loss, n = (self._refine_lm if lm else self._refine)(
            R, t, coarse, self._coarse, s.sigma_coarse, s.coarse_iterations)
        iterations += n
        refine = self._refine_lm if s.fine_optimizer == 'lm' else self._refine
        best_fit = None  # (iou, -loss, T_cam_obj): the highest IoU, then the lowest loss
        for k in torch.argsort(loss)[:s.fine_top_k].tolist():
            Rk, tk, lk, n = refine(R[k:k + 1], t[k:k + 1], fine, self._fine, s.sigma_fine,
                                   s.fine_iterations)
            iterations += n
            T_cam_obj = np.eye(4)
            Rn = Rk[0].detach().cpu().double().numpy()
            T_cam_obj[:3, :3] = Rn
            T_cam_obj[:3, 3] = tk[0].detach().cpu().double().numpy() - Rn @ self.centre
            iou = self.silhouette_iou(T_cam_obj, mask, camera, (x0, y0, side), ignore=ignore)
            if best_fit is None or (iou, -float(lk[0])) > best_fit[:2]:
                best_fit = (iou, -float(lk[0]), T_cam_obj)
        iou, neg_loss, T_cam_obj = best_fit
        return FitResult(T_cam_obj, iou, iterations, time.perf_counter() - t_start, -neg_loss)

    def silhouette_iou(self, T_cam_obj: np.ndarray, mask: np.ndarray,  # noqa: N803
                       camera: PinholeCamera, window: tuple[int, int, int] | None = None,
                       max_resolution: int = 256, ignore: np.ndarray | None = None) -> float:
        """Hard silhouette IoU of the mesh at T_cam_obj against the mask, in the image.

        Pixels are counted in the square `window` (x0, y0, side; default: the mask's fitting
        window), resampled to at most `max_resolution` pixels a side so that the figure costs
        milliseconds; pixels outside the image or in `ignore` do not count. The fitting mesh
        is used.
        """
        mask = np.asarray(mask) != 0
        if window is None:
            window = crop_window(mask_box(mask), self.settings.crop_scale)
        x0, y0, side = window
        res = min(side, max_resolution)
        crop = self._crop(mask, camera, x0, y0, side, res, ignore)
        v, f, _ = self._fine
        R = torch.as_tensor(T_cam_obj[:3, :3], dtype=torch.float32, device=self.device)
        t = torch.as_tensor(T_cam_obj[:3, :3] @ self.centre + T_cam_obj[:3, 3],
                            dtype=torch.float32, device=self.device)
        K = crop.K
        with torch.no_grad():
            sil = render_silhouette((v @ R.T + t)[None], f, K, res, res,
                                    RasterSettings(sigma=1e-4, cutoff=1.0))[0] > 0.5
        valid = crop.weight > 0.5
        m = (crop.target > 0.5) & valid
        sil &= valid
        union = int((sil | m).sum())
        return float((sil & m).sum()) / union if union else 0.0

    # -- stages ------------------------------------------------------------------------------

    def _check_mask(self, mask: np.ndarray, camera: PinholeCamera) -> np.ndarray:
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise FitError(f'mask must be a single-channel image, got shape {mask.shape}')
        if mask.shape != (camera.height, camera.width):
            raise FitError(f'mask is {mask.shape[1]}x{mask.shape[0]} but the camera is '
                           f'{camera.width}x{camera.height}')
        mask = mask != 0
        n = int(np.count_nonzero(mask))
        if n < self.settings.min_mask_pixels:
            raise FitError(f'mask is empty or too small ({n} pixels, need '
                           f'{self.settings.min_mask_pixels})')
        return mask

    def _crop(self, mask: np.ndarray, camera: PinholeCamera, x0: int, y0: int, side: int,
              res: int, ignore: np.ndarray | None = None) -> _Crop:
        # _window copies only the window into float32: no full-image conversions per crop
        m, valid = _window(mask, x0, y0, side)
        if ignore is not None:
            valid *= 1.0 - _window(ignore, x0, y0, side)[0]
        interp = cv2.INTER_AREA if side >= res else cv2.INTER_LINEAR
        m = cv2.resize(m, (res, res), interpolation=interp)
        valid = cv2.resize(valid, (res, res), interpolation=interp)
        cam = camera.crop(x0, y0, side, side, res, res)
        return _Crop(cam, torch.as_tensor(m, device=self.device),
                     torch.as_tensor(valid, device=self.device),
                     torch.as_tensor(cam.K, dtype=torch.float32, device=self.device))

    def _best_hypotheses(self, rotations: np.ndarray, crop: _Crop, camera: PinholeCamera,
                         box: tuple[float, float, float, float],
                         T_init: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
        """Score rotations placed on the mask's box (and the initial pose) in one batch."""
        s = self.settings
        t = place_in_mask(rotations, self._init[2], camera, box)
        if T_init is not None:
            # the given pose as it is: its translation may be better than the box's guess
            rotations = np.concatenate([T_init[None, :3, :3], rotations])
            t = np.concatenate([(T_init[:3, :3] @ self.centre + T_init[:3, 3])[None], t])
        R_t = torch.as_tensor(rotations, dtype=torch.float32, device=self.device)
        t_t = torch.as_tensor(t, dtype=torch.float32, device=self.device)
        with torch.no_grad():
            loss = self._loss(self._render(R_t, t_t, crop, self._init, s.sigma_init), crop)
        k = s.top_k if T_init is None else s.refine_top_k
        best = torch.topk(-loss, min(k, len(rotations))).indices.cpu().numpy()
        return rotations[best], t[best]

    def _render(self, R: torch.Tensor, t: torch.Tensor, crop: _Crop,  # noqa: N803
                mesh: tuple, sigma: float) -> torch.Tensor:
        v, f, _ = mesh
        verts = v @ R.transpose(1, 2) + t[:, None, :]
        K = crop.K
        settings = RasterSettings(sigma=sigma, cull_backfaces=self._cull)
        return render_silhouette(verts, f, K, crop.camera.width, crop.camera.height, settings)

    @staticmethod
    def _loss(sil: torch.Tensor, crop: _Crop) -> torch.Tensor:
        """(B,) loss: (1 - soft IoU) + squared error normalised by the mask area."""
        w, m = crop.weight, crop.target
        sw = sil * w
        inter = (sw * m).sum((1, 2))
        union = (sw + m * w - sw * m).sum((1, 2)).clamp_min(1e-6)
        sq = (((sil - m) ** 2) * w).sum((1, 2)) / (m * w).sum().clamp_min(1.0)
        return (1.0 - inter / union) + sq

    def _refine_lm(self, R0: torch.Tensor, t0: torch.Tensor, crop: _Crop, mesh: tuple,  # noqa: N803
                   sigma: float, iterations: int
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """Levenberg-Marquardt on one pose: residuals weight * (S - mask) over the crop.

        Parameters as in `_refine` (rotation about the box centre, image-plane shift in crop
        pixels, log-depth); the Jacobian comes from `render_silhouette_jacobian` in the same
        pass as the silhouette. Returns (R (1, 3, 3), t (1, 3), loss (1,), accepted steps),
        loss = squared error over the mask area.
        """
        v, f, _ = mesh
        cam = crop.camera
        K = crop.K
        settings = RasterSettings(sigma=sigma, cull_backfaces=self._cull)
        w = crop.weight.reshape(-1)
        target = crop.target.reshape(-1)
        area = float((crop.target * crop.weight).sum().clamp_min(1.0))
        fx, fy = float(cam.fx), float(cam.fy)

        def evaluate(R: torch.Tensor, t: torch.Tensor):  # noqa: N803
            X = v @ R.T + t
            rc = X - t
            dX = torch.zeros(X.shape[0], 3, 6, dtype=X.dtype, device=X.device)
            dX[:, 0, 1], dX[:, 0, 2] = rc[:, 2], -rc[:, 1]      # -[rc]x, rotation about
            dX[:, 1, 0], dX[:, 1, 2] = -rc[:, 2], rc[:, 0]      # the box centre
            dX[:, 2, 0], dX[:, 2, 1] = rc[:, 1], -rc[:, 0]
            dX[:, 0, 3] = t[2] / fx                             # image-plane shift (px)
            dX[:, 1, 4] = t[2] / fy
            dX[:, :, 5] = t                                     # log-depth
            S, J = render_silhouette_jacobian(X, dX, f, K, cam.width, cam.height, settings)
            r = w * (S.reshape(-1) - target)
            return float((r * r).sum()), r, w[:, None] * J.reshape(-1, 6)

        def step(R: torch.Tensor, t: torch.Tensor, d: torch.Tensor):  # noqa: N803
            R = so3_exp(d[:3]) @ R
            z = t[2] * torch.exp(d[5].clamp(-0.5, 0.5))
            u = t[0] / t[2] + d[3] / fx
            vv = t[1] / t[2] + d[4] / fy
            return R, torch.stack([u * z, vv * z, z])

        R, t = R0[0], t0[0]
        cost, r, J = evaluate(R, t)
        lam, n = 1e-3, 0
        for _ in range(iterations):
            H = (J.T @ J).double()
            g = (J.T @ r).double()
            improved = False
            while lam < 1e7:
                A = H + lam * torch.diag(torch.diag(H).clamp_min(1e-9))
                d = -torch.linalg.solve(A, g).to(R.dtype)
                R_new, t_new = step(R, t, d)
                cost_new, r_new, J_new = evaluate(R_new, t_new)
                if cost_new < cost:
                    improved = True
                    break
                lam *= 4.0
            if not improved:
                break
            n += 1
            rel = (cost - cost_new) / max(cost, 1e-12)
            R, t, cost, r, J = R_new, t_new, cost_new, r_new, J_new
            lam = max(lam / 3.0, 1e-7)
            if rel < self.settings.lm_tolerance:
                break
        loss = torch.tensor([cost / area], device=self.device)
        return R[None], t[None], loss, n

    def _refine(self, R0: torch.Tensor, t0: torch.Tensor, crop: _Crop, mesh: tuple,  # noqa: N803
                sigma: float, iterations: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """Adam on local increments of B poses; returns the best (R, t, loss) of each."""
        s = self.settings
        B = R0.shape[0]
        cam = crop.camera
        z0 = t0[:, 2:3]
        uv0 = t0[:, :2] / z0
        f = torch.tensor([cam.fx, cam.fy], dtype=torch.float32, device=self.device)
        scale = torch.tensor([s.lr_rotation] * 3 + [s.lr_translation] * 2 + [s.lr_depth],
                             dtype=torch.float32, device=self.device)
        p = torch.zeros(B, 6, device=self.device, requires_grad=True)
        opt = torch.optim.Adam([p], lr=1.0)
        best_loss = torch.full((B,), float('inf'), device=self.device)
        best_p = torch.zeros(B, 6, device=self.device)
        last_improved, ref = 0, float('inf')
        n = 0

        def pose(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            q = q * scale
            R = so3_exp(q[:, :3]) @ R0
            # a bounded depth step keeps a wild hypothesis from filling the crop (and the
            # rasteriser's pair count) with a mesh pressed against the lens
            z = z0 * torch.exp(q[:, 5:6].clamp(-0.5, 0.5))
            uv = uv0 + q[:, 3:5] / f
            return R, torch.cat([uv * z, z], 1)

        for it in range(iterations):
            lr = 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * it / max(iterations, 1)))
            for g in opt.param_groups:
                g['lr'] = lr
            R, t = pose(p)
            loss = self._loss(self._render(R, t, crop, mesh, sigma), crop)
            with torch.no_grad():
                better = loss < best_loss
                best_loss = torch.where(better, loss, best_loss)
                best_p[better] = p[better]
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
            n += 1
            total = float(best_loss.sum())
            if total < ref * (1.0 - s.tolerance):
                ref, last_improved = total, it
            elif it - last_improved >= s.patience:
                break
        with torch.no_grad():
            R, t = pose(best_p)
        return R, t, best_loss, n
