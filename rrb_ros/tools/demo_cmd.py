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

"""`rrb demo`: the paper's pose experiment on built-in generated data, in one command.

Renders a short sequence of a camera orbiting a procedural chair (`rrb synth`), runs the pose
pipeline over the bag exactly as the node would (`rrb replay`), and scores the poses against
the ground truth (`rrb eval`). Everything lands in one folder:

  scene/            the generated sequence (bag, scene.json, meshes, camera.yaml, rrb.yaml)
  replay/           the output bag (inputs + /camera/object_pose, /tf, markers, overlay, ...)
  metrics.json      frames, rot_err_median_deg, acc_pi6, trans_err_median_m, box_iou_mean, ...
  poses.csv, errors.png, overlay.gif
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import shutil
import time

from rrb_ros.core.config import build_pipeline, read_params_file, with_defaults
from rrb_ros.ros.outputs import OutputBuilder
from rrb_ros.tools import eval_cmd, replay_cmd, synth_cmd


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `rrb demo`."""
    p = sub.add_parser('demo', help='synth -> replay -> eval on generated data',
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default='results', help='output folder (default: %(default)s)')
    p.add_argument('--frames', type=int, default=60, help='frames to generate (default: 60)')
    p.add_argument('--preset', default='single', choices=['single', 'multi'])
    p.add_argument('--seed', type=int, default=7, help='random seed (default: 7)')
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Execute `rrb demo`."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for owned in ('scene', 'replay'):  # the demo's own products from an earlier run
        shutil.rmtree(out / owned, ignore_errors=True)
    t0 = time.perf_counter()
    print(f'== 1/3 synth: {args.frames} frames, preset {args.preset}')
    synth_cmd.generate(out / 'scene', preset=args.preset, frames=args.frames, seed=args.seed)
    print('== 2/3 replay: the pose pipeline over the bag')
    params = with_defaults(read_params_file(out / 'scene' / 'rrb.yaml'))
    pipeline = build_pipeline(params)
    outputs = OutputBuilder(pipeline, str(params['object_frame_prefix']))
    summary = replay_cmd.replay(out / 'scene' / 'bag', out / 'replay', pipeline, outputs,
                                '/camera/image_raw', '/camera/mask', '/camera/camera_info')
    (out / 'replay_summary.json').write_text(json.dumps(summary, indent=2) + '\n')
    print('== 3/3 eval')
    eval_cmd.run(argparse.Namespace(
        bag=str(out / 'replay'), scene=str(out / 'scene'), out=str(out), prefix='rrb/',
        mask='/camera/mask', overlay='/camera/overlay',
        replay_summary=str(out / 'replay_summary.json')))
    print(f'demo finished in {time.perf_counter() - t0:.0f} s; results in {out}/')
    return 0
