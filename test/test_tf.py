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

"""LatestTransforms: the small TF listener pose_node uses for the ground plane."""

from geometry_msgs.msg import TransformStamped
import numpy as np
import pytest
from std_msgs.msg import Header

from rrb_ros.core.geometry import from_rotvec, invert_T, make_T
from rrb_ros.ros import convert
from rrb_ros.ros.tf import LatestTransforms


def _tf(parent, child, T):
    """Return a TransformStamped as another node may send it (no checks: '/a' happens)."""
    return TransformStamped(header=Header(frame_id=parent), child_frame_id=child,
                            transform=convert.matrix_to_transform(T))


def test_chained_lookups(rng):
    T_map_base = make_T(from_rotvec(rng.normal(size=3)), rng.normal(size=3))
    T_base_cam = make_T(from_rotvec(rng.normal(size=3)), rng.normal(size=3))
    T_cam_opt = make_T(from_rotvec([-np.pi / 2, 0, -np.pi / 2]), [0.01, 0, 0])
    T_base_arm = make_T(from_rotvec(rng.normal(size=3)), rng.normal(size=3))
    tf = LatestTransforms()
    tf.add([_tf('map', 'base', T_map_base), _tf('/base', 'camera', T_base_cam),
            _tf('camera', 'camera_optical', T_cam_opt), _tf('base', 'arm', T_base_arm)])
    T = tf.lookup('base', 'camera_optical')
    np.testing.assert_allclose(T, T_base_cam @ T_cam_opt, atol=1e-9)
    np.testing.assert_allclose(tf.lookup('camera_optical', 'base'), invert_T(T), atol=1e-9)
    # across branches, through the common ancestor
    np.testing.assert_allclose(tf.lookup('arm', 'camera_optical'),
                               invert_T(T_base_arm) @ T_base_cam @ T_cam_opt, atol=1e-9)
    np.testing.assert_allclose(tf.lookup('map', 'map'), np.eye(4))
    assert tf.lookup('base', 'unknown') is None
    # the newest transform of an edge wins
    T_new = make_T(np.eye(3), [0, 0, 2.0])
    tf.add([_tf('base', 'camera', T_new)])
    np.testing.assert_allclose(tf.lookup('base', 'camera'), T_new, atol=1e-12)


def test_bad_transforms_are_skipped_and_cycles_end():
    tf = LatestTransforms()
    bad = _tf('a', 'b', np.eye(4))
    bad.transform.rotation.w = float('nan')
    tf.add([bad])
    assert tf.lookup('a', 'b') is None
    tf.add([_tf('a', 'b', np.eye(4)), _tf('b', 'a', np.eye(4))])  # a broken tree: a loop
    assert tf.lookup('a', 'c') is None  # returns instead of looping forever


def test_ground_plane_from_tf():
    """The floor in the camera frame, or a ValueError that says what is missing."""
    tf = LatestTransforms()
    with pytest.raises(ValueError, match='no TF from base to camera_optical yet'):
        tf.ground_plane('base', 'camera_optical')
    # a camera 1.3 m up, optical axis level with the floor (z forward, y down)
    R_base_opt = np.column_stack([[0, -1, 0], [0, 0, -1], [1, 0, 0]])  # x right, y down
    T_base_opt = make_T(R_base_opt.astype(float), [0, 0, 1.3])
    tf.add([_tf('base', 'camera_optical', T_base_opt)])
    n, h = tf.ground_plane('base', 'camera_optical')
    np.testing.assert_allclose(n, [0, -1, 0], atol=1e-9)  # up is -y in the optical frame
    assert h == pytest.approx(1.3)
    tf.add([_tf('base', 'camera_optical', make_T(np.eye(3), [0, 0, -0.5]))])  # below the floor
    with pytest.raises(ValueError, match='ground plane from TF unusable'):
        tf.ground_plane('base', 'camera_optical')
