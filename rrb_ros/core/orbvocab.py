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

"""A small ORB vocabulary (bag of binary words) in ORB-SLAM3's DBoW2 text format.

ORB-SLAM3 needs a vocabulary tree to run, and its 139 MB `ORBvoc.txt` does not ship with the
`pyorbslam3` wheel. This module builds one like DBoW2's `TemplatedVocabulary::create`:
hierarchical k-majority clustering (k-means for binary descriptors: Hamming distance, bitwise
majority as the centre, k-means++ seeding) of the 256-bit ORB descriptors of training images,
to `levels` levels with branching factor `k`, and TF-IDF word weights (the IDF part,
log(N / N_i) over the N training images, is what the file stores).

The training images are procedural (multi-scale noise, rectangles, rings, text, strokes and
speckles, randomly warped) from a seed family of their own, so they share no content with the
synthetic test sequences (`rrb_ros.core.synth.ground_texture`).

Text format (`TemplatedVocabulary::loadFromTextFile` of ORB-SLAM3's DBoW2): a header line
`k L scoring weighting` (ORBvoc.txt has `10 6 0 0`: L1-norm scoring, TF-IDF weighting), then one
line per tree node except the root, parents before children:
`parent_id is_leaf d0 d1 ... d31 weight`, node ids counting from 1 in line order (the root is 0),
the 32 descriptor bytes as decimal integers, the weight 0 for inner nodes. The file has no
trailing newline: the upstream loader reads `while (!f.eof())` and would turn an empty last line
into a spurious node.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
import os
from pathlib import Path
import string
import tempfile
import time

import cv2
import numpy as np

DESCRIPTOR_BYTES = 32
"""ORB descriptor length in bytes (256 bits)."""
SCORING_L1 = 0
"""DBoW2 ScoringType L1_NORM (what ORB-SLAM3's ORBvoc.txt uses)."""
WEIGHTING_TF_IDF = 0
"""DBoW2 WeightingType TF_IDF (what ORB-SLAM3's ORBvoc.txt uses)."""
TRAINING_SEED_BASE = 0x0B0C_AB00
"""Seed family of the training textures, apart from the small seeds of the synthetic scenes."""
MIN_WEIGHT = 1e-3
"""Floor of the IDF weights: DBoW2 drops features whose word weighs 0 (a word in every image)."""
LEVELS_UP = 4
"""ORB-SLAM3 groups features `LEVELS_UP` levels above their word (Frame::ComputeBoW)."""


@dataclass(frozen=True)
class Vocabulary:
    """A vocabulary tree as stored in the text file (the root, node 0, is implicit)."""

    k: int
    levels: int
    scoring: int
    weighting: int
    parents: np.ndarray
    """(M,) int64 parent id of nodes 1..M."""
    is_leaf: np.ndarray
    """(M,) bool."""
    descriptors: np.ndarray
    """(M, 32) uint8."""
    weights: np.ndarray
    """(M,) float64; the IDF weight of leaves (words), 0 for inner nodes."""

    @property
    def n_nodes(self) -> int:
        """Return the number of nodes without the root."""
        return int(self.parents.size)

    @property
    def n_words(self) -> int:
        """Return the number of words (leaves)."""
        return int(self.is_leaf.sum())

    def to_text(self) -> str:
        """Return the vocabulary in ORB-SLAM3's text format (see the module docstring)."""
        lines = [f'{self.k} {self.levels} {self.scoring} {self.weighting}']
        for pid, leaf, desc, w in zip(self.parents, self.is_leaf, self.descriptors,
                                      self.weights):
            lines.append(f'{int(pid)} {int(leaf)} ' + ' '.join(map(str, desc.tolist()))
                         + f' {float(w):.6g}')
        return '\n'.join(lines)

    def words(self, descriptors: np.ndarray) -> np.ndarray:
        """Return the word (node id) of each (N, 32) uint8 descriptor, as DBoW2's transform.

        From the root, descend to the child with the smallest Hamming distance (first one on a
        tie) until a leaf.
        """
        children = _children(self.parents, self.n_nodes)
        bits = _unpack(descriptors)
        node_bits = _unpack(self.descriptors)
        node = np.zeros(len(bits), np.int64)
        idx = np.arange(len(bits))
        while idx.size:
            idx = idx[np.argsort(node[idx], kind='stable')]
            cur = node[idx]
            starts = np.flatnonzero(np.r_[True, cur[1:] != cur[:-1]])
            ends = np.r_[starts[1:], cur.size]
            keep = np.ones(idx.size, bool)
            for s, e in zip(starts, ends):
                kids = children.get(int(cur[s]))
                if not kids:
                    keep[s:e] = False
                    continue
                kid_ids = np.asarray(kids)
                sel = idx[s:e]
                d = _hamming(bits[sel], node_bits[kid_ids - 1])
                node[sel] = kid_ids[np.argmin(d, axis=1)]
            idx = idx[keep]
        return node


def parse_vocabulary(text: str) -> Vocabulary:
    """Parse ORB-SLAM3's text format; ValueError for anything its loader would not accept."""
    lines = text.split('\n')
    head = lines[0].split()
    if len(head) != 4:
        raise ValueError(f'vocabulary header needs 4 integers, got {lines[0]!r}')
    k, levels, scoring, weighting = (int(v) for v in head)
    if not (0 <= k <= 20 and 1 <= levels <= 10 and 0 <= scoring <= 5 and 0 <= weighting <= 3):
        raise ValueError(f'vocabulary header out of range: {lines[0]!r}')
    body = lines[1:]
    if body and body[-1] == '':
        raise ValueError('vocabulary ends with an empty line (the loader makes it a node)')
    rows = [line.split() for line in body]
    for i, row in enumerate(rows, 1):
        if len(row) != DESCRIPTOR_BYTES + 3:
            raise ValueError(f'vocabulary node {i}: {len(row)} fields, expected '
                             f'{DESCRIPTOR_BYTES + 3}')
    n = len(rows)
    parents = np.array([int(r[0]) for r in rows], np.int64).reshape(n)
    is_leaf = np.array([int(r[1]) for r in rows], np.int64).reshape(n) > 0
    desc = np.array([[int(v) for v in r[2:2 + DESCRIPTOR_BYTES]] for r in rows],
                    np.int64).reshape(n, DESCRIPTOR_BYTES)
    weights = np.array([float(r[-1]) for r in rows], np.float64).reshape(n)
    if np.any(desc < 0) or np.any(desc > 255):
        raise ValueError('vocabulary descriptor bytes must be in 0..255')
    if np.any(parents >= np.arange(1, n + 1)) or np.any(parents < 0):
        raise ValueError('vocabulary node refers to a parent that comes after it')
    has_children = np.zeros(n + 1, bool)
    has_children[parents] = True
    if np.any(has_children[1:] == is_leaf):
        raise ValueError('vocabulary leaf flags disagree with the tree')
    return Vocabulary(k, levels, scoring, weighting, parents, is_leaf, desc.astype(np.uint8),
                      weights)


# --------------------------------------------------------------------------- training images


def training_images(count: int = 48, height: int = 480, width: int = 640,
                    seed: int = 0) -> list[np.ndarray]:
    """Return `count` procedural grayscale training images (height, width) uint8.

    Each is a random warp (rotation, scale, perspective, blur, contrast) of a texture drawn from
    seed `TRAINING_SEED_BASE + seed` and the image index; no content is shared with the
    synthetic sequences' floor texture.
    """
    images = []
    for i in range(int(count)):
        rng = np.random.default_rng((TRAINING_SEED_BASE + int(seed), i))
        tex = _texture(rng, 2 * max(height, width))
        images.append(_warp(rng, tex, height, width))
    return images


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    img = np.zeros((size, size), np.float32)
    for cells in rng.choice([4, 12, 24, 48, 96, 200], size=3, replace=False):
        noise = rng.uniform(-1, 1, (int(cells), int(cells))).astype(np.float32)
        img += float(rng.uniform(15, 45)) * cv2.resize(noise, (size, size),
                                                       interpolation=cv2.INTER_LINEAR)
    out = np.clip(128 + img, 0, 255).astype(np.uint8)
    area = size * size / 1280 ** 2
    kind = int(rng.integers(4))  # vary the mix of primitives between images

    def grey() -> int:
        return int(rng.integers(0, 256))

    def point() -> tuple[int, int]:
        return int(rng.integers(0, size)), int(rng.integers(0, size))

    for _ in range(int((700 if kind == 0 else 250) * area)):        # rotated rectangles
        (cx, cy), (w, h) = point(), rng.uniform(6, 70, 2)
        box = cv2.boxPoints(((cx, cy), (float(w), float(h)), float(rng.uniform(0, 90))))
        cv2.fillPoly(out, [box.astype(np.int32)], grey(), cv2.LINE_AA)
    for _ in range(int((500 if kind == 1 else 150) * area)):        # rings and discs
        r = int(rng.integers(4, 40))
        cv2.circle(out, point(), r, grey(), int(rng.choice([-1, 2, 4])), cv2.LINE_AA)
    for _ in range(int((400 if kind == 2 else 120) * area)):        # text
        text = ''.join(rng.choice(list(string.ascii_letters + string.digits), 4))
        cv2.putText(out, text, point(), int(rng.integers(0, 8)), float(rng.uniform(0.6, 2.5)),
                    grey(), int(rng.integers(1, 4)), cv2.LINE_AA)
    for _ in range(int((400 if kind == 3 else 150) * area)):        # strokes and polylines
        pts = np.cumsum(rng.integers(-40, 41, (int(rng.integers(2, 6)), 2)), axis=0) + point()
        cv2.polylines(out, [pts.astype(np.int32)], False, grey(), int(rng.integers(1, 5)),
                      cv2.LINE_AA)
    n = int(8000 * area)                                              # speckles
    ys, xs = rng.integers(0, size - 2, n), rng.integers(0, size - 2, n)
    val = rng.integers(0, 256, n).astype(np.uint8)
    for dy in (0, 1):
        for dx in (0, 1):
            out[ys + dy, xs + dx] = val
    return out


def _warp(rng: np.random.Generator, tex: np.ndarray, height: int, width: int) -> np.ndarray:
    size = tex.shape[0]
    c = np.array([size / 2, size / 2])
    scale = float(rng.uniform(0.6, 1.6))
    angle = float(rng.uniform(-np.pi, np.pi))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    corners = np.array([[-width / 2, -height / 2], [width / 2, -height / 2],
                        [width / 2, height / 2], [-width / 2, height / 2]])
    src = c + (corners * (1 + rng.uniform(-0.25, 0.25, (4, 2)))) @ rot.T / scale
    dst = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]])
    H = cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32))
    img = cv2.warpPerspective(tex, H, (width, height), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT)
    if rng.uniform() < 0.5:
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 1.5)))
    gain, bias = rng.uniform(0.6, 1.3), rng.uniform(-30, 30)
    noise = rng.normal(0, 3, img.shape)
    return np.clip(img * gain + bias + noise, 0, 255).astype(np.uint8)


def orb_descriptors(images: list[np.ndarray], n_features: int = 1000) -> list[np.ndarray]:
    """Return the (N_i, 32) uint8 ORB descriptors of each image (ORB-SLAM3's pyramid setup)."""
    orb = cv2.ORB_create(nfeatures=int(n_features), scaleFactor=1.2, nlevels=8,
                         edgeThreshold=19, patchSize=31, fastThreshold=20)
    out = []
    for img in images:
        gray = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        _, desc = orb.detectAndCompute(np.ascontiguousarray(gray), None)
        out.append(np.zeros((0, DESCRIPTOR_BYTES), np.uint8) if desc is None else desc)
    return out


# --------------------------------------------------------------------------- clustering


def _unpack(desc: np.ndarray) -> np.ndarray:
    return np.unpackbits(np.asarray(desc, np.uint8).reshape(-1, DESCRIPTOR_BYTES),
                         axis=1).astype(np.float32)


def _hamming(a_bits: np.ndarray, b_bits: np.ndarray) -> np.ndarray:
    """Return the (n, m) Hamming distances of unpacked bit rows (0/1 float32)."""
    d = a_bits.sum(1)[:, None] + b_bits.sum(1)[None, :] - 2.0 * (a_bits @ b_bits.T)
    return np.rint(d)


def _children(parents: np.ndarray, n: int) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for nid, pid in zip(range(1, n + 1), parents.tolist()):
        out.setdefault(int(pid), []).append(nid)
    return out


def _kmajority(bits: np.ndarray, k: int, rng: np.random.Generator,
               max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """Cluster unpacked bit rows into at most k groups; return (centres, labels)."""
    n = len(bits)
    centres = [bits[int(rng.integers(n))]]                          # k-means++ seeding
    dmin = _hamming(bits, centres[0][None])[:, 0]
    while len(centres) < k:
        p = dmin ** 2
        if p.sum() <= 0:
            break
        centres.append(bits[int(rng.choice(n, p=p / p.sum()))])
        dmin = np.minimum(dmin, _hamming(bits, centres[-1][None])[:, 0])
    c = np.stack(centres)
    labels = np.argmin(_hamming(bits, c), axis=1)
    for _ in range(max_iter):
        keep = [j for j in range(len(c)) if np.any(labels == j)]
        c = np.stack([(bits[labels == j].mean(0) >= 0.5).astype(np.float32) for j in keep])
        new = np.argmin(_hamming(bits, c), axis=1)
        if len(keep) == len(np.unique(new)) and np.array_equal(new, labels):
            break
        labels = new
    keep = np.unique(labels)
    remap = np.full(len(c), -1)
    remap[keep] = np.arange(len(keep))
    return c[keep], remap[labels]


def build_tree(descriptors: np.ndarray, k: int = 10, levels: int = 5, seed: int = 0,
               max_iter: int = 15) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cluster (N, 32) uint8 descriptors into a tree; return (parents, is_leaf, descriptors).

    Breadth-first node order (parents before children), ids from 1. A group of at most k
    distinct descriptors gets one leaf per descriptor (DBoW2 does the same); a group of one
    stops splitting once it is deep enough for ORB-SLAM3's feature grouping (`LEVELS_UP`).
    """
    if not 2 <= int(k) <= 20 or not 1 <= int(levels) <= 10:
        raise ValueError(f'need 2 <= k <= 20 and 1 <= levels <= 10, got k={k}, levels={levels}')
    uniq = np.unique(np.asarray(descriptors, np.uint8).reshape(-1, DESCRIPTOR_BYTES), axis=0)
    if len(uniq) < 2:
        raise ValueError('need at least 2 distinct descriptors to build a vocabulary')
    bits = _unpack(uniq)
    rng = np.random.default_rng(seed)
    parents: list[int] = []
    centres: list[np.ndarray] = []
    members: list[np.ndarray | None] = []
    queue = [(0, np.arange(len(bits)), 1)]    # (parent id, member rows, depth of the children)
    while queue:
        nxt = []
        for pid, rows, depth in queue:
            if len(rows) <= k:
                c, labels = bits[rows], np.arange(len(rows))
            else:
                c, labels = _kmajority(bits[rows], int(k), rng, max_iter)
            for j in range(len(c)):
                parents.append(pid)
                centres.append(c[j])
                group = rows[labels == j]
                nid = len(parents)
                split = depth < levels and (len(group) > 1 or depth < levels - LEVELS_UP)
                members.append(group if split else None)
                if split:
                    nxt.append((nid, group, depth + 1))
        queue = nxt
    par = np.asarray(parents, np.int64)
    has_children = np.zeros(len(par) + 1, bool)
    has_children[par] = True
    desc = np.packbits(np.stack(centres).astype(np.uint8), axis=1)
    return par, ~has_children[1:], desc


def build_vocabulary(images: list[np.ndarray] | None = None, k: int = 10, levels: int = 5,
                     seed: int = 0, n_features: int = 1000) -> str:
    """Return an ORB vocabulary in ORB-SLAM3's text format.

    `images` (grayscale or RGB uint8) default to `training_images(seed=seed)`. Words get IDF
    weights log(N / N_i) over the N images (N_i: images with a feature on word i), floored at
    `MIN_WEIGHT`.
    """
    return build(images, k, levels, seed, n_features).to_text()


def build(images: list[np.ndarray] | None = None, k: int = 10, levels: int = 5, seed: int = 0,
          n_features: int = 1000) -> Vocabulary:
    """Build the vocabulary (see `build_vocabulary`) and return it as a `Vocabulary`."""
    images = training_images(seed=seed) if images is None else images
    per_image = orb_descriptors(images, n_features)
    used = [d for d in per_image if len(d)]
    if not used:
        raise ValueError('no ORB features in the training images')
    all_desc = np.concatenate(used)
    parents, is_leaf, desc = build_tree(all_desc, k, levels, seed)
    voc = Vocabulary(int(k), int(levels), SCORING_L1, WEIGHTING_TF_IDF, parents, is_leaf, desc,
                     np.zeros(len(parents)))
    words = voc.words(all_desc)
    image_of = np.repeat(np.arange(len(used)), [len(d) for d in used])
    pairs = np.unique(np.stack([words, image_of], 1), axis=0)
    n_i = np.bincount(pairs[:, 0], minlength=len(parents) + 1)[1:]
    weights = np.where(is_leaf & (n_i > 0),
                       np.log(len(used) / np.maximum(n_i, 1)), 0.0)
    weights = np.where(is_leaf, np.maximum(weights, MIN_WEIGHT), 0.0)
    return Vocabulary(voc.k, voc.levels, voc.scoring, voc.weighting, parents, is_leaf, desc,
                      weights)


def write_vocabulary(path: str | Path, images: list[np.ndarray] | None = None, k: int = 10,
                     levels: int = 5, seed: int = 0, n_features: int = 1000) -> dict:
    """Build a vocabulary and write it to `path` atomically; return a summary dict."""
    started = time.perf_counter()
    voc = build(images, k, levels, seed, n_features)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + '.', suffix='.part', dir=path.parent)
    try:
        with os.fdopen(fd, 'w') as f:
            f.write(voc.to_text())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return {'path': str(path), 'k': voc.k, 'levels': voc.levels, 'nodes': voc.n_nodes,
            'words': voc.n_words, 'seconds': time.perf_counter() - started,
            'max_weight': float(voc.weights.max()) if voc.n_nodes else math.nan}
