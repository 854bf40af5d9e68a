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

"""Mesh loading, validation and decimation."""

import numpy as np
import pytest
import trimesh

from rrb_ros.core.mesh import box_corners, decimate, load_mesh, MeshError, validate


@pytest.mark.parametrize('ext', ['obj', 'ply', 'stl', 'off', 'glb'])
def test_load_formats(tmp_path, ext):
    m = trimesh.creation.icosphere(2, radius=0.3)
    path = tmp_path / f'sphere.{ext}'
    m.export(path)
    mesh = load_mesh(path)
    assert len(mesh.faces) == len(m.faces)
    assert np.isclose(mesh.radius, 0.3, atol=1e-6)
    assert mesh.watertight


def test_bad_meshes(tmp_path):
    with pytest.raises(MeshError, match='not found'):
        load_mesh(tmp_path / 'nope.obj')
    empty = tmp_path / 'empty.obj'
    empty.write_text('# nothing\n')
    with pytest.raises(MeshError, match=str(empty.name)):
        load_mesh(empty)
    junk = tmp_path / 'junk.ply'
    junk.write_bytes(b'ply\nformat binary_little_endian 1.0\nelement vertex 99\n')
    with pytest.raises(MeshError):
        load_mesh(junk)
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0.0]])
    with pytest.raises(MeshError, match='NaN'):
        validate(np.where(v == 1, np.nan, v), [[0, 1, 2]])
    with pytest.raises(MeshError, match='out of range'):
        validate(v, [[0, 1, 3]])
    with pytest.raises(MeshError, match='degenerate'):
        validate(np.zeros((3, 3)), [[0, 1, 2]])
    with pytest.raises(MeshError, match='no triangles'):
        validate(v, np.zeros((0, 3), int))


def test_decimate_keeps_shape_within_budget(chair):
    small = decimate(chair, 400)
    assert len(small.faces) <= 400 < len(chair.faces)
    assert np.allclose(small.extents, chair.extents, atol=0.01)
    assert decimate(chair, 10 ** 6) is chair
    corners = box_corners(chair)
    assert corners.shape == (8, 3)
    assert np.allclose(corners.min(0), chair.vertices.min(0))
