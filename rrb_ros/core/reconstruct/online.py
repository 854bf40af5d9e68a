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

`ObjectReconstructor.add_view` lets later views of a tracked object improve its shape: the
network's codes live in the object's canonical frame, whatever the viewpoint, so the codes of
views from different directions can be averaged into one code. The mesh of the mean code is
fitted in the views at the object's tracked poses there and put in the object frame the object
is already tracked in, its origin moved to the new footprint's centre (tracking goes on, and
the object keeps its axes).
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
from ..egomotion import fuse_poses
from ..fit import FitSettings, PoseFitter
from ..init import upright_rotations
from ..mesh import footprint_origin, load_mesh, Mesh, MeshError
from ..metrics import silhouette_iou
from ..render import opencv_silhouette
from .mirror import mirror_averaged, MirrorAveraged
from .onet import OccupancyNetworkBase, preprocess
from .refine import refine_code, RefineSettings
from .scale import scale_to_ground
from .shapes import object_from_canonical, PADDING
from .viewpoint import camera_azimuth, half_circle_mass, ViewpointHead

UNCERTAINTY_POINTS = 20_000
"""Points at which `field_uncertainty` evaluates a code's occupancy field."""


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
    """Occupancy probability of the surface (None: the network's own: the calibrated level of
    the object's family when its name names one, `surface_level`, else the overall calibrated
    level stored with the shipped weights; 0.2 for ONet's)."""
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
    views: int = 4
    """Most views whose shape codes are averaged into an object's shape (1: the first view
    only). After the first, a view is added while the object is tracked (`add_view`) when it
    is a good view seen from at least `view_min_angle` away from every view already in."""
    view_min_angle: float = 0.5
    """Least angle (rad) between the directions, in the object frame, from which the object
    is seen in two views of its shape."""
    view_iou_margin: float = 0.1
    """The shape with a view added is kept unless its silhouettes match the masks of the views
    it is made of (this one included) by this much less mean IoU than the shape before. A
    guard against a view whose tracked pose is wrong, not a measure of shape: one view's shape
    fits its own view best, so a shape of more views, better in 3D, usually matches the views
    seen a little worse (0.03-0.09 on held-out chairs)."""
    view_weight_power: float = 0.0
    """The views' codes are averaged with weights u^-power, u the uncertain share of each
    view's occupancy field (`code_weights`): a view that shows little of the object (a chair
    from behind) counts less. 0 (the default): the plain mean. 4 gained 0.02-0.06 IoU on
    held-out shapes seen from random sides, nothing on a short arc, and tracked the demo's
    chair (another generator's) worse: box IoU 0.85 against 0.89 (see the README)."""
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
    network (None from the cache); with several views, their mean."""
    views: int = 1
    """How many views' codes were averaged into the shape (0 from a cache without them)."""
    fusion: str = ''
    """What adding the last view did ('' for the first view)."""
    T_obj_can: np.ndarray | None = None
    """4x4 similarity from the network's canonical frame to the object frame (metres)."""


@dataclass(frozen=True)
class _Silhouette:
    """A view's mask and the object's pose in it, to score shapes in that view."""

    camera: PinholeCamera
    mask: np.ndarray
    """(H, W) bool: the object's pixels."""
    ignore: np.ndarray | None
    """(H, W) bool: other objects' pixels, which may hide it (None: there are none)."""
    T_cam_obj: np.ndarray
    ground: tuple[np.ndarray, float]
    """The floor plane in the camera frame (`reconstruct`)."""

    def iou(self, mesh: Mesh) -> float:
        """Return the silhouette IoU of `mesh` (object frame) at the view's pose."""
        T = self.T_cam_obj
        drawn = opencv_silhouette(mesh.vertices @ T[:3, :3].T + T[:3, 3], mesh.faces,
                                  self.camera) != 0
        if self.ignore is not None:
            drawn &= ~self.ignore
        return silhouette_iou(drawn, self.mask)


@dataclass
class _Views:
    """The views an object's shape is made of (`ObjectReconstructor.add_view`)."""

    mesh: Mesh
    """The shape they make, object frame, metres."""
    silhouettes: list[_Silhouette]
    """The views seen in this run (not those of a cached shape)."""
    codes: list[np.ndarray]
    """(c_dim,) code of each view."""
    directions: list[np.ndarray]
    """Unit vector from the object's centre to the camera, object frame, per view ..."""
    tried: list[np.ndarray]
    """... and of the views that were not kept: their directions are not tried again."""
    T_obj_can: np.ndarray
    """4x4 similarity from the canonical frame to the object frame (metres)."""
    centre: np.ndarray
    """(3,) centre of the object's box in the object frame."""

    @classmethod
    def first(cls, rec: Reconstruction, silhouette: _Silhouette) -> _Views:
        """Return the one view `rec` was made from."""
        lo, hi = rec.mesh.vertices.min(0), rec.mesh.vertices.max(0)
        views = cls(rec.mesh, [silhouette], [np.asarray(rec.code, np.float32)], [], [],
                    rec.T_obj_can, (lo + hi) / 2)
        views.directions.append(views.seen_from(silhouette.T_cam_obj))
        return views

    def seen_from(self, T_cam_obj: np.ndarray) -> np.ndarray:
        """Return the unit direction from the object's centre to the camera, object frame."""
        R, t = T_cam_obj[:3, :3], T_cam_obj[:3, 3]
        d = -R.T @ t - self.centre
        return d / max(float(np.linalg.norm(d)), 1e-12)

    def angle_to(self, direction: np.ndarray) -> float:
        """Smallest angle (rad) between `direction` and the views' (kept or tried)."""
        known = np.asarray(self.directions + self.tried)
        return float(np.arccos(np.clip(known @ direction, -1.0, 1.0)).min())

    def to_json(self) -> dict:
        return {'codes': [c.tolist() for c in self.codes],
                'directions': [d.tolist() for d in self.directions],
                'T_obj_can': self.T_obj_can.tolist(), 'centre': self.centre.tolist()}

    @classmethod
    def from_json(cls, data: dict, mesh: Mesh) -> _Views:
        """Read `to_json`'s dict; ValueError (or KeyError, TypeError) when it does not fit."""
        codes = [np.asarray(c, np.float32) for c in data['codes']]
        directions = [np.asarray(d, np.float64).reshape(3) for d in data['directions']]
        T = np.asarray(data['T_obj_can'], np.float64).reshape(4, 4)
        if not codes or len(codes) != len(directions) or len({c.shape for c in codes}) != 1:
            raise ValueError('codes and directions do not match')
        if not all(np.isfinite(a).all() for a in [T, *codes, *directions]):
            raise ValueError('the views hold NaN or inf')
        return cls(mesh, [], codes, directions, [], T,
                   np.asarray(data['centre'], np.float64).reshape(3))


def _similarity_to_rigid(S: np.ndarray) -> np.ndarray:
    """Return the rigid pose of a 4x4 similarity seen from the camera: the same silhouette.

    Its scale is taken about the camera centre instead, shrinking the distance with the size.
    """
    T = np.array(S, dtype=np.float64)
    scale = np.cbrt(np.linalg.det(T[:3, :3]))
    T[:3, :3] /= scale
    T[:3, 3] /= scale
    return T


def field_uncertainty(net: OccupancyNetworkBase, codes: list[np.ndarray],
                      points: int = UNCERTAINTY_POINTS) -> np.ndarray:
    """Uncertain share u (V,) of the occupancy field of each code (c_dim,) of `net`.

    u = sum p (1 - p) / sum p over `points` fixed uniform points of the padded canonical cube
    (p the occupancy probability): near 0 for a crisp shape, up to 1 for a blur; 1 for a field
    with less than one point's worth of volume (no shape, nothing known). The points are the
    same for every call, so the u of two codes compare.
    """
    g = torch.Generator().manual_seed(0)
    cube = ((torch.rand(1, points, 3, generator=g) - 0.5) * (1 + PADDING)).to(net.device)
    out = []
    with net.evaluating(), torch.no_grad():
        for code in codes:
            c = torch.as_tensor(np.asarray(code, np.float32)).reshape(1, -1).to(net.device)
            p = torch.sigmoid(net.decode(cube, c)[0].double())
            mass = float(p.sum())
            out.append(float((p * (1 - p)).sum()) / mass if mass >= 1 else 1.0)
    return np.asarray(out)


def code_weights(net: OccupancyNetworkBase, codes: list[np.ndarray], power: float
                 ) -> np.ndarray:
    """Weights (V,), summing to 1, of V views' codes in their mean: u^-power (`field_uncertainty`).

    The network blurs what a view does not show: seen from behind, a chair's back hides its
    seat and legs, and the field comes out thick and uncertain (held-out chairs seen within
    30 deg of straight behind: IoU 0.42, from the front 0.53, from other sides 0.60). Giving
    such views less weight made the mean code better: held-out shapes, 4 random views each,
    mirror-averaged, mean IoU plain -> u^-4 weights: chairs 0.643 -> 0.662 (24 shapes), tables
    0.626 -> 0.690, sofas 0.885 -> 0.897, stools 0.672 -> 0.672 (16 each). power 0: equal
    weights, the default of `ReconstructSettings.view_weight_power`: the demo's chair, of
    another generator, tracked worse with 4.
    """
    if power == 0 or len(codes) == 1:
        return np.full(len(codes), 1.0 / len(codes))
    u = np.maximum(field_uncertainty(net, codes), 1e-6)
    log_w = -power * np.log(u)
    w = np.exp(log_w - log_w.max())
    return w / w.sum()


def others_of(labels: np.ndarray, obj: np.ndarray) -> np.ndarray | None:
    """Return the pixels of other objects than `obj` (None when there are none)."""
    others = (labels != 0) & ~obj
    return others if others.any() else None


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
    others = others_of(labels, obj)
    if others is not None and settings.occlusion_margin >= 0:
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
        if s.views < 1 or not 0 <= s.view_min_angle <= np.pi or s.view_iou_margin < 0:
            raise ValueError(f'need views >= 1, 0 <= view_min_angle <= pi and view_iou_margin '
                             f'>= 0, got {s.views}, {s.view_min_angle} and {s.view_iou_margin}')
        if not 0 <= s.view_weight_power < np.inf:
            raise ValueError(f'view_weight_power must be >= 0 and finite, got '
                             f'{s.view_weight_power}')
        self._views: dict[str, _Views] = {}
        """Per reconstructed object: the views its shape is made of."""

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

    def _level(self, net, name: str) -> float:
        """Surface probability of object `name`: `threshold`, else its family's (network's)."""
        return net.surface_level(name, self.settings.threshold)

    def _mesh(self, net, c: torch.Tensor, level: float) -> tuple[Mesh, np.ndarray]:
        """Return the mesh of code c in the object frame (canonical units) and its T_obj_can."""
        s = self.settings
        return object_from_canonical(net.code_mesh(
            c, threshold=level, resolution0=s.resolution0,
            upsampling_steps=s.upsampling_steps, max_faces=s.max_faces))

    def _refine(self, net, c: torch.Tensor, level: float, mesh: Mesh, T_obj_can: np.ndarray,
                fit, obj: np.ndarray, camera: PinholeCamera, others: np.ndarray | None):
        """Refine the shape code against the mask at the fitted pose, refit, keep the better.

        Returns the code, mesh, its T_obj_can and fit kept and a note on what was done.
        """
        s = self.settings
        if s.refine_iterations == 0:
            return c, mesh, T_obj_can, fit, ''
        T_cam_can = fit.T_cam_obj @ T_obj_can
        ref = refine_code(net, c, obj, camera, T_cam_can,
                          RefineSettings(iterations=s.refine_iterations,
                                         threshold=level), others)
        # the shape now sits at T_cam_can @ S, S a similarity: its rigid part, with the scale
        # taken about the camera centre instead (same silhouette), starts the refit
        T = _similarity_to_rigid(T_cam_can @ ref.S)
        try:
            refined, T_obj_can2 = self._mesh(net, ref.code, level)
            fit2 = PoseFitter(refined, self.fit_settings).fit(
                obj, camera, T @ np.linalg.inv(T_obj_can2), others)
        except ValueError as exc:  # no surface left, a broken mesh, a failed fit
            return c, mesh, T_obj_can, fit, f'refined shape dropped: {exc}'
        what = (f'silhouette loss {ref.loss_before:.3f} -> {ref.loss_after:.3f} in '
                f'{ref.seconds:.1f} s, refitted IoU {fit2.iou:.3f} against {fit.iou:.3f}')
        if fit2.iou < fit.iou - s.refine_iou_margin:
            return c, mesh, T_obj_can, fit, f'refined shape dropped ({what})'
        return ref.code, refined, T_obj_can2, fit2, f'shape refined ({what})'

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
        views = None
        if meta.get('network') == (self.settings.network or 'default') and 'views' in meta:
            try:  # the codes go on gathering views after a restart
                views = self._views[name] = _Views.from_json(meta['views'], mesh)
            except (KeyError, TypeError, ValueError):
                views = None
        nan = float('nan')
        return Reconstruction(name, mesh, None, float(meta.get('scale', nan)),
                              float(meta.get('iou', nan)), 0.0, str(paths[0]),
                              views=len(views.codes) if views else 0)

    def forget(self, name: str) -> None:
        """Delete the cached mesh of `name` (if any), its views and the attempts made so far."""
        self._tries.pop(name, None)
        self._views.pop(name, None)
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
        meta = {'scale': rec.scale, 'iou': rec.iou, 'faces': len(rec.mesh.faces),
                'network': self.settings.network or 'default',
                'created': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}
        if rec.name in self._views:
            meta['views'] = self._views[rec.name].to_json()
        paths[1].write_text(json.dumps(meta, indent=2) + '\n')

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
        level = self._level(net, name)
        mesh, T_obj_can = self._mesh(net, c, level)
        others = others_of(labels, obj)
        fitter = PoseFitter(mesh, self.fit_settings)
        # it stands on the floor: only upright poses are candidates (the yaw is free)
        fit = fitter.fit(obj, camera, None, others, rotations=upright_rotations(ground[0]))
        fit, viewpoint = self._front_or_back(c, fitter, fit, obj, camera, others)
        c, mesh, T_obj_can, fit, refinement = self._refine(net, c, level, mesh, T_obj_can, fit,
                                                           obj, camera, others)
        scale, metric, T = scale_to_ground(mesh, fit.T_cam_obj, *ground)
        silhouette = _Silhouette(camera, obj, others, T, ground)
        rec = kept = Reconstruction(name, metric, T, scale, fit.iou, time.perf_counter() - t0,
                                    'network', viewpoint, refinement, c[0].cpu().numpy(),
                                    T_obj_can=np.diag([scale, scale, scale, 1.0]) @ T_obj_can)
        if rec.iou < s.min_iou:
            best, seen, tries = self._tries.get(name, (rec, silhouette, 0))
            if rec.iou > best.iou:
                best, seen = rec, silhouette
            tries += 1
            self._tries[name] = best, seen, tries
            if tries < s.attempts or best.iou < s.fallback_iou:
                raise ValueError(f'the reconstruction fits its view with IoU {rec.iou:.2f} < '
                                 f'{s.min_iou} (view {tries}, best {best.iou:.2f}; the best of '
                                 f'{s.attempts} is kept if >= {s.fallback_iou})')
            kept, silhouette = best, seen
            rec = best if best is rec else replace(best, T_cam_obj=None)
        self._tries.pop(name, None)
        self._views[name] = _Views.first(kept, silhouette)
        self._store(rec)
        return rec

    def add_view(self, name: str, image_rgb: np.ndarray, labels: np.ndarray, label: int,
                 camera: PinholeCamera, ground: tuple[np.ndarray, float],
                 T_cam_obj: np.ndarray) -> Reconstruction | None:
        """Average this view's code into a tracked object's shape; return the new shape.

        `T_cam_obj` is the object's pose in this frame, fitted with its current mesh. Returns
        None, doing nothing, unless the object was reconstructed (here or in the cache, with
        its views), has fewer than `views` views, and this is a good view seen from at least
        `view_min_angle` away from the views tried. Then the mesh of the mean code is fitted to
        this view from the tracked pose, scaled on the ground plane (`ground`, as for
        `reconstruct`) and put in the object frame the object is tracked in, whose origin then
        moves to the centre of the new shape's footprint (its axes stay). It is kept unless
        its silhouettes at the object's poses in the views of this run (this one included)
        match their masks worse, by `view_iou_margin` in mean IoU, than the shape before: a
        view whose tracked pose is off does not spoil the shape. The returned pose is
        `T_cam_obj` with the origin moved. Raises ValueError saying why a view that was tried
        is not kept; its direction is not tried again.
        """
        t0 = time.perf_counter()
        views = self._views.get(name)
        if views is None or len(views.codes) >= self.settings.views:
            return None
        direction = views.seen_from(T_cam_obj)
        if (views.angle_to(direction) < self.settings.view_min_angle
                or view_problem(labels, label, self.settings) is not None):
            return None
        try:
            return self._add_view(name, views, direction, image_rgb, labels, label, camera,
                                  ground, T_cam_obj, t0)
        except ValueError:
            views.tried.append(direction)
            raise

    def _add_view(self, name: str, views: _Views, direction: np.ndarray, image_rgb: np.ndarray,
                  labels: np.ndarray, label: int, camera: PinholeCamera,
                  ground: tuple[np.ndarray, float], T_cam_obj: np.ndarray, t0: float
                  ) -> Reconstruction:
        net = self.load_network()
        obj = labels == label
        with net.evaluating(), torch.no_grad():
            code = net.encode(preprocess(image_rgb, obj, size=net.image_size).to(net.device))
        code = code[0].cpu().numpy()
        if code.shape != views.codes[0].shape:
            del self._views[name]
            raise ValueError(f'its views hold codes of another network ({len(views.codes[0])} '
                             f'values, not {len(code)}): no views are added any more')
        codes = views.codes + [code]
        weights = code_weights(net, codes, self.settings.view_weight_power)
        c = torch.from_numpy(np.average(codes, axis=0, weights=weights).astype(np.float32)
                             )[None].to(net.device)
        mesh, T_new_can = self._mesh(net, c, self._level(net, name))
        # placed in the object frame as it fits the views seen in this run, this one included
        seen = views.silhouettes + [_Silhouette(camera, obj, others_of(labels, obj), T_cam_obj,
                                                ground)]
        fitter, rigid, scales = PoseFitter(mesh, self.fit_settings), [], []
        for v in seen:  # from where the view's pose puts the canonical frame
            start = _similarity_to_rigid(v.T_cam_obj @ views.T_obj_can @ np.linalg.inv(T_new_can))
            scale, _, T_cam_new = scale_to_ground(
                mesh, fitter.fit(v.mask, v.camera, start, v.ignore).T_cam_obj, *v.ground)
            rigid.append(np.linalg.inv(v.T_cam_obj) @ T_cam_new)
            scales.append(scale)
        T_obj_new, scale = fuse_poses(np.asarray(rigid)), float(np.mean(scales))
        mesh = replace(mesh, vertices=scale * mesh.vertices @ T_obj_new[:3, :3].T
                       + T_obj_new[:3, 3])
        before = [v.iou(views.mesh) for v in seen]
        after = [v.iou(mesh) for v in seen]
        if np.mean(after) < np.mean(before) - self.settings.view_iou_margin:
            raise ValueError(f'the shape of {len(codes)} views matches the masks of {len(seen)} '
                             f'views with mean IoU {np.mean(after):.3f}, the shape before with '
                             f'{np.mean(before):.3f}')
        # the object's origin moves to the centre of the new shape's footprint, as for the first
        # view; its axes stay
        shift = np.eye(4)
        shift[:3, 3] = footprint_origin(mesh.vertices)
        mesh = replace(mesh, vertices=mesh.vertices - shift[:3, 3])
        seen = [replace(v, T_cam_obj=v.T_cam_obj @ shift) for v in seen]
        T_cam_obj, T_obj_new = T_cam_obj @ shift, np.linalg.inv(shift) @ T_obj_new
        views.centre = views.centre - shift[:3, 3]
        views.mesh, views.silhouettes, views.codes = mesh, seen, codes
        views.directions.append(direction)
        views.T_obj_can = T_obj_new @ np.diag([scale, scale, scale, 1.0]) @ T_new_can
        rec = Reconstruction(name, mesh, np.array(T_cam_obj, dtype=np.float64), scale, after[-1],
                             time.perf_counter() - t0, 'network', code=c[0].cpu().numpy(),
                             views=len(codes), T_obj_can=views.T_obj_can,
                             fusion=f'silhouettes in {len(seen)} views: mean IoU '
                                    f'{np.mean(after):.3f} ({np.mean(before):.3f} before)')
        self._store(rec)
        return rec
