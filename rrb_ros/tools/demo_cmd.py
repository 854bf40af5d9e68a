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

"""`rrb demo`: the pipeline on built-in generated data, results under one folder.

Generates a few procedural objects seen from random viewpoints, writes each case as the files
`rrb fit` takes (mesh, mask PNG, camera YAML), fits every pose from no initial guess, and
writes `fit_demo.json` (per-case errors and timing) and `overlay.png` (fitted outlines).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import yaml

from rrb_ros.core.fit import FitSettings, PoseFitter
from rrb_ros.core.geometry import rotation_angle
from rrb_ros.core.objects import make_case, procedural_object, subdivide
from rrb_ros.core.overlay import draw_pose, mask_to_rgb, PALETTE


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `rrb demo`."""
    p = sub.add_parser('demo', help='fit poses on generated data and write results/',
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default='results', help='output folder (default: %(default)s)')
    p.add_argument('--cases', type=int, default=4, help='number of generated cases')
    p.add_argument('--seed', type=int, default=7, help='random seed')
    p.add_argument('--device', default='cpu', help='torch device (default: cpu)')
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Execute `rrb demo`."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    rows, tiles = [], []
    print(f'{"case":>4} {"faces":>6} {"rot err":>8} {"trans err":>9} {"IoU":>6} {"time":>6}')
    for i in range(args.cases):
        mesh = subdivide(procedural_object(rng), 2000)
        case = make_case(mesh, rng)
        folder = out / f'case_{i}'
        folder.mkdir(exist_ok=True)
        mesh.to_trimesh().export(folder / 'mesh.obj')
        cv2.imwrite(str(folder / 'mask.png'), case.mask * 255)
        (folder / 'camera.yaml').write_text(yaml.safe_dump(case.camera.to_yaml_dict()))
        res = PoseFitter(mesh, FitSettings(device=args.device)).fit(case.mask, case.camera)
        rot = float(np.rad2deg(rotation_angle(res.T_cam_obj[:3, :3], case.T_cam_obj[:3, :3])))
        trans = float(np.linalg.norm(res.T_cam_obj[:3, 3] - case.T_cam_obj[:3, 3]))
        dist = float(np.linalg.norm(case.T_cam_obj[:3, 3]))
        rows.append({'case': i, 'faces': len(mesh.faces), 'rot_err_deg': rot,
                     'trans_err_m': trans, 'trans_err_rel': trans / dist, 'iou': res.iou,
                     'iterations': res.iterations, 'seconds': res.seconds,
                     'T_cam_obj': res.T_cam_obj.tolist(), 'T_cam_obj_gt': case.T_cam_obj.tolist()})
        print(f'{i:>4} {len(mesh.faces):>6} {rot:>7.2f}° {100 * trans / dist:>8.2f}% '
              f'{res.iou:>6.3f} {res.seconds:>5.1f}s', flush=True)
        tile = draw_pose(mask_to_rgb(case.mask), mesh, res.T_cam_obj, case.camera,
                         PALETTE[i % len(PALETTE)], f'IoU {res.iou:.3f}')
        tiles.append(tile)
    summary = {
        'cases': len(rows),
        'rot_err_median_deg': float(np.median([r['rot_err_deg'] for r in rows])),
        'trans_err_median_rel': float(np.median([r['trans_err_rel'] for r in rows])),
        'iou_mean': float(np.mean([r['iou'] for r in rows])),
        'seconds_per_fit': float(np.mean([r['seconds'] for r in rows])),
    }
    (out / 'fit_demo.json').write_text(json.dumps({'summary': summary, 'cases': rows},
                                                  indent=2) + '\n')
    cols = 2
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    grid = np.vstack([np.hstack(tiles[r:r + cols]) for r in range(0, len(tiles), cols)])
    cv2.imwrite(str(out / 'overlay.png'), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    print(json.dumps(summary, indent=2))
    print(f'wrote {out / "fit_demo.json"} and {out / "overlay.png"}')
    return 0
