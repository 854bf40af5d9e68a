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

"""The embedded default reconstruction network: a compact Occupancy Network.

Same interface and decoder family as ONet's img2mesh model (`onet.py`): a conditional-BatchNorm
ResNet decoder of 1x1 convolutions, here 128 wide with 4 blocks; the encoder is a small
convolutional network on 128 x 128 inputs (the spatial 4 x 4 feature map is kept, not pooled)
instead of ResNet-18. It is trained by `rrb train-recon` on procedural furniture
(`shapes.py`), about 3 M parameters, stored as float16.

`load_network(path)` opens either kind of checkpoint: this one (`{'format': FORMAT, ...}`) or the
official ONet img2mesh layout. Without a path it loads the weights that ship with the package.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .onet import (
    _read_state_dict,
    _shape,
    DecoderCBatchNorm,
    DEFAULT_THRESHOLD,
    normalize_imagenet,
    OccupancyNetwork,
    OccupancyNetworkBase,
    read_checkpoint,
)
from .viewpoint import head_from_checkpoint, ViewpointHead

FORMAT = 'rrb-compact-onet-1'
"""Value of the `format` key of a compact-network checkpoint."""
DEFAULT_CONFIG: dict[str, Any] = {
    'image_size': 128, 'c_dim': 128, 'hidden_size': 128, 'n_blocks': 4,
    'channels': [32, 64, 128, 192, 256], 'encoder_blocks': 0,
}
"""Architecture of a new network (the first training run's); trained weights store their own."""
DEFAULT_WEIGHTS = 'recon_default.pt'
"""File name of the shipped weights in `rrb_ros/data`."""


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions added to their input; the identity until trained.

    The second BatchNorm starts with zero scale, so a new block passes its (non-negative,
    post-ReLU) input through unchanged: blocks can be added to a trained encoder.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(channels, channels),
                                  nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(channels))
        nn.init.zeros_(self.body[-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class ConvEncoder(nn.Module):
    """Strided convolutions from (B, 3, S, S) down to (C, 4, 4), flattened, then Linear to c.

    Each stage after the first is a strided and a plain convolution; all but the last (4 x 4,
    where a block would mostly add parameters) are followed by `blocks` residual blocks.
    """

    def __init__(self, image_size: int, channels: list[int], c_dim: int, blocks: int = 0
                 ) -> None:
        super().__init__()
        layers = [_conv(3, channels[0], 5, 2)]
        for cin, cout in zip(channels[:-1], channels[1:]):
            layers += [_conv(cin, cout, 3, 2), _conv(cout, cout)]
        self.features = nn.Sequential(*layers)
        self.blocks = nn.ModuleList(nn.Sequential(*(ResidualBlock(c) for _ in range(blocks)))
                                    for c in channels[1:-1])
        self.blocks.append(nn.Identity())
        side = image_size // 2 ** len(channels)
        if side < 1 or image_size % 2 ** len(channels):
            raise ValueError(f'image_size {image_size} must be a multiple of '
                             f'{2 ** len(channels)}')
        self.fc = nn.Linear(channels[-1] * side * side, c_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.features[0](normalize_imagenet(images))
        for stage, blocks in enumerate(self.blocks):
            x = blocks(self.features[2 + 2 * stage](self.features[1 + 2 * stage](x)))
        return self.fc(torch.flatten(x, 1))


class CompactOccupancyNetwork(OccupancyNetworkBase):
    """A small single-image Occupancy Network (see the module docstring)."""

    def __init__(self, image_size: int = 128, c_dim: int = 128, hidden_size: int = 128,
                 n_blocks: int = 4, channels: list[int] | None = None,
                 encoder_blocks: int = 0) -> None:
        super().__init__()
        self.config = {'image_size': int(image_size), 'c_dim': int(c_dim),
                       'hidden_size': int(hidden_size), 'n_blocks': int(n_blocks),
                       'channels': list(channels or DEFAULT_CONFIG['channels']),
                       'encoder_blocks': int(encoder_blocks)}
        self.image_size = self.config['image_size']
        self.c_dim = self.config['c_dim']
        self.encoder = ConvEncoder(self.image_size, self.config['channels'], self.c_dim,
                                   self.config['encoder_blocks'])
        self.decoder = DecoderCBatchNorm(3, self.c_dim, hidden_size, n_blocks)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Return the codes c (B, c_dim) of RGB images (B, 3, S, S), S = `image_size`."""
        if isinstance(images, torch.Tensor) and images.dim() == 4 and \
                tuple(images.shape[2:]) != (self.image_size, self.image_size):
            raise ValueError(f'images must be {self.image_size}x{self.image_size}, got '
                             f'{_shape(images)}')
        return super().encode(images)

    def checkpoint(self, **extra: Any) -> dict[str, Any]:
        """Return the checkpoint dict: format, config, thresholds, float16 weights, `extra`."""
        sd = {k: (v.half() if v.is_floating_point() else v)
              for k, v in self.state_dict().items()}
        return {'format': FORMAT, 'config': dict(self.config), 'threshold': self.threshold,
                'family_thresholds': dict(self.family_thresholds), 'model': sd, **extra}

    def with_encoder_blocks(self, add: int) -> CompactOccupancyNetwork:
        """Return a copy with `add` more residual blocks per middle encoder stage, same output.

        The new blocks start as identities (`ResidualBlock`), so the copy computes what this
        network computes until it is trained further.
        """
        grown = type(self)(**{**self.config,
                              'encoder_blocks': self.config['encoder_blocks'] + add})
        grown.threshold, grown.family_thresholds = self.threshold, self.family_thresholds
        missing, unexpected = grown.load_state_dict(self.state_dict(), strict=False)
        if unexpected or any(not k.startswith('encoder.blocks.') for k in missing):
            raise ValueError(f'cannot grow the encoder: {missing} {unexpected}')
        return grown.to(self.device).train(self.training)

    @classmethod
    def from_checkpoint_dict(cls, data: dict, source: str, device: torch.device | str = 'cpu'
                             ) -> CompactOccupancyNetwork:
        """Build the network a `checkpoint()` dict describes; ValueError if it does not fit.

        Checkpoints without a `threshold` (written before calibration) get ONet's 0.2, those
        without `family_thresholds` (calibrated before families had their own) none.
        """
        try:
            net = cls(**data['config'])
            net.threshold = float(data.get('threshold', DEFAULT_THRESHOLD))
            net.family_thresholds = {str(k): float(v)
                                     for k, v in data.get('family_thresholds', {}).items()}
            for level in [net.threshold, *net.family_thresholds.values()]:
                if not 0 < level < 1:
                    raise ValueError(f'threshold {level} is not a probability in (0, 1)')
            net.load_state_dict({k: v.float() if v.is_floating_point() else v
                                 for k, v in data['model'].items()}, strict=True)
        except (AttributeError, KeyError, TypeError, RuntimeError, ValueError) as exc:
            msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else repr(exc)
            raise ValueError(f'{source} is not a valid {FORMAT} checkpoint: {msg}') from None
        return net.to(device).eval()


def default_weights_path() -> Path:
    """Path of the weights shipped in the package."""
    return Path(str(resources.files('rrb_ros') / 'data' / DEFAULT_WEIGHTS))


def load_network_and_head(path: str | Path | None = None, device: torch.device | str = 'cpu'
                          ) -> tuple[OccupancyNetworkBase, ViewpointHead | None]:
    """`load_network`, and the viewpoint head stored with the weights (None: there is none)."""
    path = Path(path).expanduser() if path else default_weights_path()
    data = read_checkpoint(path, device)
    if isinstance(data, dict) and data.get('format') == FORMAT:
        return (CompactOccupancyNetwork.from_checkpoint_dict(data, str(path), device),
                head_from_checkpoint(data, str(path)))
    net = OccupancyNetwork()
    net.load_onet_state_dict(_read_state_dict(path, device, data), source=str(path))
    return net.to(device).eval(), None


def load_network(path: str | Path | None = None, device: torch.device | str = 'cpu'
                 ) -> OccupancyNetworkBase:
    """Open a reconstruction network in eval mode: the shipped one, a compact or an ONet one.

    Raises ValueError naming the file when it is missing or of no known layout.
    """
    return load_network_and_head(path, device)[0]
