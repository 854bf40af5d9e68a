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

"""Benchmarks of the renderer, the pose fitter and the reconstruction (`make bench`).

Prints a table (each figure with its target, and ratios measured in the same run) and writes
bench/results.json. Cases are generated with seeds that the tests do not use.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
import platform
import statistics
import sys
import time

import numpy as np
import torch

from rrb_ros.core.camera import PinholeCamera
from rrb_ros.core.fit import FitSettings, PoseFitter
from rrb_ros.core.geometry import make_T, rotation_angle, viewpoint_rotation
from rrb_ros.core.mesh import decimate, validate
from rrb_ros.core.objects import (
    default_camera,
    make_case,
    perturb,
    procedural_chair,
    procedural_object,
    subdivide,
)
from rrb_ros.core.render import (
    opencv_silhouette,
    RasterSettings,
    render_silhouette,
    render_silhouette_dense,
)


def timed(fn, repeat: int, warmup: int = 2) -> float:
    """Median wall time of fn() in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def bench_render(repeat: int) -> dict:
    """Soft silhouette fwd+bwd of a 2,000-face chair filling a 128 px crop, three ways."""
    rng = np.random.default_rng(2024)
    mesh = decimate(subdivide(procedural_chair(rng), 4000), 2000)
    centre = (mesh.vertices.min(0) + mesh.vertices.max(0)) / 2
    R = viewpoint_rotation(0.8, 0.35, 0.05)
    T = make_T(R, [0, 0, 2.0] - R @ centre)
    v_np = mesh.vertices @ T[:3, :3].T + T[:3, 3]
    # a crop camera that frames the object like the fitter does (box = 80 % of the crop)
    uv = PinholeCamera(1.0, 1.0, 0.0, 0.0, 1, 1).project(v_np)
    side = (uv.max(0) - uv.min(0)).max() * 1.25
    f = 128.0 / side
    c = (uv.max(0) + uv.min(0)) / 2
    cam = PinholeCamera(f, f, 63.5 - f * c[0], 63.5 - f * c[1], 128, 128)
    K = torch.tensor(cam.K, dtype=torch.float32)
    faces = torch.tensor(mesh.faces)
    out = {'faces': int(len(mesh.faces)), 'pixels': 128 * 128}

    def fwd_bwd(fn, settings):
        v = torch.tensor(v_np, dtype=torch.float32)[None].requires_grad_(True)
        fn(v, faces, K, 128, 128, settings).sum().backward()

    # the fitter culls back faces of watertight meshes (exact for their silhouettes);
    # `render_ms` culls when this mesh is watertight, `render_ms_all_faces` never does. The
    # decimated chair is not watertight ('watertight' in the results), so the two agree: the
    # figure is that of an open mesh, the slower case
    all_faces = RasterSettings(sigma=FitSettings.sigma_fine)
    as_fitted = RasterSettings(sigma=FitSettings.sigma_fine, cull_backfaces=mesh.watertight)
    out['watertight'] = bool(mesh.watertight)
    # steady state: the first calls of a process pay for allocator and thread-pool warm-up
    out['render_ms'] = timed(lambda: fwd_bwd(render_silhouette, as_fitted), repeat, warmup=10)
    out['render_ms_all_faces'] = timed(lambda: fwd_bwd(render_silhouette, all_faces), repeat,
                                       warmup=10)
    out['dense_ms'] = timed(lambda: fwd_bwd(render_silhouette_dense, all_faces), 3, warmup=1)
    out['opencv_fill_ms'] = timed(lambda: opencv_silhouette(v_np, mesh.faces, cam), repeat)
    out['render_speedup_vs_dense'] = out['dense_ms'] / out['render_ms_all_faces']
    out['render_vs_opencv'] = out['render_ms_all_faces'] / out['opencv_fill_ms']
    out['covered_fraction'] = float(
        (opencv_silhouette(v_np, mesh.faces, cam) > 0).mean())
    return out


def errors(T: np.ndarray, T_gt: np.ndarray) -> tuple[float, float]:
    rot = float(np.rad2deg(rotation_angle(T[:3, :3], T_gt[:3, :3])))
    trans = float(np.linalg.norm(T[:3, 3] - T_gt[:3, 3]) / np.linalg.norm(T_gt[:3, 3]))
    return rot, trans


def bench_fit(n_cases: int) -> dict:
    """Refinement (tracking and 20 deg / 10 % starts) and global fits on generated cases."""
    rng = np.random.default_rng(777)
    track, refine, glob = [], [], []
    for i in range(n_cases):
        mesh = subdivide(procedural_object(rng), 2000)
        case = make_case(mesh, rng)
        fitter = PoseFitter(mesh)
        r = fitter.fit(case.mask, case.camera, perturb(case.T_cam_obj, rng, 15.0, 0.05))
        track.append((*errors(r.T_cam_obj, case.T_cam_obj), r.iou, r.seconds))
        r = fitter.fit(case.mask, case.camera, perturb(case.T_cam_obj, rng, 20.0, 0.10))
        refine.append((*errors(r.T_cam_obj, case.T_cam_obj), r.iou, r.seconds))
        r = fitter.fit(case.mask, case.camera)
        glob.append((*errors(r.T_cam_obj, case.T_cam_obj), r.iou, r.seconds))
        print(f'  case {i + 1}/{n_cases}: refine {refine[-1][0]:.2f} deg IoU {refine[-1][2]:.3f}'
              f' | global IoU {glob[-1][2]:.3f} {glob[-1][3]:.1f} s', file=sys.stderr,
              flush=True)
    t, r, g = np.array(track), np.array(refine), np.array(glob)
    return {
        'cases': n_cases,
        'fit_refine_ms': 1e3 * float(np.median(t[:, 3])),
        'track_15deg_5pct_iou_ge_095': float((t[:, 2] >= 0.95).mean()),
        'refine_20deg_10pct_rot_err_median_deg': float(np.median(r[:, 0])),
        'refine_20deg_10pct_trans_err_median_pct': 100 * float(np.median(r[:, 1])),
        'refine_20deg_10pct_iou_ge_095': float((r[:, 2] >= 0.95).mean()),
        'refine_20deg_10pct_seconds_median': float(np.median(r[:, 3])),
        'fit_global_s': float(np.median(g[:, 3])),
        'global_iou_ge_090': float((g[:, 2] >= 0.90).mean()),
        'global_rot_err_median_deg': float(np.median(g[:, 0])),
    }


def bench_global_mismatch(n_cases: int) -> dict:
    """Global fits of a mesh unlike the object: one fine-stage pose against two (`fine_top_k`).

    The mesh is the chair stretched 30 % in x, as a reconstructed mesh is unlike the real one.
    """
    rng = np.random.default_rng(778)
    rows = []
    for i in range(n_cases):
        chair = subdivide(procedural_chair(rng), 1500)
        case = make_case(chair, rng)
        wide = validate(chair.vertices * np.array([1.3, 1.0, 1.0]), chair.faces)
        row = []
        for k in (1, 2):
            r = PoseFitter(wide, FitSettings(fine_top_k=k)).fit(case.mask, case.camera)
            row += [r.iou, errors(r.T_cam_obj, case.T_cam_obj)[0], r.seconds]
        rows.append(row)
        print(f'  mismatched mesh {i + 1}/{n_cases}: IoU {row[0]:.3f} ({row[1]:.1f} deg) with '
              f'one fine-stage pose, {row[3]:.3f} ({row[4]:.1f} deg) with two', file=sys.stderr,
              flush=True)
    a = np.array(rows)
    return {
        'global_mismatch_iou_mean_one': float(a[:, 0].mean()),
        'global_mismatch_iou_mean': float(a[:, 3].mean()),
        'global_mismatch_over_10deg_one': float((a[:, 1] > 10).mean()),
        'global_mismatch_over_10deg': float((a[:, 4] > 10).mean()),
        'global_mismatch_time_ratio': float(np.median(a[:, 5]) / np.median(a[:, 2])),
    }


def bench_recon(n_chairs: int) -> dict:
    """Measure the shipped network on held-out chairs: time per image, IoU, metric scale."""
    from rrb_ros.core.reconstruct import (
        ground_plane_from_height,
        load_network,
        load_viewpoint_head,
        mirror_averaged,
        ObjectReconstructor,
        OccupancyNetwork,
        ReconstructSettings,
    )
    from rrb_ros.core.reconstruct import train as tr
    from rrb_ros.core.reconstruct.viewpoint import evaluate_viewpoint_head
    from rrb_ros.core.synth import look_at, render_frame, Scene, SceneObject

    net = load_network()
    seed = tr.EVAL_SEED_OFFSET + 90_000  # neither training nor the model card's held-out set
    data = tr.build_dataset(n_chairs, 1, seed, net.image_size, kinds=('chair',))
    images = tr.images_tensor(data.images)
    chair = net.surface_level('chair')  # the level reconstruction gives objects named chair*
    iou = tr.volumetric_iou(net, images, data.parts, data.valid, levels=chair)
    averaging = mirror_averaged(net)  # what reconstruction uses by default
    iou_mirror = tr.volumetric_iou(averaging, images, data.parts, data.valid, levels=chair)
    head = load_viewpoint_head()
    viewpoint = evaluate_viewpoint_head(head, tr.encode_all(net, data), data.azimuth)
    image, mirror = averaging.halves(tr.encode_all(averaging, data))
    viewpoint_mirror = evaluate_viewpoint_head(head, image, data.azimuth, codes_mirror=mirror)
    others = {}
    for k, kind in enumerate(('stool', 'table', 'sofa')):
        d = tr.build_dataset(3, 1, seed + 1000 * (k + 1), net.image_size, kinds=(kind,))
        others[kind] = float(tr.volumetric_iou(averaging, tr.images_tensor(d.images), d.parts,
                                               d.valid, levels=net.surface_level(kind)).mean())
    times, times_single, encode = [], [], []
    for i in range(min(5, n_chairs)):
        x = images[i:i + 1]
        t0 = time.perf_counter()
        with torch.no_grad():
            net.encode(x)
        encode.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        averaging.generate_mesh(x, max_faces=3000)
        times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        net.generate_mesh(x, max_faces=3000)
        times_single.append(time.perf_counter() - t0)
    # a training step (batch 32, 512 points) in float32 and under bfloat16 autocast
    step_ms = {}
    for bf16 in (False, True):
        cfg = tr.TrainConfig(iterations=4, bf16=bf16)
        trainee = copy.deepcopy(net)
        step_ms[bf16] = timed(lambda: tr.train(trainee, data, cfg), 2, 1) / cfg.iterations
    # decoder throughput against ONet's own (same family, 256 wide, 5 blocks) in this run
    onet = OccupancyNetwork().eval()
    pts = torch.rand(1, 100_000, 3) - 0.5
    with torch.no_grad():
        c_small, c_onet = net.encode(images[:1]), onet.encode(torch.rand(1, 3, 224, 224))
        small_ms = timed(lambda: net.decode(pts, c_small), 3, 1)
        onet_ms = timed(lambda: onet.decode(pts, c_onet), 3, 1)
        one_pass = copy.deepcopy(net)
        one_pass.decode_chunk = pts.shape[1]  # all points in one pass, as before chunking
        one_pass_ms = timed(lambda: one_pass.decode(pts, c_small), 3, 1)
    # the whole reconstruction, metric scale on the floor: camera 1.1 m up looking at a
    # held-out chair; as shipped, and with the shape refinement (off by default)
    height = 1.1
    camera = default_camera()
    n_scene = min(8, n_chairs)
    scene = {}
    for variant, iterations in (('plain', 0), ('refined', 30)):
        # one view per chair: kept unless its fit is below the fallback IoU
        rec = ObjectReconstructor(ReconstructSettings(attempts=1, refine_iterations=iterations),
                                  FitSettings(), network=net, viewpoint_head=head)
        out = scene[variant] = {'scale_err': [], 'own_iou': [], 'rot_err': [], 'iou': [],
                                'seconds': []}
        for i in range(n_scene):
            mesh = data.shapes[i].mesh()  # metres, standing on z = 0
            a = 0.7 + i
            T_wc = look_at([2.2 * np.cos(a), 2.2 * np.sin(a), height], [0, 0, 0.35])
            rgb, labels = render_frame(Scene([SceneObject('c', 1, mesh, np.eye(4))]), camera,
                                       T_wc)
            ground = ground_plane_from_height(height, float(np.arcsin(-T_wc[2, 2])))
            try:
                r = rec.reconstruct(f'chair{i}', rgb, labels, 1, camera, ground)
            except ValueError:
                out['scale_err'].append(float('inf'))
                out['own_iou'].append(0.0)
                out['rot_err'].append(180.0)
                out['iou'].append(0.0)
                continue
            out['scale_err'].append(abs(r.mesh.extents[2] / mesh.extents[2] - 1))
            out['own_iou'].append(r.iou)
            # the network's canonical frame is the shape's: the pose's rotation is comparable
            out['rot_err'].append(np.rad2deg(rotation_angle(r.T_cam_obj[:3, :3],
                                                            T_wc[:3, :3].T)))
            out['iou'].append(tr.code_iou(rec.load_network(), [r.code], data.parts[i:i + 1],
                                          data.valid[i:i + 1], levels=chair)[0])
            out['seconds'].append(r.seconds)
    plain, refined = scene['plain'], scene['refined']
    views = bench_views(net, head, data, n_scene, camera, height)
    weighted_views = bench_views(net, head, data, n_scene, camera, height,
                                 view_weight_power=4.0)
    return {
        'recon_seconds_per_image': float(np.median(times)),
        'recon_seconds_per_image_single': float(np.median(times_single)),
        'recon_encode_ms': 1e3 * float(np.median(encode)),
        'recon_heldout_chair_iou_mean': float(iou.mean()),
        'recon_heldout_chair_iou_median': float(np.median(iou)),
        'recon_heldout_chair_iou_mirror_mean': float(iou_mirror.mean()),
        'recon_heldout_chair_iou_mirror_median': float(np.median(iou_mirror)),
        'recon_mirror_iou_gain': float(iou_mirror.mean() - iou.mean()),
        **{f'recon_heldout_{k}_iou_mean': v for k, v in others.items()},
        'recon_train_step_ms': step_ms[False],
        'recon_train_step_bf16_ms': step_ms[True],
        'recon_train_bf16_speedup': step_ms[False] / step_ms[True],
        'recon_decode_100k_ms': small_ms,
        'recon_decoder_speedup_vs_onet': onet_ms / small_ms,
        'recon_decode_100k_one_pass_ms': one_pass_ms,
        'recon_decode_chunk_speedup': one_pass_ms / small_ms,
        'recon_height_err_median_pct': 100 * float(np.median(plain['scale_err'])),
        'recon_own_view_iou_median': float(np.median(plain['own_iou'])),
        'recon_pose_rot_err_median_deg': float(np.median(plain['rot_err'])),
        'recon_pose_rot_err_over_90deg': float(np.mean(np.asarray(plain['rot_err']) > 90)),
        'recon_scene_chair_iou_mean': float(np.mean(plain['iou'])),
        'recon_scene_seconds': float(np.median(plain['seconds'])),
        'recon_refined_chair_iou_mean': float(np.mean(refined['iou'])),
        'recon_refined_height_err_median_pct': 100 * float(np.median(refined['scale_err'])),
        'recon_refined_pose_rot_err_median_deg': float(np.median(refined['rot_err'])),
        'recon_refined_seconds': float(np.median(refined['seconds'])),
        **views,
        'recon_views_weighted_chair_iou_mean': weighted_views['recon_views_chair_iou_mean'],
        'viewpoint_chair_median_err_deg': viewpoint['median_error_deg'],
        'viewpoint_chair_front_back_correct': viewpoint['front_back_correct'],
        'viewpoint_mirror_chair_median_err_deg': viewpoint_mirror['median_error_deg'],
        'viewpoint_mirror_chair_front_back_correct': viewpoint_mirror['front_back_correct'],
    }


def bench_views(net, head, data, n_scene: int, camera, height: float, frames: int = 13,
                step_deg: float = 10.0, view_weight_power: float | None = None) -> dict:
    """Reconstruct the same chairs by the pipeline while the camera moves round them.

    Each chair: `frames` frames `step_deg` apart on the circle of the single views above
    (starting there), tracked; good views 0.5 rad apart are averaged into the shape
    (`reconstruction.views`, 4). IoU of the first view's shape and of the final one.
    `view_weight_power`: how the views' codes are weighted (None: as shipped).
    """
    from rrb_ros.core.pipeline import Frame, FramePipeline, ObjectSpec
    from rrb_ros.core.reconstruct import (
        ground_plane_from_height,
        ObjectReconstructor,
        ReconstructSettings,
    )
    from rrb_ros.core.reconstruct import train as tr
    from rrb_ros.core.synth import look_at, render_frame, Scene, SceneObject
    first, last, views, seconds, height_err = [], [], [], [], []
    chair = net.surface_level('chair')  # the pipeline's object is named chair
    for i in range(n_scene):
        mesh = data.shapes[i].mesh()
        settings = ReconstructSettings(attempts=1)
        if view_weight_power is not None:
            settings.view_weight_power = view_weight_power
        rec = ObjectReconstructor(settings, FitSettings(), network=net, viewpoint_head=head)
        pipeline = FramePipeline([ObjectSpec('chair', 1, None)], reconstructor=rec)
        made = []
        for k in range(frames):
            a = 0.7 + i + np.deg2rad(step_deg) * k
            T_wc = look_at([2.2 * np.cos(a), 2.2 * np.sin(a), height], [0, 0, 0.35])
            rgb, labels = render_frame(Scene([SceneObject('c', 1, mesh, np.eye(4))]), camera,
                                       T_wc)
            ground = ground_plane_from_height(height, float(np.arcsin(-T_wc[2, 2])))
            made += pipeline.process(Frame(k, 'camera', camera, labels, rgb,
                                           ground)).reconstructions
        if not made:
            first.append(0.0)
            last.append(0.0)
            continue
        first.append(tr.code_iou(rec.load_network(), [made[0].code], data.parts[i:i + 1],
                                 data.valid[i:i + 1], levels=chair)[0])
        last.append(tr.code_iou(rec.load_network(), [made[-1].code], data.parts[i:i + 1],
                                data.valid[i:i + 1], levels=chair)[0])
        views.append(made[-1].views)
        seconds.append(sum(r.seconds for r in made[1:]))
        height_err.append(abs(made[-1].mesh.extents[2] / mesh.extents[2] - 1))
    return {
        'recon_views_first_chair_iou_mean': float(np.mean(first)),
        'recon_views_chair_iou_mean': float(np.mean(last)),
        'recon_views_gain': float(np.mean(last) - np.mean(first)),
        'recon_views_count_mean': float(np.mean(views)),
        'recon_views_seconds': float(np.median(seconds)),
        'recon_views_height_err_median_pct': 100 * float(np.median(height_err)),
    }


TARGETS = [  # key, target, comparison, unit
    ('render_ms', 5.0, '<=', 'ms'),
    ('render_ms_all_faces', None, '', 'ms'),
    ('dense_ms', None, '', 'ms'),
    ('opencv_fill_ms', None, '', 'ms'),
    ('render_speedup_vs_dense', 50.0, '>=', 'x'),
    ('render_vs_opencv', 10.0, '<=', 'x'),
    ('fit_refine_ms', 150.0, '<=', 'ms'),
    ('track_15deg_5pct_iou_ge_095', None, '', ''),
    ('fit_global_s', 3.0, '<=', 's'),
    ('refine_20deg_10pct_rot_err_median_deg', 0.8, '<=', 'deg'),
    ('refine_20deg_10pct_trans_err_median_pct', 1.0, '<=', '%'),
    ('refine_20deg_10pct_iou_ge_095', 0.9, '>=', ''),
    ('refine_20deg_10pct_seconds_median', None, '', 's'),
    ('global_iou_ge_090', 0.8, '>=', ''),
    ('global_rot_err_median_deg', None, '', 'deg'),
    ('global_mismatch_iou_mean_one', None, '', ''),
    ('global_mismatch_iou_mean', None, '', ''),
    ('global_mismatch_over_10deg_one', None, '', ''),
    ('global_mismatch_over_10deg', None, '', ''),
    ('global_mismatch_time_ratio', None, '', 'x'),
    ('recon_seconds_per_image', None, '', 's'),
    ('recon_seconds_per_image_single', None, '', 's'),
    ('recon_encode_ms', None, '', 'ms'),
    ('recon_train_step_ms', None, '', 'ms'),
    ('recon_train_step_bf16_ms', None, '', 'ms'),
    ('recon_train_bf16_speedup', None, '', 'x'),
    ('recon_decode_100k_ms', None, '', 'ms'),
    ('recon_decoder_speedup_vs_onet', None, '', 'x'),
    ('recon_decode_100k_one_pass_ms', None, '', 'ms'),
    ('recon_decode_chunk_speedup', None, '', 'x'),
    ('recon_heldout_chair_iou_mean', None, '', ''),
    ('recon_heldout_chair_iou_median', None, '', ''),
    ('recon_heldout_chair_iou_mirror_mean', 0.6, '>=', ''),
    ('recon_heldout_chair_iou_mirror_median', None, '', ''),
    ('recon_mirror_iou_gain', None, '', ''),
    ('recon_heldout_stool_iou_mean', None, '', ''),
    ('recon_heldout_table_iou_mean', None, '', ''),
    ('recon_heldout_sofa_iou_mean', None, '', ''),
    ('recon_height_err_median_pct', 5.0, '<=', '%'),
    ('recon_own_view_iou_median', None, '', ''),
    ('recon_pose_rot_err_median_deg', None, '', 'deg'),
    ('recon_pose_rot_err_over_90deg', None, '', ''),
    ('recon_scene_chair_iou_mean', 0.6, '>=', ''),
    ('recon_scene_seconds', None, '', 's'),
    ('recon_refined_chair_iou_mean', 0.6, '>=', ''),
    ('recon_refined_height_err_median_pct', None, '', '%'),
    ('recon_refined_pose_rot_err_median_deg', None, '', 'deg'),
    ('recon_refined_seconds', None, '', 's'),
    ('recon_views_first_chair_iou_mean', None, '', ''),
    ('recon_views_chair_iou_mean', 0.6, '>=', ''),
    ('recon_views_weighted_chair_iou_mean', None, '', ''),
    ('recon_views_gain', None, '', ''),
    ('recon_views_count_mean', None, '', ''),
    ('recon_views_seconds', None, '', 's'),
    ('recon_views_height_err_median_pct', 5.0, '<=', '%'),
    ('viewpoint_chair_median_err_deg', None, '', 'deg'),
    ('viewpoint_chair_front_back_correct', None, '', ''),
    ('viewpoint_mirror_chair_median_err_deg', None, '', 'deg'),
    ('viewpoint_mirror_chair_front_back_correct', None, '', ''),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--out', default='bench/results.json')
    parser.add_argument('--cases', type=int, default=20, help='generated fitting cases')
    parser.add_argument('--repeat', type=int, default=200,
                        help='timing repetitions of the renderer (a median over about a '
                             'second: this VM has slow bursts of a tenth of a second)')
    parser.add_argument('--recon-cases', type=int, default=20, help='held-out chairs')
    args = parser.parse_args()
    torch.set_num_threads(2)
    print('rendering ...', file=sys.stderr, flush=True)
    results = {'render': bench_render(args.repeat)}
    print('fitting ...', file=sys.stderr, flush=True)
    results['fit'] = {**bench_fit(args.cases), **bench_global_mismatch(args.cases // 2)}
    print('reconstructing ...', file=sys.stderr, flush=True)
    results['recon'] = bench_recon(args.recon_cases)
    flat = {**results['render'], **results['fit'], **results['recon']}
    results['machine'] = {'cpu_threads': torch.get_num_threads(), 'torch': torch.__version__,
                          'python': platform.python_version(), 'processor': platform.machine()}
    print(f'\n{"metric":<42} {"value":>10} {"target":>12}  ok')
    for key, target, cmp, unit in TARGETS:
        value = flat[key]
        ok = '' if target is None else (
            'yes' if (value <= target if cmp == '<=' else value >= target) else 'NO')
        tgt = '' if target is None else f'{cmp} {target:g} {unit}'
        print(f'{key:<42} {value:>10.3f} {tgt:>12}  {ok}')
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + '\n')
    print(f'\nwrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
