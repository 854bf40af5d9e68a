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

"""The single-image Occupancy Network (Mescheder et al., CVPR 2019), weight-compatible.

The module tree mirrors ONet's `img2mesh` model (`configs/img/onet.yaml`: encoder `resnet18`,
c_dim 256, z_dim 0, decoder `cbatchnorm`, hidden 256), so a state_dict of the published
checkpoint `onet_img2mesh_3-f786b04a.pt` loads key for key:

    encoder.features.*   ResNet-18 with torchvision's names, its `fc` replaced by an empty
                         `nn.Sequential()` (no parameters)
    encoder.fc           Linear(512, 256)
    decoder.fc_p         Conv1d(3, 256, 1)
    decoder.block0..4    conditional-BatchNorm ResNet blocks (bn_0, fc_0, bn_1, fc_1)
    decoder.bn           conditional BatchNorm (conv_gamma, conv_beta, bn without affine)
    decoder.fc_out       Conv1d(256, 1, 1)

Images enter as floats in [0, 1]; the ImageNet normalisation happens inside the encoder, as in
the original. The network works in eval mode (BatchNorm from running statistics), so every
point is decoded independently of the others in its batch.

Canonical frame of the output: ONet's ShapeNet frame, the object centred in the unit cube
[-0.5, 0.5]^3 with +y up (the up axis matters only for display; `scale.py` uses the ground
normal of the posed mesh, not this axis).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
import pickle
import re
from types import MappingProxyType
from typing import Callable

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from ..mesh import Mesh
from .mise import extract_mesh

IMAGE_SIZE = 224
"""Side of the square network input (pixels)."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
C_DIM = 256
"""Size of the image code c."""
HIDDEN_SIZE = 256
"""Width of the decoder."""
DEFAULT_THRESHOLD = 0.2
"""Occupancy probability of the surface of ONet's img2mesh model."""
DECODE_CHUNK = 4096
"""Points (summed over the batch) the decoder evaluates at once at inference. Its layers are
1x1 convolutions over (B, 256, N) activations: the time goes into memory traffic, so chunks
that stay in the CPU's cache decode 100k points about 5x as fast as one pass (`make bench`)."""
N_PARAMETERS = 13_414_465
"""Learnable parameters of the official img2mesh model (and of this one)."""


# ----------------------------------------------------------------------------------------------
# Encoder: ResNet-18 laid out like torchvision.models.resnet18


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (torchvision's `BasicBlock`)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet-18 whose state_dict keys equal torchvision's; `fc` is an identity placeholder."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        # ONet replaces the classifier with an empty Sequential, i.e. the identity.
        self.fc = nn.Sequential()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def normalize_imagenet(images: torch.Tensor) -> torch.Tensor:
    """Standardise (B, 3, H, W) RGB images in [0, 1] with the ImageNet channel statistics."""
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std


class Resnet18Encoder(nn.Module):
    """ONet's image encoder: normalisation, ResNet-18 features (512), Linear to `c_dim`."""

    def __init__(self, c_dim: int = C_DIM) -> None:
        super().__init__()
        self.features = ResNet18()
        self.fc = nn.Linear(512, c_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(normalize_imagenet(images)))


# ----------------------------------------------------------------------------------------------
# Decoder: conditional BatchNorm


class CBatchNorm1d(nn.Module):
    """BatchNorm without affine parameters, then a scale and shift predicted from the code c.

    out = gamma(c) * (x - running_mean) / sqrt(running_var + eps) + beta(c), where gamma and
    beta are 1x1 convolutions of c (B, c_dim, 1), as in ONet's `CBatchNorm1d`.
    """

    def __init__(self, c_dim: int, f_dim: int) -> None:
        super().__init__()
        self.conv_gamma = nn.Conv1d(c_dim, f_dim, 1)
        self.conv_beta = nn.Conv1d(c_dim, f_dim, 1)
        self.bn = nn.BatchNorm1d(f_dim, affine=False)
        # start as plain BatchNorm: gamma = 1, beta = 0 whatever c is
        nn.init.zeros_(self.conv_gamma.weight)
        nn.init.ones_(self.conv_gamma.bias)
        nn.init.zeros_(self.conv_beta.weight)
        nn.init.zeros_(self.conv_beta.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Normalise x (B, f_dim, T) conditioned on c (B, c_dim) or (B, c_dim, T)."""
        if c.dim() == 2:
            c = c.unsqueeze(2)
        return self.conv_gamma(c) * self.bn(x) + self.conv_beta(c)


class CResnetBlockConv1d(nn.Module):
    """Pre-activation ResNet block of 1x1 convolutions with conditional BatchNorm."""

    def __init__(self, c_dim: int, size: int) -> None:
        super().__init__()
        self.bn_0 = CBatchNorm1d(c_dim, size)
        self.bn_1 = CBatchNorm1d(c_dim, size)
        self.fc_0 = nn.Conv1d(size, size, 1)
        self.fc_1 = nn.Conv1d(size, size, 1)
        self.actvn = nn.ReLU()
        nn.init.zeros_(self.fc_1.weight)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        net = self.fc_0(self.actvn(self.bn_0(x, c)))
        return x + self.fc_1(self.actvn(self.bn_1(net, c)))


class DecoderCBatchNorm(nn.Module):
    """ONet's `DecoderCBatchNorm` (legacy=False, z_dim=0): points and code c to logits.

    ONet uses 5 blocks (`block0`..`block4`); smaller networks of the same family use fewer.
    """

    def __init__(self, dim: int = 3, c_dim: int = C_DIM, hidden_size: int = HIDDEN_SIZE,
                 n_blocks: int = 5) -> None:
        super().__init__()
        self.fc_p = nn.Conv1d(dim, hidden_size, 1)
        self.n_blocks = n_blocks
        for i in range(n_blocks):
            setattr(self, f'block{i}', CResnetBlockConv1d(c_dim, hidden_size))
        self.bn = CBatchNorm1d(c_dim, hidden_size)
        self.fc_out = nn.Conv1d(hidden_size, 1, 1)

    def forward(self, points: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Return logits (B, T) for points (B, T, dim) and codes c (B, c_dim)."""
        net = self.fc_p(points.transpose(1, 2))
        for i in range(self.n_blocks):
            net = getattr(self, f'block{i}')(net, c)
        return self.fc_out(F.relu(self.bn(net, c))).squeeze(1)


# ----------------------------------------------------------------------------------------------
# The network


def family_of(name: str | None, families) -> str | None:
    """Return the family in `families` that a word of `name` is (singular or plural), or None.

    'office_chair', 'OfficeChair' and 'Chairs-2' are chairs, 'armchair' is not a 'chair'.
    """
    words = re.sub(r'([a-z])([A-Z])', r'\1 \2', name or '').lower()
    for word in re.split(r'[^a-z]+', words):
        for family in (word, word[:-1] if word.endswith('s') else None):
            if family and family in families:
                return family
    return None


class OccupancyNetworkBase(nn.Module):
    """What every occupancy network here offers: `encode` images, `decode` points, meshes.

    Subclasses set `encoder`, `decoder`, `c_dim` and `image_size` (side of the square input).
    `threshold` is the occupancy probability of the network's surface, the default of its meshes
    and IoUs: ONet's img2mesh model used 0.2 (chosen on its validation set); a network trained
    here stores the level calibrated on its own validation shapes, and the best level of each
    family it was calibrated on (`family_thresholds`, see `surface_level`). `decode_chunk`:
    points (summed over the batch) decoded at once in eval mode.
    """

    image_size: int = IMAGE_SIZE
    c_dim: int = C_DIM
    threshold: float = DEFAULT_THRESHOLD
    family_thresholds: Mapping[str, float] = MappingProxyType({})
    decode_chunk: int = DECODE_CHUNK

    def surface_level(self, name: str | None = None, override: float | None = None) -> float:
        """Surface probability of an object called `name`.

        `override` when given (a user's choice); else the calibrated level of its family when a
        word of the name is a family in `family_thresholds` ('chair', 'office_chair',
        'Chairs 2'); else `threshold`.
        """
        if override is not None:
            return float(override)
        family = family_of(name, self.family_thresholds)
        return self.threshold if family is None else self.family_thresholds[family]

    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return next(self.parameters()).device

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Return the codes c (B, c_dim) of RGB images (B, 3, S, S), floats in [0, 1]."""
        if not isinstance(images, torch.Tensor):
            raise ValueError(f'images must be a torch tensor, got {type(images).__name__}')
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f'images must be (B, 3, H, W), got {_shape(images)}')
        if not images.is_floating_point():
            raise ValueError(f'images must be floats in [0, 1], got {images.dtype}')
        return self.encoder(images)

    def decode(self, points: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Return occupancy logits (B, N) at canonical-cube points (B, N, 3), codes c (B, c_dim).

        The probability of being inside is sigmoid(logit); the surface is at `threshold`. In
        eval mode the points go through in chunks of `decode_chunk` (the same logits, faster).
        """
        if points.dim() != 3 or points.shape[2] != 3:
            raise ValueError(f'points must be (B, N, 3), got {_shape(points)}')
        if c.dim() != 2 or c.shape[1] != self.c_dim or c.shape[0] != points.shape[0]:
            raise ValueError(f'c must be (B={points.shape[0]}, {self.c_dim}), got {_shape(c)}')
        step = max(1, self.decode_chunk // max(1, points.shape[0]))
        if self.training or points.shape[1] <= step:  # BatchNorm on batch statistics: one pass
            return self._decode(points, c)
        return torch.cat([self._decode(points[:, i:i + step], c)
                          for i in range(0, points.shape[1], step)], dim=1)

    def _decode(self, points: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """`decode` of checked inputs."""
        return self.decoder(points, c)

    def halves(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return the codes of the image and of its mirror image in c: here (c, None).

        `MirrorAveraged` codes hold both; a viewpoint head reads them this way.
        """
        return c, None

    def forward(self, points: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """Return occupancy logits (B, N) of points (B, N, 3) given images (B, 3, S, S)."""
        return self.decode(points, self.encode(images))

    def logits_fn(self, c: torch.Tensor) -> Callable[[np.ndarray], np.ndarray]:
        """Return a function mapping points (N, 3) numpy to logits (N,) for one code c (1, c_dim).

        This is what `extract_mesh` evaluates; no gradients are kept.
        """
        c = c.detach()

        def fn(points: np.ndarray) -> np.ndarray:
            p = torch.as_tensor(points, dtype=torch.float32, device=c.device)[None]
            with torch.no_grad():
                return self.decode(p, c)[0].cpu().numpy()
        return fn

    def generate_mesh(self, image: torch.Tensor, threshold: float | None = None,
                      resolution0: int = 32, upsampling_steps: int = 2, padding: float = 0.1,
                      batch_points: int = 100_000, max_faces: int | None = None) -> Mesh:
        """Reconstruct the mesh (canonical frame) seen in one preprocessed image (1, 3, S, S).

        ONet's Generator3D with the img2mesh settings: encode, MISE, marching cubes, optional
        decimation (no refinement, no normals). `threshold` None: the network's.
        """
        if image.dim() != 4 or image.shape[0] != 1:
            raise ValueError(f'generate_mesh takes one image (1, 3, H, W), got {_shape(image)}')
        with self.evaluating(), torch.no_grad():
            c = self.encode(image.to(self.device))
        return self.code_mesh(c, threshold, resolution0, upsampling_steps, padding, batch_points,
                              max_faces)

    def code_mesh(self, c: torch.Tensor, threshold: float | None = None, resolution0: int = 32,
                  upsampling_steps: int = 2, padding: float = 0.1, batch_points: int = 100_000,
                  max_faces: int | None = None) -> Mesh:
        """Extract the mesh (canonical frame) of one code c (1, c_dim): MISE, marching cubes.

        `threshold` None: the network's surface level.
        """
        if c.dim() != 2 or c.shape[0] != 1:
            raise ValueError(f'code_mesh takes one code (1, c_dim), got {_shape(c)}')
        with self.evaluating():
            return extract_mesh(self.logits_fn(c.detach()),
                                threshold=self.threshold if threshold is None else threshold,
                                resolution0=resolution0, upsampling_steps=upsampling_steps,
                                padding=padding, batch_points=batch_points, max_faces=max_faces)

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """Run the block in eval mode (BatchNorm on running statistics), then restore the mode."""
        was_training = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(was_training)


class OccupancyNetwork(OccupancyNetworkBase):
    """Single-image Occupancy Network: `encode` an image, `decode` occupancy logits at points."""

    def __init__(self, c_dim: int = C_DIM, hidden_size: int = HIDDEN_SIZE) -> None:
        super().__init__()
        self.encoder = Resnet18Encoder(c_dim)
        self.decoder = DecoderCBatchNorm(3, c_dim, hidden_size)
        self.c_dim = c_dim

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: torch.device | str = 'cpu'
                        ) -> OccupancyNetwork:
        """Load a checkpoint in the official ONet img2mesh layout; return the network in eval mode.

        Accepted: `{'model': state_dict, ...}` as ONet's CheckpointIO writes it, a bare
        state_dict, and keys carrying a `module.` or `model.` prefix. Every key and shape must
        match (BatchNorm's `num_batches_tracked` counters may be absent); otherwise ValueError.
        """
        net = cls()
        net.load_onet_state_dict(_read_state_dict(path, device), source=str(path))
        return net.to(device).eval()

    def load_onet_state_dict(self, state_dict: Mapping[str, torch.Tensor],
                             source: str = 'state_dict') -> None:
        """Copy an ONet img2mesh state_dict into the network, strictly; ValueError otherwise."""
        sd = _strip_prefixes(dict(state_dict))
        expected = self.state_dict()
        problems = []
        missing = [k for k in expected
                   if k not in sd and not k.endswith('num_batches_tracked')]
        unexpected = [k for k in sd if k not in expected]
        if missing:
            problems.append('missing keys ' + _first(missing))
        if unexpected:
            problems.append('unexpected keys ' + _first(unexpected))
        bad = []
        for k, v in sd.items():
            if k not in expected:
                continue
            if not isinstance(v, torch.Tensor):
                bad.append(f'{k} (not a tensor)')
            elif v.shape != expected[k].shape:
                bad.append(f'{k} {_shape(v)} != {_shape(expected[k])}')
        if bad:
            problems.append('shape mismatch ' + _first(bad))
        if problems:
            raise ValueError(f'{source} is not an ONet img2mesh checkpoint: '
                             + '; '.join(problems))
        for k, v in expected.items():
            if k.endswith('num_batches_tracked') and k not in sd:
                sd[k] = v
        self.load_state_dict(sd, strict=True)


# ----------------------------------------------------------------------------------------------
# Preprocessing


def preprocess(image_rgb: np.ndarray, mask: np.ndarray, margin: float = 0.15,
               size: int = IMAGE_SIZE) -> torch.Tensor:
    """Turn a camera image and the object's mask into the network input (1, 3, size, size).

    ONet was trained on ShapeNet renderings: the object centred on a white background, resized
    to 224 x 224 with PIL's bilinear filter, scaled to [0, 1]. To look alike, the image is
    cropped to a square around the mask's box (its longer side plus `margin` of it on each
    side, white outside the image), every pixel where the mask is zero turned white, then
    resized the same way.

    Args:
        image_rgb: (H, W, 3) uint8, RGB order.
        mask: (H, W), non-zero = object.
        margin: extra border on each side, as a fraction of the box's longer side.
        size: output side in pixels.

    """
    from PIL import Image

    image_rgb = np.asarray(image_rgb)
    mask = np.asarray(mask)
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise ValueError('image must be (H, W, 3) uint8 RGB, got '
                         f'{image_rgb.shape} {image_rgb.dtype}')
    if mask.shape != image_rgb.shape[:2]:
        raise ValueError(f'mask {mask.shape} and image {image_rgb.shape[:2]} sizes differ')
    if margin < 0:
        raise ValueError(f'margin must be >= 0, got {margin}')
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError('the mask is empty: no object pixels')
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    side = int(np.ceil(max(x1 - x0, y1 - y0) * (1 + 2 * margin)))
    left = int(np.floor((x0 + x1 - side) / 2))
    top = int(np.floor((y0 + y1 - side) / 2))
    white = np.where((mask != 0)[..., None], image_rgb, np.uint8(255))
    crop = np.full((side, side, 3), 255, np.uint8)
    h, w = mask.shape
    sx0, sy0 = max(left, 0), max(top, 0)
    sx1, sy1 = min(left + side, w), min(top + side, h)
    crop[sy0 - top:sy1 - top, sx0 - left:sx1 - left] = white[sy0:sy1, sx0:sx1]
    resized = Image.fromarray(crop).resize((size, size), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0)
    return x.permute(2, 0, 1).unsqueeze(0).contiguous()


# ----------------------------------------------------------------------------------------------
# Checkpoint reading


def read_checkpoint(path: str | Path, device: torch.device | str):
    """Return what a torch checkpoint file holds; ValueError naming the path if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f'checkpoint not found: {path}')
    try:
        return _torch_load(path, device)
    except Exception as exc:  # torch raises many kinds for files of other formats
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f'cannot read checkpoint {path}: {msg[:200]}') from None


def _read_state_dict(path: str | Path, device: torch.device | str, data=None) -> Mapping:
    """Return the state_dict in a checkpoint (`data` if already read); ValueError naming it."""
    if data is None:
        data = read_checkpoint(path, device)
    if isinstance(data, Mapping) and isinstance(data.get('model'), Mapping):
        data = data['model']
    if not isinstance(data, Mapping) or not data or not all(
            isinstance(k, str) for k in data):
        raise ValueError(f'{path} is not an ONet img2mesh checkpoint: expected '
                         "{'model': state_dict} or a state_dict")
    return data


def _torch_load(path: Path, device: torch.device | str):
    """torch.load with weights_only; ONet's checkpoints may also hold numpy scalars."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        if 'numpy' not in str(exc):
            raise
    # CheckpointIO stores e.g. `loss_val_best` as a numpy float: allow just those types.
    allowed = [np._core.multiarray.scalar, np.dtype, np.dtypes.Float64DType,
               np.dtypes.Float32DType, np.dtypes.Int64DType, np.ndarray,
               np._core.multiarray._reconstruct]
    with torch.serialization.safe_globals(allowed):
        return torch.load(path, map_location=device, weights_only=True)


def _strip_prefixes(sd: dict) -> dict:
    """Drop a `module.` (DataParallel) and/or `model.` prefix shared by every key."""
    changed = True
    while changed and sd:
        changed = False
        for prefix in ('module.', 'model.'):
            if all(k.startswith(prefix) for k in sd):
                sd = {k[len(prefix):]: v for k, v in sd.items()}
                changed = True
    return sd


def _first(items: list[str], n: int = 3) -> str:
    more = f' (+{len(items) - n} more)' if len(items) > n else ''
    return ', '.join(items[:n]) + more


def _shape(t: torch.Tensor) -> str:
    return 'x'.join(str(s) for s in t.shape) or 'scalar'
