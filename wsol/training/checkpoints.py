"""Checkpoints of ``wsol train`` and resumption.

Every epoch writes ``<out>/last.pt``: the weights (loadable with ``wsol evaluate --weights``)
plus ``train_state`` (config, epoch, optimizer, grad scaler, RNG states, best score and the
log so far), so ``--resume`` continues an interrupted run and ends with the very weights an
uninterrupted run would have. ``best.pt`` holds the epoch chosen by ``--select-by``. The
learning rate is not state: it is a function of the epoch (:mod:`wsol.training.recipe`).
"""
from __future__ import annotations

import logging
import math
import os
import random
from dataclasses import dataclass, field
from typing import List

import numpy as np
import torch

from wsol.errors import WsolError, first_line
from wsol.models.backbone import Backbone
from wsol.models.checkpoint import save_checkpoint
from wsol.training.recipe import TrainConfig, config_dict, fill_recipe

log = logging.getLogger(__name__)

LAST = "last.pt"
BEST = "best.pt"
LOG_FILE = "train_log.csv"
CONFIG_FILE = "train_config.json"
#: Config fields that may differ between a run and its resumption.
RESUMABLE_CHANGES = ("epochs", "resume", "progress", "data_workers", "device", "out", "test_split",
                     "eval_checkpoint", "val_batch_size")


@dataclass
class RunState:
    """Where a run stands: the next epoch (0-based), the best selection score, the log rows."""

    start: int = 0
    best_score: float = -math.inf
    rows: List[dict] = field(default_factory=list)


def rng_states() -> dict:
    """The global RNG states (python, numpy, torch CPU and CUDA) as checkpoint-safe values."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    st = {"python": random.getstate(),
          "numpy": {"kind": kind, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                    "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
          "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_states(st: dict) -> None:
    """Restore what :func:`rng_states` returned."""
    py = st["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = st["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def save_best(bb: Backbone, out: str, record: dict, epoch: int, select_by: str, score: float) -> None:
    """Write ``best.pt`` for (1-based) ``epoch``."""
    save_checkpoint(bb, os.path.join(out, BEST), {**record, "epoch": epoch, "select_by": select_by, "score": score})


def save_last(bb: Backbone, cfg: TrainConfig, record: dict, epoch: int, opt, scaler, state: RunState) -> None:
    """Write ``last.pt`` after (1-based) ``epoch`` with everything resumption needs; the RNG
    states are taken now (after the epoch's selection scoring)."""
    st = {"config": config_dict(cfg), "epoch": epoch, "optimizer": opt.state_dict(),
          "scaler": scaler.state_dict(), "rng": rng_states(), "best_score": state.best_score,
          "log": state.rows}
    save_checkpoint(bb, os.path.join(cfg.out, LAST), {**record, "train_state": st})


def _load(path: str) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WsolError(f"{path}: cannot read the checkpoint to resume from "
                        f"({type(e).__name__}: {first_line(e)})") from None


def _check_same_run(cfg: TrainConfig, old: dict) -> None:
    """One-line error naming the options that differ from the run being resumed."""
    new = config_dict(cfg)
    # keys added since the run was started take their defaults; an old run has no recipe
    defaults = config_dict(fill_recipe(TrainConfig(recipe=old.get("recipe", "wsol"))))
    diff = [k for k in new if k not in RESUMABLE_CHANGES and old.get(k, defaults.get(k)) != new[k]]
    if diff:
        raise WsolError(f"--resume: the run in {cfg.out} was made with other options "
                        f"({', '.join(f'{k}={old.get(k, defaults.get(k))!r}' for k in diff)})")


def resume(cfg: TrainConfig, bb: Backbone, opt, scaler) -> RunState:
    """The state to start from: ``last.pt`` in ``cfg.out`` with ``--resume`` (the options
    must match; model, optimizer, scaler and RNG states restored), else a fresh start."""
    path = os.path.join(cfg.out, LAST)
    if not (cfg.resume and os.path.exists(path)):
        if cfg.resume:
            log.info("--resume: no %s in %s yet; starting from epoch 1", LAST, cfg.out)
        return RunState()
    ck = _load(path)
    st = ck.get("train_state") if isinstance(ck, dict) else None
    if not st:
        raise WsolError(f"{path}: not a `wsol train` checkpoint (no training state)")
    _check_same_run(cfg, st["config"])
    bb.load_state_dict(ck["state_dict"])
    opt.load_state_dict(st["optimizer"])
    for g in opt.param_groups:  # older checkpoints: the base rate was not recorded
        g.setdefault("initial_lr", g["lr"])
    scaler.load_state_dict(st["scaler"])
    set_rng_states(st["rng"])
    log.info("resuming %s after epoch %d", path, int(st["epoch"]))
    return RunState(int(st["epoch"]), float(st["best_score"]), list(st["log"]))
