"""``has``: Hide-and-Seek (Singh & Lee 2017) as wsolevaluation trains it.

Each training image is cut into square cells of ``grid_size`` pixels (the last row and
column may be partial) and every cell is hidden, set to 0 in the normalized image (the
dataset mean), with probability ``drop_rate``, independently per image and cell; then
plain cross-entropy. The reference's default cell is 4 pixels (``--has_grid_size 4``):
its loop steps through the image ``grid_size`` pixels at a time.
"""
from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from wsol.training.methods.base import TrainMethod, register_train_method, train_outputs
from wsol.utils.options import option


def hide_patches(images: torch.Tensor, grid_size: int, drop_rate: float,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero whole ``grid_size`` x ``grid_size`` cells of ``images`` [B, C, H, W] in place,
    each with probability ``drop_rate`` (a cell is hidden when its uniform draw is
    <= ``drop_rate``, as the reference's ``random.random() <= drop_rate``); hidden pixels
    become +0.0 in every channel; returns ``images``. ``grid_size`` 0 leaves them unchanged."""
    if grid_size == 0:
        return images
    b, _, h, w = images.shape
    gh, gw = math.ceil(h / grid_size), math.ceil(w / grid_size)
    u = torch.rand((b, gh, gw), generator=generator, device=images.device if generator is None else "cpu")
    hidden = (u <= drop_rate).to(device=images.device)
    hidden = hidden.repeat_interleave(grid_size, 1).repeat_interleave(grid_size, 2)[:, :h, :w]
    # assign 0 as the reference does: multiplying by a 0/1 mask would leave -0.0 on negative pixels
    images.masked_fill_(hidden.unsqueeze(1), 0.0)
    return images


@dataclasses.dataclass
class HasOptions:
    grid_size: int = option(4, help="side of a hidden cell in pixels (0: hide nothing)", min=0)
    drop_rate: float = option(0.5, help="probability of hiding a cell", min=0.0, max=1.0)


@register_train_method
class HideAndSeek(TrainMethod):
    name = "has"
    description = "Hide-and-Seek: hide random grid cells of each training image (Singh & Lee 2017)"
    Options = HasOptions

    def loss(self, model, images, labels):
        images = hide_patches(images, self.options.grid_size, self.options.drop_rate)
        logits = train_outputs(model, images, labels)["logits"]
        return nn.functional.cross_entropy(logits.float(), labels), logits
