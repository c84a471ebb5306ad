"""``cutmix``: CutMix (Yun et al. 2019) as wsolevaluation trains it.

With probability ``prob`` a batch is mixed: lambda ~ Beta(beta, beta); a box of sides
``int(H sqrt(1 - lambda))`` x ``int(W sqrt(1 - lambda))`` (halved and clipped at the border)
around a uniform centre is pasted from a shuffled copy of the batch; lambda becomes the
share of the image *not* pasted, and the loss is
``lambda CE(logits, y) + (1 - lambda) CE(logits, y[perm])``. Otherwise plain
cross-entropy. Random draws in the reference's order: numpy for the probability, lambda and
centre, torch for the permutation.
"""
from __future__ import annotations

import dataclasses
from typing import Tuple

import numpy as np
import torch
from torch import nn

from wsol.training.methods.base import TrainMethod, register_train_method, train_outputs
from wsol.utils.options import option


def rand_box(height: int, width: int, lam: float, rng=np.random) -> Tuple[int, int, int, int]:
    """(y0, x0, y1, x1): the pasted box (rows y0:y1, columns x0:x1) for ``lam``."""
    cut = np.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * cut), int(width * cut)
    cy, cx = rng.randint(height), rng.randint(width)
    y0, y1 = np.clip(cy - cut_h // 2, 0, height), np.clip(cy + cut_h // 2, 0, height)
    x0, x1 = np.clip(cx - cut_w // 2, 0, width), np.clip(cx + cut_w // 2, 0, width)
    return int(y0), int(x0), int(y1), int(x1)


def cutmix_batch(images: torch.Tensor, labels: torch.Tensor, beta: float, rng=np.random
                 ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Mix ``images`` in place; returns (images, labels, labels of the pasted images,
    lambda = share of each image kept)."""
    lam = float(rng.beta(beta, beta))
    perm = torch.randperm(images.shape[0]).to(images.device)
    target_b = labels[perm].clone()
    h, w = images.shape[-2:]
    y0, x0, y1, x1 = rand_box(h, w, lam, rng)
    images[:, :, y0:y1, x0:x1] = images[perm, :, y0:y1, x0:x1]
    lam = 1.0 - (y1 - y0) * (x1 - x0) / float(h * w)
    return images, labels.clone(), target_b, lam


def mixed_loss(logits: torch.Tensor, target_a: torch.Tensor, target_b: torch.Tensor, lam: float) -> torch.Tensor:
    """``lam CE(logits, target_a) + (1 - lam) CE(logits, target_b)`` (batch means)."""
    ce = nn.functional.cross_entropy
    return ce(logits, target_a) * lam + ce(logits, target_b) * (1.0 - lam)


@dataclasses.dataclass
class CutMixOptions:
    beta: float = option(1.0, help="lambda ~ Beta(beta, beta); 0 = never mix", min=0.0)
    prob: float = option(1.0, help="probability of mixing a batch", min=0.0, max=1.0)


@register_train_method
class CutMix(TrainMethod):
    name = "cutmix"
    description = "CutMix: paste a box from another training image, mix the labels by area (Yun et al. 2019)"
    Options = CutMixOptions

    def loss(self, model, images, labels):
        o = self.options
        if o.prob > np.random.rand(1)[0] and o.beta > 0:
            images, ta, tb, lam = cutmix_batch(images, labels, o.beta)
            logits = train_outputs(model, images, None)["logits"]
            return mixed_loss(logits.float(), ta, tb, lam), logits
        logits = train_outputs(model, images, labels)["logits"]
        return nn.functional.cross_entropy(logits.float(), labels), logits
