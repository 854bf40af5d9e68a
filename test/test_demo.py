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

"""Round trip on a tiny generated sequence: synth -> replay -> eval (`rrb demo`)."""

import json
from pathlib import Path
import subprocess
import sys

RRB = str(Path(sys.executable).parent / 'rrb')


def test_demo_round_trip(tmp_path):
    proc = subprocess.run([RRB, 'demo', '--out', str(tmp_path), '--frames', '6'],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    metrics = json.loads((tmp_path / 'metrics.json').read_text())
    for key in ('frames', 'rot_err_median_deg', 'acc_pi6', 'trans_err_median_m',
                'box_iou_mean', 'seconds_per_frame'):
        assert key in metrics
    assert metrics['frames'] == 6 and metrics['poses_missing'] == 0
    assert metrics['rot_err_median_deg'] <= 3.0
    assert metrics['acc_pi6'] >= 0.95
    assert metrics['box_iou_mean'] >= 0.8
    for name in ('poses.csv', 'errors.png', 'overlay.gif', 'replay/metadata.yaml',
                 'scene/scene.json', 'scene/bag/metadata.yaml'):
        assert (tmp_path / name).exists(), name
    # the same sequence without the CAD model: reconstructed, scaled from the camera height
    rec = json.loads((tmp_path / 'recon' / 'reconstruction.json').read_text())
    assert abs(rec['chair']['height_err_pct']) < 15, rec
    recon = json.loads((tmp_path / 'recon' / 'metrics.json').read_text())
    assert recon['frames'] + recon['poses_missing'] == 6 and recon['frames'] >= 1, recon
    ego = json.loads((tmp_path / 'egomotion.json').read_text())
    for name in ('single', 'multi'):
        assert ego[name]['frames'] == 6 and ego[name]['rrb_poses'] >= 3
        assert ego[name]['rrb_ate'] < 0.1, ego  # metres, Sim(3)-aligned to ground truth
        assert 'orbslam_ate' in ego[name]
        assert (tmp_path / f'egomotion_{name}.png').exists()
    # a second run in the same folder replaces the demo's own products
    proc = subprocess.run([RRB, 'demo', '--out', str(tmp_path), '--frames', '3',
                           '--no-egomotion'],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    second = json.loads((tmp_path / 'metrics.json').read_text())
    assert second['frames'] + second['poses_missing'] == 3
