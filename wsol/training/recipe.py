"""The training recipe: ``TrainConfig`` (the options of ``wsol train``), the named recipes
that fill its unset fields, the learning-rate schedule, the optimizer and mixed precision.

The default recipe, ``reference``, is the trainer of Choe et al. (clovaai/wsolevaluation,
``config.py`` and ``main.py``): SGD with Nesterov momentum 0.9, weight decay 1e-4 on every
parameter, the new layers at 10x the rate, batch 64, 40 epochs, rate 0.01 multiplied by 0.1
*before* every epoch ``e`` with ``e % lr_decay_epochs == 0`` (decay frequency 30), float32.
``wsol`` is the recipe wsol used before (no Nesterov, decay *after* every ``lr_decay_epochs``
epochs, bf16/fp16 autocast on CUDA); ``wsol demo`` trains with it. See ``docs/architecture.md`` ("Training like the paper").
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

from wsol.errors import WsolError
from wsol.models.backbone import Backbone
from wsol.models.training import param_groups, parse_train_layers

log = logging.getLogger(__name__)

SELECT_BY = ("maxboxacc_v2", "top1", "last")
EVAL_CHECKPOINTS = ("last", "best")
AMP_MODES = ("auto", "bf16", "fp16", "off")
LR_SCHEDULES = ("reference", "step")

#: recipe name -> the values of the TrainConfig fields left unset (None)
RECIPES: Dict[str, Dict[str, object]] = {
    "reference": dict(epochs=40, lr=0.01, batch_size=64, lr_decay_epochs=30, nesterov=True,
                      lr_schedule="reference", amp="off"),
    "wsol": dict(epochs=50, lr=1e-3, batch_size=32, lr_decay_epochs=15, nesterov=False,
                 lr_schedule="step", amp="auto"),
}
RECIPE_FIELDS = tuple(RECIPES["reference"])


@dataclass
class TrainConfig:
    """Everything a training run depends on (its fields are the ``wsol train`` options).

    Fields left ``None`` take the value of ``recipe`` (:data:`RECIPES`); :func:`resolve`
    fills them."""

    dataset: str = "cub"
    root: str = ""
    split: str = "train"
    backbone: str = "efficientnet_lite0"
    weights: str = "pretrained"
    wsol_method: str = "cam"
    method_options: Dict[str, object] = field(default_factory=dict)
    model_options: Dict[str, object] = field(default_factory=dict)
    recipe: str = "reference"
    epochs: Optional[int] = None
    lr: Optional[float] = None
    batch_size: Optional[int] = None
    lr_decay_epochs: Optional[int] = None
    lr_schedule: Optional[str] = None
    momentum: float = 0.9
    weight_decay: float = 1e-4
    nesterov: Optional[bool] = None
    new_lr_mult: float = 10.0
    train_layers: str = "all"
    selection_split: str = "auto"
    holdout: float = 0.1
    select_by: str = "maxboxacc_v2"
    val_method: str = "cam"
    val_batch_size: int = 64
    cam_step: float = 0.01
    test_split: str = ""
    eval_checkpoint: str = "last"
    device: str = "cpu"
    amp: Optional[str] = None
    out: str = ""
    resume: bool = False
    data_workers: int = 0
    seed: int = 0
    dataset_options: Dict[str, object] = field(default_factory=dict)
    progress: bool = True


def fill_recipe(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with every unset (None) field taken from its recipe."""
    if cfg.recipe not in RECIPES:
        raise WsolError(f"--recipe takes one of {', '.join(RECIPES)}, got {cfg.recipe!r}")
    preset = RECIPES[cfg.recipe]
    return replace(cfg, **{k: v for k, v in preset.items() if getattr(cfg, k) is None})


def resolve(cfg: TrainConfig) -> TrainConfig:
    """:func:`fill_recipe`, then :func:`check`."""
    cfg = fill_recipe(cfg)
    check(cfg)
    return cfg


def check(cfg: TrainConfig) -> None:
    """One-line errors for options out of range (``cfg`` resolved)."""
    if not cfg.out:
        raise WsolError("training needs an output folder (--out DIR)")
    for name in ("epochs", "batch_size", "lr_decay_epochs"):
        if getattr(cfg, name) < 1:
            raise WsolError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(cfg, name)}")
    if not cfg.lr > 0 or not math.isfinite(cfg.lr):
        raise WsolError(f"--lr must be a positive number, got {cfg.lr}")
    for name, allowed in (("select_by", SELECT_BY), ("amp", AMP_MODES), ("lr_schedule", LR_SCHEDULES),
                          ("eval_checkpoint", EVAL_CHECKPOINTS)):
        if getattr(cfg, name) not in allowed:
            raise WsolError(f"--{name.replace('_', '-')} takes one of {', '.join(allowed)}, "
                            f"got {getattr(cfg, name)!r}")
    parse_train_layers(cfg.train_layers)


def config_dict(cfg: TrainConfig) -> dict:
    """The config as JSON-safe values (train_config.json, checkpoints)."""
    return json.loads(json.dumps(asdict(cfg), default=str))


def config_fields() -> List[str]:
    return [f.name for f in fields(TrainConfig)]


# ----------------------------------------------------------------------------- schedule
def n_decays(epoch: int, every: int, rule: str = "reference") -> int:
    """How many times the rate has been multiplied by 0.1 when 1-based ``epoch`` runs.

    ``reference``: once before each epoch e with e % every == 0 (wsolevaluation's
    ``adjust_learning_rate``; every=3: epochs 1-2 at 1, 3-5 at 0.1, 6-8 at 0.01, 9-10 at
    0.001). ``step``: after every ``every`` epochs (torch's StepLR; 1-3, 4-6, 7-9, 10)."""
    if epoch < 1 or every < 1:
        raise ValueError(f"epoch and every must be >= 1, got {epoch}, {every}")
    return epoch // every if rule == "reference" else (epoch - 1) // every


def decayed(lr: float, n: int) -> float:
    """``lr`` multiplied by 0.1 ``n`` times in turn, as the reference does in place (so
    1.0 -> 0.1 -> 0.010000000000000002, the same rounding)."""
    for _ in range(n):
        lr *= 0.1
    return lr


def lr_factor(epoch: int, every: int, rule: str = "reference") -> float:
    """The rate of 1-based ``epoch`` relative to the base rate (see :func:`n_decays`)."""
    return decayed(1.0, n_decays(epoch, every, rule))


def make_optimizer(bb: Backbone, trainable: Sequence[nn.Parameter], cfg: TrainConfig) -> torch.optim.SGD:
    """SGD (momentum, Nesterov, weight decay on every parameter; new layers at
    ``new_lr_mult`` x lr: :func:`wsol.models.training.param_groups`). Each group records its
    base rate as ``initial_lr``; :func:`set_epoch_lr` applies the schedule."""
    cfg = fill_recipe(cfg)
    opt = torch.optim.SGD(param_groups(bb, trainable, cfg.lr, cfg.new_lr_mult, cfg.weight_decay),
                          lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                          nesterov=bool(cfg.nesterov))
    for g in opt.param_groups:
        g["initial_lr"] = g["lr"]
    return opt


def set_epoch_lr(opt: torch.optim.Optimizer, epoch: int, cfg: TrainConfig) -> Dict[str, float]:
    """Set every group's rate for 1-based ``epoch``, the reference's in-place products
    (``lr * 0.1 * 0.1 ...``). Returns ``{'lr': the rate of --lr, 'lr_new': the new layers'}``
    whether or not a group of that kind trains (``--train-layers head``)."""
    n = n_decays(epoch, cfg.lr_decay_epochs, cfg.lr_schedule)
    for g in opt.param_groups:
        g["lr"] = decayed(g["initial_lr"], n)
    return {"lr": decayed(cfg.lr, n), "lr_new": decayed(cfg.lr * cfg.new_lr_mult, n)}


# ----------------------------------------------------------------------------- AMP
def amp_dtype(mode: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype for ``mode`` on ``device`` (None: float32). AMP is CUDA-only."""
    if mode not in AMP_MODES:
        raise WsolError(f"--amp takes one of {', '.join(AMP_MODES)}, got {mode!r}")
    if mode == "off":
        return None
    if device.type != "cuda":
        if mode != "auto":
            log.warning("--amp %s is used on CUDA only; training in float32 on %s", mode, device)
        return None
    if mode == "bf16" or (mode == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16
