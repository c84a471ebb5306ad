"""``wsol evaluate`` and ``wsol score``: config -> build -> loop -> tables
(docs/architecture.md, Flow).

:func:`evaluate` builds the run's objects from an :class:`EvalConfig`
(:mod:`wsol.engine.build`), runs :func:`wsol.evaluation.loop.inference_on_dataset` over them and
writes the tables; under torchrun it hands over to :mod:`wsol.engine.distributed`, which
does the same on each rank's shard and merges the scorers' declared state.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Optional

import numpy as np
import pandas as pd
from tqdm import tqdm

from wsol.datasets.base import WsolDataset
from wsol.datasets.wsoleval import image_size
from wsol.engine.build import (RUN_OUTPUTS, EvalResult, build, claim_run_dir, device_name, heatmap_writer,
                               interrupted_note, load_split, loop_timings, make_loader, make_localizer,
                               make_scorer, resolve_device, result_tables, run_meta, save_heatmaps,
                               staged_run, write_run_config)
from wsol.engine.config import EvalConfig, check_config
from wsol.evaluation.loop import LoopStats, inference_context, inference_on_dataset
from wsol.evaluation.region_scoring import RegionScorer
from wsol.evaluation.scoring import RunScorer
from wsol.evaluation.timing import StageTimer
from wsol.errors import DataError, RunInterrupted, WsolError
from wsol.localize.maps import MAP_SIZE
from wsol.localize.protocols import get_protocol
from wsol.report.csv import write_run
from wsol.utils.io import confined_path, load_npy
from wsol.utils.outdirs import fresh_dir

log = logging.getLogger(__name__)

__all__ = ["EvalConfig", "EvalResult", "RUN_OUTPUTS", "evaluate", "score", "load_heatmap", "save_heatmaps",
           "device_name", "resolve_device", "write_run_config", "claim_run_dir", "check_config"]


def evaluate(cfg: EvalConfig, dataset: Optional[WsolDataset] = None, backbone=None) -> EvalResult:
    """Run backbone + CAM method over a dataset split and score it (docs/protocol.md).

    ``backbone``: an already built model to use (the bench's repeats); it comes back in the
    mode, requires_grad flags and memory format it had. Under torchrun (WORLD_SIZE > 1) the
    run is data-parallel, see :mod:`wsol.engine.distributed`.
    """
    from wsol.engine.distributed import evaluate_distributed, launched_by_torchrun

    check_config(cfg)
    if cfg.distributed == "auto" and launched_by_torchrun():
        return evaluate_distributed(cfg, dataset, backbone)
    # an earlier run's results stay until this one finishes; a failed run leaves no empty folders
    with staged_run(cfg.out) as stage, fresh_dir(cfg.save_cams):
        b = build(cfg, dataset, backbone)
        if stage:
            write_run_config(cfg, b.dataset, b.backbone, folder=stage)
        scorer, timer = make_scorer(b, cfg), StageTimer(b.device)
        with inference_context(b.backbone, cfg.channels_last):
            b.runner.prepare(b.backbone)
            try:
                stats = inference_on_dataset(b.backbone, make_loader(b, cfg), b.method,
                                             make_localizer(b, cfg, scorer), scorer, timer, runner=b.runner,
                                             on_error=cfg.on_error, exclude_skipped=cfg.exclude_skipped,
                                             save_maps=heatmap_writer(cfg.save_cams), progress=cfg.progress,
                                             desc=f"{cfg.backbone}/{cfg.method}")
            except KeyboardInterrupt:
                raise RunInterrupted(interrupted_note(cfg, len(scorer.rows), len(b.dataset))) from None
        meta = run_meta(cfg, len(b.taus), device_name(b.device))
        res = result_tables(scorer, loop_timings(timer, stats), stats, meta, b.dataset.has_boxes)
        if stage:
            write_run(stage, res.tables())
    return res


def load_heatmap(path: str) -> np.ndarray:
    """Read one exported heatmap and check it is a finite 224x224 array in [0, 1]."""
    if not os.path.isfile(path):
        raise DataError("missing heatmap", path=path)
    m = load_npy(path, "heatmap")
    if m.shape != (MAP_SIZE, MAP_SIZE):
        raise DataError(f"heatmap must be {MAP_SIZE}x{MAP_SIZE}, got {m.shape}", path=path)
    if m.dtype.kind not in "fiu":
        raise DataError(f"heatmap must hold numbers, not {m.dtype}", path=path)
    if not np.isfinite(m).all() or m.min() < 0 or m.max() > 1:
        raise DataError("heatmap values must be finite and in [0, 1]", path=path)
    # kept in the precision it comes in: float64 stays float64 (quantize works in float64)
    return m if m.dtype.kind == "f" else m.astype(np.float64)


def score(cams_dir: str, cfg: EvalConfig, dataset: Optional[WsolDataset] = None) -> EvalResult:
    """Score heatmaps computed anywhere: ``<cams_dir>/<image_id>.npy`` for each image."""
    check_config(cfg)
    with staged_run(cfg.out) as stage:  # an earlier run's results stay until this one finishes
        ds = load_split(cfg, dataset)
        if not os.path.isdir(cams_dir):
            raise DataError("heatmap folder not found", path=cams_dir)
        protocol = get_protocol(cfg.protocol)
        if not protocol.scores_heatmaps:
            raise WsolError("wsol score implements the wsoleval protocol (224x224 heatmaps); "
                            f"protocol {cfg.protocol!r} needs the raw maps of `wsol evaluate`")
        taus = protocol.thresholds(cfg.cam_step)
        scorer = RunScorer(taus, cfg.fixed_tau, has_predictions=False,
                           region=RegionScorer(taus, ds.has_masks, cfg.pointing_tolerance))
        _check_limited_heatmaps(cams_dir, ds, cfg)
        if stage:
            write_run_config(cfg, ds, folder=stage)
        timer = StageTimer("cpu")
        t_start = time.perf_counter()
        try:  # Ctrl-C: say how far it got
            _score_batches(cams_dir, cfg, ds, protocol, taus, scorer, timer)
        except KeyboardInterrupt:
            raise RunInterrupted(interrupted_note(cfg, len(scorer.rows), len(ds))) from None
        stats = LoopStats(len(ds), 0, time.perf_counter() - t_start)
        timer.add("total", stats.wall, len(ds))
        meta = run_meta(cfg, len(taus), "cpu")
        meta.update({"backbone": "", "weights": "",
                     "method": f"heatmaps:{os.path.basename(os.path.normpath(cams_dir))}"})
        res = result_tables(scorer, pd.DataFrame(timer.rows()), stats, meta, ds.has_boxes, model_run=False)
        if stage:
            write_run(stage, res.tables())
    return res


def _check_limited_heatmaps(cams_dir: str, ds: WsolDataset, cfg: EvalConfig) -> None:
    """Heatmaps for exactly the first K images of the split (``wsol evaluate --limit K``
    --save-cams): say to pass ``--limit K`` rather than fail on image K+1, or, with
    ``--on-error skip``, count the images never evaluated as misses."""
    present = [os.path.isfile(os.path.join(cams_dir, s.image_id + ".npy")) for s in ds.samples]
    k = present.index(False) if not all(present) else len(present)
    if 0 < k < len(present) and not any(present[k:]):
        raise DataError(f"heatmaps for only the first {k} of the {len(present)} images of the split are here "
                        f"(as `wsol evaluate --limit {k} --save-cams` writes them): pass --limit {k} to score "
                        "those", path=cams_dir)


def _score_batches(cams_dir: str, cfg: EvalConfig, ds: WsolDataset, protocol, taus, scorer: RunScorer,
                   timer: StageTimer) -> None:
    """Read, localize and score the heatmaps batch by batch (a bad one fails or is skipped)."""
    bs = max(cfg.batch_size, 1)
    for b0 in tqdm(range(0, len(ds), bs), desc="score", unit="batch", disable=not cfg.progress):
        batch = ds.samples[b0:b0 + bs]
        with timer.stage("data", len(batch)):
            maps, gts, good = [], [], []
            for s in batch:
                try:
                    maps.append(load_heatmap(confined_path(cams_dir, s.image_id, ".npy")))
                    # a sample without boxes (OpenImages: masks only) needs no size to scale them
                    gts.append(protocol.gt_boxes(s.boxes, image_size(s) if len(s.boxes) else (1, 1)))
                    good.append(s)
                except DataError as e:
                    if cfg.on_error != "skip":
                        raise DataError(f"{e}  (use --on-error skip to record it and go on)") from None
                    maps, gts = maps[:len(good)], gts[:len(good)]
                    scorer.add_skipped(s.image_id, s.label, str(e), cfg.exclude_skipped)
        with timer.stage("localize", len(batch)):
            locs = protocol.localize_maps(maps, gts, taus, cfg.sweep)
        with timer.stage("metrics", len(batch)):
            scorer.add([s.image_id for s in good], [s.label for s in good], locs, None, samples=good, maps=maps,
                       gts=gts)
