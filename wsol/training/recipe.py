"""The training recipe: ``TrainConfig`` (the options of ``wsol train``), the named recipes
that fill its unset fields, the learning-rate schedule, the optimizer and mixed precision.

The default recipe, ``reference``, is the trainer of Choe et al. (clovaai/wsolevaluation,
``config.py`` and ``main.py``): SGD with Nesterov momentum 0.9, weight decay 1e-4 on every
parameter, the new layers at 10x the rate, batch 64, 40 epochs, rate 0.01 multiplied by 0.1
*before* every epoch ``e`` with ``e % lr_decay_epochs == 0`` (decay frequency 30), float32.
``wsol`` is the recipe wsol used before (no Nesterov, decay *after* every ``lr_decay_epochs``
epochs, bf16/fp16 autocast on CUDA); ``wsol demo`` trains with it. See ``docs/training.md`` ("Training like the paper").
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields, replace
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

from wsol.engine.config import DEVICE, MAX_BATCH, MAX_WORKERS, MIN_CAM_STEP
from wsol.errors import WsolError
from wsol.models.backbone import Backbone
from wsol.models.training import param_groups, parse_train_layers
from wsol.utils.options import check_options, option
from wsol.utils.rules import MAX_SEED

log = logging.getLogger(__name__)

SELECT_BY = ("maxboxacc_v2", "top1", "last")
EVAL_CHECKPOINTS = ("last", "best")
AMP_MODES = ("auto", "bf16", "fp16", "off")
LR_SCHEDULES = ("reference", "step")

#: recipe name -> the values of the TrainConfig fields left unset (None)
RECIPES: Dict[str, Dict[str, object]] = {
    "reference": dict(epochs=40, lr=0.01, batch_size=64, lr_decay_epochs=30, weight_decay=1e-4, nesterov=True,
                      lr_schedule="reference", amp="off"),
    "wsol": dict(epochs=50, lr=1e-3, batch_size=32, lr_decay_epochs=15, weight_decay=1e-4, nesterov=False,
                 lr_schedule="step", amp="auto"),
}
RECIPE_FIELDS = tuple(RECIPES["reference"])


def _method_names():
    from wsol.training.methods import list_train_methods

    return [m.name for m in list_train_methods()]


_REF = RECIPES["reference"]


@dataclass
class TrainConfig:
    """Everything a training run depends on (its fields are the ``wsol train`` options, each
    declared once: :mod:`wsol.utils.options`). Fields left ``None`` take the value of
    ``recipe`` (:data:`RECIPES`); :func:`resolve` fills them."""

    dataset: str = option("cub", help="dataset adapter (see `wsol datasets`)")
    root: str = option("", help="dataset folder (for cub: the CUB_200_2011 folder holding images/)")
    split: str = option("train", help="split to train on")
    backbone: str = option("efficientnet_lite0", help="backbone name (see `wsol models`)")
    weights: str = option("pretrained", help="starting weights: 'pretrained' (ImageNet; the head is replaced by "
                                             "one sized for the dataset), 'random', or a checkpoint file")
    wsol_method: str = option("cam", choices=_method_names,
                              help="how the classifier is trained for localization (`wsol methods --training` "
                                   "describes each); the hyperparameters below apply to their method only")
    method_options: Dict[str, object] = option(default_factory=dict, cli=False, help="--<method>-<option> flags")
    model_options: Dict[str, object] = option(default_factory=dict, cli=False, help="--model-option KEY=VALUE")
    recipe: str = option("reference", choices=tuple(RECIPES),
                         help="the defaults of the schedule options: 'reference' (Choe et al.'s trainer, "
                              "clovaai/wsolevaluation) or 'wsol' (no Nesterov, decay after every --lr-decay-epochs "
                              "epochs, AMP auto, lr 1e-3, batch 32, 50 epochs, decay 15: wsol demo's) "
                              "(default reference)")
    epochs: Optional[int] = option(None, min=1, max=10_000, help=f"training epochs (default {_REF['epochs']})")
    lr: Optional[float] = option(None, min=0, max=10, min_open=True,
                                 help=f"learning rate of the pretrained layers; the new ones get 10x "
                                      f"(default {_REF['lr']})")
    batch_size: Optional[int] = option(None, min=1, max=MAX_BATCH,
                                       help=f"images per step (default {_REF['batch_size']})")
    lr_decay_epochs: Optional[int] = option(
        None, min=1, max=10_000, metavar="N", help="decay frequency: the rate is multiplied by 0.1 before every epoch e with "
                                       "e % N == 0 (--lr-schedule reference), or after every N epochs (step) "
                                       f"(default {_REF['lr_decay_epochs']})")
    lr_schedule: Optional[str] = option(None, choices=LR_SCHEDULES,
                                        help="when the rate decays: 'reference' (wsolevaluation: N=3 runs epochs "
                                             "1-2, 3-5, 6-8, 9-10 at 1, 0.1, 0.01, 0.001) or 'step' (torch "
                                             "StepLR: 1-3, 4-6, ...) (default reference)")
    momentum: float = option(0.9, min=0, max=1, max_open=True, help="SGD momentum")
    weight_decay: Optional[float] = option(None, min=0, max=1, help="weight decay (default: the method's reference "
                                                             "value; 1e-4 for Choe et al.'s)")
    nesterov: Optional[bool] = option(None, cli=False, help="Nesterov momentum, as wsolevaluation's trainer "
                                                            "(--[no-]nesterov; default: on)")
    new_lr_mult: float = option(10.0, min=0, max=10_000, min_open=True, cli=False,
                                help="learning-rate multiplier of the new layers")
    train_layers: str = option("all", metavar="all|head|last:N",
                               help="what is trained: 'all' layers, only the classifier ('head'), or the classifier "
                                    "and the last N blocks/stages of the feature stack ('last:N'; new layers such "
                                    "as vgg16_gap's conv6 always train; e.g. ResNet layer4 = last:1, "
                                    "EfficientNet conv_head+bn2 = last:1, + blocks.6 = last:2). Frozen layers keep "
                                    "their BatchNorm statistics")
    selection_split: str = option("auto", metavar="SPLIT|auto|none",
                                  help="split whose boxes choose the checkpoint, scored every epoch (wsolevaluation's "
                                       "'val' = train-fullsup); 'auto': the adapter's 'val' split when it has one, "
                                       "else --holdout of the training split; 'none': no selection (default auto)")
    holdout: float = option(0.1, min=0, max=1, max_open=True, metavar="FRACTION",
                            help="without a selection split: share of each class's train images held out (seeded) "
                                 "to choose the best epoch; 0 = no selection")
    select_by: str = option("maxboxacc_v2", choices=SELECT_BY,
                            help="how best.pt is chosen on the selection images: MaxBoxAccV2 of --val-method CAMs, "
                                 "classification top-1, or simply the last epoch")
    val_method: str = option("cam", help="CAM method scored on the selection and test images")
    val_batch_size: int = option(64, min=1, max=MAX_BATCH, flag="--batch-size-eval",
                                 help="images per batch when scoring the selection images")
    cam_step: float = option(0.01, min=MIN_CAM_STEP, max=1, max_open=True, cli=False, note="at most 10,000 thresholds",
                             help="threshold step of the selection scoring")
    test_split: str = option("", metavar="SPLIT", help="after training, evaluate the --eval-checkpoint on this "
                                                       "split into --out/test (default: none)")
    eval_checkpoint: str = option("last", choices=EVAL_CHECKPOINTS,
                                  help="the checkpoint --test-split evaluates: the last epoch (the paper's) or best.pt")
    device: str = option("cpu", help="torch device: cpu, cuda, cuda:N or mps", **DEVICE)
    amp: Optional[str] = option(None, choices=AMP_MODES,
                                help="mixed precision on CUDA: bf16 or fp16 autocast (fp16 with a gradient scaler); "
                                     "'auto' = bf16 where supported, else fp16; ignored on CPU (default off: float32, "
                                     "as the reference)")
    out: str = option("", metavar="DIR", help="output folder (checkpoints, train_log.csv)")
    resume: bool = option(False, help="continue the run in --out from its last.pt (model, optimizer, epoch, RNG); "
                                      "--epochs may be raised to train longer")
    data_workers: int = option(0, min=0, max=MAX_WORKERS, help="DataLoader worker processes for decoding and augmentation")
    seed: int = option(0, min=0, max=MAX_SEED, help="seed of everything: head initialisation, held-out split, shuffling, "
                                      "augmentation")
    dataset_options: Dict[str, object] = option(default_factory=dict, cli=False,
                                                help="--dataset-option KEY=VALUE")
    progress: bool = option(True, cli=False, help="progress bars (CLI: not -q)")


def fill_recipe(cfg: TrainConfig, method=None) -> TrainConfig:
    """``cfg`` with every unset (None) field taken from the training method's own reference
    values (``TrainMethod.recipe``, e.g. TS-CAM's trainer), else from ``cfg.recipe``."""
    check_options(cfg, ["recipe"])
    own = dict(getattr(method, "recipe", None) or {})
    preset = {**RECIPES[cfg.recipe], **own}
    return replace(cfg, **{k: v for k, v in preset.items() if k in RECIPE_FIELDS and getattr(cfg, k) is None})


def resolve(cfg: TrainConfig, method=None) -> TrainConfig:
    """:func:`fill_recipe`, then :func:`check`."""
    cfg = fill_recipe(cfg, method)
    check(cfg)
    return cfg


def check(cfg: TrainConfig) -> None:
    """One-line errors for options out of range (``cfg`` with its recipe filled)."""
    if not cfg.out:
        raise WsolError("training needs an output folder (--out DIR)")
    check_options(cfg)
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


def method_optimizer(bb: Backbone, trainable: Sequence[nn.Parameter], cfg: TrainConfig, method=None):
    """(optimizer, per-epoch scheduler or None): the method's reference trainer's own
    (``TrainMethod.make_optimizer``, e.g. TS-CAM's), else :func:`make_optimizer` with the
    recipe's schedule applied by :func:`set_epoch_lr`."""
    own = method.make_optimizer(bb, trainable, fill_recipe(cfg, method)) if method is not None else None
    return own if own is not None else (make_optimizer(bb, trainable, cfg), None)


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
