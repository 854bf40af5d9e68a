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

"""`rrb eval` on outputs whose masks and poses carry slightly different stamps."""

import json
from pathlib import Path
import subprocess
import sys

from std_msgs.msg import Header

from rrb_ros.core.geometry import invert_T
from rrb_ros.core.metrics import read_tum
from rrb_ros.ros import convert
from rrb_ros.tools import bag

RRB = str(Path(sys.executable).parent / 'rrb')


def test_poses_and_masks_matched_to_the_ground_truth_on_their_own(tmp_path):
    # pose_node with sync_tolerance > 0 stamps its poses with the image, 0.4 ms off the mask
    scene = tmp_path / 'scene'
    subprocess.run([RRB, 'synth', str(scene), '--frames', '3'], check=True, capture_output=True,
                   timeout=300)
    info = json.loads((scene / 'scene.json').read_text())
    gt = read_tum(scene / 'gt_camera.tum')
    from rosbags.highlevel import AnyReader
    with AnyReader([scene / 'bag'], default_typestore=bag.typestore()) as reader:
        conns = [c for c in reader.connections if c.topic == '/camera/mask']
        masks = [raw for _, _, raw in reader.messages(connections=conns)]
    w = bag.open_writer(tmp_path / 'out')
    store = bag.typestore()
    tf_conn = w.add_connection('/tf', 'tf2_msgs/msg/TFMessage', typestore=store)
    mask_conn = w.add_connection('/camera/mask', 'sensor_msgs/msg/Image', typestore=store)
    for raw, stamp, T_world_cam in zip(masks, gt.stamps, gt.poses):
        ns = int(round(stamp * 1e9))
        header = Header(stamp=convert.ns_to_stamp(ns + 400_000), frame_id='camera_optical')
        tf = convert.tf_message([convert.transform_stamped(
            invert_T(T_world_cam) @ obj['T_world_obj'], header, f"rrb/{obj['name']}")
            for obj in info['objects']])
        w.write(tf_conn, ns, bag.to_cdr(tf))
        w.write(mask_conn, ns, raw)
    w.close()
    proc = subprocess.run([RRB, 'eval', str(tmp_path / 'out'), '--scene', str(scene), '--out',
                           str(tmp_path / 'results')], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / 'results' / 'metrics.json').read_text())
    assert metrics['poses_missing'] == 0 and metrics['frames'] == 3, metrics
    assert metrics['rot_err_median_deg'] < 1e-6
    assert metrics['silhouette_iou_mean'] > 0.9  # the masks were found too
