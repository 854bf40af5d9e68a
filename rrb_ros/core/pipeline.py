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

"""FramePipeline: one synchronised frame in (camera, mask, image), object poses out.

Shared by the ROS node and the offline tools, so that a bag replayed through `rrb replay` gives
what the node gives live. It keeps the tracking state: the last accepted pose of each object
warm-starts the next frame. A new fit must reach `min_iou`; a tracked object keeps its track down
to `min_iou - track_margin` (hysteresis), and below that it is re-initialised.
Objects without a mesh are reconstructed from their first good view when the pipeline has an
`ObjectReconstructor` and the frame carries the image and the ground plane; while they are
tracked, good views from other directions are averaged into their shape
(`ObjectReconstructor.add_view`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
import time

import numpy as np

from .camera import PinholeCamera
from .fit import FitError, FitSettings, PoseFitter
from .mesh import Mesh
from .reconstruct.online import ObjectReconstructor, Reconstruction


@dataclass
class ObjectSpec:
    """One object the pipeline looks for."""

    name: str
    """Name, used in frame ids (`rrb/<name>`) and topics."""
    label: int
    """Value of this object's pixels in the instance mask (>= 1; 0 is the background)."""
    mesh: Mesh | None = None
    """Mesh in the object frame, metres; None when it is still to be reconstructed."""


@dataclass
class PipelineSettings:
    """What a frame needs to pass, on top of the fitter's settings."""

    fit: FitSettings = field(default_factory=FitSettings)
    """Render-and-compare settings shared by all objects."""
    min_iou: float = 0.75
    """Fits with a lower silhouette IoU are not reported and reset the object's tracking."""
    track_margin: float = 0.05
    """A fit warm-started from the previous frame's pose is kept down to min_iou - track_margin
    (hysteresis): a view that the mesh fits a little worse than min_iou, as a reconstructed
    mesh fits views from new directions, does not drop the track, and the global
    initialisation that would follow finds worse poses than tracking from the last one. A new
    track still needs min_iou; 0 = no hysteresis."""
    min_mask_pixels: int = 50
    """Objects with fewer mask pixels in a frame are reported as not visible."""
    reconstruction_slack: float = 0.05
    """A reconstructed mesh that fits its own view with IoU q is accepted in other frames down
    to min(min_iou, q - slack): no view fits it better than its own, roughly."""


@dataclass(frozen=True)
class Frame:
    """One synchronised observation (all arrays in the camera's image geometry)."""

    stamp_ns: int
    """Acquisition time of the image (nanoseconds), copied to every output."""
    frame_id: str
    """Camera optical frame of the image."""
    camera: PinholeCamera
    """Intrinsics of the (rectified) image."""
    mask: np.ndarray
    """(H, W) integer instance labels, 0 = background."""
    image: np.ndarray | None = None
    """(H, W, 3) uint8 RGB image, for overlays and reconstruction; optional."""
    ground: tuple[np.ndarray, float] | None = None
    """Floor plane (upward unit normal n, camera height h) in the camera frame; needed to
    reconstruct objects (metric scale), optional otherwise."""


@dataclass(frozen=True)
class ObjectPose:
    """An accepted pose of one object in one frame."""

    name: str
    label: int
    T_cam_obj: np.ndarray
    """(4, 4) object frame -> camera optical frame, metres."""
    iou: float
    """Silhouette IoU against the object's mask."""
    iterations: int
    seconds: float
    warm_started: bool
    """True when the previous frame's pose was the starting point."""


@dataclass(frozen=True)
class FrameResult:
    """Everything one frame produced."""

    stamp_ns: int
    frame_id: str
    poses: tuple[ObjectPose, ...]
    """Accepted poses, in the order of the pipeline's objects."""
    rejected: dict[str, str]
    """Object name -> why it has no pose in this frame."""
    seconds: float
    reconstructions: tuple[Reconstruction, ...] = ()
    """Objects that got a mesh in this frame (reconstructed, with their pose in `poses`)."""
    notes: dict[str, str] = field(default_factory=dict)
    """Object name -> what else happened to it (a view not added to its shape)."""


class FramePipeline:
    """Fits every known object in each frame, with tracking between frames."""

    def __init__(self, objects: list[ObjectSpec], settings: PipelineSettings | None = None,
                 reconstructor: ObjectReconstructor | None = None) -> None:
        """Prepare one fitter per object that has a mesh (or a cached reconstruction)."""
        self.settings = settings or PipelineSettings()
        names = [o.name for o in objects]
        if len(set(names)) != len(names):
            raise ValueError(f'object names must be unique, got {names}')
        labels = [o.label for o in objects]
        if len(set(labels)) != len(labels):
            raise ValueError(f'object labels must be unique, got {labels}')
        if any(label < 1 for label in labels):
            raise ValueError(f'object labels must be >= 1 (0 is the background), got {labels}')
        s = self.settings
        if (not 0.0 <= s.min_iou <= 1.0 or not 0.0 <= s.track_margin <= 1.0
                or s.min_mask_pixels < 0):
            raise ValueError(f'need 0 <= min_iou <= 1, 0 <= track_margin <= 1 and '
                             f'min_mask_pixels >= 0, got {s.min_iou}, {s.track_margin} and '
                             f'{s.min_mask_pixels}')
        self.objects = list(objects)
        self.reconstructor = reconstructor
        self.reconstructed = {o.name for o in self.objects if o.mesh is None}
        """Objects without a CAD model: their meshes come from reconstruction."""
        self.cached: list[Reconstruction] = []
        """Reconstructions loaded from the cache at start-up."""
        self._fitters: dict[str, PoseFitter] = {}
        for obj in self.objects:
            if obj.mesh is None and reconstructor is not None:
                rec = reconstructor.cached(obj.name)
                if rec is not None:
                    obj.mesh = rec.mesh
                    self.cached.append(rec)
            if obj.mesh is not None:
                self._fitters[obj.name] = PoseFitter(obj.mesh, self.settings.fit)
        self._last: dict[str, np.ndarray] = {}
        self._min_iou: dict[str, float] = {}
        """Acceptance IoU of reconstructed objects, where lower than settings.min_iou."""
        for rec in self.cached:
            self._accept_reconstruction_fit(rec)

    def _accept_reconstruction_fit(self, rec: Reconstruction) -> None:
        own = rec.iou - self.settings.reconstruction_slack
        if rec.views > 1:  # a shape of several views fits each a little less than its own
            own = min(own, self.min_iou(rec.name))
        if own < self.settings.min_iou:  # NaN (fit unknown) compares False: the default
            self._min_iou[rec.name] = own
        else:
            self._min_iou.pop(rec.name, None)

    def min_iou(self, name: str) -> float:
        """Return the silhouette IoU a fit of this object must reach to be reported."""
        return self._min_iou.get(name, self.settings.min_iou)

    def set_mesh(self, name: str, mesh: Mesh) -> None:
        """Give an object a (new) mesh; its tracking restarts."""
        obj = next(o for o in self.objects if o.name == name)
        obj.mesh = mesh
        self._fitters[name] = PoseFitter(mesh, self.settings.fit)
        self._last.pop(name, None)
        self._min_iou.pop(name, None)

    def reconstruct_again(self) -> list[str]:
        """Drop the meshes (and cache) of reconstructed objects; return their names.

        They are reconstructed from their next good view.
        """
        for name in self.reconstructed:
            self._fitters.pop(name, None)
            self._last.pop(name, None)
            next(o for o in self.objects if o.name == name).mesh = None
            if self.reconstructor is not None:
                self.reconstructor.forget(name)
        return sorted(self.reconstructed)

    def reset(self, name: str | None = None) -> None:
        """Forget the tracking state of one object (or of all)."""
        if name is None:
            self._last.clear()
        else:
            self._last.pop(name, None)

    def fitter(self, name: str) -> PoseFitter | None:
        """Return the fitter of an object (its mesh and box centre); None without a mesh."""
        return self._fitters.get(name)

    def last_pose(self, name: str) -> np.ndarray | None:
        """Last accepted T_cam_obj of an object, if it is being tracked."""
        return self._last.get(name)

    def process(self, frame: Frame) -> FrameResult:
        """Fit all objects in one frame. Raises ValueError when the frame itself is unusable."""
        t0 = time.perf_counter()
        mask = np.asarray(frame.mask)
        cam = frame.camera
        if mask.ndim != 2 or mask.shape != (cam.height, cam.width):
            raise ValueError(f'mask is {mask.shape[1] if mask.ndim > 1 else "?"}x{mask.shape[0]}'
                             f' but camera_info says {cam.width}x{cam.height}')
        if frame.image is not None and frame.image.shape[:2] != mask.shape:
            raise ValueError(f'image is {frame.image.shape[1]}x{frame.image.shape[0]} but the '
                             f'mask is {mask.shape[1]}x{mask.shape[0]}')
        poses, rejected, recs, notes = [], {}, [], {}
        labelled = mask != 0
        for obj in self.objects:
            fitter = self._fitters.get(obj.name)
            made_now = fitter is None  # its shape comes from this frame: no view to add
            obj_mask = mask == obj.label
            n = int(np.count_nonzero(obj_mask))
            if fitter is None:
                rec = self._reconstruct(obj, frame, n, rejected)
                if rec is None:
                    continue
                recs.append(rec)
                if rec.T_cam_obj is not None:
                    poses.append(ObjectPose(obj.name, obj.label, rec.T_cam_obj, rec.iou, 0,
                                            rec.seconds, False))
                    continue
                fitter = self._fitters[obj.name]  # made from an earlier view: fit this one
            if n < self.settings.min_mask_pixels:
                rejected[obj.name] = f'not visible ({n} mask pixels)'
                continue
            start = self._last.get(obj.name)
            # other objects' pixels may hide this one: they neither support nor refute a pose
            others = labelled & ~obj_mask
            try:
                res = fitter.fit(obj_mask, cam, start, ignore=others if others.any() else None)
            except FitError as exc:
                rejected[obj.name] = str(exc)
                self._last.pop(obj.name, None)
                continue
            need = self.min_iou(obj.name) - (self.settings.track_margin if start is not None
                                             else 0.0)
            if not np.all(np.isfinite(res.T_cam_obj)) or res.iou < need:
                rejected[obj.name] = (f'fit IoU {res.iou:.3f} below {need:.3f}'
                                      + (' (tracked)' if start is not None else ''))
                self._last.pop(obj.name, None)
                continue
            self._last[obj.name] = res.T_cam_obj
            pose = ObjectPose(obj.name, obj.label, res.T_cam_obj, res.iou, res.iterations,
                              res.seconds, start is not None)
            rec = None if made_now else self._add_view(obj, frame, pose, notes)
            if rec is not None:
                recs.append(rec)
                pose = replace(pose, T_cam_obj=rec.T_cam_obj, iou=rec.iou)
            poses.append(pose)
        return FrameResult(frame.stamp_ns, frame.frame_id, tuple(poses), rejected,
                           time.perf_counter() - t0, tuple(recs), notes)

    def _add_view(self, obj: ObjectSpec, frame: Frame, pose: ObjectPose,
                  notes: dict[str, str]) -> Reconstruction | None:
        """Offer a tracked reconstructed object's view to its shape; the new shape, if any."""
        if (self.reconstructor is None or obj.name not in self.reconstructed
                or frame.image is None or frame.ground is None):
            return None
        try:
            rec = self.reconstructor.add_view(obj.name, frame.image, frame.mask, obj.label,
                                              frame.camera, frame.ground, pose.T_cam_obj)
        except ValueError as exc:
            notes[obj.name] = f'view not added to the shape: {exc}'
            return None
        if rec is not None:  # in the same object frame: tracking goes on from this pose
            self.set_mesh(obj.name, rec.mesh)
            self._last[obj.name] = rec.T_cam_obj
            self._accept_reconstruction_fit(rec)
        return rec

    def _reconstruct(self, obj: ObjectSpec, frame: Frame, n_pixels: int,
                     rejected: dict[str, str]) -> Reconstruction | None:
        """Try to give `obj` a mesh from this frame; on failure say why in `rejected`."""
        if self.reconstructor is None:
            rejected[obj.name] = 'no mesh'
        elif n_pixels < self.settings.min_mask_pixels:
            rejected[obj.name] = f'no mesh yet; not visible ({n_pixels} mask pixels)'
        elif frame.image is None:
            rejected[obj.name] = 'no mesh yet; reconstruction needs the camera image'
        elif frame.ground is None:
            rejected[obj.name] = 'no mesh yet; reconstruction needs the ground plane'
        else:
            try:
                rec = self.reconstructor.reconstruct(obj.name, frame.image, frame.mask,
                                                     obj.label, frame.camera, frame.ground)
            except ValueError as exc:
                rejected[obj.name] = f'no mesh yet; {exc}'
                return None
            self.set_mesh(obj.name, rec.mesh)
            self._accept_reconstruction_fit(rec)
            if rec.T_cam_obj is not None:
                self._last[obj.name] = rec.T_cam_obj
            return rec
        return None
