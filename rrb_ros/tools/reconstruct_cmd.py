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

    rrb reconstruct --image IMG --mask MASK --checkpoint ONET.pt --out MESH.obj [--max-faces N]

The mesh is in ONet's canonical frame (unit cube, +y up), up to scale; `rrb_ros.core.reconstruct
.scale_to_ground` gives it metres once it is posed. The checkpoint must be in the official ONet
img2mesh layout (e.g. `onet_img2mesh_3-f786b04a.pt`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
import time

import cv2

from rrb_ros.tools.fit_cmd import read_mask

NO_DEFAULT_NETWORK = (
    'no embedded default network ships yet: pass --checkpoint with an Occupancy Network in the '
    'official ONet img2mesh layout (e.g. onet_img2mesh_3-f786b04a.pt)')


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `rrb reconstruct`."""
    p = sub.add_parser('reconstruct', help='reconstruct a mesh from one image and its mask',
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--image', required=True, help='colour image (PNG/JPEG)')
    p.add_argument('--mask', required=True, help='mask PNG of the image size, non-zero = object')
    p.add_argument('--checkpoint', help='ONet img2mesh checkpoint ({"model": state_dict})')
    p.add_argument('--out', required=True, help='mesh file to write (obj/ply/stl/off)')
    p.add_argument('--max-faces', type=int, help='decimate to about this many faces')
    p.add_argument('--threshold', type=float, default=0.2,
                   help='occupancy probability of the surface (default: %(default)s)')
    p.add_argument('--resolution0', type=int, default=32,
                   help='coarse MISE grid resolution (default: %(default)s)')
    p.add_argument('--upsampling-steps', type=int, default=2,
                   help='MISE refinement steps (default: %(default)s)')
    p.add_argument('--device', default='cpu', help='torch device (default: cpu)')
    p.set_defaults(run=run)


def read_image_rgb(path: str | Path):
    """Read a colour image as (H, W, 3) uint8 RGB."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f'image file not found: {path}')
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f'cannot read image {path}')
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def run(args: argparse.Namespace) -> int:
    """Execute `rrb reconstruct`."""
    if not args.checkpoint:
        raise ValueError(NO_DEFAULT_NETWORK + '; a trained default network is future work')
    if args.max_faces is not None and args.max_faces < 4:
        raise ValueError(f'--max-faces must be >= 4, got {args.max_faces}')
    out = Path(args.out)
    if out.suffix.lower() not in ('.obj', '.ply', '.stl', '.off'):
        raise ValueError(f'--out must end in .obj, .ply, .stl or .off, got {out.name}')
    image = read_image_rgb(args.image)
    mask = read_mask(args.mask)
    from rrb_ros.core.reconstruct import OccupancyNetwork, preprocess
    x = preprocess(image, mask)  # validates sizes and an empty mask before the slow load
    t0 = time.perf_counter()
    net = OccupancyNetwork.from_checkpoint(args.checkpoint, device=args.device)
    t1 = time.perf_counter()
    mesh = net.generate_mesh(x, threshold=args.threshold, resolution0=args.resolution0,
                             upsampling_steps=args.upsampling_steps, max_faces=args.max_faces)
    t2 = time.perf_counter()
    mesh.to_trimesh().export(str(out))
    print(f'{out}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces, '
          f'watertight={mesh.watertight}; load {t1 - t0:.2f} s, reconstruct {t2 - t1:.2f} s')
    return 0
