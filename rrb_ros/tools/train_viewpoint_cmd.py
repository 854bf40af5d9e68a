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

from .train_recon_cmd import _Progress, add_weights_arguments, weights_in_out


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `rrb train-viewpoint`."""
    p = sub.add_parser('train-viewpoint', help='train the viewpoint head of the reconstruction '
                       'network', description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_weights_arguments(p, 'train-viewpoint')
    p.add_argument('--shapes', type=int, default=6000, help='training shapes (default: '
                   '%(default)s)')
    p.add_argument('--views', type=int, default=4, help='views per shape (default: %(default)s)')
    p.add_argument('--seed', type=int, default=20_000, help='first shape seed (default: '
                   '%(default)s; the occupancy training used lower ones)')
    p.add_argument('--eval-shapes', type=int, default=40, help='held-out shapes per family '
                   '(default: %(default)s)')
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Execute `rrb train-viewpoint`."""
    from rrb_ros.core.reconstruct.train import train_viewpoint_and_export
    for name in ('shapes', 'views', 'eval_shapes'):
        if getattr(args, name) < 1:
            raise ValueError(f'--{name.replace("_", "-")} must be >= 1')
    weights, out = weights_in_out(args)
    report = train_viewpoint_and_export(weights, out, args.shapes, args.views, args.seed,
                                        args.eval_shapes,
                                        _Progress('rrb train-viewpoint'))
    for kind, v in report.items():
        print(f"{kind:6s}: median azimuth error {v['median_error_deg']:.1f} deg, front/back "
              f"correct {v['front_back_correct']:.2f}, confidently wrong "
              f"{v['confidently_wrong']:.2f}")
    print(f'wrote {out}')
    return 0
