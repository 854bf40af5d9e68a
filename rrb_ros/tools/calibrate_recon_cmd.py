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

"""`rrb calibrate-recon`: calibrate the surface threshold of trained reconstruction weights.

    rrb calibrate-recon [--weights PATH] [--out PATH] [--shapes N] [--install]

The mesh of an occupancy network is the level set of its occupancy probability at a threshold;
ONet chose 0.2 for its network on its validation set. This renders N validation shapes per
family (seeds neither trained on nor held out), picks the threshold with the best mean IoU over
the families, evaluates the held-out shapes of the weights' model card again at it and writes
the weights with the threshold to PATH (and the model card beside it). `--install` writes them
into the package (rrb_ros/data). `rrb train-recon` calibrates the weights it trains.
"""

from __future__ import annotations

import argparse

from .train_recon_cmd import _Progress, add_weights_arguments, print_held_out, weights_in_out


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `rrb calibrate-recon`."""
    p = sub.add_parser('calibrate-recon', help='calibrate the surface threshold of the '
                       'reconstruction network', description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_weights_arguments(p, 'calibrate-recon')
    p.add_argument('--shapes', type=int, default=30, help='validation shapes per family '
                   '(default: %(default)s)')
    p.add_argument('--iou-points', type=int, default=None, help='uniform points volumetric '
                   'IoU is counted on (default: as the weights were evaluated, 100000)')
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Execute `rrb calibrate-recon`."""
    from rrb_ros.core.reconstruct.train import calibrate_and_export
    if args.shapes < 1:
        raise ValueError('--shapes must be >= 1')
    if args.iou_points is not None and args.iou_points < 1:
        raise ValueError('--iou-points must be >= 1')
    weights, out = weights_in_out(args)
    report = calibrate_and_export(weights, out, args.shapes, _Progress('rrb calibrate-recon'),
                                  args.iou_points)
    print_held_out(report)
    print(f'wrote {out}')
    return 0
