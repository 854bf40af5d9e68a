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

"""Evaluation metrics: object pose errors, box and silhouette IoU, trajectory ATE / RPE.

Object pose metrics follow the original evaluation (axis-aligned boxes of the posed mesh in the
camera frame) and the viewpoint literature (geodesic error, Acc@pi/6). Trajectory metrics follow
the definitions of evo (github.com/MichaelGrupp/evo, checked against 1.38.1) so that numbers
agree with `evo_ape` / `evo_rpe` on the same inputs: nearest-stamp association, Umeyama
alignment of positions, APE translation part and RPE over consecutive frame pairs.

Transforms are named `T_a_b` as in `rrb_ros.core.geometry`. Distances are in metres, angles in
degrees unless a name says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from rrb_ros.core.geometry import (
    invert_T,
    matrix_from_quat,
    quat_from_matrix,
    rotvec,
    umeyama,
)
from rrb_ros.core.mesh import box_corners, Mesh

ACC_THRESHOLD_DEG = 30.0
"""Threshold of the standard viewpoint accuracy Acc@pi/6, in degrees."""


# --------------------------------------------------------------------------- object pose


def rotation_error_deg(R_pred: np.ndarray, R_gt: np.ndarray) -> float:
    """Geodesic rotation error ||log(R_pred^T R_gt)|| in degrees, in [0, 180].

    Equal to ||log(R_pred^T R_gt)||_F / sqrt(2), the viewpoint error of Render for CNN. Computed
    from the rotation vector rather than arccos of the trace, which loses precision near 0.
    """
    R_pred = _check_shape(R_pred, (3, 3), 'R_pred')
    R_gt = _check_shape(R_gt, (3, 3), 'R_gt')
    return float(np.degrees(np.linalg.norm(rotvec(R_pred.T @ R_gt))))


def translation_error(t_pred: np.ndarray, t_gt: np.ndarray) -> tuple[float, float]:
    """(||t_pred - t_gt|| in metres, the same divided by ||t_gt||; NaN when t_gt is zero)."""
    t_pred = _check_shape(np.reshape(t_pred, -1), (3,), 't_pred')
    t_gt = _check_shape(np.reshape(t_gt, -1), (3,), 't_gt')
    err = float(np.linalg.norm(t_pred - t_gt))
    ref = float(np.linalg.norm(t_gt))
    return err, (err / ref if ref > 0.0 else math.nan)


def acc_at(errors_deg: Iterable[float], threshold_deg: float = ACC_THRESHOLD_DEG) -> float:
    """Fraction of rotation errors (degrees) strictly below `threshold_deg` (Acc@pi/6 default)."""
    e = errors_deg if isinstance(errors_deg, np.ndarray) else list(errors_deg)
    e = np.asarray(e, dtype=np.float64).reshape(-1)
    if e.size == 0:
        raise ValueError('acc_at needs at least one error')
    return float(np.count_nonzero(e < threshold_deg) / e.size)


def box_iou_axis_aligned(verts_pred_cam: np.ndarray, verts_gt_cam: np.ndarray) -> float:
    """IoU of the axis-aligned boxes of two point sets, both in the camera frame.

    verts_pred_cam: (N, 3), verts_gt_cam: (M, 3) points (metres), typically the vertices of the
    predicted and ground-truth meshes posed in the camera optical frame. This is the 3D box
    metric of the original evaluation (boxes aligned with the camera axes, not the object's).
    A degenerate (zero-volume) union gives 0.
    """
    a = _check_points(verts_pred_cam, 'verts_pred_cam')
    b = _check_points(verts_gt_cam, 'verts_gt_cam')
    lo_a, hi_a = a.min(0), a.max(0)
    lo_b, hi_b = b.min(0), b.max(0)
    inter = float(np.prod(np.clip(np.minimum(hi_a, hi_b) - np.maximum(lo_a, lo_b), 0.0, None)))
    union = float(np.prod(hi_a - lo_a) + np.prod(hi_b - lo_b)) - inter
    return inter / union if union > 0.0 else 0.0


def box_iou_oriented(corners_a: np.ndarray, corners_b: np.ndarray) -> float:
    """Exact IoU of two oriented 3D boxes given by their (8, 3) corners (any order, metres).

    E.g. `transform_points(T_cam_obj, box_corners(mesh))`. The intersection of two convex
    polytopes is convex, and each of its vertices is a vertex of one box inside the other or
    the crossing of an edge of one box with a face plane of the other, so the intersection
    volume is the convex-hull volume of those points (no sampling). Disjoint or touching boxes
    give 0, identical boxes 1. Works for any two convex hulls of 8 points.
    """
    a = _check_shape(corners_a, (8, 3), 'corners_a')
    b = _check_shape(corners_b, (8, 3), 'corners_b')
    hull_a, hull_b = _hull(a, 'corners_a'), _hull(b, 'corners_b')
    scale = max(float(np.ptp(a, axis=0).max()), float(np.ptp(b, axis=0).max()))
    tol = 1e-9 * scale
    pts = [a[_inside(a, hull_b, tol)], b[_inside(b, hull_a, tol)],
           _edge_plane_crossings(a, hull_a, hull_b, tol),
           _edge_plane_crossings(b, hull_b, hull_a, tol)]
    pts = np.concatenate(pts, axis=0)
    inter = 0.0
    if len(pts) >= 4:
        try:
            inter = float(ConvexHull(pts).volume)
        except QhullError:  # flat or empty intersection: boxes touch at a face, edge or corner
            inter = 0.0
    union = hull_a.volume + hull_b.volume - inter
    return float(min(max(inter / union, 0.0), 1.0)) if union > 0.0 else 0.0


def silhouette_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two (H, W) masks (bool, or non-zero = inside); two empty masks give 1."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f'silhouette_iou needs two (H, W) masks of one shape, got {a.shape}, '
                         f'{b.shape}')
    a, b = a.astype(bool), b.astype(bool)
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 1.0


def transform_points(T_a_b: np.ndarray, points_b: np.ndarray) -> np.ndarray:
    """Map (N, 3) points from frame b to frame a with a 4x4 transform."""
    T = _check_shape(T_a_b, (4, 4), 'T_a_b')
    p = _check_points(points_b, 'points_b')
    return p @ T[:3, :3].T + T[:3, 3]


def box_iou_posed(mesh: Mesh, T_cam_obj_pred: np.ndarray, T_cam_obj_gt: np.ndarray,
                  mesh_gt: Mesh | None = None, oriented: bool = False) -> float:
    """Box IoU of `mesh` posed at the prediction and `mesh_gt` (default: `mesh`) at the truth.

    oriented=False: axis-aligned boxes of the posed vertices in the camera frame (the original
    evaluation, `box_iou_axis_aligned`). oriented=True: the meshes' own axis-aligned boxes
    (`box_corners`) posed rigidly, compared exactly with `box_iou_oriented`.
    """
    mesh_gt = mesh if mesh_gt is None else mesh_gt
    if oriented:
        return box_iou_oriented(transform_points(T_cam_obj_pred, box_corners(mesh)),
                                transform_points(T_cam_obj_gt, box_corners(mesh_gt)))
    return box_iou_axis_aligned(transform_points(T_cam_obj_pred, mesh.vertices),
                                transform_points(T_cam_obj_gt, mesh_gt.vertices))


@dataclass(frozen=True)
class PoseErrors:
    """Errors of one predicted object pose against the ground truth (one frame)."""

    rot_err_deg: float
    """Geodesic rotation error, degrees."""
    trans_err_m: float
    """Translation error ||t_pred - t_gt||, metres."""
    trans_err_rel: float
    """Translation error divided by the true distance ||t_gt|| (dimensionless)."""
    box_iou: float | None = None
    """IoU of the camera-axis-aligned boxes of the posed meshes, or None if not computed."""
    box_iou_oriented: float | None = None
    """Exact IoU of the posed object boxes, or None if not computed."""
    silhouette_iou: float | None = None
    """IoU of the rendered silhouette and the mask, or None if not computed."""


def pose_errors(T_cam_obj_pred: np.ndarray, T_cam_obj_gt: np.ndarray, mesh: Mesh | None = None,
                mesh_gt: Mesh | None = None, mask_pred: np.ndarray | None = None,
                mask_gt: np.ndarray | None = None) -> PoseErrors:
    """All per-frame metrics of one pose; box IoUs need `mesh`, silhouette IoU both masks."""
    T_pred = _check_shape(T_cam_obj_pred, (4, 4), 'T_cam_obj_pred')
    T_gt = _check_shape(T_cam_obj_gt, (4, 4), 'T_cam_obj_gt')
    t_err, t_rel = translation_error(T_pred[:3, 3], T_gt[:3, 3])
    box = box_obb = sil = None
    if mesh is not None:
        box = box_iou_posed(mesh, T_pred, T_gt, mesh_gt)
        box_obb = box_iou_posed(mesh, T_pred, T_gt, mesh_gt, oriented=True)
    if mask_pred is not None and mask_gt is not None:
        sil = silhouette_iou(mask_pred, mask_gt)
    return PoseErrors(rotation_error_deg(T_pred[:3, :3], T_gt[:3, :3]), t_err, t_rel,
                      box, box_obb, sil)


def summarize(errors: Sequence[PoseErrors]) -> dict[str, float]:
    """Aggregate per-frame errors; metrics nobody computed are NaN.

    Keys: `frames` (count), `rot_err_median_deg`, `rot_err_mean_deg`, `acc_pi6` (fraction of
    frames with rotation error < 30 deg), `trans_err_median_m`, `trans_err_median_rel`
    (median of ||t_pred - t_gt|| / ||t_gt||), `box_iou_mean` (camera-axis-aligned boxes),
    `box_iou_oriented_mean`, `silhouette_iou_mean`.
    """
    errors = list(errors)
    if not errors:
        raise ValueError('summarize needs at least one PoseErrors')

    def mean_of(name: str) -> float:
        vals = [getattr(e, name) for e in errors if getattr(e, name) is not None]
        return float(np.mean(vals)) if vals else math.nan

    rot = np.array([e.rot_err_deg for e in errors])
    return {
        'frames': len(errors),
        'rot_err_median_deg': float(np.median(rot)),
        'rot_err_mean_deg': float(np.mean(rot)),
        'acc_pi6': acc_at(rot, ACC_THRESHOLD_DEG),
        'trans_err_median_m': float(np.median([e.trans_err_m for e in errors])),
        'trans_err_median_rel': float(np.median([e.trans_err_rel for e in errors])),
        'box_iou_mean': mean_of('box_iou'),
        'box_iou_oriented_mean': mean_of('box_iou_oriented'),
        'silhouette_iou_mean': mean_of('silhouette_iou'),
    }


# --------------------------------------------------------------------------- trajectories


@dataclass(frozen=True)
class Trajectory:
    """A stamped sequence of poses, e.g. T_world_cam of a camera (evo's PoseTrajectory3D)."""

    stamps: np.ndarray
    """(N,) float64 timestamps, seconds."""
    poses: np.ndarray
    """(N, 4, 4) float64 rigid transforms (translations in metres)."""

    def __post_init__(self) -> None:
        stamps = np.asarray(self.stamps, dtype=np.float64)
        poses = np.asarray(self.poses, dtype=np.float64)
        if stamps.ndim != 1 or stamps.size == 0:
            raise ValueError(f'Trajectory stamps must be (N>=1,), got {stamps.shape}')
        if poses.shape != (stamps.size, 4, 4):
            raise ValueError(f'Trajectory poses must be ({stamps.size}, 4, 4), got {poses.shape}')
        if not (np.all(np.isfinite(stamps)) and np.all(np.isfinite(poses))):
            raise ValueError('Trajectory contains NaN or inf')
        object.__setattr__(self, 'stamps', stamps)
        object.__setattr__(self, 'poses', poses)

    def __len__(self) -> int:
        """Return the number of poses."""
        return self.stamps.size

    @property
    def positions(self) -> np.ndarray:
        """(N, 3) translations, metres."""
        return self.poses[:, :3, 3]

    def subset(self, ids: Sequence[int] | np.ndarray) -> Trajectory:
        """Return the poses at the given indices (in that order)."""
        ids = np.asarray(ids, dtype=np.int64)
        return Trajectory(self.stamps[ids], self.poses[ids])


def read_tum(path: str | Path) -> Trajectory:
    """Read a TUM file: `timestamp tx ty tz qx qy qz qw` per line, '#' starts a comment line.

    Quaternions are normalised (as evo does); blank lines are skipped.
    """
    stamps, poses = [], []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            fields = line.split()
            if len(fields) != 8:
                raise ValueError(f'{path}:{lineno}: TUM lines need 8 numbers, got {len(fields)}')
            try:
                vals = [float(v) for v in fields]
            except ValueError:
                raise ValueError(f'{path}:{lineno}: not a number in {line!r}') from None
            if not np.all(np.isfinite(vals)):
                raise ValueError(f'{path}:{lineno}: NaN or inf in {line!r}')
            T = np.eye(4)
            T[:3, :3] = matrix_from_quat(vals[4:8])
            T[:3, 3] = vals[1:4]
            stamps.append(vals[0])
            poses.append(T)
    if not stamps:
        raise ValueError(f'{path}: no poses')
    order = np.argsort(stamps, kind='stable')  # RPE pairs neighbours in time, not in the file
    return Trajectory(np.array(stamps)[order], np.array(poses)[order])


def write_tum(path: str | Path, traj: Trajectory, header: str | None = None) -> None:
    """Write a TUM file (`timestamp tx ty tz qx qy qz qw`, full float precision)."""
    with open(path, 'w') as f:
        if header:
            for line in header.splitlines():
                f.write(f'# {line}\n')
        for stamp, T in zip(traj.stamps, traj.poses):
            vals = [stamp, *T[:3, 3], *quat_from_matrix(T[:3, :3])]
            f.write(' '.join(repr(float(v)) for v in vals) + '\n')


def _matching_time_indices(stamps_1: np.ndarray, stamps_2: np.ndarray,
                           max_diff: float) -> tuple[list[int], list[int]]:
    """Index pairs (i into stamps_1, j into stamps_2) of nearest stamps; evo's algorithm.

    Every stamp of the first list takes its nearest stamp of the second list if it lies within
    max_diff (ties go to the earlier one). A stamp of the second list can be matched twice.
    """
    ids_1: list[int] = []
    ids_2: list[int] = []
    if not np.all(np.diff(stamps_2) >= 0):
        for i, s in enumerate(stamps_1):
            diffs = np.abs(stamps_2 - s)
            j = int(np.argmin(diffs))
            if diffs[j] <= max_diff:
                ids_1.append(i)
                ids_2.append(j)
        return ids_1, ids_2
    for i, s in enumerate(stamps_1):
        if s < stamps_2[0] - max_diff or s > stamps_2[-1] + max_diff:
            continue
        j = min(int(np.searchsorted(stamps_2, s, side='right')), len(stamps_2) - 1)
        diff_ub = stamps_2[j] - s
        diff_lb = s - stamps_2[j - 1] if j > 0 else math.inf
        if diff_ub <= max_diff and diff_ub < diff_lb:
            ids_1.append(i)
            ids_2.append(j)
        elif diff_lb <= max_diff and diff_lb <= diff_ub:
            ids_1.append(i)
            ids_2.append(j - 1)
    return ids_1, ids_2


def associate(ref: Trajectory, est: Trajectory, max_diff: float = 0.01
              ) -> tuple[Trajectory, Trajectory]:
    """Pair poses by nearest timestamp within `max_diff` seconds, as evo's associate_trajectories.

    The trajectory with fewer poses (`est` on a tie) keeps every pose that finds a partner in
    the other one; the other contributes its nearest pose, which may repeat. Returns the matched
    (ref, est) of equal length; raises ValueError if nothing matches.
    """
    est_is_longer = len(est) > len(ref)
    short, long_ = (ref, est) if est_is_longer else (est, ref)
    ids_short, ids_long = _matching_time_indices(short.stamps, long_.stamps, max_diff)
    if not ids_short:
        raise ValueError(f'no matching timestamps within {max_diff} s '
                         f'({len(ref)} reference, {len(est)} estimated poses)')
    short, long_ = short.subset(ids_short), long_.subset(ids_long)
    return (short, long_) if est_is_longer else (long_, short)


def align(ref: Trajectory, est: Trajectory, mode: str = 'sim3'
          ) -> tuple[Trajectory, tuple[np.ndarray, np.ndarray, float]]:
    """Align `est` to `ref` (associated, equal length) by Umeyama on positions.

    mode: 'sim3' (rotation, translation, scale), 'se3' (scale 1) or 'none'. As evo's
    `align(correct_scale=True)`, the scale multiplies the estimated translations only, then the
    rigid part is applied: T' = [R_a R_i, R_a s t_i + t_a]; rotations stay rotations.
    Returns the aligned estimate and (R (3, 3), t (3,) metres, s).
    """
    _check_pair(ref, est)
    if mode == 'none':
        return est, (np.eye(3), np.zeros(3), 1.0)
    if mode not in ('sim3', 'se3'):
        raise ValueError(f"align mode must be 'sim3', 'se3' or 'none', got {mode!r}")
    if len(est) < 3:
        raise ValueError(f'alignment needs at least 3 associated poses, got {len(est)}')
    R, t, s = umeyama(est.positions, ref.positions, with_scale=(mode == 'sim3'))
    return apply_alignment(est, R, t, s), (R, t, float(s))


def apply_alignment(traj: Trajectory, R: np.ndarray, t: np.ndarray,  # noqa: N803
                    s: float) -> Trajectory:
    """Apply an alignment (R, t, s) from `align` to every pose of `traj` (evo's convention)."""
    poses = traj.poses.copy()
    poses[:, :3, :3] = R @ traj.poses[:, :3, :3]
    poses[:, :3, 3] = (s * traj.positions) @ R.T + t
    return Trajectory(traj.stamps, poses)


def ate_rmse(ref: Trajectory, est: Trajectory) -> float:
    """RMSE of ||p_est - p_ref|| in metres (evo APE, translation part); no alignment here."""
    _check_pair(ref, est)
    err = np.linalg.norm(est.positions - ref.positions, axis=1)
    return float(math.sqrt(np.mean(err ** 2)))


def rpe(ref: Trajectory, est: Trajectory, delta: int = 1) -> tuple[float, float]:
    """Relative pose error over frame pairs (i, i + delta), i = 0, delta, 2 delta, ...

    As evo's RPE with delta_unit frames and all_pairs=False:
    E_i = (Q_i^-1 Q_{i+delta})^-1 (P_i^-1 P_{i+delta}), Q reference, P estimate. Returns
    (RMSE of ||trans(E_i)|| in metres, RMSE of the rotation angles of E_i in degrees).
    """
    _check_pair(ref, est)
    if int(delta) != delta or delta < 1:
        raise ValueError(f'delta must be a positive whole number of frames, got {delta}')
    delta = int(delta)
    ids = np.arange(0, len(ref), delta)
    if ids.size < 2:
        raise ValueError(f'delta = {delta} frames leaves no pair among {len(ref)} poses')
    i, j = ids[:-1], ids[1:]
    Q_rel = invert_T(ref.poses[i]) @ ref.poses[j]
    P_rel = invert_T(est.poses[i]) @ est.poses[j]
    E = invert_T(Q_rel) @ P_rel
    trans = np.linalg.norm(E[:, :3, 3], axis=1)
    rot = np.degrees(np.linalg.norm(rotvec(E[:, :3, :3]), axis=1))
    return float(math.sqrt(np.mean(trans ** 2))), float(math.sqrt(np.mean(rot ** 2)))


def evaluate_trajectory(ref: Trajectory, est: Trajectory, align: str = 'sim3', delta: int = 1,
                        max_diff: float = 0.01) -> dict[str, float]:
    """Associate, align and score `est` against `ref` (as `evo_ape` / `evo_rpe` with -a / -as).

    Keys: `ate_rmse` (metres, APE translation part after alignment), `rpe_trans_rmse` (metres)
    and `rpe_rot_rmse_deg` (degrees) over `delta`-frame pairs of the aligned estimate,
    `scale` (the Sim(3) scale, 1 otherwise), `pairs` (number of associated poses).
    """
    return evaluate_with_alignment(ref, est, align, delta, max_diff)[0]


def evaluate_with_alignment(ref: Trajectory, est: Trajectory, align: str = 'sim3',
                            delta: int = 1, max_diff: float = 0.01
                            ) -> tuple[dict[str, float], tuple[np.ndarray, np.ndarray, float]]:
    """Return `evaluate_trajectory`'s scores and the alignment (R, t, s) they were made with."""
    ref_m, est_m = associate(ref, est, max_diff)
    est_a, (R, t, s) = _align(ref_m, est_m, align)
    rpe_t, rpe_r = rpe(ref_m, est_a, delta)
    scores = {
        'ate_rmse': ate_rmse(ref_m, est_a),
        'rpe_trans_rmse': rpe_t,
        'rpe_rot_rmse_deg': rpe_r,
        'scale': s,
        'pairs': len(ref_m),
    }
    return scores, (R, t, s)


_align = align  # evaluate_trajectory's `align` argument shadows the function


# --------------------------------------------------------------------------- helpers


def _check_shape(x: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.shape != shape:
        raise ValueError(f'{name} must have shape {shape}, got {x.shape}')
    if not np.all(np.isfinite(x)):
        raise ValueError(f'{name} contains NaN or inf')
    return x


def _check_points(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3 or x.shape[0] < 1:
        raise ValueError(f'{name} must be (N>=1, 3) points, got {x.shape}')
    if not np.all(np.isfinite(x)):
        raise ValueError(f'{name} contains NaN or inf')
    return x


def _check_pair(ref: Trajectory, est: Trajectory) -> None:
    if len(ref) != len(est):
        raise ValueError(f'trajectories must be associated first: {len(ref)} reference vs '
                         f'{len(est)} estimated poses')


def _hull(corners: np.ndarray, name: str) -> ConvexHull:
    try:
        hull = ConvexHull(corners)
    except QhullError:
        raise ValueError(f'{name} spans no volume (flat or repeated corners)') from None
    if hull.volume <= 0.0:
        raise ValueError(f'{name} spans no volume')
    return hull


def _inside(points: np.ndarray, hull: ConvexHull, tol: float) -> np.ndarray:
    """Mask of points inside the hull (outward facet planes n.x + d <= tol)."""
    eq = hull.equations
    return np.all(points @ eq[:, :3].T + eq[:, 3] <= tol, axis=1)


def _edge_plane_crossings(corners: np.ndarray, hull: ConvexHull, other: ConvexHull,
                          tol: float) -> np.ndarray:
    """Points where edges of `hull` (incl. facet diagonals) cross `other`'s planes, inside it."""
    s = hull.simplices
    edges = np.unique(np.sort(np.concatenate([s[:, [0, 1]], s[:, [1, 2]], s[:, [2, 0]]]), 1),
                      axis=0)
    p0, p1 = corners[edges[:, 0]], corners[edges[:, 1]]
    eq = other.equations
    d0 = p0 @ eq[:, :3].T + eq[:, 3]          # (E, P) signed distances of the edge ends
    d1 = p1 @ eq[:, :3].T + eq[:, 3]
    cross = (d0 * d1) < 0.0
    e, p = np.nonzero(cross)
    if e.size == 0:
        return np.empty((0, 3))
    lam = d0[e, p] / (d0[e, p] - d1[e, p])
    pts = p0[e] + lam[:, None] * (p1[e] - p0[e])
    return pts[_inside(pts, other, tol)]
