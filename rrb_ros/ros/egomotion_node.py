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

"""egomotion_node: the camera trajectory from static objects' poses, compared with ORB-SLAM.

Subscribed topics (object poses: `input` chooses detections or /tf)
  detections (vision_msgs/Detection3DArray): pose_node's per-frame objects; a detection's
      `id` names the object (its hypothesis's class_id when the id is empty), the hypothesis
      gives the pose T_cam_obj and the weight (score = fit IoU); objects weighing
      `min_weight` or less are ignored.
  /tf (tf2_msgs/TFMessage): object poses as pose_node publishes them, parent = camera optical
      frame, child = <object_frame_prefix><name>, stamp = image stamp; the transforms of one
      stamp are one frame. TF carries no fit quality, so every object weighs 1.
  orbslam_pose (geometry_msgs/PoseStamped): optional, T_world_cam in ORB-SLAM's own map
      (its frame and, for a monocular camera, its scale).

Published topics
  camera_path (nav_msgs/Path): T_world_cam of every accepted frame, in `world_frame`, which is
      the frame of the anchor object (the first object seen, or `anchor_object`).
  /tf: `world_frame` -> `camera_frame` per accepted frame (a frame of its own, never a second
      parent of the camera driver's optical frame; REP-105).
  orbslam_path (nav_msgs/Path): the ORB-SLAM poses after Sim(3) (`align`) alignment to
      camera_path, in `world_frame`; once both trajectories share at least 3 stamps.
  egomotion_metrics (std_msgs/String): JSON of `metrics.evaluate_trajectory` with camera_path
      as reference and ORB-SLAM as estimate: `ate_rmse` (m), `rpe_trans_rmse` (m),
      `rpe_rot_rmse_deg` (deg), `scale`, `pairs`, plus `align`, `delta`, `rrb_poses`,
      `orbslam_poses`; every `metrics_period` seconds while new poses arrive.

Files: `rrb_tum` (camera_path) and `orbslam_tum` (the ORB-SLAM poses as received, not
aligned), TUM format, written at shutdown and every `write_every` accepted frames.

Time going back (object poses stamped more than a second before the last accepted frame: a bag
played again, a simulator restart) starts a new trajectory: the files of the old one are
written, camera_path starts afresh, and the new trajectory's files get a number
(`rrb.tum`, then `rrb.1.tum`, ...).
"""

from __future__ import annotations

import json
import sys

from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile
from std_msgs.msg import Header, String

from rrb_ros.core.egomotion import (
    compare_trajectories,
    EgomotionSettings,
    ObjectCentricOdometry,
)
from rrb_ros.core.metrics import Trajectory, write_tum
from rrb_ros.ros import convert
from rrb_ros.ros.params import declare, reliability, warn_unknown
from rrb_ros.ros.run import run_node
from rrb_ros.ros.sync import REWIND_NS
from rrb_ros.ros.tf import TF_QOS, tf_sender

_NS = 1e-9

PARAMETERS = {
    'input': ('detections', 'object poses from pose_node: detections (vision_msgs, weighted '
              'by fit IoU) or tf (TF frames <object_frame_prefix><name>, weight 1)'),
    'min_weight': (0.0, 'objects whose weight (fit IoU) is not above this are ignored'),
    'object_frame_prefix': ('rrb/', 'TF child frames <prefix><name> are object poses'),
    'world_frame': ('rrb/world', 'frame of camera_path and orbslam_path: the anchor object'),
    'camera_frame': ('rrb/camera', 'TF child frame of the estimated camera pose'),
    'publish_tf': (True, 'publish world_frame -> camera_frame on /tf'),
    'anchor_object': ('', "object that defines the world frame; '' = the first seen"),
    'max_translation_deviation': (0.1, 'metres; an object whose camera hypothesis is farther '
                                  'from the consensus is rejected for the frame'),
    'max_rotation_deviation': (10.0, 'degrees; an object whose camera hypothesis turns more '
                               'from the consensus is rejected for the frame'),
    'max_jump': (0.1, 'metres per frame interval; a frame whose camera moves farther from the '
                 'previous accepted one is dropped (the original: squared jump 0.01 m^2); '
                 'after a gap of k typical intervals, k times as far'),
    'max_dropped_frames': (10, 'after this many frames dropped in a row for jumping, accept '
                           'the next one (0 = never)'),
    'rrb_tum': ('', "TUM file of camera_path, written at shutdown ('' = none)"),
    'orbslam_tum': ('', "TUM file of the ORB-SLAM poses as received ('' = none)"),
    'write_every': (0, 'also write the TUM files every N accepted frames (0 = only at '
                    'shutdown)'),
    'metrics_period': (1.0, 'seconds between comparisons with ORB-SLAM (when new poses came)'),
    'align': ('sim3', 'alignment of ORB-SLAM to camera_path: sim3, se3 or none'),
    'rpe_delta': (1, 'frame distance of the RPE pairs'),
    'max_diff': (0.01, 'seconds; largest stamp difference of associated poses'),
    'reliability': ('reliable', 'QoS reliability of the detections and orbslam_pose '
                    'subscriptions: reliable or best_effort (matches publishers of either kind)'),
}


class EgomotionNode(Node):
    """Chains static objects' poses into a camera trajectory; compares it with ORB-SLAM."""

    def __init__(self, **kwargs) -> None:
        """Declare and read the parameters (ValueError when invalid), set up topics."""
        super().__init__('egomotion_node', **kwargs)
        p = declare(self, PARAMETERS)
        warn_unknown(self)
        qos = QoSProfile(depth=100, reliability=reliability(p['reliability']))
        if p['align'] not in ('sim3', 'se3', 'none'):
            raise ValueError(f"align must be sim3, se3 or none, got {p['align']!r}")
        if int(p['rpe_delta']) < 1 or float(p['metrics_period']) <= 0.0:
            raise ValueError('rpe_delta must be >= 1 and metrics_period > 0')
        if p['input'] not in ('detections', 'tf'):
            raise ValueError(f"input must be detections or tf, got {p['input']!r}")
        if p['input'] == 'detections' and not convert.HAVE_VISION_MSGS:
            self.get_logger().warn('vision_msgs is not importable: object poses from /tf')
            p['input'] = 'tf'
        if int(p['write_every']) < 0:
            raise ValueError(f"write_every must be >= 0, got {p['write_every']}")
        for name in ('world_frame', 'camera_frame'):
            if not p[name] or p[name].startswith('/'):
                raise ValueError(f'{name} must be non-empty and not start with "/"')
        self.p = p
        self.prefix = str(p['object_frame_prefix'])
        self.world_frame, self.camera_frame = str(p['world_frame']), str(p['camera_frame'])
        self.odometry = ObjectCentricOdometry(EgomotionSettings(
            anchor=str(p['anchor_object']),
            max_translation_deviation=float(p['max_translation_deviation']),
            max_rotation_deviation=float(p['max_rotation_deviation']),
            max_jump=float(p['max_jump']), max_dropped_frames=int(p['max_dropped_frames']),
            min_weight=float(p['min_weight'])))
        self._stamps_ns: list[int] = []           # of the accepted frames, exact
        self._path_poses: list[PoseStamped] = []
        self._orbslam: dict[int, np.ndarray] = {}  # stamp (ns) -> T_world_cam in its map
        self._dirty = False
        self._trajectory = 0  # how often time went back: numbers the files

        if p['input'] == 'tf':
            self.create_subscription(convert.TFMessage, '/tf', self._on_tf, TF_QOS)
        else:
            self.create_subscription(convert.Detection3DArray, 'detections',
                                     self._on_detections, qos)
        self.create_subscription(PoseStamped, 'orbslam_pose', self._on_orbslam, qos)
        self.pub_path = self.create_publisher(Path, 'camera_path', 10)
        self.pub_orbslam_path = self.create_publisher(Path, 'orbslam_path', 10)
        self.pub_metrics = self.create_publisher(String, 'egomotion_metrics', 10)
        self._send_tf = tf_sender(self) if p['publish_tf'] else None
        self.create_timer(float(p['metrics_period']), self._compare)
        source = (f'object frames {self.prefix}<name> on /tf' if p['input'] == 'tf' else
                  f'objects from {self.resolve_topic_name("detections")}')
        self.get_logger().info(
            f'ready: {source}, camera_path in {self.world_frame}, anchor '
            f'{p["anchor_object"] or "first object seen"}')

    # -- input ----------------------------------------------------------------------------

    def _on_tf(self, msg) -> None:
        frames: dict[int, dict] = {}
        ours = (self.world_frame, self.camera_frame)
        for ts in msg.transforms:
            child, parent = ts.child_frame_id, ts.header.frame_id
            if not child.startswith(self.prefix) or child in ours or parent in ours:
                continue
            try:
                T_cam_obj = convert.pose_to_matrix(ts.transform)
            except ValueError as exc:
                self.get_logger().warn(f'{child}: bad transform skipped: {exc}',
                                       throttle_duration_sec=5.0)
                continue
            stamp_ns = convert.stamp_to_ns(ts.header.stamp)
            frames.setdefault(stamp_ns, {})[child[len(self.prefix):]] = (T_cam_obj, 1.0)
        for stamp_ns in sorted(frames):
            self._on_frame(stamp_ns, frames[stamp_ns])

    def _on_detections(self, msg) -> None:
        observations = {}
        for det in msg.detections:
            if not det.results:
                continue
            hyp = det.results[0]
            name = det.id or hyp.hypothesis.class_id  # the instance; its class if untracked
            if name in observations:
                self.get_logger().warn(f'two detections of {name!r} in one message: the last is '
                                       'used (set Detection3D.id per instance)',
                                       throttle_duration_sec=5.0)
            try:
                observations[name] = (convert.pose_to_matrix(hyp.pose.pose),
                                      float(hyp.hypothesis.score))
            except ValueError as exc:
                self.get_logger().warn(f'{name}: bad detection pose skipped: {exc}',
                                       throttle_duration_sec=5.0)
        if observations:
            self._on_frame(convert.stamp_to_ns(msg.header.stamp), observations)

    def _on_frame(self, stamp_ns: int, observations: dict) -> None:
        if self._stamps_ns and stamp_ns < self._stamps_ns[-1] - REWIND_NS:
            self._restart(stamp_ns)
        try:
            est = self.odometry.update(stamp_ns * _NS, observations)
        except ValueError as exc:
            self.get_logger().warn(f'frame {stamp_ns} skipped: {exc}', throttle_duration_sec=5.0)
            return
        if est is None:
            self.get_logger().info(f'frame {stamp_ns}: no camera pose ({self.odometry.status})',
                                   throttle_duration_sec=5.0)
            return
        if est.added:
            self.get_logger().info(f'added to the map: {", ".join(est.added)} (world frame '
                                   f'{self.world_frame} = object {self.odometry.world_anchor})')
        if est.rejected:
            self.get_logger().debug(f'frame {stamp_ns}: outliers {", ".join(est.rejected)}')
        header = Header(stamp=convert.ns_to_stamp(stamp_ns), frame_id=self.world_frame)
        self._stamps_ns.append(stamp_ns)
        self._path_poses.append(convert.pose_stamped(est.T_world_cam, header))
        self.pub_path.publish(Path(header=header, poses=self._path_poses))
        if self._send_tf is not None:
            self._send_tf([convert.transform_stamped(est.T_world_cam, header, self.camera_frame)])
        self._dirty = True
        every = int(self.p['write_every'])
        if every and len(self._stamps_ns) % every == 0:
            self.write_files()

    def _restart(self, stamp_ns: int) -> None:
        """Time went back: keep the trajectory so far in its files, start a new one."""
        self.get_logger().warn(
            f'time went back: object poses stamped {stamp_ns * _NS:.3f} s, the last accepted '
            f'{self._stamps_ns[-1] * _NS:.3f} s (a bag played again, a restart?); a new '
            f'trajectory starts ({len(self._stamps_ns)} poses so far)')
        self.write_files()
        self._trajectory += 1
        self.odometry = ObjectCentricOdometry(self.odometry.settings)
        self._stamps_ns, self._path_poses = [], []
        # ORB-SLAM poses of the old time line (later than the new one's start) go too
        self._orbslam = {s: T for s, T in self._orbslam.items() if s <= stamp_ns + REWIND_NS}
        self._dirty = False

    def _on_orbslam(self, msg: PoseStamped) -> None:
        try:
            T_world_cam = convert.pose_to_matrix(msg.pose)
        except ValueError as exc:
            self.get_logger().warn(f'orbslam_pose skipped: {exc}', throttle_duration_sec=5.0)
            return
        self._orbslam[convert.stamp_to_ns(msg.header.stamp)] = T_world_cam
        self._dirty = True

    # -- output ---------------------------------------------------------------------------

    def rrb_trajectory(self) -> Trajectory | None:
        """Return the camera trajectory so far (None before the first pose)."""
        return self.odometry.trajectory() if len(self.odometry) else None

    def orbslam_trajectory(self) -> tuple[list[int], Trajectory | None]:
        """Return the ORB-SLAM stamps (ns, sorted) and poses so far (None before the first)."""
        stamps = sorted(self._orbslam)
        if not stamps:
            return stamps, None
        return stamps, Trajectory(np.array(stamps) * _NS,
                                  np.array([self._orbslam[s] for s in stamps]))

    def _compare(self) -> None:
        if not self._dirty or not self._orbslam or len(self.odometry) < 3:
            return
        self._dirty = False
        stamps, orbslam = self.orbslam_trajectory()
        try:
            aligned, scores = compare_trajectories(
                self.odometry.trajectory(), orbslam, str(self.p['align']),
                int(self.p['rpe_delta']), float(self.p['max_diff']))
        except ValueError as exc:
            self.get_logger().info(f'no comparison with ORB-SLAM yet: {exc}',
                                   throttle_duration_sec=10.0)
            return
        header = Header(stamp=convert.ns_to_stamp(stamps[-1]), frame_id=self.world_frame)
        self.pub_orbslam_path.publish(Path(header=header, poses=[
            convert.pose_stamped(T, Header(stamp=convert.ns_to_stamp(s),
                                           frame_id=self.world_frame))
            for s, T in zip(stamps, aligned.poses)]))
        report = dict(scores, align=str(self.p['align']), delta=int(self.p['rpe_delta']),
                      rrb_poses=len(self.odometry), orbslam_poses=len(stamps))
        self.pub_metrics.publish(String(data=json.dumps(report)))
        self.get_logger().info(
            f"ORB-SLAM vs RRB over {scores['pairs']} poses ({self.p['align']}): ATE "
            f"{scores['ate_rmse']:.4f} m, RPE {scores['rpe_trans_rmse']:.4f} m / "
            f"{scores['rpe_rot_rmse_deg']:.3f} deg, scale {scores['scale']:.4f}")

    def write_files(self, logger=None) -> bool:
        """Write the TUM files that have a path and data; False if writing one failed.

        `logger` defaults to the node's; after shutdown pass one that is not the node's, whose
        rosout publisher is gone with the context.
        """
        logger = logger if logger is not None else self.get_logger()
        ok = True
        for key, traj in (('rrb_tum', self.rrb_trajectory()),
                          ('orbslam_tum', self.orbslam_trajectory()[1])):
            path = str(self.p[key])
            if not path or traj is None:
                continue
            if self._trajectory:  # rrb.tum, rrb.1.tum, rrb.2.tum, ...
                stem, dot, ext = path.rpartition('.')
                path = (f'{stem}.{self._trajectory}.{ext}' if dot and '/' not in ext
                        else f'{path}.{self._trajectory}')
            try:
                write_tum(path, traj, header=f'{key} from egomotion_node: timestamp tx ty tz '
                          'qx qy qz qw')
            except OSError as exc:
                logger.error(f'cannot write {key} {path}: {exc}')
                ok = False
            else:
                logger.info(f'wrote {len(traj)} poses to {path}')
        return ok


def main(args=None) -> int:
    """Run egomotion_node until shutdown; exit code 1 for bad parameters or unwritable files."""
    def make() -> EgomotionNode:
        if not convert.HAVE_TF2_MSGS:
            raise ValueError('tf2_msgs missing')
        return EgomotionNode()

    return run_node('egomotion_node', make, args,
                    on_shutdown=lambda node, logger: node.write_files(logger))


if __name__ == '__main__':
    sys.exit(main())
