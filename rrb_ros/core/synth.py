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

"""Generated test sequences: a camera moving through a static scene of objects on a floor.

The world frame has +z up and the floor at z = 0; objects stand on it. Camera poses are
`T_world_cam` of the camera OPTICAL frame (z forward, x right, y down), as in the paper's
Blender sequences (camera height 1.25 m, 30 Hz).

`render_frame` is a headless CPU renderer in plain torch: a z-buffer over all object triangles
gives the visible object per pixel (its label) and its depth; objects are Lambert-shaded with a
per-object colour and a little 3D cell texture fixed to the object (so feature-based SLAM finds
corners on them too); the floor is textured analytically per pixel (ray-plane intersection and a
mip-mapped bilinear lookup in a procedural texture made once from a seed), with a sky gradient
above the horizon. Pixel centres are at integer coordinates and a pixel belongs to a triangle
when its centre lies inside it: the conventions of `PinholeCamera.project` and
`render.hard_silhouette`.
"""

from __future__ import annotations

from dataclasses import dataclass
import functools
from pathlib import Path
import re
from typing import Sequence

import cv2
import numpy as np
import torch

from .camera import PinholeCamera
from .geometry import from_rotvec, invert_T, make_T
from .mesh import footprint_origin, load_mesh, Mesh, validate
from .objects import procedural_chair, subdivide

CAMERA_HEIGHT = 1.25
"""Camera height above the floor (metres), as in the paper's sequences."""
RATE = 30.0
"""Frame rate of the generated sequences (Hz)."""

# bits of the packed z-buffer key below the float32 depth bits: the face index
_FACE_BITS = 22


@dataclass(frozen=True)
class SceneObject:
    """One rigid object of a scene."""

    name: str
    """Name (a valid ROS name component: letters, digits, underscores)."""
    label: int
    """Value of its pixels in the label mask (>= 1; 0 is background)."""
    mesh: Mesh
    """Mesh in its object frame (metres)."""
    T_world_obj: np.ndarray
    """(4, 4) pose of the object frame in the world."""
    colour: tuple[float, float, float] = (0.7, 0.7, 0.7)
    """Base RGB colour in [0, 1]."""


@dataclass
class Scene:
    """Static objects standing on the textured floor z = 0 of the world frame (+z up).

    Treat a scene as immutable: the renderer caches its triangles on first use.
    """

    objects: list[SceneObject]
    """The objects, labels unique and >= 1."""
    ground_seed: int = 0
    """Seed of the procedural floor texture."""
    texel: float = 0.01
    """Size of a floor texture pixel (metres); the texture repeats every 2048 texels."""

    def __post_init__(self) -> None:
        if not self.objects:
            raise ValueError('a scene needs at least one object')
        labels = [o.label for o in self.objects]
        names = [o.name for o in self.objects]
        if len(set(labels)) != len(labels) or min(labels) < 1 or max(labels) > 65535:
            raise ValueError(f'object labels must be unique and in [1, 65535], got {labels}')
        if len(set(names)) != len(names):
            raise ValueError(f'object names must be unique, got {names}')

    @functools.cached_property
    def world_vertices(self) -> list[np.ndarray]:
        """Per object, its (V, 3) vertices in the world frame."""
        return [o.mesh.vertices @ o.T_world_obj[:3, :3].T + o.T_world_obj[:3, 3]
                for o in self.objects]

    @property
    def centre(self) -> np.ndarray:
        """(3,) centre of the objects' footprint on the floor (z = 0)."""
        v = np.concatenate(self.world_vertices)
        c = (v.min(0) + v.max(0)) / 2
        return np.array([c[0], c[1], 0.0])

    @property
    def radius_xy(self) -> float:
        """Largest horizontal distance of a vertex from `centre` (metres)."""
        v = np.concatenate(self.world_vertices)
        return float(np.linalg.norm(v[:, :2] - self.centre[:2], axis=1).max())

    @property
    def height(self) -> float:
        """Height of the highest vertex above the floor (metres)."""
        return float(np.concatenate(self.world_vertices)[:, 2].max())

    @functools.cached_property
    def packed(self) -> '_PackedScene':
        """All triangles in one table, for the renderer."""
        return _pack(self)


# --------------------------------------------------------------------------------------------
# scenes

_PALETTE = ((0.80, 0.25, 0.20), (0.20, 0.45, 0.80), (0.85, 0.65, 0.15), (0.25, 0.65, 0.35),
            (0.60, 0.30, 0.70), (0.15, 0.65, 0.70), (0.85, 0.45, 0.60), (0.55, 0.40, 0.25))


def _yaw(angle: float) -> np.ndarray:
    return from_rotvec(np.array([0.0, 0.0, angle]))


def _colours(rng: np.random.Generator, n: int) -> list[tuple[float, float, float]]:
    order = rng.permutation(len(_PALETTE))
    return [_PALETTE[order[i % len(_PALETTE)]] for i in range(n)]


def single_chair_scene(rng: np.random.Generator, min_faces: int = 0) -> Scene:
    """One procedural chair (random proportions) at the origin with a random yaw.

    `min_faces` > 0 subdivides the chair's triangles (same shape) to at least that many.
    """
    mesh = procedural_chair(rng)
    if min_faces > 0:
        mesh = subdivide(mesh, min_faces)
    T = make_T(_yaw(rng.uniform(0, 2 * np.pi)), [0.0, 0.0, 0.0])
    colour = _colours(rng, 1)[0]
    return Scene([SceneObject('chair', 1, mesh, T, colour)],
                 ground_seed=int(rng.integers(2**31)))


def two_chair_scene(rng: np.random.Generator, min_faces: int = 0) -> Scene:
    """Two procedural chairs 1-1.5 m apart, with different yaws and proportions."""
    first = procedural_chair(rng)
    for _ in range(20):  # independent draws; insist on a visible difference in size
        second = procedural_chair(rng)
        if np.abs(first.extents - second.extents).max() > 0.05:
            break
    meshes = [first, second]
    if min_faces > 0:
        meshes = [subdivide(m, min_faces) for m in meshes]
    gap = rng.uniform(1.0, 1.5)
    direction = rng.uniform(0, 2 * np.pi)
    offset = 0.5 * gap * np.array([np.cos(direction), np.sin(direction), 0.0])
    yaw = rng.uniform(0, 2 * np.pi)
    yaws = (yaw, yaw + rng.choice([-1, 1]) * rng.uniform(np.pi / 3, np.pi))
    colours = _colours(rng, 2)
    objects = [SceneObject(f'chair_{i + 1}', i + 1, m, make_T(_yaw(a), s * offset), c)
               for i, (m, a, s, c) in enumerate(zip(meshes, yaws, (-1, 1), colours))]
    return Scene(objects, ground_seed=int(rng.integers(2**31)))


def _ros_name(stem: str, taken: set[str]) -> str:
    name = re.sub(r'[^A-Za-z0-9_]', '_', stem).strip('_') or 'object'
    if not name[0].isalpha():
        name = 'obj_' + name
    base, k = name, 2
    while name in taken:
        name, k = f'{base}_{k}', k + 1
    return name


def scene_from_meshes(paths: Sequence[str | Path], rng: np.random.Generator,
                      gap: float = 0.4) -> Scene:
    """Place the given meshes (metres) in a row on the floor, random yaws, `gap` m apart.

    Each mesh is re-centred: its footprint centre at its origin and its lowest point at z = 0
    (the exported meshes of a sequence are these re-centred ones). Raises ValueError (MeshError)
    for a missing or unreadable file.
    """
    if not paths:
        raise ValueError('no mesh files given')
    meshes, names = [], []
    taken: set[str] = set()
    for path in paths:
        mesh = load_mesh(path)
        meshes.append(validate(mesh.vertices - footprint_origin(mesh.vertices), mesh.faces,
                               name=str(path)))
        names.append(_ros_name(Path(path).stem, taken))
        taken.add(names[-1])
    yaws = rng.uniform(0, 2 * np.pi, len(meshes))
    widths = []
    for mesh, yaw in zip(meshes, yaws):
        v = mesh.vertices @ _yaw(yaw).T
        widths.append(float(v[:, 0].max() - v[:, 0].min()))
    x = np.cumsum([0.0] + [w / 2 + gap + w2 / 2 for w, w2 in zip(widths[:-1], widths[1:])])
    x -= x.mean()
    colours = _colours(rng, len(meshes))
    objects = [SceneObject(n, i + 1, m, make_T(_yaw(a), [xi, 0.0, 0.0]), c)
               for i, (n, m, a, xi, c) in enumerate(zip(names, meshes, yaws, x, colours))]
    return Scene(objects, ground_seed=int(rng.integers(2**31)))


# --------------------------------------------------------------------------------------------
# trajectories

def look_at(eye: np.ndarray, target: np.ndarray, up: Sequence[float] = (0.0, 0.0, 1.0)
            ) -> np.ndarray:
    """T_world_cam of an optical frame at `eye` looking at `target`, image 'up' towards `up`."""
    eye, target = np.asarray(eye, dtype=np.float64), np.asarray(target, dtype=np.float64)
    z = target - eye
    n = np.linalg.norm(z)
    if n < 1e-9:
        raise ValueError('look_at: eye and target coincide')
    z /= n
    x = np.cross(z, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(x) < 1e-6:
        raise ValueError('look_at: viewing direction parallel to up')
    x /= np.linalg.norm(x)
    y = np.cross(z, x)                      # image down
    return make_T(np.stack([x, y, z], axis=1), eye)


def _stamps(n_frames: int, rate: float) -> np.ndarray:
    if int(n_frames) < 1:
        raise ValueError(f'a trajectory needs at least 1 frame, got {n_frames}')
    return np.arange(int(n_frames)) / float(rate)


def orbit(centre: Sequence[float], n_frames: int, *, radius: float = 3.0,
          height: float = CAMERA_HEIGHT, arc_deg: float = 150.0, start_deg: float = 0.0,
          target_height: float = 0.4, rate: float = RATE) -> tuple[np.ndarray, np.ndarray]:
    """Camera circling `centre` at `radius` and `height` (m) over `arc_deg`, looking at it.

    The camera looks at the point `target_height` above `centre`. Returns stamps (N,) in seconds
    from 0 at `rate` Hz and T_world_cam (N, 4, 4) of the optical frame.
    """
    stamps = _stamps(n_frames, rate)
    centre = np.asarray(centre, dtype=np.float64)
    frac = np.linspace(0.0, 1.0, len(stamps)) if len(stamps) > 1 else np.zeros(1)
    angles = np.deg2rad(start_deg + arc_deg * frac)
    target = centre + [0.0, 0.0, target_height]
    poses = [look_at(centre + [radius * np.cos(a), radius * np.sin(a), height], target)
             for a in angles]
    return stamps, np.stack(poses)


def _smooth_noise(rng: np.random.Generator, t: np.ndarray, terms: int = 3,
                  f_lo: float = 0.05, f_hi: float = 0.4) -> np.ndarray:
    """Random smooth signal of time t (s) in [-1, 1]: a few sinusoids of f_lo..f_hi Hz."""
    amp = rng.uniform(0.5, 1.0, terms)
    freq = rng.uniform(f_lo, f_hi, terms)
    phase = rng.uniform(0, 2 * np.pi, terms)
    return (amp * np.sin(2 * np.pi * freq * t[:, None] + phase)).sum(1) / amp.sum()


def _jitter(rng: np.random.Generator, n: int, std: float, dims: int = 3) -> np.ndarray:
    """High-frequency noise (n, dims) of standard deviation ~std: white, 3-frame smoothed."""
    w = rng.normal(size=(n + 2, dims))
    return std * (w[:-2] + w[1:-1] + w[2:]) / np.sqrt(3.0)


def handheld(centre: Sequence[float], n_frames: int, rng: np.random.Generator, *,
             radius: float = 3.0, height: float = CAMERA_HEIGHT, arc_deg: float = 120.0,
             start_deg: float | None = None, target_height: float = 0.4,
             jitter_position: float = 0.004, jitter_angle_deg: float = 0.5,
             rate: float = RATE) -> tuple[np.ndarray, np.ndarray]:
    """Walk around `centre` like a hand-held camera, always looking roughly at it.

    A smooth random path (radius +-0.3 m, height +-0.08 m, aim point +-0.15 m, roll +-3 deg,
    sweeping about `arc_deg` around the scene) plus high-frequency jitter of `jitter_position`
    metres and `jitter_angle_deg` degrees (standard deviations). Returns stamps (N,) in seconds
    and T_world_cam (N, 4, 4) of the optical frame.
    """
    stamps = _stamps(n_frames, rate)
    n = len(stamps)
    centre = np.asarray(centre, dtype=np.float64)
    frac = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
    start = rng.uniform(0, 360) if start_deg is None else start_deg
    angle = np.deg2rad(start + arc_deg * frac) + 0.1 * _smooth_noise(rng, stamps)
    r = radius + 0.3 * _smooth_noise(rng, stamps)
    h = height + 0.08 * _smooth_noise(rng, stamps)
    aim = np.stack([0.15 * _smooth_noise(rng, stamps), 0.15 * _smooth_noise(rng, stamps),
                    target_height + 0.08 * _smooth_noise(rng, stamps)], axis=1)
    roll = np.deg2rad(3.0) * _smooth_noise(rng, stamps)
    d_pos = _jitter(rng, n, jitter_position)
    d_rot = _jitter(rng, n, np.deg2rad(jitter_angle_deg))
    poses = []
    for i in range(n):
        eye = centre + [r[i] * np.cos(angle[i]), r[i] * np.sin(angle[i]), h[i]] + d_pos[i]
        T = look_at(eye, centre + aim[i])
        T[:3, :3] = T[:3, :3] @ from_rotvec([0.0, 0.0, roll[i]]) @ from_rotvec(d_rot[i])
        poses.append(T)
    return stamps, np.stack(poses)


TRAJECTORIES = ('orbit', 'handheld')


MAX_DEG_PER_FRAME = 1.5
"""Largest sweep of a generated trajectory per frame (degrees; ~45 deg/s at 30 Hz)."""


def scene_trajectory(scene: Scene, kind: str, n_frames: int, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Return the `kind` ('orbit' or 'handheld') trajectory sized for `scene`."""
    radius = float(np.clip(2.2 + scene.radius_xy, 2.5, 3.5))
    target_height = 0.45 * min(scene.height, 1.5)
    # a camera does not teleport: short sequences sweep a shorter arc
    max_arc = MAX_DEG_PER_FRAME * max(n_frames - 1, 1)
    if kind == 'orbit':
        return orbit(scene.centre, n_frames, radius=radius,
                     arc_deg=min(rng.uniform(120, 180), max_arc),
                     start_deg=rng.uniform(0, 360), target_height=target_height)
    if kind == 'handheld':
        return handheld(scene.centre, n_frames, rng, radius=radius,
                        arc_deg=min(rng.uniform(90, 150), max_arc), target_height=target_height)
    raise ValueError(f'unknown trajectory {kind!r}; choose one of {", ".join(TRAJECTORIES)}')


# --------------------------------------------------------------------------------------------
# rendering

@dataclass(frozen=True)
class _PackedScene:
    vertices: torch.Tensor        # (V, 3) float64, world
    faces: torch.Tensor           # (F, 3) long, into vertices
    face_obj: torch.Tensor        # (F,) long, object index
    normals: torch.Tensor         # (F, 3) float64, world, unit
    albedo: torch.Tensor          # (F, 3) float32, object colour x per-face variation
    labels: torch.Tensor          # (n_obj,) long
    T_obj_world: torch.Tensor     # (n_obj, 4, 4) float64


def _pack(scene: Scene) -> _PackedScene:
    verts, faces, face_obj = [], [], []
    offset = 0
    for i, (obj, v) in enumerate(zip(scene.objects, scene.world_vertices)):
        verts.append(v)
        faces.append(obj.mesh.faces + offset)
        face_obj.append(np.full(len(obj.mesh.faces), i))
        offset += len(v)
    v, f, fo = np.concatenate(verts), np.concatenate(faces), np.concatenate(face_obj)
    if len(f) >= 2 ** _FACE_BITS:
        raise ValueError(f'too many triangles to render ({len(f)} >= {2 ** _FACE_BITS})')
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)
    colours = np.array([o.colour for o in scene.objects])[fo]
    # a few percent of per-face shade variation (fixed by the face index)
    variation = 0.94 + 0.12 * np.random.default_rng(len(f)).random(len(f))
    return _PackedScene(
        torch.as_tensor(v), torch.as_tensor(f, dtype=torch.long), torch.as_tensor(fo),
        torch.as_tensor(n), torch.as_tensor(colours * variation[:, None], dtype=torch.float32),
        torch.as_tensor([o.label for o in scene.objects], dtype=torch.long),
        torch.as_tensor(np.stack([invert_T(o.T_world_obj) for o in scene.objects])))


@functools.lru_cache(maxsize=4)
def ground_texture(seed: int, size: int = 2048) -> np.ndarray:
    """Procedural floor texture (size, size, 3) uint8: random blobs, speckles and lines.

    High contrast at several scales and no repetition inside the image, so ORB-like detectors
    find many distinct corners. Deterministic in `seed`.
    """
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size), np.float32)
    for cells, weight in ((8, 50.0), (32, 40.0), (128, 30.0)):   # multi-scale value noise
        noise = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
        img += weight * cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    tint = rng.uniform(-0.12, 0.12, 3).astype(np.float32)
    out = np.clip(120 + img[..., None] * (1 + tint), 0, 255).astype(np.uint8)
    out = np.ascontiguousarray(out)
    area = size * size / 2048 ** 2

    def colour() -> tuple[int, int, int]:
        g = rng.uniform(0, 255)
        c = np.clip(g * (1 + rng.uniform(-0.35, 0.35, 3)), 0, 255)
        return tuple(int(x) for x in c)

    for _ in range(int(2500 * area)):                     # blobs
        centre = tuple(int(x) for x in rng.integers(0, size, 2))
        axes = tuple(int(x) for x in rng.integers(3, 30, 2))
        cv2.ellipse(out, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour(), -1,
                    cv2.LINE_AA)
    for _ in range(int(1200 * area)):                     # polygons (sharp corners)
        p0 = rng.integers(0, size, 2)
        pts = (p0 + rng.integers(-25, 26, (int(rng.integers(3, 6)), 2))).astype(np.int32)
        cv2.fillPoly(out, [pts], colour(), cv2.LINE_AA)
    for _ in range(int(900 * area)):                      # lines
        p0 = rng.integers(0, size, 2)
        p1 = p0 + rng.integers(-80, 81, 2)
        cv2.line(out, tuple(int(x) for x in p0), tuple(int(x) for x in p1), colour(),
                 int(rng.integers(1, 4)), cv2.LINE_AA)
    n_dots = int(20000 * area)                            # speckles
    ys, xs = rng.integers(0, size, n_dots), rng.integers(0, size, n_dots)
    dots = rng.uniform(0, 255, (n_dots, 1)).astype(np.uint8)
    for dy in (0, 1):
        for dx in (0, 1):
            out[(ys + dy) % size, (xs + dx) % size] = dots
    return out


@functools.lru_cache(maxsize=4)
def _ground_mips(seed: int) -> tuple[np.ndarray, ...]:
    """Mip pyramid of the floor texture, finest first, down to 8 x 8 texels."""
    levels = [ground_texture(seed)]
    while levels[-1].shape[0] > 8:
        levels.append(cv2.resize(levels[-1], None, fx=0.5, fy=0.5,
                                 interpolation=cv2.INTER_AREA))
    return tuple(levels)


@functools.lru_cache(maxsize=4)
def _pixel_rays(camera: PinholeCamera) -> torch.Tensor:
    """(H*W, 3) float32 rays through the pixel centres, optical frame, unit z component."""
    W, H = camera.size
    us = (torch.arange(W, dtype=torch.float32) - camera.cx) / camera.fx
    vs = (torch.arange(H, dtype=torch.float32) - camera.cy) / camera.fy
    return torch.stack([us[None, :].expand(H, W), vs[:, None].expand(H, W),
                        torch.ones(H, W)], -1).reshape(-1, 3).contiguous()


def _cell_hash(cell: torch.Tensor) -> torch.Tensor:
    """Pseudo-random value in [0, 1) per integer 3D cell (..., 3) long."""
    h = cell[..., 0] * 73856093 ^ cell[..., 1] * 19349663 ^ cell[..., 2] * 83492791
    h = (h ^ (h >> 13)) * 1274126177
    return ((h ^ (h >> 16)) & 1023).to(torch.float32) / 1024.0


@dataclass
class RenderSettings:
    """How `render_frame` shades a scene."""

    znear: float = 0.05
    """Triangles with a vertex closer than this (metres, optical axis) are not drawn."""
    light_dir: tuple[float, float, float] = (0.35, -0.25, 1.0)
    """Direction towards the (directional) light, world frame."""
    ambient: float = 0.4
    """Ambient share of the object shading; the rest is Lambertian."""
    cell_size: float = 0.035
    """Edge (metres) of the 3D cells of the object texture."""
    cell_contrast: float = 0.35
    """Brightness range of the object cell texture (0 = plain colour)."""
    fog_distance: float = 60.0
    """The floor fades towards the horizon colour over about this distance (metres)."""
    max_pairs: int = 4_000_000
    """(face, pixel) candidates rasterised per chunk (bounds the memory use)."""
    horizon: tuple[int, int, int] = (205, 212, 222)
    """Sky colour at the horizon (RGB)."""
    zenith: tuple[int, int, int] = (95, 140, 205)
    """Sky colour high above the horizon (RGB)."""


def _rasterise(tri: torch.Tensor, tz: torch.Tensor, valid: torch.Tensor, width: int,
               height: int, max_pairs: int) -> torch.Tensor:
    """Packed z-buffer (H*W,) int64: float32 depth bits << _FACE_BITS | face; -1 = empty.

    tri: (F, 3, 2) projected triangles (pixels), tz: (F, 3) vertex depths (metres).
    A pixel belongs to a triangle when its centre is inside or on its edges; the depth is
    interpolated perspective-correctly (1/z is affine in the image).
    """
    empty = torch.iinfo(torch.int64).max
    zbuf = torch.full((height * width,), empty, dtype=torch.int64)
    x, y = tri[..., 0], tri[..., 1]
    area2 = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (x[:, 2] - x[:, 0]) * (y[:, 1] - y[:, 0])
    valid = valid & (area2 != 0)
    area2 = torch.where(valid, area2, torch.ones_like(area2))
    lo = tri.amin(1).ceil()
    hi = tri.amax(1).floor()
    lo[:, 0].clamp_(0, width - 1)
    lo[:, 1].clamp_(0, height - 1)
    hi[:, 0].clamp_(-1, width - 1)
    hi[:, 1].clamp_(-1, height - 1)
    span = (hi - lo + 1).clamp_min(0).long() * valid[:, None]
    count = span[:, 0] * span[:, 1]
    faces = torch.nonzero(count, as_tuple=True)[0]
    if len(faces) == 0:
        return zbuf.fill_(-1)
    cnt = count[faces]
    # split the faces into chunks of at most max_pairs candidates (a huge face: its own chunk)
    ends = torch.cumsum(cnt, 0)
    chunk_of = torch.div(ends - 1, max_pairs, rounding_mode='floor')
    bounds = torch.nonzero(torch.diff(chunk_of), as_tuple=True)[0] + 1
    edges = [0] + bounds.tolist() + [len(faces)]
    # per face: edge-function coefficients (a x + b y + c for the edge opposite each vertex),
    # normalised by the signed doubled area, so they are barycentric coordinates
    j, k = [1, 2, 0], [2, 0, 1]
    a = (y[:, j] - y[:, k]) / area2[:, None]              # vertex i's weight: edge j -> k
    b = (x[:, k] - x[:, j]) / area2[:, None]
    c = (x[:, j] * y[:, k] - x[:, k] * y[:, j]) / area2[:, None]
    inv_z = 1.0 / tz
    table = torch.cat([a, b, c, inv_z], 1)                # (F, 12) float
    for s, e in zip(edges[:-1], edges[1:]):
        f = faces[s:e]
        n = cnt[s:e]
        total = int(n.sum())
        face_of_pair = torch.repeat_interleave(torch.arange(len(f)), n, output_size=total)
        start = torch.cumsum(n, 0) - n
        local = torch.arange(total) - start[face_of_pair]
        sx = span[f, 0][face_of_pair]
        row = torch.div(local, sx, rounding_mode='floor')
        px = (lo[f, 0].long()[face_of_pair] + local - row * sx)
        py = lo[f, 1].long()[face_of_pair] + row
        t = table[f][face_of_pair]                        # (P, 12)
        pxf, pyf = px.to(t.dtype), py.to(t.dtype)
        bary = t[:, 0:3] * pxf[:, None] + t[:, 3:6] * pyf[:, None] + t[:, 6:9]
        inside = (bary >= 0).all(1)
        depth = 1.0 / (bary * t[:, 9:12]).sum(1)
        keep = inside & (depth > 0)
        bits = depth[keep].to(torch.float32).view(torch.int32).to(torch.int64)
        key = (bits << _FACE_BITS) | f[face_of_pair[keep]]
        zbuf.scatter_reduce_(0, (py * width + px)[keep], key, reduce='amin')
    return torch.where(zbuf == empty, torch.full_like(zbuf, -1), zbuf)


def render_frame(scene: Scene, camera: PinholeCamera, T_world_cam: np.ndarray,
                 settings: RenderSettings | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Render the scene seen by `camera` at T_world_cam (optical frame pose in the world).

    Returns rgb (H, W, 3) uint8 and labels (H, W): the label of the object visible at each
    pixel, 0 for floor and sky; uint8 when all labels fit, else uint16.
    """
    settings = settings or RenderSettings()
    T_world_cam = np.asarray(T_world_cam, dtype=np.float64)
    if T_world_cam.shape != (4, 4) or not np.all(np.isfinite(T_world_cam)):
        raise ValueError(f'T_world_cam must be a finite 4x4 matrix, got {T_world_cam.shape}')
    W, H = camera.size
    fx, fy, cx, cy = camera.fx, camera.fy, camera.cx, camera.cy
    ps = scene.packed
    T_wc = torch.as_tensor(T_world_cam)
    R_wc, t_wc = T_wc[:3, :3], T_wc[:3, 3]
    with torch.no_grad():
        # objects: z-buffer over all triangles
        v_cam = (ps.vertices - t_wc) @ R_wc                       # (V, 3) float64
        z = v_cam[:, 2]
        uv = torch.stack([fx * v_cam[:, 0] / z + cx, fy * v_cam[:, 1] / z + cy], 1)
        tz = z[ps.faces]
        valid = (tz > settings.znear).all(1)
        tri = torch.where(valid[:, None, None], uv[ps.faces], torch.zeros(()))
        zbuf = _rasterise(tri.to(torch.float32), tz.to(torch.float32), valid, W, H,
                          settings.max_pairs)
        hit = zbuf >= 0
        face = torch.where(hit, zbuf & (2 ** _FACE_BITS - 1), torch.zeros_like(zbuf))
        depth = (zbuf >> _FACE_BITS).to(torch.int32).view(torch.float32)

        # rays through the pixel centres, as world directions with unit optical-axis component
        d_cam = _pixel_rays(camera)
        d_world = d_cam @ R_wc.T.to(torch.float32)
        dz = d_world[:, 2]
        cz = float(t_wc[2])
        t_ground = -cz / torch.where(dz == 0, torch.full_like(dz, 1e-12), dz)
        on_ground = t_ground > 0
        visible = hit & (~on_ground | (depth <= t_ground * (1 + 1e-4)))

        # floor and sky
        rgb = _sky(d_world, settings)
        g = torch.nonzero(on_ground & ~visible, as_tuple=True)[0]
        if len(g):
            rgb[g] = _floor(scene, camera, d_world[g], d_cam[g], t_ground[g],
                            t_wc.to(torch.float32), settings)

        # objects: Lambert with the normal turned towards the camera, cell texture
        o = torch.nonzero(visible, as_tuple=True)[0]
        labels = torch.zeros(H * W, dtype=torch.long)
        if len(o):
            f = face[o]
            obj = ps.face_obj[f]
            labels[o] = ps.labels[obj]
            n = ps.normals[f].to(torch.float32)
            n = n * torch.sign((n * d_world[o]).sum(1, keepdim=True)).neg()
            light = torch.tensor(settings.light_dir, dtype=torch.float32)
            light = light / light.norm()
            lambert = (n @ light).clamp_min(0)
            shade = settings.ambient + (1 - settings.ambient) * lambert
            p_cam = (d_cam[o] * depth[o, None]).to(torch.float64)
            T_oc = ps.T_obj_world[obj] @ T_wc                   # (P, 4, 4)
            p_obj = (T_oc[:, :3, :3] @ p_cam[:, :, None])[..., 0] + T_oc[:, :3, 3]
            cell = torch.floor(p_obj / settings.cell_size + 0.3173).long()
            tex = 1 - settings.cell_contrast / 2 + settings.cell_contrast * _cell_hash(cell)
            col = ps.albedo[f] * (shade * tex)[:, None] * 255
            rgb[o] = col.clamp(0, 255)
    rgb = rgb.round().to(torch.uint8).reshape(H, W, 3).numpy()
    dtype = np.uint8 if int(ps.labels.max()) <= 255 else np.uint16
    return rgb, labels.reshape(H, W).numpy().astype(dtype)


def _sky(d_world: torch.Tensor, settings: RenderSettings) -> torch.Tensor:
    """Sky gradient (N, 3) float by the elevation of the ray directions (N, 3)."""
    elevation = d_world[:, 2] / d_world.norm(dim=1)
    w = (elevation / 0.5).clamp(0, 1)[:, None]
    horizon = torch.tensor(settings.horizon, dtype=torch.float32)
    zenith = torch.tensor(settings.zenith, dtype=torch.float32)
    return horizon + w * (zenith - horizon)


def _floor(scene: Scene, camera: PinholeCamera, d_world: torch.Tensor, d_cam: torch.Tensor,
           t: torch.Tensor, eye: torch.Tensor, settings: RenderSettings) -> torch.Tensor:
    """Floor colour (N, 3) float for rays hitting z = 0 at optical depth t (N,).

    Bilinear lookup in the mip level whose texels match the pixel's footprint on the floor
    (cv2.remap per level, on the pixels of that level laid out as rows).
    """
    levels = _ground_mips(scene.ground_seed)
    size0 = levels[0].shape[0]
    p = eye[:2] + t[:, None] * d_world[:, :2]                   # (N, 2) floor point (m)
    # footprint of a pixel on the floor (m): range / f, stretched by the grazing angle
    norm = d_cam.norm(dim=1)
    slant = (d_world[:, 2].abs() / norm).clamp_min(1e-3)
    distance = t * norm
    foot = distance / (min(camera.fx, camera.fy) * slant.sqrt())
    level = torch.log2(foot / scene.texel).round().clamp(0, len(levels) - 1).to(torch.int8)
    q = p / scene.texel + size0 / 2                             # finest-level texel coordinates
    q = torch.remainder(q, float(size0)).numpy()
    level = level.numpy()
    out = np.empty((len(q), 3), np.float32)
    row = 1024
    for k, tex in enumerate(levels):
        idx = np.flatnonzero(level == k)
        if len(idx) == 0:
            continue
        n_pad = -len(idx) % row
        qk = np.pad(q[idx] / 2 ** k - 0.5, ((0, n_pad), (0, 0))).astype(np.float32)
        mx, my = qk[:, 0].reshape(-1, row), qk[:, 1].reshape(-1, row)
        colour = cv2.remap(tex, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        out[idx] = colour.reshape(-1, 3)[:len(idx)]
    out = torch.from_numpy(out)
    fog = (1 - torch.exp(-distance / settings.fog_distance))[:, None]
    horizon = torch.tensor(settings.horizon, dtype=torch.float32)
    return out + fog * (horizon - out)


def posed_vertices(obj: SceneObject, T_world_cam: np.ndarray) -> np.ndarray:
    """(V, 3) vertices of `obj` in the camera optical frame at T_world_cam."""
    T = invert_T(np.asarray(T_world_cam, dtype=np.float64)) @ obj.T_world_obj
    return obj.mesh.vertices @ T[:3, :3].T + T[:3, 3]

