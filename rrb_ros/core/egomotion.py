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

"""Egomotion from static objects (paper section 4.1): object poses over time give the camera.

A static object seen at T_cam_obj(t) places the camera at
T_world_cam(t) = T_world_obj @ inverse(T_cam_obj(t)). The world frame is the frame of the
first object seen (or of a configured anchor object), fixed when it is first seen; objects
first seen later join the map at T_world_obj = T_world_cam @ T_cam_obj from the camera pose of
that frame. With several objects in view, each one is a hypothesis of the camera pose; they
are fused with weights (e.g. the fit IoU) after rejecting the ones that disagree with the
consensus, and a frame whose camera jumps too far from the previous one is dropped (the
original dropped frames whose squared jump was >= 0.01 m^2, i.e. 0.1 m).

ROS-free; transforms are named `T_a_b` as in `rrb_ros.core.geometry`, distances are metres,
angles degrees, stamps seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Mapping

import numpy as np

from rrb_ros.core.geometry import check_rigid, invert_T, rotation_angle
from rrb_ros.core.metrics import apply_alignment, evaluate_with_alignment, Trajectory


@dataclass
class EgomotionSettings:
    """Settings of `ObjectCentricOdometry`."""

    anchor: str = ''
    """Object whose frame is the world frame; '' = the first object seen (the one of highest
    weight, then first by name, among the objects of the first frame)."""
    max_translation_deviation: float = 0.10
    """An object whose camera hypothesis lies farther than this from the consensus camera
    position is an outlier (metres)."""
    max_rotation_deviation: float = 10.0
    """An object whose camera hypothesis turns more than this from the consensus camera
    orientation is an outlier (degrees)."""
    max_jump: float = 0.1
    """A frame whose fused camera position is farther than this from the previous accepted
    one is dropped (metres per frame interval; the original's squared threshold 0.01 m^2).
    After a gap of k typical intervals (the median of the recent ones: the objects were out of
    view), the camera may have moved k times as far. inf disables it."""
    max_dropped_frames: int = 10
    """After this many consecutive frames dropped for jumping, the next estimate is accepted
    anyway: the camera has really moved (e.g. after a gap in the input). 0 = never."""
    min_weight: float = 0.0
    """Objects whose weight is not above this are ignored (e.g. a failed fit with IoU 0)."""
    add_objects: bool = True
    """Add objects first seen after the start to the map (False: only the first frame's)."""

    def __post_init__(self) -> None:
        for name in ('max_translation_deviation', 'max_rotation_deviation', 'max_jump'):
            value = float(getattr(self, name))
            if not value > 0.0:  # NaN fails too
                raise ValueError(f'{name} must be positive, got {value}')
        if int(self.max_dropped_frames) != self.max_dropped_frames or self.max_dropped_frames < 0:
            raise ValueError(f'max_dropped_frames must be a whole number >= 0, got '
                             f'{self.max_dropped_frames}')
        if not (math.isfinite(float(self.min_weight)) and self.min_weight >= 0.0):
            raise ValueError(f'min_weight must be finite and >= 0 (a weight 0 is a failed fit), '
                             f'got {self.min_weight}')


@dataclass(frozen=True)
class EgoEstimate:
    """The camera pose of one accepted frame."""

    stamp: float
    """Frame stamp, seconds."""
    T_world_cam: np.ndarray
    """(4, 4) camera pose in the world (anchor object) frame, metres."""
    used: tuple[str, ...]
    """Objects whose hypotheses were fused (inliers), sorted by name."""
    rejected: tuple[str, ...]
    """Known objects rejected as outliers in this frame, sorted by name."""
    added: tuple[str, ...] = ()
    """Objects added to the map in this frame (at the fused camera pose), sorted by name."""


class ObjectCentricOdometry:
    """Camera trajectory from the poses of static objects, one frame at a time.

    Call `update(stamp, {name: (T_cam_obj, weight)})` per frame with increasing stamps; the
    accepted camera poses are kept (`trajectory()`), the map of objects in `object_map`.
    `status` says why the last `update` returned None.
    """

    def __init__(self, settings: EgomotionSettings | None = None) -> None:
        """Start with an empty map and trajectory."""
        self.settings = settings if settings is not None else EgomotionSettings()
        self.reset()

    def reset(self) -> None:
        """Forget the map and the trajectory."""
        self._map: dict[str, np.ndarray] = {}
        self._stamps: list[float] = []
        self._poses: list[np.ndarray] = []
        self._dropped = 0
        self.status = 'no frame yet'

    def __len__(self) -> int:
        """Return the number of accepted frames."""
        return len(self._stamps)

    @property
    def object_map(self) -> dict[str, np.ndarray]:
        """Map name -> T_world_obj (4, 4) of every object in the map (copies)."""
        return {name: T.copy() for name, T in self._map.items()}

    @property
    def world_anchor(self) -> str | None:
        """The object whose frame is the world frame, None before the first frame."""
        return next(iter(self._map), None)

    def trajectory(self) -> Trajectory:
        """Return the accepted camera poses T_world_cam; ValueError when there are none."""
        if not self._stamps:
            raise ValueError('no camera pose estimated yet')
        return Trajectory(np.array(self._stamps), np.array(self._poses))

    def update(self, stamp: float,
               observations: Mapping[str, tuple[np.ndarray, float]]) -> EgoEstimate | None:
        """Add one frame: `observations` maps object name -> (T_cam_obj (4, 4), weight).

        Returns the frame's camera pose, or None when the frame gives none (see `status`):
        nothing usable in view, no known object in view, the anchor not seen yet, a stamp not
        newer than the last accepted one, or a jump beyond `max_jump`. Raises ValueError for
        a malformed pose (not a finite 4x4 rigid transform) or stamp.
        """
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise ValueError(f'stamp must be finite, got {stamp}')
        obs = {}
        for name, (T, weight) in observations.items():
            T = check_rigid(T, f'T_cam_obj of {name!r}')
            weight = float(weight)
            if math.isfinite(weight) and weight > self.settings.min_weight:
                obs[str(name)] = (T, weight)
        if self._stamps and stamp <= self._stamps[-1]:
            return self._none(f'stamp {stamp:.6f} is not newer than the last accepted '
                              f'{self._stamps[-1]:.6f}')
        if not obs:
            return self._none('no object with a usable weight in view')
        if not self._map:
            return self._start(stamp, obs)
        known = {n: o for n, o in obs.items() if n in self._map}
        if not known:
            return self._none(f'no mapped object in view (seen: {", ".join(sorted(obs))})')
        names = sorted(known)
        hyps = np.array([self._map[n] @ invert_T(known[n][0]) for n in names])
        weights = np.array([known[n][1] for n in names])
        inliers = self._inliers(hyps, weights)
        T_world_cam = fuse_poses(hyps[inliers], weights[inliers])
        if self._stamps and self._jumped(T_world_cam, stamp):
            return None
        self._dropped = 0
        used = tuple(n for n, keep in zip(names, inliers) if keep)
        rejected = tuple(n for n, keep in zip(names, inliers) if not keep)
        added = self._add_new(T_world_cam, obs) if self.settings.add_objects else ()
        return self._accept(stamp, T_world_cam, used, rejected, added)

    # -- steps ---------------------------------------------------------------------------

    def _none(self, why: str) -> None:
        self.status = why
        return None

    def _start(self, stamp: float, obs: dict) -> EgoEstimate | None:
        anchor = self.settings.anchor
        if anchor and anchor not in obs:
            return self._none(f'anchor object {anchor!r} not seen yet')
        if not anchor:
            anchor = min(obs, key=lambda n: (-obs[n][1], n))
        self._map[anchor] = np.eye(4)
        T_world_cam = invert_T(obs[anchor][0])
        added = self._add_new(T_world_cam, obs)
        return self._accept(stamp, T_world_cam, (anchor,), (), added)

    def _inliers(self, hyps: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Mask of the hypotheses that agree with the weighted consensus.

        The consensus starts from the hypothesis with the most weight agreeing with it (every
        hypothesis is tried, so one confident outlier cannot drag a mean), is refined as the
        fusion of its supporters, and the inliers are the hypotheses close to that fusion.
        """
        agree = np.array([[self._agree(a, b) for b in hyps] for a in hyps])
        support = agree @ weights
        best = int(np.lexsort((-weights, -support))[0])
        consensus = fuse_poses(hyps[agree[best]], weights[agree[best]])
        inliers = np.array([self._agree(consensus, h) for h in hyps])
        return inliers if inliers.any() else agree[best]

    def _agree(self, T_a: np.ndarray, T_b: np.ndarray) -> bool:
        s = self.settings
        return bool(np.linalg.norm(T_a[:3, 3] - T_b[:3, 3]) <= s.max_translation_deviation
                    and math.degrees(rotation_angle(T_a[:3, :3], T_b[:3, :3]))
                    <= s.max_rotation_deviation)

    def _jumped(self, T_world_cam: np.ndarray, stamp: float) -> bool:
        jump = float(np.linalg.norm(T_world_cam[:3, 3] - self._poses[-1][:3, 3]))
        recent = np.diff(self._stamps[-11:])
        intervals = max(1.0, (stamp - self._stamps[-1]) / float(np.median(recent))
                        if len(recent) else 1.0)
        if jump <= self.settings.max_jump * intervals:
            return False
        limit = self.settings.max_dropped_frames
        if limit and self._dropped >= limit:
            return False  # the camera has really moved: accept and continue from here
        self._dropped += 1
        self.status = (f'camera jumped {jump:.3f} m > max_jump {self.settings.max_jump} m x '
                       f'{intervals:.3g} frame interval(s) ({self._dropped} frame(s) dropped in '
                       'a row)')
        return True

    def _add_new(self, T_world_cam: np.ndarray, obs: dict) -> tuple[str, ...]:
        added = tuple(sorted(n for n in obs if n not in self._map))
        for name in added:
            self._map[name] = T_world_cam @ obs[name][0]
        return added

    def _accept(self, stamp: float, T_world_cam: np.ndarray, used: tuple[str, ...],
                rejected: tuple[str, ...], added: tuple[str, ...]) -> EgoEstimate:
        self._stamps.append(stamp)
        self._poses.append(T_world_cam)
        self.status = 'ok'
        return EgoEstimate(stamp, T_world_cam.copy(), tuple(sorted(used)), rejected, added)


# --------------------------------------------------------------------------- fusion


def chordal_mean(rotations: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted chordal L2 mean of (N, 3, 3) rotations: the SVD projection of sum w_i R_i."""
    R = np.asarray(rotations, dtype=np.float64)
    if R.ndim != 3 or R.shape[1:] != (3, 3) or R.shape[0] < 1:
        raise ValueError(f'rotations must be (N>=1, 3, 3), got {R.shape}')
    w = _check_weights(weights, R.shape[0])
    U, _, Vt = np.linalg.svd(np.einsum('n,nij->ij', w, R))
    S = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt)) or 1.0])
    return U @ S @ Vt


def fuse_poses(poses: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Fuse (N, 4, 4) poses: weighted mean translation, weighted chordal mean rotation."""
    T = np.asarray(poses, dtype=np.float64)
    if T.ndim != 3 or T.shape[1:] != (4, 4) or T.shape[0] < 1:
        raise ValueError(f'poses must be (N>=1, 4, 4), got {T.shape}')
    w = _check_weights(weights, T.shape[0])
    out = np.eye(4)
    out[:3, :3] = chordal_mean(T[:, :3, :3], w)
    out[:3, 3] = w @ T[:, :3, 3] / w.sum()
    return out


# --------------------------------------------------------------------------- comparison


def compare_trajectories(ref: Trajectory, est: Trajectory, mode: str = 'sim3', delta: int = 1,
                         max_diff: float = 0.01) -> tuple[Trajectory, dict[str, float]]:
    """Align all of `est` to `ref` and score it (`metrics.evaluate_trajectory`).

    The alignment (R, t, s) is estimated on the poses associated within `max_diff` seconds,
    as `metrics.align` does, and applied to every pose of `est`, e.g. to draw an ORB-SLAM
    trajectory in the RRB world frame. Returns (aligned `est`, the metrics dictionary).
    """
    scores, (R, t, s) = evaluate_with_alignment(ref, est, mode, delta, max_diff)
    return apply_alignment(est, R, t, s), scores


# --------------------------------------------------------------------------- helpers


def _check_weights(weights: np.ndarray | None, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0.0) or w.sum() <= 0.0:
        raise ValueError(f'weights must be {n} finite non-negative values with a positive sum, '
                         f'got {w.tolist()}')
    return w
