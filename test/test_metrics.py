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

"""Object pose, box, silhouette and trajectory metrics (pure NumPy)."""

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from rrb_ros.core.geometry import make_T
from rrb_ros.core.mesh import Mesh
from rrb_ros.core.metrics import (
    acc_at,
    align,
    associate,
    ate_rmse,
    box_iou_axis_aligned,
    box_iou_oriented,
    box_iou_posed,
    evaluate_trajectory,
    pose_errors,
    PoseErrors,
    read_tum,
    rotation_error_deg,
    rpe,
    silhouette_iou,
    summarize,
    Trajectory,
    transform_points,
    translation_error,
    write_tum,
)

UNIT_CUBE = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], float)


def _rz(deg: float) -> np.ndarray:
    return Rotation.from_euler('z', deg, degrees=True).as_matrix()


def _cube_mesh(size=(1.0, 1.0, 1.0)) -> Mesh:
    faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                      [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    return Mesh((UNIT_CUBE - 0.5) * np.asarray(size), faces, True)


def _random_trajectory(rng, n: int, dt: float = 0.1) -> Trajectory:
    poses = np.tile(np.eye(4), (n, 1, 1))
    for k in range(1, n):
        step = make_T(Rotation.from_rotvec(rng.normal(scale=0.05, size=3)).as_matrix(),
                      rng.normal(scale=0.1, size=3) + [0.2, 0.0, 0.0])
        poses[k] = poses[k - 1] @ step
    return Trajectory(np.arange(n) * dt + 1000.0, poses)


def _perturb(rng, traj: Trajectory, s: float, rot_noise: float, pos_noise: float) -> Trajectory:
    """Sim(3)-transformed copy of traj with per-pose noise (radians, metres)."""
    R0 = Rotation.from_rotvec([0.3, -0.2, 1.0]).as_matrix()
    t0 = np.array([1.0, -2.0, 0.5])
    poses = traj.poses.copy()
    noise_R = Rotation.from_rotvec(rng.normal(scale=rot_noise, size=(len(traj), 3))).as_matrix()
    poses[:, :3, :3] = R0 @ traj.poses[:, :3, :3] @ noise_R
    poses[:, :3, 3] = s * (traj.positions + rng.normal(scale=pos_noise, size=(len(traj), 3))
                           ) @ R0.T + t0
    return Trajectory(traj.stamps.copy(), poses)


# --------------------------------------------------------------------------- object pose


def test_rotation_error_is_geodesic_angle(rng):
    Ra = Rotation.random(20, random_state=1)
    Rb = Rotation.random(20, random_state=2)
    for a, b in zip(Ra, Rb):
        expect = np.degrees((a.inv() * b).magnitude())
        assert rotation_error_deg(a.as_matrix(), b.as_matrix()) == pytest.approx(expect, abs=1e-9)
        # ||log(R)||_F / sqrt(2) of the skew matrix
        w = (a.inv() * b).as_rotvec()
        W = np.array([[0, -w[2], w[1]], [w[2], 0, -w[0]], [-w[1], w[0], 0]])
        assert rotation_error_deg(a.as_matrix(), b.as_matrix()) == pytest.approx(
            np.degrees(np.linalg.norm(W) / math.sqrt(2)), abs=1e-9)
    assert rotation_error_deg(np.eye(3), np.eye(3)) == 0.0
    assert rotation_error_deg(np.eye(3), _rz(179.0)) == pytest.approx(179.0)
    with pytest.raises(ValueError, match='R_gt'):
        rotation_error_deg(np.eye(3), np.eye(4))


def test_acc_at_pi6_and_translation_error():
    assert acc_at([10.0, 29.9, 30.0, 45.0]) == 0.5
    assert acc_at(np.array([1.0]), threshold_deg=0.5) == 0.0
    with pytest.raises(ValueError):
        acc_at([])
    err, rel = translation_error([0.0, 0.3, 2.4], [0.0, 0.0, 2.0])
    assert err == pytest.approx(0.5) and rel == pytest.approx(0.25)
    assert math.isnan(translation_error([1.0, 0, 0], [0.0, 0, 0])[1])
    with pytest.raises(ValueError, match='t_pred'):
        translation_error([1.0, 2.0], [0.0, 0.0, 1.0])


def test_axis_aligned_box_iou_by_hand():
    a = UNIT_CUBE * [2.0, 1.0, 1.0]                 # [0,2]x[0,1]x[0,1], volume 2
    b = UNIT_CUBE * [2.0, 2.0, 1.0] + [1.0, 0, 0]   # [1,3]x[0,2]x[0,1], volume 4
    assert box_iou_axis_aligned(a, b) == pytest.approx(1.0 / 5.0)
    assert box_iou_axis_aligned(a, a) == 1.0
    assert box_iou_axis_aligned(a, a + [5.0, 0, 0]) == 0.0
    # only the extremes matter: interior points change nothing
    assert box_iou_axis_aligned(np.vstack([a, [[1.0, 0.5, 0.5]]]), b) == pytest.approx(0.2)
    with pytest.raises(ValueError, match='verts_gt_cam'):
        box_iou_axis_aligned(a, b[:, :2])


def test_posed_box_iou_axis_aligned_and_oriented():
    mesh = _cube_mesh()
    T_gt = make_T(np.eye(3), [0.0, 0.0, 2.0])
    T_shift = make_T(np.eye(3), [0.5, 0.0, 2.0])
    assert box_iou_posed(mesh, T_shift, T_gt) == pytest.approx(1.0 / 3.0)
    assert box_iou_posed(mesh, T_shift, T_gt, oriented=True) == pytest.approx(1.0 / 3.0)
    # turned 45 deg about the camera z: the camera-aligned box grows to sqrt(2) x sqrt(2) x 1
    T_rot = make_T(_rz(45.0), [0.0, 0.0, 2.0])
    assert box_iou_posed(mesh, T_rot, T_gt) == pytest.approx(0.5)
    assert box_iou_posed(mesh, T_rot, T_gt, oriented=True) == pytest.approx(1 / math.sqrt(2))
    # a different ground-truth mesh (twice as deep) at the same pose
    assert box_iou_posed(mesh, T_gt, T_gt, mesh_gt=_cube_mesh((1, 1, 2))) == pytest.approx(0.5)


def test_oriented_box_iou_exact_cases():
    a = UNIT_CUBE - 0.5
    assert box_iou_oriented(a, a) == pytest.approx(1.0, abs=1e-12)
    assert box_iou_oriented(a, a[::-1]) == pytest.approx(1.0, abs=1e-12)   # corner order free
    assert box_iou_oriented(a, a + [3.0, 0, 0]) == 0.0                    # disjoint
    assert box_iou_oriented(a, a + [1.0, 0, 0]) == 0.0                    # touching faces
    assert box_iou_oriented(a, a + [1.0, 1.0, 1.0]) == 0.0                # touching corners
    assert box_iou_oriented(a, a + [0.5, 0, 0]) == pytest.approx(1.0 / 3.0, abs=1e-12)
    assert box_iou_oriented(a, 0.5 * a) == pytest.approx(0.125, abs=1e-12)  # contained
    # 45 deg about z: the overlap is a prism over a regular octagon of inradius 1/2, area
    # 2 (sqrt(2) - 1), so IoU = 2 (sqrt(2) - 1) / (2 - 2 (sqrt(2) - 1)) = 1 / sqrt(2)
    b = a @ _rz(45.0).T
    assert box_iou_oriented(a, b) == pytest.approx(1.0 / math.sqrt(2.0), abs=1e-12)
    assert box_iou_oriented(b, a) == pytest.approx(1.0 / math.sqrt(2.0), abs=1e-12)
    with pytest.raises(ValueError, match='corners_b'):
        box_iou_oriented(a, np.zeros((8, 3)))
    with pytest.raises(ValueError, match='corners_a'):
        box_iou_oriented(a[:6], a)


def test_oriented_box_iou_matches_monte_carlo():
    rng = np.random.default_rng(3)
    size_a, size_b = np.array([1.0, 0.6, 0.4]), np.array([0.8, 0.8, 0.3])
    R_b = Rotation.from_rotvec([0.3, -0.4, 0.7]).as_matrix()
    T_b = make_T(R_b, [0.2, 0.1, -0.05])
    a = (UNIT_CUBE - 0.5) * size_a
    b = transform_points(T_b, (UNIT_CUBE - 0.5) * size_b)
    # sample inside a, test membership in b in its own frame
    n = 400_000
    p = (rng.random((n, 3)) - 0.5) * size_a
    q = (p - T_b[:3, 3]) @ R_b
    frac = np.count_nonzero(np.all(np.abs(q) <= size_b / 2, axis=1)) / n
    inter = frac * np.prod(size_a)
    mc = inter / (np.prod(size_a) + np.prod(size_b) - inter)
    assert 0.2 < mc < 0.8
    assert box_iou_oriented(a, b) == pytest.approx(mc, abs=1e-2)


def test_silhouette_iou():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[:2] = True
    b[1:3] = True
    assert silhouette_iou(a, b) == pytest.approx(4 / 12)
    assert silhouette_iou(a, a.astype(np.uint8) * 255) == 1.0
    assert silhouette_iou(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0
    with pytest.raises(ValueError):
        silhouette_iou(a, b[:3])


def test_pose_errors_and_summary():
    mesh = _cube_mesh()
    T_gt = make_T(np.eye(3), [0.0, 0.0, 2.0])
    e1 = pose_errors(make_T(_rz(10.0), [0.0, 0.0, 2.2]), T_gt, mesh)
    assert e1.rot_err_deg == pytest.approx(10.0)
    assert e1.trans_err_m == pytest.approx(0.2) and e1.trans_err_rel == pytest.approx(0.1)
    assert 0.0 < e1.box_iou < 1.0 and 0.0 < e1.box_iou_oriented < 1.0
    assert e1.silhouette_iou is None
    mask = np.ones((3, 3), bool)
    e2 = pose_errors(make_T(_rz(50.0), [0.0, 0.4, 2.0]), T_gt, mask_pred=mask, mask_gt=mask)
    s = summarize([e1, e2, PoseErrors(20.0, 0.1, 0.05)])
    assert s['frames'] == 3
    assert s['rot_err_median_deg'] == pytest.approx(20.0)
    assert s['rot_err_mean_deg'] == pytest.approx(80.0 / 3)
    assert s['acc_pi6'] == pytest.approx(2 / 3)
    assert s['trans_err_median_m'] == pytest.approx(0.2)
    assert s['trans_err_median_rel'] == pytest.approx(0.1)
    assert s['box_iou_mean'] == pytest.approx(e1.box_iou)
    assert s['silhouette_iou_mean'] == 1.0
    with pytest.raises(ValueError):
        summarize([])


# --------------------------------------------------------------------------- trajectories


def test_sim3_alignment_recovers_scale_and_zeroes_ate():
    rng = np.random.default_rng(0)
    ref = _random_trajectory(rng, 60)
    est = _perturb(rng, ref, s=2.5, rot_noise=0.0, pos_noise=0.0)
    assert ate_rmse(ref, est) > 1.0
    aligned, (R, t, s) = align(ref, est, 'sim3')
    assert s == pytest.approx(1 / 2.5, rel=1e-12)
    assert ate_rmse(ref, aligned) < 1e-12
    assert np.allclose(aligned.poses, ref.poses, atol=1e-12)    # rotations follow too
    out = evaluate_trajectory(ref, est)
    assert out['ate_rmse'] < 1e-12 and out['rpe_trans_rmse'] < 1e-12
    assert out['rpe_rot_rmse_deg'] < 1e-6
    assert out['scale'] == pytest.approx(0.4) and out['pairs'] == 60
    # SE(3) keeps the scale at 1 and cannot remove the scale error
    aligned_se3, (_, _, s_se3) = align(ref, est, 'se3')
    assert s_se3 == 1.0
    assert ate_rmse(ref, aligned_se3) > 0.1
    assert align(ref, est, 'none')[0] is est
    with pytest.raises(ValueError, match='mode'):
        align(ref, est, 'sim2')


def test_rpe_zero_for_identical_and_closed_form_for_constant_drift():
    rng = np.random.default_rng(1)
    ref = _random_trajectory(rng, 30)
    # zero up to rounding: E = (Q^-1 Q')^-1 (Q^-1 Q') is the identity only to ~1e-16 (how
    # close depends on the CPU's BLAS kernels)
    for delta in (1, 7):
        assert rpe(ref, ref, delta) == pytest.approx((0.0, 0.0), abs=1e-12)
    # ref moves 1 m along x per frame; est 1.1 m and turns 1 deg about z per frame
    n = 21
    D_ref = make_T(np.eye(3), [1.0, 0, 0])
    D_est = make_T(_rz(1.0), [1.1, 0, 0])
    Q, P = [np.eye(4)], [np.eye(4)]
    for _ in range(n - 1):
        Q.append(Q[-1] @ D_ref)
        P.append(P[-1] @ D_est)
    ref, est = Trajectory(np.arange(n), np.array(Q)), Trajectory(np.arange(n), np.array(P))
    t1, r1 = rpe(ref, est, 1)
    assert t1 == pytest.approx(0.1, abs=1e-12) and r1 == pytest.approx(1.0, abs=1e-9)
    # delta 2: E = [Rz(2 deg), 1.1 (1 + Rz(1 deg)) x - 2 x]
    c, s = math.cos(math.radians(1.0)), math.sin(math.radians(1.0))
    t2, r2 = rpe(ref, est, 2)
    assert t2 == pytest.approx(math.hypot(1.1 * (1 + c) - 2.0, 1.1 * s), abs=1e-12)
    assert r2 == pytest.approx(2.0, abs=1e-9)
    with pytest.raises(ValueError, match='no pair'):
        rpe(ref, est, 30)
    with pytest.raises(ValueError, match='associated'):
        rpe(ref, est.subset(range(5)), 1)


def test_tum_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    traj = _random_trajectory(rng, 10)
    traj = Trajectory(traj.stamps + 1.7e9 + 0.123456, traj.poses)
    path = tmp_path / 'traj.txt'
    write_tum(path, traj, header='timestamp tx ty tz qx qy qz qw')
    text = path.read_text()
    assert text.startswith('# timestamp') and len(text.splitlines()) == 11
    back = read_tum(path)
    assert np.array_equal(back.stamps, traj.stamps)
    assert np.allclose(back.poses, traj.poses, atol=1e-12)
    bad = tmp_path / 'bad.txt'
    bad.write_text('# c\n1.0 0 0 0 0 0 0\n')
    with pytest.raises(ValueError, match='8 numbers'):
        read_tum(bad)
    # file order is not time order: the poses come back sorted by stamp
    shuffled = tmp_path / 'shuffled.txt'
    lines = text.splitlines()
    shuffled.write_text('\n'.join(lines[:1] + lines[1:][::-1]) + '\n')
    back = read_tum(shuffled)
    assert np.array_equal(back.stamps, traj.stamps)
    assert np.allclose(back.poses, traj.poses, atol=1e-12)
    bad.write_text('# c\n1.0 0 0 0 0 0 0 1\n2.0 nan 0 0 0 0 0 1\n')
    with pytest.raises(ValueError, match=r'bad.txt:3: NaN or inf'):
        read_tum(bad)


def test_association_with_jitter_and_missing_poses():
    rng = np.random.default_rng(4)
    ref = _random_trajectory(rng, 50)
    keep = np.setdiff1d(np.arange(50), [3, 4, 17, 40])
    est = ref.subset(keep)
    jitter = rng.uniform(-0.004, 0.004, size=len(est))
    est = Trajectory(est.stamps + jitter, est.poses)
    r, e = associate(ref, est)
    assert len(r) == len(e) == len(keep)
    assert np.allclose(r.stamps, ref.stamps[keep]) and np.array_equal(e.stamps, est.stamps)
    assert np.array_equal(r.poses, e.poses)
    # the longer one may be either; stamps half a period off match nothing
    r2, e2 = associate(est, ref)
    assert np.array_equal(r2.stamps, est.stamps) and len(e2) == len(keep)
    with pytest.raises(ValueError, match='no matching'):
        associate(ref, Trajectory(ref.stamps + 0.05, ref.poses), max_diff=0.01)
    out = evaluate_trajectory(ref, est, align='se3')
    assert out['pairs'] == len(keep) and out['ate_rmse'] < 1e-12


def test_bad_trajectories_rejected():
    with pytest.raises(ValueError, match='poses'):
        Trajectory(np.arange(3.0), np.tile(np.eye(4), (2, 1, 1)))
    with pytest.raises(ValueError, match='stamps'):
        Trajectory(np.zeros((0,)), np.zeros((0, 4, 4)))


def test_agrees_with_evo():
    pytest.importorskip('evo')
    from evo.core import metrics as evo_metrics
    from evo.core import sync
    from evo.core.trajectory import PoseTrajectory3D
    from evo.core.units import Unit

    rng = np.random.default_rng(5)
    ref = _random_trajectory(rng, 300)
    est = _perturb(rng, ref, s=0.7, rot_noise=0.02, pos_noise=0.05)
    keep = np.setdiff1d(np.arange(300), rng.choice(300, 25, replace=False))
    est = est.subset(keep)
    est = Trajectory(est.stamps + rng.uniform(-0.006, 0.006, len(est)), est.poses)

    evo_ref = PoseTrajectory3D(poses_se3=list(ref.poses), timestamps=ref.stamps.copy())
    evo_est = PoseTrajectory3D(poses_se3=list(est.poses), timestamps=est.stamps.copy())
    evo_ref, evo_est = sync.associate_trajectories(evo_ref, evo_est, max_diff=0.01)
    _, _, evo_s = evo_est.align(evo_ref, correct_scale=True)

    def evo_stat(metric):
        metric.process_data((evo_ref, evo_est))
        return metric.get_statistic(evo_metrics.StatisticsType.rmse)

    for delta in (1, 10):
        ours = evaluate_trajectory(ref, est, align='sim3', delta=delta)
        assert ours['pairs'] == evo_ref.num_poses
        assert np.array_equal(associate(ref, est)[0].stamps, evo_ref.timestamps)
        assert ours['scale'] == pytest.approx(evo_s, abs=1e-9)
        ape = evo_stat(evo_metrics.APE(evo_metrics.PoseRelation.translation_part))
        rpe_t = evo_stat(evo_metrics.RPE(evo_metrics.PoseRelation.translation_part, delta,
                                         Unit.frames, all_pairs=False))
        rpe_r = evo_stat(evo_metrics.RPE(evo_metrics.PoseRelation.rotation_angle_deg, delta,
                                         Unit.frames, all_pairs=False))
        assert ours['ate_rmse'] == pytest.approx(ape, abs=1e-6)
        assert ours['rpe_trans_rmse'] == pytest.approx(rpe_t, abs=1e-6)
        assert ours['rpe_rot_rmse_deg'] == pytest.approx(rpe_r, abs=1e-6)
        assert ape > 0.01 and rpe_t > 0.01 and rpe_r > 0.1   # a non-trivial comparison
