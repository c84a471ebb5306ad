"""Notebook API: keyword arguments in, pandas DataFrames out.

>>> import wsol
>>> s = wsol.evaluate(dataset="cub", root="/data/CUB_200_2011", backbone="resnet50", limit=100)
>>> s.attrs["tables"].per_image.head()          # per-image rows, curves, timings too
>>> pd.concat([wsol.evaluate(..., method=m) for m in ("cam", "gradcam")])   # one row each
>>> wsol.run_suite("benchmarks/suites/smoke.yaml", out_dir="runs/smoke")
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
from typing import Any, Mapping

import pandas as pd

from wsol.errors import WsolError
from wsol.report.tables import RunTables


def _check_names(given: Mapping[str, Any], known, what: str) -> None:
    for k in given:
        if k not in known:
            close = difflib.get_close_matches(k, sorted(known), n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise WsolError(f"{what}: unknown keyword '{k}'{hint} (known: {', '.join(sorted(known))})")


def evaluate(**options: Any) -> pd.DataFrame:
    """Run ``wsol evaluate`` with EvalConfig fields as keywords; return the one-row summary.

    ``dataset`` may also be a :class:`~wsol.datasets.base.WsolDataset` already read. The
    other tables are in ``df.attrs["tables"]`` (:class:`RunTables`). Outputs are written
    only when ``out`` is given.
    """
    from wsol.datasets.base import WsolDataset
    from wsol.engine.run import EvalConfig, evaluate as _evaluate

    _check_names(options, [f.name for f in dataclasses.fields(EvalConfig)], "wsol.evaluate")
    ds = options.get("dataset")
    if isinstance(ds, WsolDataset):
        options = {**options, "dataset": ds.name, "root": options.get("root") or ds.root, "split": ds.split}
    else:
        ds = None
    cfg = EvalConfig(**options)
    res = _evaluate(cfg, dataset=ds)
    df = res.summary.copy()
    df.attrs["tables"] = RunTables.from_result(res, cfg)
    return df


def train(**options: Any) -> pd.DataFrame:
    """Run ``wsol train`` with TrainConfig fields as keywords (``wsol_method='acol'``,
    ``method_options={'threshold': 0.7}``, ``model_options={...}``); return the per-epoch log."""
    from wsol.training.train import TrainConfig, train as _train

    _check_names(options, [f.name for f in dataclasses.fields(TrainConfig)], "wsol.train")
    return _train(TrainConfig(**options))


def run_suite(path: Any, **options: Any) -> pd.DataFrame:
    """Run a suite file (see :mod:`wsol.suite`); keywords: out_dir, only, force, dry_run, progress."""
    from wsol.suite import run_suite as _run_suite

    known = [p for p in inspect.signature(_run_suite).parameters if p != "path_or_suite"]
    _check_names(options, known, "wsol.run_suite")
    return _run_suite(path, **options)
