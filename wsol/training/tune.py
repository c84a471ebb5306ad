"""``wsol tune``: the random hyperparameter search of Choe et al., with Optuna as its engine.

A trial is one ``wsol train`` run (into ``<out>/trials/<number>``) with a configuration drawn
from :mod:`wsol.training.search_space`, scored on the selection split: the
``--select-by`` score (MaxBoxAccV2 by default) of the checkpoint that would be evaluated
(the last epoch, or the best with ``--eval-checkpoint best``). The study lives in an Optuna
storage: an SQLite file ``<out>/study.db`` by default, or any Optuna storage URL, so several
processes (or machines) run trials of one study at once. Draws depend only on
``(seed, trial number, parameter)``, so processes sharing a study never repeat a draw.

A killed process leaves its trial RUNNING; the heartbeat marks it failed after
``grace`` seconds and it is run again with the same configuration. The study stops when
``n_trials`` trials are complete. Every finished trial rewrites ``<out>/trials.csv``.
``final=True`` then retrains the best configuration and evaluates it on ``test_split``
(``<out>/final``), writing ``<out>/summary.csv`` for ``wsol compare``.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import time
import warnings
from dataclasses import dataclass, replace
from typing import Any, Dict, Optional

import numpy as np
import pandas as pd

from wsol.errors import WsolError
from wsol.report.csv import write_csv_atomic
from wsol.training.recipe import TrainConfig, resolve
from wsol.training.search_space import suggest
from wsol.utils.options import check_options, option

log = logging.getLogger(__name__)

TRIALS_CSV = "trials.csv"
STUDY_DB = "study.db"
FINAL = "final"


@dataclass
class TuneConfig:
    """A search: the base training run (``train``; its ``out`` is the study's folder), the
    budget and the study's storage. The search options are declared once
    (:mod:`wsol.utils.options`)."""

    train: TrainConfig
    out: str = ""
    n_trials: int = option(30, min=1, flag="--trials",
                           help="complete trials the study ends with, over all its processes (default 30, the paper's)")
    storage: str = option("", metavar="URL", help="Optuna storage URL shared by the processes of one study "
                                                  "(default: sqlite:///OUT/study.db)")
    study: str = option("", metavar="NAME", help="study name (default wsol-<method>)")
    search_seed: int = option(0, min=0,
                              help="seed of the draws: trial N's configuration depends on it and N only")
    heartbeat: int = option(10, min=1, cli=False, help="seconds between a running trial's heartbeats")
    grace: int = option(30, min=2, metavar="SECONDS",
                        help="a trial without heartbeat this long (its process died) is run again")
    final: bool = option(False, help="then retrain the best configuration and evaluate it on --test-split "
                                     "(OUT/final, OUT/summary.csv)")
    poll: float = option(2.0, min=0, min_open=True, cli=False,
                         help="seconds between looks while other processes finish the budget")


def _optuna():
    try:
        import optuna
    except ImportError:
        raise WsolError("wsol tune needs Optuna (pip install optuna)") from None
    return optuna


def _draw(seed: int, number: int, name: str) -> np.random.Generator:
    """The generator of one draw, from a hash of (seed, trial number, name)."""
    digest = hashlib.sha256(f"{seed}/{number}/{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def make_sampler(seed: int):
    """A random sampler whose draws depend only on (seed, trial number, parameter name)."""
    optuna = _optuna()
    dists = optuna.distributions

    class TrialSeededRandomSampler(optuna.samplers.BaseSampler):
        def infer_relative_search_space(self, study, trial):
            return {}

        def sample_relative(self, study, trial, search_space):
            return {}

        def sample_independent(self, study, trial, name, dist):
            rng = _draw(seed, trial.number, name)
            if isinstance(dist, dists.CategoricalDistribution):
                return dist.choices[int(rng.integers(len(dist.choices)))]
            if isinstance(dist, dists.IntDistribution):
                return int(rng.integers(dist.low, dist.high + 1))
            if dist.log:
                return float(math.exp(rng.uniform(math.log(dist.low), math.log(dist.high))))
            return float(rng.uniform(dist.low, dist.high)) if dist.high > dist.low else float(dist.low)

    return TrialSeededRandomSampler()


def open_study(cfg: TuneConfig):
    """Create or load the study (heartbeat on; stale trials are retried)."""
    optuna = _optuna()
    url = cfg.storage or f"sqlite:///{os.path.abspath(os.path.join(cfg.out, STUDY_DB))}"
    with warnings.catch_warnings():  # the heartbeat is 'experimental'; its retry callback renamed in 4.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        storage = optuna.storages.RDBStorage(
            url, heartbeat_interval=cfg.heartbeat, grace_period=cfg.grace,
            failed_trial_callback=optuna.storages.RetryFailedTrialCallback(max_retry=None))
    name = cfg.study or f"wsol-{cfg.train.wsol_method}"
    return optuna.create_study(study_name=name, storage=storage, direction="maximize",
                               sampler=make_sampler(cfg.search_seed), load_if_exists=True)


def trial_config(cfg: TuneConfig, params: Dict[str, Any], out: str) -> TrainConfig:
    """The training run of a trial with ``params`` (search-space names)."""
    from wsol.training.search_space import space

    base = cfg.train
    fields, opts = {}, dict(base.method_options)
    for p in space(base.wsol_method, base.epochs):
        if p.name in params:
            (fields if p.target == "config" else opts)[p.name] = params[p.name]
    return replace(base, **fields, method_options=opts, out=out, resume=True, test_split="")


def score_of(log_df: pd.DataFrame, cfg: TrainConfig) -> float:
    """The selection score of the checkpoint that would be evaluated: the last epoch's, or
    the best epoch's with ``eval_checkpoint='best'``; a run without scores is an error."""
    col = "val_top1" if cfg.select_by == "top1" else "val_maxboxacc_v2"
    if col not in log_df or log_df[col].isna().all():
        raise WsolError("wsol tune scores trials on a selection split: give --selection-split "
                        "(or --holdout > 0), and --select-by maxboxacc_v2 or top1")
    return float(log_df[col].max() if cfg.eval_checkpoint == "best" else log_df[col].iloc[-1])


def _objective(cfg: TuneConfig):
    from wsol.training.loop import train

    optuna = _optuna()

    def objective(trial) -> float:
        others = [t.state.name for t in trial.study.get_trials(deepcopy=False) if t.number != trial.number]
        if others.count("COMPLETE") + others.count("RUNNING") >= cfg.n_trials:
            raise optuna.TrialPruned("the budget is reached by the trials of other processes")
        params, opts = suggest(trial, cfg.train.wsol_method, cfg.train.epochs)
        out = os.path.join(cfg.out, "trials", f"{trial.number:04d}")
        trial.set_user_attr("out", out)
        tcfg = trial_config(cfg, {**params, **opts}, out)
        try:
            df = train(tcfg)
        except WsolError as e:
            if "training loss is" not in str(e):
                raise
            trial.set_user_attr("diverged", str(e))
            return 0.0  # a diverged configuration localizes nothing: the worst score
        return score_of(df, tcfg)

    return objective


def write_trials(study, out: str) -> pd.DataFrame:
    """``<out>/trials.csv``: one row per trial (number, state, value, params_*, user_attrs_*)."""
    df = study.trials_dataframe()
    write_csv_atomic(df, os.path.join(out, TRIALS_CSV))
    return df


def _counts(study) -> Dict[str, int]:
    states = [t.state.name for t in study.get_trials(deepcopy=False)]
    return {s: states.count(s) for s in ("COMPLETE", "RUNNING", "WAITING", "FAIL")}


def check_selection(cfg: TrainConfig) -> None:
    """A trial needs a score: a selection split (or a hold-out) and a selection rule."""
    from wsol.training.selection import NO_SPLIT, selection_split_name

    none = cfg.selection_split in NO_SPLIT or (not selection_split_name(cfg) and cfg.holdout == 0)
    if none or cfg.select_by == "last":
        raise WsolError("wsol tune scores trials on a selection split: give --selection-split "
                        "(or --holdout > 0), and --select-by maxboxacc_v2 or top1")


def run_search(cfg: TuneConfig):
    """Run trials until the study holds ``n_trials`` complete ones (with any other processes
    sharing it); returns the study."""
    optuna = _optuna()
    cfg = replace(cfg, train=resolve(replace(cfg.train, out=cfg.out)))
    check_selection(cfg.train)
    os.makedirs(cfg.out, exist_ok=True)
    study = open_study(cfg)
    objective = _objective(cfg)
    while True:
        with warnings.catch_warnings():  # 'experimental' since Optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        c = _counts(study)
        if c["COMPLETE"] >= cfg.n_trials:
            break
        if c["WAITING"] or c["COMPLETE"] + c["RUNNING"] < cfg.n_trials:
            study.optimize(objective, n_trials=1, callbacks=[lambda s, t: write_trials(s, cfg.out)])
        else:
            time.sleep(cfg.poll)  # the last trials run elsewhere: wait for them (or their heartbeat)
    write_trials(study, cfg.out)
    log.info("study %s: %d complete trials; best #%d = %.4g %s", study.study_name, _counts(study)["COMPLETE"],
             study.best_trial.number, study.best_value, study.best_params)
    return study


#: wsolevaluation's metadata folder names -> the dataset names of the published table
_WSOLEVAL_NAMES = {"cub": "cub", "ilsvrc": "imagenet", "openimages": "openimages"}
#: dataset adapters that read wsolevaluation metadata folders (a dataset name, not a protocol)
_METADATA_ADAPTERS = frozenset({"wsoleval"})


def dataset_name(cfg: TrainConfig) -> str:
    """The dataset's name for ``wsol compare``: for ``wsoleval`` the metadata folder's
    (``metadata/CUB`` -> cub), else the adapter's."""
    if cfg.dataset in _METADATA_ADAPTERS:
        return _WSOLEVAL_NAMES.get(os.path.basename(os.path.normpath(cfg.root)).lower(), cfg.dataset)
    return cfg.dataset


def run_final(cfg: TuneConfig, study) -> pd.Series:
    """Retrain the best trial's configuration and evaluate it on ``test_split``; writes
    ``<out>/final`` and ``<out>/summary.csv`` (the test row, ``training`` = the method,
    ``tuned`` = the trial) and returns that row."""
    from wsol.training.loop import train

    base = resolve(replace(cfg.train, out=cfg.out))
    if not base.test_split:
        raise WsolError("--final evaluates on a test split: give --test-split")
    best = study.best_trial
    tcfg = replace(trial_config(replace(cfg, train=base), best.params, os.path.join(cfg.out, FINAL)),
                   test_split=base.test_split)
    train(tcfg)
    row = pd.read_csv(os.path.join(tcfg.out, "test", "summary.csv")).iloc[0].copy()
    row["training"] = base.wsol_method
    row["dataset_name"] = dataset_name(base)
    row["run_id"] = f"tuned:{study.study_name}#{best.number}"
    row["tuned_trials"] = _counts(study)["COMPLETE"]
    write_csv_atomic(pd.DataFrame([row]), os.path.join(cfg.out, "summary.csv"))
    return row


def tune(cfg: TuneConfig) -> Dict[str, Any]:
    """The search, then (``final``) the retrained best configuration on test."""
    if not cfg.out:
        raise WsolError("wsol tune needs an output folder (--out DIR)")
    check_options(cfg)
    study = run_search(cfg)
    res: Dict[str, Any] = {"study": study.study_name, "best_trial": study.best_trial.number,
                           "best_value": study.best_value, "best_params": study.best_params}
    if cfg.final:
        res["final"] = run_final(cfg, study).to_dict()
    return res
