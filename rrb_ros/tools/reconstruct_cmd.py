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

"""`rrb reconstruct`: a mesh of the object in one image (single-image Occupancy Network).

    rrb reconstruct --image IMG --mask MASK --out MESH.obj [--checkpoint NET.pt]
                    [--camera-info CAMERA.yaml --camera-height H [--camera-pitch P]]

Without a camera, the mesh is in the network's canonical frame (unit cube, +y up), up to scale.
With the camera calibration and its height above the floor, the mesh is fitted to the mask,
optionally its shape code and pose are refined until its silhouette matches the mask
(--refine-iterations, off by default), and it is scaled so that it stands on the floor:
metres, rrb object frame (+z up, on z = 0), and the pose goes to MESH.json. The network is
the one shipped with the package unless --checkpoint names another (compact layout, or the
official ONet img2mesh one, e.g. onet_img2mesh_3-f786b04a.pt).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
import time

import cv2

from rrb_ros.tools.fit_cmd import read_image_file, read_mask


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `rrb reconstruct`."""
    p = sub.add_parser('reconstruct', help='reconstruct a mesh from one image and its mask',
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--image', required=True, help='colour image (PNG/JPEG)')
    p.add_argument('--mask', required=True, help='mask PNG of the image size, non-zero = object')
    p.add_argument('--checkpoint', help='network checkpoint (default: the shipped network)')
    p.add_argument('--out', required=True, help='mesh file to write (obj/ply/stl/off)')
    p.add_argument('--max-faces', type=int, help='decimate to about this many faces')
    p.add_argument('--threshold', type=float,
                   help="occupancy probability of the surface (default: the network's own: "
                        "the calibrated level stored with the shipped weights, 0.2 for ONet's)")
    p.add_argument('--family', default='',
                   help='what the object is (chair, stool, table, sofa): the surface level '
                   "calibrated for that family (default: the network's overall level)")
    p.add_argument('--resolution0', type=int, default=32,
                   help='coarse MISE grid resolution (default: %(default)s)')
    p.add_argument('--upsampling-steps', type=int, default=2,
                   help='MISE refinement steps (default: %(default)s)')
    p.add_argument('--no-mirror-average', dest='mirror_average', action='store_false',
                   help='use the image alone, not also the image turned left to right '
                        "(ONet's own weights always are)")
    p.add_argument('--refine-iterations', type=int, default=0,
                   help='with --camera-info: steps refining the shape against the mask '
                        '(30 is the benchmarked setting; default: %(default)s = off)')
    p.add_argument('--device', default='cpu', help='torch device (default: cpu)')
    p.add_argument('--camera-info', help='camera calibration YAML: gives a metric, posed mesh')
    p.add_argument('--camera-height', type=float, help='camera height above the floor (m)')
    p.add_argument('--camera-pitch', type=float, default=0.0,
                   help='optical axis tilt below the horizon (rad, default: %(default)s)')
    p.set_defaults(run=run)


def read_image_rgb(path: str | Path):
    """Read a colour image as (H, W, 3) uint8 RGB."""
    return cv2.cvtColor(read_image_file(path, cv2.IMREAD_COLOR, 'image'), cv2.COLOR_BGR2RGB)


def run(args: argparse.Namespace) -> int:
    """Execute `rrb reconstruct`."""
    if args.max_faces is not None and args.max_faces < 4:
        raise ValueError(f'--max-faces must be >= 4, got {args.max_faces}')
    out = Path(args.out)
    if out.suffix.lower() not in ('.obj', '.ply', '.stl', '.off'):
        raise ValueError(f'--out must end in .obj, .ply, .stl or .off, got {out.name}')
    if (args.camera_info is None) != (args.camera_height is None):
        raise ValueError('--camera-info and --camera-height go together')
    image = read_image_rgb(args.image)
    mask = read_mask(args.mask)
    from rrb_ros.core.reconstruct import load_network_and_head, mirror_averaged, preprocess
    from rrb_ros.core.reconstruct.onet import family_of
    preprocess(image, mask)  # validates sizes and an empty mask before the slow load
    t0 = time.perf_counter()
    net, head = load_network_and_head(args.checkpoint, device=args.device)
    if args.mirror_average:
        net = mirror_averaged(net)
    if args.family and args.threshold is None and not family_of(args.family,
                                                                net.family_thresholds):
        print(f'rrb reconstruct: warning: the network has no surface level of its own for '
              f'{args.family!r} (it has: {", ".join(net.family_thresholds) or "none"}): using '
              f'its overall level {net.threshold:g}', file=sys.stderr)
    t1 = time.perf_counter()
    if args.camera_info is None:
        mesh = net.generate_mesh(preprocess(image, mask, size=net.image_size),
                                 threshold=net.surface_level(args.family, args.threshold),
                                 resolution0=args.resolution0,
                                 upsampling_steps=args.upsampling_steps,
                                 max_faces=args.max_faces)
        what = 'canonical frame, up to scale'
    else:
        mesh = _metric(args, net, head, image, mask, out)
        what = f'metres, pose in {out.with_suffix(".json")}'
    t2 = time.perf_counter()
    mesh.to_trimesh().export(str(out))
    print(f'{out}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces ({what}); '
          f'load {t1 - t0:.2f} s, reconstruct {t2 - t1:.2f} s')
    return 0


def _metric(args: argparse.Namespace, net, head, image, mask, out: Path):
    """Reconstruct, fit and scale to the floor; write the pose JSON; return the metric mesh."""
    import numpy as np

    from rrb_ros.core.camera import PinholeCamera
    from rrb_ros.core.reconstruct import (
        ground_plane_from_height,
        ObjectReconstructor,
        ReconstructSettings,
    )
    camera = PinholeCamera.from_yaml(args.camera_info)
    if mask.shape != (camera.height, camera.width):
        raise ValueError(f'mask is {mask.shape[1]}x{mask.shape[0]} but the camera is '
                         f'{camera.width}x{camera.height}')
    ground = ground_plane_from_height(args.camera_height, args.camera_pitch)
    rec = ObjectReconstructor(ReconstructSettings(
        threshold=args.threshold, resolution0=args.resolution0,
        upsampling_steps=args.upsampling_steps, max_faces=args.max_faces or 3000,
        min_iou=0.01, fallback_iou=0.01, min_pixels=1, border_margin=0, occlusion_margin=-1,
        mirror_average=args.mirror_average, refine_iterations=args.refine_iterations),
        network=net, viewpoint_head=head)
    result = rec.reconstruct(args.family or 'object', image, (mask != 0).astype(np.uint8), 1,
                             camera, ground)
    out.with_suffix('.json').write_text(json.dumps({
        'T_cam_obj': result.T_cam_obj.tolist(), 'scale': result.scale, 'iou': result.iou,
        'extents_m': result.mesh.extents.tolist(), 'viewpoint': result.viewpoint,
        'refinement': result.refinement},
        indent=2) + '\n')
    return result.mesh
