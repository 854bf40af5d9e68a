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

"""Generated sequences: scenes, trajectories, the CPU renderer and the rosbag2 of `rrb synth`."""

import json
import time

import cv2
import numpy as np
import pytest
import yaml

from rrb_ros.core import synth
from rrb_ros.core.camera import PinholeCamera
from rrb_ros.core.geometry import invert_T, make_T, matrix_from_quat
from rrb_ros.core.objects import default_camera, procedural_chair, subdivide
from rrb_ros.core.render import hard_silhouette
from rrb_ros.tools import cli, synth_cmd

TOPICS = ('/camera/image_raw', '/camera/camera_info', '/camera/mask', '/tf', '/tf_static')


def iou(a, b):
    return np.count_nonzero(a & b) / max(np.count_nonzero(a | b), 1)


def read_bag(path):
    """Messages per topic as (bag timestamp, message), and the connections by topic."""
    from rosbags.highlevel import AnyReader
    out = {}
    with AnyReader([path]) as reader:
        conns = {c.topic: c for c in reader.connections}
        for conn, stamp, raw in reader.messages():
            out.setdefault(conn.topic, []).append((stamp, reader.deserialize(raw, conn.msgtype)))
    return out, conns


def stamp_ns(header):
    return header.stamp.sec * 10**9 + header.stamp.nanosec


def transform_matrix(tf):
    r, t = tf.transform.rotation, tf.transform.translation
    return make_T(matrix_from_quat([r.x, r.y, r.z, r.w]), [t.x, t.y, t.z])


def image_array(msg):
    dtype = np.uint16 if msg.encoding == '16UC1' else np.uint8
    channels = 3 if msg.encoding == 'rgb8' else 1
    arr = np.frombuffer(bytes(msg.data), dtype).reshape(msg.height, msg.width, channels)
    return arr[..., 0] if channels == 1 else arr


@pytest.mark.parametrize('preset,trajectory', [('single', 'orbit'), ('multi', 'handheld'),
                                               ('single', 'handheld'), ('multi', 'orbit')])
def test_synth_bag(tmp_path, preset, trajectory):
    n = 6
    summary = synth_cmd.generate(tmp_path, preset=preset, trajectory=trajectory, frames=n,
                                 seed=5, log=lambda line: None)
    assert summary['frames'] == n and all(v == 1.0 for v in summary['visible'].values())
    scene = json.loads((tmp_path / 'scene.json').read_text())
    assert scene['frames'] == n and scene['trajectory'] == trajectory and scene['seed'] == 5
    assert len(scene['objects']) == (1 if preset == 'single' else 2)
    K = np.array(scene['camera']['K'])
    assert np.allclose(PinholeCamera.from_yaml(tmp_path / 'camera.yaml').K, K)
    msgs, conns = read_bag(tmp_path / 'bag')
    assert set(conns) == set(TOPICS)
    assert {t: len(m) for t, m in msgs.items()} == {
        '/camera/image_raw': n, '/camera/camera_info': n, '/camera/mask': n, '/tf': n,
        '/tf_static': 1}
    assert 'transient_local' in (tmp_path / 'bag' / 'metadata.yaml').read_text()

    # one stamp per frame on every topic; bag timestamps = header stamps
    per_topic = {}
    for topic in ('/camera/image_raw', '/camera/camera_info', '/camera/mask'):
        for t, m in msgs[topic]:
            assert m.header.frame_id == 'camera_optical' and stamp_ns(m.header) == t
        per_topic[topic] = [t for t, _ in msgs[topic]]
    per_topic['/tf'] = [stamp_ns(m.transforms[0].header) for _, m in msgs['/tf']]
    stamps = per_topic['/tf']
    assert all(v == stamps for v in per_topic.values())
    assert np.allclose(np.diff(stamps), 1e9 / 30, atol=1)

    info = msgs['/camera/camera_info'][0][1]
    assert info.distortion_model == 'plumb_bob' and not np.any(info.d)
    assert np.allclose(info.k, K.reshape(-1))
    assert np.allclose(np.reshape(info.p, (3, 4)), np.hstack([K, np.zeros((3, 1))]))
    for _, m in msgs['/camera/image_raw']:
        assert m.encoding == 'rgb8' and m.step == 3 * m.width
    for _, m in msgs['/camera/mask']:
        assert m.encoding == 'mono8' and m.step == m.width

    # ground truth: /tf = gt_camera.tum, /tf_static = scene.json
    tum = np.loadtxt(tmp_path / 'gt_camera.tum')
    assert tum.shape == (n, 8)
    T_world_cam = []
    for (_, m), row in zip(msgs['/tf'], tum):
        (tf,) = m.transforms
        assert (tf.header.frame_id, tf.child_frame_id) == ('gt/world', 'gt/camera')
        T = transform_matrix(tf)
        assert np.allclose(T, make_T(matrix_from_quat(row[4:]), row[1:4]), atol=1e-6)
        assert abs(row[0] - stamp_ns(tf.header) * 1e-9) < 1e-6
        T_world_cam.append(T)
    static = {tf.child_frame_id: tf for tf in msgs['/tf_static'][0][1].transforms}
    assert set(static) == {f'gt/{o["name"]}' for o in scene['objects']}
    params = yaml.safe_load((tmp_path / 'rrb.yaml').read_text())['/**']['ros__parameters']
    assert params['objects']['names'] == [o['name'] for o in scene['objects']]

    # the masks agree with the meshes seen at the ground-truth poses
    from rrb_ros.core.mesh import load_mesh
    camera = default_camera()
    for obj in scene['objects']:
        T_world_obj = np.array(obj['T_world_obj'])
        assert np.allclose(transform_matrix(static[f'gt/{obj["name"]}']), T_world_obj)
        entry = params['objects'][obj['name']]
        assert entry['label'] == obj['label']
        mesh = load_mesh(entry['mesh'])
        assert np.allclose(mesh.vertices, load_mesh(tmp_path / obj['mesh']).vertices)
        for (_, m), T in zip(msgs['/camera/mask'], T_world_cam):
            T_cam_obj = invert_T(T) @ T_world_obj
            sil = hard_silhouette(mesh.vertices @ T_cam_obj[:3, :3].T + T_cam_obj[:3, 3],
                                  mesh.faces, camera)
            labels = image_array(m)
            mine = labels == obj['label']
            assert np.count_nonzero(mine) > 200
            assert np.count_nonzero(mine & ~sil) <= 0.01 * np.count_nonzero(mine)
            if preset == 'single':
                assert iou(mine, sil) >= 0.99

    if preset == 'single' and trajectory == 'orbit':
        mcap = pytest.importorskip('mcap.reader')
        with open(tmp_path / 'bag' / 'bag.mcap', 'rb') as f:
            channels = mcap.make_reader(f).get_summary().channels.values()
            assert sorted(c.topic for c in channels) == sorted(TOPICS)


def test_sqlite3_storage(tmp_path):
    synth_cmd.generate(tmp_path, trajectory='orbit', frames=3, storage='sqlite3',
                       log=lambda line: None)
    assert list((tmp_path / 'bag').glob('*.db3'))
    msgs, _ = read_bag(tmp_path / 'bag')
    assert [len(msgs[t]) for t in TOPICS] == [3, 3, 3, 3, 1]


def test_progress_and_summary_lines(tmp_path):
    lines = []
    synth_cmd.generate(tmp_path, frames=20, log=lines.append)
    assert len(lines) == 11 and '100 %' in lines[-2] and 'wrote 20 frames' in lines[-1]


def test_labels_match_hard_silhouette(rng, camera):
    scene = synth.single_chair_scene(rng, min_faces=1500)
    obj = scene.objects[0]
    _, poses = synth.scene_trajectory(scene, 'orbit', 30, rng)
    for T in poses[::10]:
        _, labels = synth.render_frame(scene, camera, T)
        sil = hard_silhouette(synth.posed_vertices(obj, T), obj.mesh.faces, camera)
        assert labels.dtype == np.uint8 and set(np.unique(labels)) == {0, 1}
        assert iou(labels == 1, sil) >= 0.99


def test_occlusion_between_objects(rng, camera):
    # the chair in front gets the higher label, so a per-pixel max/min of labels would fail
    front, back = procedural_chair(rng), procedural_chair(rng)
    scene = synth.Scene([synth.SceneObject('back', 1, back, make_T(np.eye(3), [0.1, 1.3, 0])),
                         synth.SceneObject('front', 2, front, np.eye(4))], ground_seed=3)
    T = synth.look_at([0.0, -2.5, 1.25], [0.0, 1.0, 0.4])
    _, labels = synth.render_frame(scene, camera, T)
    sil = {o.name: hard_silhouette(synth.posed_vertices(o, T), o.mesh.faces, camera)
           for o in scene.objects}
    both = sil['front'] & sil['back']
    only_back = sil['back'] & ~sil['front']
    assert np.count_nonzero(both) > 500 and np.count_nonzero(only_back) > 500
    assert np.mean(labels[both] == 2) > 0.995
    assert np.mean(labels[only_back] == 1) > 0.99
    assert np.count_nonzero(labels[~(sil['front'] | sil['back'])]) < 20


def test_texture_and_render_time(rng, camera):
    scene = synth.two_chair_scene(rng, min_faces=1500)
    faces = [len(o.mesh.faces) for o in scene.objects]
    _, poses = synth.scene_trajectory(scene, 'handheld', 10, rng)
    rgb, labels = synth.render_frame(scene, camera, poses[0])   # texture made once
    started = time.perf_counter()
    for T in poses:
        rgb, labels = synth.render_frame(scene, camera, T)
    ms = 1000 * (time.perf_counter() - started) / len(poses)
    print(f'\nrender_frame: {ms:.1f} ms per {camera.width}x{camera.height} frame, '
          f'chairs of {faces} faces')
    assert rgb.shape == (camera.height, camera.width, 3) and rgb.dtype == np.uint8
    keypoints = cv2.ORB_create(1000).detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), None)
    assert len(keypoints) > 300
    assert set(np.unique(labels)) == {0, 1, 2}
    # the sky is above the horizon: the top row of a level camera is not floor texture
    assert rgb[0].std(0).max() < 10


def test_trajectories_keep_the_scene_in_view(rng, camera):
    scene = synth.two_chair_scene(rng)
    for kind in synth.TRAJECTORIES:
        stamps, poses = synth.scene_trajectory(scene, kind, 90, rng)
        assert np.allclose(np.diff(stamps), 1 / 30) and poses.shape == (90, 4, 4)
        for T in poses:
            R = T[:3, :3]
            assert np.allclose(R.T @ R, np.eye(3), atol=1e-9) and np.linalg.det(R) > 0
            assert abs(T[2, 3] - 1.25) < 0.15
            assert 2.0 < np.linalg.norm(T[:2, 3] - scene.centre[:2]) < 4.0
            for obj in scene.objects:
                v = synth.posed_vertices(obj, T)
                assert v[:, 2].min() > 0.5                   # in front of the camera
                uv = camera.project(v)
                inside = (uv[:, 0] >= 0) & (uv[:, 0] < camera.width) & (uv[:, 1] >= 0) \
                    & (uv[:, 1] < camera.height)
                assert inside.mean() > 0.9
        if kind == 'handheld':                               # jitter: small and fast
            step = np.diff(poses[:, :3, 3], 2, axis=0)
            assert 1e-4 < np.abs(step).max() < 0.03


def test_orbit_geometry():
    stamps, poses = synth.orbit([1.0, 2.0, 0.0], 5, radius=3.0, arc_deg=180, start_deg=0,
                                target_height=0.4)
    assert np.allclose(poses[0, :3, 3], [4.0, 2.0, 1.25])
    assert np.allclose(poses[-1, :3, 3], [-2.0, 2.0, 1.25])
    to_target = np.array([1.0, 2.0, 0.4]) - poses[0, :3, 3]
    assert np.allclose(poses[0, :3, 2], to_target / np.linalg.norm(to_target))
    assert poses[0, 2, 1] < 0                                # image down = world down


def test_scene_from_meshes_and_16bit_labels(tmp_path, rng, camera):
    paths = []
    for i in range(2):
        mesh = procedural_chair(rng)
        tm = mesh.to_trimesh()
        tm.apply_translation([5.0, -3.0, 0.7])                  # not centred, off the floor
        paths.append(tmp_path / f'{i}-my chair.obj')
        tm.export(str(paths[-1]))
    scene = synth.scene_from_meshes(paths, rng)
    assert [o.name for o in scene.objects] == ['obj_0_my_chair', 'obj_1_my_chair']
    for v in scene.world_vertices:
        assert abs(v[:, 2].min()) < 1e-9
    big = synth.Scene([synth.SceneObject('a', 300, scene.objects[0].mesh, np.eye(4))])
    _, poses = synth.orbit([0, 0, 0], 2)
    stamps_ns = 10**18 + np.arange(2) * 33_333_333
    synth_cmd.write_bag(tmp_path / 'bag', big, camera, stamps_ns, poses, log=lambda line: None)
    msgs, _ = read_bag(tmp_path / 'bag')
    mask = msgs['/camera/mask'][0][1]
    assert mask.encoding == '16UC1' and mask.step == 2 * mask.width
    assert set(np.unique(image_array(mask))) == {0, 300}


def test_bad_arguments(tmp_path, capsys):
    with pytest.raises(ValueError, match='unknown preset'):
        synth_cmd.generate(tmp_path, preset='sofa')
    with pytest.raises(ValueError, match='at least 1'):
        synth_cmd.generate(tmp_path, frames=0)
    with pytest.raises(ValueError, match='not found'):
        synth_cmd.generate(tmp_path, meshes=[str(tmp_path / 'missing.obj')])
    with pytest.raises(ValueError, match='unknown trajectory'):
        synth.scene_trajectory(synth.single_chair_scene(np.random.default_rng(0)), 'fly', 3,
                               np.random.default_rng(0))
    (tmp_path / 'bag').mkdir()
    assert cli.main(['synth', str(tmp_path), '--frames', '2']) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('rrb synth: error:') and 'already exists' in err and '\n' not in err
    (tmp_path / 'bad.obj').write_text('this is not a mesh\n')
    assert cli.main(['synth', str(tmp_path / 'x'), '--mesh', str(tmp_path / 'bad.obj')]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_subdivided_chair_renders_like_the_original(rng, camera):
    chair = procedural_chair(rng)
    scenes = [synth.Scene([synth.SceneObject('c', 1, m, np.eye(4))], ground_seed=1)
              for m in (chair, subdivide(chair, 1500))]
    T = synth.look_at([2.0, -2.0, 1.25], [0.0, 0.0, 0.4])
    a, b = (synth.render_frame(s, camera, T)[1] == 1 for s in scenes)
    assert iou(a, b) > 0.995
