"""Map-level pieces of the ACoL and SPG heads (wsolevaluation's ``wsol/method``) that the
models' forward passes need; the training losses built on them live with the trainer.

- ``normalize_maps``: per image and channel min-max over h, w (a constant map gives NaN,
  as in the reference).
- ``class_attention``: the (detached) map of each image's class, min-max normalized.
- ``erase_attention`` (ACoL): zero the feature where the attention >= threshold.
- ``spg_attention`` (SPG): the class attention of the classifier map upsampled (bilinear)
  to 224x224, and the fused attention ``(sigmoid(up(b1)) + sigmoid(up(b2))) / 2``.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F

ACOL_DROP_THRESHOLD = 0.7
SPG_MAP_SIZE = 224  # the reference upsamples SPG maps to 224x224 whatever the input size


def normalize_maps(x: torch.Tensor) -> torch.Tensor:
    """[B, C, h, w] -> the same with each map min-max normalized to [0, 1]."""
    flat = x.flatten(2)
    lo = flat.min(dim=-1, keepdim=True).values
    hi = flat.max(dim=-1, keepdim=True).values
    return ((flat - lo) / (hi - lo)).view_as(x)


def class_attention(feat_map: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """[B, C, h, w], [B] -> [B, 1, h, w]: the label's map, detached, min-max normalized."""
    f = feat_map.detach()
    return normalize_maps(f[torch.arange(f.shape[0], device=f.device), labels].unsqueeze(1))


def erase_attention(feature: torch.Tensor, attention: torch.Tensor, threshold: float) -> torch.Tensor:
    """ACoL's erasing: ``feature`` times a mask that is 0 where ``attention >= threshold``."""
    mask = torch.ones_like(attention)
    mask[attention >= threshold] = 0.0
    return feature * mask


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=(SPG_MAP_SIZE, SPG_MAP_SIZE), mode="bilinear", align_corners=False)


def spg_attention(feat_map: torch.Tensor, labels: torch.Tensor, logits_b1: torch.Tensor,
                  logits_b2: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """SPG's (attention [B,1,224,224], fused_attention [B,1,224,224]).

    Bilinear upsampling acts per channel, so upsampling only the label's channel gives the
    reference's numbers without upsampling all C maps.
    """
    idx = torch.arange(feat_map.shape[0], device=feat_map.device)
    attention = normalize_maps(_up(feat_map.detach()[idx, labels].unsqueeze(1)))
    fused = (torch.sigmoid(_up(logits_b1.detach())) + torch.sigmoid(_up(logits_b2.detach()))) / 2.0
    return attention, fused
