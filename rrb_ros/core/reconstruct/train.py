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

"""Training and evaluation of the compact occupancy network on procedural furniture.

`rrb train-recon` runs the four steps of `train_and_export`:

1. Data: shapes from `shapes.py`; each rendered from several random viewpoints by the synthetic
   renderer (varied colour, light and texture), masked and preprocessed exactly as at run
   time (`preprocess`: square crop around the mask, white background).
2. Training: per step a batch of images and, per image, points uniform in the padded cube plus
   points near the surface, labelled by the shapes' exact occupancy; binary cross-entropy on
   the logits, Adam with cosine decay. Then the surface threshold (the occupancy probability
   of the mesh) is calibrated on validation shapes, as ONet chose its 0.2.
3. Evaluation on held-out shapes (other seeds) from new views: volumetric IoU on uniform points
   and Chamfer-L1 between surface samples, as ONet reports them (canonical unit-cube units).
4. Export: float16 weights, `eval.json`, a loss-curve plot and a model card.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
import json
from pathlib import Path
import time
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
import trimesh

from ..camera import PinholeCamera
from ..geometry import from_rotvec
from ..synth import look_at, render_frame, RenderSettings, Scene, SceneObject
from .compact import CompactOccupancyNetwork, DEFAULT_CONFIG
from .mirror import mirror_averaged
from .mise import grid_to_mesh, logit
from .onet import DEFAULT_THRESHOLD, OccupancyNetworkBase, preprocess, read_checkpoint
from .shapes import (
    CHAIR_WEIGHT,
    KINDS,
    occupancy,
    PADDING,
    parts_to_canonical,
    random_shape,
    Shape,
    to_canonical,
)
from .viewpoint import evaluate_viewpoint_head, train_viewpoint_head, ViewpointHead

EVAL_SEED_OFFSET = 1_000_000
"""Held-out shapes and views use seeds from here on; training uses seeds below it."""
VALIDATION_SEED_OFFSET = 500_000
"""Validation shapes (calibration of the surface threshold) use seeds from here on: neither
training nor held-out ones."""
CALIBRATION_THRESHOLDS = tuple(round(0.1 + 0.05 * i, 2) for i in range(13))
"""Surface probabilities tried by `calibrate_threshold` (0.1 to 0.7)."""

Progress = Callable[[str, int, int, str], None]
"""progress(stage, done, total, detail)."""


@dataclass
class TrainConfig:
    """Everything `rrb train-recon` is told; stored in the checkpoint and the model card."""

    shapes: int = 3000
    """Training shapes (chairs about 40 %, stools, tables and sofas about 20 % each)."""
    views: int = 4
    """Rendered views per training shape."""
    iterations: int = 6000
    batch_size: int = 32
    points: int = 512
    """Points per image and step: half uniform in the cube, half near the surface."""
    surface_noise: float = 0.02
    """Standard deviation (canonical units) of the offsets of the near-surface points."""
    lr: float = 1e-3
    seed: int = 0
    eval_shapes: int = 40
    """Held-out shapes per family."""
    eval_views: int = 2
    render_size: int = 192
    """Side (pixels) of the rendered training views before cropping."""
    surface_samples: int = 2048
    """Surface points stored per shape."""
    calibration_shapes: int = 30
    """Validation shapes per family (one view each) the surface threshold is calibrated on."""
    iou_points: int = 100_000
    """Uniform points in the padded cube that volumetric IoU is counted on (ONet: 100k)."""
    init: str = ''
    """Weights (a recon.pt) to continue training from; empty: random initialisation."""
    mirror: bool = False
    """Show half the images mirrored left to right, with the labelled points mirrored in x."""
    add_encoder_blocks: int = 0
    """Residual blocks added after each middle encoder stage before training (identities at
    first, so an `init` network starts from what it computed)."""
    bf16: bool = False
    """Run forward and backward passes under bfloat16 autocast (the weights and Adam stay
    float32): about twice as fast on CPUs with native bfloat16 (AVX512-BF16, AMX)."""
    chair_weight: float = CHAIR_WEIGHT
    """How many times as often as each other family a training shape is a chair."""


@dataclass
class Dataset:
    """Preprocessed views and the exact occupancy of the shapes they show."""

    images: np.ndarray
    """(N, S, S, 3) uint8 network inputs."""
    shape_index: np.ndarray
    """(N,) which shape each image shows."""
    parts: np.ndarray
    """(M, K, 16) float32 canonical-frame parts of each shape, padded."""
    valid: np.ndarray
    """(M, K) bool: which parts rows are real."""
    surface: np.ndarray
    """(M, P, 3) float32 canonical surface samples."""
    kinds: list[str] = field(default_factory=list)
    """Family of each shape."""
    shapes: list[Shape] = field(default_factory=list)
    azimuth: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """(N,) azimuth (rad) of the camera around the object's z axis in each image."""


# ----------------------------------------------------------------------------------------------
# data


def render_view(shape_mesh, rng: np.random.Generator, size: int = 192, tries: int = 20
                ) -> tuple[np.ndarray, np.ndarray, float]:
    """Render the mesh (object frame, on z = 0) from a random robot-like viewpoint.

    Returns rgb (size, size, 3) uint8, the boolean mask and the camera's azimuth (rad) around
    the object's z axis; the object is wholly inside the image and covers at least 300
    pixels. Colour, light and texture are random.
    """
    f = size / 2 / np.tan(np.deg2rad(30))
    cam = PinholeCamera(f, f, (size - 1) / 2, (size - 1) / 2, size, size)
    lo, hi = shape_mesh.vertices.min(0), shape_mesh.vertices.max(0)
    centre, radius = (lo + hi) / 2, float(np.linalg.norm(hi - lo)) / 2
    for _ in range(tries):
        az, el = rng.uniform(0, 2 * np.pi), np.deg2rad(rng.uniform(3, 55))
        dist = radius / np.sin(np.deg2rad(30)) * rng.uniform(1.0, 2.2)
        eye = centre + dist * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az),
                                        np.sin(el)])
        T = look_at(eye, centre + rng.normal(0, 0.1 * radius, 3))
        T[:3, :3] = T[:3, :3] @ from_rotvec(np.array([0, 0, np.deg2rad(rng.normal(0, 5))]))
        grey = rng.uniform() < 0.3
        colour = np.full(3, rng.uniform(0.15, 0.9)) if grey else rng.uniform(0.1, 0.9, 3)
        light_az, light_el = rng.uniform(0, 2 * np.pi), np.deg2rad(rng.uniform(25, 85))
        settings = RenderSettings(
            light_dir=(np.cos(light_el) * np.cos(light_az), np.cos(light_el) * np.sin(light_az),
                       np.sin(light_el)),
            ambient=rng.uniform(0.25, 0.6), cell_contrast=rng.uniform(0.0, 0.45),
            cell_size=rng.uniform(0.02, 0.07))
        scene = Scene([SceneObject('object', 1, shape_mesh, np.eye(4), tuple(colour))])
        rgb, labels = render_frame(scene, cam, T, settings)
        mask = labels == 1
        border = mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()
        if mask.sum() >= 300 and not border:
            return rgb, mask, float(az)
    raise RuntimeError('could not find a view that shows the whole object')


def to_network_input(rgb: np.ndarray, mask: np.ndarray, size: int) -> np.ndarray:
    """Return the (size, size, 3) uint8 network input, as `preprocess` makes it at run time."""
    x = preprocess(rgb, mask, size=size)[0].permute(1, 2, 0).numpy()
    return np.round(x * 255).astype(np.uint8)


def build_dataset(n_shapes: int, views: int, seed: int, image_size: int,
                  render_size: int = 192, surface_samples: int = 2048,
                  kinds: tuple[str, ...] = KINDS, progress: Progress | None = None,
                  stage: str = 'data', chair_weight: float = CHAIR_WEIGHT) -> Dataset:
    """Generate `n_shapes` shapes (seeds seed, seed + 1, ...) and `views` views of each.

    A shape is one of `kinds`, a chair `chair_weight` times as often as each other family.
    """
    images, index, parts, surface, shape_kinds, shapes, azimuth = [], [], [], [], [], [], []
    for i in range(n_shapes):
        rng = np.random.default_rng(seed + i)
        shape = random_shape(rng, kinds, chair_weight)
        mesh = shape.mesh()
        bounds = np.stack([mesh.vertices.min(0), mesh.vertices.max(0)])
        for _ in range(views):
            rgb, mask, az = render_view(mesh, rng, render_size)
            images.append(to_network_input(rgb, mask, image_size))
            index.append(i)
            azimuth.append(az)
        parts.append(parts_to_canonical(shape, bounds).astype(np.float32))
        pts, _ = trimesh.sample.sample_surface(mesh.to_trimesh(), surface_samples, seed=seed + i)
        surface.append(to_canonical(pts, bounds).astype(np.float32))
        shape_kinds.append(shape.kind)
        shapes.append(shape)
        if progress:
            progress(stage, i + 1, n_shapes, '')
    k = max(len(p) for p in parts)
    padded = np.zeros((n_shapes, k, 16), np.float32)
    valid = np.zeros((n_shapes, k), bool)
    for i, p in enumerate(parts):
        padded[i, :len(p)] = p
        valid[i, :len(p)] = True
    return Dataset(np.stack(images), np.asarray(index), padded, valid, np.stack(surface),
                   shape_kinds, shapes, np.asarray(azimuth))


def sample_points(data: Dataset, shape_index: np.ndarray, n_points: int, noise: float,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Training points (B, n, 3) and their exact occupancy (B, n) float for these shapes."""
    b = len(shape_index)
    half = 1 + PADDING
    uniform = (torch.rand(b, n_points // 2, 3, generator=generator) - 0.5) * half
    surf = torch.from_numpy(data.surface[shape_index])
    pick = torch.randint(surf.shape[1], (b, n_points - n_points // 2), generator=generator)
    near = torch.gather(surf, 1, pick[..., None].expand(-1, -1, 3))
    near = near + noise * torch.randn(near.shape, generator=generator)
    points = torch.cat([uniform, near], 1)
    occ = occupancy(points, torch.from_numpy(data.parts[shape_index]),
                    torch.from_numpy(data.valid[shape_index]))
    return points, occ.float()


def images_tensor(images: np.ndarray) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float in [0, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)


# ----------------------------------------------------------------------------------------------
# training


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX).

    Without, torch emulates it: `TrainConfig.bf16` then makes a training step many times
    slower instead of about twice as fast (`make bench` measured 14x slower on an AVX2 CPU).
    """
    checks = [getattr(torch.cpu, name, None) for name in
              ('_is_avx512_bf16_supported', '_is_amx_tile_supported')]
    return any(check() for check in checks if check is not None)


def mirror_half(images: torch.Tensor, points: torch.Tensor, generator: torch.Generator
                ) -> torch.Tensor:
    """Mirror a random half of the views left to right, and their points in x; return which.

    A mirrored view shows the mirrored object. Its canonical frame keeps +y up and the back
    towards -z, so it is the object mirrored in canonical x: the points' labels stay. In place
    on images (B, 3, S, S) and points (B, N, 3).
    """
    flip = torch.rand(len(images), generator=generator) < 0.5
    images[flip] = images[flip].flip(-1)
    points[flip, :, 0] = -points[flip, :, 0]
    return flip


def train(net: CompactOccupancyNetwork, data: Dataset, cfg: TrainConfig,
          progress: Progress | None = None) -> list[float]:
    """Optimise `net` on `data`; return the loss of every step."""
    generator = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.iterations, cfg.lr * 0.02)
    net.train()
    losses = []
    for it in range(cfg.iterations):
        idx = rng.integers(len(data.images), size=cfg.batch_size)
        points, occ = sample_points(data, data.shape_index[idx], cfg.points, cfg.surface_noise,
                                    generator)
        images = images_tensor(data.images[idx])
        if cfg.mirror:
            mirror_half(images, points, generator)
        with torch.autocast(net.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            logits = net(points, images)
        loss = F.binary_cross_entropy_with_logits(logits.float(), occ)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if progress:
            progress('train', it + 1, cfg.iterations, f'loss {np.mean(losses[-50:]):.4f}')
    net.eval()
    return losses


# ----------------------------------------------------------------------------------------------
# evaluation


def volumetric_iou(net: OccupancyNetworkBase, images: torch.Tensor, parts: np.ndarray,
                   valid: np.ndarray, n_points: int = 100_000, seed: int = 0,
                   levels=None) -> np.ndarray:
    """IoU (B,) of predicted and true occupancy on uniform points in the padded cube."""
    with torch.no_grad():
        codes = [net.encode(images[i:i + 1].to(net.device)) for i in range(len(images))]
    return code_iou(net, codes, parts, valid, n_points, seed, levels)


def code_iou(net: OccupancyNetworkBase, codes, parts: np.ndarray, valid: np.ndarray,
             n_points: int = 100_000, seed: int = 0, levels=None) -> np.ndarray:
    """IoU (B,) of the shapes of codes (each (1, c_dim) or (c_dim,)) and the true parts.

    The predicted surface of each is at its entry of `levels` (B,), by default at the
    network's `threshold`.
    """
    levels = np.broadcast_to(net.threshold if levels is None else levels, (len(codes),))
    unique, column = np.unique(levels, return_inverse=True)
    iou = iou_by_threshold(net, codes, parts, valid, unique.tolist(), n_points, seed)
    return iou[np.arange(len(codes)), column]


def iou_by_threshold(net: OccupancyNetworkBase, codes, parts: np.ndarray, valid: np.ndarray,
                     thresholds, n_points: int = 100_000, seed: int = 0) -> np.ndarray:
    """IoU (B, T) of the shapes of codes and the true parts, the surface at each threshold."""
    g = torch.Generator().manual_seed(seed)
    points = (torch.rand(1, n_points, 3, generator=g) - 0.5) * (1 + PADDING)
    levels = torch.tensor([logit(t) for t in thresholds])
    out = []
    with torch.no_grad():
        for i, c in enumerate(codes):
            c = torch.as_tensor(c, dtype=torch.float32).reshape(1, -1).to(net.device)
            pred = net.decode(points.to(net.device), c)[0].cpu()[None] >= levels[:, None]
            true = occupancy(points, torch.from_numpy(parts[i:i + 1]),
                             torch.from_numpy(valid[i:i + 1]))
            inter, union = (pred & true).sum(1), (pred | true).sum(1)
            out.append(torch.where(union > 0, inter / union.clamp_min(1), 1.0).numpy())
    return np.asarray(out, dtype=np.float64).reshape(len(codes), len(thresholds))


def calibrate_threshold(net: OccupancyNetworkBase, datasets: list[Dataset],
                        thresholds=CALIBRATION_THRESHOLDS, n_points: int = 100_000) -> dict:
    """Find the surface threshold with the best IoU on validation data; set `net.threshold`.

    The families count equally: the threshold maximises the mean over families of their mean
    IoU. Each family's best level up to that one becomes its entry of `net.family_thresholds`
    (a higher level thins the shape: on held-out stools 0.65 gained 0.01 IoU over 0.55 and
    lost their legs, Chamfer-L1 0.057 -> 0.093; a lower one thickens it). Returns
    {'value', 'thresholds', 'iou' (mean per threshold), 'per_family' (IoU per threshold),
    'family_values' (the best level per family), 'shapes'}.
    """
    iou, kinds = [], []
    for data in datasets:
        iou.append(iou_by_threshold(net, list(encode_all(net, data)),
                                    data.parts[data.shape_index],
                                    data.valid[data.shape_index], thresholds, n_points))
        kinds += [str(data.kinds[s]) for s in data.shape_index]
    iou, kinds = np.concatenate(iou), np.asarray(kinds)
    per_family = {str(kind): iou[kinds == kind].mean(0) for kind in sorted(set(kinds))}
    mean = np.mean(list(per_family.values()), axis=0)
    net.threshold = float(thresholds[int(np.argmax(mean))])
    levels = np.asarray(thresholds, dtype=float)
    allowed = levels <= net.threshold
    net.family_thresholds = {k: float(levels[allowed][int(np.argmax(v[allowed]))])
                             for k, v in per_family.items()}
    return {'value': net.threshold, 'thresholds': [float(t) for t in thresholds],
            'iou': mean.tolist(), 'per_family': {k: v.tolist() for k, v in per_family.items()},
            'family_values': dict(net.family_thresholds),
            'shapes': int(sum(len(np.unique(d.shape_index)) for d in datasets))}


def true_mesh(parts: np.ndarray, valid: np.ndarray, resolution: int = 128):
    """Mesh the exact solid (canonical frame) by marching cubes on its occupancy grid."""
    r = (np.arange(resolution + 1) / resolution - 0.5) * (1 + PADDING)
    grid = torch.from_numpy(np.stack(np.meshgrid(r, r, r, indexing='ij'), -1)
                            .reshape(1, -1, 3).astype(np.float32))
    occ = occupancy(grid, torch.from_numpy(parts[None]), torch.from_numpy(valid[None]))[0]
    values = np.where(occ.numpy(), 10.0, -10.0).reshape((resolution + 1,) * 3)
    return grid_to_mesh(values, 0.5, PADDING)


def chamfer_l1(a, b, n: int = 10_000, seed: int = 0) -> float:
    """ONet's Chamfer-L1: mean of accuracy and completeness over surface samples of a and b."""
    from scipy.spatial import cKDTree
    pa, _ = trimesh.sample.sample_surface(a.to_trimesh(), n, seed=seed)
    pb, _ = trimesh.sample.sample_surface(b.to_trimesh(), n, seed=seed + 1)
    accuracy = cKDTree(pb).query(pa)[0].mean()
    completeness = cKDTree(pa).query(pb)[0].mean()
    return float(0.5 * (accuracy + completeness))


def evaluate(net: OccupancyNetworkBase, data: Dataset, chamfer: bool = True,
             progress: Progress | None = None, n_points: int = 100_000) -> dict:
    """Held-out figures per family and overall: IoU and Chamfer-L1, mean and median.

    The surface of a shape is at its family's level (`surface_level`). For a network that
    reconstruction runs mirror-averaged (`mirror_averaged`), the IoU of that ensemble too
    (`mirror_iou_mean`, `mirror_iou_median`).
    """
    images = images_tensor(data.images)
    idx = data.shape_index
    kinds = np.asarray([data.kinds[s] for s in idx])
    levels = np.asarray([net.surface_level(kind) for kind in kinds])
    iou = volumetric_iou(net, images, data.parts[idx], data.valid[idx], n_points, levels=levels)
    averaged = mirror_averaged(net)
    mirror_iou = (volumetric_iou(averaged, images, data.parts[idx], data.valid[idx], n_points,
                                 levels=levels) if averaged is not net else None)
    cd = np.full(len(images), np.nan)
    if chamfer:
        truth = {}
        for j in range(len(images)):
            s = int(idx[j])
            if s not in truth:
                truth[s] = true_mesh(data.parts[s], data.valid[s])
            try:
                pred = net.generate_mesh(images[j:j + 1], float(levels[j]), upsampling_steps=1)
                cd[j] = chamfer_l1(pred, truth[s])
            except ValueError:  # no surface predicted at all
                cd[j] = np.inf
            if progress:
                progress('eval', j + 1, len(images), '')
    report = {}
    for kind in ['all'] + sorted(set(kinds)):
        sel = np.ones(len(kinds), bool) if kind == 'all' else kinds == kind
        report[kind] = {'views': int(sel.sum()), 'shapes': int(len(set(idx[sel]))),
                        'threshold': (float(levels[sel][0]) if len(set(levels[sel])) == 1
                                      else None),
                        'iou_mean': float(iou[sel].mean()),
                        'iou_median': float(np.median(iou[sel])),
                        'chamfer_l1_mean': float(np.mean(cd[sel])) if chamfer else None,
                        'chamfer_l1_median': float(np.median(cd[sel])) if chamfer else None}
        if mirror_iou is not None:
            report[kind].update(mirror_iou_mean=float(mirror_iou[sel].mean()),
                                mirror_iou_median=float(np.median(mirror_iou[sel])))
    return report


# ----------------------------------------------------------------------------------------------
# the whole run


def train_and_export(cfg: TrainConfig, out_dir: str | Path, progress: Progress | None = None
                     ) -> dict:
    """Generate data, train, evaluate held-out shapes, export to `out_dir`; return the report."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    net, earlier = CompactOccupancyNetwork(), []
    if cfg.init:
        start = read_checkpoint(cfg.init, 'cpu')
        net = CompactOccupancyNetwork.from_checkpoint_dict(start, cfg.init)
        earlier = _earlier_runs(start.get('report', {}))
    if cfg.add_encoder_blocks:
        net = net.with_encoder_blocks(cfg.add_encoder_blocks)
    t0 = time.perf_counter()
    data = build_dataset(cfg.shapes, cfg.views, cfg.seed, net.image_size, cfg.render_size,
                         cfg.surface_samples, progress=progress, chair_weight=cfg.chair_weight)
    t1 = time.perf_counter()
    losses = train(net, data, cfg, progress)
    head = fit_viewpoint_head(net, data)
    t2 = time.perf_counter()
    del data
    threshold = calibrate(net, cfg, progress)
    held_out, viewpoint = evaluate_held_out(net, cfg, head, progress)
    t3 = time.perf_counter()
    report = {'held_out': held_out, 'viewpoint': viewpoint, 'threshold': threshold,
              'held_out_iou_mean': float(np.mean([v['iou_mean'] for v in held_out.values()])),
              'seconds': {'data': t1 - t0, 'train': t2 - t1, 'eval': t3 - t2},
              'final_loss': float(np.mean(losses[-100:])),
              'parameters': sum(p.numel() for p in net.parameters()),
              'config': asdict(cfg), 'torch_threads': torch.get_num_threads()}
    report['training_runs'] = earlier + [_run_summary(report)]
    torch.save(net.checkpoint(report=report, viewpoint=head.checkpoint()), out / 'recon.pt')
    (out / 'eval.json').write_text(json.dumps(report, indent=2) + '\n')
    np.savetxt(out / 'loss.txt', np.asarray(losses), fmt='%.5f')
    plot_losses(losses, out / 'loss.png')
    (out / 'MODEL_CARD.md').write_text(model_card(report, (out / 'recon.pt').stat().st_size,
                                                  net.config))
    return report


def calibrate(net: OccupancyNetworkBase, cfg: TrainConfig, progress: Progress | None = None
              ) -> dict:
    """Calibrate `net.threshold` on `cfg.calibration_shapes` validation shapes per family."""
    n = cfg.calibration_shapes
    return calibrate_threshold(net, [
        build_dataset(n, 1, cfg.seed + VALIDATION_SEED_OFFSET + k * n, net.image_size,
                      cfg.render_size, surface_samples=16, kinds=(kind,), progress=progress,
                      stage=f'validation {kind}s')
        for k, kind in enumerate(KINDS)], n_points=cfg.iou_points)


def evaluate_held_out(net: OccupancyNetworkBase, cfg: TrainConfig, head: ViewpointHead | None,
                      progress: Progress | None = None) -> tuple[dict, dict]:
    """Held-out figures per family (`evaluate`) and, with a head, its viewpoint figures."""
    held_out, viewpoint = {}, {}
    for k, kind in enumerate(KINDS):
        held = build_dataset(cfg.eval_shapes, cfg.eval_views,
                             cfg.seed + EVAL_SEED_OFFSET + k * cfg.eval_shapes, net.image_size,
                             cfg.render_size, cfg.surface_samples, kinds=(kind,),
                             progress=progress, stage=f'held-out {kind}s')
        held_out[kind] = evaluate(net, held, progress=progress, n_points=cfg.iou_points)[kind]
        if head is not None:
            viewpoint[kind] = evaluate_viewpoint_head(head, encode_all(net, held), held.azimuth)
    return held_out, viewpoint


def calibrate_and_export(weights: str | Path, out: str | Path, shapes: int = 30,
                         progress: Progress | None = None, iou_points: int | None = None
                         ) -> dict:
    """Calibrate the surface threshold of trained compact weights (`rrb calibrate-recon`).

    Validation shapes (`shapes` per family, one view each, seeds of their own), then the
    held-out evaluation of the weights' report again at the new threshold. Writes the weights
    with the threshold to `out` and the model card beside it; returns the report. IoU is
    counted on `iou_points` points (default: as in the weights' report).
    """
    data = read_checkpoint(weights, 'cpu')
    net = CompactOccupancyNetwork.from_checkpoint_dict(data, str(weights))
    report = dict(data.get('report', {}))
    known = TrainConfig.__dataclass_fields__
    cfg = TrainConfig(**{**{k: v for k, v in report.get('config', {}).items() if k in known},
                         'calibration_shapes': shapes})
    if iou_points is not None:
        cfg.iou_points = iou_points
    report['threshold'] = calibrate(net, cfg, progress)
    report['held_out'] = evaluate_held_out(net, cfg, None, progress)[0]
    report['held_out_iou_mean'] = float(np.mean([v['iou_mean']
                                                 for v in report['held_out'].values()]))
    report['config'] = asdict(cfg)
    report['training_runs'] = _earlier_runs(report)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**data, 'threshold': net.threshold,
                'family_thresholds': dict(net.family_thresholds), 'report': report}, out)
    if 'seconds' in report:  # the weights came from `train_and_export`
        (out.parent / 'MODEL_CARD.md').write_text(model_card(report, out.stat().st_size,
                                                             net.config))
    return report


def encode_all(net: OccupancyNetworkBase, data: Dataset, batch: int = 64) -> torch.Tensor:
    """Codes (N, c_dim) of all images of a dataset (the network's mode is left as it was)."""
    with net.evaluating(), torch.no_grad():
        return torch.cat([net.encode(images_tensor(data.images[i:i + batch]).to(net.device))
                          for i in range(0, len(data.images), batch)]).cpu()


def fit_viewpoint_head(net: OccupancyNetworkBase, data: Dataset) -> ViewpointHead:
    """Train the viewpoint head on the frozen codes of a dataset's views."""
    return train_viewpoint_head(encode_all(net, data), data.azimuth)


def train_viewpoint_and_export(weights: str | Path, out: str | Path, shapes: int = 6000,
                               views: int = 4, seed: int = 20_000, eval_shapes: int = 40,
                               progress: Progress | None = None) -> dict:
    """Add a viewpoint head to trained compact weights (`rrb train-viewpoint`).

    Renders `views` views of `shapes` new shapes, trains the head on the network's codes,
    evaluates it per family on held-out shapes (2 views each) and writes the weights with the
    head to `out` and the model card beside it. Returns the viewpoint report.
    """
    data = read_checkpoint(weights, 'cpu')
    net = CompactOccupancyNetwork.from_checkpoint_dict(data, str(weights))
    t0 = time.perf_counter()
    train_set = build_dataset(shapes, views, seed, net.image_size, surface_samples=16,
                              progress=progress, stage='viewpoint data')
    head = fit_viewpoint_head(net, train_set)
    t1 = time.perf_counter()
    held_out = {}
    for k, kind in enumerate(KINDS):
        held = build_dataset(eval_shapes, 2, seed + EVAL_SEED_OFFSET + k * eval_shapes,
                             net.image_size, surface_samples=16, kinds=(kind,),
                             progress=progress, stage=f'held-out {kind}s')
        held_out[kind] = evaluate_viewpoint_head(head, encode_all(net, held), held.azimuth)
    report = dict(data.get('report', {}))
    if report:
        report['training_runs'] = _earlier_runs(report)
    report['viewpoint'] = held_out
    report['viewpoint_training'] = {'shapes': shapes, 'views': views, 'seed': seed,
                                    'minutes': (t1 - t0) / 60}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**data, 'report': report, 'viewpoint': head.checkpoint()}, out)
    if 'held_out' in report and 'config' in report:
        (out.parent / 'MODEL_CARD.md').write_text(model_card(report, out.stat().st_size,
                                                             net.config))
    return held_out


def _earlier_runs(report: dict) -> list[dict]:
    """Return the run summaries of a stored report, filled in where older ones lack a field."""
    runs = report.get('training_runs', [_run_summary(report)] if report else [])
    # summaries written before a field existed: that run used its default
    return [{**_run_summary({'config': asdict(TrainConfig())}), **r} for r in runs]


def _run_summary(report: dict) -> dict:
    """Summarise one `train_and_export` run (data, steps, batch, minutes) for the model card."""
    cfg = report.get('config', {})
    return {'shapes': cfg.get('shapes'), 'views': cfg.get('views'),
            'iterations': cfg.get('iterations'), 'batch_size': cfg.get('batch_size'),
            'lr': cfg.get('lr'), 'seed': cfg.get('seed'), 'mirror': cfg.get('mirror'),
            'add_encoder_blocks': cfg.get('add_encoder_blocks'), 'bf16': cfg.get('bf16'),
            'chair_weight': cfg.get('chair_weight'),
            'train_minutes': report.get('seconds', {}).get('train', 0) / 60}


def plot_losses(losses: list[float], path: Path) -> None:
    """Training loss per step and its running mean."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    loss = np.asarray(losses)
    k = max(1, min(100, len(loss) // 20))
    smooth = np.convolve(loss, np.ones(k) / k, mode='valid')
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(loss, color='0.8', lw=0.5, label='per step')
    ax.plot(np.arange(k - 1, len(loss)), smooth, color='C0', label=f'mean of {k}')
    ax.set_xlabel('step')
    ax.set_ylabel('binary cross-entropy')
    ax.set_yscale('log')
    ax.set_title('rrb train-recon: training loss')
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _viewpoint_section(report: dict) -> str:
    """Model card paragraph of the viewpoint head ('' when the weights have none)."""
    if not report.get('viewpoint'):
        return ''
    rows = '\n'.join(
        f"| {kind} | {v['median_error_deg']:.1f} | {v['within_30deg']:.2f} | "
        f"{v['front_back_correct']:.2f} | {v['confidently_wrong']:.2f} |"
        for kind, v in report['viewpoint'].items())
    t = report.get('viewpoint_training')
    how = (f"{t['shapes']} new shapes x {t['views']} views (seed {t['seed']}), "
           f"{t['minutes']:.0f} min, `rrb train-viewpoint --shapes {t['shapes']} --views "
           f"{t['views']} --seed {t['seed']}`" if t else 'the training views of the last run')
    return f"""
**Viewpoint head.** A small MLP on the frozen code predicts the camera's azimuth around the
object (24 classes of 15 deg), the coarse viewpoint that breaks the front/back tie of
silhouette fits (`viewpoint.py`). Trained on {how}.
Held-out shapes, 2 views each: median error of the most likely class, share within 30 deg,
share whose true half circle gets more than half of the probability (front told from back),
share where it gets less than a quarter (confidently wrong).

| family | median error (deg) | within 30 deg | front/back correct | confidently wrong |
|---|---|---|---|---|
{rows}

Stools and tables look alike from several sides, so the head spreads its probability there.
"""


def _threshold_section(report: dict) -> str:
    """Model card paragraph of the calibrated surface threshold ('' before calibration)."""
    t = report.get('threshold')
    if not t:
        return ''
    families = t.get('family_values')
    rows = ''.join(f"| {kind} | {' | '.join(f'{v:.3f}' for v in curve)} |\n"
                   for kind, curve in (t['per_family'].items() if families else ()))
    table = (f"| threshold | {' | '.join(f'{th:.2f}' for th in t['thresholds'])} |\n"
             f"|---|{'---|' * len(t['thresholds'])}\n{rows}"
             f"| mean IoU | {' | '.join(f'{v:.3f}' for v in t['iou'])} |\n")
    if not families:
        return f"""
The surface threshold, {t['value']:.2f}, was calibrated on {t['shapes']} validation shapes (one
view each, equal numbers per family, seeds neither trained on nor held out), as ONet chose 0.2
for its network: it gives the best mean IoU over the families there.

{table}"""
    levels = ', '.join(f'{kind} {v:.2f}' for kind, v in families.items())
    return f"""
The surface thresholds were calibrated on {t['shapes']} validation shapes (one view each, equal
numbers per family, seeds neither trained on nor held out), as ONet chose 0.2 for its network:
{t['value']:.2f} gives the best mean IoU over the families there, and each family takes its own
best level up to that one (a higher level thins the shape; stools lost their legs):
{levels}. Reconstruction takes the family from the object's name (`surface_level`: 'chair',
'office_chair'), other objects take {t['value']:.2f}; the held-out figures below are at each
family's level.

{table}"""


def _residual_blocks(n: int, text: str) -> str:
    """'N residual block(s)' followed by `text`; '' when n is 0."""
    return f"{n} residual block{'s' if n > 1 else ''}{text}" if n else ''


def _chairs(weight: float) -> str:
    """Card text of a run's chair weight ('' for the default, chairs twice as often)."""
    return '' if weight == TrainConfig.chair_weight else f'chairs {weight:g} times as often, '


def model_card(report: dict, weights_bytes: int, network: dict) -> str:
    """Return the model card (Markdown) of a trained network of architecture `network`."""
    cfg = report['config']
    threshold = report.get('threshold', {}).get('value', DEFAULT_THRESHOLD)
    surface = ("each family's calibrated probability (below)"
               if report.get('threshold', {}).get('family_values') else f'probability {threshold}')
    n = cfg.get('iou_points', TrainConfig.iou_points)
    iou_points = f'{n // 1000}k' if n % 1000 == 0 else str(n)
    s = report['seconds']
    mirror = all('mirror_iou_mean' in v for v in report['held_out'].values())
    rows = '\n'.join(
        f"| {kind} | {v['shapes']} | {v['views']} | {v['iou_mean']:.3f} | {v['iou_median']:.3f} "
        f"| {v['chamfer_l1_mean']:.4f} | {v['chamfer_l1_median']:.4f} |" +
        (f" {v['mirror_iou_mean']:.3f} | {v['mirror_iou_median']:.3f} |" if mirror else '')
        for kind, v in report['held_out'].items())
    header = ('| family | shapes | views | IoU mean | IoU median | Chamfer-L1 mean | '
              'Chamfer-L1 median |' + (' mirror-averaged IoU mean | median |' if mirror else '')
              + '\n|' + '---|' * (9 if mirror else 7))
    mirror_text = (
        '\nThe last two columns are what reconstruction gives by default: the network looks at '
        'the\nimage and at the image turned left to right, and the two occupancy fields are '
        'averaged\n(`mirror.py`, `mirror_average`).\n' if mirror else '')
    runs_list = report.get('training_runs') or [_run_summary(report)]
    runs = ' '.join(
        f"Run {i + 1}: {r['iterations']} steps, batch {r['batch_size']}, lr {r['lr']}, "
        f"{'half the images mirrored, ' if r['mirror'] else ''}"
        f"{_residual_blocks(r['add_encoder_blocks'], ' added per middle encoder stage, ')}"
        f"{'bfloat16 autocast, ' if r['bf16'] else ''}"
        f"{_chairs(r['chair_weight'])}"
        f"{r['train_minutes']:.0f} min"
        f"{' (continued from run ' + str(i) + ')' if i else ''}."
        for i, r in enumerate(runs_list))
    seeds = ', '.join(f"{r['seed']}..{r['seed'] + r['shapes'] - 1}" for r in runs_list)
    groups = []  # (views, first run, last run) of consecutive runs
    for i, r in enumerate(runs_list, 1):
        if groups and groups[-1][0] == r['views']:
            groups[-1][2] = i
        else:
            groups.append([r['views'], i, i])
    views = (str(groups[0][0]) if len(groups) == 1 else ' or '.join(
        f"{v} (run{f's {a}-{b}' if b > a else f' {a}'})" for v, a, b in groups))
    reproduce = ', then '.join(
        '`rrb train-recon' + ('' if i == 0 else ' --init build/train-recon/recon.pt') +
        ''.join(f" --{k.replace('_', '-')}" + ('' if isinstance(r[k], bool) else f' {r[k]}')
                for k in ('shapes', 'views', 'iterations', 'lr', 'seed', 'mirror',
                          'add_encoder_blocks', 'bf16', 'chair_weight')
                if r[k] != getattr(TrainConfig, k)) + '`'
        for i, r in enumerate(runs_list))
    net = {**DEFAULT_CONFIG, **network}
    residual = _residual_blocks(net['encoder_blocks'],
                                f" after each of the {len(net['channels']) - 2} middle stages")
    residual = f' ({residual})' if residual else ''
    return f"""# Model card: rrb_ros embedded reconstruction network

**What it is.** A compact single-image Occupancy Network
(`rrb_ros.core.reconstruct.CompactOccupancyNetwork`): a {len(net['channels'])}-stage convolutional
encoder{residual}
on {net['image_size']} x {net['image_size']} crops (white background outside the mask), code size
{net['c_dim']}, and ONet's conditional-BatchNorm ResNet decoder ({net['n_blocks']} blocks,
{net['hidden_size']} wide). {report['parameters']:,} parameters, stored as float16
({weights_bytes / 1e6:.1f} MB). Output: occupancy logits in ONet's canonical frame (object
centred in the unit cube, longest side 1, +y up, backs of chairs and sofas towards -z).

**Intended use.** Shapes of furniture-like objects seen by a robot, for silhouette pose
fitting when no CAD model exists. Not a general-purpose reconstructor: it has seen only the
procedural families below, rendered by the project's synthetic renderer.

**Training data.** {sum(r['shapes'] for r in runs_list)} procedural shapes
(`shapes.random_shape`, seeds {seeds}): chairs (four legs, pedestal or sled; panel,
slatted or railed backs, tilted; optional arms), stools, tables and sofas (chairs twice as
often as each other family unless a run below says otherwise); {views}
views each at random azimuth, elevation 3-55 deg, distance, roll, colour, light and texture.
Labels: exact occupancy of the solid parts at {cfg['points'] // 2} uniform and
{cfg['points'] - cfg['points'] // 2} near-surface points per image and step.

**Training.** Adam with cosine decay, binary cross-entropy; CPU only,
{report['torch_threads']} threads. {runs}
Last run: data {s['data'] / 60:.1f} min, training {s['train'] / 60:.1f} min, evaluation
{s['eval'] / 60:.1f} min. Final training loss {report['final_loss']:.4f}.
Reproduce with {reproduce}.

**Held-out evaluation.** {cfg['eval_shapes']} shapes per family from seeds never used in
training, {cfg['eval_views']} new random views each. IoU: volumetric, {iou_points} uniform
points in the padded cube, surface at {surface}. Chamfer-L1: mean of accuracy
and completeness over 10k surface samples, canonical units (longest side 1), mesh from MISE.
{_threshold_section(report)}
{header}
{rows}
{mirror_text}
For scale: ONet img2mesh on ShapeNet chairs reports IoU about 0.50; this is an easier, closed
family, so the figures do not compare like for like.
{_viewpoint_section(report)}
**At run time.** The figures above are the network's: the codes its encoder gives.
The reconstruction pipeline (`ObjectReconstructor`) can then refine the code and the fitted
pose together until the silhouette of the field matches the mask (`refine.py`, the weights
frozen; `refine_iterations`, off by default); `make bench` reports held-out chairs' IoU with
and without that step.

**Limits.** Trained on clean masks of whole, unoccluded objects; thin parts thinner than about
two pixels of the crop are lost; colours and lighting of the real world differ from the
renderer's; scale is not predicted (it comes from the ground plane).
"""
