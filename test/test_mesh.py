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

from rrb_ros.core.mesh import (
    box_corners,
    decimate,
    load_mesh,
    MeshError,
    unit_warning,
    validate,
)


@pytest.mark.parametrize('ext', ['obj', 'ply', 'stl', 'off', 'glb'])
def test_load_formats(tmp_path, ext):
    m = trimesh.creation.icosphere(2, radius=0.3)
    path = tmp_path / f'sphere.{ext}'
    m.export(path)
    mesh = load_mesh(path)
    assert len(mesh.faces) == len(m.faces)
    assert np.isclose(mesh.radius, 0.3, atol=1e-6)
    assert mesh.watertight


def test_mixed_winding_is_not_culled(tmp_path):
    # a closed surface with some faces flipped (CAD exports): culling would drop front faces
    m = trimesh.creation.icosphere(2, radius=0.3)
    faces = m.faces.copy()
    faces[::3] = faces[::3, ::-1]
    trimesh.Trimesh(m.vertices, faces, process=False).export(tmp_path / 'mixed.ply')
    mesh = load_mesh(tmp_path / 'mixed.ply')
    assert len(mesh.faces) == len(m.faces) and not mesh.watertight
    inverted = trimesh.Trimesh(m.vertices, m.faces[:, ::-1], process=False)
    inverted.export(tmp_path / 'inverted.ply')
    assert load_mesh(tmp_path / 'inverted.ply').watertight  # consistently wound: either way


def test_glb_split_at_uv_seams_is_merged(tmp_path):
    # glTF duplicates vertices wherever the UVs differ: merged on position, the mesh is closed
    from PIL import Image
    m = trimesh.creation.icosphere(3, radius=0.3)
    v = m.vertices[m.faces].reshape(-1, 3)
    uv = np.random.default_rng(0).uniform(size=(len(v), 2))
    visual = trimesh.visual.TextureVisuals(uv=uv, image=Image.new('RGB', (8, 8)))
    trimesh.Trimesh(v, np.arange(len(v)).reshape(-1, 3), visual=visual,
                    process=False).export(tmp_path / 'soup.glb')
    mesh = load_mesh(tmp_path / 'soup.glb')
    assert len(mesh.vertices) == len(m.vertices) and mesh.watertight
    assert len(decimate(mesh, 300).faces) <= 300


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


def test_unit_warning():
    m = trimesh.creation.box((0.5, 0.4, 0.9))
    mesh = validate(m.vertices, m.faces)
    assert unit_warning(mesh) is None
    mm = validate(m.vertices * 1000, m.faces)
    assert 'millimetres' in unit_warning(mm, 'chair.stl') and 'chair.stl is 900 m' in \
        unit_warning(mm, 'chair.stl')
    assert 'wrong scale' in unit_warning(validate(m.vertices * 1e-3, m.faces))
