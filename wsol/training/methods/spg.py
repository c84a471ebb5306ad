"""``spg``: Self-Produced Guidance (Zhang et al. 2018) as wsolevaluation trains it.

The model (an ``*_spg`` architecture) returns, besides the class logits, three one-channel
side outputs (``logits_b1``, ``logits_b2``, ``logits_c``) and two guidance maps upsampled to
224x224: ``attention`` (the ground-truth class map of ``SPG_A4``, min-max normalized) and
``fused_attention`` (the mean of sigmoid(b1) and sigmoid(b2)). A guidance map becomes a
three-valued mask with a (high, low) threshold pair: 1 where it is > high (when fewer than
30 pixels are, > 0.7 x its max instead), 0 where it is < low, 255 (ignored) elsewhere. The
loss is

    CE(logits, y) + BCE(b2 | mask(attention, h1, l1)) + BCE(b1 | mask(sigmoid(b2), h2, l2))
                  + BCE(c | mask(fused_attention, h3, l3))

each BCE with logits over the pixels that are not ignored, the side output upsampled
bilinearly to the mask's size. Defaults (h, l): (0.7, 0.01), (0.5, 0.05), (0.7, 0.1).
"""
from __future__ import annotations

import dataclasses
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from wsol.training.methods.base import TrainMethod, register_train_method, train_outputs
from wsol.utils.options import option

IGNORE = 255.0
MIN_FOREGROUND = 30       # fewer foreground pixels than this: fall back to 0.7 x max
FALLBACK_RATIO = 0.7


def _up(x: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def spg_mask(attention: torch.Tensor, high: float, low: float) -> torch.Tensor:
    """[B, 1, H, W] guidance map -> mask of 1 (foreground), 0 (background), 255 (ignored)."""
    mask = torch.full_like(attention, IGNORE)
    for i in range(attention.shape[0]):
        fg = attention[i] > high
        if int(fg.sum()) < MIN_FOREGROUND:
            fg = attention[i] > attention[i].max() * FALLBACK_RATIO
        mask[i][fg] = 1.0
    mask[attention < low] = 0.0
    return mask


def masked_bce(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BCE with logits, mean over the pixels whose mask is not 255."""
    keep = mask.reshape(-1) < IGNORE
    return F.binary_cross_entropy_with_logits(logits.reshape(-1)[keep], mask.reshape(-1)[keep].detach())


def attention_loss(side_logits: torch.Tensor, guidance: torch.Tensor, high: float, low: float) -> torch.Tensor:
    """One auxiliary loss: ``side_logits`` [B, 1, h, w] upsampled to the guidance's size
    against ``spg_mask(guidance, high, low)``."""
    size = guidance.shape[-2:]
    return masked_bce(_up(side_logits.float(), size), spg_mask(guidance.detach().float(), high, low))


def spg_losses(outputs, labels, thresholds: Tuple[Tuple[float, float], ...]) -> Tuple[torch.Tensor, ...]:
    """(classification, b2-vs-attention, b1-vs-sigmoid(b2), c-vs-fused) losses."""
    (h1, l1), (h2, l2), (h3, l3) = thresholds
    size = outputs["attention"].shape[-2:]
    b2i = torch.sigmoid(_up(outputs["logits_b2"].float(), size))
    return (nn.functional.cross_entropy(outputs["logits"].float(), labels),
            attention_loss(outputs["logits_b2"], outputs["attention"], h1, l1),
            attention_loss(outputs["logits_b1"], b2i, h2, l2),
            attention_loss(outputs["logits_c"], outputs["fused_attention"], h3, l3))


def _thr(default: float, what: str):
    return option(default, help=what, min=0.0, max=1.0)


@dataclasses.dataclass
class SpgOptions:
    threshold_1h: float = _thr(0.7, "foreground above this in the class attention (loss on b2)")
    threshold_1l: float = _thr(0.01, "background below this in the class attention (loss on b2)")
    threshold_2h: float = _thr(0.5, "foreground above this in sigmoid(b2) (loss on b1)")
    threshold_2l: float = _thr(0.05, "background below this in sigmoid(b2) (loss on b1)")
    threshold_3h: float = _thr(0.7, "foreground above this in the fused attention (loss on c)")
    threshold_3l: float = _thr(0.1, "background below this in the fused attention (loss on c)")

    def pairs(self) -> Tuple[Tuple[float, float], ...]:
        return ((self.threshold_1h, self.threshold_1l), (self.threshold_2h, self.threshold_2l),
                (self.threshold_3h, self.threshold_3l))


@register_train_method
class Spg(TrainMethod):
    name = "spg"
    description = "SPG: side branches learn foreground/background masks produced by the net itself (Zhang et al. 2018)"
    architecture = "spg"
    Options = SpgOptions

    def loss(self, model, images, labels):
        out = train_outputs(model, images, labels)
        return sum(spg_losses(out, labels, self.options.pairs())), out["logits"]
