"""The hyperparameter search space of ``wsol tune``, with the source of every range.

Two published protocols define it (``docs/training.md`` ("Training like the paper") cites them):

- Choe et al., "Evaluating Weakly Supervised Object Localization Methods Right" (CVPR 2020),
  whose random search draws the learning rate log-uniformly from [1e-5, 1] and each
  method's own hyperparameters uniformly over their whole range ("choe2020");
- Murtaza et al., "A Realistic Protocol for Evaluation of Weakly Supervised Object
  Localization" (WACV 2025), whose table adds weight decay (log-uniform [1e-5, 1]) and the
  decay step (uniform 5-45 epochs of 50 on CUB, 2-9 on ImageNet: here 10%-90% of
  ``--epochs``) ("wacv2025").

Choe et al. list their space in Table 5 (appendix of arXiv 2001.07437); its text could not be
re-read here (only the paper's opening pages were reachable), so the ranges sourced "choe2020"
alone follow the paper as first read, while those the WACV'25 table repeats were checked
against it.

A parameter is drawn per trial; ``target`` says where it goes: a ``TrainConfig`` field
(``config``) or the method's hyperparameter (``method``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

from wsol.errors import WsolError


@dataclass(frozen=True)
class Param:
    """One searched hyperparameter: a float (log-uniform or uniform) or an int range."""

    name: str
    target: str          # 'config' (a TrainConfig field) or 'method' (the method's option)
    kind: str            # 'log' | 'uniform' | 'int'
    low: float
    high: float
    source: str          # 'choe2020' | 'wacv2025'
    note: str = ""


def common_space(epochs: int) -> List[Param]:
    """Learning rate, weight decay and decay step for a run of ``epochs`` epochs."""
    lo, hi = max(1, round(0.1 * epochs)), max(1, round(0.9 * epochs))
    return [Param("lr", "config", "log", 1e-5, 1.0, "choe2020"),
            Param("weight_decay", "config", "log", 1e-5, 1.0, "wacv2025"),
            Param("lr_decay_epochs", "config", "int", lo, hi, "wacv2025",
                  "CUB 5-45 of 50 epochs, scaled to --epochs")]


#: each method's own hyperparameters (names of its --<method>-<option> flags)
METHOD_SPACES: Dict[str, List[Param]] = {
    "cam": [],
    "has": [Param("drop_rate", "method", "uniform", 0.0, 1.0, "choe2020")],
    "acol": [Param("threshold", "method", "uniform", 0.0, 1.0, "choe2020")],
    "adl": [Param("drop_rate", "method", "uniform", 0.0, 1.0, "choe2020"),
            Param("threshold", "method", "uniform", 0.0, 1.0, "choe2020")],
    "cutmix": [Param("prob", "method", "uniform", 0.0, 1.0, "choe2020"),
               Param("beta", "method", "log", 0.5, 50.0, "choe2020", "1 / Uniform(0, 2], capped at 50")],
    # SPG: each (high, low) pair with low <= high: high ~ U[0, 1], then low ~ U[0, high]
    "spg": [Param(f"threshold_{i}{s}", "method", "uniform", 0.0, 1.0, "choe2020", "low drawn below high")
            for i in (1, 2, 3) for s in ("h", "l")],
}


def space(method: str, epochs: int) -> List[Param]:
    """Everything searched for ``method``: the common parameters, then the method's own."""
    if method not in METHOD_SPACES:
        raise WsolError(f"wsol tune has no search space for --wsol-method {method} "
                        f"(it knows {', '.join(METHOD_SPACES)})")
    return common_space(epochs) + METHOD_SPACES[method]


def suggest(trial, method: str, epochs: int) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Draw one configuration with an Optuna ``trial``: (TrainConfig fields, method options)."""
    cfg: Dict[str, Any] = {}
    opts: Dict[str, Any] = {}
    for p in space(method, epochs):
        high = p.high
        if method == "spg" and p.name.endswith("l"):  # the low threshold stays below its high one
            high = opts[p.name[:-1] + "h"]
        if p.kind == "int":
            v: Any = trial.suggest_int(p.name, int(p.low), int(high))
        else:
            v = trial.suggest_float(p.name, p.low, high, log=p.kind == "log")
        (cfg if p.target == "config" else opts)[p.name] = v
    return cfg, opts
