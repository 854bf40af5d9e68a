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

"""`rrb synth`: a generated test sequence, a camera moving through a static scene, as a rosbag2.

    rrb synth OUT_DIR [--preset single|multi] [--trajectory orbit|handheld] [--frames N]
              [--seed S] [--storage mcap|sqlite3] [--mesh PATH ...]

Writes under OUT_DIR:
  bag/            rosbag2 (30 Hz): /camera/image_raw (rgb8), /camera/mask (mono8 labels, 16UC1
                  if a label > 255), /camera/camera_info (all frame_id camera_optical, one stamp
                  per frame), /tf (gt/world -> gt/camera, the optical frame), /tf_static
                  (gt/world -> gt/<object>, transient local)
  scene.json      camera, objects (name, label, mesh, T_world_obj), trajectory, frames, seed
  meshes/*.obj    the objects' meshes (metres, object frame)
  gt_camera.tum   T_world_cam per frame: stamp tx ty tz qx qy qz qw
  camera.yaml     ROS camera calibration
  rrb.yaml        pose_node parameters (objects.names, labels, absolute mesh paths)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import time
from typing import Callable

import numpy as np
import yaml

from rrb_ros.core import synth
from rrb_ros.core.camera import PinholeCamera
from rrb_ros.core.geometry import quat_from_matrix
from rrb_ros.core.objects import default_camera
from rrb_ros.core.synth import render_frame, Scene

PRESETS = {'single': synth.single_chair_scene, 'multi': synth.two_chair_scene}
STORAGES = ('mcap', 'sqlite3')
BASE_STAMP_NS = 1_700_000_000 * 10**9
"""Stamp of the first frame (ns); the trajectory's stamps count from it."""
FRAME_ID = 'camera_optical'
WORLD_FRAME, CAMERA_FRAME, OBJECT_PREFIX = 'gt/world', 'gt/camera', 'gt/'
TOPICS = {'image': '/camera/image_raw', 'camera_info': '/camera/camera_info',
          'mask': '/camera/mask', 'tf': '/tf', 'tf_static': '/tf_static'}


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `rrb synth`."""
    p = sub.add_parser('synth', help='generate a test sequence (rosbag2) of a static scene',
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('out_dir', metavar='OUT_DIR', help='output folder (its bag/ must not exist)')
    p.add_argument('--preset', metavar='{single,multi}',
                   help='scene: single (one chair, default) or multi (two chairs)')
    p.add_argument('--trajectory', default='orbit', metavar='{orbit,handheld}',
                   help='camera path: orbit or handheld (default: %(default)s)')
    p.add_argument('--frames', type=int, default=120, metavar='N',
                   help='number of frames at 30 Hz (default: %(default)s)')
    p.add_argument('--seed', type=int, default=0, metavar='S',
                   help='random seed (default: %(default)s)')
    p.add_argument('--storage', default='mcap', metavar='{mcap,sqlite3}',
                   help='rosbag2 storage plugin: mcap or sqlite3 (default: %(default)s)')
    p.add_argument('--mesh', nargs='+', metavar='PATH',
                   help='use these meshes (metres) instead of a preset, placed in a row')
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Execute `rrb synth`."""
    generate(args.out_dir, preset=args.preset, trajectory=args.trajectory, frames=args.frames,
             seed=args.seed, storage=args.storage, meshes=args.mesh)
    return 0


def generate(out_dir: str | Path, preset: str | None = None, trajectory: str = 'orbit',
             frames: int = 120, seed: int = 0, storage: str = 'mcap',
             meshes: list[str] | None = None, camera: PinholeCamera | None = None,
             log: Callable[[str], None] = print) -> dict:
    """Build the scene and trajectory, render and write the sequence; return a summary dict.

    Raises ValueError (one line) for bad arguments or an existing OUT_DIR/bag.
    """
    if preset is not None and meshes:
        raise ValueError('--preset and --mesh exclude each other')
    preset = preset or 'single'
    if preset not in PRESETS:
        raise ValueError(f'unknown preset {preset!r}; choose one of {", ".join(PRESETS)}')
    if trajectory not in synth.TRAJECTORIES:
        raise ValueError(f'unknown trajectory {trajectory!r}; '
                         f'choose one of {", ".join(synth.TRAJECTORIES)}')
    if storage not in STORAGES:
        raise ValueError(f'unknown storage {storage!r}; choose one of {", ".join(STORAGES)}')
    if int(frames) < 1:
        raise ValueError(f'--frames must be at least 1, got {frames}')
    out = Path(out_dir)
    bag = out / 'bag'
    if bag.exists():
        raise ValueError(f'{bag} already exists; remove it or choose another OUT_DIR')
    rng = np.random.default_rng(seed)
    scene = synth.scene_from_meshes(meshes, rng) if meshes else PRESETS[preset](rng)
    camera = camera or default_camera()
    stamps, T_world_cam = synth.scene_trajectory(scene, trajectory, int(frames), rng)
    stamps_ns = BASE_STAMP_NS + np.round(stamps * 1e9).astype(np.int64)

    out.mkdir(parents=True, exist_ok=True)
    write_scene_files(out, scene, camera, stamps_ns, T_world_cam,
                      {'trajectory': trajectory, 'frames': int(frames), 'seed': int(seed),
                       'preset': None if meshes else preset})
    started = time.perf_counter()
    render_seconds, visible = write_bag(bag, scene, camera, stamps_ns, T_world_cam, storage, log)
    n = len(stamps_ns)
    summary = {
        'bag': str(bag), 'frames': n, 'storage': storage, 'objects': len(scene.objects),
        'render_ms': 1000 * render_seconds / n, 'seconds': time.perf_counter() - started,
        'visible': {o.name: visible[i] / n for i, o in enumerate(scene.objects)},
    }
    seen = ', '.join(f'{k} {100 * v:.0f} %' for k, v in summary['visible'].items())
    log(f'synth: wrote {n} frames ({n / synth.RATE:.1f} s at {synth.RATE:.0f} Hz) of '
        f'{trajectory} around {len(scene.objects)} object(s) to {bag} ({storage}) in '
        f'{summary["seconds"]:.1f} s; render {summary["render_ms"]:.0f} ms/frame; in view: {seen}')
    return summary


def write_scene_files(out: Path, scene: Scene, camera: PinholeCamera, stamps_ns: np.ndarray,
                      T_world_cam: np.ndarray, info: dict) -> None:
    """Write scene.json, meshes/, gt_camera.tum, camera.yaml and rrb.yaml under `out`."""
    (out / 'meshes').mkdir(exist_ok=True)
    objects = []
    for obj in scene.objects:
        rel = f'meshes/{obj.name}.obj'
        obj.mesh.to_trimesh().export(str(out / rel))
        objects.append({'name': obj.name, 'label': obj.label, 'mesh': rel,
                        'T_world_obj': obj.T_world_obj.tolist()})
    data = {'camera': {'K': camera.K.tolist(), 'width': camera.width, 'height': camera.height},
            'frame_id': FRAME_ID, 'objects': objects, **info,
            'first_stamp_ns': int(stamps_ns[0]), 'rate': synth.RATE}
    (out / 'scene.json').write_text(json.dumps(data, indent=2) + '\n')
    lines = []
    for ns, T in zip(stamps_ns, T_world_cam):
        t, q = T[:3, 3], quat_from_matrix(T[:3, :3])
        lines.append(f'{_seconds(ns)} ' + ' '.join(f'{v:.9f}' for v in (*t, *q)))
    (out / 'gt_camera.tum').write_text('\n'.join(lines) + '\n')
    (out / 'camera.yaml').write_text(yaml.safe_dump(camera.to_yaml_dict(), sort_keys=False))
    params = {'names': [o.name for o in scene.objects]}
    for obj in scene.objects:
        params[obj.name] = {'label': obj.label,
                            'mesh': str((out / 'meshes' / f'{obj.name}.obj').resolve())}
    header = ("# pose_node parameters for this generated sequence (rrb synth). Remap the node's\n"
              f"# image, mask and camera_info to {TOPICS['image']}, {TOPICS['mask']} and "
              f"{TOPICS['camera_info']}.\n")
    body = yaml.safe_dump({'/**': {'ros__parameters': {'objects': params}}}, sort_keys=False)
    (out / 'rrb.yaml').write_text(header + body)


def _seconds(ns: int) -> str:
    return f'{int(ns) // 10**9}.{int(ns) % 10**9:09d}'


def _typestore():
    from rosbags.typesys import get_typestore, Stores
    return get_typestore(getattr(Stores, 'ROS2_KILTED', Stores.ROS2_JAZZY))


def _latched_qos():
    """tf2's static broadcaster profile: keep last 1, reliable, transient local."""
    from rosbags import interfaces as i
    zero = i.QosTime(sec=0, nsec=0)
    return i.Qos(i.QosHistory.KEEP_LAST, 1, i.QosReliability.RELIABLE,
                 i.QosDurability.TRANSIENT_LOCAL, zero, zero, i.QosLiveliness.AUTOMATIC, zero,
                 False)


def write_bag(path: Path, scene: Scene, camera: PinholeCamera, stamps_ns: np.ndarray,
              T_world_cam: np.ndarray, storage: str = 'mcap',
              log: Callable[[str], None] = print) -> tuple[float, list[int]]:
    """Render every frame into a rosbag2 at `path`; return (render seconds, frames in view).

    "In view" counts, per object, the frames in which at least 50 of its pixels are visible.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    store = _typestore()
    t = store.types
    Header, Time = t['std_msgs/msg/Header'], t['builtin_interfaces/msg/Time']
    Image, CameraInfo = t['sensor_msgs/msg/Image'], t['sensor_msgs/msg/CameraInfo']
    TFMessage = t['tf2_msgs/msg/TFMessage']

    def header(ns: int):
        return Header(stamp=Time(sec=int(ns) // 10**9, nanosec=int(ns) % 10**9),
                      frame_id=FRAME_ID)

    def transform(ns: int, child: str, T: np.ndarray):
        q = quat_from_matrix(T[:3, :3])
        return t['geometry_msgs/msg/TransformStamped'](
            header=Header(stamp=header(ns).stamp, frame_id=WORLD_FRAME), child_frame_id=child,
            transform=t['geometry_msgs/msg/Transform'](
                translation=t['geometry_msgs/msg/Vector3'](x=float(T[0, 3]), y=float(T[1, 3]),
                                                           z=float(T[2, 3])),
                rotation=t['geometry_msgs/msg/Quaternion'](x=float(q[0]), y=float(q[1]),
                                                           z=float(q[2]), w=float(q[3]))))

    def image(ns: int, arr: np.ndarray, encoding: str):
        data = np.frombuffer(np.ascontiguousarray(arr).tobytes(), np.uint8)
        return Image(header=header(ns), height=arr.shape[0], width=arr.shape[1],
                     encoding=encoding, is_bigendian=0, step=data.size // arr.shape[0],
                     data=data)

    k = camera.K
    p = np.hstack([k, np.zeros((3, 1))])
    latched = _latched_qos()
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    render_seconds, visible = 0.0, [0] * len(scene.objects)
    n = len(stamps_ns)
    synth.ground_texture(scene.ground_seed)  # made once per seed; not part of a frame's time
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conn = {
            'tf_static': writer.add_connection(TOPICS['tf_static'], TFMessage.__msgtype__,
                                               typestore=store, offered_qos_profiles=[latched]),
            'tf': writer.add_connection(TOPICS['tf'], TFMessage.__msgtype__, typestore=store),
            'camera_info': writer.add_connection(TOPICS['camera_info'], CameraInfo.__msgtype__,
                                                 typestore=store),
            'image': writer.add_connection(TOPICS['image'], Image.__msgtype__, typestore=store),
            'mask': writer.add_connection(TOPICS['mask'], Image.__msgtype__, typestore=store),
        }

        def put(topic: str, ns: int, msg) -> None:
            writer.write(conn[topic], int(ns), store.serialize_cdr(msg, msg.__msgtype__))

        put('tf_static', stamps_ns[0], TFMessage(transforms=[
            transform(stamps_ns[0], OBJECT_PREFIX + o.name, o.T_world_obj)
            for o in scene.objects]))
        for i, (ns, T) in enumerate(zip(stamps_ns, T_world_cam)):
            started = time.perf_counter()
            rgb, labels = render_frame(scene, camera, T)
            render_seconds += time.perf_counter() - started
            for j, obj in enumerate(scene.objects):
                visible[j] += int(np.count_nonzero(labels == obj.label) >= 50)
            put('tf', ns, TFMessage(transforms=[transform(ns, CAMERA_FRAME, T)]))
            put('camera_info', ns, CameraInfo(
                header=header(ns), height=camera.height, width=camera.width,
                distortion_model='plumb_bob', d=np.zeros(5), k=k.reshape(-1),
                r=np.eye(3).reshape(-1), p=p.reshape(-1), binning_x=0, binning_y=0,
                roi=t['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0,
                                                          width=0, do_rectify=False)))
            put('image', ns, image(ns, rgb, 'rgb8'))
            put('mask', ns, image(ns, labels, 'mono8' if labels.dtype == np.uint8 else '16UC1'))
            if (i + 1) * 10 // n > i * 10 // n:
                log(f'synth: frame {i + 1}/{n} ({100 * (i + 1) // n} %), '
                    f'render {1000 * render_seconds / (i + 1):.0f} ms/frame')
    return render_seconds, visible
