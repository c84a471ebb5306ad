"""``wsol demo``: the whole benchmark on a laptop CPU in minutes.

1. Generate the synthetic CUB-layout set (cached: regenerated only when its stamp differs).
2. Fine-tune the offline pretrained EfficientNet-Lite0 on its train split with image labels
   only (:func:`wsol.training.train.train`, a short schedule on the last stages).
3. Evaluate ``cam`` and the ``center_gaussian`` baseline on the test split, write each
   run's CSVs under ``OUT/<method>/`` and a suite-style ``OUT/summary.csv``, and the HTML
   reports when :mod:`wsol.report.html` is installed.

The schedule in :class:`DemoConfig` was tuned by measurement on 2 CPU cores
(``results/demo.md``).
"""
from __future__ import annotations

import importlib
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import pandas as pd

from wsol.errors import UnknownNameError, WsolError
from wsol.engine.config import DEVICE
from wsol.utils.options import check_options, option
from wsol.utils.outdirs import claim_output_dir

log = logging.getLogger(__name__)

TABLE_COLUMNS = ("method", "top1_cls", "gt_known_loc", "maxboxacc", "maxboxacc_v2", "pxap")


@dataclass
class DemoConfig:
    """The demo's data, schedule and outputs (defaults: the measured schedule)."""

    out: str = option("wsol_demo", metavar="DIR", help="output folder")
    data: Optional[str] = option(None, metavar="DIR", help="where the synthetic set is generated and cached "
                                                           "(default DIR/wsol_data/synthetic)")
    quick: bool = option(False, help="a tiny set and schedule, for smoke tests (seconds; the numbers mean nothing)")
    device: str = option("cpu", help="torch device: cpu, cuda, cuda:N or mps", **DEVICE)
    seed: int = option(0, min=0, help="seed of the training run")
    progress: bool = True
    backbone: str = "efficientnet_lite0"
    methods: Tuple[str, ...] = ("cam", "center_gaussian")
    # data (options of the synthetic generator; its defaults are 8 x (40 + 15))
    synthetic: Dict[str, object] = field(default_factory=dict)
    # schedule: classifier + blocks.5, blocks.6, conv_head (last:3), 2 epochs of batch 16 at lr 0.01
    # (0.1 for the new classifier), no decay within them; the last epoch is kept (no
    # held-out images: all 320 train images train). See results/demo.md for the measurements.
    epochs: int = 2
    lr: float = 0.01
    lr_decay_epochs: int = 2
    batch_size: int = 16
    train_layers: str = "last:3"
    holdout: float = 0.0
    select_by: str = "last"

    def resolved(self) -> "DemoConfig":
        """The config with the --quick overrides applied."""
        if not self.quick:
            return self
        from dataclasses import replace

        return replace(self, synthetic=dict(n_classes=3, n_train_per_class=4, n_test_per_class=2),
                       epochs=1, lr_decay_epochs=1, batch_size=6, train_layers="head", holdout=0.0,
                       select_by="last")


@dataclass
class DemoResult:
    """The printed table, the suite-style summary, the training log, the wall time and the
    seconds of each phase (data, train, evaluate:<method>, report)."""

    table: pd.DataFrame
    summary: pd.DataFrame
    train_log: pd.DataFrame
    seconds: float
    phases: Dict[str, float] = field(default_factory=dict)


def format_table(table: pd.DataFrame) -> str:
    """The demo table as fixed-width text (percentages with one decimal)."""
    return table.to_string(index=False, float_format=lambda v: f"{v:.1f}")


def _data_dir(cfg: DemoConfig) -> str:
    if cfg.data:
        return cfg.data
    return os.path.join(cfg.out, "wsol_data", "synthetic-quick" if cfg.quick else "synthetic")


def _write_reports(out: str, run_dirs: List[str], dataset) -> None:
    try:
        html = importlib.import_module("wsol.report.html")
    except ImportError as e:  # the module, or what it draws with, is not installed
        log.info("no HTML report (%s); the CSVs are in %s", e, out)
        return
    for d in run_dirs:
        log.info("report: %s", html.write_report(d, dataset=dataset))
    log.info("report: %s", html.write_suite_report(out))


def _train(cfg: DemoConfig, data: str, opts: dict) -> tuple:
    """Fine-tune on the synthetic train split (resumed when already done): (folder, log)."""
    from wsol.training.train import TrainConfig, train

    train_dir = os.path.join(cfg.out, "train-quick" if cfg.quick else "train")
    tcfg = TrainConfig(dataset="synthetic", root=data, split="train", dataset_options=dict(opts), recipe="wsol",
                       backbone=cfg.backbone, weights="pretrained", epochs=cfg.epochs, lr=cfg.lr,
                       lr_decay_epochs=cfg.lr_decay_epochs, batch_size=cfg.batch_size,
                       train_layers=cfg.train_layers, holdout=cfg.holdout, select_by=cfg.select_by,
                       device=cfg.device, out=train_dir, resume=True, seed=cfg.seed, progress=cfg.progress)
    try:
        train_log = train(tcfg)
    except WsolError as e:
        if "--resume" in str(e):
            raise WsolError(f"{train_dir} holds a training run with another schedule; "
                            f"remove it or choose another --out") from None
        raise
    return train_dir, train_log


def run_demo(cfg: DemoConfig) -> DemoResult:
    """Generate, fine-tune, evaluate and tabulate (see the module docstring)."""
    check_options(cfg)
    from wsol.datasets.base import build_dataset
    from wsol.engine.run import EvalConfig, evaluate
    from wsol.training.train import BEST
    from wsol.report.csv import write_csv_atomic

    cfg = cfg.resolved()
    claim_output_dir(cfg.out, "demo", ["summary.csv"])
    t0 = time.perf_counter()
    phases: Dict[str, float] = {}
    data = _data_dir(cfg)
    opts = dict(cfg.synthetic)
    test = build_dataset("synthetic", data, "test", **dict(opts))  # generates the set when needed
    phases["data"] = time.perf_counter() - t0
    log.info("synthetic set in %s: %d test images, %d classes", data, len(test), test.num_classes)

    t1 = time.perf_counter()
    train_dir, train_log = _train(cfg, data, opts)
    phases["train"] = time.perf_counter() - t1
    weights = os.path.join(train_dir, BEST)

    rows, table_rows, run_dirs = [], [], []
    for method in cfg.methods:
        run_dir = os.path.join(cfg.out, method)
        ecfg = EvalConfig(dataset="synthetic", root=data, split="test", backbone=cfg.backbone,
                          weights=weights, method=method, device=cfg.device, out=run_dir,
                          save_cams=os.path.join(run_dir, "cams"), dataset_options=dict(opts),
                          progress=cfg.progress, seed=cfg.seed)
        t1 = time.perf_counter()
        try:
            res = evaluate(ecfg, dataset=test)
        except UnknownNameError as e:
            log.warning("skipping %s: %s (is the CAM method installed?)", method, e)
            continue
        phases[f"evaluate:{method}"] = time.perf_counter() - t1
        s = res.summary.iloc[0].to_dict()
        rows.append({"run_id": method, "status": "ok", "reason": "", **s})
        table_rows.append({c: s.get(c, method) for c in TABLE_COLUMNS})
        run_dirs.append(run_dir)
    if not rows:
        raise WsolError("no method could be evaluated")
    summary = pd.DataFrame(rows)
    write_csv_atomic(summary, os.path.join(cfg.out, "summary.csv"))
    t1 = time.perf_counter()
    _write_reports(cfg.out, run_dirs, test)
    phases["report"] = time.perf_counter() - t1
    seconds = time.perf_counter() - t0
    log.info("demo: %.0f s (%s)", seconds, ", ".join(f"{k} {v:.0f} s" for k, v in phases.items()))
    table = pd.DataFrame(table_rows, columns=list(TABLE_COLUMNS))
    return DemoResult(table, summary, train_log, seconds, phases)
