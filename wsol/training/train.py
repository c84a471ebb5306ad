"""``wsol train``: fine-tune a backbone with image-level labels only, as Choe et al. train.

The public names of the training package in one place (the work is done by one module per
job): :mod:`wsol.training.recipe` (``TrainConfig``, the recipes, the schedule, the
optimizer, mixed precision), :mod:`wsol.training.loop` (``train``, the epochs and the step),
:mod:`wsol.training.checkpoints` (``last.pt``/``best.pt``, resumption) and
:mod:`wsol.training.selection` (the selection split and its scores). ``docs/training.md`` ("Training like the paper")
describes the recipe and the outputs: ``last.pt``, ``best.pt`` (both loadable with
``wsol evaluate --weights``), ``train_log.csv`` (one row per epoch, with its learning rate)
and ``train_config.json``.
"""
from __future__ import annotations

from wsol.models.training import param_groups, set_trainable
from wsol.training.checkpoints import BEST, CONFIG_FILE, LAST, LOG_FILE, rng_states, set_rng_states
from wsol.training.loop import (build_backbone, epoch_seed, method_architecture, method_record,
                                seed_everything, train, train_epoch, train_step)
from wsol.training import recipe as _recipe
from wsol.training.recipe import (AMP_MODES, EVAL_CHECKPOINTS, LR_SCHEDULES, RECIPES, SELECT_BY, TrainConfig,
                                  amp_dtype, fill_recipe, lr_factor, method_optimizer, resolve, set_epoch_lr)

#: a training method's schedule defaults over the recipe's (the name other modules use)
resolve_schedule = fill_recipe


def make_optimizer(bb, trainable, cfg: TrainConfig, method=None):
    """SGD of the recipe (:func:`wsol.training.recipe.make_optimizer`); with ``method``:
    (optimizer, the method's own per-epoch scheduler or None), see ``method_optimizer``."""
    if method is None:
        return _recipe.make_optimizer(bb, trainable, cfg)
    return method_optimizer(bb, trainable, cfg, method)
from wsol.training.selection import split_holdout

__all__ = ["AMP_MODES", "BEST", "CONFIG_FILE", "EVAL_CHECKPOINTS", "LAST", "LOG_FILE", "LR_SCHEDULES", "RECIPES",
           "SELECT_BY", "TrainConfig", "amp_dtype", "build_backbone", "epoch_seed", "fill_recipe", "lr_factor",
           "make_optimizer", "method_architecture", "method_record", "param_groups", "resolve", "rng_states",
           "seed_everything", "set_epoch_lr", "set_rng_states", "set_trainable", "split_holdout", "train",
           "train_epoch", "train_step"]
