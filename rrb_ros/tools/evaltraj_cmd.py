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

"""`rrb eval-traj`: ATE / RPE of an estimated camera trajectory against a reference.

REF and EST are TUM files (`timestamp tx ty tz qx qy qz qw`) or rosbag2 folders. From a bag,
`--ref-topic` / `--est-topic` name the topic: geometry_msgs/PoseStamped (one pose per
message), nav_msgs/Path (the last message, e.g. egomotion_node's camera_path) or
tf2_msgs/TFMessage (transforms whose child is `--ref-frame` / `--est-frame`, i.e. T_parent_child).
Stamps come from the message headers. The numbers are evo's (`evo_ape tum REF EST -a[s]`,
`evo_rpe ... --delta N --delta_unit f`): nearest-stamp association within --max-diff, Umeyama
alignment of the estimate to the reference, then

  ate_rmse          RMSE of the position error after alignment, metres (global consistency)
  rpe_trans_rmse    RMSE of the relative translation error over --delta frames, metres
  rpe_rot_rmse_deg  RMSE of the relative rotation error over --delta frames, degrees
  scale             the Sim(3) scale applied to the estimate (1 for se3 / none)
  pairs             number of associated poses
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rrb_ros.core.egomotion import compare_trajectories
from rrb_ros.core.metrics import associate, read_tum, Trajectory
from rrb_ros.ros import convert
from rrb_ros.tools import bag

_POSE_TYPES = ('geometry_msgs/msg/PoseStamped', 'nav_msgs/msg/Path', 'tf2_msgs/msg/TFMessage')


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `rrb eval-traj`."""
    p = sub.add_parser('eval-traj', help='ATE / RPE of a trajectory against a reference (evo)',
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--ref', required=True, help='reference: TUM file or rosbag2 folder')
    p.add_argument('--est', required=True, help='estimate: TUM file or rosbag2 folder')
    p.add_argument('--align', choices=('sim3', 'se3', 'none'), default='sim3',
                   help='alignment of the estimate to the reference (default: %(default)s)')
    p.add_argument('--delta', type=int, default=1,
                   help='RPE frame distance (default: %(default)s)')
    p.add_argument('--max-diff', type=float, default=0.01,
                   help='largest stamp difference of associated poses, s (default: '
                        '%(default)s)')
    p.add_argument('--ref-topic', help='topic of the reference in a bag')
    p.add_argument('--est-topic', help='topic of the estimate in a bag')
    p.add_argument('--ref-frame', help='TFMessage topic: child frame id of the reference')
    p.add_argument('--est-frame', help='TFMessage topic: child frame id of the estimate')
    p.add_argument('--out', help='write the report as JSON here')
    p.add_argument('--plot', help='write a PNG: top-down view and position error over time')
    p.add_argument('--plane', choices=('xy', 'xz', 'yz'), default='xy',
                   help='plane of the top-down view (default: %(default)s)')
    p.set_defaults(run=run)


def load_trajectory(path: str, topic: str | None, frame: str | None, role: str) -> Trajectory:
    """Read a TUM file or a trajectory topic of a rosbag2 folder; ValueError says what is wrong."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f'{role} {path} does not exist')
    if not p.is_dir():
        if topic:
            raise ValueError(f'--{role}-topic given, but {path} is a file, not a rosbag2 folder')
        return read_tum(p)
    if not topic:
        raise ValueError(f'{role} {path} is a bag folder: name its topic with --{role}-topic')
    return read_bag_trajectory(p, topic, frame, role)


def read_bag_trajectory(path: Path, topic: str, frame: str | None, role: str) -> Trajectory:
    """Read a PoseStamped, Path or TFMessage (child `frame`) topic of a bag as a trajectory."""
    reader = bag.open_reader(path)
    try:
        conns = [c for c in reader.connections if c.topic == topic]
        if not conns:
            topics = sorted({c.topic for c in reader.connections if c.msgtype in _POSE_TYPES})
            raise ValueError(f'{path} has no topic {topic}; trajectory topics: '
                             f'{", ".join(topics) or "none"}')
        msgtype = conns[0].msgtype
        if msgtype not in _POSE_TYPES:
            raise ValueError(f'{topic} is {msgtype}; expected one of {", ".join(_POSE_TYPES)}')
        if msgtype == 'tf2_msgs/msg/TFMessage' and not frame:
            raise ValueError(f'{topic} is a TFMessage topic: name the child frame with '
                             f'--{role}-frame')
        poses: dict[int, np.ndarray] = {}
        msg_class = {'geometry_msgs/msg/PoseStamped': convert.PoseStamped,
                     'nav_msgs/msg/Path': _path_class(),
                     'tf2_msgs/msg/TFMessage': convert.TFMessage}[msgtype]
        for _, _, raw in reader.messages(connections=conns):
            msg = bag.from_cdr(raw, msg_class)
            if msgtype == 'geometry_msgs/msg/PoseStamped':
                poses[convert.stamp_to_ns(msg.header.stamp)] = convert.pose_to_matrix(msg.pose)
            elif msgtype == 'nav_msgs/msg/Path':
                poses = {convert.stamp_to_ns(p.header.stamp): convert.pose_to_matrix(p.pose)
                         for p in msg.poses}  # each message is the whole path so far
            else:
                for ts in msg.transforms:
                    if ts.child_frame_id == frame:
                        poses[convert.stamp_to_ns(ts.header.stamp)] = convert.pose_to_matrix(
                            ts.transform)
    finally:
        reader.close()
    if not poses:
        what = f' with child frame {frame}' if msgtype == 'tf2_msgs/msg/TFMessage' else ''
        raise ValueError(f'{path}: no poses on {topic}{what}')
    stamps = sorted(poses)
    return Trajectory(np.array(stamps) * 1e-9, np.array([poses[s] for s in stamps]))


def _path_class():
    from nav_msgs.msg import Path as PathMsg
    return PathMsg


def run(args: argparse.Namespace) -> int:
    """Execute `rrb eval-traj`."""
    if args.delta < 1:
        raise ValueError(f'--delta must be >= 1, got {args.delta}')
    if not args.max_diff >= 0.0:
        raise ValueError(f'--max-diff must be >= 0, got {args.max_diff}')
    ref = load_trajectory(args.ref, args.ref_topic, args.ref_frame, 'ref')
    est = load_trajectory(args.est, args.est_topic, args.est_frame, 'est')
    aligned, scores = compare_trajectories(ref, est, args.align, args.delta, args.max_diff)
    report = {key: scores[key] for key in ('ate_rmse', 'rpe_trans_rmse', 'rpe_rot_rmse_deg',
                                           'scale', 'pairs')}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + '\n')
    if args.plot:
        plot(ref, aligned, args.max_diff, args.plane, Path(args.plot),
             f"ATE {report['ate_rmse']:.4f} m ({args.align}, {report['pairs']} poses)")
    return 0


def plot(ref: Trajectory, est_aligned: Trajectory, max_diff: float, plane: str, path: Path,
         title: str) -> None:
    """Write a PNG: reference and aligned estimate seen from above, position error over time."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    axes = ['xyz'.index(c) for c in plane]
    ref_m, est_m = associate(ref, est_aligned, max_diff)
    err = np.linalg.norm(est_m.positions - ref_m.positions, axis=1)
    fig, (top, over_time) = plt.subplots(1, 2, figsize=(11, 4.5))
    top.plot(ref.positions[:, axes[0]], ref.positions[:, axes[1]], 'k-', label='reference')
    top.plot(est_aligned.positions[:, axes[0]], est_aligned.positions[:, axes[1]], 'C1-',
             label='estimate (aligned)')
    top.set_xlabel(f'{plane[0]} (m)')
    top.set_ylabel(f'{plane[1]} (m)')
    top.set_aspect('equal', adjustable='datalim')
    top.legend()
    top.set_title(title)
    over_time.plot(ref_m.stamps - ref_m.stamps[0], err, 'C1-')
    over_time.set_xlabel('time (s)')
    over_time.set_ylabel('position error after alignment (m)')
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
