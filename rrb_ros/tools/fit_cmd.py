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

"""`rrb fit`: the 6-DoF pose of a known mesh from one mask (render and compare).

Contract (kept stable; other tools call it):
    rrb fit --mesh MESH --mask MASK.png --camera-info CAMERA.yaml [--init INIT.json]
            [--out OUT.json]
OUT.json: {"T_cam_obj": 4x4 row-major, "iou": float, "iterations": int, "seconds": float}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys

import cv2
import numpy as np

from rrb_ros.core.camera import PinholeCamera
from rrb_ros.core.fit import FitSettings, PoseFitter
from rrb_ros.core.mesh import load_mesh, unit_warning


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `rrb fit`."""
    p = sub.add_parser('fit', help='fit the 6-DoF pose of a mesh to a mask',
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--mesh', required=True, help='mesh file (obj/ply/stl/off/glb), metres')
    p.add_argument('--mask', required=True, help='mask PNG, non-zero = object, camera size')
    p.add_argument('--camera-info', required=True, help='ROS camera calibration YAML')
    p.add_argument('--init', help='JSON with "T_cam_obj" (4x4); default: global initialisation')
    p.add_argument('--out', help='write the result JSON here (default: stdout)')
    p.add_argument('--overlay', help='also write a PNG with the fitted outline on the mask')
    p.add_argument('--device', default='cpu', help='torch device (default: cpu)')
    p.add_argument('--resolution', type=int, default=FitSettings.resolution,
                   help='working crop resolution in pixels (default: %(default)s)')
    p.add_argument('--max-faces', type=int, default=FitSettings.max_faces,
                   help='face budget of the fitted mesh (default: %(default)s)')
    p.set_defaults(run=run)


def read_image_file(path: str | Path, flags: int, what: str) -> np.ndarray:
    """Read an image file with cv2 `flags`; ValueError naming `what` if missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f'{what} file not found: {path}')
    img = cv2.imread(str(path), flags)
    if img is None:
        raise ValueError(f'cannot read {what} file {path}: not an image cv2 can decode')
    return img


def read_mask(path: str | Path) -> np.ndarray:
    """Read a mask PNG as (H, W); in colour images any non-zero channel is object."""
    img = read_image_file(path, cv2.IMREAD_UNCHANGED, 'mask')
    return img[..., :3].max(axis=2) if img.ndim == 3 else img


def read_init(path: str | Path) -> np.ndarray:
    """T_cam_obj from an INIT.json."""
    try:
        data = json.loads(Path(path).read_text())
        return np.asarray(data['T_cam_obj'], dtype=np.float64)
    except OSError as exc:
        raise ValueError(f'cannot read init file {path}: {exc.strerror}') from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f'init file {path} must hold {{"T_cam_obj": 4x4}} ({exc})') from None


def run(args: argparse.Namespace) -> int:
    """Execute `rrb fit`."""
    camera = PinholeCamera.from_yaml(args.camera_info)
    mask = read_mask(args.mask)
    mesh = load_mesh(args.mesh)
    if warning := unit_warning(mesh, args.mesh):
        print(f'rrb fit: warning: {warning}', file=sys.stderr)
    T_init = read_init(args.init) if args.init else None  # noqa: N806
    settings = FitSettings(device=args.device, resolution=args.resolution,
                           max_faces=args.max_faces)
    result = PoseFitter(mesh, settings).fit(mask, camera, T_init)
    out = {'T_cam_obj': result.T_cam_obj.tolist(), 'iou': result.iou,
           'iterations': result.iterations, 'seconds': result.seconds}
    text = json.dumps(out, indent=2)
    if args.out:
        Path(args.out).write_text(text + '\n')
    else:
        print(text)
    if args.overlay:
        from rrb_ros.core.overlay import draw_pose, mask_to_rgb
        img = draw_pose(mask_to_rgb(mask), mesh, result.T_cam_obj, camera)
        cv2.imwrite(str(args.overlay), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return 0
