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

"""`rrb eval`: pose errors of a replayed bag against the ground truth of a generated scene.

Reads the object poses that `rrb replay` (or a recording of pose_node) wrote as TF
(camera optical frame -> <prefix><name>), the ground truth of the `rrb synth` scene
(scene.json, gt_camera.tum, meshes), and writes per-frame CSV, a JSON summary, plots of the
errors and an animation of the overlay.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import numpy as np
from sensor_msgs.msg import Image

from rrb_ros.core.camera import PinholeCamera
from rrb_ros.core.geometry import invert_T
from rrb_ros.core.mesh import load_mesh
from rrb_ros.core.metrics import pose_errors, read_tum, summarize
from rrb_ros.core.render import hard_silhouette
from rrb_ros.ros import convert
from rrb_ros.tools import bag


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `rrb eval`."""
    p = sub.add_parser('eval', help='pose errors of a replayed bag against ground truth',
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('bag', help='bag with the poses (output of rrb replay)')
    p.add_argument('--scene', required=True, help='folder written by rrb synth (scene.json)')
    p.add_argument('--out', default='results', help='output folder (default: %(default)s)')
    p.add_argument('--prefix', default='rrb/', help='TF prefix of object frames')
    p.add_argument('--mask', default='/camera/mask', help='mask topic (silhouette IoU)')
    p.add_argument('--overlay', default='/camera/overlay', help='overlay topic (animation)')
    p.add_argument('--replay-summary', help='JSON of rrb replay --summary (adds timing)')
    p.set_defaults(run=run)


def load_scene(folder: str | Path) -> dict:
    """Load scene.json (meshes, T_world_obj as arrays) and the camera trajectory."""
    folder = Path(folder)
    try:
        scene = json.loads((folder / 'scene.json').read_text())
    except OSError as exc:
        raise ValueError(f'cannot read {folder / "scene.json"}: {exc.strerror}') from None
    for obj in scene['objects']:
        obj['mesh'] = load_mesh(folder / obj['mesh'])
        obj['T_world_obj'] = np.asarray(obj['T_world_obj'], dtype=np.float64)
    scene['gt_camera'] = read_tum(folder / 'gt_camera.tum')
    return scene


def read_outputs(path, prefix: str, mask_topic: str, overlay_topic: str):
    """Read predicted T_cam_obj per (stamp_ns, name), masks per stamp, overlays in order."""
    preds: dict[tuple[int, str], np.ndarray] = {}
    masks: dict[int, np.ndarray] = {}
    overlays: list[np.ndarray] = []
    reader = bag.open_reader(path)
    try:
        tf_class = convert.TFMessage
        for conn, _, raw in reader.messages():
            if conn.topic == '/tf':
                for ts in bag.from_cdr(raw, tf_class).transforms:
                    if ts.child_frame_id.startswith(prefix):
                        T = convert.pose_to_matrix(ts.transform)
                        preds[(convert.stamp_to_ns(ts.header.stamp),
                               ts.child_frame_id[len(prefix):])] = T
            elif conn.topic == mask_topic:
                msg = bag.from_cdr(raw, Image)
                masks[convert.stamp_to_ns(msg.header.stamp)] = convert.image_to_mask(msg)
            elif conn.topic == overlay_topic:
                overlays.append(convert.image_to_rgb(bag.from_cdr(raw, Image)))
    finally:
        reader.close()
    return preds, masks, overlays


def run(args: argparse.Namespace) -> int:
    """Execute `rrb eval`."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scene = load_scene(args.scene)
    cam = scene['camera']
    camera = PinholeCamera.from_camera_info(np.asarray(cam['K']).reshape(-1), cam['width'],
                                            cam['height'])
    preds, masks, overlays = read_outputs(args.bag, args.prefix, args.mask, args.overlay)
    gt = scene['gt_camera']
    # TUM stamps are float seconds (~0.2 us resolution at epoch times): match to the nearest
    # pose stamp and, on their own (pose_node's sync_tolerance may set them apart), the
    # nearest mask stamp within a millisecond
    pose_stamps = np.array(sorted({s for s, _ in preds}), dtype=np.int64)
    mask_stamps = np.array(sorted(masks), dtype=np.int64)
    rows, errors = [], []
    missing = 0
    for stamp, T_world_cam in zip(gt.stamps, gt.poses):
        pose_ns = nearest(pose_stamps, int(round(stamp * 1e9)), tolerance_ns=1_000_000)
        mask = masks.get(nearest(mask_stamps, int(round(stamp * 1e9)), tolerance_ns=1_000_000))
        for obj in scene['objects']:
            if mask is not None and not np.any(mask == obj['label']):
                continue  # not in view: nothing to estimate
            T_pred = preds.get((pose_ns, obj['name']))
            if T_pred is None:
                missing += 1
                continue
            T_gt = invert_T(T_world_cam) @ obj['T_world_obj']
            sil_pred = None
            if mask is not None:
                m = obj['mesh']
                sil_pred = hard_silhouette(m.vertices @ T_pred[:3, :3].T + T_pred[:3, 3],
                                           m.faces, camera)
            e = pose_errors(T_pred, T_gt, obj['mesh'], mask_pred=sil_pred,
                            mask_gt=None if mask is None else mask == obj['label'])
            errors.append(e)
            rows.append({'stamp': f'{stamp:.6f}', 'object': obj['name'],
                         'rot_err_deg': e.rot_err_deg, 'trans_err_m': e.trans_err_m,
                         'trans_err_rel': e.trans_err_rel, 'box_iou': e.box_iou,
                         'box_iou_oriented': e.box_iou_oriented,
                         'silhouette_iou': e.silhouette_iou})
    if not errors:
        raise ValueError(f'{args.bag}: no object poses under {args.prefix}* matching the scene')
    summary = summarize(errors)
    summary['poses_missing'] = missing
    summary['seconds_per_frame'] = math.nan
    if args.replay_summary:
        rep = json.loads(Path(args.replay_summary).read_text())
        summary['seconds_per_frame'] = rep['seconds_per_frame_mean']
    with open(out / 'poses.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / 'metrics.json').write_text(json.dumps(summary, indent=2) + '\n')
    plot_errors(rows, out / 'errors.png')
    if overlays:
        write_animation(overlays, out / 'overlay.gif')
    print_summary(summary)
    print(f'wrote {out / "metrics.json"}, poses.csv, errors.png'
          + (', overlay.gif' if overlays else ''))
    return 0


def nearest(sorted_ns: np.ndarray, stamp_ns: int, tolerance_ns: int) -> int:
    """Return the stamp in `sorted_ns` closest to `stamp_ns` if within tolerance, else it."""
    if len(sorted_ns) == 0:
        return stamp_ns
    i = int(np.searchsorted(sorted_ns, stamp_ns))
    best = min((abs(int(sorted_ns[j]) - stamp_ns), int(sorted_ns[j]))
               for j in (i - 1, i) if 0 <= j < len(sorted_ns))
    return best[1] if best[0] <= tolerance_ns else stamp_ns


def print_summary(summary: dict) -> None:
    """Print one line per figure, with units."""
    units = {'frames': '', 'rot_err_median_deg': 'deg', 'rot_err_mean_deg': 'deg',
             'acc_pi6': '', 'trans_err_median_m': 'm', 'trans_err_median_rel': '',
             'box_iou_mean': '', 'box_iou_oriented_mean': '', 'silhouette_iou_mean': '',
             'poses_missing': '', 'seconds_per_frame': 's'}
    for key, value in summary.items():
        text = f'{value:.4f}' if isinstance(value, float) else str(value)
        print(f'  {key:<24} {text:>10} {units.get(key, "")}')


def plot_errors(rows: list[dict], path: Path) -> None:
    """Plot rotation / translation error over time and their histograms (PNG)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(2, 2, figsize=(11, 6))
    for name in sorted({r['object'] for r in rows}):
        sel = [r for r in rows if r['object'] == name]
        t = np.array([float(r['stamp']) for r in sel])
        t -= t.min()
        ax[0, 0].plot(t, [r['rot_err_deg'] for r in sel], label=name)
        ax[1, 0].plot(t, [100 * r['trans_err_rel'] for r in sel], label=name)
    ax[0, 0].set_ylabel('rotation error (deg)')
    ax[1, 0].set_ylabel('translation error (% of distance)')
    ax[1, 0].set_xlabel('time (s)')
    ax[0, 0].legend()
    ax[0, 1].hist([r['rot_err_deg'] for r in rows], bins=30)
    ax[0, 1].set_xlabel('rotation error (deg)')
    ax[1, 1].hist([r['trans_err_m'] for r in rows], bins=30)
    ax[1, 1].set_xlabel('translation error (m)')
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_animation(frames: list[np.ndarray], path: Path, max_frames: int = 60,
                    width: int = 320) -> None:
    """Write an animated GIF of (a subsample of) the overlay frames, `width` px wide."""
    from PIL import Image as PILImage
    step = max(1, math.ceil(len(frames) / max_frames))
    images = []
    for f in frames[::step]:
        img = PILImage.fromarray(f)
        img = img.resize((width, max(1, round(f.shape[0] * width / f.shape[1]))))
        images.append(img.convert('P', palette=PILImage.ADAPTIVE))
    images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0)
