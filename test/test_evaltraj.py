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

"""`rrb eval-traj` as a process: TUM files and bags in, numbers that agree with evo's."""

import json
from pathlib import Path
import subprocess
import sys

from geometry_msgs.msg import PoseStamped
import numpy as np
import pytest
from std_msgs.msg import Header

from rrb_ros.core.geometry import from_rotvec, make_T
from rrb_ros.core.metrics import evaluate_trajectory, read_tum, Trajectory, write_tum
from rrb_ros.ros import convert

RRB = Path(sys.executable).parent / 'rrb'


def rrb(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(RRB), 'eval-traj', *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def trajectories(rng) -> tuple[Trajectory, Trajectory]:
    """Return (reference, estimate): a wavy walk, and a noisy, scaled, rotated, jittered copy."""
    n = 120
    stamps = 50.0 + np.arange(n) / 20.0
    ref = np.array([make_T(from_rotvec([0.1 * np.sin(i / 9), 0.0, i / 30]),
                           [np.cos(i / 20), np.sin(i / 15), 0.1 * np.sin(i / 7)])
                    for i in range(n)])
    R, t, s = from_rotvec([0.2, -0.5, 1.0]), np.array([1.0, 2.0, -0.5]), 0.6
    est = np.array([make_T(R @ T[:3, :3] @ from_rotvec(rng.normal(0, 0.01, 3)),
                           s * R @ T[:3, 3] + t + rng.normal(0, 0.02, 3)) for T in ref])
    keep = np.setdiff1d(np.arange(n), rng.choice(n, 10, replace=False))
    jitter = rng.uniform(-0.004, 0.004, keep.size)
    return Trajectory(stamps, ref), Trajectory(stamps[keep] + jitter, est[keep])


@pytest.fixture(scope='module')
def tum_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('tum')
    ref, est = trajectories(np.random.default_rng(7))
    write_tum(folder / 'ref.tum', ref, header='reference')
    write_tum(folder / 'est.tum', est)
    return folder / 'ref.tum', folder / 'est.tum'


def evo_numbers(ref_path: Path, est_path: Path, align: str, delta: int) -> dict:
    from evo.core import metrics, sync
    from evo.core.units import Unit
    from evo.tools import file_interface
    ref = file_interface.read_tum_trajectory_file(str(ref_path))
    est = file_interface.read_tum_trajectory_file(str(est_path))
    ref, est = sync.associate_trajectories(ref, est, max_diff=0.01)
    scale = 1.0
    if align != 'none':
        _, _, scale = est.align(ref, correct_scale=(align == 'sim3'))

    def rmse(metric) -> float:
        metric.process_data((ref, est))
        return metric.get_statistic(metrics.StatisticsType.rmse)

    return {
        'ate_rmse': rmse(metrics.APE(metrics.PoseRelation.translation_part)),
        'rpe_trans_rmse': rmse(metrics.RPE(metrics.PoseRelation.translation_part, delta,
                                           Unit.frames, all_pairs=False)),
        'rpe_rot_rmse_deg': rmse(metrics.RPE(metrics.PoseRelation.rotation_angle_deg, delta,
                                             Unit.frames, all_pairs=False)),
        'scale': scale, 'pairs': ref.num_poses}


@pytest.mark.parametrize('align,delta', [('sim3', 3), ('se3', 1), ('none', 10)])
def test_tum_agrees_with_evo(tum_files, tmp_path, align, delta):
    pytest.importorskip('evo')
    ref, est = tum_files
    out, png = tmp_path / 'report.json', tmp_path / 'traj.png'
    extra = ['--out', out, '--plot', png] if align == 'sim3' else []
    proc = rrb('--ref', ref, '--est', est, '--align', align, '--delta', delta, *extra)
    assert proc.returncode == 0, proc.stderr
    ours = json.loads(proc.stdout)
    assert list(ours) == ['ate_rmse', 'rpe_trans_rmse', 'rpe_rot_rmse_deg', 'scale', 'pairs']
    theirs = evo_numbers(ref, est, align, delta)
    assert ours['pairs'] == theirs['pairs'] == 110
    for key in ('ate_rmse', 'rpe_trans_rmse', 'rpe_rot_rmse_deg', 'scale'):
        assert ours[key] == pytest.approx(theirs[key], abs=1e-6), key
    if align == 'sim3':
        assert json.loads(out.read_text()) == ours
        assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and png.stat().st_size > 10_000
        assert ours['scale'] == pytest.approx(1 / 0.6, rel=0.05) and ours['ate_rmse'] < 0.1


def test_bag_topics(tum_files, tmp_path):
    """A PoseStamped reference and a TFMessage estimate give the numbers of the TUM files."""
    from rrb_ros.tools import bag
    ref, est = read_tum(tum_files[0]), read_tum(tum_files[1])
    writer = bag.open_writer(tmp_path / 'bag')
    try:
        conn_ref = writer.add_connection('/gt_pose', 'geometry_msgs/msg/PoseStamped',
                                         typestore=bag.typestore())
        conn_tf = writer.add_connection('/tf', 'tf2_msgs/msg/TFMessage',
                                        typestore=bag.typestore())
        for stamp, T in zip(ref.stamps, ref.poses):
            ns = int(round(stamp * 1e9))
            msg = PoseStamped(header=Header(stamp=convert.ns_to_stamp(ns), frame_id='map'),
                              pose=convert.matrix_to_pose(T))
            writer.write(conn_ref, ns, bag.to_cdr(msg))
        for stamp, T in zip(est.stamps, est.poses):
            ns = int(round(stamp * 1e9))
            header = Header(stamp=convert.ns_to_stamp(ns), frame_id='rrb/world')
            other = convert.transform_stamped(np.eye(4), header, 'rrb/other')
            msg = convert.tf_message([other, convert.transform_stamped(T, header, 'rrb/camera')])
            writer.write(conn_tf, ns, bag.to_cdr(msg))
    finally:
        writer.close()
    expected = evaluate_trajectory(ref, est, 'sim3', delta=3)
    from_bag = rrb('--ref', tmp_path / 'bag', '--ref-topic', '/gt_pose', '--est', tmp_path / 'bag',
                   '--est-topic', '/tf', '--est-frame', 'rrb/camera', '--delta', 3)
    assert from_bag.returncode == 0, from_bag.stderr
    ours = json.loads(from_bag.stdout)
    assert ours['pairs'] == expected['pairs']
    for key in ('ate_rmse', 'rpe_trans_rmse', 'rpe_rot_rmse_deg', 'scale'):
        assert ours[key] == pytest.approx(expected[key], abs=1e-6), key

    no_frame = rrb('--ref', tmp_path / 'bag', '--ref-topic', '/tf', '--est', tum_files[1])
    assert no_frame.returncode == 2 and '--ref-frame' in no_frame.stderr
    # the other bag mistakes, in this process (each `rrb` process costs seconds of imports)
    from rrb_ros.tools.evaltraj_cmd import load_trajectory
    with pytest.raises(ValueError, match='--est-topic'):
        load_trajectory(str(tmp_path / 'bag'), None, None, 'est')
    with pytest.raises(ValueError, match='no topic /odom; trajectory topics: /gt_pose, /tf'):
        load_trajectory(str(tmp_path / 'bag'), '/odom', None, 'est')
    with pytest.raises(ValueError, match='no poses on /tf with child frame rrb/nothing'):
        load_trajectory(str(tmp_path / 'bag'), '/tf', 'rrb/nothing', 'est')
    with pytest.raises(ValueError, match='is a file'):
        load_trajectory(str(tum_files[0]), '/tf', None, 'ref')


@pytest.mark.parametrize('case', ['missing', 'malformed', 'no_overlap'])
def test_bad_input_is_one_line(tum_files, tmp_path, case):
    ref, est = tum_files
    if case == 'missing':
        args, expected = ['--ref', tmp_path / 'nope.tum', '--est', est], 'does not exist'
    elif case == 'malformed':
        bad = tmp_path / 'bad.tum'
        bad.write_text('0.0 1 2 3 0 0 0 1\n0.1 1 2 3 0 0 x 1\n')
        args, expected = ['--ref', ref, '--est', bad], 'not a number'
    else:
        late = tmp_path / 'late.tum'
        late.write_text('1000.0 1 2 3 0 0 0 1\n1000.1 1 2 3 0 0 0 1\n')
        args, expected = ['--ref', ref, '--est', late], 'no matching timestamps'
    proc = rrb(*args)
    assert proc.returncode == 2
    assert proc.stdout == ''
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith('rrb eval-traj: error: ') and expected in proc.stderr
