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

"""`rrb train-viewpoint`: add the viewpoint head to trained reconstruction weights.

    rrb train-viewpoint [--weights PATH] [--out PATH] [--shapes N] [--views N] [--install]

Renders new procedural shapes, trains the head that predicts the camera's azimuth around the
object from the network's image code (it tells a chair's front from its back where the
silhouette cannot), evaluates it on held-out shapes and writes the weights with the head to
PATH (and the model card beside it). `--install` writes them into the package (rrb_ros/data).
`rrb train-recon` trains the head too; this adds it to weights trained without one.
"""

from __future__ import annotations

import argparse

import torch


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `rrb train-viewpoint`."""
    p = sub.add_parser('train-viewpoint', help='train the viewpoint head of the reconstruction '
                       'network', description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--weights', default='', help='compact network weights (default: the '
                   'shipped ones)')
    p.add_argument('--out', default='build/train-viewpoint/recon.pt',
                   help='output weights (default: %(default)s)')
    p.add_argument('--shapes', type=int, default=6000, help='training shapes (default: '
                   '%(default)s)')
    p.add_argument('--views', type=int, default=4, help='views per shape (default: %(default)s)')
    p.add_argument('--seed', type=int, default=20_000, help='first shape seed (default: '
                   '%(default)s; the occupancy training used lower ones)')
    p.add_argument('--eval-shapes', type=int, default=40, help='held-out shapes per family '
                   '(default: %(default)s)')
    p.add_argument('--threads', type=int, default=0, help='torch threads (default: all cores)')
    p.add_argument('--install', action='store_true', help='write into rrb_ros/data')
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Execute `rrb train-viewpoint`."""
    from rrb_ros.core.reconstruct.compact import default_weights_path
    from rrb_ros.core.reconstruct.train import train_viewpoint_and_export

    from .train_recon_cmd import _Progress
    for name in ('shapes', 'views', 'eval_shapes'):
        if getattr(args, name) < 1:
            raise ValueError(f'--{name.replace("_", "-")} must be >= 1')
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    out = default_weights_path() if args.install else args.out
    report = train_viewpoint_and_export(args.weights or default_weights_path(), out,
                                        args.shapes, args.views, args.seed, args.eval_shapes,
                                        _Progress('rrb train-viewpoint'))
    for kind, v in report.items():
        print(f"{kind:6s}: median azimuth error {v['median_error_deg']:.1f} deg, front/back "
              f"correct {v['front_back_correct']:.2f}, confidently wrong "
              f"{v['confidently_wrong']:.2f}")
    print(f'wrote {out}')
    return 0
