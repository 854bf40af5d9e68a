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

"""Render-and-compare pose fitting on generated cases."""

import numpy as np
import pytest

from rrb_ros.core.fit import FitError, PoseFitter
from rrb_ros.core.geometry import rotation_angle
from rrb_ros.core.objects import make_case, perturb, procedural_object, subdivide
from rrb_ros.core.pipeline import FramePipeline, ObjectSpec, PipelineSettings


def errors(T, T_gt):
    rot = np.rad2deg(rotation_angle(T[:3, :3], T_gt[:3, :3]))
    trans = np.linalg.norm(T[:3, 3] - T_gt[:3, 3]) / np.linalg.norm(T_gt[:3, 3])
    return rot, trans


@pytest.mark.parametrize('seed', [11, 12, 13])
def test_refine_from_perturbed_pose(seed):
    rng = np.random.default_rng(seed)
    mesh = subdivide(procedural_object(rng), 2000)
    case = make_case(mesh, rng)
    start = perturb(case.T_cam_obj, rng, 20.0, 0.10)
    result = PoseFitter(mesh).fit(case.mask, case.camera, start)
    rot, trans = errors(result.T_cam_obj, case.T_cam_obj)
    assert rot < 2.0 and trans < 0.02 and result.iou > 0.93, (rot, trans, result.iou)
    assert result.iterations > 0 and result.seconds > 0


def test_global_initialisation(chair, rng):
    case = make_case(chair, rng)
    result = PoseFitter(chair).fit(case.mask, case.camera)
    assert result.iou > 0.9


def test_the_fine_stage_keeps_the_best_of_the_coarse_results(chair):
    # a mesh unlike the masked object (a chair stretched by 30 % in x) has several fair poses:
    # the fine stage refines the two best coarse ones and keeps the higher IoU, which on some
    # of these chairs is not the pose the coarse stage ranked first
    from rrb_ros.core.fit import FitSettings
    from rrb_ros.core.mesh import validate
    from rrb_ros.core.objects import procedural_chair
    better = 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        shape = subdivide(procedural_chair(rng), 1500)
        case = make_case(shape, rng)
        wide = validate(shape.vertices * np.array([1.3, 1.0, 1.0]), shape.faces)
        one, two = (PoseFitter(wide, FitSettings(fine_top_k=k)).fit(case.mask, case.camera)
                    for k in (1, 2))
        assert two.iou >= one.iou and two.iterations > one.iterations
        better += two.iou > one.iou + 1e-3
    assert better >= 1
    with pytest.raises(ValueError, match='fine_top_k'):
        PoseFitter(chair, FitSettings(fine_top_k=0))


def test_bad_input(chair, camera):
    fitter = PoseFitter(chair)
    mask = np.zeros((camera.height, camera.width), np.uint8)
    with pytest.raises(FitError, match='empty'):
        fitter.fit(mask, camera)
    with pytest.raises(FitError, match='640x480'):
        fitter.fit(np.ones((100, 100), np.uint8), camera)
    with pytest.raises(FitError, match='single-channel'):
        fitter.fit(np.ones((480, 640, 3), np.uint8), camera)
    mask[200:300, 300:400] = 1
    with pytest.raises(ValueError, match='NaN'):
        fitter.fit(mask, camera, np.full((4, 4), np.nan))


def test_mask_touching_the_border_is_fitted(chair, rng):
    # the object leaves the image: pixels outside it must not count against the fit
    from rrb_ros.core.geometry import make_T, viewpoint_rotation
    from rrb_ros.core.objects import default_camera, FitCase
    from rrb_ros.core.render import hard_silhouette
    cam = default_camera()
    R = viewpoint_rotation(0.6, 0.4, 0.0)
    T = make_T(R, cam.backproject(np.array([[610.0, 240.0]]), 1.6)[0] - R @ chair.vertices.mean(0))
    mask = hard_silhouette(chair.vertices @ T[:3, :3].T + T[:3, 3], chair.faces, cam)
    assert mask[:, -1].any()
    case = FitCase(chair, cam, T, mask.astype(np.uint8))
    result = PoseFitter(chair).fit(case.mask, cam, perturb(T, rng, 10.0, 0.05))
    rot, trans = errors(result.T_cam_obj, T)
    assert rot < 3.0 and trans < 0.03


def test_occluded_object_in_a_two_object_frame(rng):
    # chair A partly hidden behind box B: B's pixels must not count against A's pose
    import trimesh

    from rrb_ros.core.geometry import make_T, viewpoint_rotation
    from rrb_ros.core.mesh import validate
    from rrb_ros.core.objects import default_camera, procedural_chair
    from rrb_ros.core.pipeline import Frame
    from rrb_ros.core.render import hard_silhouette
    cam = default_camera()
    chair = subdivide(procedural_chair(rng), 1500)
    box = trimesh.creation.box((0.25, 0.25, 0.5))
    box = validate(box.vertices, box.faces)
    R = viewpoint_rotation(0.5, 0.35, 0.0)
    centre = chair.vertices.mean(0)
    T_a = make_T(R, cam.backproject(np.array([[320.0, 260.0]]), 2.2)[0] - R @ centre)
    T_b = make_T(R, cam.backproject(np.array([[270.0, 280.0]]), 1.4)[0])
    sil_a = hard_silhouette(chair.vertices @ T_a[:3, :3].T + T_a[:3, 3], chair.faces, cam)
    sil_b = hard_silhouette(box.vertices @ T_b[:3, :3].T + T_b[:3, 3], box.faces, cam)
    labels = np.zeros(sil_a.shape, np.uint8)
    labels[sil_a] = 1
    labels[sil_b] = 2  # B is in front
    hidden = (sil_a & sil_b).sum() / sil_a.sum()
    assert 0.1 < hidden < 0.6
    pipeline = FramePipeline([ObjectSpec('chair', 1, chair), ObjectSpec('box', 2, box)])
    start = perturb(T_a, rng, 10.0, 0.05)
    pipeline._last['chair'] = start
    result = pipeline.process(Frame(1, 'camera_optical', cam, labels))
    pose = {p.name: p for p in result.poses}['chair']
    rot, trans = errors(pose.T_cam_obj, T_a)
    assert rot < 2.0 and trans < 0.02, (rot, trans, pose.iou)


@pytest.mark.parametrize('objects, settings, says', [
    ([('a', 1), ('b', 1)], {}, 'labels must be unique'),
    ([('a', 0)], {}, '0 is the background'),
    ([('a', 1)], {'min_iou': 5.0}, 'min_iou'),
    ([('a', 1)], {'min_mask_pixels': -1}, 'min_mask_pixels'),
    ([('a', 1)], {'track_margin': -0.1}, 'track_margin'),
    ([('a', 1)], {'track_margin': 1.5}, 'track_margin'),
])
def test_pipeline_refuses_bad_settings(objects, settings, says):
    with pytest.raises(ValueError, match=says):
        FramePipeline([ObjectSpec(name, label, None) for name, label in objects],
                      PipelineSettings(**settings))


def test_a_tracked_object_keeps_its_track_down_to_min_iou_minus_track_margin(chair, rng):
    # hysteresis: the same fit that starts no track keeps one that runs
    from rrb_ros.core.pipeline import Frame
    case = make_case(chair, rng)
    frame = Frame(1, 'camera_optical', case.camera, case.mask)
    start = perturb(case.T_cam_obj, rng, 5.0, 0.03)

    def run(tracked: bool, **settings):
        pipeline = FramePipeline([ObjectSpec('chair', 1, chair)], PipelineSettings(**settings))
        if tracked:
            pipeline._last['chair'] = start.copy()
        result = pipeline.process(frame)
        return result, pipeline

    tracked_iou = run(True, min_iou=0.0)[0].poses[0].iou
    new_iou = run(False, min_iou=0.0)[0].poses[0].iou
    level = max(tracked_iou, new_iou) + 0.01  # neither fit reaches it
    assert level - 0.05 < tracked_iou, (tracked_iou, new_iou)
    result, pipeline = run(False, min_iou=level, track_margin=0.05)
    assert not result.poses and 'below' in result.rejected['chair']
    assert pipeline.last_pose('chair') is None
    result, pipeline = run(True, min_iou=level, track_margin=0.05)
    assert result.poses[0].warm_started and result.poses[0].iou == pytest.approx(tracked_iou)
    assert pipeline.last_pose('chair') is not None  # the track goes on
    result, pipeline = run(True, min_iou=level, track_margin=0.0)
    assert not result.poses and '(tracked)' in result.rejected['chair']
    assert pipeline.last_pose('chair') is None
