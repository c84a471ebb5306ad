"""``sat``: SAT, Spatial-Aware Token (Wu et al., ICCV 2023), as its reference CUB trainer
trains it.

The model (``deit_sat_small_patch16_224``) adds a localization token; in its last three
blocks the attention is multiplied by the sigmoid of the head-mean attention logits of the
token's query row, and the mean of those three masks over the 196 patch keys is the map M
[B, 1, 14, 14]. The loss (:func:`sat_loss_terms`), every term with weight 1:

- ``cls``: batch-mean cross-entropy of the logits;
- ``area`` = |mean over images of M's spatial mean − ``area_thr``| (the *batch* mean; 0.25
  on CUB, 0.35 on ImageNet);
- ``norm``: mean of (1 − B) · B with B = M blurred by a fixed 3x3 Gaussian
  (:func:`sat_blur_kernel`), padding 1: pushes M towards 0 or 1.

Optimizer: AdamW, lr 1e-4, weight decay 0.05 on every parameter of two or more dimensions
whose name does not end in ``.bias`` -- the tokens and embeddings included, because the
reference builds its groups on the DataParallel wrapper, whose ``no_weight_decay`` is
empty -- in the group order they first appear; the lr and the weight decay stay constant
(the script's cosine schedules are computed but never applied). Drop-path 0.1, 30 epochs of
batch 256 (the CUB script's defaults). See ``docs/training.md`` ("The later families").
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Optional, Tuple

import torch
from torch import nn

from wsol.errors import WsolError
from wsol.training.methods.base import TrainMethod, register_train_method, train_outputs
from wsol.utils.options import option
from wsol.training.methods.param_groups import decay_groups, is_no_decay, reference_named_parameters
from wsol.training.methods.tscam import adamw, family_architecture


@dataclasses.dataclass
class SatOptions:
    area_thr: float = option(0.25, help="target mean of the token map (0.25 CUB, 0.35 ImageNet)", min=0.0, max=1.0)
    drop_path: float = option(0.1, help="stochastic-depth rate of the last block (rising linearly from 0 in block 0)",
                              min=0.0, max=1.0)


def sat_blur_kernel(size: int = 3, nsig: float = 6.0) -> torch.Tensor:
    """SAT's fixed blur kernel [1, 1, size, size]: k = the differences of the standard
    normal CDF at ``size + 1`` points evenly spaced over [−nsig − d/2, nsig + d/2] with
    d = (2 nsig + 1) / size; the kernel is sqrt(outer(k, k)) normalized to sum 1."""
    d = (2 * nsig + 1.0) / size
    xs = [-nsig - d / 2 + i * (2 * nsig + d) / size for i in range(size + 1)]
    cdf = [0.5 * (1.0 + math.erf(x / math.sqrt(2.0))) for x in xs]
    k = torch.tensor([b - a for a, b in zip(cdf, cdf[1:])], dtype=torch.float64)
    k2 = torch.sqrt(torch.outer(k, k))
    return (k2 / k2.sum()).float().view(1, 1, size, size)


def sat_loss_terms(logits: torch.Tensor, labels: torch.Tensor, token_map: torch.Tensor, kernel: torch.Tensor,
                   area_thr: float) -> Dict[str, torch.Tensor]:
    """SAT's loss terms and ``total`` = cls + area + norm (module docstring); ``token_map``
    M is [B, 1, h, w], ``kernel`` [1, 1, k, k]; ``ba_mean`` is the batch mean of M."""
    b = token_map.shape[0]
    m = token_map.float()
    ba_mean = m.reshape(b, -1).mean(1).mean(0)
    blurred = nn.functional.conv2d(m, kernel.to(m), padding=kernel.shape[-1] // 2)
    norm = ((1 - blurred) * blurred).reshape(b, -1).mean(1).mean(0)
    cls = nn.functional.cross_entropy(logits.float(), labels)
    area = (ba_mean - area_thr).abs()
    return {"cls": cls, "ba_mean": ba_mean, "area": area, "norm": norm, "total": cls + area + norm}


def model_blur_kernel(model: nn.Module) -> torch.Tensor:
    """The reference model's constant kernel (its ``weight`` entry, loaded with the model)
    when the model holds one, else :func:`sat_blur_kernel`."""
    k = getattr(getattr(model, "net", model), "weight", None)
    if isinstance(k, torch.Tensor) and k.ndim == 4 and k.shape[:2] == (1, 1):
        return k.detach()
    return sat_blur_kernel()


@register_train_method
class Sat(TrainMethod):
    name = "sat"
    description = ("SAT: DeiT + localization token; cross-entropy + |mean map - area_thr| + blurred-map "
                   "binarization, AdamW (Wu et al. 2023)")
    architecture = "sat"
    Options = SatOptions
    recipe = {"lr": 1e-4, "weight_decay": 0.05, "epochs": 30, "batch_size": 256}

    def model_options(self) -> Dict[str, Any]:
        return {"drop_path_rate": self.options.drop_path}

    def architecture_for(self, backbone: str) -> Optional[Tuple[str, Dict[str, Any]]]:
        return family_architecture(backbone, "sat"), self.model_options()

    def make_optimizer(self, model, trainable, cfg):
        named = reference_named_parameters(model, trainable)
        groups = decay_groups(named, cfg.weight_decay, lambda n, p: is_no_decay(n, p), no_decay_first=False)
        for g in groups:
            g["lr_scale"] = 1.0   # carried by the reference's groups, never read
        opt = adamw(groups, cfg.lr)
        return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=1.0)   # constant

    def loss_terms(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The loss terms of one batch (:func:`sat_loss_terms`) and the ``logits``."""
        out = train_outputs(model, images, labels)
        if "mask" not in out:
            raise WsolError(f"--wsol-method sat needs a SAT model (its forward_train gives the token map); "
                            f"got {type(model).__name__}")
        terms = sat_loss_terms(out["logits"], labels, out["mask"], model_blur_kernel(model),
                               self.options.area_thr)
        terms["logits"] = out["logits"]
        return terms

    def loss(self, model, images, labels):
        t = self.loss_terms(model, images, labels)
        return t["total"], t["logits"]
