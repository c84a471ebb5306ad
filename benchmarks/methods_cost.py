#!/usr/bin/env python
"""Cost of each CAM method, in ms per image, on ResNet50 and EfficientNet-Lite0.

Random weights, random 224x224 inputs, batch 32 (default). Rows:

- ``forward``: ``backbone(images)`` under ``torch.no_grad()``: what every method follows
  in ``wsol evaluate`` (the gradient methods included);
- ``forward+grad``: the same pass with autograd on, for comparison only: what a gradient
  method would cost if the whole network kept its graph (wsol does not do that);
- one row per method: the method's own cost given feats and logits, called as the engine
  calls it (under ``torch.no_grad()``). A gradient method's row includes re-running the head
  (``forward_logits``) on a leaf copy of the feature maps with autograd on, the backward to
  the maps and the combination: the gradient never goes below the feature maps, so this is
  the method's whole extra cost. Add the ``forward`` row for the total per image.
- ``scorecam`` runs one forward pass per non-constant channel: on ``--scorecam-images``
  images (default 1), timing the masked passes of the first ``--scorecam-channels``
  channels (default 128; 0 = all) in batches of ``--scorecam-batch`` (default 128) and
  scaling linearly to all non-constant channels (the ``note`` column says so).

Each row: ``--warmup`` untimed batches, then ``--batches`` timed ones (a method's row keeps
timing batches until ``--min-time`` seconds are spent; ``n_batches`` says how many), and the
median batch time divided by the batch size. Random weights are
re-initialised with He init of the convs before BatchNorm (``--init he``, default): with
the libraries' default init, random activations decay into float denormals, which slow
CPU kernels by up to 20x and would not happen with trained weights.

Writes ``results/methods_cost_<device>.csv`` with columns device, backbone, method,
batch_size, ms_per_image, n_batches, torch, date, command, source, note.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import logging
import os
import platform
import shlex
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from wsol.cams.base import create_method, list_methods  # noqa: E402
from wsol.models.registry import create_backbone  # noqa: E402
from wsol.models.torchvision_models import he_init_bias_free_convs  # noqa: E402

log = logging.getLogger("methods_cost")

COLUMNS = ["device", "backbone", "method", "batch_size", "ms_per_image", "n_batches", "torch", "date",
           "command", "source", "note"]
DEFAULT_BACKBONES = ["resnet50", "efficientnet_lite0"]


def device_label(device: torch.device) -> str:
    """'cpu: <model>, N threads' or 'cuda: <GPU name>'."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    model = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"cpu: {model}, {torch.get_num_threads()} threads"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_batches(fn: Callable[[], object], device: torch.device, warmup: int, batches: int,
                 min_time: float = 0.0) -> Tuple[float, int]:
    """(median seconds per call of ``fn``, calls timed): ``warmup`` untimed calls, then
    ``batches`` timed ones, more while the timed total is under ``min_time`` seconds (cheap
    methods get enough repetitions to rise above the timer's and the scheduler's noise)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times: List[float] = []
    while len(times) < batches or (sum(times) < min_time and len(times) < 1000):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), len(times)


def measure_backbone(name: str, methods: List[str], args, device: torch.device) -> List[Dict]:
    """Rows for one backbone (empty when it cannot be built)."""
    try:
        bb = create_backbone(name, "random", device=device)
    except Exception as e:  # e.g. efficientnet_lite0 not registered yet
        log.warning("skipping backbone %s: create_backbone(%r, 'random') failed: %s", name, name, e)
        return []
    if args.init == "he":
        he_init_bias_free_convs(bb)
    bb.eval()
    log.info("%s: source %s, feature layer %s, cam_exact %s", name, bb.info.source, bb.info.feature_layer,
             bb.info.cam_exact)
    g = torch.Generator().manual_seed(0)
    B = args.batch_size
    images = torch.randn(B, 3, 224, 224, generator=g).to(device)
    targets = torch.randint(0, bb.num_classes, (B,), generator=g).to(device)
    rows: List[Dict] = []

    def row(method: str, sec_per_batch: float, n_img: int, n_batches: int, note: str) -> None:
        ms = 1000.0 * sec_per_batch / n_img
        rows.append({"backbone": name, "method": method, "batch_size": n_img, "ms_per_image": f"{ms:.3f}",
                     "n_batches": n_batches, "source": bb.info.source, "note": note})
        log.info("%-18s %-14s batch %3d  %10.3f ms/image", name, method, n_img, ms)

    with torch.no_grad():
        if args.methods_only:
            feats, logits = bb(images)
        else:
            sec, n = time_batches(lambda: bb(images), device, args.warmup, args.batches)
            feats, logits = bb(images)
            row("forward", sec, B, n, "backbone(images) under no_grad")
    if not args.methods_only:
        with torch.enable_grad():
            sec, n = time_batches(lambda: bb(images), device, args.warmup, args.batches)
        row("forward+grad", sec, B, n, "backbone(images) with autograd on (graph kept, no backward); comparison "
                                       "only: wsol's gradient methods follow the no_grad forward")

    for m in methods:
        opts = {"method_batch": args.scorecam_batch} if m == "scorecam" else {}
        if m == "pc1" and not bb.info.cam_exact:
            opts = {"weighted": False}  # its head does not weight these maps
        method = create_method(m, **opts)
        if m == "cam" and not bb.info.cam_exact and bb.class_maps(feats[:1], targets[:1]) is None:
            log.info("%s: cam not exact, skipped", name)
            continue
        if m == "scorecam":
            rows_sc = measure_scorecam(bb, method, images, feats, logits, targets, args, device)
            for sec, n_img, note in rows_sc:
                row(m, sec, n_img, 1, note)
            continue
        def call(method=method):
            with torch.no_grad():  # as the engine: gradient methods differentiate the head themselves
                return method(bb, images, feats, logits, targets)
        if method.needs_grad:
            note = "method only (head re-run on a leaf copy of the maps + backward to the maps + combination); add forward"
        else:
            note = "method only; add forward"
        sec, n = time_batches(call, device, args.warmup, args.batches, args.min_time)
        row(m, sec, B, n, note)
    return rows


def measure_scorecam(bb, method, images, feats, logits, targets, args, device):
    """[(seconds for n images, n images, note)] for Score-CAM, possibly extrapolated."""
    n = max(1, min(args.scorecam_images, images.shape[0]))
    x, f, lg, t = images[:n], feats[:n], logits[:n], targets[:n]
    K = f.shape[1]
    flat = f.flatten(2)
    live = flat.amax(2) > flat.amin(2)  # [n, K] channels that get a masked pass
    c = K if args.scorecam_channels <= 0 else min(args.scorecam_channels, K)
    n_live, n_live_sub = int(live.sum()), int(live[:, :c].sum())
    with torch.no_grad():
        sec, _ = time_batches(lambda: method(bb, x, f[:, :c], lg, t), device, 0, 1)
    scale = n_live / max(n_live_sub, 1)
    if c < K:
        note = (f"extrapolated x{scale:.2f} from {n_live_sub} of {n_live} masked passes (channels 0..{c - 1} of {K}, "
                f"{n} image(s)), method_batch {method.method_batch}; add forward")
    else:
        note = f"{n_live} masked passes ({n} image(s), {K} channels), method_batch {method.method_batch}; add forward"
    return [(sec * scale, n, note)]


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--backbones", nargs="+", default=DEFAULT_BACKBONES, help="backbone names (default: %(default)s)")
    p.add_argument("--methods", nargs="+", default=None, help="CAM methods (default: all registered)")
    p.add_argument("--methods-only", action="store_true",
                   help="time the methods only (one untimed forward gives their inputs; no forward rows)")
    p.add_argument("--batch-size", type=int, default=32, help="images per batch (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=1, help="untimed batches per row (default: %(default)s)")
    p.add_argument("--batches", type=int, default=2, help="timed batches per row (default: %(default)s)")
    p.add_argument("--min-time", type=float, default=1.0,
                   help="time a method's batches until this many seconds are spent (at least --batches; default: %(default)s)")
    p.add_argument("--scorecam-batch", type=int, default=128, help="Score-CAM method_batch (default: %(default)s)")
    p.add_argument("--scorecam-images", type=int, default=1, help="images Score-CAM is timed on (default: %(default)s)")
    p.add_argument("--scorecam-channels", type=int, default=128,
                   help="time the masked passes of this many channels and scale to all; 0 = all (default: %(default)s)")
    p.add_argument("--init", choices=["he", "default"], default="he",
                   help="random-weight init: He init of convs before BN (no float denormals) or the library's (default: %(default)s)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device (default: %(default)s)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--out", default=None, help="CSV path (default: results/methods_cost_<cpu|cuda>.csv)")
    p.add_argument("--append", action="store_true", help="append rows to --out instead of replacing it")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    methods = args.methods or [m.name for m in list_methods()]
    out = args.out or os.path.join("results", f"methods_cost_{device.type}.csv")
    label = device_label(device)
    load = ""
    if device.type == "cpu" and hasattr(os, "getloadavg"):
        load = f"; load average {os.getloadavg()[0]:.1f} at start"
    log.info("device %s, torch %s, methods %s%s", label, torch.__version__, ", ".join(methods), load)

    date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    command = "python " + shlex.join(["benchmarks/methods_cost.py"] + sys.argv[1:] if argv is None else
                                     ["benchmarks/methods_cost.py"] + list(argv))
    rows: List[Dict] = []
    t0 = time.perf_counter()
    for name in args.backbones:
        for r in measure_backbone(name, methods, args, device):
            r.update(device=label, torch=torch.__version__, date=date, command=command)
            r["note"] += load
            rows.append(r)
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    append = args.append and os.path.isfile(out) and os.path.getsize(out) > 0
    with open(out, "a" if append else "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        if not append:
            w.writeheader()
        w.writerows(rows)
    log.info("wrote %d rows to %s in %.0f s", len(rows), out, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
