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

"""Egomotion from static objects: exact recovery, fusion, outliers, jumps, late objects."""

import math

import numpy as np
import pytest

from rrb_ros.core.egomotion import (
    chordal_mean,
    compare_trajectories,
    EgomotionSettings,
    fuse_poses,
    ObjectCentricOdometry,
)
from rrb_ros.core.geometry import from_rotvec, invert_T, make_T, rotation_angle
from rrb_ros.core.metrics import Trajectory

N = 30
STAMPS = 100.0 + np.arange(N) / 30.0


def camera_trajectory(n: int = N) -> np.ndarray:
    """Return (n, 4, 4) T_world_cam: an arc around the origin, 2 cm per frame, turning."""
    poses = []
    for i in range(n):
        a = 0.01 * i
        t = [2.0 * math.sin(a), -2.0 * math.cos(a), 1.25]
        R = from_rotvec([0.0, 0.0, a]) @ from_rotvec([-math.pi / 2 - 0.2, 0.0, 0.0])
        poses.append(make_T(R, t))
    return np.array(poses)


OBJECTS = {
    'chair_a': make_T(from_rotvec([0.0, 0.0, 0.4]), [0.3, 0.2, 0.0]),
    'chair_b': make_T(from_rotvec([0.0, 0.0, -1.1]), [-0.5, 0.6, 0.0]),
    'table': make_T(from_rotvec([0.0, 0.0, 2.0]), [0.1, 1.0, 0.0]),
}


def observe(T_world_cam: np.ndarray, names, weights=None) -> dict:
    """Return {name: (T_cam_obj, weight)} of the named objects seen from a camera pose."""
    weights = weights or {}
    return {n: (invert_T(T_world_cam) @ OBJECTS[n], weights.get(n, 1.0)) for n in names}


def anchored(T_world_cam: np.ndarray, anchor: str = 'chair_a') -> np.ndarray:
    """Return the true camera pose expressed in the anchor object's frame."""
    return invert_T(OBJECTS[anchor]) @ T_world_cam


def assert_pose_close(T, T_true, atol=1e-9):
    assert np.allclose(T, T_true, atol=atol), f'{T}\n!=\n{T_true}'


@pytest.mark.parametrize('names', [('chair_a',), ('chair_a', 'chair_b')])
def test_exact_recovery(names):
    odo = ObjectCentricOdometry()
    gt = camera_trajectory()
    for stamp, T in zip(STAMPS, gt):
        est = odo.update(stamp, observe(T, names))
        assert est is not None, odo.status
        assert est.stamp == stamp
        assert est.used == (names if est.added == () else names[:1]) and est.rejected == ()
        assert est.added == (names[1:] if stamp == STAMPS[0] else ())
        assert_pose_close(est.T_world_cam, anchored(T))
    traj = odo.trajectory()
    assert isinstance(traj, Trajectory) and len(traj) == N == len(odo)
    assert np.array_equal(traj.stamps, STAMPS)
    assert_pose_close(traj.poses, anchored(gt))
    assert odo.world_anchor == 'chair_a'
    for name in names:
        assert_pose_close(odo.object_map[name], invert_T(OBJECTS['chair_a']) @ OBJECTS[name])


def test_anchor_is_the_heaviest_first_object_or_the_configured_one():
    T = camera_trajectory(2)
    odo = ObjectCentricOdometry()
    est = odo.update(0.0, observe(T[0], ('chair_a', 'chair_b'), {'chair_b': 2.0}))
    assert odo.world_anchor == 'chair_b' and est.added == ('chair_a',)
    assert_pose_close(est.T_world_cam, anchored(T[0], 'chair_b'))

    odo = ObjectCentricOdometry(EgomotionSettings(anchor='table'))
    assert odo.update(0.0, observe(T[0], ('chair_a',))) is None
    assert 'table' in odo.status and len(odo) == 0
    est = odo.update(1.0, observe(T[1], ('chair_a', 'table')))
    assert odo.world_anchor == 'table'
    assert_pose_close(est.T_world_cam, anchored(T[1], 'table'))
    with pytest.raises(ValueError, match='no camera pose'):
        ObjectCentricOdometry().trajectory()


def test_outlier_object_is_rejected(rng):
    odo = ObjectCentricOdometry()
    clean = ObjectCentricOdometry()  # the same frames without the outlier
    gt = camera_trajectory()
    wrong = make_T(from_rotvec([0.0, 0.3, 0.0]), [0.4, 0.0, 0.1])
    noise = 0.002
    for i, (stamp, T) in enumerate(zip(STAMPS, gt)):
        obs = observe(T, ('chair_a', 'chair_b', 'table'))
        if i >= 3:
            # the table is misfitted, and more confident than either good chair on its own
            obs['table'] = (obs['table'][0] @ wrong, 1.5)
            for name in ('chair_a', 'chair_b'):
                jitter = make_T(from_rotvec(rng.normal(0, noise, 3)), rng.normal(0, noise, 3))
                obs[name] = (obs[name][0] @ jitter, 1.0)
        est = odo.update(stamp, obs)
        ref = clean.update(stamp, {n: o for n, o in obs.items() if n != 'table'})
        assert est is not None, odo.status
        if i >= 3:
            assert est.rejected == ('table',) and est.used == ('chair_a', 'chair_b')
            assert_pose_close(est.T_world_cam, ref.T_world_cam, atol=1e-12)
            T_true = anchored(T)
            assert np.linalg.norm(est.T_world_cam[:3, 3] - T_true[:3, 3]) < 0.03
            assert math.degrees(rotation_angle(est.T_world_cam[:3, :3], T_true[:3, :3])) < 1.0


def test_two_objects_disagreeing_keep_the_heavier():
    T = camera_trajectory(2)
    odo = ObjectCentricOdometry()
    odo.update(0.0, observe(T[0], ('chair_a', 'chair_b')))
    obs = observe(T[1], ('chair_a', 'chair_b'), {'chair_a': 0.5, 'chair_b': 0.9})
    obs['chair_a'] = (make_T(np.eye(3), [0.3, 0.0, 0.0]) @ obs['chair_a'][0], 0.5)
    est = odo.update(1.0, obs)
    assert est.used == ('chair_b',) and est.rejected == ('chair_a',)
    assert_pose_close(est.T_world_cam, anchored(T[1]))


def test_inliers_fuse_with_weights():
    T = camera_trajectory(2)
    odo = ObjectCentricOdometry()
    odo.update(0.0, observe(T[0], ('chair_a', 'chair_b')))
    obs = observe(T[1], ('chair_a', 'chair_b'), {'chair_a': 3.0})
    # chair_b seen 4 cm off along the optical axis: its camera hypothesis is 4 cm off
    shift = make_T(np.eye(3), [0.0, 0.0, 0.04])
    obs['chair_b'] = (shift @ obs['chair_b'][0], 1.0)
    est = odo.update(1.0, obs)
    assert est.used == ('chair_a', 'chair_b')
    T_true = anchored(T[1])
    hyp_b = T_true @ invert_T(shift)
    expected = (3.0 * T_true[:3, 3] + hyp_b[:3, 3]) / 4.0
    assert np.allclose(est.T_world_cam[:3, 3], expected, atol=1e-9)
    assert np.allclose(est.T_world_cam[:3, :3], T_true[:3, :3], atol=1e-9)


def test_jump_frame_is_dropped():
    gt = camera_trajectory()
    odo = ObjectCentricOdometry(EgomotionSettings(max_jump=0.1, max_dropped_frames=3))
    for i in range(5):
        assert odo.update(STAMPS[i], observe(gt[i], ('chair_a', 'chair_b'))) is not None
    # both objects misfitted the same way: consistent, but the camera jumps 0.3 m
    bad = {n: (make_T(np.eye(3), [0.3, 0.0, 0.0]) @ T, w)
           for n, (T, w) in observe(gt[5], ('chair_a', 'chair_b')).items()}
    assert odo.update(STAMPS[5], bad) is None
    assert 'jumped' in odo.status
    est = odo.update(STAMPS[6], observe(gt[6], ('chair_a', 'chair_b')))
    assert est is not None
    assert_pose_close(est.T_world_cam, anchored(gt[6]))
    assert len(odo) == 6 and STAMPS[5] not in odo.trajectory().stamps

    # a camera that really moved is accepted after max_dropped_frames frames
    far = make_T(np.eye(3), [0.0, 0.0, -1.0])
    results = [odo.update(STAMPS[7 + k], observe(far @ gt[7 + k], ('chair_a',)))
               for k in range(5)]
    assert [r is None for r in results] == [True, True, True, False, False]


def test_a_gap_in_view_scales_the_jump_limit():
    # 2 cm per frame at 30 Hz; the objects out of view for 9 frames: the camera moved 20 cm
    gt = camera_trajectory()
    odo = ObjectCentricOdometry(EgomotionSettings(max_jump=0.05))
    for i in list(range(5)) + [14, 15]:
        est = odo.update(STAMPS[i], observe(gt[i], ('chair_a',)))
        assert est is not None, odo.status
        assert_pose_close(est.T_world_cam, anchored(gt[i]))
    # a 20 cm jump from one frame to the next is still refused
    bad = {'chair_a': (make_T(np.eye(3), [0.2, 0.0, 0.0]) @ observe(gt[16], ('chair_a',))[
        'chair_a'][0], 1.0)}
    assert odo.update(STAMPS[16], bad) is None and 'jumped' in odo.status


def test_late_object_joins_the_map():
    gt = camera_trajectory()
    odo = ObjectCentricOdometry()
    for i, (stamp, T) in enumerate(zip(STAMPS, gt)):
        names = ('chair_a',) if i < 5 else ('chair_a', 'table') if i < 10 else ('table',)
        est = odo.update(stamp, observe(T, names))
        assert est is not None, odo.status
        assert est.added == (('table',) if i == 5 else ())
        assert_pose_close(est.T_world_cam, anchored(T))
    assert_pose_close(odo.object_map['table'], invert_T(OBJECTS['chair_a']) @ OBJECTS['table'])

    frozen = ObjectCentricOdometry(EgomotionSettings(add_objects=False))
    frozen.update(0.0, observe(gt[0], ('chair_a',)))
    frozen.update(1.0, observe(gt[1], ('chair_a', 'table')))
    assert frozen.update(2.0, observe(gt[2], ('table',))) is None
    assert 'no mapped object' in frozen.status


def test_frames_without_a_pose():
    gt = camera_trajectory(3)
    odo = ObjectCentricOdometry(EgomotionSettings(min_weight=0.1))
    assert odo.update(0.0, {}) is None
    assert odo.update(0.0, observe(gt[0], ('chair_a',), {'chair_a': 0.05})) is None
    assert odo.update(0.0, observe(gt[0], ('chair_a',), {'chair_a': math.nan})) is None
    assert odo.update(1.0, observe(gt[0], ('chair_a',))) is not None
    assert odo.update(1.0, observe(gt[1], ('chair_a',))) is None
    assert 'not newer' in odo.status
    with pytest.raises(ValueError, match='rotation'):
        odo.update(2.0, {'chair_a': (np.diag([1.0, 1.0, 2.0, 1.0]), 1.0)})
    with pytest.raises(ValueError, match='max_jump'):
        EgomotionSettings(max_jump=0.0)
    with pytest.raises(ValueError, match='min_weight'):
        EgomotionSettings(min_weight=-0.1)


def test_chordal_mean_and_fusion():
    R0 = from_rotvec([0.3, -0.2, 1.0])
    d = from_rotvec([0.0, 0.0, 0.2])
    assert np.allclose(chordal_mean(np.array([R0 @ d, R0 @ d.T])), R0, atol=1e-12)
    # weights 1:1 about R0 again, with a third copy of R0 weighing anything
    R = chordal_mean(np.array([R0 @ d, R0, R0 @ d.T]), np.array([2.0, 5.0, 2.0]))
    assert np.allclose(R, R0, atol=1e-12)
    R = chordal_mean(np.array([R0 @ d, R0]), np.array([1.0, 0.0]))
    assert np.allclose(R, R0 @ d, atol=1e-12)
    T = fuse_poses(np.array([make_T(R0, [0, 0, 0]), make_T(R0, [1, 2, 3])]), [3.0, 1.0])
    assert np.allclose(T[:3, 3], [0.25, 0.5, 0.75]) and np.allclose(T[:3, :3], R0)
    with pytest.raises(ValueError, match='weights'):
        fuse_poses(np.array([np.eye(4)]), [-1.0])


def test_compare_trajectories_sim3():
    gt = camera_trajectory()
    ref = Trajectory(STAMPS, anchored(gt))
    # ORB-SLAM-like copy: its own world frame and scale
    R, t, s = from_rotvec([0.4, -1.0, 0.3]), np.array([1.0, -2.0, 0.5]), 0.37
    poses = ref.poses.copy()
    poses[:, :3, :3] = R @ ref.poses[:, :3, :3]
    poses[:, :3, 3] = s * ref.positions @ R.T + t
    est = Trajectory(STAMPS, poses)
    aligned, scores = compare_trajectories(ref, est, 'sim3')
    assert scores['ate_rmse'] < 1e-9 and scores['pairs'] == N
    assert scores['scale'] == pytest.approx(1.0 / s)
    assert np.allclose(aligned.poses, ref.poses, atol=1e-9)
