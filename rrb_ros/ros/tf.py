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

"""Publishing TF from a node: tf2_ros where installed, else tf2_msgs/TFMessage on /tf."""

from __future__ import annotations

from typing import Callable, Sequence

from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from rrb_ros.ros import convert

try:
    from tf2_ros import TransformBroadcaster
except ImportError:  # pip environment: publish tf2_msgs/TFMessage on /tf ourselves
    TransformBroadcaster = None

TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.VOLATILE, history=HistoryPolicy.KEEP_LAST)
"""tf2's DynamicBroadcasterQoS, for /tf in and out."""


def tf_sender(node: Node) -> Callable[[Sequence[TransformStamped]], None] | None:
    """Return a function that sends transforms on /tf, or None when no TF type imports."""
    if TransformBroadcaster is not None:
        return TransformBroadcaster(node).sendTransform
    if convert.HAVE_TF2_MSGS:
        pub = node.create_publisher(convert.TFMessage, '/tf', TF_QOS)
        return lambda transforms: pub.publish(convert.tf_message(transforms))
    return None
