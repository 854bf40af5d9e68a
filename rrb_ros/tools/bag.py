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

"""Reading and writing rosbag2 files (MCAP or sqlite3) with rosbags, messages as rclpy types.

Raw CDR from rosbags is turned into rclpy messages with `rclpy.serialization`, so offline tools
use the same conversions (`rrb_ros.ros.convert`) as the node.
"""

from __future__ import annotations

from pathlib import Path

from rclpy.serialization import deserialize_message, serialize_message

MSG_DIR = Path(__file__).resolve().parents[2] / 'msg_pkgs'


def typestore():
    """Return the Kilted typestore, with our vision_msgs registered if it lacks them."""
    from rosbags.typesys import get_types_from_msg, get_typestore, Stores
    store = get_typestore(Stores.ROS2_KILTED)
    if 'vision_msgs/msg/Detection3DArray' not in store.types:
        types = {}
        for path in sorted((MSG_DIR / 'vision_msgs' / 'msg').glob('*.msg')):
            types.update(get_types_from_msg(path.read_text(), f'vision_msgs/msg/{path.stem}'))
        if types:
            store.register(types)
    return store


def open_reader(path: str | Path):
    """Open a bag with rosbags AnyReader; ValueError says why it cannot be read."""
    from rosbags.highlevel import AnyReader
    path = Path(path)
    if not path.exists():
        raise ValueError(f'bag not found: {path}')
    try:
        reader = AnyReader([path], default_typestore=typestore())
        reader.open()
    except Exception as exc:  # rosbags raises several error types for broken bags
        raise ValueError(f'cannot read bag {path}: {exc}') from None
    return reader


def open_writer(path: str | Path, storage: str = 'mcap'):
    """Open a rosbags Writer on a new bag folder (it must not exist yet)."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    path = Path(path)
    if path.exists():
        raise ValueError(f'output bag {path} exists already; choose another path')
    plugins = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}
    if storage not in plugins:
        raise ValueError(f'storage must be mcap or sqlite3, got {storage!r}')
    writer = Writer(path, version=9, storage_plugin=plugins[storage])
    writer.open()
    return writer


def copy_connection(writer, conn, types):
    """Add a connection like the input one `conn` to `writer`; ValueError if its type is unknown.

    Bags of recent ROS 2 carry each type's definition and hash (RIHS01), which are copied; older
    ones (Humble and before: no hashes) and bare .mcap files take them from `types` (a
    rosbags typestore, e.g. the reader's).
    """
    qos = getattr(conn.ext, 'offered_qos_profiles', ())
    qos = list(qos) if isinstance(qos, (list, tuple)) else []
    msgdef = getattr(conn.msgdef, 'data', '') if conn.msgdef is not None else ''
    if (conn.digest or '').startswith('RIHS01_') and msgdef:
        return writer.add_connection(conn.topic, conn.msgtype, msgdef=msgdef, rihs01=conn.digest,
                                     offered_qos_profiles=qos)
    try:
        return writer.add_connection(conn.topic, conn.msgtype, typestore=types,
                                     offered_qos_profiles=qos)
    except Exception as exc:  # noqa: BLE001 - rosbags raises several types for unknown types
        raise ValueError(f'{conn.topic}: message type {conn.msgtype} has no definition in the '
                         f'bag and is not a known ROS 2 type ({exc})') from None


def from_cdr(raw, msg_class):
    """Deserialize raw CDR bytes into an rclpy message; ValueError when they are not one."""
    try:
        return deserialize_message(bytes(raw), msg_class)
    except RuntimeError as exc:  # rclpy's RMWError: a corrupt or mistyped message
        raise ValueError(f'cannot deserialize a {msg_class.__name__}: '
                         f'{str(exc).split(",")[0]}') from None


def to_cdr(msg) -> bytes:
    """Serialize an rclpy message to raw CDR bytes."""
    return serialize_message(msg)


def ros_type_name(msg) -> str:
    """Return the type name pkg/msg/Type of an rclpy message instance."""
    module = type(msg).__module__.split('.')[0]
    return f'{module}/msg/{type(msg).__name__}'
