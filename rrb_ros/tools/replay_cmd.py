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

"""`rrb replay IN_BAG OUT_BAG`: run pose_node's pipeline over a bag, without a ROS graph.

Every input message is copied to OUT_BAG, and the node's outputs are added under the names the
node would publish in the camera's namespace (e.g. /camera/object_pose, /camera/markers,
/camera/overlay, /tf). Unlike the live node, no frame is dropped: offline there is time for all.
Objects without a mesh are reconstructed when the parameters give the ground plane:
camera_height (and camera_pitch), or base_frame, looked up in the bag's /tf and /tf_static.
Meshes are cached only where reconstruction.cache_dir says. Images and masks may be
sensor_msgs/Image or, as image_transport's `compressed` records them, CompressedImage (masks
losslessly compressed: png). A replay that fails leaves no OUT_BAG behind.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
import shutil
import sys
import time

import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from rrb_ros.core.config import (
    build_pipeline,
    ground_from_params,
    read_params_file,
    unknown_parameters,
    with_defaults,
)
from rrb_ros.ros import convert
from rrb_ros.ros.convert import stamp_to_ns, tf_message
from rrb_ros.ros.outputs import frame_from_messages, OutputBuilder
from rrb_ros.ros.sync import StampSynchronizer
from rrb_ros.ros.tf import LatestTransforms
from rrb_ros.tools import bag


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `rrb replay`."""
    p = sub.add_parser('replay', help='run the pose pipeline over a rosbag2',
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('in_bag', help='input rosbag2 folder (MCAP or sqlite3)')
    p.add_argument('out_bag', help='output rosbag2 folder (must not exist)')
    p.add_argument('--params', required=True,
                   help="pose_node parameter YAML: the objects (a generated scene's rrb.yaml, or "
                   'a copy of config/rrb.yaml)')
    p.add_argument('--image', default='/camera/image_raw', help='image topic')
    p.add_argument('--mask', default='/camera/mask', help='mask topic')
    p.add_argument('--camera-info', default='/camera/camera_info', help='camera_info topic')
    p.add_argument('--storage', default='mcap', choices=['mcap', 'sqlite3'],
                   help='output storage (default: %(default)s)')
    p.add_argument('--summary', help='also write the timing summary as JSON here')
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Execute `rrb replay`."""
    params = read_params_file(args.params)
    for name in unknown_parameters(params):
        print(f'rrb replay: warning: ignoring unknown parameter {name}', file=sys.stderr)
    p = with_defaults(params)
    pipeline = build_pipeline(p, default_cache=False)
    outputs = OutputBuilder(pipeline, str(p['object_frame_prefix']),
                            bool(p['publish_markers']), bool(p['publish_overlay']))
    summary = replay(args.in_bag, args.out_bag, pipeline, outputs, args.image, args.mask,
                     args.camera_info, args.storage,
                     tolerance_ns=int(round(float(p['sync_tolerance']) * 1e9)),
                     ground=str(p['base_frame']) or ground_from_params(p),
                     rectified=bool(p['rectified']))
    print(json.dumps(summary, indent=2))
    if args.summary:
        Path(args.summary).write_text(json.dumps(summary, indent=2) + '\n')
    return 0


def replay(in_bag, out_bag, pipeline, outputs: OutputBuilder, image_topic: str,
           mask_topic: str, info_topic: str, storage: str = 'mcap',
           tolerance_ns: int = 0, ground=None, rectified: bool = False) -> dict:
    """Process every synchronised frame of `in_bag` and write inputs + outputs to `out_bag`.

    `ground` lets objects without a mesh be reconstructed: the floor plane (n, h) in the camera
    frame, or the name of a TF frame whose z = 0 is the floor (looked up in the bag's /tf and
    /tf_static as the replay goes, newest transforms). `rectified`: the intrinsics come from
    camera_info P (see `convert.camera_info_to_camera`).
    """
    reader = bag.open_reader(in_bag)
    try:
        topics = {c.topic: c for c in reader.connections}
        missing = [t for t in (mask_topic, info_topic) if t not in topics]
        if missing:
            raise ValueError(f'{in_bag}: no topic {", ".join(missing)}; the bag has '
                             f'{", ".join(sorted(topics)) or "no topics"}')
        use_image = image_topic in topics
        streams = {mask_topic: ('mask', _input_type(topics[mask_topic], _IMAGES)),
                   info_topic: ('camera_info', _input_type(topics[info_topic], _CAMERA_INFO))}
        if use_image:
            streams[image_topic] = ('image', _input_type(topics[image_topic], _IMAGES))
        sync = StampSynchronizer([s for s, _ in streams.values()], tolerance_ns,
                                 queue_size=50, latched=('camera_info',))
        ns = image_topic.rsplit('/', 1)[0] if use_image else mask_topic.rsplit('/', 1)[0]
        writer = bag.open_writer(out_bag, storage)
        try:
            summary = _run(reader, writer, topics, streams, sync, pipeline, outputs, ns,
                           ground, rectified)
        except BaseException:
            writer.close()
            shutil.rmtree(out_bag, ignore_errors=True)  # no half-written bag
            raise
        writer.close()
        return summary
    finally:
        reader.close()


_IMAGES = {'sensor_msgs/msg/Image': Image, 'sensor_msgs/msg/CompressedImage': CompressedImage}
_CAMERA_INFO = {'sensor_msgs/msg/CameraInfo': CameraInfo}


def _input_type(conn, accepted: dict) -> type:
    """Return the message class of an input topic; ValueError when its type is not accepted."""
    if conn.msgtype not in accepted:
        raise ValueError(f'{conn.topic} is {conn.msgtype}; expected {" or ".join(accepted)}')
    return accepted[conn.msgtype]


def _run(reader, writer, topics, streams, sync, pipeline, outputs, ns, ground, rectified
         ) -> dict:
    store = bag.typestore()
    out_conns = {}
    for topic, conn in topics.items():
        try:
            out_conns[topic] = bag.copy_connection(writer, conn, reader.typestore)
        except ValueError as exc:
            print(f'rrb replay: warning: not copied: {exc}', file=sys.stderr)

    def write(topic: str, msg, timestamp: int) -> None:
        if topic not in out_conns:
            out_conns[topic] = writer.add_connection(topic, bag.ros_type_name(msg),
                                                     typestore=store)
        writer.write(out_conns[topic], timestamp, bag.to_cdr(msg))

    total = sum(topics[t].msgcount for t in streams if t in topics)
    seen, frames, skipped, times, reconstructed, notes = 0, 0, [], [], {}, {}
    tf = LatestTransforms() if isinstance(ground, str) and convert.HAVE_TF2_MSGS else None
    shown = -1
    step = 1 if sys.stderr.isatty() else 10  # percent between progress lines
    t_start = time.perf_counter()
    for conn, timestamp, raw in reader.messages():
        if conn.topic in out_conns:
            writer.write(out_conns[conn.topic], timestamp, raw)
        if tf is not None and conn.topic in ('/tf', '/tf_static'):
            try:
                tf.add(bag.from_cdr(raw, convert.TFMessage).transforms)
            except ValueError as exc:
                skipped.append(f'{conn.topic} at {timestamp}: {exc}')
        if conn.topic not in streams:
            continue
        seen += 1
        name, cls = streams[conn.topic]
        try:
            msg = bag.from_cdr(raw, cls)
            if isinstance(msg, CompressedImage):
                msg = convert.compressed_to_image(msg, mask=name == 'mask')
        except ValueError as exc:  # a corrupt message, an undecodable compressed image
            skipped.append(f'{conn.topic} at {timestamp}: {exc}')
            continue
        match = sync.add(name, stamp_to_ns(msg.header.stamp), msg)
        if match is not None:
            try:
                frame, header, frame_notes = frame_from_messages(
                    match.msgs['mask'], match.msgs['camera_info'], match.msgs.get('image'),
                    rectified)
                result = pipeline.process(dataclasses.replace(
                    frame, ground=_ground(ground, tf, frame.frame_id)))
            except ValueError as exc:
                skipped.append(f'frame {match.stamp_ns}: {exc}')
                continue
            frames += 1
            notes.update(frame_notes)
            times.append(result.seconds)
            out = outputs.build(result, header, frame)
            for m in out.poses:
                write(f'{ns}/object_pose', m, timestamp)
            write(f'{ns}/object_poses', out.pose_array, timestamp)
            write(f'{ns}/fit_iou', out.fit_iou, timestamp)
            if out.transforms:
                write('/tf', tf_message(out.transforms), timestamp)
            if out.markers is not None:
                write(f'{ns}/markers', out.markers, timestamp)
            if out.detections is not None:
                write(f'{ns}/detections', out.detections, timestamp)
            if out.overlay is not None:
                write(f'{ns}/overlay', out.overlay, timestamp)
            if result.reconstructions:
                write(f'{ns}/reconstructions', outputs.reconstructions(), timestamp)
            for rec in result.reconstructions:
                # when and how fast the object was first reconstructed; its latest shape
                entry = reconstructed.get(rec.name) if rec.views > 1 else None
                if entry is None:
                    entry = reconstructed[rec.name] = {'stamp_ns': result.stamp_ns,
                                                       'seconds': rec.seconds,
                                                       'views_seconds': 0.0}
                else:
                    entry['views_seconds'] += rec.seconds
                entry.update(scale=rec.scale, iou=rec.iou, faces=len(rec.mesh.faces),
                             extents_m=rec.mesh.extents.tolist(), views=rec.views)
        pct = 100 * seen // max(total, 1) // step * step
        if pct != shown:
            shown = pct
            end = '' if step == 1 else '\n'
            print(f'\rrrb replay: {pct:3d}% | {frames} frames', end=end, file=sys.stderr,
                  flush=True)
    if step == 1:
        print(file=sys.stderr)
    for line in skipped[:10]:
        print(f'rrb replay: warning: skipped {line}', file=sys.stderr)
    for text in notes.values():
        print(f'rrb replay: warning: {text}', file=sys.stderr)
    if sync.dropped or sync.rewinds:
        print(f'rrb replay: warning: {sync.dropped} message(s) of {", ".join(streams)} made no '
              f'frame (no partner with the same stamp, or a stamp not newer than the last '
              f"frame's: unstamped messages?); time went back {sync.rewinds} time(s)",
              file=sys.stderr)
    t = np.array(times) if times else np.zeros(1)
    return {'frames': frames, 'skipped': len(skipped), 'unmatched_messages': sync.dropped,
            'time_went_back': sync.rewinds,
            'seconds_total': time.perf_counter() - t_start,
            'seconds_per_frame_median': float(np.median(t)),
            'seconds_per_frame_p90': float(np.percentile(t, 90)),
            'seconds_per_frame_mean': float(t.mean()), 'reconstructed': reconstructed}


def _ground(ground, tf: LatestTransforms | None, frame_id: str):
    """Return the floor plane for a frame: given, from TF (None until known), or None."""
    if not isinstance(ground, str):
        return ground
    try:
        return tf.ground_plane(ground, frame_id) if tf is not None else None
    except ValueError:  # not heard yet, or the camera below the floor: no usable plane
        return None
