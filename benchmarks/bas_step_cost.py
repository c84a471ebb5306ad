#!/usr/bin/env python
"""Seconds per BAS training step on CPU: forward with the erase branch and the loss
(``--wsol-method bas``'s ``loss_terms``), backward, and the reference's SGD step, as
``wsol train`` runs them, on random images at 224 x 224.

    OMP_NUM_THREADS=1 python benchmarks/bas_step_cost.py --backbone bas_mobilenet_v1 \\
        --batch-size 8 --classes 4 --steps 4 --note "..."

Appends one row per run to ``results/bas_step_cost.csv`` (median seconds of the timed steps,
after one untimed warm-up step; forward and backward apart; the load average before and after,
since the machine is shared) and prints it.
"""
from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import time

import pandas as pd
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from wsol.engine.build import device_name  # noqa: E402
from wsol.models.registry import create_backbone  # noqa: E402
from wsol.training import train as tr  # noqa: E402
from wsol.training.methods import create_train_method  # noqa: E402

DEFAULT_CSV = os.path.join(REPO, "results", "bas_step_cost.csv")


def _commit() -> str:
    try:
        return subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def time_steps(backbone: str, weights: str, batch: int, classes: int, steps: int, seed: int = 0):
    """[(forward s, backward s, step s, loss)] for ``steps`` timed steps after one warm-up."""
    torch.manual_seed(seed)
    method = create_train_method("bas")
    bb = create_backbone(backbone, weights, num_classes=classes, new_head=True)
    cfg = tr.resolve_schedule(tr.TrainConfig(wsol_method="bas"), method)
    opt, _ = tr.make_optimizer(bb, list(bb.parameters()), cfg, method)
    bb.train()
    x = torch.randn(batch, 3, 224, 224)
    y = torch.arange(batch) % classes
    out = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        terms = method.loss_terms(bb, x, y)
        t1 = time.perf_counter()
        terms["total"].backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        out.append((t1 - t0, t2 - t1, t3 - t0, float(terms["total"].detach())))
    return out[1:]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="bas_mobilenet_v1")
    ap.add_argument("--weights", default="random")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--note", default="")
    ap.add_argument("--csv", default=DEFAULT_CSV)
    args = ap.parse_args(argv)
    load0 = os.getloadavg()[0]
    rows = time_steps(args.backbone, args.weights, args.batch_size, args.classes, args.steps)
    load1 = os.getloadavg()[0]
    med = lambda i: round(statistics.median(r[i] for r in rows), 3)  # noqa: E731
    row = {"backbone": args.backbone, "weights": args.weights, "batch_size": args.batch_size,
           "classes": args.classes, "steps": args.steps, "s_per_step": med(2), "forward_s": med(0),
           "backward_s": med(1), "losses": " ".join(f"{r[3]:.6f}" for r in rows),
           "load_before": round(load0, 2), "load_after": round(load1, 2),
           "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": device_name(torch.device("cpu")).removeprefix("cpu: "), "threads": torch.get_num_threads(), "torch": torch.__version__,
           "commit": _commit(), "note": args.note}
    old = pd.read_csv(args.csv) if os.path.exists(args.csv) else pd.DataFrame()
    pd.concat([old, pd.DataFrame([row])], ignore_index=True, sort=False).to_csv(args.csv, index=False)
    print(", ".join(f"{k}={v}" for k, v in row.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
