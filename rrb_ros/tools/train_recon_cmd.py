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

"""`rrb train-recon`: train, evaluate and export the embedded reconstruction network.

    rrb train-recon [--out DIR] [--shapes N] [--iterations N] ... [--install]

Generates procedural furniture, renders it, trains the compact occupancy network, evaluates it
on held-out shapes from unseen views and writes to DIR: recon.pt (float16 weights with the
report), eval.json, loss.txt, loss.png and MODEL_CARD.md. `--install` also copies the weights
and the model card into the package (rrb_ros/data), where `rrb reconstruct` and pose_node find
them. The defaults are the first of the runs that made the shipped network; its model card
(rrb_ros/data/MODEL_CARD.md) lists the commands of all (CPU, about an hour each on 2 cores).
"""

from __future__ import annotations

import argparse
from dataclasses import fields
import shutil
import sys
import time

import torch

from rrb_ros.core.reconstruct.train import TrainConfig

_HELP = {
    'shapes': 'training shapes', 'views': 'rendered views per training shape',
    'iterations': 'training steps', 'batch_size': 'images per step',
    'points': 'labelled points per image and step', 'surface_noise':
    'std of near-surface offsets (canonical units)', 'lr': 'Adam learning rate',
    'seed': 'random seed of shapes, views and training', 'eval_shapes':
    'held-out shapes per family', 'eval_views': 'views per held-out shape',
    'render_size': 'side of the rendered views (pixels)', 'surface_samples':
    'surface points stored per shape', 'calibration_shapes': 'validation shapes per family '
    'the surface threshold is calibrated on', 'iou_points': 'uniform points volumetric IoU is '
    'counted on', 'init': 'weights (recon.pt) to continue training '
    'from; empty: random initialisation', 'mirror': 'show half the images mirrored left to '
    'right (the points mirrored in x)', 'add_encoder_blocks': 'residual blocks added after '
    'each middle encoder stage before training (they start as identities)',
    'bf16': 'bfloat16 autocast in training (about 2x faster on CPUs with AVX512-BF16 or AMX, '
    'many times slower on others)', 'chair_weight': 'a training shape is a chair this many '
    'times as often as each other family',
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `rrb train-recon`."""
    p = sub.add_parser('train-recon', help='train the embedded reconstruction network',
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default='build/train-recon', help='output folder (default: '
                   '%(default)s)')
    for f in fields(TrainConfig):
        kind = ({'action': argparse.BooleanOptionalAction} if isinstance(f.default, bool) else
                {'type': type(f.default)})
        p.add_argument('--' + f.name.replace('_', '-'), default=f.default, **kind,
                       help=f'{_HELP[f.name]} (default: %(default)s)')
    p.add_argument('--threads', type=int, default=0, help='torch threads (default: all cores)')
    p.add_argument('--install', action='store_true',
                   help='copy weights and model card into rrb_ros/data')
    p.set_defaults(run=run)


def add_weights_arguments(p: argparse.ArgumentParser, command: str) -> None:
    """Add --weights, --out, --threads and --install of a command that rewrites weights."""
    p.add_argument('--weights', default='', help='compact network weights (default: the '
                   'shipped ones)')
    p.add_argument('--out', default=f'build/{command}/recon.pt',
                   help='output weights (default: %(default)s)')
    p.add_argument('--threads', type=int, default=0, help='torch threads (default: all cores)')
    p.add_argument('--install', action='store_true', help='write into rrb_ros/data')


def set_threads(args: argparse.Namespace) -> None:
    """Give torch `--threads` threads, when it is positive."""
    if args.threads > 0:
        torch.set_num_threads(args.threads)


def weights_in_out(args: argparse.Namespace) -> tuple[str, str]:
    """Set torch's threads; return the weights to read and the file to write (`--install`)."""
    from rrb_ros.core.reconstruct.compact import default_weights_path
    set_threads(args)
    return (str(args.weights or default_weights_path()),
            str(default_weights_path() if args.install else args.out))


class _Progress:
    def __init__(self, prog: str = 'rrb train-recon') -> None:
        self.prog = prog
        self.last = (None, -1.0)
        self.tty = sys.stderr.isatty()

    def __call__(self, stage: str, done: int, total: int, detail: str) -> None:
        now = time.monotonic()
        if done < total and stage == self.last[0] and now - self.last[1] < (
                0.5 if self.tty else 30.0):
            return
        self.last = (stage, now)
        bar = '#' * int(30 * done / total)
        line = f'{self.prog}: {stage:18s} [{bar:30s}] {done}/{total} {detail}'
        end = '\n' if done == total or not self.tty else ''
        print(('\r' if self.tty else '') + line, end=end, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Execute `rrb train-recon`."""
    from rrb_ros.core.reconstruct.compact import default_weights_path
    from rrb_ros.core.reconstruct.train import native_bf16, train_and_export
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    for name in ('shapes', 'views', 'iterations', 'batch_size', 'eval_shapes', 'eval_views',
                 'calibration_shapes', 'iou_points'):
        if getattr(cfg, name) < 1:
            raise ValueError(f'--{name.replace("_", "-")} must be >= 1')
    if cfg.points < 2:
        raise ValueError('--points must be >= 2')
    if not cfg.chair_weight > 0:
        raise ValueError('--chair-weight must be > 0')
    if cfg.add_encoder_blocks < 0:
        raise ValueError('--add-encoder-blocks must be >= 0')
    set_threads(args)
    if cfg.bf16 and not native_bf16():
        print('rrb train-recon: warning: --bf16 on a CPU without native bfloat16 (AVX512-BF16 '
              'or AMX): each step will be many times slower than in float32', file=sys.stderr)
    report = train_and_export(cfg, args.out, _Progress())
    print_held_out(report)
    print(f'wrote {args.out}/recon.pt, eval.json, loss.png, MODEL_CARD.md')
    if args.install:
        target = default_weights_path()
        shutil.copyfile(f'{args.out}/recon.pt', target)
        shutil.copyfile(f'{args.out}/MODEL_CARD.md', target.parent / 'MODEL_CARD.md')
        print(f'installed {target}')
    return 0


def print_held_out(report: dict) -> None:
    """Print the surface threshold and the held-out figures per family of a report."""
    if report.get('threshold'):
        t = report['threshold']
        families = ', '.join(f'{k} {v:.2f}' for k, v in t.get('family_values', {}).items())
        print(f"surface threshold {t['value']:.2f} (validation IoU {max(t['iou']):.3f} on "
              f"{t['shapes']} shapes)" + (f'; per family: {families}' if families else ''))
    for kind, v in report['held_out'].items():
        mirror = (f", mirror-averaged IoU mean {v['mirror_iou_mean']:.3f}"
                  if 'mirror_iou_mean' in v else '')
        level = f" (surface at {v['threshold']:.2f})" if v.get('threshold') else ''
        print(f"{kind:6s}: held-out IoU mean {v['iou_mean']:.3f} median {v['iou_median']:.3f}, "
              f"Chamfer-L1 mean {v['chamfer_l1_mean']:.4f}{mirror}{level}")
