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

"""pose_node: image + mask + camera_info in; object poses on TF, PoseStamped, markers, overlay out.

The node is thin: callbacks only queue messages; a worker thread takes the newest synchronised
frame, converts it (`rrb_ros.ros.convert`) and runs the ROS-free `FramePipeline`.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import threading
import time

from geometry_msgs.msg import PoseArray
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy,
    qos_profile_sensor_data,
    QoSProfile,
    ReliabilityPolicy,
)
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Float32MultiArray
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from rrb_ros.core.config import build_pipeline, ground_from_params, object_parameters, PARAMETERS
from rrb_ros.core.mesh import MeshError, unit_warning
from rrb_ros.ros import convert
from rrb_ros.ros.outputs import frame_from_messages, OutputBuilder
from rrb_ros.ros.params import declare, reliability, warn_unknown
from rrb_ros.ros.run import run_node
from rrb_ros.ros.sync import StampSynchronizer
from rrb_ros.ros.tf import LatestTransforms, TF_QOS, tf_sender, TF_STATIC_QOS


class PoseNode(Node):
    """Fits known object meshes to instance masks and publishes their 6-DoF poses."""

    def __init__(self, **kwargs) -> None:
        """Declare parameters, load meshes (raising MeshError/ValueError), set up topics."""
        super().__init__('pose_node', **kwargs)
        p = declare(self, {name: (Parameter.Type.STRING_ARRAY if name == 'objects.names'
                                  else default, description)
                           for name, (default, description) in PARAMETERS.items()})
        p['objects.names'] = list(p['objects.names'] or [])
        p.update(declare(self, object_parameters(p['objects.names'])))
        warn_unknown(self)
        input_reliability = reliability(p['reliability'])
        prefix = str(p['object_frame_prefix'])
        if prefix.startswith('/'):
            raise ValueError(f'object_frame_prefix must not start with "/" (tf2 frame ids do '
                             f'not), got {prefix!r}')
        if p['warn_period'] < 0:
            raise ValueError(f"warn_period must be >= 0, got {p['warn_period']}")
        self.pipeline = build_pipeline(p)
        cached = {rec.name: rec for rec in self.pipeline.cached}
        views = int(p['reconstruction.views'])
        more = (f', then up to {views} views from other directions averaged in' if views > 1
                else '')
        for obj in self.pipeline.objects:
            source = (p[f'objects.{obj.name}.mesh'] if obj.name not in self.pipeline.reconstructed
                      else f'the reconstruction cache {cached[obj.name].source} '
                           f'({cached[obj.name].views} views)'
                      if obj.name in cached else None)
            self.get_logger().info(
                f'object {obj.name}: label {obj.label}, ' + (
                    f'{len(obj.mesh.faces)} faces from {source}' if source else
                    f'no mesh: reconstructed from its first good view{more}'))
            if obj.mesh is not None and (warning := unit_warning(obj.mesh, obj.name)):
                self.get_logger().warn(warning)
        self._setup_ground(p, use_image=bool(p['use_image']))
        if not self.pipeline.objects:
            self.get_logger().warn('objects.names is empty: nothing to fit')
        self.prefix = prefix
        self.outputs = OutputBuilder(self.pipeline, self.prefix, bool(p['publish_markers']),
                                     bool(p['publish_overlay']))
        self.warn_period = p['warn_period']
        self.sync_tolerance = p['sync_tolerance']
        self.rectified = bool(p['rectified'])
        streams = ('mask', 'camera_info') + (('image',) if p['use_image'] else ())
        self.sync = StampSynchronizer(
            streams, int(round(self.sync_tolerance * 1e9)), int(p['queue_size']),
            latched=('camera_info',) if p['latch_camera_info'] else ())
        self._topics = {s: self.resolve_topic_name(s) for s in streams}
        self._received = dict.fromkeys(streams, 0)
        self._inputs_seen = (0, 0)  # received messages, matched frames at the last check

        qos = QoSProfile(**{k: getattr(qos_profile_sensor_data, k) for k in (
            'history', 'depth', 'durability')})
        qos.reliability = input_reliability
        self.create_subscription(Image, 'mask', lambda m: self._on_msg('mask', m), qos)
        self.create_subscription(CameraInfo, 'camera_info',
                                 lambda m: self._on_msg('camera_info', m), qos)
        if p['use_image']:
            self.create_subscription(Image, 'image', lambda m: self._on_msg('image', m), qos)

        self.pub_pose = self.create_publisher(convert.PoseStamped, 'object_pose', 10)
        self.pub_poses = self.create_publisher(PoseArray, 'object_poses', 10)
        self.pub_iou = self.create_publisher(Float32MultiArray, 'fit_iou', 10)
        self.pub_markers = self.create_publisher(MarkerArray, 'markers', 10)
        self.pub_overlay = self.create_publisher(Image, 'overlay', 10)
        self.pub_detections = (self.create_publisher(convert.Detection3DArray, 'detections', 10)
                               if self.outputs.with_detections else None)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.pub_reconstructions = self.create_publisher(MarkerArray, 'reconstructions', latched)
        self._lock = threading.Lock()  # the pipeline: worker thread vs the service
        if self.pipeline.reconstructed:
            self.create_service(Trigger, '~/reconstruct', self._on_reconstruct)
            if self.pipeline.cached:
                self.pub_reconstructions.publish(self.outputs.reconstructions())
        self._send_tf = tf_sender(self)
        if self._send_tf is None:
            self.get_logger().warn('neither tf2_ros nor tf2_msgs is importable: no TF output')
        self._slot, self._rewound = None, False
        self._cond = threading.Condition()
        self._running = True
        self._last_warn: dict[str, float] = {}
        self.frames_processed = 0
        self.frames_dropped = 0
        self._worker = threading.Thread(target=self._work, name='rrb_pose_worker', daemon=True)
        self._worker.start()
        self.create_timer(max(self.warn_period, 1.0), self._check_inputs)
        self.get_logger().info(
            f'ready: {len(self.pipeline.objects)} object(s), inputs {", ".join(streams)}, '
            f"device {p['device']}, TF child frames {self.prefix}<name>")

    def _setup_ground(self, p: dict, use_image: bool) -> None:
        """Where the floor plane for reconstruction comes from: TF, parameters, or nowhere."""
        self.base_frame = str(p['base_frame']).lstrip('/')
        self.ground = ground_from_params(p)  # raises ValueError for a bad height or pitch
        self.tf = None
        need = [o.name for o in self.pipeline.objects if o.mesh is None]
        if self.base_frame:
            if not convert.HAVE_TF2_MSGS:
                raise ValueError('base_frame is set but tf2_msgs is not importable')
            self.tf = LatestTransforms()
            for topic, qos in (('/tf', TF_QOS), ('/tf_static', TF_STATIC_QOS)):
                self.create_subscription(convert.TFMessage, topic,
                                         lambda m: self.tf.add(m.transforms), qos)
        elif need and self.ground is None:
            self.get_logger().warn(
                f'{", ".join(need)} have no mesh, and neither camera_height nor base_frame is '
                'set: they cannot be reconstructed (the ground plane gives their scale)')
        if need and not use_image:
            self.get_logger().warn(f'{", ".join(need)} have no mesh, and use_image is false: '
                                   'they cannot be reconstructed')

    def _ground_for(self, frame_id: str):
        """Return the floor plane in the camera frame `frame_id`; None when unknown."""
        if self.tf is None:
            return self.ground
        try:
            return self.tf.ground_plane(self.base_frame, frame_id)
        except ValueError as exc:
            self._warn('ground', f'{exc}: cannot reconstruct objects')
            return None

    def _on_reconstruct(self, request, response):
        with self._lock:
            names = self.pipeline.reconstruct_again()
            markers = self.outputs.reconstructions(deleted=names) if names else None
        response.success = bool(names)
        response.message = (f'reconstructing {", ".join(names)} from their next good views'
                            if names else 'no object is reconstructed: all have meshes')
        self.get_logger().info(response.message)
        if markers is not None:
            self.pub_reconstructions.publish(markers)
        return response

    # -- input ----------------------------------------------------------------------------

    def _on_msg(self, stream: str, msg) -> None:
        stamp = convert.stamp_to_ns(msg.header.stamp)
        if stamp == 0:
            self._warn(f'{stream} stamp 0', f'{self._topics[stream]} has header.stamp 0: inputs '
                       'are matched by stamp, so each frame needs its acquisition time')
        self._received[stream] += 1
        rewinds = self.sync.rewinds
        match = self.sync.add(stream, stamp, msg)
        if self.sync.rewinds != rewinds:
            self.get_logger().warn(
                f'time went back: {self._topics[stream]} stamp {stamp * 1e-9:.3f} s is older '
                'than the last frame (a bag played again, a simulator or driver restart?); '
                'synchronisation and tracking start afresh')
            with self._cond:
                self._slot, self._rewound = None, True
        if match is None:
            return
        self.get_logger().debug(f'frame {match.stamp_ns} synchronised')
        with self._cond:
            if self._slot is not None:
                self.frames_dropped += 1   # only the newest frame is worth fitting
            self._slot = match
            self._cond.notify()

    def _work(self) -> None:
        while True:
            with self._cond:
                while self._slot is None and self._running:
                    self._cond.wait()
                if not self._running:
                    return
                match, self._slot = self._slot, None
                rewound, self._rewound = self._rewound, False
            if rewound:
                with self._lock:
                    self.pipeline.reset()
            try:
                self._process(match)
            except Exception as exc:  # noqa: BLE001 - a bad frame must not kill the node
                self._warn(type(exc).__name__, f'frame {match.stamp_ns} skipped: {exc}')

    def _check_inputs(self) -> None:
        """Warn when input keeps arriving but makes no frame (a stream missing, stamps apart)."""
        received, matched = sum(self._received.values()), self.sync.matched
        stalled = received > self._inputs_seen[0] and matched == self._inputs_seen[1]
        self._inputs_seen = received, matched
        if not stalled:
            return
        missing = [self._topics[s] for s in self.sync.names if not self._received[s]]
        if missing:
            self._warn('no frame', f'no frame yet: nothing received on {", ".join(missing)}')
        else:
            self._warn('no frame', 'input arrives but makes no frame: the stamps of '
                       f'{", ".join(self._topics[s] for s in self.sync.names)} do not match '
                       f'within sync_tolerance ({self.sync_tolerance} s), or are not newer '
                       'than the last frame')

    def _warn(self, kind: str, text: str) -> None:
        now = time.monotonic()
        if now - self._last_warn.get(kind, -math.inf) >= self.warn_period:
            self._last_warn[kind] = now
            self.get_logger().warn(text)

    # -- processing -----------------------------------------------------------------------

    def _process(self, match) -> None:
        msgs = match.msgs
        try:
            frame, header, notes = frame_from_messages(msgs['mask'], msgs['camera_info'],
                                                       msgs.get('image'), self.rectified)
        except ValueError as exc:  # 'camera_info unusable: ...', 'mask unusable: ...'
            self._warn(str(exc).split(':')[0], f'frame skipped: {exc}')
            return
        for kind, text in notes.items():
            self._warn(kind, text)
        if self.pipeline.reconstructed:
            frame = dataclasses.replace(frame, ground=self._ground_for(frame.frame_id))
        try:
            with self._lock:  # the service may drop meshes: build the messages under it too
                result = self.pipeline.process(frame)
                out = self.outputs.build(result, header, frame)
                latched = (self.outputs.reconstructions() if result.reconstructions else None)
        except ValueError as exc:  # 'mask is WxH but ...', 'image is WxH but ...'
            self._warn(' '.join(str(exc).split()[:2]), f'frame skipped: {exc}')
            return
        self.frames_processed += 1
        for name, why in result.rejected.items():
            if why.startswith('no mesh yet;'):
                # throttled per reason (numbers aside): a new reason is logged at once
                self._warn(f"{name}: {re.sub(r'[0-9.]+', '#', why)}", f'{name}: {why}')
            else:
                self.get_logger().debug(f'{name}: no pose ({why})')
        for name, note in result.notes.items():
            self.get_logger().info(f'{name}: {note}')
        for rec in result.reconstructions:
            made = 'reconstructed' if rec.views <= 1 else f'shape made of {rec.views} views'
            self.get_logger().info(
                f'{rec.name}: {made} in {rec.seconds:.1f} s, {len(rec.mesh.faces)} '
                f'faces, {rec.mesh.extents.round(2).tolist()} m (scale {rec.scale:.3f}), '
                f'fit IoU {rec.iou:.3f}' + ''.join(f'; {note}' for note in
                                                    (rec.viewpoint, rec.refinement, rec.fusion)
                                                    if note))
        for pose in result.poses:
            self.get_logger().debug(f'{pose.name}: IoU {pose.iou:.3f}, {pose.iterations} '
                                    f'steps, {pose.seconds * 1e3:.0f} ms')
        if not self.context.ok():  # shutting down: publishers may be gone
            return
        for msg in out.poses:
            self.pub_pose.publish(msg)
        self.pub_poses.publish(out.pose_array)
        self.pub_iou.publish(out.fit_iou)
        if self._send_tf is not None and out.transforms:
            self._send_tf(out.transforms)
        if out.markers is not None:
            self.pub_markers.publish(out.markers)
        if out.detections is not None:
            self.pub_detections.publish(out.detections)
        if out.overlay is not None:
            self.pub_overlay.publish(out.overlay)
        if latched is not None:
            self.pub_reconstructions.publish(latched)

    def destroy_node(self) -> None:
        """Stop the worker thread, then the node."""
        if hasattr(self, '_worker'):  # not when start-up failed
            with self._cond:
                self._running = False
                self._cond.notify()
            self._worker.join(timeout=60.0)  # a fit in progress finishes (seconds under load)
        super().destroy_node()


def main(args=None) -> int:
    """Run pose_node until shutdown; exit code 1 when start-up fails (e.g. a bad mesh path)."""
    return run_node('pose_node', PoseNode, args, (MeshError, ValueError))


if __name__ == '__main__':
    sys.exit(main())
