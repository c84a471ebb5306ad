#!/usr/bin/env python
"""Cost of the token-attention CAM methods next to plain CAM, in ms per image, on DeiT-S
and the TS-CAM and SAT DeiT-S models (random weights, random 224x224 inputs, batch 32; SCM's
model is TS-CAM's at test time, so its ``scm`` row is timed on the TS-CAM model).

Rows per backbone, each the median **CPU time** of this process (``time.process_time``, one
torch thread by default) per batch divided by the batch size, so that other jobs on a shared
machine do not inflate it:

- ``forward``: ``backbone(images)`` under ``torch.no_grad()``, attention capture off;
- ``forward+attention``: the same with capture on (``record_attention``), the pass an
  attention method follows from its second batch on (TS-CAM, SCM and SAT models always
  capture: their two rows are the same pass);
- one row per method: its own cost given that pass's features (add the matching forward
  row for the total per image): ``cam`` and the gradient methods follow ``forward``, the
  attention methods ``forward+attention``.

Writes ``results/vit_methods_cost_<device>.csv`` (device, backbone, method, batch_size,
ms_per_image, n_batches, torch, date, command, note).
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import shlex
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from methods_cost import device_label  # noqa: E402
from wsol.cams.base import create_method  # noqa: E402
from wsol.models.registry import create_backbone  # noqa: E402

COLUMNS = ["device", "backbone", "method", "batch_size", "ms_per_image", "n_batches", "torch", "date", "command",
           "note"]
PLAN = {  # backbone -> methods (plain CAM first)
    "deit_small_patch16_224": ["cam", "gradcam", "cls_attention", "rollout", "tscam", "scm"],
    "deit_tscam_small_patch16_224": ["cam", "tscam", "scm", "cls_attention", "rollout"],
    "deit_sat_small_patch16_224": ["cam", "sat"],
}
ATTENTION = {"cls_attention", "rollout", "tscam", "scm", "sat"}


def cpu_seconds(fn: Callable[[], object], warmup: int, batches: int, min_time: float = 0.0) -> Tuple[float, int]:
    """(median CPU seconds of this process per call of ``fn``, calls timed): CPU time, not
    wall time, so that other jobs on a shared machine do not inflate it (with one torch
    thread it is the cost of the call)."""
    for _ in range(warmup):
        fn()
    times: List[float] = []
    while len(times) < batches or (sum(times) < min_time and len(times) < 200):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times), len(times)


def measure(name: str, methods: List[str], args) -> List[Dict]:
    torch.manual_seed(0)
    bb = create_backbone(name, "random").eval()
    g = torch.Generator().manual_seed(0)
    B = args.batch_size
    images = torch.randn(B, 3, 224, 224, generator=g)
    targets = torch.randint(0, bb.num_classes, (B,), generator=g)
    rows: List[Dict] = []

    def row(method: str, sec: float, n: int, note: str) -> None:
        rows.append({"backbone": name, "method": method, "batch_size": B, "ms_per_image": f"{1000 * sec / B:.3f}",
                     "n_batches": n, "note": note})
        print(f"{name:30s} {method:18s} {1000 * sec / B:10.3f} ms/image", flush=True)

    family = name != "deit_small_patch16_224"  # the family models always capture attention
    for capture in ((False, True) if not family else (True,)):
        bb.record_attention = capture
        with torch.no_grad():
            sec, n = cpu_seconds(lambda: bb(images), args.warmup, args.batches)
        row("forward+attention" if capture else "forward", sec, n,
            "attention captured" if capture else "no attention capture")
        # methods timed on this pass's features (its record is the one they read)
        with torch.no_grad():
            feats, logits = bb(images)
        for m in methods:
            if (m in ATTENTION) != capture and not family:
                continue
            method = create_method(m)

            def call(method=method):
                with torch.no_grad():
                    return method(bb, images, feats, logits, targets)

            sec, n = cpu_seconds(call, args.warmup, args.batches, args.min_time)
            row(m, sec, n, f"method only; add {'forward+attention' if capture else 'forward'}")
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--batches", type=int, default=1)
    p.add_argument("--min-time", type=float, default=0.5)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: stable on a shared CPU)")
    p.add_argument("--backbones", nargs="+", default=list(PLAN))
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    label = device_label(device)
    rows = []
    for name in args.backbones:
        rows += measure(name, PLAN[name], args)
    out = args.out or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results",
                                   "vit_methods_cost_cpu.csv")
    cmd = "python benchmarks/vit_methods_cost.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({**r, "device": label, "torch": torch.__version__, "date": dt.date.today().isoformat(),
                        "command": cmd.strip()})
    print(f"wrote {out} ({os.getloadavg()[0]:.1f} load average at the end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
