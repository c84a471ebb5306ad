"""``bas``: BAS, Background Activation Suppression (Wu et al., CVPR 2022), as its reference
trainer (BAS-Extension, ``WSOL/train.py``) trains it.

The model (a BAS architecture: a reference net ``bas_*``, or any CNN backbone's generic
variant ``NAME+bas``) has a classification path giving ``score_1`` and class maps F, and a
localization head giving a sigmoid foreground map; in training the map of the label's class
is M_fg. Its training-mode forward also runs an *erase branch*: frozen copies of the
classifier's last stages score the detached trunk features times (1 − M_fg); S_bg is that
score of the label, whose gradient reaches M_fg (the localization head and its input) but
not the copied stages. With S = ``score_1`` of the label (detached) the loss (:func:`bas_loss_terms`) is

    total = CE(score_1) + alpha CE(score_2) + mean(bas) + beta mean(area)

- ``score_2`` = GAP(F times M_fg pooled to F's size);
- ``bas`` per image = relu(S_bg) / (relu(S) + 1e-8), exactly 1 where relu(S_bg) > relu(S)
  (0 in the reference's VGG16, whose model says so: ``bas_clamp``);
- ``area`` per image = the spatial mean of M_fg.

alpha and beta default to the reference's argparse defaults, 0.5 and 1.5, which are also its
CUB values for ResNet50; the reference's other values (CUB: VGG 0 / 0.9, InceptionV3 0.5 / 1,
MobileNetV1 0.5 / 1.9; ImageNet: VGG 0.05 / 1, ResNet50 1 / 2, InceptionV3 1 / 2.5,
MobileNetV1 0.5 / 1.5) are given with ``--bas-alpha`` / ``--bas-beta``. Optimizer: SGD,
momentum 0.9, Nesterov, weight decay 5e-4 on every parameter, lr 0.001 in four name groups
(trunk weights 1x, trunk biases 2x, classifier weights 10x, classifier biases 20x), x0.1
every 80 epochs; 120 epochs of batch 32 (CUB). See ``docs/training.md`` ("The later
families").
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

import torch
from torch import nn

from wsol.errors import WsolError
from wsol.training.methods.base import TrainMethod, register_train_method, train_outputs
from wsol.utils.options import option
from wsol.training.methods.param_groups import bas_groups, reference_named_parameters
from wsol.models.families import bas_architecture

#: the reference's loss weights (alpha, beta) per dataset and architecture (utils/hyperparameters.py)
BAS_WEIGHTS = {("cub", "vgg16"): (0.0, 0.9), ("cub", "resnet50"): (0.5, 1.5), ("cub", "inception_v3"): (0.5, 1.0),
               ("cub", "mobilenet_v1"): (0.5, 1.9), ("imagenet", "vgg16"): (0.05, 1.0),
               ("imagenet", "resnet50"): (1.0, 2.0), ("imagenet", "inception_v3"): (1.0, 2.5),
               ("imagenet", "mobilenet_v1"): (0.5, 1.5)}
#: the erase-branch ratio's guard against S = 0
BAS_EPS = 1e-8


@dataclasses.dataclass
class BasOptions:
    alpha: float = option(0.5, help="weight of the foreground-score cross-entropy (CUB ResNet50 value)",
                          min=0.0, max=100.0)
    beta: float = option(1.5, help="weight of the foreground-area term (CUB ResNet50 value)", min=0.0, max=100.0)


def bas_ratio(s: torch.Tensor, s_bg: torch.Tensor, clamp: float = 1.0, eps: float = BAS_EPS) -> torch.Tensor:
    """Per image relu(S_bg) / (relu(S) + eps), exactly ``clamp`` where relu(S_bg) > relu(S)
    (1; the reference's VGG16 sets 0); S is detached, S_bg carries the gradient."""
    s = torch.relu(s.detach().float())
    bg = torch.relu(s_bg.float())
    return torch.where(bg > s, torch.full_like(bg, clamp), bg / (s + eps))


def bas_loss_terms(score_1: torch.Tensor, score_2: torch.Tensor, s_bg: torch.Tensor, fg_map: torch.Tensor,
                   labels: torch.Tensor, alpha: float, beta: float, clamp: float = 1.0) -> Dict[str, torch.Tensor]:
    """BAS's loss terms and ``total`` (module docstring). ``score_1``/``score_2`` [B, C],
    ``s_bg`` [B] (the erase branch's score of the label), ``fg_map`` [B, 1, h, w]."""
    b = labels.shape[0]
    s = score_1.gather(1, labels.view(-1, 1)).view(b)
    cls = nn.functional.cross_entropy(score_1.float(), labels)
    cls_fg = nn.functional.cross_entropy(score_2.float(), labels)
    bas = bas_ratio(s, s_bg, clamp).mean(0)
    area = fg_map.float().reshape(b, -1).mean(1).mean(0)
    return {"cls": cls, "cls_fg": cls_fg, "bas": bas, "area": area,
            "total": cls + alpha * cls_fg + bas + beta * area}


@register_train_method
class Bas(TrainMethod):
    name = "bas"
    description = ("BAS: foreground head trained to suppress the background's score (erase branch), "
                   "CE + alpha CE_fg + bas + beta area (Wu et al. 2022)")
    architecture = "bas"
    Options = BasOptions
    recipe = {"lr": 1e-3, "weight_decay": 5e-4, "epochs": 120, "batch_size": 32, "lr_decay_epochs": 80}
    momentum = 0.9

    def architecture_for(self, backbone: str) -> Optional[Tuple[str, Dict[str, Any]]]:
        """A reference BAS net for its own name or its trunk's (``resnet50`` -> ``bas_resnet50``);
        for any other CNN backbone its generic variant ``NAME+bas``; a ViT is refused."""
        return bas_architecture(backbone), {}

    def make_optimizer(self, model, trainable, cfg):
        groups = bas_groups(reference_named_parameters(model, trainable), cfg.lr)
        opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=self.momentum, dampening=0.0,
                              weight_decay=cfg.weight_decay, nesterov=True)
        return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_decay_epochs, gamma=0.1)

    def loss_terms(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The loss terms of one batch (:func:`bas_loss_terms`) and the ``logits`` (score_1)."""
        out = train_outputs(model, images, labels)
        missing = [k for k in ("logits_fg", "s_bg", "m_fg") if k not in out]
        if missing:
            raise WsolError(f"--wsol-method bas needs a BAS model (its forward_train gives "
                            f"{', '.join(missing)}); got {type(model).__name__}")
        clamp = float(getattr(getattr(model, "net", model), "bas_clamp", 1.0))
        terms = bas_loss_terms(out["logits"], out["logits_fg"], out["s_bg"], out["m_fg"], labels,
                               self.options.alpha, self.options.beta, clamp)
        terms["logits"] = out["logits"]
        return terms

    def loss(self, model, images, labels):
        t = self.loss_terms(model, images, labels)
        return t["total"], t["logits"]
