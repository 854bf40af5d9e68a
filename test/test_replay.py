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

"""`rrb replay` on hand-made bags: outputs, and clear errors for bad bags."""

from pathlib import Path
import subprocess
import sys

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Header

from rrb_ros.core.objects import default_camera, perturb, random_view
from rrb_ros.core.render import hard_silhouette
from rrb_ros.ros import convert
from rrb_ros.tools import bag

RRB = str(Path(sys.executable).parent / 'rrb')


def write_bag(path, chair, rng, frames=3, storage='mcap', topics=None, compressed=(),
              corrupt=None, frame_id='camera_optical'):
    """Write a bag of a chair seen in `frames` frames; return the true poses.

    `compressed` names streams written as png CompressedImage ('image', 'mask'; a dict such as
    `{'mask': '.jpg'}` picks the format); `corrupt` names a stream whose second message is
    garbage.
    """
    compressed = compressed if isinstance(compressed, dict) else dict.fromkeys(compressed, '.png')
    cam = default_camera()
    T = random_view(chair, cam, rng)
    w = bag.open_writer(path, storage)
    store = bag.typestore()
    names = topics or {'image': '/camera/image_raw', 'mask': '/camera/mask',
                       'info': '/camera/camera_info'}
    types = {'image': 'sensor_msgs/msg/Image', 'mask': 'sensor_msgs/msg/Image',
             'info': 'sensor_msgs/msg/CameraInfo'}
    types.update({k: 'sensor_msgs/msg/CompressedImage' for k in compressed})
    conns = {k: w.add_connection(t, types[k], typestore=store) for k, t in names.items()}
    poses = []
    for k in range(frames):
        Tk = perturb(T, rng, 2.0, 0.01)
        poses.append(Tk)
        mask = hard_silhouette(chair.vertices @ Tk[:3, :3].T + Tk[:3, 3], chair.faces, cam)
        ns = 10 ** 9 + k * 10 ** 8
        h = Header(frame_id=frame_id, stamp=convert.ns_to_stamp(ns))
        msgs = {'info': convert.camera_to_camera_info(cam, h),
                'image': convert.rgb_to_image(np.stack([mask * 180] * 3, -1).astype(np.uint8),
                                              h),
                'mask': convert.mask_to_image(mask.astype(np.uint8), h)}
        for key, ext in compressed.items():
            pixels = (np.stack([mask * 180] * 3, -1) if key == 'image' else mask).astype(np.uint8)
            msgs[key] = CompressedImage(header=h, format=ext[1:],
                                        data=cv2.imencode(ext, pixels)[1].tobytes())
        for key, conn in conns.items():
            raw = bag.to_cdr(msgs[key])
            w.write(conn, ns, raw[:12] if key == corrupt and k == 1 else raw)
    w.close()
    return poses


@pytest.fixture
def params(tmp_path, chair):
    mesh = tmp_path / 'chair.obj'
    chair.to_trimesh().export(mesh)
    p = tmp_path / 'params.yaml'
    p.write_text('/**:\n  ros__parameters:\n    objects:\n      names: [chair]\n'
                 f'      chair: {{label: 1, mesh: {mesh}}}\n')
    return p


def run(*args):
    return subprocess.run([RRB, 'replay', *map(str, args)], capture_output=True, text=True,
                          timeout=600)


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_replay_writes_inputs_and_outputs(tmp_path, chair, rng, params, storage):
    poses = write_bag(tmp_path / 'in', chair, rng, storage=storage)
    proc = run(tmp_path / 'in', tmp_path / 'out', '--params', params, '--storage', storage,
               '--summary', tmp_path / 'summary.json')
    assert proc.returncode == 0, proc.stderr
    from rosbags.highlevel import AnyReader
    with AnyReader([tmp_path / 'out'], default_typestore=bag.typestore()) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        assert counts['/camera/image_raw'] == 3 and counts['/camera/object_pose'] == 3
        for topic in ('/tf', '/camera/markers', '/camera/overlay', '/camera/object_poses',
                      '/camera/fit_iou', '/camera/detections'):
            assert counts[topic] == 3, topic
        conns = [c for c in reader.connections if c.topic == '/camera/object_pose']
        for k, (_, _, raw) in enumerate(reader.messages(connections=conns)):
            msg = bag.from_cdr(raw, convert.PoseStamped)
            assert msg.header.frame_id == 'camera_optical'
            assert convert.stamp_to_ns(msg.header.stamp) == 10 ** 9 + k * 10 ** 8
            T = convert.pose_to_matrix(msg.pose)
            err = np.linalg.norm(T[:3, 3] - poses[k][:3, 3])
            assert err < 0.03 * np.linalg.norm(poses[k][:3, 3])
    assert '"frames": 3' in (tmp_path / 'summary.json').read_text()


def test_replay_compressed_images_from_a_bare_mcap(tmp_path, chair, rng, params):
    # image_transport's compressed topics; the .mcap file itself (no type hashes, as in bags of
    # older ROS 2 releases); frame ids with ROS 1's leading '/'
    write_bag(tmp_path / 'in', chair, rng, compressed=('image', 'mask'),
              frame_id='/camera_optical')
    (mcap,) = (tmp_path / 'in').glob('*.mcap')
    proc = run(mcap, tmp_path / 'out', '--params', params, '--summary', tmp_path / 's.json')
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("frame_id '/camera_optical' starts with '/'") == 1, proc.stderr
    assert '"frames": 3' in (tmp_path / 's.json').read_text()
    from rosbags.highlevel import AnyReader
    with AnyReader([tmp_path / 'out'], default_typestore=bag.typestore()) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts['/camera/image_raw'] == 3 and counts['/camera/object_pose'] == 3


def test_bad_messages_are_skipped(tmp_path, chair, rng, params):
    write_bag(tmp_path / 'jpeg', chair, rng, compressed={'mask': '.jpg'}, frames=2)
    proc = run(tmp_path / 'jpeg', tmp_path / 'out1', '--params', params)
    assert proc.returncode == 0 and 'losslessly (png)' in proc.stderr, proc.stderr
    assert '"frames": 0' in proc.stdout
    write_bag(tmp_path / 'corrupt', chair, rng, corrupt='mask')
    proc = run(tmp_path / 'corrupt', tmp_path / 'out2', '--params', params)
    assert proc.returncode == 0 and 'cannot deserialize a Image' in proc.stderr, proc.stderr
    assert '"frames": 2' in proc.stdout and 'Traceback' not in proc.stderr
    # a mistyped topic: refused before anything is written
    proc = run(tmp_path / 'corrupt', tmp_path / 'out3', '--params', params,
               '--camera-info', '/camera/mask')
    assert proc.returncode == 2 and 'expected sensor_msgs/msg/CameraInfo' in proc.stderr
    assert not (tmp_path / 'out3').exists()


def test_bad_bags(tmp_path, chair, rng, params):
    proc = run(tmp_path / 'nope', tmp_path / 'out', '--params', params)
    assert proc.returncode == 2 and 'bag not found' in proc.stderr
    corrupt = tmp_path / 'corrupt'
    corrupt.mkdir()
    (corrupt / 'metadata.yaml').write_text('rosbag2_bagfile_information: [garbage\n')
    proc = run(corrupt, tmp_path / 'out', '--params', params)
    assert proc.returncode == 2 and 'cannot read bag' in proc.stderr
    assert 'Traceback' not in proc.stderr
    empty = bag.open_writer(tmp_path / 'empty')  # a valid bag without any message
    empty.close()
    proc = run(tmp_path / 'empty', tmp_path / 'out', '--params', params)
    assert proc.returncode == 2 and 'the bag has no topics' in proc.stderr
    write_bag(tmp_path / 'other', chair, rng, frames=1,
              topics={'image': '/cam/image', 'mask': '/cam/seg', 'info': '/cam/info'})
    proc = run(tmp_path / 'other', tmp_path / 'out', '--params', params)
    assert proc.returncode == 2 and 'no topic /camera/mask' in proc.stderr
    assert '/cam/seg' in proc.stderr
    write_bag(tmp_path / 'in', chair, rng, frames=1)
    proc = run(tmp_path / 'in', tmp_path / 'out')
    assert proc.returncode == 2 and 'the following arguments are required: --params' in \
        proc.stderr, proc.stderr
    (tmp_path / 'exists').mkdir()
    proc = run(tmp_path / 'in', tmp_path / 'exists', '--params', params)
    assert proc.returncode == 2 and 'exists already' in proc.stderr
