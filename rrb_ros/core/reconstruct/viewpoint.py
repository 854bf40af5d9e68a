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

"""Coarse viewpoint from the reconstruction code: the camera's azimuth around the object.

The paper initialises the pose with a viewpoint network (Render for CNN). Here a small head on
the occupancy network's image code c predicts a distribution over the camera azimuth in the
object frame (+z up; azimuth 0 = camera on +x, pi / 2 = on +y), in `bins` classes. The code
must already hold this: the decoder reconstructs in the canonical frame, so the encoder has to
tell front from back. The silhouette alone often cannot (a chair seen from the front or the
back has nearly the same outline), which is what the head resolves.

It is trained on frozen codes of rendered views with known azimuth (`train_viewpoint_head`,
`rrb train-viewpoint`) and stored in the compact checkpoint under the key 'viewpoint'.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


class ViewpointHead(nn.Module):
    """MLP from a normalised code (c_dim,) to logits over `bins` azimuth classes."""

    def __init__(self, c_dim: int = 128, hidden: int = 128, bins: int = 24) -> None:
        super().__init__()
        self.config = {'c_dim': c_dim, 'hidden': hidden, 'bins': bins}
        self.register_buffer('mean', torch.zeros(c_dim))
        self.register_buffer('std', torch.ones(c_dim))
        self.mlp = nn.Sequential(nn.Linear(c_dim, hidden), nn.ReLU(), nn.Dropout(0.2),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, bins))

    @property
    def bins(self) -> int:
        """Number of azimuth classes."""
        return self.config['bins']

    def centres(self) -> torch.Tensor:
        """Azimuth (rad) at the centre of each class, (bins,)."""
        return (torch.arange(self.bins, dtype=torch.float32) + 0.5) * (2 * math.pi / self.bins)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        """Logits (B, bins) of codes c (B, c_dim)."""
        return self.mlp((c - self.mean) / self.std)

    def probabilities(self, c: torch.Tensor, c_mirror: torch.Tensor | None = None
                      ) -> np.ndarray:
        """Azimuth class probabilities (B, bins) of codes c (B, c_dim), no gradients.

        `c_mirror`: codes of the same images turned left to right (`MirrorAveraged.halves`).
        Such an image shows the object mirrored in x, seen from azimuth pi - a instead of a; its
        distribution, mapped back, is averaged with c's.
        """
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                p = torch.softmax(self(c.to(self.mean.device).float()), 1).cpu().numpy()
                if c_mirror is None:
                    return p
                q = torch.softmax(self(c_mirror.to(self.mean.device).float()), 1).cpu().numpy()
        finally:
            self.train(was_training)
        centres = self.centres().numpy()
        back = np.argmin(angular_error(centres[None, :], np.pi - centres[:, None]), axis=1)
        return 0.5 * (p + q[:, back])

    def checkpoint(self) -> dict[str, Any]:
        """Return the dict stored under 'viewpoint' in a compact checkpoint."""
        return {'config': dict(self.config),
                'model': {k: v.detach().cpu() for k, v in self.state_dict().items()}}

    @classmethod
    def from_checkpoint_dict(cls, data: dict, source: str) -> ViewpointHead:
        """Build the head that `checkpoint()` describes; ValueError if it does not fit."""
        try:
            head = cls(**data['config'])
            head.load_state_dict(data['model'], strict=True)
        except (KeyError, TypeError, RuntimeError, ValueError) as exc:
            raise ValueError(f'{source}: invalid viewpoint head: '
                             f'{str(exc).strip().splitlines()[0][:200]}') from None
        return head.eval()


def load_viewpoint_head(path: str | Path | None = None) -> ViewpointHead | None:
    """Load the viewpoint head stored with a compact network (None if there is none)."""
    from .compact import default_weights_path
    from .onet import read_checkpoint
    path = Path(path).expanduser() if path else default_weights_path()
    return head_from_checkpoint(read_checkpoint(path, 'cpu'), str(path))


def head_from_checkpoint(data: Any, source: str) -> ViewpointHead | None:
    """Return the viewpoint head stored in a loaded checkpoint (None if there is none)."""
    if not isinstance(data, dict) or 'viewpoint' not in data:
        return None
    return ViewpointHead.from_checkpoint_dict(data['viewpoint'], source)


def camera_azimuth(T_cam_obj: np.ndarray) -> float:  # noqa: N803
    """Azimuth (rad, 0..2 pi) of the camera centre around the object frame's z axis."""
    T = np.asarray(T_cam_obj, dtype=np.float64)
    c = -T[:3, :3].T @ T[:3, 3]
    return float(np.arctan2(c[1], c[0]) % (2 * np.pi))


def half_circle_mass(p: np.ndarray, centres: np.ndarray, azimuth: float) -> float:
    """Probability mass of the classes within 90 degrees of `azimuth`."""
    diff = (np.asarray(centres) - azimuth + np.pi) % (2 * np.pi) - np.pi
    return float(np.asarray(p)[np.abs(diff) < np.pi / 2].sum())


def angular_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Absolute difference of angles (rad), wrapped to 0..pi."""
    return np.abs((np.asarray(a) - np.asarray(b) + np.pi) % (2 * np.pi) - np.pi)


@dataclass
class ViewpointTraining:
    """How `train_viewpoint_head` trains."""

    hidden: int = 128
    bins: int = 24
    epochs: int = 200
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-3
    seed: int = 0


def train_viewpoint_head(codes: torch.Tensor, azimuths: np.ndarray,
                         cfg: ViewpointTraining | None = None) -> ViewpointHead:
    """Fit a head to codes (N, c_dim) of views whose camera azimuths (N,) rad are known.

    Cross-entropy against soft labels (a Gaussian of one class width around the true azimuth),
    AdamW; the codes are standardised with their own mean and deviation.
    """
    cfg = cfg or ViewpointTraining()
    codes = codes.detach().float().cpu()
    if codes.dim() != 2 or len(codes) != len(azimuths) or len(codes) < 2:
        raise ValueError(f'need codes (N, c_dim) and N azimuths, got {tuple(codes.shape)} and '
                         f'{len(azimuths)}')
    torch.manual_seed(cfg.seed)
    head = ViewpointHead(codes.shape[1], cfg.hidden, cfg.bins)
    head.mean.copy_(codes.mean(0))
    head.std.copy_(codes.std(0) + 1e-6)
    width = 2 * math.pi / cfg.bins
    diff = torch.as_tensor(np.asarray(azimuths), dtype=torch.float32)[:, None] - head.centres()
    diff = (diff + math.pi) % (2 * math.pi) - math.pi
    target = torch.exp(-0.5 * (diff / width) ** 2)
    target /= target.sum(1, keepdim=True)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    generator = torch.Generator().manual_seed(cfg.seed)
    head.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(len(codes), generator=generator)
        for i in range(0, len(codes), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            loss = -(target[idx] * torch.log_softmax(head(codes[idx]), 1)).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return head.eval()


def evaluate_viewpoint_head(head: ViewpointHead, codes: torch.Tensor, azimuths: np.ndarray,
                            codes_mirror: torch.Tensor | None = None) -> dict[str, float]:
    """Return the head's held-out figures on codes of views with known azimuths.

    `codes_mirror`, codes of the views turned left to right, are averaged in (`probabilities`).

    Median azimuth error (deg) of the most likely class, the share within 30 deg, and how often
    the true azimuth's half circle gets more than half (front told from back) or less than a
    quarter of the probability (confidently wrong).
    """
    p = head.probabilities(codes, codes_mirror)
    centres = head.centres().numpy()
    err = np.rad2deg(angular_error(centres[p.argmax(1)], azimuths))
    mass = np.array([half_circle_mass(pi, centres, a) for pi, a in zip(p, azimuths)])
    return {'median_error_deg': float(np.median(err)),
            'within_30deg': float(np.mean(err < 30)),
            'front_back_correct': float(np.mean(mass > 0.5)),
            'confidently_wrong': float(np.mean(mass < 0.25))}
