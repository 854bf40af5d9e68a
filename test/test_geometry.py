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

"""SO(3)/SE(3) helpers."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
import torch

from rrb_ros.core.geometry import (
    check_rigid,
    invert_T,
    make_T,
    matrix_from_quat,
    quat_from_matrix,
    rotation_angle,
    so3_exp,
    umeyama,
    viewpoint_rotation,
)


def test_so3_exp_matches_scipy_and_has_exact_gradient_at_zero():
    v = np.random.default_rng(0).normal(size=(5, 3))
    R = so3_exp(torch.tensor(v)).numpy()
    assert np.allclose(R, Rotation.from_rotvec(v).as_matrix(), atol=1e-12)
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    # d(R p)/d(omega) at zero is -[p]x
    p = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    J = torch.autograd.functional.jacobian(lambda o: so3_exp(o) @ p, w)
    skew = torch.tensor([[0, -3.0, 2.0], [3.0, 0, -1.0], [-2.0, 1.0, 0]], dtype=torch.float64)
    assert torch.allclose(J, -skew)


def test_quaternion_round_trip_and_order():
    R = Rotation.from_euler('xyz', [10, 20, 30], degrees=True).as_matrix()
    q = quat_from_matrix(R)
    assert q[3] >= 0 and np.isclose(np.linalg.norm(q), 1)
    assert np.allclose(matrix_from_quat(q), R)
    assert np.allclose(quat_from_matrix(np.eye(3)), [0, 0, 0, 1])  # (x, y, z, w)
    with pytest.raises(ValueError):
        matrix_from_quat([0, 0, 0, 0])


def test_transforms():
    R = Rotation.from_rotvec([0.1, 0.2, 0.3]).as_matrix()
    T = make_T(R, [1, 2, 3])
    assert np.allclose(invert_T(T) @ T, np.eye(4))
    assert np.isclose(np.rad2deg(rotation_angle(R, R @ Rotation.from_rotvec(
        [0, 0, np.deg2rad(7)]).as_matrix())), 7)
    with pytest.raises(ValueError, match='NaN'):
        check_rigid(np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match='rotation'):
        check_rigid(np.diag([2.0, 1, 1, 1]))


def test_viewpoint_rotation_conventions():
    for az, el, ip in [(0, 0, 0), (1.0, 0.5, 0), (-2.0, -0.3, 0.2)]:
        R = viewpoint_rotation(az, el, ip)
        assert np.allclose(R @ R.T, np.eye(3)) and np.isclose(np.linalg.det(R), 1)
    R = viewpoint_rotation(0, 0, 0)
    assert np.allclose(R @ [0, 0, 1], [0, -1, 0])   # object up is image up (-y)
    assert np.allclose(R @ [0, -1, 0], [0, 0, -1])  # azimuth 0: camera on the object's -y side
    R = viewpoint_rotation(0, np.pi / 2, 0)
    assert np.allclose(R @ [0, 0, 1], [0, 0, -1])   # elevation 90: looking straight down
    R = viewpoint_rotation(np.pi / 2, 0, 0)
    assert np.allclose(R @ [1, 0, 0], [0, 0, -1])   # azimuth 90: camera on the +x side


def test_umeyama_recovers_similarity():
    rng = np.random.default_rng(3)
    src = rng.normal(size=(50, 3))
    R = Rotation.from_rotvec([0.3, -0.2, 0.9]).as_matrix()
    dst = 2.5 * src @ R.T + [1, -2, 0.5]
    R2, t2, s2 = umeyama(src, dst)
    assert np.allclose(R2, R) and np.allclose(t2, [1, -2, 0.5]) and np.isclose(s2, 2.5)
    _, _, s3 = umeyama(src, dst, with_scale=False)
    assert s3 == 1.0
    still = np.tile([0.5, 1.0, 2.0], (10, 1))  # a trajectory that does not move
    with pytest.raises(ValueError, match='do not spread'):
        umeyama(still, dst[:10])
    assert umeyama(still, dst[:10], with_scale=False)[2] == 1.0
    with pytest.raises(ValueError, match='do not spread'):  # nor to a still one
        umeyama(src[:10], still)
