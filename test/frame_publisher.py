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

"""Helpers of the pose_node end-to-end tests: the node as a process, frames in, answers out.

`PoseNodeProcess` runs the `pose_node` console script with `--ros-args` and keeps its output
in files; `ChairScene` renders a procedural chair's mask and a camera image; `Harness` owns the
test side's publishers (image, mask, camera_info) and subscriptions (every output), and waits
on matched endpoints and on answers, always with a bound.
"""

from __future__ import annotations

from collections import defaultdict
import itertools
import os
from pathlib import Path
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Callable

from geometry_msgs.msg import PoseStamped
import numpy as np
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import Float32MultiArray, Header
from visualization_msgs.msg import MarkerArray
import yaml

from rrb_ros.core.mesh import Mesh
from rrb_ros.core.objects import default_camera, random_view
from rrb_ros.core.render import hard_silhouette
from rrb_ros.ros import convert
from rrb_ros.ros.tf import TF_QOS

POSE_NODE = Path(sys.executable).parent / 'pose_node'
FRAME_ID = 'camera_optical'
LABEL = 1

# Stamps of all frames a test process publishes: unique and increasing (the node discards
# stamps that are not newer than the last frame it took), 33 ms apart like a 30 Hz camera.
_stamps = itertools.count(time.time_ns() // 1_000_000 * 1_000_000, 33_000_000)


def next_stamp() -> int:
    """Return a new frame stamp (ns), later than every one returned before."""
    return next(_stamps)


class PoseNodeProcess:
    """The `pose_node` console script as a child process with its output in two files."""

    def __init__(self, workdir: Path, params: dict, *, overrides: dict | None = None,
                 namespace: str = '') -> None:
        """Write `params` as the node's YAML parameter file in `workdir`; do not start yet."""
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.params_file = self.workdir / 'params.yaml'
        self.params_file.write_text(yaml.safe_dump({'/**': {'ros__parameters': params}}))
        self.stdout_path = self.workdir / 'stdout.log'
        self.stderr_path = self.workdir / 'stderr.log'
        self.argv = [str(POSE_NODE), '--ros-args', '--params-file', str(self.params_file)]
        for name, value in (overrides or {}).items():
            self.argv += ['-p', f'{name}:={value}']
        if namespace:
            self.argv += ['-r', f'__ns:={namespace}']
        if os.environ.get('RRB_TEST_NODE_LOG_LEVEL'):  # e.g. debug, to see each frame's fit
            self.argv += ['--log-level', os.environ['RRB_TEST_NODE_LOG_LEVEL']]
        self.proc: subprocess.Popen | None = None

    def start(self) -> 'PoseNodeProcess':
        """Start the node; the environment (ROS_DOMAIN_ID, Fast DDS profile) is inherited."""
        if not POSE_NODE.is_file():
            raise AssertionError(f'console script {POSE_NODE} is missing: pip install -e .')
        env = dict(os.environ, RCUTILS_COLORIZED_OUTPUT='0', PYTHONUNBUFFERED='1')
        with open(self.stdout_path, 'wb') as out, open(self.stderr_path, 'wb') as err:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=err, env=env,
                                         cwd=self.workdir)
        return self

    def alive(self) -> bool:
        """Return whether the process is running."""
        return self.proc is not None and self.proc.poll() is None

    def stderr(self) -> str:
        """Return everything the node wrote to stderr so far (its log)."""
        return self.stderr_path.read_text(errors='replace') if self.stderr_path.exists() else ''

    def output(self) -> str:
        """Return the command line, exit state, stdout and stderr, for failure messages."""
        out = self.stdout_path.read_text(errors='replace') if self.stdout_path.exists() else ''
        code = None if self.proc is None else self.proc.poll()
        return (f'\n--- {" ".join(self.argv)} (exit code {code})\n--- stdout:\n{out}'
                f'--- stderr:\n{self.stderr()}')

    def wait_for_log(self, pattern: str, timeout: float) -> str:
        """Wait for a line of the node's stderr matching the regex `pattern`; return the line.

        Fails if the node exits first or time runs out.
        """
        deadline = time.monotonic() + timeout
        while True:
            for line in self.stderr().splitlines():
                if re.search(pattern, line):
                    return line
            if not self.alive():
                raise AssertionError(f'pose_node exited before logging {pattern!r}'
                                     + self.output())
            if time.monotonic() > deadline:
                raise AssertionError(f'pose_node did not log {pattern!r} within {timeout} s'
                                     + self.output())
            time.sleep(0.05)

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to end on its own; return its exit code."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f'pose_node did not exit within {timeout} s' + self.output())

    def stop(self, timeout: float = 30.0) -> int | None:
        """Send SIGINT (Ctrl-C) and wait; return the exit code, None if it had to be killed."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        """Kill the process (last resort) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class ChairScene:
    """A chair mesh seen by the default 640x480 camera; renders masks and camera images."""

    def __init__(self, mesh: Mesh, rng: np.random.Generator) -> None:
        """Draw the reference pose `T0` of the chair from `rng`."""
        self.mesh = mesh
        self.camera = default_camera()
        self.T0 = random_view(mesh, self.camera, rng)

    def mask(self, T_cam_obj: np.ndarray) -> np.ndarray:
        """Return the (H, W) uint8 label mask (LABEL on the chair, 0 elsewhere) at a pose."""
        v = self.mesh.vertices @ T_cam_obj[:3, :3].T + T_cam_obj[:3, 3]
        return hard_silhouette(v, self.mesh.faces, self.camera).astype(np.uint8) * LABEL

    def empty_mask(self) -> np.ndarray:
        """Return a mask without any object pixel."""
        return np.zeros((self.camera.height, self.camera.width), np.uint8)

    @staticmethod
    def image(mask: np.ndarray) -> np.ndarray:
        """Return an (H, W, 3) uint8 RGB camera image of the mask: a grey room, an orange chair."""
        h, w = mask.shape
        img = np.empty((h, w, 3), np.uint8)
        img[:] = np.linspace(60, 140, w, dtype=np.uint8)[None, :, None]
        img[mask > 0] = (210, 120, 40)
        return img

    def messages(self, mask: np.ndarray, stamp_ns: int) -> dict:
        """Return camera_info, mask (mono8) and image (rgb8) of one frame, same header."""
        def header() -> Header:
            return Header(stamp=convert.ns_to_stamp(stamp_ns), frame_id=FRAME_ID)
        return {'camera_info': convert.camera_to_camera_info(self.camera, header()),
                'mask': convert.mask_to_image(mask, header(), 'mono8'),
                'image': convert.rgb_to_image(self.image(mask), header())}


def _stamp_of(msg) -> int | None:
    if isinstance(msg, convert.TFMessage):
        return convert.stamp_to_ns(msg.transforms[0].header.stamp) if msg.transforms else None
    if isinstance(msg, MarkerArray):
        stamps = [convert.stamp_to_ns(m.header.stamp) for m in msg.markers if m.header.frame_id]
        return stamps[0] if stamps else None
    header = getattr(msg, 'header', None)
    return None if header is None else convert.stamp_to_ns(header.stamp)


class Harness:
    """The test side of one pose_node: publishes its inputs and records all its outputs."""

    def __init__(self, node: Node, namespace: str = '',
                 describe: Callable[[], str] = lambda: '') -> None:
        """Create publishers and subscriptions in `namespace` on `node` (spun elsewhere).

        `describe` returns text appended to failure messages (the node's output).
        """
        ns = namespace.rstrip('/') + '/' if namespace else ''
        self.describe = describe
        self.publishers = {name: node.create_publisher(msg_type, ns + name,
                                                       qos_profile_sensor_data)
                           for name, msg_type in (('camera_info', convert.CameraInfo),
                                                  ('mask', Image), ('image', Image))}
        outputs = {'object_pose': (PoseStamped, 10), 'markers': (MarkerArray, 10),
                   'overlay': (Image, 10), 'fit_iou': (Float32MultiArray, 10)}
        if convert.HAVE_VISION_MSGS:
            outputs['detections'] = (convert.Detection3DArray, 10)
        self._cond = threading.Condition()
        self.received: dict[str, list] = defaultdict(list)
        self.subscriptions = {
            name: node.create_subscription(msg_type, ns + name, self._recorder(name), 50)
            for name, (msg_type, _) in outputs.items()}
        if convert.HAVE_TF2_MSGS:
            self.subscriptions['/tf'] = node.create_subscription(
                convert.TFMessage, '/tf', self._recorder('/tf'), TF_QOS)

    def _recorder(self, topic: str) -> Callable:
        def record(msg) -> None:
            with self._cond:
                self.received[topic].append(msg)
                self._cond.notify_all()
        return record

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait until `predicate()` (evaluated under the lock) holds; fail saying `what`."""
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise AssertionError(f'timed out after {timeout} s waiting for {what}'
                                     + self.describe())

    def wait_for_discovery(self, timeout: float) -> None:
        """Wait until the node's subscriptions match our publishers and its publishers ours."""
        deadline = time.monotonic() + timeout
        while True:
            missing = [f'subscriber of {p.topic_name}' for p in self.publishers.values()
                       if p.get_subscription_count() < 1]
            missing += [f'publisher of {s.topic_name}' for s in self.subscriptions.values()
                        if s.get_publisher_count() < 1]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f'no {", ".join(missing)} within {timeout} s'
                                     + self.describe())
            time.sleep(0.05)

    def publish(self, msgs: dict) -> None:
        """Publish a frame's messages: camera_info first, so that it is there for the frame."""
        for name in ('camera_info', 'mask', 'image'):
            if name in msgs:
                self.publishers[name].publish(msgs[name])

    def count(self, topic: str) -> int:
        """Return how many messages arrived on `topic` so far."""
        with self._cond:
            return len(self.received[topic])

    def _with_stamp(self, topic: str, stamp_ns: int) -> list:
        return [m for m in self.received[topic] if _stamp_of(m) == stamp_ns]

    def with_stamp(self, topic: str, stamp_ns: int) -> list:
        """Return the messages on `topic` whose header stamp is `stamp_ns`."""
        with self._cond:
            return self._with_stamp(topic, stamp_ns)

    def answered(self, stamp_ns: int) -> bool:
        """Return whether the frame has been answered (the overlay is published last)."""
        with self._cond:
            return bool(self._with_stamp('overlay', stamp_ns))

    def wait_for_answer(self, stamp_ns: int, timeout: float, topics=('overlay',)) -> None:
        """Wait until a message stamped `stamp_ns` arrived on each of `topics`."""
        self.wait_for(lambda: all(self._with_stamp(t, stamp_ns) for t in topics), timeout,
                      f'the answer to frame {stamp_ns} on {", ".join(topics)}')

    def handshake(self, scene: ChairScene, timeout: float) -> None:
        """Publish empty frames until one is answered: inputs and outputs are connected.

        Matched counts on our side do not prove the node's best-effort readers have matched
        our writers yet, so the first frames may be lost; empty frames cost the node no fit, so
        they are repeated often. Any answer counts: a slow one may be to an earlier frame.
        """
        deadline = time.monotonic() + timeout
        n_before = self.count('overlay')
        while True:
            self.publish(scene.messages(scene.empty_mask(), next_stamp()))
            with self._cond:
                if self._cond.wait_for(lambda: len(self.received['overlay']) > n_before, 0.5):
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f'pose_node answered no frame within {timeout} s'
                                     + self.describe())
