"""``wsol bench``: forward-only vs end-to-end throughput, per-stage times, one CSV row a run.

Two numbers, same model, same options:

- forward-only images/s, the ceiling: one batch of pre-decoded, pre-resized images already on
  the device, the backbone forward (under the same autocast / channels_last / compile /
  grad mode as the evaluation's forward stage), synchronized; each repeat times
  ceil(n_images / batch) passes; the median over repeats;
- end-to-end images/s: :func:`wsol.engine.run.evaluate` itself (decode, resize, transfer,
  forward, CAM, the exact localization sweep in the ``--workers`` pool, metrics); its
  steady-state rate is the images of the batches after the first over the main loop's time
  for them (StageTimer's ``total`` stage), median over repeats. ``e2e_wall_images_per_s`` is
  all images over the whole run's wall clock (pipeline fill and drain included).

First ``warmup`` forward passes and (unless ``warmup`` is 0) one end-to-end run over two
batches, untimed; then each repeat times (a) then (b), so that both see the same load on a
shared machine (``load_avg`` records the host's 1-minute load average, mean of start and end).

CSV columns (``--out-csv``, default ``<cache>/throughput/<device-slug>.csv``, appended): identity of the run
(device, torch, cuda, backbone, method, options ...), then per-stage milliseconds per image
of the median end-to-end repeat (``data_ms`` ... ``total_ms``: 1000 / the stage's images/s
over the batches after the first; ``data_ms`` is the time the loop waited for a batch plus
its transfer, not the decode cost hidden in loader workers; ``localize_ms`` is worker CPU time
per image, so the pool's capacity is ``workers * 1000 / localize_ms`` images/s), the two rates,
``ratio`` = e2e_images_per_s / forward_images_per_s, and ``projected_50k_s`` = fill/drain
overhead of the run + 50,000 / e2e_images_per_s (the ImageNet val protocol).

Without ``--dataset`` the images are generated: ImageNet-like JPEGs (about 500x375, quality
90, textured backgrounds, 1-2 objects with their boxes, 1000 classes) written once as a
``folder`` dataset in the cache folder and cycled to ``--images``.
"""
from __future__ import annotations

import csv
import datetime as _dt
import logging
import math
import os
import re
import statistics
import time
from dataclasses import dataclass, field, fields, replace
from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd
import torch

from wsol.datasets.imagenet_like import SYNTH_VERSION, make_imagenet_like
from wsol.engine.config import EvalConfig, check_config
from wsol.errors import WsolError
from wsol.utils.options import check_options, option

log = logging.getLogger(__name__)

BENCH_COLUMNS = [
    "device", "host_cpus", "torch_threads", "torch", "cuda", "wsol_version",
    "backbone", "weights", "method", "batch_size", "dtype", "channels_last", "compile", "decode",
    "workers", "data_workers", "sweep", "dataset", "n_images", "unique_images", "repeats",
    "data_ms", "forward_ms", "cam_ms", "localize_ms", "metrics_ms", "total_ms",
    "forward_images_per_s", "e2e_images_per_s", "e2e_wall_images_per_s", "ratio", "projected_50k_s",
    "load_avg", "date",
]
STAGE_COLUMNS = {"data": "data_ms", "forward": "forward_ms", "cam": "cam_ms", "localize": "localize_ms",
                 "metrics": "metrics_ms", "total": "total_ms"}
PROTOCOL_IMAGES = 50_000


#: ``wsol bench`` defaults where they differ from :class:`EvalConfig`'s: a model built without
#: downloads, worker counts split from the CPUs (None: auto, see :func:`resolve_workers`), and
#: generated images (empty ``dataset``/``root``; empty ``split``: see :func:`default_split`).
BENCH_RUN_DEFAULTS: Dict[str, object] = {
    "backbone": "resnet50", "weights": "random", "workers": None, "data_workers": None,
    "dataset": "", "root": "", "split": "",
}


@dataclass
class BenchConfig:
    """Options of one ``wsol bench`` run: the evaluation's own options (``run``, bench defaults;
    ``workers``/``data_workers`` None there means auto) and the measurement's."""

    run: EvalConfig = field(default_factory=lambda: EvalConfig(**BENCH_RUN_DEFAULTS))
    images: Optional[int] = option(None, min=1, result=False,
                                   help="images per run (default: max(256, 8 x batch) generated; with --dataset "
                                        "the whole split)")
    unique_images: int = option(256, min=1, help="distinct generated JPEGs, cycled to --images")
    repeats: int = option(3, min=1, help="timed repeats of each measurement; medians")
    warmup: int = option(3, min=0, help="untimed forward passes first, then (unless 0) an untimed two-batch "
                                        "end-to-end run")
    out_csv: Optional[str] = option(None, help="CSV to append to (default <cache-dir>/throughput/<device-slug>.csv; "
                                               "the repository's measured figures live in results/throughput/)")
    cache_dir: Optional[str] = option(None, help="where generated images go (default $WSOL_CACHE or "
                                                 "~/.cache/wsol)")

    @classmethod
    def create(cls, **options: object) -> "BenchConfig":
        """A config from flat keywords: EvalConfig fields (over :data:`BENCH_RUN_DEFAULTS`) and
        the measurement fields; an unknown name is a TypeError."""
        own = {f.name for f in fields(cls)} - {"run"}
        run = {k: v for k, v in options.items() if k not in own}
        return cls(run=EvalConfig(**{**BENCH_RUN_DEFAULTS, **run}), **{k: v for k, v in options.items() if k in own})


@dataclass
class BenchResult:
    """The CSV row of a run, the stage table of its median repeat, and where it was written."""

    row: Dict[str, object]
    timings: pd.DataFrame
    csv_path: Optional[str] = None


# ---------------------------------------------------------------------- helpers
def device_slug(name: str) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'nvidia-h100-80gb-hbm3'; 'cpu: AMD EPYC' -> 'cpu-amd-epyc'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown"


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def resolve_workers(cfg: BenchConfig, ncpu: Optional[int] = None) -> Tuple[int, int]:
    """(data_workers, workers): the given values, or a split of the CPUs.

    Auto: loader workers = ncpu // 2 (at most 8) for PIL decode, ncpu // 4 (at most 4) for
    GPU decode (they only read bytes); sweep workers = the CPUs left after those and the
    main process (at least 1).
    """
    ncpu = ncpu or available_cpus()
    dw = cfg.run.data_workers
    if dw is None:
        dw = min(8, ncpu // 2) if cfg.run.decode == "cpu" else min(4, ncpu // 4)
        dw = max(dw, 1) if ncpu > 1 else 0
    w = cfg.run.workers
    if w is None:
        w = max(1, ncpu - dw - 1)
    return int(dw), int(w)


def cache_root(cfg: BenchConfig) -> str:
    return cfg.cache_dir or os.environ.get("WSOL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "wsol")


def cycle_samples(samples: list, n: int) -> list:
    """``n`` samples cycling through ``samples``; copies get image ids ``<id>#<k>``."""
    out = []
    for k in range(n):
        s, rep = samples[k % len(samples)], k // len(samples)
        out.append(s if rep == 0 else replace(s, image_id=f"{s.image_id}#{rep}"))
    return out


def default_split(cfg: BenchConfig) -> str:
    """``--split``, else 'test' when the adapter has one, else its first split (imagenet: val)."""
    if cfg.run.split:
        return cfg.run.split
    from wsol.datasets.base import DATASETS

    info = DATASETS.find(cfg.run.dataset)
    return info.default_split if info is not None else "test"


def bench_dataset(cfg: BenchConfig):
    """The split to run: ``--dataset/--root`` (first ``--images``), or generated JPEGs."""
    from wsol.datasets.base import WsolDataset, build_dataset

    run = cfg.run
    if run.dataset or run.root:
        if not (run.dataset and run.root):
            raise WsolError("--dataset and --root go together (or leave both out to use generated images)")
        ds = build_dataset(run.dataset, run.root, default_split(cfg), **run.dataset_options).limit(cfg.images)
        if len(ds) == 0:
            raise WsolError(f"{run.root}: split '{default_split(cfg)}' has no images")
        return ds, 0
    n = cfg.images or math.ceil(max(256, 8 * run.batch_size) / run.batch_size) * run.batch_size  # full batches
    uniq = max(1, min(cfg.unique_images, n))
    folder = os.path.join(cache_root(cfg), "bench", f"jpeg-v{SYNTH_VERSION}-n{uniq}-s{run.seed}")
    log.info("benchmark images: %s", folder)
    make_imagenet_like(folder, uniq, run.seed)
    ds = build_dataset("folder", folder, "test", classes=os.path.join(folder, "classes.txt"))
    return WsolDataset(ds.name, ds.split, ds.root, ds.image_root, cycle_samples(ds.samples, n),
                       ds.class_names), uniq


# ---------------------------------------------------------------------- measurements
def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def measure_forward(fast, images: torch.Tensor, iters: int, warmup: int, repeats: int) -> List[float]:
    """Forward-only images/s of each repeat: ``iters`` synchronized passes over ``images``
    (already on the device) after ``warmup`` passes."""
    dev = images.device
    n = images.shape[0]
    with torch.no_grad(), fast.autocast():  # as the evaluation loop: the trunk never builds a graph
        for _ in range(max(warmup, 0)):
            fast.forward(images)
        _sync(dev)
        rates = []
        for _ in range(repeats):
            _sync(dev)
            t0 = time.perf_counter()
            for _ in range(iters):
                fast.forward(images)
            _sync(dev)
            rates.append(iters * n / (time.perf_counter() - t0))
    return rates


def _load_average() -> float:
    """1-minute load average of the host (NaN where unknown): shared machines make noisy timings."""
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):
        return float("nan")


def _stage_ms(timings: pd.DataFrame) -> Dict[str, float]:
    rates = timings.set_index("stage")["images_per_s"]
    return {col: (1000.0 / float(rates[s]) if s in rates and rates[s] > 0 else float("nan"))
            for s, col in STAGE_COLUMNS.items()}


def _bench_row(cfg: BenchConfig, dev: torch.device, n: int, uniq: int, pools: Tuple[int, int],
               fwd_rates: List[float], runs: list, loads: List[float]) -> Tuple[Dict[str, object], pd.DataFrame]:
    """The CSV row of the measurements (medians over repeats) and the median repeat's timings."""
    from wsol import __version__
    from wsol.engine.run import device_name

    run = cfg.run
    data_workers, workers = pools
    forward_ips = statistics.median(fwd_rates)
    runs.sort(key=lambda r: r[0])
    steady, wall, timings = runs[(len(runs) - 1) // 2]
    e2e_ips = steady
    wall_ips = statistics.median(n / r[1] for r in runs)
    overhead = max(0.0, wall - n / steady) if steady > 0 else float("nan")

    row: Dict[str, object] = {
        "device": device_name(dev), "host_cpus": available_cpus(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "cuda": (torch.version.cuda or "") if dev.type == "cuda" else "",
        "wsol_version": __version__, "backbone": run.backbone, "weights": run.weights, "method": run.method,
        "batch_size": run.batch_size, "dtype": run.dtype, "channels_last": run.channels_last,
        "compile": run.compile, "decode": run.decode, "workers": workers, "data_workers": data_workers,
        "sweep": run.sweep, "dataset": f"{run.dataset}:{default_split(cfg)}" if run.dataset else "generated-jpeg",
        "n_images": n, "unique_images": uniq or n, "repeats": cfg.repeats,
        **_stage_ms(timings),
        "forward_images_per_s": forward_ips, "e2e_images_per_s": e2e_ips, "e2e_wall_images_per_s": wall_ips,
        "ratio": e2e_ips / forward_ips if forward_ips > 0 else float("nan"),
        "projected_50k_s": overhead + PROTOCOL_IMAGES / e2e_ips if e2e_ips > 0 else float("nan"),
        "load_avg": float(np.nanmean(loads)),
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
    }
    return row, timings


def run_bench(cfg: BenchConfig) -> BenchResult:
    """Measure forward-only and end-to-end throughput; append the row to the CSV."""
    from wsol.cams.base import create_method
    from wsol.engine.run import evaluate, resolve_device
    from wsol.evaluation.fastpath import FastPath
    from wsol.engine.heads import backbone_for_dataset
    from wsol.transforms.image import ImageFolderView, test_transform

    run = cfg.run
    check_options(cfg)  # the measurement's options; the run's (workers None = auto) as evaluate's
    check_config(replace(run, workers=0 if run.workers is None else run.workers,
                         data_workers=0 if run.data_workers is None else run.data_workers))
    dev = resolve_device(run.device)
    data_workers, workers = resolve_workers(cfg)
    # the evaluation proper: the run's options, workers resolved, on this device, never distributed
    ecfg = replace(run, dataset=run.dataset or "folder", split=default_split(cfg), device=str(dev),
                   method_options=dict(run.method_options), data_workers=data_workers, workers=workers,
                   out=None, distributed="off")
    fast = FastPath(ecfg, dev)  # refuses unusable options before any work
    create_method(run.method, **run.method_options)  # an unknown method or option fails before any work
    ds, uniq = bench_dataset(cfg)
    n = len(ds)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shape: let cuDNN pick its fastest kernels
    torch.manual_seed(run.seed)
    # a speed measurement: a head that does not fit the data is replaced (with a warning), not refused
    bb = backbone_for_dataset(ds, run.backbone, run.weights, dev, new_head=True)
    for p in bb.parameters():
        p.requires_grad_(False)
    fast.prepare(bb)

    # (a) forward-only input: a pre-decoded batch already on the device
    view = ImageFolderView(cycle_samples(ds.samples, run.batch_size), test_transform(bb.mean, bb.std))
    batch = torch.stack([view[i][0] for i in range(run.batch_size)])
    fmt = torch.channels_last if run.channels_last else torch.contiguous_format
    batch = batch.to(dev).contiguous(memory_format=fmt)
    iters = max(1, math.ceil(n / run.batch_size))
    loads = [_load_average()]
    log.info("warm-up: %d forward passes, one end-to-end run over %d images", cfg.warmup, min(n, 2 * run.batch_size))
    measure_forward(fast, batch, 0, cfg.warmup, 0)
    if cfg.warmup > 0:
        evaluate(replace(ecfg, limit=min(n, 2 * run.batch_size), progress=False), ds, bb)
    # (a) and (b) interleaved, repeat by repeat, so that both see the same machine load
    fwd_rates, runs = [], []
    for r in range(cfg.repeats):
        log.info("repeat %d/%d: forward-only %d x %d images, then end-to-end %d images (data workers %d, "
                 "sweep workers %d)", r + 1, cfg.repeats, iters, run.batch_size, n, data_workers, workers)
        fwd_rates += measure_forward(fast, batch, iters, 0, 1)
        res = evaluate(ecfg, ds, bb)
        t = res.timings.set_index("stage")
        runs.append((float(t.loc["total", "images_per_s"]), float(t.loc["wall", "seconds"]), res.timings))
    loads.append(_load_average())
    del batch
    row, timings = _bench_row(cfg, dev, n, uniq, (data_workers, workers), fwd_rates, runs, loads)
    path = cfg.out_csv or os.path.join(cache_root(cfg), "throughput", f"{device_slug(str(row['device']))}.csv")
    append_rows(path, [row])
    return BenchResult(row, timings, path)


# ---------------------------------------------------------------------- CSV
def _fmt(v: object) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return str(v)


def append_rows(path: str, rows: List[Dict[str, object]]) -> None:
    """Append ``rows`` to ``path`` (created with a header if absent). A file with another
    header is rewritten with the union of the columns, its old rows kept."""
    from wsol.report.csv import write_csv_atomic

    cols = list(BENCH_COLUMNS) + [c for r in rows for c in r if c not in BENCH_COLUMNS]
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        header = None
        if os.path.isfile(path) and os.path.getsize(path) > 0:
            with open(path, newline="") as f:
                header = next(csv.reader(f), None)
        if header is not None and header != cols:
            old = pd.read_csv(path, dtype=str, keep_default_na=False)
            new = pd.DataFrame([{c: _fmt(r.get(c, "")) for c in cols} for r in rows])
            merged = pd.concat([old, new], ignore_index=True).fillna("")
            order = cols + [c for c in merged.columns if c not in cols]
            write_csv_atomic(merged[order], path)
            return
        with open(path, "a", newline="") as f:
            wr = csv.writer(f, lineterminator="\n")
            if header is None:
                wr.writerow(cols)
            for r in rows:
                wr.writerow([_fmt(r.get(c, "")) for c in cols])
    except OSError as e:
        raise WsolError(f"{path}: cannot write ({e.strerror or e})") from None
