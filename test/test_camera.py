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

"""Camera model: camera_info / YAML parsing, validation, crops, ROS optical convention."""

import numpy as np
import pytest
import yaml

from rrb_ros.core.camera import PinholeCamera

K = [500.0, 0.0, 320.0, 0.0, 510.0, 240.0, 0.0, 0.0, 1.0]


def test_from_camera_info_and_convention():
    cam = PinholeCamera.from_camera_info(K, 640, 480, 'plumb_bob', [0.0] * 5)
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (500.0, 510.0, 320.0, 240.0)
    # REP-103 optical frame: +x right, +y down, +z forward
    uv = cam.project(np.array([[0.0, 0.0, 2.0], [0.1, 0.0, 1.0], [0.0, 0.1, 1.0]]))
    assert np.allclose(uv[0], [320, 240])
    assert uv[1, 0] > 320 and np.isclose(uv[1, 1], 240)
    assert uv[2, 1] > 240 and np.isclose(uv[2, 0], 320)
    pts = np.array([[0.3, -0.2, 1.5], [-0.1, 0.4, 3.0]])
    back = cam.backproject(cam.project(pts), pts[:, 2])
    assert np.allclose(back, pts)


@pytest.mark.parametrize('k, d, model, msg', [
    ([float('nan')] + K[1:], [], 'plumb_bob', 'NaN'),
    (K, [0.1, 0, 0, 0, 0], 'plumb_bob', 'distorted'),
    (K, [], 'fisheye_magic', 'unsupported distortion model'),
    (K[:8], [], '', '9 entries'),
    ([-500.0] + K[1:], [], '', 'positive'),
    (K[:1] + [3.0] + K[2:], [], '', 'skew'),
])
def test_bad_camera_info_is_rejected(k, d, model, msg):
    with pytest.raises(ValueError, match=msg):
        PinholeCamera.from_camera_info(k, 640, 480, model, d)


def test_yaml_round_trip_and_errors(tmp_path):
    cam = PinholeCamera(500.0, 510.0, 320.0, 240.0, 640, 480)
    path = tmp_path / 'cam.yaml'
    path.write_text(yaml.safe_dump(cam.to_yaml_dict()))
    assert PinholeCamera.from_yaml(path) == cam
    bad = cam.to_yaml_dict()
    bad['camera_matrix']['data'][0] = float('nan')
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ValueError, match='NaN'):
        PinholeCamera.from_yaml(path)
    path.write_text('image_width: 640\n')
    with pytest.raises(ValueError, match='lacks'):
        PinholeCamera.from_yaml(path)
    with pytest.raises(ValueError, match='cannot read'):
        PinholeCamera.from_yaml(tmp_path / 'missing.yaml')


def test_crop_matches_cv2_resize_pixel_centres():
    import cv2
    cam = PinholeCamera(500.0, 500.0, 320.0, 240.0, 640, 480)
    x0, y0, side, res = 200, 150, 160, 64
    crop = cam.crop(x0, y0, side, side, res, res)
    # a single bright pixel in the image lands where the crop camera projects it
    img = np.zeros((480, 640), np.float32)
    u, v = 281, 203
    img[v - 5:v + 6, u - 5:u + 6] = 1.0
    small = cv2.resize(img[y0:y0 + side, x0:x0 + side], (res, res),
                       interpolation=cv2.INTER_AREA)
    ys, xs = np.nonzero(small)
    w = small[ys, xs]
    centroid = np.array([(xs * w).sum(), (ys * w).sum()]) / w.sum()
    p = cam.backproject(np.array([[u, v]]), 2.0)
    assert np.allclose(crop.project(p)[0], centroid, atol=0.05)
