"""Cost per image of each faithfulness metric next to the forward pass (docs/protocol.md,
"Faithfulness").

A batch of real images (default: the 100 ILSVRC2012 val images next to the checkout, the
first ``--images``) goes once through the backbone (the run's forward, timed as ``forward``)
and its CAM; then each metric alone runs its perturbed forwards on the same batch through
:class:`wsol.evaluation.faithfulness.FaithfulnessEvaluator`, as ``wsol evaluate --faithfulness``
does. ROAD's time includes the noisy linear imputation (a sparse solve per image and
removal fraction, on the CPU).

    python benchmarks/faithfulness_cost.py [--images 8] [--steps 20] [--device cpu]

Writes results/faithfulness_cost_<device>.csv: device, backbone, metric, images,
forwards_per_image, ms_per_image, x_forward (ms per image over the forward's), torch, date,
command, note (the load average at start: the timings are wall clock).
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from wsol.cams.base import create_method  # noqa: E402
from wsol.datasets.base import build_dataset  # noqa: E402
from wsol.evaluation.faithfulness import (FaithfulnessOptions, FaithfulnessEvaluator, class_scorer,  # noqa: E402
                                          normalized_maps)
from wsol.models.registry import create_backbone  # noqa: E402
from wsol.transforms.image import ImageFolderView, test_transform  # noqa: E402

COLUMNS = ["device", "backbone", "metric", "images", "forwards_per_image", "ms_per_image", "x_forward", "torch",
           "date", "command", "note"]


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return "cuda: " + torch.cuda.get_device_name(device)
    model = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), model)
    except OSError:
        pass
    return f"cpu: {model}, {torch.get_num_threads()} threads"


def load_images(root: str, n: int, bb) -> tuple:
    ds = build_dataset("imagenet", root, "val").limit(n)
    view = ImageFolderView(ds.samples, test_transform(bb.mean, bb.std), positions=range(len(ds)))
    items = [view[i] for i in range(len(ds))]
    return torch.stack([it[0] for it in items]), torch.tensor([it[1] for it in items])


def measure(args) -> List[dict]:
    device = torch.device(args.device)
    bb = create_backbone(args.backbone, args.weights).to(device).eval()
    images, labels = load_images(args.root, args.images, bb)
    images, labels = images.to(device), labels.to(device)
    method = create_method(args.method)
    logits_fn = lambda x: bb(x)[1]  # noqa: E731
    with torch.no_grad():
        bb(images)  # warm-up
        t0 = time.perf_counter()
        feats, logits = bb(images)
        t_fwd = time.perf_counter() - t0
    cams = method(bb, images, feats, logits, labels).detach().float().cpu().numpy()
    maps = torch.from_numpy(normalized_maps(cams, *images.shape[-2:])).to(device)
    original = torch.softmax(logits.float(), 1).gather(1, labels.view(-1, 1)).squeeze(1).double().cpu().numpy()
    n = len(images)
    load = os.getloadavg()[0]
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    base = dict(device=device_label(device), backbone=args.backbone, images=n, torch=torch.__version__, date=stamp,
                command="python benchmarks/faithfulness_cost.py " + " ".join(sys.argv[1:]),
                note=f"wall clock; load average {load:.1f} at start")
    fwd_ms = 1000 * t_fwd / n
    rows = [{**base, "metric": "forward", "forwards_per_image": 1, "ms_per_image": round(fwd_ms, 2), "x_forward": 1.0}]
    passes = {"avg_drop": 1, "deletion": args.steps, "insertion": args.steps, "road": 18}
    for metric in ("avg_drop", "deletion", "insertion", "road"):
        scorer = FaithfulnessEvaluator(FaithfulnessOptions((metric,), steps=args.steps))
        t0 = time.perf_counter()
        scorer.perturb(class_scorer(logits_fn, labels), images, maps, original, list(range(n)))
        ms = 1000 * (time.perf_counter() - t0) / n
        rows.append({**base, "metric": metric, "forwards_per_image": passes[metric], "ms_per_image": round(ms, 2),
                     "x_forward": round(ms / fwd_ms, 1)})
        print(f"{metric:10s} {ms:9.1f} ms/image  ({ms / fwd_ms:.1f} x forward)", flush=True)
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default=str(REPO.parent / "shared" / "data" / "imagenet-val-100"))
    p.add_argument("--backbone", default="efficientnet_lite0")
    p.add_argument("--weights", default="pretrained")
    p.add_argument("--method", default="cam")
    p.add_argument("--images", type=int, default=8, help="images in the one timed batch (default 8)")
    p.add_argument("--steps", type=int, default=20, help="deletion/insertion steps (default 20)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="CSV path (default results/faithfulness_cost_<device>.csv)")
    args = p.parse_args(argv)
    rows = measure(args)
    out = args.out or str(REPO / "results" / f"faithfulness_cost_{torch.device(args.device).type}.csv")
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
