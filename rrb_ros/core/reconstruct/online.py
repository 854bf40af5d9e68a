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

"""Reconstruct objects that have no CAD model, from a view of them, with metric scale.

`ObjectReconstructor.reconstruct` chains the paper's first stage into the pose fitting: the
occupancy network turns the masked image into a mesh (canonical frame, up to scale), the mesh
is put in the rrb object frame (+z up, standing on z = 0), its pose is fitted to the mask from
scratch, and the ground plane gives mesh and pose their metric scale (`scale_to_ground`).
Meshes are cached on disk per object name, so a restart does not reconstruct again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
import json
from pathlib import Path
import re
import time

import cv2
import numpy as np
import torch

from ..camera import PinholeCamera
from ..fit import FitSettings, PoseFitter
from ..init import upright_rotations
from ..mesh import load_mesh, Mesh, MeshError
from .mirror import mirror_averaged, MirrorAveraged
from .onet import preprocess
from .refine import refine_code, RefineSettings
from .scale import scale_to_ground
from .shapes import object_from_canonical
from .viewpoint import camera_azimuth, half_circle_mass, ViewpointHead


@dataclass
class ReconstructSettings:
    """When a view is good enough, and how the mesh is made."""

    network: str = ''
    """Checkpoint of the network ('' = the one shipped with the package)."""
    cache_dir: str = ''
    """Folder of cached meshes (<name>.obj and <name>.json); '' = no cache."""
    min_pixels: int = 1500
    """A good view shows at least this many mask pixels."""
    border_margin: int = 4
    """A good view's mask stays this many pixels away from the image border (not cut off)."""
    occlusion_margin: int = 3
    """... and this many pixels away from other objects' masks (not occluded)."""
    min_iou: float = 0.8
    """A reconstruction that fits its own view with this silhouette IoU is kept at once."""
    attempts: int = 5
    """After this many good views without reaching `min_iou`, the best of them is kept ..."""
    fallback_iou: float = 0.5
    """... if it fits its view with at least this IoU (else the attempts go on)."""
    max_faces: int = 3000
    """Face budget of the reconstructed mesh."""
    resolution0: int = 32
    """Coarse MISE grid of the mesh extraction."""
    upsampling_steps: int = 2
    """MISE refinement steps."""
    mirror_average: bool = True
    """Also encode the image turned left to right and average the two shapes (mirror.py):
    +0.02 IoU on held-out chairs, twice the decoder's time. Networks trained here only (their
    canonical left-right axis is x); ONet's own weights are used alone."""
    threshold: float | None = None
    """Occupancy probability of the surface (None: the network's own: the calibrated level
    stored with the shipped weights, 0.2 for ONet's)."""
    viewpoint_flip_mass: float = 0.25
    """When the network's viewpoint head gives the fitted yaw's half circle less probability
    than this, the 180-degree turned pose is fitted too (0 turns the check off) ..."""
    viewpoint_iou_margin: float = 0.05
    """... and kept if its silhouette IoU is at most this much lower."""
    refine_iterations: int = 0
    """Gradient steps refining the shape code against the mask at the fitted pose (0: off;
    30 is the benchmarked setting). Off by default: it fits a shape to one view, which can make
    it fit other views worse, and a wrongly fitted pose bends the shape (see the README)."""
    refine_iou_margin: float = 0.02
    """The refined shape is kept unless its refitted silhouette IoU is this much lower."""
    device: str = 'cpu'


@dataclass(frozen=True)
class Reconstruction:
    """A reconstructed object, in metres."""

    name: str
    mesh: Mesh
    """Mesh in the rrb object frame (metres, +z up, on z = 0)."""
    T_cam_obj: np.ndarray | None
    """Pose in the frame just given (None from the cache, or when an earlier view won)."""
    scale: float
    """Metres per canonical unit."""
    iou: float
    """Silhouette IoU of the fit in the view it was made from (NaN if the cache lacks it)."""
    seconds: float
    source: str
    """'network' or the cache file."""
    viewpoint: str = ''
    """What the viewpoint head decided ('' when it was not asked)."""
    refinement: str = ''
    """What the shape refinement did ('' when it was off)."""
    code: np.ndarray | None = None
    """(c_dim,) shape code the mesh was extracted from, of `ObjectReconstructor.load_network()`'s
    network (None from the cache)."""


def view_problem(labels: np.ndarray, label: int, settings: ReconstructSettings) -> str | None:
    """Why this view of object `label` is not good for reconstruction; None if it is."""
    obj = labels == label
    n = int(np.count_nonzero(obj))
    if n < settings.min_pixels:
        return f'too small ({n} < {settings.min_pixels} mask pixels)'
    ys, xs = np.nonzero(obj)
    h, w = labels.shape
    m = settings.border_margin
    if xs.min() < m or ys.min() < m or xs.max() >= w - m or ys.max() >= h - m:
        return 'mask touches the image border'
    others = (labels != 0) & ~obj
    if others.any() and settings.occlusion_margin >= 0:
        k = 2 * settings.occlusion_margin + 1
        grown = cv2.dilate(obj.astype(np.uint8), np.ones((k, k), np.uint8))
        if (grown.astype(bool) & others).any():
            return 'touches another object (may be occluded)'
    return None


class ObjectReconstructor:
    """Meshes for objects without a CAD model: from the network, or from the cache."""

    def __init__(self, settings: ReconstructSettings | None = None,
                 fit_settings: FitSettings | None = None, network=None,
                 viewpoint_head: ViewpointHead | None = None) -> None:
        """Check the settings; `settings.network` loads on first use unless `network` is given.

        The viewpoint head comes with the network's weights, or is given with `network`.
        """
        self.settings = settings or ReconstructSettings()
        self.fit_settings = fit_settings or FitSettings()
        self._net = network
        self._head = viewpoint_head
        self._tries: dict[str, tuple[Reconstruction, int]] = {}
        """Per object still without a mesh: the best reconstruction so far and the views tried."""
        s = self.settings
        if not 0 < s.fallback_iou <= s.min_iou <= 1:
            raise ValueError(f'need 0 < fallback_iou <= min_iou <= 1, got {s.fallback_iou} '
                             f'and {s.min_iou}')
        if s.attempts < 1:
            raise ValueError(f'attempts must be >= 1, got {s.attempts}')
        if not 0 <= s.viewpoint_flip_mass <= 1 or s.viewpoint_iou_margin < 0:
            raise ValueError(f'need 0 <= viewpoint_flip_mass <= 1 and viewpoint_iou_margin >= 0, '
                             f'got {s.viewpoint_flip_mass} and {s.viewpoint_iou_margin}')
        if s.threshold is not None and not 0 < s.threshold < 1:
            raise ValueError(f'threshold must be a probability in (0, 1), got {s.threshold}')
        if s.refine_iterations < 0 or s.refine_iou_margin < 0:
            raise ValueError(f'need refine_iterations >= 0 and refine_iou_margin >= 0, got '
                             f'{s.refine_iterations} and {s.refine_iou_margin}')

    def load_network(self):
        """Load the network now (it is loaded on first use otherwise); return it.

        With `mirror_average` a network trained here (loaded or given) comes in a
        `MirrorAveraged`.
        """
        if self._net is None:  # the head comes with the weights unless it was given
            from .compact import load_network_and_head
            self._net, head = load_network_and_head(self.settings.network or None,
                                                    self.settings.device)
            if self._head is None:
                self._head = head
        if self.settings.mirror_average and not isinstance(self._net, MirrorAveraged):
            self._net = mirror_averaged(self._net)
        return self._net

    def _front_or_back(self, c: torch.Tensor, fitter: PoseFitter, fit, obj: np.ndarray,
                       camera: PinholeCamera, others: np.ndarray | None):
        """Ask the viewpoint head whether the fit faces the right way; fit the turn if not.

        Silhouettes of furniture seen from the front and from the back are nearly the same, so
        the best-fitting yaw can be 180 degrees off. The head's azimuth distribution decides
        when it gives the fitted yaw's half circle little probability and the turned pose fits
        nearly as well. Returns the fit kept and a note on what was decided.
        """
        s = self.settings
        if self._head is None or s.viewpoint_flip_mass <= 0:
            return fit, ''
        p = self._head.probabilities(*self._net.halves(c))[0]
        mass = half_circle_mass(p, self._head.centres().numpy(), camera_azimuth(fit.T_cam_obj))
        if mass >= s.viewpoint_flip_mass:
            return fit, f'viewpoint head agrees ({mass:.2f} of its probability)'
        turn = np.diag([-1.0, -1.0, 1.0, 1.0])   # 180 degrees about the object's z axis
        turned = fitter.fit(obj, camera, fit.T_cam_obj @ turn, others)
        if turned.iou >= fit.iou - s.viewpoint_iou_margin:
            return turned, (f'turned 180 deg: the viewpoint head gives the fitted yaw only '
                            f'{mass:.2f} of its probability (IoU {turned.iou:.3f} against '
                            f'{fit.iou:.3f})')
        return fit, (f'kept against the viewpoint head ({mass:.2f}): the turned pose fits '
                     f'worse (IoU {turned.iou:.3f} against {fit.iou:.3f})')

    def _mesh(self, net, c: torch.Tensor) -> tuple[Mesh, np.ndarray]:
        """Return the mesh of code c in the object frame (canonical units) and its T_obj_can."""
        s = self.settings
        return object_from_canonical(net.code_mesh(
            c, threshold=s.threshold, resolution0=s.resolution0,
            upsampling_steps=s.upsampling_steps, max_faces=s.max_faces))

    def _refine(self, net, c: torch.Tensor, mesh: Mesh, T_obj_can: np.ndarray, fit,
                obj: np.ndarray, camera: PinholeCamera, others: np.ndarray | None):
        """Refine the shape code against the mask at the fitted pose, refit, keep the better.

        Returns the code, mesh and fit kept and a note on what was done.
        """
        s = self.settings
        if s.refine_iterations == 0:
            return c, mesh, fit, ''
        T_cam_can = fit.T_cam_obj @ T_obj_can
        ref = refine_code(net, c, obj, camera, T_cam_can,
                          RefineSettings(iterations=s.refine_iterations,
                                         threshold=s.threshold), others)
        # the shape now sits at T_cam_can @ S, S a similarity: its rigid part, with the scale
        # taken about the camera centre instead (same silhouette), starts the refit
        T = T_cam_can @ ref.S
        scale = np.cbrt(np.linalg.det(T[:3, :3]))
        T[:3, :3] /= scale
        T[:3, 3] /= scale
        try:
            refined, T_obj_can2 = self._mesh(net, ref.code)
            fit2 = PoseFitter(refined, self.fit_settings).fit(
                obj, camera, T @ np.linalg.inv(T_obj_can2), others)
        except ValueError as exc:  # no surface left, a broken mesh, a failed fit
            return c, mesh, fit, f'refined shape dropped: {exc}'
        what = (f'silhouette loss {ref.loss_before:.3f} -> {ref.loss_after:.3f} in '
                f'{ref.seconds:.1f} s, refitted IoU {fit2.iou:.3f} against {fit.iou:.3f}')
        if fit2.iou < fit.iou - s.refine_iou_margin:
            return c, mesh, fit, f'refined shape dropped ({what})'
        return ref.code, refined, fit2, f'shape refined ({what})'

    # -- cache ------------------------------------------------------------------------------

    def _cache_paths(self, name: str) -> tuple[Path, Path] | None:
        if not self.settings.cache_dir:
            return None
        if not re.fullmatch(r'[A-Za-z0-9_\-]+', name):
            raise ValueError(f'object name {name!r} is not usable as a cache file name')
        d = Path(self.settings.cache_dir).expanduser()
        return d / f'{name}.obj', d / f'{name}.json'

    def cached(self, name: str) -> Reconstruction | None:
        """Return the cached reconstruction of `name`; None without cache or when unreadable."""
        paths = self._cache_paths(name)
        if paths is None or not paths[0].is_file():
            return None
        try:
            mesh = load_mesh(paths[0])
            meta = json.loads(paths[1].read_text()) if paths[1].is_file() else {}
        except (MeshError, OSError, ValueError):
            return None
        nan = float('nan')
        return Reconstruction(name, mesh, None, float(meta.get('scale', nan)),
                              float(meta.get('iou', nan)), 0.0, str(paths[0]))

    def forget(self, name: str) -> None:
        """Delete the cached mesh of `name` (if any) and the attempts made so far."""
        self._tries.pop(name, None)
        paths = self._cache_paths(name)
        for p in paths or ():
            p.unlink(missing_ok=True)

    def _store(self, rec: Reconstruction) -> None:
        paths = self._cache_paths(rec.name)
        if paths is None:
            return
        paths[0].parent.mkdir(parents=True, exist_ok=True)
        tmp = paths[0].with_suffix('.tmp.obj')
        rec.mesh.to_trimesh().export(str(tmp))
        tmp.replace(paths[0])  # a crash mid-write never leaves half a mesh behind
        paths[1].write_text(json.dumps({
            'scale': rec.scale, 'iou': rec.iou, 'faces': len(rec.mesh.faces),
            'network': self.settings.network or 'default',
            'created': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, indent=2) + '\n')

    # -- reconstruction ---------------------------------------------------------------------

    def reconstruct(self, name: str, image_rgb: np.ndarray, labels: np.ndarray, label: int,
                    camera: PinholeCamera, ground: tuple[np.ndarray, float]) -> Reconstruction:
        """Reconstruct object `label` of one frame; ValueError saying why when it fails.

        `ground` is (n, h): the floor's upward unit normal in the camera frame and the camera
        height above it (`ground_plane_from_height` / `ground_plane_from_transform`).
        A reconstruction fitting this view with `min_iou` is kept; otherwise the best of the
        first `attempts` good views is, if it reaches `fallback_iou` (its T_cam_obj is then None
        when it came from an earlier frame).
        """
        t0 = time.perf_counter()
        why = view_problem(labels, label, self.settings)
        if why is not None:
            raise ValueError(f'not a good view: {why}')
        obj = labels == label
        s = self.settings
        net = self.load_network()
        x = preprocess(image_rgb, obj, size=net.image_size)
        with net.evaluating(), torch.no_grad():
            c = net.encode(x.to(net.device))
        mesh, T_obj_can = self._mesh(net, c)
        others = (labels != 0) & ~obj
        others = others if others.any() else None
        fitter = PoseFitter(mesh, self.fit_settings)
        # it stands on the floor: only upright poses are candidates (the yaw is free)
        fit = fitter.fit(obj, camera, None, others, rotations=upright_rotations(ground[0]))
        fit, viewpoint = self._front_or_back(c, fitter, fit, obj, camera, others)
        c, mesh, fit, refinement = self._refine(net, c, mesh, T_obj_can, fit, obj, camera,
                                                others)
        scale, metric, T = scale_to_ground(mesh, fit.T_cam_obj, *ground)
        rec = Reconstruction(name, metric, T, scale, fit.iou, time.perf_counter() - t0,
                             'network', viewpoint, refinement, c[0].cpu().numpy())
        if rec.iou < s.min_iou:
            best, tries = self._tries.get(name, (rec, 0))
            best, tries = (rec if rec.iou > best.iou else best), tries + 1
            self._tries[name] = best, tries
            if tries < s.attempts or best.iou < s.fallback_iou:
                raise ValueError(f'the reconstruction fits its view with IoU {rec.iou:.2f} < '
                                 f'{s.min_iou} (view {tries}, best {best.iou:.2f}; the best of '
                                 f'{s.attempts} is kept if >= {s.fallback_iou})')
            rec = best if best is rec else replace(best, T_cam_obj=None)
        self._tries.pop(name, None)
        self._store(rec)
        return rec
