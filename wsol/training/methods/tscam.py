"""``tscam``: TS-CAM (Gao et al., ICCV 2021) as its reference trainer trains it.

The model is a DeiT whose patch tokens, as a 14x14 grid, go through a 3x3 conv to the
classes and global average pooling (``deit_tscam_{tiny,small,base}_patch16_224``); in
training mode it gives the logits only, and the loss is their batch-mean cross-entropy.
What makes the recipe TS-CAM's is the optimizer: AdamW (lr 5e-4, weight decay 0.05, betas
(0.9, 0.999), eps 1e-8) in two groups, no weight decay for 1-d parameters, biases,
``pos_embed`` and ``cls_token``; the lr is multiplied by 0.1 before every epoch whose
1-based number is a multiple of ``--lr-decay-epochs`` (30 on CUB: the config's LR_STEPS;
its SOLVER lr and weight decay never reach the optimizer). Drop-path 0.1, 60 epochs of
batch 128 (the CUB config). See ``docs/training.md`` ("The later families").
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

import torch
from torch import nn

from wsol.models.families import family_architecture
from wsol.training.methods.base import TrainMethod, register_train_method, train_outputs
from wsol.utils.options import option
from wsol.training.methods.param_groups import decay_groups, is_no_decay, reference_named_parameters

#: the parameters the reference model exempts from weight decay (its ``no_weight_decay()``)
TSCAM_NO_DECAY = ("pos_embed", "cls_token")


@dataclasses.dataclass
class TscamOptions:
    drop_path: float = option(0.1, help="stochastic-depth rate of the last block (rising linearly from 0 in block 0)",
                              min=0.0, max=1.0)


class StepsAtMultiples:
    """lr factor of 0-based epoch ``i``: 0.1 per multiple of ``step`` up to the 1-based
    epoch ``i + 1`` (the reference decays *before* epochs 30, 60, ...). A class, not a
    lambda, so that ``LambdaLR.state_dict`` keeps it."""

    def __init__(self, step: int):
        self.step = int(step)

    def __call__(self, epoch: int) -> float:
        return 0.1 ** ((epoch + 1) // self.step)


def adamw(groups, lr: float) -> torch.optim.AdamW:
    """AdamW with the references' settings (betas (0.9, 0.999), eps 1e-8, decoupled weight
    decay per group, no amsgrad)."""
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False)


@register_train_method
class Tscam(TrainMethod):
    name = "tscam"
    description = ("TS-CAM: DeiT + conv head trained with cross-entropy; AdamW, no decay on tokens/norms/biases "
                   "(Gao et al. 2021)")
    architecture = "tscam"
    Options = TscamOptions
    recipe = {"lr": 5e-4, "weight_decay": 0.05, "epochs": 60, "batch_size": 128, "lr_decay_epochs": 30}

    def model_options(self) -> Dict[str, Any]:
        return {"drop_path_rate": self.options.drop_path}

    def architecture_for(self, backbone: str) -> Optional[Tuple[str, Dict[str, Any]]]:
        return family_architecture(backbone, "tscam"), self.model_options()

    def make_optimizer(self, model, trainable, cfg):
        named = reference_named_parameters(model, trainable)
        groups = decay_groups(named, cfg.weight_decay, lambda n, p: is_no_decay(n, p, TSCAM_NO_DECAY),
                              no_decay_first=True)
        opt = adamw(groups, cfg.lr)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, StepsAtMultiples(cfg.lr_decay_epochs))

    def loss(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor):
        logits = train_outputs(model, images, labels)["logits"]
        return nn.functional.cross_entropy(logits.float(), labels), logits
