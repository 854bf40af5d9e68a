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

"""`rrb fit` end to end, as a separate process, including each kind of bad input."""

import json
from pathlib import Path
import subprocess
import sys

import cv2
import numpy as np
import pytest
import yaml

from rrb_ros.core.objects import make_case, perturb

RRB = str(Path(sys.executable).parent / 'rrb')


def run(*args):
    return subprocess.run([RRB, *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture
def case_files(tmp_path, chair, rng):
    case = make_case(chair, rng)
    mesh = tmp_path / 'chair.obj'
    chair.to_trimesh().export(mesh)
    mask = tmp_path / 'mask.png'
    cv2.imwrite(str(mask), case.mask * 255)
    cam = tmp_path / 'camera.yaml'
    cam.write_text(yaml.safe_dump(case.camera.to_yaml_dict()))
    init = tmp_path / 'init.json'
    init.write_text(json.dumps({'T_cam_obj': perturb(case.T_cam_obj, rng, 10, 0.05).tolist()}))
    return case, mesh, mask, cam, init


def test_fit_end_to_end(case_files, tmp_path):
    case, mesh, mask, cam, init = case_files
    out = tmp_path / 'out.json'
    overlay = tmp_path / 'overlay.png'
    proc = run('fit', '--mesh', mesh, '--mask', mask, '--camera-info', cam, '--init', init,
               '--out', out, '--overlay', overlay)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    assert set(res) == {'T_cam_obj', 'iou', 'iterations', 'seconds'}
    T = np.array(res['T_cam_obj'])
    assert T.shape == (4, 4) and res['iou'] > 0.9
    assert np.linalg.norm(T[:3, 3] - case.T_cam_obj[:3, 3]) < 0.03 * np.linalg.norm(T[:3, 3])
    assert cv2.imread(str(overlay)).shape == (480, 640, 3)
    # without --out the JSON goes to stdout
    proc = run('fit', '--mesh', mesh, '--mask', mask, '--camera-info', cam, '--init', init)
    assert proc.returncode == 0 and 'T_cam_obj' in json.loads(proc.stdout)


def test_help():
    assert run('--help').returncode == 0
    proc = run('fit', '--help')
    assert proc.returncode == 0 and '--camera-info' in proc.stdout


def bad_inputs(tmp_path, mesh, mask, cam):
    empty = tmp_path / 'empty.png'
    cv2.imwrite(str(empty), np.zeros((480, 640), np.uint8))
    small = tmp_path / 'small.png'
    cv2.imwrite(str(small), np.full((240, 320), 255, np.uint8))
    broken = tmp_path / 'broken.obj'
    broken.write_text('v 0 0 0\nv 1 0 0\nf 1 2 7\n')
    garbled = tmp_path / 'garbled.png'
    garbled.write_bytes(b'not a png')
    nan_cam = tmp_path / 'nan.yaml'
    nan_cam.write_text(cam.read_text().replace('554.3', '.nan', 1))
    return {
        'missing file': (dict(mesh=tmp_path / 'nope.obj'), 'not found'),
        'empty mask': (dict(mask=empty), 'empty'),
        'undecodable mask': (dict(mask=garbled), 'cannot read mask file'),
        'size mismatch': (dict(mask=small), '320x240'),
        'broken mesh': (dict(mesh=broken), 'broken.obj'),
        'NaN in YAML': (dict(cam=nan_cam), 'NaN'),
    }


@pytest.mark.parametrize('name', ['missing file', 'empty mask', 'undecodable mask',
                                  'size mismatch', 'broken mesh', 'NaN in YAML'])
def test_bad_input_gives_one_line_error(case_files, tmp_path, name):
    _, mesh, mask, cam, _ = case_files
    change, expected = bad_inputs(tmp_path, mesh, mask, cam)[name]
    files = dict(mesh=mesh, mask=mask, cam=cam) | change
    proc = run('fit', '--mesh', files['mesh'], '--mask', files['mask'], '--camera-info',
               files['cam'])
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('rrb fit: error:') and expected in lines[0]
