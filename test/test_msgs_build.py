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

"""The message packages built by scripts/build_msgs.sh: import, CDR round trip, type hashes."""

import importlib
from pathlib import Path

import pytest
import rclpy
from rclpy.context import Context
from rclpy.serialization import deserialize_message, serialize_message

MSG_DIR = Path(__file__).resolve().parents[1] / 'msg_pkgs'
HINT = 'run: bash scripts/build_msgs.sh .venv'

# Loading any message's type support imports rosidl_parser -> lark, which imports the
# deprecated sre_parse/sre_constants (upstream, not ours).
pytestmark = pytest.mark.filterwarnings(
    "ignore:module 'sre_(parse|constants)' is deprecated:DeprecationWarning")

# RIHS01 hashes of upstream ROS 2 (Jazzy/Kilted) types. TFMessage is also in rosbags'
# Kilted typestore; the vision_msgs ones come from an upstream vision_msgs 4.x build.
UPSTREAM_HASHES = {
    'tf2_msgs/msg/TFMessage':
        'RIHS01_e369d0f05a23ae52508854b66f6aa0437f3449d652e8cbf22d5abe85d020f087',
    'vision_msgs/msg/Detection3D':
        'RIHS01_ddd703be132ab0b69d33121f1bb034132bfbb3b0ac5f9fb1516005ba1c8a265b',
    'vision_msgs/msg/ObjectHypothesisWithPose':
        'RIHS01_41c12344c0396c48b81df12467c192d99b2a0eb1463c5c37194e4223251c80bc',
    'vision_msgs/msg/ObjectHypothesis':
        'RIHS01_51da43cec11c01957a64d1e05a24acd18aae7745ec30b74348ad5f6d634f7f90',
    'vision_msgs/msg/BoundingBox3D':
        'RIHS01_bbb73a65c163d7f9bb29009c7bde9f7faa576bd2d23299c4511d19230dab4698',
}
ALL_TYPES = ['tf2_msgs/msg/TFMessage', 'vision_msgs/msg/Detection3DArray',
             'vision_msgs/msg/Detection3D', 'vision_msgs/msg/ObjectHypothesisWithPose',
             'vision_msgs/msg/ObjectHypothesis', 'vision_msgs/msg/BoundingBox3D']


def msg_class(name):
    """Return the rclpy class of 'pkg/msg/Type', with its C type support loaded."""
    pkg, _, typ = name.split('/')
    try:
        cls = getattr(importlib.import_module(f'{pkg}.msg'), typ)
    except ImportError as exc:
        pytest.fail(f'{name} does not import ({exc}); {HINT}')
    type(cls).__import_type_support__()
    return cls


def runtime_type_hash(cls):
    """Return the type hash the middleware announces for a publisher of ``cls``."""
    ctx = Context()
    rclpy.init(context=ctx)
    try:
        node = rclpy.create_node('rrb_test_msgs_hash', context=ctx)
        topic = f'/rrb_test_msgs_hash_{cls.__name__.lower()}'
        node.create_publisher(cls, topic, 1)
        infos = node.get_publishers_info_by_topic(topic)
        assert len(infos) == 1
        return str(infos[0].topic_type_hash)
    finally:
        rclpy.shutdown(context=ctx)


@pytest.mark.parametrize('name', ALL_TYPES)
def test_types_import_with_type_support(name):
    cls = msg_class(name)
    assert type(cls)._TYPE_SUPPORT is not None
    assert cls.__module__.startswith(name.split('/')[0] + '.msg.')


def test_tfmessage_round_trip():
    from geometry_msgs.msg import TransformStamped
    TFMessage = msg_class('tf2_msgs/msg/TFMessage')
    t = TransformStamped()
    t.header.stamp.sec, t.header.stamp.nanosec = 12, 345
    t.header.frame_id, t.child_frame_id = 'world', 'camera_optical'
    t.transform.translation.x, t.transform.translation.z = 0.5, -1.25
    t.transform.rotation.z, t.transform.rotation.w = 0.6, 0.8
    msg = TFMessage(transforms=[t])
    data = serialize_message(msg)
    assert isinstance(data, bytes) and len(data) > 0
    back = deserialize_message(data, TFMessage)
    assert back == msg
    assert back.transforms[0].child_frame_id == 'camera_optical'
    assert back.transforms[0].transform.rotation.w == 0.8


def test_detection3d_array_round_trip():
    from geometry_msgs.msg import PoseWithCovariance
    Detection3DArray = msg_class('vision_msgs/msg/Detection3DArray')
    from vision_msgs.msg import Detection3D, ObjectHypothesisWithPose
    hyp = ObjectHypothesisWithPose(pose=PoseWithCovariance(covariance=[0.01] * 36))
    hyp.hypothesis.class_id, hyp.hypothesis.score = 'chair', 0.875
    hyp.pose.pose.position.x, hyp.pose.pose.orientation.w = 1.5, 1.0
    det = Detection3D(results=[hyp], id='track-7')
    det.header.frame_id = 'camera_optical'
    det.bbox.center.position.z = 2.0
    det.bbox.size.x, det.bbox.size.y, det.bbox.size.z = 0.5, 0.6, 0.9
    msg = Detection3DArray(detections=[det, Detection3D()])
    msg.header.frame_id, msg.header.stamp.sec = 'camera_optical', 7
    back = deserialize_message(serialize_message(msg), Detection3DArray)
    assert back == msg
    got = back.detections[0]
    assert (got.id, got.results[0].hypothesis.class_id) == ('track-7', 'chair')
    assert got.results[0].hypothesis.score == 0.875
    assert list(got.results[0].pose.covariance) == [0.01] * 36
    assert got.bbox.size.z == 0.9


def test_tfmessage_matches_rosbags_kilted_typestore():
    from rosbags.typesys import get_typestore, Stores
    store = get_typestore(Stores.ROS2_KILTED)
    TFMessage = msg_class('tf2_msgs/msg/TFMessage')
    # the fields as the rclpy class sees them, and as rosbags defines them
    assert TFMessage.get_fields_and_field_types() == {
        'transforms': 'sequence<geometry_msgs/TransformStamped>'}
    consts, fields = store.fielddefs['tf2_msgs/msg/TFMessage']
    assert consts == [] and [f[0] for f in fields] == ['transforms']
    assert fields[0][1][1][0][1] == 'geometry_msgs/msg/TransformStamped'
    # the hash rosbags computes is the upstream one and the one our build announces
    expected = store.hash_rihs01('tf2_msgs/msg/TFMessage')
    assert expected == UPSTREAM_HASHES['tf2_msgs/msg/TFMessage']
    assert runtime_type_hash(TFMessage) == expected


def test_vision_msgs_hashes_match_upstream_and_rosbags():
    from rosbags.typesys import get_types_from_msg, get_typestore, Stores
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for path in sorted((MSG_DIR / 'vision_msgs' / 'msg').glob('*.msg')):
        types.update(get_types_from_msg(path.read_text(), f'vision_msgs/msg/{path.stem}'))
    store.register(types)
    for name, expected in UPSTREAM_HASHES.items():
        assert store.hash_rihs01(name) == expected, name
    Detection3DArray = msg_class('vision_msgs/msg/Detection3DArray')
    assert runtime_type_hash(Detection3DArray) == store.hash_rihs01(
        'vision_msgs/msg/Detection3DArray')
    assert runtime_type_hash(msg_class('vision_msgs/msg/Detection3D')) == \
        UPSTREAM_HASHES['vision_msgs/msg/Detection3D']
