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

"""`rrb demo`: the paper's pose experiment on built-in generated data, in one command.

Renders a short sequence of a camera orbiting a procedural chair (`rrb synth`), runs the pose
pipeline over the bag exactly as the node would (`rrb replay`), and scores the poses against
the ground truth (`rrb eval`). Everything lands in one folder:

  scene/            the generated sequence (bag, scene.json, meshes, camera.yaml, rrb.yaml)
  replay/           the output bag (inputs + /camera/object_pose, /tf, markers, overlay, ...)
  metrics.json      frames, rot_err_median_deg, acc_pi6, trans_err_median_m, box_iou_mean, ...
  poses.csv, errors.png, overlay.gif

The same sequence again without the CAD model (the paper's full pipeline): the chair is
reconstructed by the shipped occupancy network from its first good view, scaled from the
camera height, then tracked; scored against the ground truth the same way:

  recon/            replay/, metrics.json, poses.csv, errors.png, overlay.gif
  recon/reconstruction.json   per object: scale, height (m) against the true one, seconds

Then the egomotion comparison of the paper's section 4.1 on the single-chair sequence and on a
two-chair one (multi/): the object-centric camera trajectory (ObjectCentricOdometry over the
replayed poses) and monocular ORB-SLAM3 (`rrb orbslam`, when pyorbslam3 is installed), both
Sim(3)-aligned to the ground truth:

  egomotion.json    {"single": {"rrb_ate", "orbslam_ate", "frames", ...}, "multi": {...}}
  egomotion_single.png, egomotion_multi.png   top-down trajectories
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import shutil
import time

import numpy as np

from rrb_ros.core.config import build_pipeline, ground_from_params, read_params_file, with_defaults
from rrb_ros.core.egomotion import compare_trajectories, EgomotionSettings, ObjectCentricOdometry
from rrb_ros.core.metrics import read_tum
from rrb_ros.ros.outputs import OutputBuilder
from rrb_ros.tools import eval_cmd, orbslam_cmd, replay_cmd, synth_cmd


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `rrb demo`."""
    p = sub.add_parser('demo', help='synth -> replay -> eval on generated data',
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default='results', help='output folder (default: %(default)s)')
    p.add_argument('--frames', type=int, default=90, help='frames to generate (default: 90)')
    p.add_argument('--no-egomotion', action='store_true',
                   help='skip the egomotion comparison (pose experiment only)')
    p.add_argument('--preset', default='single', choices=['single', 'multi'])
    p.add_argument('--seed', type=int, default=7, help='random seed (default: 7)')
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Execute `rrb demo`."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for owned in ('scene', 'replay'):  # the demo's own products from an earlier run
        shutil.rmtree(out / owned, ignore_errors=True)
    t0 = time.perf_counter()
    print(f'== 1/5 synth: {args.frames} frames, preset {args.preset}')
    synth_cmd.generate(out / 'scene', preset=args.preset, frames=args.frames, seed=args.seed)
    print('== 2/5 replay: the pose pipeline over the bag')
    summary = replay_scene(out / 'scene', out / 'replay')
    (out / 'replay_summary.json').write_text(json.dumps(summary, indent=2) + '\n')
    print('== 3/5 eval')
    evaluate(out / 'scene', out / 'replay', out)
    print('== 4/5 reconstruct: the same sequence without the CAD model')
    reconstruct_and_track(out / 'scene', out / 'recon')
    if not args.no_egomotion:
        print('== 5/5 egomotion: object-centric trajectory vs monocular ORB-SLAM3')
        shutil.rmtree(out / 'multi', ignore_errors=True)
        synth_cmd.generate(out / 'multi' / 'scene', preset='multi', frames=args.frames,
                           seed=args.seed + 2)
        replay_scene(out / 'multi' / 'scene', out / 'multi' / 'replay')
        report = {name: egomotion(folder / 'scene', folder / 'replay',
                                  out / f'egomotion_{name}.png')
                  for name, folder in (('single', out), ('multi', out / 'multi'))}
        (out / 'egomotion.json').write_text(json.dumps(report, indent=2) + '\n')
        print(f'  {"sequence":<8} {"frames":>6} {"RRB ATE":>9} {"ORB-SLAM3 ATE":>14}  (m, Sim(3))')
        for name, r in report.items():
            rrb, orb = (('n/a' if v is None else f'{v:.4f}')
                        for v in (r['rrb_ate'], r['orbslam_ate']))
            print(f'  {name:<8} {r["frames"]:>6} {rrb:>9} {orb:>14}')
    print(f'demo finished in {time.perf_counter() - t0:.0f} s; results in {out}/')
    return 0


def evaluate(scene: Path, replayed: Path, out: Path) -> None:
    """`rrb eval` of a replayed bag against the scene's ground truth, into `out`."""
    eval_cmd.run(argparse.Namespace(
        bag=str(replayed), scene=str(scene), out=str(out), prefix='rrb/',
        mask='/camera/mask', overlay='/camera/overlay',
        replay_summary=str(out / 'replay_summary.json')))


def replay_scene(scene: Path, out_bag: Path, reconstruct: bool = False) -> dict:
    """Replay a generated scene's bag with its own pose_node parameters.

    With `reconstruct`, the objects get no mesh: they are reconstructed, with the ground plane
    from the height and pitch of the first camera pose (the generated orbits keep both).
    """
    params = with_defaults(read_params_file(scene / 'rrb.yaml'))
    ground = None
    if reconstruct:
        for name in params['objects.names']:
            params[f'objects.{name}.mesh'] = ''
        T0 = read_tum(scene / 'gt_camera.tum').poses[0]
        params['camera_height'] = float(T0[2, 3])
        params['camera_pitch'] = float(np.arcsin(np.clip(-T0[2, 2], -1.0, 1.0)))
        ground = ground_from_params(params)
    pipeline = build_pipeline(params, default_cache=False)
    outputs = OutputBuilder(pipeline, str(params['object_frame_prefix']))
    return replay_cmd.replay(scene / 'bag', out_bag, pipeline, outputs, '/camera/image_raw',
                             '/camera/mask', '/camera/camera_info', ground=ground)


def reconstruct_and_track(scene: Path, out: Path) -> dict:
    """Replay without meshes (reconstruct, then track), evaluate, compare the sizes."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    summary = replay_scene(scene, out / 'replay', reconstruct=True)
    (out / 'replay_summary.json').write_text(json.dumps(summary, indent=2) + '\n')
    truth = {o['name']: o['mesh'] for o in eval_cmd.load_scene(scene)['objects']}
    report = {}
    for name, rec in summary['reconstructed'].items():
        true_h = float(truth[name].extents[2])
        report[name] = dict(rec, true_height_m=true_h, height_m=rec['extents_m'][2],
                            height_err_pct=100 * (rec['extents_m'][2] / true_h - 1))
        views = (f", {rec['views']} views averaged ({rec['views_seconds']:.1f} s)"
                 if rec['views'] > 1 else '')
        print(f"  {name}: reconstructed in {rec['seconds']:.1f} s{views}, height "
              f"{rec['extents_m'][2]:.3f} m (true {true_h:.3f} m, "
              f"{report[name]['height_err_pct']:+.1f} %)")
    if not report:
        print('  no object was reconstructed (no good view)')
    (out / 'reconstruction.json').write_text(json.dumps(report, indent=2) + '\n')
    try:
        evaluate(scene, out / 'replay', out)
    except ValueError as exc:  # e.g. no good view in a short sequence: nothing to score
        print(f'  not scored: {exc}')
    return report


def egomotion(scene: Path, replayed: Path, plot: Path) -> dict:
    """Object-centric and ORB-SLAM3 trajectories of one sequence against its ground truth."""
    gt = read_tum(scene / 'gt_camera.tum')
    preds, _, _ = eval_cmd.read_outputs(replayed, 'rrb/', mask_topic='', overlay_topic='')
    # the generated orbits sweep 120-180 deg in a few seconds (up to ~0.1 m per frame): allow
    # larger jumps than the default for hand-held speeds
    odometry = ObjectCentricOdometry(EgomotionSettings(max_jump=0.5))
    frames: dict[int, dict] = {}
    for (stamp_ns, name), T in preds.items():
        frames.setdefault(stamp_ns, {})[name] = (T, 1.0)
    for stamp_ns in sorted(frames):
        odometry.update(stamp_ns * 1e-9, frames[stamp_ns])
    result = {'frames': len(gt), 'rrb_ate': None, 'rrb_poses': len(odometry),
              'orbslam_ate': None, 'orbslam_poses': 0}
    rrb_aligned = None
    try:
        rrb_aligned, rrb_scores = compare_trajectories(gt, odometry.trajectory())
        result.update(rrb_ate=rrb_scores['ate_rmse'], rrb_scale=rrb_scores['scale'])
    except ValueError as exc:  # too few camera poses to align
        print(f'  RRB trajectory not scored: {exc}')
    orb_aligned = None
    try:
        orb, summary = orbslam_cmd.run_orbslam(scene / 'bag', orbslam_cmd.cached_vocabulary())
    except ValueError as exc:  # pyorbslam3 not installed
        print(f'  ORB-SLAM3 skipped: {exc}')
        orb = None
    if orb is not None:
        try:
            orb_aligned, orb_scores = compare_trajectories(gt, orb)
        except ValueError as exc:  # too few tracked poses to align
            print(f'  ORB-SLAM3 not scored: {exc}')
        else:
            result.update(orbslam_ate=orb_scores['ate_rmse'], orbslam_poses=len(orb),
                          orbslam_scale=orb_scores['scale'])
    plot_top_down(gt, rrb_aligned, orb_aligned, plot)
    return result


def plot_top_down(gt, rrb, orb, path: Path) -> None:
    """Top-down (x-y) view of ground truth and the Sim(3)-aligned estimates, as in the paper."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 5))
    for traj, label, style in ((gt, 'ground truth', 'k-'), (rrb, 'RRB (object-centric)', 'r.-'),
                               (orb, 'ORB-SLAM3 (monocular)', 'b.-')):
        if traj is not None:
            ax.plot(traj.positions[:, 0], traj.positions[:, 1], style, label=label, ms=3)
    ax.set_xlabel('x (m)')
    ax.set_ylabel('y (m)')
    ax.set_aspect('equal')
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
