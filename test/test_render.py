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

"""Soft silhouette rasteriser: against OpenCV, the dense reference and finite differences."""

import numpy as np
import pytest
import torch

from rrb_ros.core.camera import PinholeCamera
from rrb_ros.core.geometry import make_T, viewpoint_rotation
from rrb_ros.core.render import (
    hard_silhouette,
    opencv_silhouette,
    RasterSettings,
    render_silhouette,
    render_silhouette_dense,
    render_silhouette_jacobian,
)


def posed(mesh, T, dtype=torch.float32):
    v = mesh.vertices @ T[:3, :3].T + T[:3, 3]
    return torch.tensor(v, dtype=dtype)[None], torch.tensor(mesh.faces)


def test_matches_opencv_at_small_sigma(camera):
    import trimesh

    from rrb_ros.core.mesh import validate
    parts = trimesh.util.concatenate([trimesh.creation.icosphere(3, radius=0.25),
                                      trimesh.creation.box((0.5, 0.2, 0.3))])
    mesh = validate(parts.vertices, parts.faces)
    T = make_T(viewpoint_rotation(0.7, 0.4, 0.1), [0.05, -0.02, 1.2])
    v, f = posed(mesh, T)
    K = torch.tensor(camera.K, dtype=torch.float32)
    ref = opencv_silhouette(v[0].numpy(), mesh.faces, camera) > 0
    assert ref.sum() > 20000
    for cull in (False, True):
        sil = render_silhouette(v, f, K, camera.width, camera.height,
                                RasterSettings(sigma=0.01, cull_backfaces=cull))[0] > 0.5
        assert (sil.numpy() & ref).sum() / (sil.numpy() | ref).sum() >= 0.99


def test_soft_tends_to_hard_on_thin_parts(chair, camera):
    T = make_T(viewpoint_rotation(0.7, 0.4, 0.1), [0.0, 0.0, 1.4]) @ make_T(
        np.eye(3), -(chair.vertices.min(0) + chair.vertices.max(0)) / 2)
    v, f = posed(chair, T)
    hard = hard_silhouette(v[0].numpy(), chair.faces, camera)
    sil = render_silhouette(v, f, torch.tensor(camera.K, dtype=torch.float32), camera.width,
                            camera.height, RasterSettings(sigma=0.01))[0].numpy() > 0.5
    assert hard.sum() > 20000 and (sil & hard).sum() / (sil | hard).sum() >= 0.995


def test_culled_equals_dense_values_and_gradients(chair):
    cam = PinholeCamera(120.0, 120.0, 47.5, 39.5, 96, 80)
    T = make_T(viewpoint_rotation(-0.5, 0.3, 0.0), [0.02, -0.03, 1.8])
    weights = torch.rand(1, 80, 96, generator=torch.Generator().manual_seed(0))
    for sigma in (0.3, 2.0):
        s = RasterSettings(sigma=sigma, cutoff=14.0)
        grads, sils = [], []
        for fn in (render_silhouette, render_silhouette_dense):
            v, f = posed(chair, T, torch.float64)
            v.requires_grad_(True)
            sil = fn(v, f, torch.tensor(cam.K), cam.width, cam.height, s)
            (sil * weights).sum().backward()
            grads.append(v.grad)
            sils.append(sil.detach())
        # equal up to the truncation beyond the blur radius: exp(-14) per nearby face
        assert (sils[0] - sils[1]).abs().max() < 1e-4
        assert (grads[0] - grads[1]).norm() <= 1e-4 * grads[1].norm()


def test_gradient_matches_finite_differences():
    # a single triangle, float64: the hand-written backward against central differences
    cam = PinholeCamera(40.0, 40.0, 15.5, 15.5, 32, 32)
    v0 = torch.tensor([[[-0.2, -0.15, 1.0], [0.25, -0.1, 1.1], [0.0, 0.22, 0.9]]],
                      dtype=torch.float64)
    f = torch.tensor([[0, 1, 2]])
    K = torch.tensor(cam.K)
    w = torch.rand(1, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    s = RasterSettings(sigma=1.5, cutoff=30.0)

    def loss(v):
        return (render_silhouette(v, f, K, 32, 32, s) * w).sum()

    v = v0.clone().requires_grad_(True)
    loss(v).backward()
    num = torch.zeros_like(v0)
    eps = 1e-6
    for idx in np.ndindex(*v0.shape):
        d = torch.zeros_like(v0)
        d[idx] = eps
        num[idx] = (loss(v0 + d) - loss(v0 - d)) / (2 * eps)
    assert torch.allclose(v.grad, num, rtol=1e-4, atol=1e-6)


def test_forward_mode_jacobian_matches_autograd(chair):
    # the Levenberg-Marquardt Jacobian: vertices move linearly in 4 parameters; its dS/dq must
    # be autograd's through render_silhouette, for closed (culled) and open rendering
    cam = PinholeCamera(110.0, 110.0, 39.5, 35.5, 80, 72)
    T = make_T(viewpoint_rotation(0.9, 0.35, 0.1), [0.01, 0.02, 1.7])
    v0 = posed(chair, T, torch.float64)[0][0]
    f = torch.tensor(chair.faces)
    K = torch.tensor(cam.K)
    dX = torch.randn(len(v0), 3, 4, dtype=torch.float64,
                     generator=torch.Generator().manual_seed(3)) * 0.01
    for s in (RasterSettings(sigma=0.15), RasterSettings(sigma=1.0, cull_backfaces=True)):
        S, J = render_silhouette_jacobian(v0, dX, f, K, cam.width, cam.height, s)
        assert S.shape == (72, 80) and J.shape == (72, 80, 4)
        assert torch.allclose(S, render_silhouette(v0[None], f, K, 80, 72, s)[0], atol=1e-12)
        for seed in (4, 5):   # weighted sums of J against the gradient of the weighted sum
            w = torch.rand(72, 80, dtype=torch.float64,
                           generator=torch.Generator().manual_seed(seed))
            q = torch.zeros(4, dtype=torch.float64, requires_grad=True)
            (render_silhouette((v0 + dX @ q)[None], f, K, 80, 72, s)[0] * w).sum().backward()
            assert q.grad.abs().max() > 1.0
            assert torch.allclose((J * w[..., None]).sum((0, 1)), q.grad, rtol=1e-9, atol=1e-9)


def test_scanline_candidates_cover_every_pixel_within_the_blur_radius():
    # random triangles (tiny to large, horizontal and vertical edges, partly off the image,
    # two images): every (face, pixel) within r of a triangle must be a candidate pair, once
    from rrb_ros.core.render import _candidate_pairs
    g = torch.Generator().manual_seed(7)
    W, H, r = 37, 29, 1.7
    centre = torch.rand(2, 60, 1, 2, generator=g, dtype=torch.float64) * torch.tensor(
        [W + 10.0, H + 10.0], dtype=torch.float64) - 5
    scale = torch.exp(torch.randn(2, 60, 1, 1, generator=g, dtype=torch.float64) * 1.5)
    tri = centre + scale * torch.randn(2, 60, 3, 2, generator=g, dtype=torch.float64)
    tri[0, :10, 1, 1] = tri[0, :10, 0, 1]          # horizontal edges
    tri[1, :10, 2, 0] = tri[1, :10, 1, 0]          # vertical edges
    valid = torch.ones(2, 60, dtype=torch.bool)
    valid[1, -5:] = False
    bf, pair_face, p, pix = _candidate_pairs(tri, valid, W, H, r)
    face = bf[pair_face]
    b = face // 60
    assert torch.equal(pix, (b * H + p[1].long()) * W + p[0].long())
    key = face * (2 * H * W) + pix
    assert len(torch.unique(key)) == len(key)
    # distance from every pixel centre to every triangle (0 inside)
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float64),
                            torch.arange(W, dtype=torch.float64), indexing='ij')
    q = torch.stack([xs, ys], -1).reshape(1, 1, -1, 1, 2)
    a = tri[:, :, None]
    e = a.roll(-1, dims=3) - a
    w = q - a
    t = ((w * e).sum(-1) / (e * e).sum(-1).clamp_min(1e-12)).clamp(0, 1)
    dist = (w - t[..., None] * e).norm(dim=-1).amin(-1)               # (2, 60, HW)
    cross = e[..., 0] * w[..., 1] - e[..., 1] * w[..., 0]
    inside = (cross >= 0).all(-1) | (cross <= 0).all(-1)
    near = ((dist < r - 1e-6) | inside) & valid[..., None]
    fb, pixel = torch.nonzero(near.reshape(120, H * W), as_tuple=True)
    want = fb * (2 * H * W) + (fb // 60) * H * W + pixel
    assert len(want) > 500
    assert torch.isin(want, key).all()
    # and scanlines are tighter than the face boxes
    size = torch.tensor([W, H])
    first = (tri.amin(2) - r).ceil().clamp(torch.zeros(2), size - 1)
    last = (tri.amax(2) + r).floor().clamp(-torch.ones(2), size - 1)
    in_box = (last - first + 1).clamp_min(0).prod(-1)[valid]
    assert len(key) < 0.8 * in_box.sum()


def test_batch_equals_single_poses(chair):
    cam = PinholeCamera(100.0, 100.0, 31.5, 31.5, 64, 64)
    Ts = [make_T(viewpoint_rotation(a, 0.3, 0.0), [0.0, 0.0, 2.0]) for a in (0.0, 1.0, 2.5)]
    vs = torch.cat([posed(chair, T)[0] for T in Ts])
    f = torch.tensor(chair.faces)
    K = torch.tensor(cam.K, dtype=torch.float32)
    batch = render_silhouette(vs, f, K, 64, 64)
    for i in range(3):
        assert torch.allclose(batch[i], render_silhouette(vs[i:i + 1], f, K, 64, 64)[0],
                              atol=1e-6)
    assert not torch.allclose(batch[0], batch[1])


def test_behind_camera_and_bad_input(chair):
    cam = PinholeCamera(100.0, 100.0, 31.5, 31.5, 64, 64)
    v, f = posed(chair, make_T(np.eye(3), [0, 0, -2.0]))
    K = torch.tensor(cam.K, dtype=torch.float32)
    assert render_silhouette(v, f, K, 64, 64).abs().sum() == 0
    with pytest.raises(ValueError, match='verts_cam'):
        render_silhouette(v[0], f, K, 64, 64)
    with pytest.raises(ValueError, match='faces'):
        render_silhouette(v, f.float(), K, 64, 64)
    with pytest.raises(ValueError, match='K'):
        render_silhouette(v, f, K[:2], 64, 64)
