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

"""Procedural furniture of solid parts with exact occupancy: the reconstruction training data.

A shape is a union of primitives (oriented boxes and cylinders) in the rrb object convention
(metres, +z up, standing on z = 0, origin at the centre of its footprint, backs towards +y).
Because the parts are solids, whether a point is inside the shape is known exactly, so
occupancy labels need no watertight mesh and no ray casting.

`to_canonical` maps the object frame to ONet's canonical frame (centred in the unit cube, +y up,
longest side 1); `canonical_to_object` maps a reconstruction back, standing on z = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import trimesh

from ..geometry import from_rotvec
from ..mesh import footprint_origin, Mesh, validate

BOX, CYLINDER = 0, 1
"""Primitive kinds."""
KINDS = ('chair', 'stool', 'table', 'sofa')
"""Shape families `random_shape` draws from."""
PADDING = 0.1
"""Points live in the canonical cube [-(1 + PADDING) / 2, (1 + PADDING) / 2]^3, as in ONet."""
_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
"""Rotation from the rrb object frame (+z up) to ONet's canonical frame (+y up)."""


@dataclass(frozen=True)
class Shape:
    """A solid made of primitives; `parts` rows: kind, centre (3), size (3), R (9, row-major).

    A box spans size/2 on each local axis; a cylinder has diameter size[0] and length size[2]
    along its local z.
    """

    kind: str
    parts: np.ndarray

    def mesh(self, sections: int = 16) -> Mesh:
        """Triangle mesh of the parts (overlapping, not merged: fine for silhouettes)."""
        meshes = []
        for row in self.parts:
            centre, size, R = row[1:4], row[4:7], row[7:16].reshape(3, 3)
            if int(row[0]) == BOX:
                m = trimesh.creation.box(extents=size)
            else:
                m = trimesh.creation.cylinder(size[0] / 2, size[2], sections=sections)
            T = np.eye(4)
            T[:3, :3], T[:3, 3] = R, centre
            meshes.append(m.apply_transform(T))
        m = trimesh.util.concatenate(meshes)
        return validate(m.vertices, m.faces, name=f'procedural {self.kind}')

    def bounds(self) -> np.ndarray:
        """(2, 3) min and max corner of the shape (from its mesh vertices)."""
        v = self.mesh(sections=32).vertices
        return np.stack([v.min(0), v.max(0)])

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Boolean (N,): which points (N, 3), object frame, lie inside the solid."""
        p = torch.as_tensor(np.asarray(points, np.float32))[None]
        parts = torch.as_tensor(self.parts, dtype=torch.float32)[None]
        return occupancy(p, parts, torch.ones(1, len(self.parts), dtype=torch.bool))[0].numpy()


def occupancy(points: torch.Tensor, parts: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Batched exact occupancy: points (B, N, 3), parts (B, K, 16), valid (B, K) -> (B, N) bool.

    Frames must agree (e.g. parts mapped by `parts_to_canonical` for canonical points).
    """
    centre = parts[..., 1:4]
    half = parts[..., 4:7] / 2
    R = parts[..., 7:16].reshape(*parts.shape[:2], 3, 3)
    local = torch.einsum('bkji,bnkj->bnki', R, points[:, :, None, :] - centre[:, None])
    a = local.abs()
    in_box = (a <= half[:, None]).all(-1)
    radial = (local[..., 0] ** 2 + local[..., 1] ** 2) <= half[:, None, :, 0] ** 2
    in_cyl = radial & (a[..., 2] <= half[:, None, :, 2])
    is_box = parts[:, None, :, 0] == BOX
    inside = torch.where(is_box, in_box, in_cyl) & valid[:, None]
    return inside.any(-1)


def canonical_transform(shape_bounds: np.ndarray) -> tuple[float, np.ndarray]:
    """(scale, centre) such that canonical = _Y_UP @ (p - centre) * scale (longest side 1)."""
    lo, hi = np.asarray(shape_bounds)
    return 1.0 / float((hi - lo).max()), (lo + hi) / 2


def to_canonical(points: np.ndarray, shape_bounds: np.ndarray) -> np.ndarray:
    """Object-frame points (N, 3) into the canonical unit cube of a shape with these bounds."""
    s, c = canonical_transform(shape_bounds)
    return (np.asarray(points) - c) @ _Y_UP.T * s


def parts_to_canonical(shape: Shape, shape_bounds: np.ndarray | None = None) -> np.ndarray:
    """Express the shape's parts (K, 16) in its canonical frame (sizes scaled)."""
    s, c = canonical_transform(shape.bounds() if shape_bounds is None else shape_bounds)
    out = shape.parts.copy()
    out[:, 1:4] = (shape.parts[:, 1:4] - c) @ _Y_UP.T * s
    out[:, 4:7] *= s
    R = shape.parts[:, 7:16].reshape(-1, 3, 3)
    out[:, 7:16] = (_Y_UP @ R).reshape(-1, 9)
    return out


def canonical_to_object(mesh: Mesh) -> Mesh:
    """Move a mesh from ONet's canonical frame (+y up) to the rrb object frame (+z up, z >= 0).

    The origin moves to the centre of the footprint; units stay (scale comes from the ground).
    """
    return object_from_canonical(mesh)[0]


def object_from_canonical(mesh: Mesh) -> tuple[Mesh, np.ndarray]:
    """`canonical_to_object`, and the 4x4 T_obj_can it applied (a rotation and a shift)."""
    v = mesh.vertices @ _Y_UP  # inverse rotation (rows times R = R^T applied)
    shift = footprint_origin(v)
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = _Y_UP.T, -shift
    return validate(v - shift, mesh.faces, name='reconstruction'), T


# ----------------------------------------------------------------------------------------------
# generators


class _Builder:
    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []

    def add(self, kind: int, centre, size, R: np.ndarray | None = None) -> None:
        R = np.eye(3) if R is None else R
        self.rows.append(np.concatenate([[kind], centre, size, R.reshape(-1)]))

    def box(self, centre, size, R=None) -> None:
        self.add(BOX, centre, size, R)

    def cylinder(self, centre, diameter, length, R=None) -> None:
        self.add(CYLINDER, centre, (diameter, diameter, length), R)

    def bar(self, a, b, thickness: float, round_: bool) -> None:
        """Add a leg or rail from point a to point b."""
        a, b = np.asarray(a, float), np.asarray(b, float)
        d = b - a
        length = float(np.linalg.norm(d))
        z = d / length
        axis = np.cross([0.0, 0.0, 1.0], z)
        angle = np.arctan2(np.linalg.norm(axis), z[2])
        R = from_rotvec(axis / max(np.linalg.norm(axis), 1e-12) * angle)
        if round_:
            self.cylinder((a + b) / 2, thickness, length, R)
        else:
            self.box((a + b) / 2, (thickness, thickness, length), R)

    def shape(self, kind: str) -> Shape:
        return Shape(kind, np.stack(self.rows))


def _legs(b: _Builder, rng: np.random.Generator, w: float, d: float, top: float,
          style: str) -> None:
    """Supports under a seat or top of w x d whose underside is at height `top`."""
    t = rng.uniform(0.025, 0.06)
    round_ = bool(rng.uniform() < 0.4)
    if style == 'four':
        splay = rng.uniform(0, 0.06) if rng.uniform() < 0.3 else 0.0
        inset = rng.uniform(0, 0.06)
        for sx in (-1, 1):
            for sy in (-1, 1):
                x, y = sx * (w / 2 - t / 2 - inset), sy * (d / 2 - t / 2 - inset)
                b.bar((x + sx * splay, y + sy * splay, 0), (x, y, top), t, round_)
        if rng.uniform() < 0.35:  # stretchers between the legs
            h = rng.uniform(0.1, 0.4) * top
            for sx in (-1, 1):
                x = sx * (w / 2 - t / 2 - inset)
                b.box((x, 0, h), (t * 0.7, d - 2 * inset, t * 0.7))
    elif style == 'pedestal':
        column = rng.uniform(0.05, 0.1)
        b.cylinder((0, 0, top / 2), column, top)
        if rng.uniform() < 0.5:
            b.cylinder((0, 0, 0.02), rng.uniform(0.35, 0.6) * max(w, d), 0.04)
        else:
            n = int(rng.integers(4, 6))
            reach = rng.uniform(0.3, 0.45) * max(w, d)
            for k in range(n):
                a = 2 * np.pi * k / n
                b.box((np.cos(a) * reach / 2, np.sin(a) * reach / 2, 0.03),
                      (reach, 0.04, 0.05), from_rotvec(np.array([0, 0, a])))
    else:  # sled: two frames standing on floor runners
        for sx in (-1, 1):
            x = sx * (w / 2 - t / 2)
            b.box((x, 0, t / 2), (t, d, t))
            b.box((x, -d / 2 + t / 2, top / 2), (t, t, top))
            b.box((x, d / 2 - t / 2, top / 2), (t, t, top))


def chair(rng: np.random.Generator) -> Shape:
    """Build a chair: seat, legs (four, pedestal, sled), back (panel, slats, rails), maybe arms."""
    b = _Builder()
    w, d = rng.uniform(0.38, 0.62), rng.uniform(0.38, 0.6)
    h_seat, t_seat = rng.uniform(0.36, 0.52), rng.uniform(0.03, 0.1)
    b.box((0, 0, h_seat - t_seat / 2), (w, d, t_seat))
    _legs(b, rng, w, d, h_seat - t_seat, str(rng.choice(['four', 'pedestal', 'sled'],
                                                        p=[0.65, 0.2, 0.15])))
    h_back, t_back = rng.uniform(0.25, 0.65), rng.uniform(0.03, 0.09)
    tilt = np.deg2rad(rng.uniform(0, 18))
    R = from_rotvec(np.array([-tilt, 0, 0]))  # top of the back leans towards +y
    base = np.array([0, d / 2 - t_back / 2, h_seat])
    up = R @ np.array([0, 0, 1.0])
    style = rng.choice(['panel', 'slats', 'rails'], p=[0.55, 0.25, 0.2])
    if style == 'panel':
        bw = w * rng.uniform(0.8, 1.0)
        b.box(base + up * h_back / 2, (bw, t_back, h_back), R)
    else:
        post = rng.uniform(0.03, 0.05)
        for sx in (-1, 1):
            b.box(base + up * h_back / 2 + [sx * (w / 2 - post / 2), 0, 0],
                  (post, t_back, h_back), R)
        rail = rng.uniform(0.05, 0.12)
        b.box(base + up * (h_back - rail / 2), (w, t_back, rail), R)
        n = int(rng.integers(2, 5))
        for k in range(n):
            if style == 'slats':
                x = (k + 1) / (n + 1) * w - w / 2
                b.box(base + up * h_back / 2 + [x, 0, 0], (post * 0.8, t_back * 0.7, h_back),
                      R)
            else:
                z = (k + 1) / (n + 1) * (h_back - rail)
                b.box(base + up * z, (w, t_back * 0.7, rail * 0.6), R)
    if rng.uniform() < 0.35:
        h_arm, arm = rng.uniform(0.15, 0.28), rng.uniform(0.03, 0.07)
        solid = rng.uniform() < 0.3
        for sx in (-1, 1):
            x = sx * (w / 2 - arm / 2)
            b.box((x, 0, h_seat + h_arm), (arm, d, arm))
            if solid:
                b.box((x, 0, h_seat + h_arm / 2), (arm, d, h_arm))
            else:
                b.box((x, -d / 2 + arm / 2, h_seat + h_arm / 2), (arm, arm, h_arm))
    return b.shape('chair')


def stool(rng: np.random.Generator) -> Shape:
    """Build a stool: round or square seat on 3-4 legs or a pedestal, maybe a foot ring."""
    b = _Builder()
    h, t = rng.uniform(0.4, 0.8), rng.uniform(0.03, 0.08)
    size = rng.uniform(0.3, 0.45)
    if rng.uniform() < 0.5:
        b.cylinder((0, 0, h - t / 2), size, t)
    else:
        b.box((0, 0, h - t / 2), (size, size, t))
    if rng.uniform() < 0.2:
        _legs(b, rng, size, size, h - t, 'pedestal')
        return b.shape('stool')
    n = int(rng.choice([3, 4]))
    leg = rng.uniform(0.025, 0.05)
    r_top = size / 2 - leg
    r_floor = r_top + rng.uniform(0, 0.1)
    round_ = bool(rng.uniform() < 0.6)
    phase = rng.uniform(0, 2 * np.pi)
    for k in range(n):
        a = phase + 2 * np.pi * k / n
        c, s = np.cos(a), np.sin(a)
        b.bar((c * r_floor, s * r_floor, 0), (c * r_top, s * r_top, h - t), leg, round_)
    if rng.uniform() < 0.5:  # foot rail between neighbouring legs
        z = rng.uniform(0.25, 0.45) * h
        r = r_floor + (r_top - r_floor) * z / (h - t)
        for k in range(n):
            a0, a1 = phase + 2 * np.pi * k / n, phase + 2 * np.pi * (k + 1) / n
            b.bar((np.cos(a0) * r, np.sin(a0) * r, z), (np.cos(a1) * r, np.sin(a1) * r, z),
                  leg * 0.7, round_)
    return b.shape('stool')


def table(rng: np.random.Generator) -> Shape:
    """Build a table: rectangular or round top on legs or a pedestal, maybe a shelf."""
    b = _Builder()
    w, d = rng.uniform(0.5, 1.2), rng.uniform(0.4, 0.8)
    h, t = rng.uniform(0.4, 0.8), rng.uniform(0.025, 0.06)
    if rng.uniform() < 0.25:
        d = w = min(w, 0.9)
        b.cylinder((0, 0, h - t / 2), w, t)
        _legs(b, rng, w * 0.7, w * 0.7, h - t, str(rng.choice(['four', 'pedestal'])))
        return b.shape('table')
    b.box((0, 0, h - t / 2), (w, d, t))
    _legs(b, rng, w, d, h - t, 'four')
    if rng.uniform() < 0.3:
        b.box((0, 0, h * rng.uniform(0.15, 0.35)), (w * 0.9, d * 0.9, 0.03))
    return b.shape('table')


def sofa(rng: np.random.Generator) -> Shape:
    """Build a sofa or armchair: base block, back block, arms, short feet."""
    b = _Builder()
    w, d = rng.uniform(0.7, 2.0), rng.uniform(0.7, 1.0)
    feet = rng.uniform(0.0, 0.12)
    h_base = rng.uniform(0.3, 0.45)
    b.box((0, 0, feet + (h_base - feet) / 2), (w, d, h_base - feet))
    if feet > 0.02:
        f = rng.uniform(0.04, 0.07)
        for sx in (-1, 1):
            for sy in (-1, 1):
                b.box((sx * (w / 2 - f), sy * (d / 2 - f), feet / 2), (f, f, feet))
    h_back, t_back = rng.uniform(0.3, 0.5), rng.uniform(0.12, 0.25)
    b.box((0, d / 2 - t_back / 2, h_base + h_back / 2), (w, t_back, h_back))
    if rng.uniform() < 0.85:
        arm, h_arm = rng.uniform(0.08, 0.2), rng.uniform(0.1, 0.3)
        for sx in (-1, 1):
            b.box((sx * (w / 2 - arm / 2), 0, feet + (h_base + h_arm - feet) / 2),
                  (arm, d, h_base + h_arm - feet))
    return b.shape('sofa')


_GENERATORS = {'chair': chair, 'stool': stool, 'table': table, 'sofa': sofa}


CHAIR_WEIGHT = 2.0
"""How many times as often as each other family a random shape is a chair, by default."""


def random_shape(rng: np.random.Generator, kinds: tuple[str, ...] = KINDS,
                 chair_weight: float = CHAIR_WEIGHT) -> Shape:
    """Draw one shape of `kinds`, a chair `chair_weight` times as often as each other family."""
    weights = np.asarray([chair_weight if k == 'chair' else 1.0 for k in kinds])
    p = weights / weights.sum()
    shape = _GENERATORS[str(rng.choice(kinds, p=p))](rng)
    # centre the footprint on the origin (arms may make it asymmetric) and stand it on z = 0
    # (tilted legs reach slightly below the floor, raised sofas float above it)
    lo, hi = shape.bounds()
    parts = shape.parts.copy()
    parts[:, 1:4] -= [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]]
    return Shape(shape.kind, parts)
