#!/usr/bin/env python
"""Cost of the token-attention CAM methods next to plain CAM, in ms per image, on DeiT-S
and the TS-CAM / SCM / SAT DeiT-S models (random weights, random 224x224 inputs, batch 32).

Rows per backbone (timed as ``benchmarks/methods_cost.py`` times, with its helpers):

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
import sys
from typing import Dict, List, Optional

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from methods_cost import device_label, time_batches  # noqa: E402
from wsol.cams.base import create_method  # noqa: E402
from wsol.models.registry import create_backbone  # noqa: E402

COLUMNS = ["device", "backbone", "method", "batch_size", "ms_per_image", "n_batches", "torch", "date", "command",
           "note"]
PLAN = {  # backbone -> methods (plain CAM first)
    "deit_small_patch16_224": ["cam", "gradcam", "cls_attention", "rollout", "tscam", "scm"],
    "deit_tscam_small_patch16_224": ["cam", "tscam", "cls_attention", "rollout"],
    "deit_scm_small_patch16_224": ["cam", "scm"],
    "deit_sat_small_patch16_224": ["cam", "sat"],
}
ATTENTION = {"cls_attention", "rollout", "tscam", "scm", "sat"}


def measure(name: str, methods: List[str], args, device: torch.device) -> List[Dict]:
    torch.manual_seed(0)
    bb = create_backbone(name, "random", device=device).eval()
    g = torch.Generator().manual_seed(0)
    B = args.batch_size
    images = torch.randn(B, 3, 224, 224, generator=g).to(device)
    targets = torch.randint(0, bb.num_classes, (B,), generator=g).to(device)
    rows: List[Dict] = []

    def row(method: str, sec: float, n: int, note: str) -> None:
        rows.append({"backbone": name, "method": method, "batch_size": B, "ms_per_image": f"{1000 * sec / B:.3f}",
                     "n_batches": n, "note": note})
        print(f"{name:30s} {method:18s} {1000 * sec / B:10.3f} ms/image", flush=True)

    passes = {}
    for capture in (False, True):
        bb.record_attention = capture or name != "deit_small_patch16_224"
        with torch.no_grad():
            sec, n = time_batches(lambda: bb(images), device, args.warmup, args.batches)
            passes[capture] = bb(images)
        row("forward+attention" if capture else "forward", sec, n,
            "attention captured" if bb.record_attention else "no attention capture")
    for m in methods:
        method = create_method(m)
        feats, logits = passes[m in ATTENTION]

        def call(method=method, feats=feats, logits=logits):
            with torch.no_grad():
                return method(bb, images, feats, logits, targets)

        # the record must be the pass these features came from (as in the engine's loop)
        bb.record_attention = m in ATTENTION or name != "deit_small_patch16_224"
        with torch.no_grad():
            feats2, logits2 = bb(images)
        sec, n = time_batches(lambda: call(feats=feats2, logits=logits2), device, args.warmup, args.batches,
                              args.min_time)
        row(m, sec, n, f"method only; add {'forward+attention' if m in ATTENTION else 'forward'}")
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--batches", type=int, default=2)
    p.add_argument("--min-time", type=float, default=1.0)
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
        rows += measure(name, PLAN[name], args, device)
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
