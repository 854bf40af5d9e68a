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

"""ORB vocabulary in ORB-SLAM3's text format, and `rrb orbslam` on a synthetic sequence."""

import json
from pathlib import Path
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from rrb_ros.core import metrics, orbvocab
from rrb_ros.core.camera import PinholeCamera
from rrb_ros.tools import cli, orbslam_cmd

RRB = Path(sys.executable).parent / 'rrb'


@pytest.fixture(scope='module')
def vocab(tmp_path_factory):
    """Build the default vocabulary (as `rrb orbslam` caches it) and time the build."""
    path = tmp_path_factory.mktemp('vocab') / orbslam_cmd.VOCAB_NAME
    started = time.perf_counter()
    info = orbvocab.write_vocabulary(path, k=10, levels=5, seed=0)
    return path, info, time.perf_counter() - started


def depths(parents: np.ndarray) -> np.ndarray:
    depth = np.zeros(parents.size + 1, np.int64)
    for nid, pid in enumerate(parents.tolist(), 1):
        depth[nid] = depth[pid] + 1
    return depth[1:]


def test_vocabulary_file_format(vocab):
    path, info, seconds = vocab
    print(f'vocabulary: {info["words"]} words, {info["nodes"]} nodes, built in {seconds:.1f} s')
    assert seconds < 120.0
    text = path.read_text()
    lines = text.split('\n')
    assert lines[0] == '10 5 0 0'                        # k, L, L1-norm scoring, TF-IDF
    assert not text.endswith('\n')                       # the loader would add an empty node
    assert len(lines) - 1 == info['nodes'] > 10_000
    assert all(len(line.split()) == 2 + 32 + 1 for line in lines[1:])
    voc = orbvocab.parse_vocabulary(text)
    assert (voc.k, voc.levels, voc.scoring, voc.weighting) == (10, 5, 0, 0)
    assert voc.n_nodes == info['nodes'] and voc.n_words == info['words']
    assert voc.descriptors.shape == (voc.n_nodes, 32) and voc.descriptors.dtype == np.uint8
    assert np.all(voc.parents < np.arange(1, voc.n_nodes + 1))   # parents come first
    assert np.bincount(voc.parents).max() <= 10                  # at most k children
    d = depths(voc.parents)
    assert d.max() == 5 and d[voc.is_leaf].min() >= 5 - orbvocab.LEVELS_UP
    assert np.all(voc.weights[voc.is_leaf] >= orbvocab.MIN_WEIGHT)
    assert np.all(voc.weights[~voc.is_leaf] == 0)
    assert voc.to_text() == text                                 # exact round trip


def test_vocabulary_words_and_determinism():
    images = orbvocab.training_images(count=6, seed=3)
    a = orbvocab.build_vocabulary(images, k=6, levels=3, seed=1)
    assert a == orbvocab.build_vocabulary(images, k=6, levels=3, seed=1)
    voc = orbvocab.parse_vocabulary(a)
    desc = orbvocab.orb_descriptors(images)
    words = voc.words(np.concatenate(desc))
    assert np.all(voc.is_leaf[words - 1])                        # every descriptor has a word
    # a descriptor that is a node centre descends to that very leaf
    leaves = np.flatnonzero(voc.is_leaf)[:50]
    assert np.array_equal(voc.words(voc.descriptors[leaves]), leaves + 1)
    # IDF: the word of every image's features is rarer than "in all images"
    assert voc.weights[words - 1].min() > 0


def test_vocabulary_rejects_bad_text():
    good = orbvocab.build_vocabulary(orbvocab.training_images(count=2), k=4, levels=2)
    with pytest.raises(ValueError, match='empty line'):
        orbvocab.parse_vocabulary(good + '\n')
    with pytest.raises(ValueError, match='header'):
        orbvocab.parse_vocabulary('10 5 0\n' + good.split('\n', 1)[1])
    lines = good.split('\n')
    with pytest.raises(ValueError, match='fields'):
        orbvocab.parse_vocabulary('\n'.join([lines[0], lines[1] + ' 7', *lines[2:]]))


def test_settings_yaml_types():
    """ORB-SLAM3 exits the process on a wrongly typed entry: check them with OpenCV's reader."""
    camera = PinholeCamera(554.3, 554.3, 319.5, 239.5, 640, 480)
    text = orbslam_cmd.settings_yaml(camera, fps=29.97)
    fs = cv2.FileStorage(text, cv2.FILE_STORAGE_READ | cv2.FILE_STORAGE_MEMORY)
    assert fs.getNode('File.version').string() == '1.0'
    assert fs.getNode('Camera.type').string() == 'PinHole'
    for name in ('Camera.width', 'Camera.height', 'Camera.fps', 'Camera.RGB',
                 'ORBextractor.nFeatures', 'ORBextractor.nLevels', 'ORBextractor.iniThFAST',
                 'ORBextractor.minThFAST'):
        assert fs.getNode(name).isInt(), name
    for name in ('Camera1.fx', 'Camera1.fy', 'Camera1.cx', 'Camera1.cy',
                 'ORBextractor.scaleFactor'):
        assert fs.getNode(name).isReal(), name
    assert fs.getNode('Camera.fps').real() == 30
    assert fs.getNode('Camera1.cx').real() == pytest.approx(319.5)
    assert fs.getNode('Camera1.k1').empty()                      # no distortion
    fs.release()


def test_cli_registered(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(['orbslam', '--help'])
    assert exc.value.code == 0
    assert 'PYORBSLAM3_VOCAB' in capsys.readouterr().out


@pytest.mark.slow
def test_orbslam_tracks_synthetic_orbit(vocab, tmp_path):
    """ORB-SLAM3 initialises, tracks most frames and matches ground truth up to Sim(3)."""
    pytest.importorskip('pyorbslam3')
    from rrb_ros.tools import synth_cmd
    synth_cmd.generate(tmp_path, preset='single', trajectory='orbit', frames=90,
                       log=lambda _: None)
    out = tmp_path / 'orbslam.tum'
    proc = subprocess.run([str(RRB), 'orbslam', str(tmp_path / 'bag'), '--out', str(out),
                           '--vocab', str(vocab[0])], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    print({k: summary[k] for k in ('tracked', 'first_tracked_frame', 'segments',
                                   'track_ms_median')})
    assert summary['frames'] == 90
    assert summary['first_tracked_frame'] <= 30
    assert summary['tracked'] >= 0.6 * 90 and summary['written'] == summary['tracked']
    gt = metrics.read_tum(tmp_path / 'gt_camera.tum')
    est = metrics.read_tum(out)
    report = metrics.evaluate_trajectory(gt, est, align='sim3')
    path_length = float(np.linalg.norm(np.diff(gt.positions, axis=0), axis=1).sum())
    print(f'ORB-SLAM3 ATE {report["ate_rmse"]:.4f} m over a {path_length:.2f} m path')
    assert report['pairs'] == summary['tracked']
    assert report['ate_rmse'] < 0.05 * path_length
    # pose_wc is camera-to-world of the optical frame: orientations agree after alignment too
    ref, est_m = metrics.associate(gt, est)
    aligned, _ = metrics.align(ref, est_m, 'sim3')
    rel = np.einsum('nji,njk->nik', ref.poses[:, :3, :3], aligned.poses[:, :3, :3])
    angles = np.degrees(np.arccos(np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    assert angles.max() < 3.0


def test_orbslam_runs_again_in_the_same_process(vocab, tmp_path):
    """A second run in one process tracks as well as the first (each gets its own process)."""
    pytest.importorskip('pyorbslam3')
    from rrb_ros.tools import orbslam_cmd, synth_cmd
    synth_cmd.generate(tmp_path, preset='single', trajectory='orbit', frames=90,
                       log=lambda _: None)
    tracked = [orbslam_cmd.run_orbslam(tmp_path / 'bag', vocab[0])[1]['tracked']
               for _ in range(2)]
    # in one process the second instance lost 16 of 89 frames here and all of a harder
    # sequence's; in its own process it tracks like the first, up to ORB-SLAM3's own run-to-run
    # spread (its threads race: a fresh CI machine once gave 89 then 59 frames), so only a
    # broken second run fails here
    assert min(tracked) >= 0.6 * 90, tracked
