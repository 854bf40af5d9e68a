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

import math
import sys
import threading
import time

from geometry_msgs.msg import PoseArray
from rcl_interfaces.msg import ParameterDescriptor
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    qos_profile_sensor_data,
    QoSProfile,
    ReliabilityPolicy,
)
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Float32MultiArray, Header, MultiArrayDimension
from visualization_msgs.msg import MarkerArray

from rrb_ros.core.fit import FitSettings
from rrb_ros.core.mesh import load_mesh, MeshError
from rrb_ros.core.overlay import draw_pose, mask_to_rgb, PALETTE
from rrb_ros.core.pipeline import Frame, FramePipeline, ObjectSpec, PipelineSettings
from rrb_ros.ros import convert
from rrb_ros.ros.sync import StampSynchronizer

try:
    from tf2_ros import TransformBroadcaster
except ImportError:  # pip environment: publish tf2_msgs/TFMessage on /tf ourselves
    TransformBroadcaster = None

# tf2's DynamicBroadcasterQoS
TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.VOLATILE, history=HistoryPolicy.KEEP_LAST)

PARAMETERS = {  # name: (default, description)
    'objects.names': (Parameter.Type.STRING_ARRAY, 'Object names; per name N set objects.N.label '
                      '(mask value) and objects.N.mesh (mesh file, metres)'),
    'object_frame_prefix': ('rrb/', 'TF child frame of object N is <prefix>N'),
    'sync_tolerance': (0.0, 'Largest stamp difference (s) between image, mask and camera_info '
                       'of one frame; 0 = identical stamps'),
    'use_image': (True, 'Subscribe to the camera image (only needed for the overlay)'),
    'latch_camera_info': (True, 'Reuse the latest camera_info when none carries the frame stamp'),
    'reliability': ('best_effort', 'QoS reliability of the input subscriptions: best_effort '
                    '(sensor data) or reliable'),
    'queue_size': (10, 'Messages kept per input stream while waiting for their partners'),
    'device': ('cpu', 'Torch device for fitting: cpu, cuda, cuda:N'),
    'resolution': (FitSettings.resolution, 'Working resolution of the fitting crop (pixels)'),
    'coarse_iterations': (FitSettings.coarse_iterations, 'Most Adam steps, coarse stage'),
    'fine_iterations': (FitSettings.fine_iterations, 'Most Adam steps, fine stage'),
    'max_faces': (FitSettings.max_faces, 'Face budget of each mesh for fitting'),
    'min_iou': (PipelineSettings.min_iou, 'Fits with a lower silhouette IoU publish no pose and '
                're-initialise tracking'),
    'min_mask_pixels': (PipelineSettings.min_mask_pixels, 'Fewer mask pixels: object not '
                        'visible'),
    'publish_overlay': (True, 'Publish the overlay image with fitted outlines and axes'),
    'publish_markers': (True, 'Publish the fitted meshes as a MarkerArray'),
    'warn_period': (5.0, 'Seconds between repeated warnings of the same kind'),
}


class PoseNode(Node):
    """Fits known object meshes to instance masks and publishes their 6-DoF poses."""

    def __init__(self, **kwargs) -> None:
        """Declare parameters, load meshes (raising MeshError/ValueError), set up topics."""
        super().__init__('pose_node', **kwargs)
        p = {}
        for name, (default, description) in PARAMETERS.items():
            desc = ParameterDescriptor(description=description)
            p[name] = self.declare_parameter(name, default, desc).value
        names = list(p['objects.names'] or [])
        objects = []
        for i, name in enumerate(names):
            label = self.declare_parameter(
                f'objects.{name}.label', i + 1,
                ParameterDescriptor(description=f'Mask value of object {name}')).value
            mesh_path = self.declare_parameter(
                f'objects.{name}.mesh', '',
                ParameterDescriptor(description=f'Mesh file of object {name} (metres)')).value
            if not mesh_path:
                raise ValueError(f'objects.{name}.mesh is not set (reconstruction of objects '
                                 'without a mesh is not available yet)')
            mesh = load_mesh(mesh_path)
            objects.append(ObjectSpec(name, int(label), mesh))
            self.get_logger().info(f'object {name}: label {label}, {len(mesh.faces)} faces '
                                   f'from {mesh_path}')
        if not objects:
            self.get_logger().warn('objects.names is empty: nothing to fit')
        self._warn_unknown_parameters()
        if p['reliability'] not in ('best_effort', 'reliable'):
            raise ValueError(f"reliability must be 'best_effort' or 'reliable', "
                             f"got {p['reliability']!r}")
        fit = FitSettings(resolution=int(p['resolution']), device=str(p['device']),
                          coarse_iterations=int(p['coarse_iterations']),
                          fine_iterations=int(p['fine_iterations']),
                          max_faces=int(p['max_faces']))
        self.pipeline = FramePipeline(objects, PipelineSettings(
            fit=fit, min_iou=float(p['min_iou']), min_mask_pixels=int(p['min_mask_pixels'])))
        self.prefix = str(p['object_frame_prefix'])
        self.publish_overlay = bool(p['publish_overlay'])
        self.publish_markers = bool(p['publish_markers'])
        self.warn_period = float(p['warn_period'])
        streams = ('mask', 'camera_info') + (('image',) if p['use_image'] else ())
        self.sync = StampSynchronizer(
            streams, int(round(float(p['sync_tolerance']) * 1e9)), int(p['queue_size']),
            latched=('camera_info',) if p['latch_camera_info'] else ())

        qos = QoSProfile(**{k: getattr(qos_profile_sensor_data, k) for k in (
            'history', 'depth', 'durability')})
        qos.reliability = (ReliabilityPolicy.RELIABLE if p['reliability'] == 'reliable'
                           else ReliabilityPolicy.BEST_EFFORT)
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
                               if convert.HAVE_VISION_MSGS else None)
        if TransformBroadcaster is not None:
            self._tf = TransformBroadcaster(self)
            self._send_tf = self._tf.sendTransform
        elif convert.HAVE_TF2_MSGS:
            pub_tf = self.create_publisher(convert.TFMessage, '/tf', TF_QOS)
            self._send_tf = lambda ts: pub_tf.publish(convert.tf_message(ts))
        else:
            self._send_tf = None
            self.get_logger().warn('neither tf2_ros nor tf2_msgs is importable: no TF output')
        self._markers = {o.name: convert.mesh_marker(
            self.pipeline._fitters[o.name].mesh, self.prefix + o.name, None, o.name, 0,
            tuple(c / 255.0 for c in PALETTE[i % len(PALETTE)]) + (0.6,))
            for i, o in enumerate(objects)}

        self._slot = None
        self._cond = threading.Condition()
        self._running = True
        self._last_warn: dict[str, float] = {}
        self.frames_processed = 0
        self.frames_dropped = 0
        self._worker = threading.Thread(target=self._work, name='rrb_pose_worker', daemon=True)
        self._worker.start()
        self.get_logger().info(
            f'ready: {len(objects)} object(s), inputs {", ".join(streams)}, '
            f'device {fit.device}, TF child frames {self.prefix}<name>')

    # -- input ----------------------------------------------------------------------------

    def _on_msg(self, stream: str, msg) -> None:
        match = self.sync.add(stream, convert.stamp_to_ns(msg.header.stamp), msg)
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
            try:
                self._process(match)
            except Exception as exc:  # noqa: BLE001 - a bad frame must not kill the node
                self._warn(type(exc).__name__, f'frame {match.stamp_ns} skipped: {exc}')

    def _warn(self, kind: str, text: str) -> None:
        now = time.monotonic()
        if now - self._last_warn.get(kind, -math.inf) >= self.warn_period:
            self._last_warn[kind] = now
            self.get_logger().warn(text)

    def _warn_unknown_parameters(self) -> None:
        declared = set(self._parameters)
        unknown = sorted(n for n in self._parameter_overrides
                         if n not in declared and n != 'use_sim_time')
        if unknown:
            self.get_logger().warn(f'ignoring unknown parameters: {", ".join(unknown)}')

    # -- processing -----------------------------------------------------------------------

    def _process(self, match) -> None:
        msgs = match.msgs
        mask_msg = msgs['mask']
        header = msgs['image'].header if 'image' in msgs else mask_msg.header
        try:
            camera = convert.camera_info_to_camera(msgs['camera_info'])
        except ValueError as exc:
            self._warn('camera_info', f'camera_info unusable, frame skipped: {exc}')
            return
        try:
            mask = convert.image_to_mask(mask_msg)
            image = convert.image_to_rgb(msgs['image']) if 'image' in msgs else None
        except ValueError as exc:
            self._warn('encoding', f'frame skipped: {exc}')
            return
        frame = Frame(convert.stamp_to_ns(header.stamp), header.frame_id, camera, mask, image)
        try:
            result = self.pipeline.process(frame)
        except ValueError as exc:
            self._warn('frame', f'frame skipped: {exc}')
            return
        self.frames_processed += 1
        for name, why in result.rejected.items():
            self.get_logger().debug(f'{name}: no pose ({why})')
        if not self.context.ok():
            return
        self._publish(result, header, frame)

    def _publish(self, result, header: Header, frame: Frame) -> None:
        by_name = {p.name: p for p in result.poses}
        ious = []
        for obj in self.pipeline.objects:
            pose = by_name.get(obj.name)
            ious.append(float('nan') if pose is None else pose.iou)
            if pose is not None:
                self.get_logger().debug(f'{obj.name}: IoU {pose.iou:.3f}, {pose.iterations} '
                                        f'steps, {pose.seconds * 1e3:.0f} ms')
                self.pub_pose.publish(convert.pose_stamped(pose.T_cam_obj, header))
        self.pub_poses.publish(PoseArray(header=header, poses=[
            convert.matrix_to_pose(p.T_cam_obj) for p in result.poses]))
        iou_msg = Float32MultiArray(data=ious)
        iou_msg.layout.dim = [MultiArrayDimension(label='objects: ' + ','.join(
            o.name for o in self.pipeline.objects), size=len(ious), stride=len(ious))]
        self.pub_iou.publish(iou_msg)
        if self._send_tf is not None and result.poses:
            self._send_tf([convert.transform_stamped(p.T_cam_obj, header, self.prefix + p.name)
                           for p in result.poses])
        if self.publish_markers:
            markers = []
            for obj in self.pipeline.objects:
                if obj.name in by_name:
                    m = self._markers[obj.name]
                    m.header.stamp = header.stamp
                    markers.append(m)
                else:
                    markers.append(convert.delete_marker(obj.name, 0))
            self.pub_markers.publish(MarkerArray(markers=markers))
        if self.pub_detections is not None:
            dets = [convert.detection3d(
                p.T_cam_obj, header, p.name, p.iou, self.pipeline._fitters[p.name].mesh.extents,
                self.pipeline._fitters[p.name].centre, p.name) for p in result.poses]
            self.pub_detections.publish(convert.detection3d_array(dets, header))
        if self.publish_overlay:
            img = frame.image.copy() if frame.image is not None else mask_to_rgb(frame.mask)
            for i, obj in enumerate(self.pipeline.objects):
                if obj.name in by_name:
                    draw_pose(img, obj.mesh, by_name[obj.name].T_cam_obj, frame.camera,
                              PALETTE[i % len(PALETTE)], obj.name)
            self.pub_overlay.publish(convert.rgb_to_image(img, header))

    def destroy_node(self) -> None:
        """Stop the worker thread, then the node."""
        with self._cond:
            self._running = False
            self._cond.notify()
        self._worker.join(timeout=10.0)
        super().destroy_node()


def main(args=None) -> int:
    """Run pose_node until shutdown; exit code 1 when start-up fails (e.g. a bad mesh path)."""
    with rclpy.init(args=args):
        try:
            node = PoseNode()
        except (MeshError, ValueError) as exc:
            rclpy.logging.get_logger('pose_node').fatal(f'cannot start: {exc}')
            return 1
        try:
            rclpy.spin(node)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        finally:
            node.destroy_node()
    return 0


if __name__ == '__main__':
    sys.exit(main())
