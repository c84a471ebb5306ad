"""Each WSOL training method vs the centre baseline on the synthetic set, at the demo's budget.

For every method (cam, has, acol, spg, adl, cutmix, bas) this runs what a user runs:

    wsol train --dataset synthetic --root DATA --backbone efficientnet_lite0 --wsol-method M \\
        --train-layers last:3 --epochs 2 --batch-size 16 --lr 0.01 --lr-decay-epochs 2 \\
        --holdout 0 --select-by last --recipe wsol --out OUT/M
    wsol evaluate --dataset synthetic --root DATA --split test --backbone <trained name> \\
        --weights OUT/M/best.pt --out OUT/M/test

(the schedule is ``wsol demo``'s, read from :class:`wsol.apps.demo.DemoConfig`; the
method hyperparameters are the reference defaults), plus ``center_gaussian`` once.
ACoL/SPG/ADL/BAS train the generic variants ``efficientnet_lite0+acol|spg|adl|bas`` (BAS
with its own optimizer and its reference lr, :data:`REFERENCE_LR`: SGD with Nesterov at
0.001 on the trunk, 0.01 / 0.02 on its heads' weights / biases, weight decay 5e-4; its
``bas`` map is evaluated next to ``cam``). Appends one row
per method and map to ``results/train_methods_synthetic.csv`` (with date, machine, threads,
load average and seconds) and prints a markdown table.

    python benchmarks/train_methods_synthetic.py --out /tmp/tms [--methods cam,acol] [--device cpu]

The later families' own architectures (``--methods tscam,sat,bas_random``: TS-CAM and SAT
DeiTs, the reference ``bas_mobilenet_v1``) have no offline ImageNet weights for their trunks,
so they train from random weights on a smaller synthetic set (:data:`LATER_SET`, the centre
baseline evaluated again on it) with their reference recipe except the epochs and batch
size (:data:`LATER`), and are evaluated with ``cam`` and the family's own map:

    wsol train --dataset synthetic --root DATA --dataset-option n_classes=4 ... \
        --backbone deit_tscam_tiny_patch16_224 --weights random --wsol-method tscam \
        --epochs 2 --batch-size 8 --holdout 0 --select-by last --out OUT/tscam
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path
from typing import Optional

import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from wsol.datasets.base import build_dataset  # noqa: E402
from wsol.apps.demo import DemoConfig  # noqa: E402
from wsol.engine.build import device_name  # noqa: E402
from wsol.engine.run import EvalConfig, evaluate  # noqa: E402
from wsol.training.train import BEST, TrainConfig, method_architecture, train  # noqa: E402
from wsol.training.methods import create_train_method, list_train_methods  # noqa: E402

DEFAULT_CSV = REPO / "results" / "train_methods_synthetic.csv"
COLUMNS = ("method", "backbone", "top1_cls", "gt_known_loc", "maxboxacc", "maxboxacc_v2",
           "maxboxacc_iou30", "maxboxacc_iou50", "maxboxacc_iou70")
#: the smaller synthetic set of the later families (CPU budget: their trunks train from scratch)
LATER_SET = {"n_classes": 4, "n_train_per_class": 16, "n_test_per_class": 8}
#: run name -> (training method, architecture, epochs, batch size, CAM methods evaluated) of
#: the later families on random weights; lr, weight decay, optimizer and loss are the
#: method's reference recipe
LATER = {"tscam": ("tscam", "deit_tscam_tiny_patch16_224", 2, 8, ("cam", "tscam")),
         "sat": ("sat", "deit_sat_tiny_patch16_224", 2, 8, ("cam", "sat")),
         "bas_random": ("bas", "bas_mobilenet_v1", 1, 8, ("cam",))}
#: CAM methods evaluated after the demo-budget training, besides ``cam``
OWN_MAPS = {"bas": ("bas",)}
#: methods trained at their reference trainer's own lr instead of the demo's 0.01: BAS's
#: optimizer multiplies the lr by 10 / 20 on its heads' weights / biases with Nesterov
#: momentum, so the demo's 0.01 puts its two 1024-wide conv heads at 0.1 / 0.2 and the
#: classifier diverges at the second step and never recovers (top-1 at chance; the
#: diagnosis is in results/train_methods_synthetic.md); its reference lr 0.001 (heads 0.01 / 0.02) is used
REFERENCE_LR = ("bas",)


def _evaluate(data: str, arch: str, weights: str, cam_method: str, out: str, device: str, seed: int,
              dataset_options: dict) -> dict:
    ecfg = EvalConfig(dataset="synthetic", root=data, split="test", backbone=arch, weights=weights,
                      method=cam_method, device=device, out=out, progress=False, seed=seed,
                      dataset_options=dict(dataset_options))
    s = evaluate(ecfg).summary.iloc[0].to_dict()
    return {c: s.get(c) for c in COLUMNS}


def run_later(name: str, out_root: str, device: str, seed: int, stamp: dict) -> list:
    """Train a later family (random weights, :data:`LATER_SET`) and evaluate its CAMs; rows."""
    method, arch, epochs, batch, cam_methods = LATER[name]
    data = os.path.join(out_root, "synthetic_small")
    out = os.path.join(out_root, name)
    t0 = time.perf_counter()
    train(TrainConfig(dataset="synthetic", root=data, split="train", backbone=arch, weights="random",
                      wsol_method=method, epochs=epochs, batch_size=batch, holdout=0.0, select_by="last",
                      device=device, out=out, resume=True, seed=seed, progress=False,
                      dataset_options=dict(LATER_SET)))
    t1 = time.perf_counter()
    # the epochs' own seconds (a resumed run's wall time would miss the earlier epochs)
    train_s = float(pd.read_csv(os.path.join(out, "train_log.csv")).train_seconds.sum()) or (t1 - t0)
    rows = []
    for cm in cam_methods + ("center_gaussian",):
        row = _evaluate(data, arch, os.path.join(out, BEST), cm, os.path.join(out, f"test-{cm}"), device, seed,
                        LATER_SET)
        row.update(method=method if cm != "center_gaussian" else "center_gaussian", backbone=arch, cam_method=cm,
                   dataset="synthetic " + " ".join(f"{k}={v}" for k, v in LATER_SET.items()),
                   weights="random", epochs=epochs, batch_size=batch,
                   train_seconds=round(train_s, 1) if cm != "center_gaussian" else 0.0, **stamp)
        rows.append(row)
        print(f"{name} / {cm}: MaxBoxAccV2 {row['maxboxacc_v2']:.1f}", flush=True)
    base = rows[-1]["maxboxacc_v2"]
    for r in rows:
        r["beats_center"] = r["method"] != "center_gaussian" and r["maxboxacc_v2"] > base
    return rows


def append_rows(rows: list, path: str) -> pd.DataFrame:
    """Add ``rows`` to the CSV at ``path`` (columns united with the rows already there)."""
    new = pd.DataFrame(rows)
    if os.path.exists(path):
        new = pd.concat([pd.read_csv(path), new], ignore_index=True, sort=False)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    new.to_csv(path, index=False)
    return new


def _load() -> float:
    return round(os.getloadavg()[0], 1)


def run_demo_budget(name: str, out_root: str, data: str, test, device: str, seed: int, stamp: dict,
                    with_center: bool, method_options: Optional[dict] = None) -> list:
    """Train ``name`` at ``wsol demo``'s budget on the offline pretrained trunk and evaluate
    ``cam`` (and the method's own map, :data:`OWN_MAPS`; ``center_gaussian`` too if
    ``with_center``) on the test images; rows (the centre's last). ``method_options``: the
    method's hyperparameters other than the reference defaults (a diagnostic run; its
    folder is ``NAME-KEY=VALUE...``)."""
    demo = DemoConfig()
    opts = dict(method_options or {})
    arch, _ = method_architecture(create_train_method(name, opts), demo.backbone)
    out = os.path.join(out_root, "-".join([name] + [f"{k}={v}" for k, v in sorted(opts.items())]))
    load0, t0 = _load(), time.perf_counter()
    train(TrainConfig(dataset="synthetic", root=data, split="train", backbone=demo.backbone,
                      weights="pretrained", wsol_method=name, recipe="wsol", epochs=demo.epochs,
                      lr=None if name in REFERENCE_LR else demo.lr,
                      lr_decay_epochs=demo.lr_decay_epochs, batch_size=demo.batch_size,
                      train_layers=demo.train_layers, holdout=demo.holdout, select_by=demo.select_by,
                      device=device, out=out, resume=True, seed=seed, progress=False, method_options=opts))
    t1, load1 = time.perf_counter(), _load()
    rows = []
    for cm in ("cam",) + OWN_MAPS.get(name, ()) + (("center_gaussian",) if with_center else ()):
        ecfg = EvalConfig(dataset="synthetic", root=data, split="test", backbone=arch,
                          weights=os.path.join(out, BEST), method=cm, device=device,
                          out=os.path.join(out, f"test-{cm}"), progress=False, seed=seed)
        s = evaluate(ecfg, dataset=test).summary.iloc[0].to_dict()
        row = {c: s.get(c) for c in COLUMNS}
        row.update(method=name if cm != "center_gaussian" else "center_gaussian", backbone=arch, cam_method=cm,
                   train_seconds=round(t1 - t0, 1) if cm != "center_gaussian" else 0.0,
                   load=f"{load0}-{load1}", method_options=json.dumps(opts) if opts else "", **stamp)
        rows.append(row)
        print(f"{name} / {cm}: MaxBoxAccV2 {row['maxboxacc_v2']:.1f} (train {t1 - t0:.0f} s)", flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="tms_runs", help="work folder (data, checkpoints, runs)")
    ap.add_argument("--methods", default=",".join(m.name for m in list_train_methods() if m.name not in LATER))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--csv", default=str(DEFAULT_CSV))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--note", default="", help="the rows' note column")
    ap.add_argument("--method-option", action="append", default=[], metavar="KEY=VALUE",
                    help="a hyperparameter of the demo-budget methods other than its reference default "
                         "(diagnostic runs, e.g. beta=0 for bas)")
    args = ap.parse_args(argv)

    data = os.path.join(args.out, "synthetic")
    names = args.methods.split(",")
    at_demo = [m for m in names if m not in LATER]
    test = build_dataset("synthetic", data, "test") if at_demo else None
    stamp = dict(date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                 machine=device_name(torch.device("cpu")).removeprefix("cpu: ") if args.device == "cpu" else args.device,
                 threads=torch.get_num_threads(), torch=torch.__version__, note=args.note)
    later_rows, rows = [], []
    for name in [m for m in names if m in LATER]:
        later_rows += run_later(name, args.out, args.device, args.seed, stamp)
    for i, name in enumerate(at_demo):
        opts = dict(kv.split("=", 1) for kv in args.method_option)
        rows += run_demo_budget(name, args.out, data, test, args.device, args.seed, stamp, with_center=i == 0,
                                method_options=opts)
    table = pd.DataFrame(rows)
    if len(table):
        base = table[table.method == "center_gaussian"].maxboxacc_v2.iloc[0]
        table["beats_center"] = (table.method != "center_gaussian") & (table.maxboxacc_v2 > base)
    table = pd.concat([table, pd.DataFrame(later_rows)], ignore_index=True, sort=False)
    append_rows(table.to_dict("records"), args.csv)
    cols = ["method", "backbone", "cam_method", "top1_cls", "gt_known_loc", "maxboxacc_v2", "beats_center",
            "train_seconds"]
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in table[cols].itertuples(index=False):
        print("| " + " | ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in r) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
