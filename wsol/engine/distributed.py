"""Data-parallel evaluation under torchrun.

``torchrun --nproc_per_node N -m wsol evaluate ...`` (or any script calling
:func:`wsol.engine.run.evaluate` under torchrun) runs one process per device:

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
from typing import List, Optional, Tuple

import pandas as pd
import torch
import torch.distributed as dist

from wsol.errors import WsolError
from wsol.evaluation.sharding import gather_state, shard_bounds
from wsol.evaluation.timing import reduce_timings

log = logging.getLogger(__name__)


def launched_by_torchrun() -> bool:
    """True when torchrun (or any env:// launcher) started this process with WORLD_SIZE > 1."""
    try:
        return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


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


def _run_shard(cfg, dataset, backbone, device: str, rank: int, world: int, stage: Optional[str] = None):
    """Build, run the loop on this rank's shard; -> (built, evaluator, timer, stats). Rank 0
    writes run.json into ``stage`` (the run's staging folder)."""
    from wsol.engine.build import build, loop_options, make_evaluator, make_loader, make_localizer, write_run_config
    from wsol.evaluation.loop import inference_context, inference_on_dataset
    from wsol.evaluation.timing import StageTimer

    b = build(cfg, dataset, backbone, device=device)
    if rank == 0 and stage:
        write_run_config(cfg, b.dataset, b.backbone, folder=stage)
    lo, hi = shard_bounds(len(b.dataset), world, rank)
    evaluator, timer = make_evaluator(b, cfg), StageTimer(b.device)
    with inference_context(b.backbone, cfg.channels_last):
        stats = inference_on_dataset(b.runner, make_loader(b, cfg, lo, hi), evaluator,
                                     make_localizer(b, cfg, evaluator), timer, loop_options(cfg, rank == 0))
    return b, evaluator, timer, stats


def _check_ranks(local_error: Optional[BaseException], world: int) -> None:
    """Every rank learns whether any failed (instead of hanging in a collective)."""
    msg = None
    if local_error is not None:
        e = local_error
        msg = str(e) if isinstance(e, WsolError) else f"{type(e).__name__}: {e}"
    errors: List[Optional[str]] = [None] * world
    dist.all_gather_object(errors, msg)
    if local_error is not None:
        raise local_error
    for r, m in enumerate(errors):
        if m:
            raise WsolError(f"rank {r} failed: {m}")


def evaluate_distributed(cfg, dataset=None, backbone=None):
    """:func:`wsol.engine.run.evaluate` sharded over the torchrun ranks: each rank builds
    the run, scores its shard in the inference loop, and the evaluators' declared states are
    merged; every rank returns the same result and rank 0 writes the CSVs (into a staging
    folder that replaces an earlier run's files only when the run finishes)."""
    from wsol.engine.build import staged_run

    created, device = _init(cfg.device)
    rank, world = dist.get_rank(), dist.get_world_size()
    with staged_run(cfg.out if rank == 0 else None) as stage:
        return _evaluate_ranks(cfg, dataset, backbone, created, device, rank, world, stage)


def _evaluate_ranks(cfg, dataset, backbone, created: bool, device: str, rank: int, world: int,
                    stage: Optional[str]):
    """The body of :func:`evaluate_distributed`; rank 0 writes into ``stage``."""
    from wsol.engine.build import device_name, result_tables, run_meta, wall_row
    from wsol.evaluation.loop import LoopStats
    from wsol.report.csv import write_csv_atomic, write_run

    try:
        try:
            b, evaluator, timer, stats = _run_shard(cfg, dataset, backbone, device, rank, world, stage)
        except Exception as e:  # tell the other ranks instead of leaving them in a collective
            _check_ranks(e, world)
        _check_ranks(None, world)
        gather_state(evaluator, device)
        local = (pd.DataFrame(timer.rows()) if stats.n_images else None, stats.wall if stats.n_images else None,
                 stats.n_nonfinite, stats.size_notes)
        parts: List[tuple] = [None] * world  # type: ignore[list-item]
        dist.all_gather_object(parts, local)
    finally:
        if created:
            dist.destroy_process_group()
    timings, per_rank = reduce_timings([p[0] for p in parts])
    walls = [p[1] for p in parts if p[1] is not None]
    n = len(b.dataset)
    stats = LoopStats(n, sum(p[2] for p in parts), max(walls) if walls else float("nan"),
                      [note for p in parts for note in p[3]])
    timings.loc[len(timings)] = wall_row(stats.wall, n, int(timings.set_index("stage").batches.get("total", 0)),
                                         ranks=world)
    meta = run_meta(cfg, len(b.taus), f"{world} x {device_name(torch.device(device))}")
    res = result_tables(evaluator, timings, stats, meta)
    if rank == 0 and stage:
        write_csv_atomic(per_rank, os.path.join(stage, "timings_per_rank.csv"))
        write_run(stage, res.tables())
    return res
