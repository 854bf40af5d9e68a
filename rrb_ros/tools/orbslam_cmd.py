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

"""`rrb orbslam`: monocular ORB-SLAM3 (the optional `pyorbslam3` wheel) on a bag's images.

Install the extra with `pip install -r requirements-orbslam.txt` (pyorbslam3 is GPL-3.0; it is
only imported here, never by the package itself).

ORB-SLAM3 needs an ORB vocabulary and none ships with the wheel. Unless `--vocab` names one,
a small vocabulary is built once from procedural training images (`rrb_ros.core.orbvocab`, no
content shared with the synthetic sequences; about 10 s) and cached as
`$RRB_CACHE_DIR/orbvoc-k10-L5-s0-v1.txt`, where RRB_CACHE_DIR defaults to
`$XDG_CACHE_HOME/rrb_ros` or `~/.cache/rrb_ros`. `PYORBSLAM3_VOCAB` is set to it, so the wheel
never downloads anything.

The ORB-SLAM3 settings (File.version 1.0, PinHole) come from the first camera_info: fx fy cx
cy, image size, fps from the image stamps, no distortion (the camera_info must have D = 0).
Frames are fed as grayscale at `--rate` times real time (sleeping to their stamps; ORB-SLAM3's
mapping threads fall behind when frames come faster and tracking degrades); `--rate 0` feeds
them as fast as possible.

The output is a TUM file of T_world_cam of the camera OPTICAL frame (ORB-SLAM3's camera frame
is the OpenCV one: x right, y down, z forward; `pose_wc` maps camera to world), one line per
frame tracked with state OK, in ORB-SLAM3's world (the first keyframe of the map, arbitrary
monocular scale). When tracking is lost ORB-SLAM3 starts a new map in another frame, so the
poses are split into segments at every loss and only the longest segment is written. A JSON
summary goes to stdout (and `--summary`); ORB-SLAM3's own log goes to stderr.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import multiprocessing
import os
from pathlib import Path
import sys
import tempfile
import time
from typing import Callable, Iterator

import cv2
import numpy as np

from rrb_ros.core.camera import PinholeCamera
from rrb_ros.core.metrics import Trajectory, write_tum
from rrb_ros.core.orbvocab import write_vocabulary

VOCAB_NAME = 'orbvoc-k10-L5-s0-v1.txt'
"""File name of the cached vocabulary (k=10, 5 levels, training seed 0, format version 1)."""
N_FEATURES = 1000
"""ORB features per frame (ORBextractor.nFeatures, as ORB-SLAM3's examples at 640x480)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `rrb orbslam`."""
    p = sub.add_parser('orbslam', help='run monocular ORB-SLAM3 on a bag (pyorbslam3 extra)',
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('in_bag', metavar='IN_BAG', help='rosbag2 folder with images and camera_info')
    p.add_argument('--out', required=True, help='write the camera trajectory here (TUM)')
    p.add_argument('--image-topic', default='/camera/image_raw',
                   help='sensor_msgs/Image topic (default: %(default)s)')
    p.add_argument('--camera-info-topic', default='/camera/camera_info',
                   help='sensor_msgs/CameraInfo topic (default: %(default)s)')
    p.add_argument('--vocab', help='ORB vocabulary in ORB-SLAM3 text format (default: build or '
                                   'reuse the cached one)')
    p.add_argument('--rate', type=float, default=1.0,
                   help='playback speed as a factor of real time; 0 = no pacing '
                        '(default: %(default)s)')
    p.add_argument('--features', type=int, default=N_FEATURES,
                   help='ORB features per frame (default: %(default)s)')
    p.add_argument('--summary', help='also write the JSON summary here')
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Execute `rrb orbslam`."""
    if args.rate < 0:
        raise ValueError(f'--rate must be >= 0, got {args.rate}')
    vocab = Path(args.vocab) if args.vocab else cached_vocabulary(log=_log)
    if not vocab.is_file():
        raise ValueError(f'vocabulary {vocab} does not exist')
    traj, summary = run_orbslam(args.in_bag, vocab, args.image_topic, args.camera_info_topic,
                                rate=args.rate, n_features=args.features, log=_log)
    if traj is None:
        raise ValueError(f'ORB-SLAM3 did not track any frame of {args.in_bag} '
                         f'({summary["frames"]} frames)')
    write_tum(args.out, traj, header=f'rrb orbslam {args.in_bag}: T_world_cam (optical), '
                                     'ORB-SLAM3 monocular, arbitrary scale')
    summary['out'] = str(args.out)
    text = json.dumps(summary, indent=2)
    print(text)
    if args.summary:
        Path(args.summary).write_text(text + '\n')
    return 0


def _log(msg: str) -> None:
    print(f'rrb orbslam: {msg}', file=sys.stderr, flush=True)


def cache_dir() -> Path:
    """Return the rrb_ros cache folder ($RRB_CACHE_DIR, $XDG_CACHE_HOME/rrb_ros, ~/.cache)."""
    if os.environ.get('RRB_CACHE_DIR'):
        return Path(os.environ['RRB_CACHE_DIR'])
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return Path(base) / 'rrb_ros'


def cached_vocabulary(log: Callable[[str], None] = _log) -> Path:
    """Return the cached vocabulary, building it first if it is missing."""
    path = cache_dir() / VOCAB_NAME
    if not path.is_file():
        log(f'building the ORB vocabulary {path} (once) ...')
        info = write_vocabulary(path, k=10, levels=5, seed=0)
        log(f'vocabulary: {info["words"]} words, {info["nodes"]} nodes in '
            f'{info["seconds"]:.1f} s')
    return path


def settings_yaml(camera: PinholeCamera, fps: float, n_features: int = N_FEATURES) -> str:
    """Return ORB-SLAM3 settings (OpenCV YAML, File.version 1.0) of an undistorted camera.

    Integers must stay integers: ORB-SLAM3 exits the process on a wrongly typed entry.
    """
    return '\n'.join([
        '%YAML:1.0',
        '---',
        "# written by rrb orbslam from the bag's camera_info (no distortion)",
        'File.version: "1.0"',
        'Camera.type: "PinHole"',
        f'Camera1.fx: {float(camera.fx):.6f}',
        f'Camera1.fy: {float(camera.fy):.6f}',
        f'Camera1.cx: {float(camera.cx):.6f}',
        f'Camera1.cy: {float(camera.cy):.6f}',
        f'Camera.width: {int(camera.width)}',
        f'Camera.height: {int(camera.height)}',
        f'Camera.fps: {max(1, int(round(fps)))}',
        'Camera.RGB: 1',
        f'ORBextractor.nFeatures: {int(n_features)}',
        'ORBextractor.scaleFactor: 1.2',
        'ORBextractor.nLevels: 8',
        'ORBextractor.iniThFAST: 20',
        'ORBextractor.minThFAST: 7',
        'Viewer.KeyFrameSize: 0.05',
        'Viewer.KeyFrameLineWidth: 1.0',
        'Viewer.GraphLineWidth: 0.9',
        'Viewer.PointSize: 2.0',
        'Viewer.CameraSize: 0.08',
        'Viewer.CameraLineWidth: 3.0',
        'Viewer.ViewpointX: 0.0',
        'Viewer.ViewpointY: -0.7',
        'Viewer.ViewpointZ: -1.8',
        'Viewer.ViewpointF: 500.0',
        '',
    ])


def read_camera(reader, info_topic: str) -> tuple[PinholeCamera, float]:
    """Return the camera of the first camera_info and the image rate from its message stamps."""
    from sensor_msgs.msg import CameraInfo

    from rrb_ros.ros.convert import camera_info_to_camera, stamp_to_ns
    from rrb_ros.tools import bag
    conns = [c for c in reader.connections if c.topic == info_topic]
    if not conns:
        raise ValueError(f'no topic {info_topic}; the bag has '
                         f'{", ".join(sorted({c.topic for c in reader.connections}))}')
    camera, stamps = None, []
    for _, _, raw in reader.messages(connections=conns):
        msg = bag.from_cdr(raw, CameraInfo)
        if camera is None:
            camera = camera_info_to_camera(msg)
        stamps.append(stamp_to_ns(msg.header.stamp))
        if len(stamps) >= 50:
            break
    if camera is None:
        raise ValueError(f'{info_topic} has no messages')
    dt = np.diff(np.sort(np.asarray(stamps, np.float64))) * 1e-9
    dt = dt[dt > 0]
    fps = 1.0 / float(np.median(dt)) if dt.size else 30.0
    return camera, fps


def read_images(reader, image_topic: str) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (header stamp in seconds, grayscale uint8 image) of each image message."""
    from sensor_msgs.msg import Image

    from rrb_ros.ros.convert import image_to_rgb, stamp_to_ns
    from rrb_ros.tools import bag
    conns = [c for c in reader.connections if c.topic == image_topic]
    if not conns:
        raise ValueError(f'no topic {image_topic}; the bag has '
                         f'{", ".join(sorted({c.topic for c in reader.connections}))}')
    for _, _, raw in reader.messages(connections=conns):
        msg = bag.from_cdr(raw, Image)
        rgb = image_to_rgb(msg)
        yield stamp_to_ns(msg.header.stamp) * 1e-9, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send file descriptor 1 (ORB-SLAM3's std::cout) to stderr for the duration."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def run_orbslam(in_bag: str | Path, vocab: str | Path, image_topic: str = '/camera/image_raw',
                info_topic: str = '/camera/camera_info', rate: float = 1.0,
                n_features: int = N_FEATURES, log: Callable[[str], None] = _log
                ) -> tuple[Trajectory | None, dict]:
    """Track every image of `in_bag` with monocular ORB-SLAM3; return (trajectory, summary).

    The trajectory is the longest run of frames tracked OK (T_world_cam, optical frame) or
    None when no frame was tracked. Each call runs in a fresh process: ORB-SLAM3 keeps
    process-wide state (static id counters and the like), and a second instance in one process
    never initialises. `log` must be picklable (a module-level function).
    """
    try:
        import pyorbslam3  # noqa: F401  (here for the error; the child process uses it)
    except ImportError:
        raise ValueError('pyorbslam3 is not installed: pip install -r '
                         'requirements-orbslam.txt') from None
    context = multiprocessing.get_context('spawn')
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(_run_here, str(in_bag), str(vocab), image_topic, info_topic, rate,
                           n_features, log).result()


def _run_here(in_bag: str, vocab: str, image_topic: str, info_topic: str, rate: float,
              n_features: int, log: Callable[[str], None]) -> tuple[Trajectory | None, dict]:
    """`run_orbslam` in the calling process."""
    import pyorbslam3

    from rrb_ros.tools import bag
    os.environ['PYORBSLAM3_VOCAB'] = str(vocab)  # the wheel never fetches its own
    reader = bag.open_reader(in_bag)
    try:
        camera, fps = read_camera(reader, info_topic)
        with tempfile.TemporaryDirectory(prefix='rrb_orbslam_') as tmp:
            settings = Path(tmp) / 'orbslam3.yaml'
            settings.write_text(settings_yaml(camera, fps, n_features))
            return _track(pyorbslam3, reader, image_topic, vocab, settings, rate, fps, log)
    finally:
        reader.close()


def _track(pyorbslam3, reader, image_topic, vocab, settings, rate, fps, log):
    states = pyorbslam3.TrackingState
    stamps, poses, segment, state_names, times = [], [], [], [], []
    seg, was_ok = 0, False
    first_ok = None
    started = time.perf_counter()
    with stdout_to_stderr():
        t0 = time.perf_counter()
        slam = pyorbslam3.Slam(str(vocab), str(settings), pyorbslam3.Sensor.MONOCULAR,
                               use_viewer=False)
        load_s = time.perf_counter() - t0
        try:
            wall0 = stamp0 = None
            for i, (stamp, gray) in enumerate(read_images(reader, image_topic)):
                if rate > 0:
                    if wall0 is None:
                        wall0, stamp0 = time.perf_counter(), stamp
                    wait = wall0 + (stamp - stamp0) / rate - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                t1 = time.perf_counter()
                res = slam.track_monocular(gray, stamp)
                times.append(time.perf_counter() - t1)
                state_names.append(res.state.name)
                ok = res.state in (states.OK, states.OK_KLT) and res.pose_wc is not None
                if res.state in (states.LOST, states.NOT_INITIALIZED) and was_ok:
                    seg += 1          # ORB-SLAM3 starts a new map (another world frame)
                if ok:
                    if first_ok is None:
                        first_ok = i
                    was_ok = True
                    stamps.append(stamp)
                    poses.append(np.asarray(res.pose_wc, np.float64).reshape(4, 4))
                    segment.append(seg)
                elif res.state in (states.LOST, states.NOT_INITIALIZED):
                    was_ok = False
        finally:
            slam.shutdown()
    n = len(state_names)
    counts = {name: state_names.count(name) for name in sorted(set(state_names))}
    seg_ids, seg_len = np.unique(np.asarray(segment, np.int64), return_counts=True)
    t = np.asarray(times) if times else np.zeros(1)
    summary = {
        'frames': n, 'tracked': len(poses), 'states': counts,
        'first_tracked_frame': first_ok, 'segments': [int(v) for v in seg_len],
        'vocabulary': str(vocab), 'vocabulary_load_seconds': load_s, 'fps': fps,
        'rate': rate, 'track_ms_median': 1000 * float(np.median(t)),
        'track_ms_p90': 1000 * float(np.percentile(t, 90)),
        'seconds_total': time.perf_counter() - started,
    }
    log(f'{len(poses)}/{n} frames tracked, first at frame {first_ok}, segments '
        f'{summary["segments"]}, {summary["track_ms_median"]:.0f} ms/frame median')
    if not poses:
        return None, summary
    best = seg_ids[int(np.argmax(seg_len))]
    keep = np.flatnonzero(np.asarray(segment) == best)
    summary['written'] = int(keep.size)
    return Trajectory(np.asarray(stamps)[keep], np.stack(poses)[keep]), summary
