"""Data-parallel evaluation under torchrun.

``torchrun --nproc_per_node N -m wsol evaluate ...`` (or any script calling
:func:`wsol.engine.evaluate.evaluate` under torchrun) runs one process per device:

- the process group is ``nccl`` on CUDA (rank r uses ``cuda:LOCAL_RANK`` when ``--device
  cuda`` names no index) and ``gloo`` on CPU;
- rank r scores the contiguous shard ``samples[r*n//W : (r+1)*n//W]``: every image is scored
  exactly once (no DistributedSampler padding duplicates); ranks beyond the images idle;
- every rank builds the model after ``torch.manual_seed(cfg.seed)``, so random weights
  agree across ranks;
- the BoxAccEvaluator states (hit counts, reduced by sum) are all-reduced; the per-image
  rows and the small per-image IoU/box arrays are all-gathered (``all_gather_object``), and
  every rank rebuilds the same tables, rows in the dataset's order; rank 0 alone writes
  run.json and the CSVs. The numbers equal a single-process run's (random CAM baselines
  aside: their RNG streams differ per rank).

Timings (timings.csv, one row per stage, summed over ranks): ``seconds``, ``images``,
``batches`` and ``warmup_batches`` are sums over ranks, ``images_per_s`` is the sum of the
ranks' rates (they run in parallel, so this is the job's rate for that stage),
``median_batch_ms`` is the median of the ranks' medians. The ``wall`` row is the slowest
rank's wall clock, and its ``images_per_s`` (also summary.csv's) is all images over it.
Each rank's own rows are in ``timings_per_rank.csv`` (column ``rank``).
"""
from __future__ import annotations

import logging
import os
from dataclasses import replace
from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist

from wsol.errors import DataError, WsolError

log = logging.getLogger(__name__)


def launched_by_torchrun() -> bool:
    """True when torchrun (or any env:// launcher) started this process with WORLD_SIZE > 1."""
    try:
        return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def shard_bounds(n: int, world_size: int, rank: int) -> Tuple[int, int]:
    """[start, stop) of rank's contiguous shard: sizes differ by at most one, union is 0..n."""
    return rank * n // world_size, (rank + 1) * n // world_size


def _init(device: str) -> Tuple[bool, str]:
    """Initialize the default process group if needed -> (created here, device to use)."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise WsolError("--device cuda asked for, but torch sees no CUDA device (use --device cpu)")
        if dev.index is None:
            dev = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(dev)
    created = False
    if not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        kw = {"device_id": dev} if dev.type == "cuda" else {}
        dist.init_process_group(backend=backend, init_method="env://", **kw)
        created = True
    return created, str(dev)


def _scorer_payload(scorer) -> dict:
    """What rank 0 needs from a shard's RunScorer to rebuild per_image.csv."""
    from wsol.localize.boxes import MODES

    return {"rows": scorer.rows, "iou": {m: scorer._iou[m] for m in MODES}, "box": scorer._box,
            "n_skipped": scorer.n_skipped, "exclude_skipped": scorer.exclude_skipped}


def merge_order(parts: List[dict], order: Dict[str, int]) -> List[Tuple[int, int, int]]:
    """(dataset position, rank, row) of every shard's per-image row, in dataset order."""
    entries = []
    for r, p in enumerate(parts):
        for j, row in enumerate(p["rows"]):
            entries.append((order.get(row["image_id"], len(order)), r, j))
    entries.sort()
    return entries


def _merge_scorer(parts: List[dict], order: Dict[str, int], state: Dict[str, torch.Tensor], taus: np.ndarray,
                  fixed_tau: float, box_dtype):
    """One RunScorer holding every shard's rows in dataset order and the reduced state."""
    from wsol.engine.scoring import RunScorer
    from wsol.localize.boxes import MODES

    sc = RunScorer(taus, fixed_tau, has_predictions=True, box_dtype=box_dtype)
    entries = merge_order(parts, order)
    for _, r, j in entries:
        p = parts[r]
        sc.rows.append(p["rows"][j])
        for m in MODES:
            sc._iou[m].append(p["iou"][m][j])
        sc._box.append(p["box"][j])
    sc.n_skipped = sum(p["n_skipped"] for p in parts)
    sc.exclude_skipped = any(p["exclude_skipped"] for p in parts)
    sc.evaluator.state = {k: v.clone() for k, v in state.items()}
    return sc


def reduce_timings(per_rank: List[pd.DataFrame]) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """(timings summed over ranks as documented above, all ranks' rows with a ``rank`` column)."""
    frames = [df.assign(rank=r) for r, df in enumerate(per_rank) if df is not None and len(df)]
    if not frames:
        return pd.DataFrame(), pd.DataFrame()
    allr = pd.concat(frames, ignore_index=True)
    rows = []
    for stage, g in allr.groupby("stage", sort=False):
        if stage == "wall":
            continue
        rows.append({"stage": stage, "seconds": float(g.seconds.sum()), "images": int(g.images.sum()),
                     "images_per_s": float(g.images_per_s.sum()),
                     "median_batch_ms": float(np.median(g.median_batch_ms)),
                     "batches": int(g.batches.sum()), "warmup_batches": int(g.warmup_batches.sum())})
    out = pd.DataFrame(rows)
    out["ranks"] = len(per_rank)
    return out, allr


def evaluate_distributed(cfg, dataset=None, backbone=None):
    """:func:`wsol.engine.evaluate.evaluate` sharded over the torchrun ranks; every rank
    returns the same merged EvalResult and rank 0 writes the CSVs."""
    from wsol.datasets.base import WsolDataset, build_dataset
    from wsol.engine.evaluate import (ORIGINAL_RESOLUTION, EvalResult, _run_meta, device_name, evaluate,
                                      protocol_thresholds,
                                      write_run_config)
    from wsol.engine.scoring import summary_frame
    from wsol.report.csv import write_csv_atomic, write_run

    created, device = _init(cfg.device)
    rank, world = dist.get_rank(), dist.get_world_size()
    try:
        ds = dataset or build_dataset(cfg.dataset, cfg.root, cfg.split, **cfg.dataset_options)
        ds = ds.limit(cfg.limit)
        if len(ds) == 0:
            raise DataError(f"split '{cfg.split}' has no images", path=ds.root)
        taus = protocol_thresholds(cfg)
        lo, hi = shard_bounds(len(ds), world, rank)
        # class names fixed to the full split's, so every shard builds the same head
        names = ds.class_names or [str(i) for i in range(ds.num_classes)]
        shard = WsolDataset(ds.name, ds.split, ds.root, ds.image_root, ds.samples[lo:hi], names, ds.issues)
        sub_cfg = replace(cfg, distributed="off", limit=None, out=None, device=device,
                          progress=cfg.progress and rank == 0)
        payload: dict = {"error": None}
        try:
            if rank == 0 and cfg.out:
                write_run_config(cfg, ds)
            if len(shard):
                res = evaluate(sub_cfg, shard, backbone)
                payload.update(scorer=_scorer_payload(res.scorer), timings=res.timings,
                               n_nonfinite=int(res.summary["n_nonfinite"].iloc[0]),
                               n_size_mismatch=int(res.summary["n_size_mismatch"].iloc[0]),
                               region=res.region.payload() if res.region is not None else None)
                state = res.scorer.evaluator.state
            else:
                from wsol.engine.scoring import RunScorer

                payload.update(scorer=_scorer_payload(RunScorer(taus, cfg.fixed_tau)), timings=None, n_nonfinite=0,
                               n_size_mismatch=0, region=None)
                state = RunScorer(taus, cfg.fixed_tau).evaluator.state
        except Exception as e:  # tell the other ranks instead of leaving them in a collective
            payload = {"error": f"{type(e).__name__}: {e}" if not isinstance(e, WsolError) else str(e)}
            local_error: Optional[BaseException] = e
        else:
            local_error = None
        parts: List[dict] = [None] * world  # type: ignore[list-item]
        dist.all_gather_object(parts, payload)
        errors = [(r, p["error"]) for r, p in enumerate(parts) if p["error"]]
        if errors:
            if local_error is not None:
                raise local_error
            r, msg = errors[0]
            raise WsolError(f"rank {r} failed: {msg}")
        reduced = {}
        for k, v in state.items():
            t = v.to(device) if device.startswith("cuda") else v.clone()
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
            reduced[k] = t.cpu()
    finally:
        if created:
            dist.destroy_process_group()

    order = {s.image_id: i for i, s in enumerate(ds.samples)}
    scorer = _merge_scorer([p["scorer"] for p in parts], order, reduced, taus, cfg.fixed_tau,
                           np.int32 if cfg.protocol in ORIGINAL_RESOLUTION else np.uint8)
    timings, per_rank = reduce_timings([p["timings"] for p in parts])
    walls = [float(p["timings"].set_index("stage").loc["wall", "seconds"]) for p in parts if p["timings"] is not None]
    wall = max(walls) if walls else float("nan")
    numbers = scorer.summary()
    numbers["images_per_s"] = len(ds) / wall if wall > 0 else float("nan")
    numbers["n_nonfinite"] = sum(p["n_nonfinite"] for p in parts)
    numbers["n_size_mismatch"] = sum(p["n_size_mismatch"] for p in parts)
    timings.loc[len(timings)] = {"stage": "wall", "seconds": wall, "images": len(ds),
                                 "images_per_s": numbers["images_per_s"], "median_batch_ms": float("nan"),
                                 "batches": int(timings.set_index("stage").batches.get("total", 0)),
                                 "warmup_batches": 0, "ranks": world}
    per_image, curves = scorer.per_image(), scorer.curves()
    if cfg.protocol == "wsoleval":
        from wsol.engine.region_scoring import RegionScorer, attach

        region = RegionScorer.from_parts(taus, ds.has_masks, cfg.pointing_tolerance,
                                         [p.get("region") for p in parts],
                                         merge_order([p["scorer"] for p in parts], order))
        numbers, per_image, curves = attach(numbers, per_image, curves, region)
    else:
        from wsol.engine.region_scoring import blank_region_metrics

        blank_region_metrics(numbers)
    if not ds.has_boxes:
        from wsol.engine.region_scoring import blank_box_metrics

        blank_box_metrics(numbers)
    meta = _run_meta(cfg, len(taus), f"{world} x {device_name(torch.device(device))}")
    res = EvalResult(summary_frame(numbers, meta), per_image, curves, timings, scorer=scorer)
    if rank == 0 and cfg.out:
        write_csv_atomic(per_rank, os.path.join(cfg.out, "timings_per_rank.csv"))
        write_run(cfg.out, res.tables())
    return res
