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

"""TF for the nodes: a sender and a small listener of the newest transforms.

Sending uses tf2_ros where installed, else tf2_msgs/TFMessage on /tf. `LatestTransforms` keeps
the newest transform of each edge from /tf and /tf_static messages.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

from geometry_msgs.msg import TransformStamped
import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from rrb_ros.core.reconstruct.scale import ground_plane_from_transform
from rrb_ros.ros import convert

try:
    from tf2_ros import TransformBroadcaster
except ImportError:  # pip environment: publish tf2_msgs/TFMessage on /tf ourselves
    TransformBroadcaster = None

TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.VOLATILE, history=HistoryPolicy.KEEP_LAST)
"""tf2's DynamicBroadcasterQoS, for /tf in and out."""
TF_STATIC_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL,
                           history=HistoryPolicy.KEEP_LAST)
"""tf2's StaticBroadcasterQoS, for /tf_static."""


def tf_sender(node: Node) -> Callable[[Sequence[TransformStamped]], None] | None:
    """Return a function that sends transforms on /tf, or None when no TF type imports."""
    if TransformBroadcaster is not None:
        return TransformBroadcaster(node).sendTransform
    if convert.HAVE_TF2_MSGS:
        pub = node.create_publisher(convert.TFMessage, '/tf', TF_QOS)
        return lambda transforms: pub.publish(convert.tf_message(transforms))
    return None


class LatestTransforms:
    """The newest transform of every parent -> child edge heard on /tf and /tf_static.

    Lookups chain edges through the common ancestor. There is no time interpolation: this
    serves slowly changing chains such as base_frame -> camera optical frame.
    """

    def __init__(self) -> None:
        """Start empty."""
        self._edges: dict[str, tuple[str, np.ndarray]] = {}  # child -> (parent, T_parent_child)

    def add(self, transforms: Iterable[TransformStamped]) -> None:
        """Record transforms (a TFMessage's `transforms`); unusable ones are skipped."""
        for t in transforms:
            try:
                T = convert.pose_to_matrix(t.transform)
            except ValueError:  # NaN, a zero quaternion: another node's bug, not ours
                continue
            self._edges[t.child_frame_id.lstrip('/')] = (t.header.frame_id.lstrip('/'), T)

    def _chain(self, frame: str) -> dict[str, np.ndarray]:
        """Ancestors of `frame` (itself included) -> T_ancestor_frame."""
        out = {frame: np.eye(4)}
        T = np.eye(4)
        while frame in self._edges:
            frame, T_parent = self._edges[frame]
            if frame in out:  # a loop: not a tree, stop
                break
            T = T_parent @ T
            out[frame] = T
        return out

    def lookup(self, target: str, source: str) -> np.ndarray | None:
        """Return T_target_source (maps source coordinates into target), or None if unknown."""
        up_source = self._chain(source.lstrip('/'))
        up_target = self._chain(target.lstrip('/'))
        common = next((f for f in up_source if f in up_target), None)
        if common is None:
            return None
        return np.linalg.inv(up_target[common]) @ up_source[common]

    def ground_plane(self, base_frame: str, camera_frame: str) -> tuple[np.ndarray, float]:
        """Return the floor (z = 0 of `base_frame`) in `camera_frame`; ValueError if unknown."""
        T = self.lookup(base_frame, camera_frame)
        if T is None:
            raise ValueError(f'no TF from {base_frame} to {camera_frame} yet')
        try:
            return ground_plane_from_transform(T)
        except ValueError as exc:
            raise ValueError(f'ground plane from TF unusable: {exc}') from None
