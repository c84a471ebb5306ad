"""Baselines that look at no model: where would a WSOL method land by chance?

They use only the batch size, the input size and the device of ``images``; the model
outputs passed in are ignored and the targets are not checked. The engine still runs the
backbone for them: its predictions fill the classification columns (top-1/top-5, and the
Top-k Loc that needs them), so a baseline's row is comparable with a method's.

- ``center_gaussian``: the "no learning" center-gaussian baseline of Choe et al. 2020, an
  isotropic Gaussian at the image centre ``((H-1)/2, (W-1)/2)``, peak 1, with
  ``sigma = 0.25 * min(H, W)`` pixels (option ``sigma``, as a fraction of the shorter side).
  Because the protocol sweeps every threshold, sigma mostly decides only which tau scores
  best, not the best score itself. Returned at the input resolution [B, H, W].
- ``center_box``: 1 inside a centred box, 0 outside, at the input resolution. The box
  covers ``fraction = 0.5`` of the image area (option): each side is scaled by
  ``sqrt(fraction)`` and the margins are ``round((H - sqrt(fraction) H) / 2)`` pixels on both
  sides (so the box is symmetric; 158x158 of 224x224, 49.75%, by default).
- ``random``: uniform noise in [0, 1) on a grid of ``ceil(H / cell) x ceil(W / cell)``
  cells (``cell = 32`` pixels by default: 7x7 at 224, like a stride-32 CAM). Image number i
  of a run (counted across calls since creation or ``reset()``, or given by the optional
  ``indices`` argument) draws from a CPU ``torch.Generator`` seeded with
  ``image_seed(seed, i)`` (a 32-bit BLAKE2b hash of both: the CPU generator keeps 32 bits
  of a seed): the maps depend on the seed and the image's index only, not on the batching.
"""
from __future__ import annotations

import hashlib
import math
from typing import Optional

import torch

from wsol.cams.base import CamMethod, register_method
from wsol.utils.rules import MAX_SEED, Rule


class BaselineMethod(CamMethod):
    needs_grad = False


@register_method
class CenterGaussian(BaselineMethod):
    name = "center_gaussian"
    option_rules = {"sigma": Rule("float", 0, 10, min_open=True, note="x the shorter side")}
    description = "Baseline (Choe 2020): isotropic Gaussian at the image centre, sigma = 0.25 x shorter side"

    def __init__(self, sigma: float = 0.25, **options):
        super().__init__(sigma=sigma, **options)
        self.sigma = float(self.options["sigma"])

    def __call__(self, backbone, images, feats=None, logits=None, targets=None):
        B, (H, W) = images.shape[0], images.shape[-2:]
        s = self.sigma * min(H, W)
        y = torch.arange(H, device=images.device, dtype=torch.float32) - (H - 1) / 2
        x = torch.arange(W, device=images.device, dtype=torch.float32) - (W - 1) / 2
        g = torch.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / (2 * s * s))
        return g.unsqueeze(0).repeat(B, 1, 1)


def center_box_bounds(size: int, fraction: float) -> tuple:
    """(start, stop) of the centred box along an axis of ``size`` pixels (area ``fraction``)."""
    margin = int(round((size - math.sqrt(fraction) * size) / 2))
    return margin, size - margin


@register_method
class CenterBox(BaselineMethod):
    name = "center_box"
    option_rules = {"fraction": Rule("float", 0, 1, min_open=True, note="of the image area")}
    description = "Baseline: a centred box covering half the image area (each side x sqrt(0.5)), 1 inside, 0 outside"

    def __init__(self, fraction: float = 0.5, **options):
        super().__init__(fraction=fraction, **options)
        self.fraction = float(self.options["fraction"])

    def __call__(self, backbone, images, feats=None, logits=None, targets=None):
        B, (H, W) = images.shape[0], images.shape[-2:]
        y0, y1 = center_box_bounds(H, self.fraction)
        x0, x1 = center_box_bounds(W, self.fraction)
        out = torch.zeros(B, H, W, device=images.device, dtype=torch.float32)
        out[:, y0:y1, x0:x1] = 1.0
        return out


def image_seed(seed: int, index: int) -> int:
    """32-bit generator seed of image ``index`` under ``seed``."""
    return int.from_bytes(hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=4).digest(), "little")


@register_method
class RandomMap(BaselineMethod):
    name = "random"
    option_rules = {"seed": Rule("int", 0, MAX_SEED), "cell": Rule("int", 1, 4096)}
    description = "Baseline: seeded uniform noise on a 32-pixel grid, deterministic per (seed, image index)"

    def __init__(self, seed: int = 0, cell: int = 32, **options):
        super().__init__(seed=seed, cell=cell, **options)
        self.seed, self.cell = self.options["seed"], self.options["cell"]
        self._next_index = 0

    def reset(self) -> None:
        """Restart the image count at 0."""
        self._next_index = 0

    def __call__(self, backbone, images, feats=None, logits=None, targets=None,
                 indices: Optional[torch.Tensor] = None):
        B, (H, W) = images.shape[0], images.shape[-2:]
        h, w = math.ceil(H / self.cell), math.ceil(W / self.cell)
        if indices is None:
            idx = list(range(self._next_index, self._next_index + B))
            self._next_index += B
        else:
            idx = [int(i) for i in indices]
        maps = []
        for i in idx:
            gen = torch.Generator().manual_seed(image_seed(self.seed, i))
            maps.append(torch.rand(h, w, generator=gen))
        return torch.stack(maps).to(images.device)
