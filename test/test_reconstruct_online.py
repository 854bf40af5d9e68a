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

"""Reconstruction in the loop: good views, metric scale, the cache, the pipeline, TF lookups.

The network here is a real ONet with hand-set weights whose shape is a known octahedron
(`conftest.octahedron_onet`), so every expected value is exact; the trained network's quality
is tested in test_reconstruct_train.py and end to end in the node tests.
"""

import copy
import dataclasses
import json

from conftest import octahedron_onet
import numpy as np
import pytest
import torch
import trimesh

from rrb_ros.core.fit import FitSettings
from rrb_ros.core.geometry import from_rotvec, invert_T, make_T, rotation_angle
from rrb_ros.core.mesh import validate
from rrb_ros.core.objects import default_camera
from rrb_ros.core.pipeline import Frame, FramePipeline, ObjectSpec, PipelineSettings
from rrb_ros.core.reconstruct import (
    canonical_to_object,
    CompactOccupancyNetwork,
    ground_plane_from_transform,
    MirrorAveraged,
    ObjectReconstructor,
    ReconstructSettings,
    view_problem,
    ViewpointHead,
)
from rrb_ros.core.reconstruct.onet import preprocess
from rrb_ros.core.reconstruct.online import code_weights, field_uncertainty
from rrb_ros.core.render import hard_silhouette

RADIUS = 0.4  # canonical octahedron |x| + |y| + |z| <= 0.4: 0.8 units tall
TRUE_HEIGHT = 0.6  # metres


@pytest.fixture(scope='module')
def octa_net():
    return octahedron_onet(RADIUS)


def _octahedron(height):
    v = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1.0]])
    f = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5],
                  [0, 3, 5]])
    return canonical_to_object(validate(v * height / 2, f))


@pytest.fixture(scope='module')
def view():
    """Return a view from 1.2 m above the floor, pitched down 0.35 rad, the object 2.4 m ahead."""
    return _view()


def _view(turn: float = 0.0) -> dict:
    """Return the `view` with the object turned by `turn` (rad) about its vertical axis."""
    pitch = 0.35
    c, s = np.cos(pitch), np.sin(pitch)
    forward, down = np.array([c, 0, -s]), np.array([-s, 0, -c])
    T_base_cam = make_T(np.column_stack([np.cross(down, forward), down, forward]),
                        [0.0, 0.0, 1.2])
    T_base_obj = make_T(from_rotvec([0, 0, 0.3 + turn]), [2.4, 0.25, 0.0])
    T = invert_T(T_base_cam) @ T_base_obj
    mesh = _octahedron(TRUE_HEIGHT)
    camera = default_camera()
    mask = hard_silhouette(mesh.vertices @ T[:3, :3].T + T[:3, 3], mesh.faces, camera)
    labels = mask.astype(np.uint8)
    image = np.full(labels.shape + (3,), 120, np.uint8)
    image[mask] = (200, 80, 40)
    return {'camera': camera, 'labels': labels, 'image': image, 'T': T,
            'ground': ground_plane_from_transform(T_base_cam), 'mesh': mesh}


def _reconstructor(net, cache_dir='', **settings):
    settings = {'resolution0': 16, 'upsampling_steps': 1, **settings}  # fast, but coarse
    return ObjectReconstructor(ReconstructSettings(cache_dir=str(cache_dir), **settings),
                               FitSettings(), network=net)


def test_view_problems():
    s = ReconstructSettings(min_pixels=100, border_margin=4, occlusion_margin=3)
    labels = np.zeros((100, 120), np.uint8)
    assert view_problem(labels, 1, s).startswith('too small')
    labels[20:60, 30:70] = 1
    assert view_problem(labels, 1, s) is None
    labels[20:60, 72:90] = 2  # another object 2 px away
    assert 'another object' in view_problem(labels, 1, s)
    assert view_problem(labels, 2, s) is not None  # ... for it as well
    labels[labels == 2] = 0
    labels[50:99, 30:40] = 1  # reaches the bottom border region
    assert 'border' in view_problem(labels, 1, s)


def test_reconstruction_gets_the_metric_scale(octa_net, view, tmp_path):
    rec = _reconstructor(octa_net, tmp_path, min_pixels=500, resolution0=32,
                         upsampling_steps=2).reconstruct(
        'octa', view['image'], view['labels'], 1, view['camera'], view['ground'])
    assert rec.source == 'network' and rec.iou > 0.95
    height = rec.mesh.extents[2]
    assert abs(height / TRUE_HEIGHT - 1) < 0.05  # the 5 %
    assert rec.scale == pytest.approx(TRUE_HEIGHT / (2 * RADIUS), rel=0.05)
    assert rec.mesh.vertices[:, 2].min() == pytest.approx(0.0, abs=1e-9)  # on the floor
    # the pose: the object's origin (footprint centre on the floor) where it really stands
    err = np.linalg.norm(rec.T_cam_obj[:3, 3] - view['T'][:3, 3])
    assert err < 0.03 * np.linalg.norm(view['T'][:3, 3])
    # upright: the object's +z is the floor normal (up to the octahedron's symmetries)
    n, _ = view['ground']
    assert np.degrees(np.arccos(np.clip(rec.T_cam_obj[:3, 2] @ n, -1, 1))) < 3.0
    # cached for the next start, and forgotten on request
    assert (tmp_path / 'octa.obj').is_file() and (tmp_path / 'octa.json').is_file()
    cached = _reconstructor(octa_net, tmp_path).cached('octa')
    np.testing.assert_allclose(cached.mesh.extents, rec.mesh.extents, rtol=1e-5)
    assert cached.scale == pytest.approx(rec.scale)
    _reconstructor(octa_net, tmp_path).forget('octa')
    assert _reconstructor(octa_net, tmp_path).cached('octa') is None


def test_viewpoint_head_turns_a_fit_that_faces_away(octa_net, view):
    """The head's azimuth decides the front/back tie; its verdict is reported."""
    from rrb_ros.core.reconstruct.viewpoint import angular_error, camera_azimuth
    args = ('octa', view['image'], view['labels'], 1, view['camera'], view['ground'])
    plain = _reconstructor(octa_net).reconstruct(*args)
    assert plain.viewpoint == ''          # an ONet network without a head: no check
    az = camera_azimuth(plain.T_cam_obj)

    def head_for(azimuth):               # a real head, set to be sure of one azimuth
        head = ViewpointHead(octa_net.c_dim)
        with torch.no_grad():
            for p in head.mlp.parameters():
                p.zero_()
            head.mlp[-1].bias[int(azimuth % (2 * np.pi) / (2 * np.pi) * 24)] = 10.0
        return head.eval()

    def run(azimuth, **settings):
        settings = {'resolution0': 16, 'upsampling_steps': 1, **settings}
        return ObjectReconstructor(ReconstructSettings(**settings), FitSettings(),
                                   network=octa_net,
                                   viewpoint_head=head_for(azimuth)).reconstruct(*args)
    turned = run(az + np.pi)
    assert turned.viewpoint.startswith('turned 180 deg'), turned.viewpoint
    assert np.degrees(angular_error(camera_azimuth(turned.T_cam_obj), az + np.pi)) < 10
    assert turned.iou > plain.iou - 0.05   # the octahedron looks the same from behind
    assert run(az).viewpoint.startswith('viewpoint head agrees')
    assert run(az + np.pi, viewpoint_flip_mass=0.0).viewpoint == ''
    with pytest.raises(ValueError, match='viewpoint_flip_mass'):
        ObjectReconstructor(ReconstructSettings(viewpoint_flip_mass=1.5))


def test_shape_refinement_runs_in_the_reconstruction(octa_net, view):
    """A few refinement steps (off by default): the result says what they did, stays right."""
    args = ('octa', view['image'], view['labels'], 1, view['camera'], view['ground'])
    rec = _reconstructor(octa_net, refine_iterations=3).reconstruct(*args)
    assert rec.refinement.startswith(('shape refined (silhouette loss',
                                      'refined shape dropped (silhouette loss')), rec.refinement
    assert rec.code.shape == (octa_net.c_dim,) and np.isfinite(rec.code).all()
    assert rec.iou > 0.9 and abs(rec.mesh.extents[2] / TRUE_HEIGHT - 1) < 0.05
    assert _reconstructor(octa_net).reconstruct(*args).refinement == ''
    with pytest.raises(ValueError, match='refine_iterations'):
        ObjectReconstructor(ReconstructSettings(refine_iterations=-1))


def test_surface_threshold_is_the_networks_unless_set(octa_net, view):
    """The mesh is the network's calibrated level set unless the settings name another."""
    args = ('octa', view['image'], view['labels'], 1, view['camera'], view['ground'])
    before = octa_net.threshold
    try:
        octa_net.threshold = 0.6
        own = _reconstructor(octa_net).reconstruct(*args).mesh
        named = _reconstructor(octa_net, threshold=0.6).reconstruct(*args).mesh
        other = _reconstructor(octa_net, threshold=0.2).reconstruct(*args).mesh
    finally:
        octa_net.threshold = before
    np.testing.assert_array_equal(own.vertices, named.vertices)
    assert own.vertices.shape != other.vertices.shape or \
        not np.allclose(own.vertices, other.vertices)
    with pytest.raises(ValueError, match='threshold must be a probability'):
        ObjectReconstructor(ReconstructSettings(threshold=1.0))


def test_reconstruction_refuses_bad_views(octa_net, view):
    r = _reconstructor(octa_net, min_pixels=10 ** 6)
    with pytest.raises(ValueError, match='not a good view: too small'):
        r.reconstruct('octa', view['image'], view['labels'], 1, view['camera'], view['ground'])
    with pytest.raises(ValueError, match='cache file name'):
        _reconstructor(octa_net, '/tmp').cached('../escape')


def test_pipeline_reconstructs_then_tracks(octa_net, view, tmp_path):
    objects = [ObjectSpec('octa', 1, None)]
    pipeline = FramePipeline(objects, reconstructor=_reconstructor(octa_net, tmp_path,
                                                                   min_pixels=500))
    frame = Frame(1, 'cam', view['camera'], view['labels'], view['image'])
    r = pipeline.process(frame)  # no ground plane: wait
    assert not r.poses and 'needs the ground plane' in r.rejected['octa']
    r = pipeline.process(dataclasses.replace(frame, image=None, ground=view['ground']))
    assert 'needs the camera image' in r.rejected['octa']
    frame = dataclasses.replace(frame, ground=view['ground'])
    r = pipeline.process(frame)
    assert [p.name for p in r.poses] == ['octa'] and len(r.reconstructions) == 1
    assert pipeline.fitter('octa') is not None
    r2 = pipeline.process(dataclasses.replace(frame, stamp_ns=2))
    assert r2.poses[0].warm_started and not r2.reconstructions
    assert rotation_angle(r2.poses[0].T_cam_obj[:3, :3], r.poses[0].T_cam_obj[:3, :3]) < 0.05
    # a restart finds the cached mesh and tracks without reconstructing (views: 1, as the
    # octahedron's global fit may land on a symmetric pose, seen from another direction)
    again = FramePipeline([ObjectSpec('octa', 1, None)],
                          reconstructor=_reconstructor(octa_net, tmp_path, views=1))
    assert [c.name for c in again.cached] == ['octa']
    r3 = again.process(frame)
    assert r3.poses and not r3.reconstructions
    # asked to reconstruct again: the cache goes, the next good view rebuilds it
    assert again.reconstruct_again() == ['octa']
    assert not (tmp_path / 'octa.obj').exists() and again.fitter('octa') is None
    r4 = again.process(frame)
    assert len(r4.reconstructions) == 1 and (tmp_path / 'octa.obj').exists()


def test_views_from_other_directions_are_averaged_into_the_shape(octa_net, view, tmp_path):
    """add_view: the codes of views 0.6 rad apart are averaged, the object frame is kept."""
    settings = {'min_pixels': 500, 'views': 3, 'view_min_angle': 0.5, 'view_iou_margin': 0.02}
    r = _reconstructor(octa_net, tmp_path, **settings)
    rec = r.reconstruct('octa', view['image'], view['labels'], 1, view['camera'],
                        view['ground'])
    assert rec.views == 1 and rec.T_obj_can is not None
    json_views = json.loads((tmp_path / 'octa.json').read_text())['views']
    assert len(json_views['codes']) == 1
    args = (view['camera'], view['ground'])

    def turned(turn, T_shift=np.eye(4)):  # the object turned; its pose in rec's frame
        other = _view(turn)
        T = T_shift @ rec.T_cam_obj @ make_T(from_rotvec([0, 0, turn]), [0, 0, 0])
        return other['image'], other['labels'], 1, *args, T

    # the same direction again: nothing to add
    assert r.add_view('octa', view['image'], view['labels'], 1, *args, rec.T_cam_obj) is None
    added = r.add_view('octa', *turned(0.6))
    # the same axes; the origin at the new shape's footprint centre: here where it was
    T = turned(0.6)[-1]
    assert added.views == 2 and np.array_equal(added.T_cam_obj[:3, :3], T[:3, :3])
    np.testing.assert_allclose(added.T_cam_obj[:3, 3], T[:3, 3], atol=0.01)
    x = torch.cat([preprocess(v['image'], v['labels'] == 1) for v in (view, _view(0.6))])
    with torch.no_grad():
        codes = octa_net.encode(x).numpy()
    np.testing.assert_allclose(added.code, codes.mean(0), atol=1e-5)
    assert not np.allclose(codes[0], codes[1], atol=1e-3)  # two views, two codes
    # the octahedron's shape does not depend on the code: the same mesh in the same frame
    np.testing.assert_allclose(added.mesh.extents, rec.mesh.extents, rtol=0.05)
    np.testing.assert_allclose(added.mesh.vertices.min(0), rec.mesh.vertices.min(0),
                               atol=0.02)
    lo, hi = added.mesh.vertices.min(0), added.mesh.vertices.max(0)
    np.testing.assert_allclose([*(lo + hi)[:2] / 2, lo[2]], 0.0, atol=1e-9)
    assert added.iou > 0.9 and added.scale == pytest.approx(rec.scale, rel=0.05)
    # a view whose tracked pose is 0.3 m off would move the shape off the earlier views' masks
    with pytest.raises(ValueError, match='matches the masks of 3 views with mean IoU'):
        r.add_view('octa', *turned(1.2, make_T(np.eye(3), [0.3, 0, 0])))
    assert r.add_view('octa', *turned(1.2)) is None  # that direction is not tried again
    # the cache keeps the views: after a restart, more may join, up to `views`
    again = _reconstructor(octa_net, tmp_path, **settings)
    assert again.cached('octa').views == 2
    assert again.add_view('octa', *turned(-0.6)).views == 3
    assert again.add_view('octa', *turned(-1.2)) is None
    # views in a damaged cache file are left out; the mesh is still used
    meta = json.loads((tmp_path / 'octa.json').read_text())
    meta['views']['codes'][0][0] = float('nan')
    (tmp_path / 'octa.json').write_text(json.dumps(meta))
    damaged = _reconstructor(octa_net, tmp_path, **settings)
    assert damaged.cached('octa').views == 0
    assert damaged.add_view('octa', *turned(-1.2)) is None
    again.forget('octa')
    again.settings.views = 4
    assert again.add_view('octa', *turned(-1.2)) is None
    # a network that makes codes of another size: the stored views are dropped
    r.settings.views = 4
    r._views['octa'].codes = [c[:10] for c in r._views['octa'].codes]
    with pytest.raises(ValueError, match='codes of another network'):
        r.add_view('octa', *turned(-0.6))
    assert r.add_view('octa', *turned(-1.2)) is None
    for bad in ({'views': 0}, {'view_min_angle': -0.1}, {'view_iou_margin': -1}):
        with pytest.raises(ValueError, match='views >= 1'):
            _reconstructor(octa_net, **bad)


def test_blurred_views_weigh_less_in_the_mean_code(octa_net):
    """code_weights: u^-power of each code's field uncertainty, so a blurred field counts less.

    The octahedron network made ten times as steep, its logits then scaled by 1 + code[0] in
    the last conditional BatchNorm: logit = logit(0.2) + (1 + code[0]) 100 (r - |p|_1). The
    surface stays on the octahedron; code[0] = 0 gives a crisp field, -0.9 a blur.
    """
    net = copy.deepcopy(octa_net)
    d = net.decoder
    with torch.no_grad():
        d.fc_out.weight[0, :6, 0] *= 10.0  # channels 0-5 carry |p_i|
        d.bn.conv_gamma.weight[:6, 0, 0] = 1.0
        d.bn.conv_beta.weight[6, 0, 0] = 1.0  # channel 6 (0 before the last BatchNorm): 1 + c0
        d.bn.conv_beta.bias[6] = 1.0
        d.fc_out.weight[0, 6, 0] = 100.0 * RADIUS
        d.fc_out.bias.fill_(float(np.log(0.2 / 0.8)))
    crisp, blurred = np.zeros(net.c_dim, np.float32), np.zeros(net.c_dim, np.float32)
    blurred[0] = -0.9
    u = field_uncertainty(net, [crisp, blurred])
    assert 0 < u[0] < u[1] < 1
    w = code_weights(net, [crisp, blurred], 4.0)
    assert w.sum() == pytest.approx(1.0) and w[0] > w[1]
    assert w[0] / w[1] == pytest.approx((u[1] / u[0]) ** 4, rel=1e-6)
    np.testing.assert_allclose(code_weights(net, [crisp, blurred], 0.0), [0.5, 0.5])
    np.testing.assert_allclose(code_weights(net, [blurred], 4.0), [1.0])
    flat = np.zeros(net.c_dim, np.float32)
    flat[0] = -1.0  # p = 0.2 everywhere: u = 0.8
    assert field_uncertainty(net, [flat])[0] == pytest.approx(0.8)
    empty = copy.deepcopy(net)
    with torch.no_grad():
        empty.decoder.fc_out.bias.fill_(-60.0)
    assert field_uncertainty(empty, [crisp])[0] == 1.0  # no shape: nothing known
    # the same points every call: equal codes, equal weights
    np.testing.assert_allclose(code_weights(net, [crisp, crisp.copy()], 4.0), [0.5, 0.5])
    for bad in (-1.0, float('inf'), float('nan')):
        with pytest.raises(ValueError, match='view_weight_power must be >= 0'):
            _reconstructor(octa_net, view_weight_power=bad)


def test_pipeline_adds_views_of_tracked_objects(octa_net, view):
    """A tracked reconstructed object seen from 0.6 rad further round takes the view.

    The pose stays in the object frame and tracking goes on.
    """
    pipeline = FramePipeline([ObjectSpec('octa', 1, None)], reconstructor=_reconstructor(
        octa_net, min_pixels=500, view_min_angle=0.5, view_iou_margin=0.02))
    frames = [Frame(k, 'cam', v['camera'], v['labels'], v['image'], v['ground'])
              for k, v in enumerate([view, _view(0.3), _view(0.6)])]
    r = [pipeline.process(f) for f in frames]
    assert [len(x.reconstructions) for x in r] == [1, 0, 1] and all(x.poses for x in r)
    added = r[2].reconstructions[0]
    assert added.views == 2 and np.array_equal(r[2].poses[0].T_cam_obj, added.T_cam_obj)
    assert r[2].poses[0].iou == added.iou and pipeline.fitter('octa').mesh is added.mesh
    # the pose turned with the object: the frame did not change with the shape
    turn = invert_T(r[0].poses[0].T_cam_obj) @ added.T_cam_obj
    assert abs(rotation_angle(turn[:3, :3], from_rotvec([0, 0, 0.6]))) < 0.05
    r3 = pipeline.process(dataclasses.replace(frames[2], stamp_ns=3))
    assert r3.poses and r3.poses[0].warm_started and not r3.reconstructions


def test_best_of_several_views_is_kept(octa_net, view, tmp_path):
    """No view reaches min_iou: the best of `attempts` views is kept and this frame is fitted."""
    reconstructor = _reconstructor(octa_net, tmp_path, min_pixels=500, min_iou=1.0,
                                   attempts=2, fallback_iou=0.5)
    # a pipeline stricter than any fit of the reconstruction: it accepts what the mesh allows
    pipeline = FramePipeline([ObjectSpec('octa', 1, None)], PipelineSettings(min_iou=0.999),
                             reconstructor)
    assert pipeline.min_iou('octa') == 0.999
    frame = Frame(1, 'cam', view['camera'], view['labels'], view['image'], view['ground'])
    r = pipeline.process(frame)
    assert not r.poses and '(view 1, best ' in r.rejected['octa']
    assert not (tmp_path / 'octa.obj').exists()
    r = pipeline.process(dataclasses.replace(frame, stamp_ns=2))
    # the same view again is no better: the first attempt wins, fitted anew in this frame
    assert len(r.reconstructions) == 1 and r.reconstructions[0].T_cam_obj is None
    assert [p.name for p in r.poses] == ['octa'] and r.poses[0].iou > 0.9
    assert pipeline.min_iou('octa') == pytest.approx(r.reconstructions[0].iou - 0.05)
    assert (tmp_path / 'octa.obj').exists()
    for bad in ({'min_iou': 0.5, 'fallback_iou': 0.6}, {'attempts': 0}):
        with pytest.raises(ValueError, match='fallback_iou|attempts'):
            _reconstructor(octa_net, **bad)


def test_reconstruct_cli_gives_metres(octa_net, view, tmp_path, capsys):
    """`rrb reconstruct --camera-info --camera-height`: a posed mesh in metres, on the floor."""
    import cv2
    import torch
    import yaml

    from rrb_ros.tools import cli
    checkpoint, camera = tmp_path / 'octa.pt', tmp_path / 'camera.yaml'
    torch.save({'model': octa_net.state_dict()}, checkpoint)
    camera.write_text(yaml.safe_dump(view['camera'].to_yaml_dict()))
    cv2.imwrite(str(tmp_path / 'image.png'), view['image'][..., ::-1])
    cv2.imwrite(str(tmp_path / 'mask.png'), view['labels'] * 255)
    out = tmp_path / 'mesh.obj'
    code = cli.main(['reconstruct', '--image', str(tmp_path / 'image.png'), '--mask',
                     str(tmp_path / 'mask.png'), '--checkpoint', str(checkpoint), '--out',
                     str(out), '--camera-info', str(camera), '--camera-height', '1.2',
                     '--camera-pitch', '0.35', '--resolution0', '32',
                     '--refine-iterations', '0'])  # the default; refinement: tested above
    assert code == 0
    mesh = trimesh.load(out, force='mesh')
    assert mesh.bounds[0, 2] == pytest.approx(0.0, abs=1e-6)
    assert abs(mesh.extents[2] / TRUE_HEIGHT - 1) < 0.05
    pose = json.loads(out.with_suffix('.json').read_text())
    err = np.linalg.norm(np.asarray(pose['T_cam_obj'])[:3, 3] - view['T'][:3, 3])
    assert err < 0.03 * np.linalg.norm(view['T'][:3, 3])
    assert pose['refinement'] == ''
    assert cli.main(['reconstruct', '--image', str(tmp_path / 'image.png'), '--mask',
                     str(tmp_path / 'mask.png'), '--checkpoint', str(checkpoint), '--out',
                     str(out), '--camera-info', str(camera), '--camera-height', '1.2',
                     '--refine-iterations', '-1']) == 2
    assert 'refine_iterations' in capsys.readouterr().err


def test_mirror_average_wraps_only_networks_trained_here(octa_net):
    """The shipped network's canonical left-right axis is x; ONet's own is not known."""
    assert ObjectReconstructor(network=octa_net).load_network() is octa_net
    shipped = ObjectReconstructor().load_network()
    assert isinstance(shipped, MirrorAveraged)
    assert isinstance(shipped.net, CompactOccupancyNetwork)
    alone = ObjectReconstructor(ReconstructSettings(mirror_average=False)).load_network()
    assert isinstance(alone, CompactOccupancyNetwork)
    assert ObjectReconstructor(network=shipped).load_network() is shipped


def test_objects_with_meshes_are_not_reconstructed(view):
    pipeline = FramePipeline([ObjectSpec('octa', 1, view['mesh'])])
    assert pipeline.reconstruct_again() == []
    frame = Frame(1, 'cam', view['camera'], view['labels'], view['image'], view['ground'])
    assert pipeline.process(frame).poses
    bare = FramePipeline([ObjectSpec('octa', 1, None)])  # no reconstructor at all
    assert bare.process(frame).rejected == {'octa': 'no mesh'}


def test_node_parameters_build_the_reconstructor(octa_net, tmp_path):
    from rrb_ros.core.config import build_pipeline, default_cache_dir, ground_from_params
    params = {'objects.names': ['octa'], 'objects.octa.mesh': '',
              'reconstruction.network': str(tmp_path / 'missing.pt')}
    with pytest.raises(ValueError, match='checkpoint not found'):  # at start-up, not mid-run
        build_pipeline(params)
    import torch
    torch.save({'model': octa_net.state_dict()}, tmp_path / 'octa.pt')
    params.update({'reconstruction.network': 'octa.pt', 'reconstruction.min_iou': 0.9,
                   'reconstruction.refine_iterations': 7, 'reconstruction.views': 2,
                   'reconstruction.view_min_angle': 1, 'reconstruction.view_weight_power': 2})
    pipeline = build_pipeline(params, base_dir=tmp_path, default_cache=False)
    r = pipeline.reconstructor
    assert r.settings.network == str(tmp_path / 'octa.pt') and r.settings.min_iou == 0.9
    assert r.settings.refine_iterations == 7
    assert r.settings.views == 2 and r.settings.view_min_angle == 1.0
    assert r.settings.view_weight_power == 2.0
    assert r.settings.cache_dir == '' and pipeline.reconstructed == {'octa'}
    assert build_pipeline(params, base_dir=tmp_path).reconstructor.settings.cache_dir == \
        default_cache_dir()
    assert ground_from_params({}) is None
    n, h = ground_from_params({'camera_height': 1.5, 'camera_pitch': 0.2})
    assert h == 1.5 and n[1] == pytest.approx(-np.cos(0.2))
    with pytest.raises(ValueError, match='camera_height'):
        ground_from_params({'camera_height': -1.0})


def test_replay_ground_from_tf():
    from geometry_msgs.msg import TransformStamped
    from std_msgs.msg import Header

    from rrb_ros.ros import convert
    from rrb_ros.ros.tf import LatestTransforms
    from rrb_ros.tools.replay_cmd import _ground
    assert _ground(None, None, 'cam') is None
    fixed = (np.array([0.0, -1.0, 0.0]), 1.2)
    assert _ground(fixed, None, 'cam') is fixed
    tf = LatestTransforms()
    assert _ground('world', tf, 'cam') is None  # not heard yet
    T_world_cam = make_T(from_rotvec([-np.pi / 2 - 0.3, 0, 0]), [1.0, 2.0, 1.3])
    tf.add([TransformStamped(header=Header(frame_id='world'), child_frame_id='cam',
                             transform=convert.matrix_to_transform(T_world_cam))])
    n, h = _ground('world', tf, 'cam')
    assert h == pytest.approx(1.3)
    np.testing.assert_allclose(n, T_world_cam[2, :3], atol=1e-12)
