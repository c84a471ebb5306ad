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
from dataclasses import replace
from typing import Optional

import numpy as np
import pandas as pd
from tqdm import tqdm

from wsol.datasets.base import WsolDataset
from wsol.datasets.wsoleval import image_size
from wsol.engine.build import (RUN_OUTPUTS, EvalResult, build, claim_run_dir, device_name, heatmap_writer,
                               interrupted_note, load_predictions, load_split, loop_timings, make_loader,
                               make_localizer,
                               make_scorer, resolve_device, result_tables, run_meta, save_heatmaps,
                               write_run_config)
from wsol.engine.config import EvalConfig, check_config
from wsol.engine.exports import export_outputs
from wsol.engine.policy import choose
from wsol.evaluation.loop import LoopStats, inference_context, inference_on_dataset
from wsol.evaluation.region_scoring import RegionScorer
from wsol.evaluation.scoring import RunScorer
from wsol.evaluation.timing import StageTimer
from wsol.errors import DataError, RunInterrupted, WsolError
from wsol.localize.maps import MAP_SIZE
from wsol.localize.protocols import get_protocol
from wsol.report.csv import write_run
from wsol.utils.io import confined_path, ensure_dir

log = logging.getLogger(__name__)

__all__ = ["EvalConfig", "EvalResult", "RUN_OUTPUTS", "evaluate", "score", "score_boxes", "load_heatmap", "save_heatmaps",
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
    if cfg.out:
        claim_run_dir(cfg.out)
    if cfg.save_cams:
        ensure_dir(cfg.save_cams)  # a file in the way fails now, not after the first batch
    b = build(cfg, dataset, backbone)
    if cfg.out:
        write_run_config(cfg, b.dataset, b.backbone)
    scorer, timer = make_scorer(b, cfg), StageTimer(b.device)
    with inference_context(b.backbone, cfg.channels_last):
        b.runner.prepare(b.backbone)
        try:
            stats = inference_on_dataset(b.backbone, make_loader(b, cfg), b.method, make_localizer(b, cfg, scorer),
                                         scorer, timer, runner=b.runner, on_error=cfg.on_error,
                                         exclude_skipped=cfg.exclude_skipped,
                                         save_maps=heatmap_writer(cfg.save_cams), progress=cfg.progress,
                                         desc=f"{cfg.backbone}/{cfg.method}")
        except KeyboardInterrupt:
            raise RunInterrupted(interrupted_note(cfg, len(scorer.rows), len(b.dataset))) from None
    choice = choose(cfg, scorer, b.dataset, lambda sel: _selection_scorer(cfg, sel, b.backbone))
    meta = run_meta(cfg, len(b.taus), device_name(b.device))
    res = result_tables(scorer, loop_timings(timer, stats), stats, meta, b.dataset.has_boxes, choice=choice)
    export_outputs(cfg, scorer, choice, b.dataset, b.protocol)
    if cfg.out:
        write_run(cfg.out, res.tables())
    return res


def _selection_scorer(cfg: EvalConfig, selection: WsolDataset, backbone) -> RunScorer:
    """The run's model scored on the threshold policy's selection set (nothing written)."""
    sub = replace(cfg, out=None, save_cams=None, save_boxes=None, save_predictions=None, predictions=None,
                  tau_policy="test_best", tau_source=None, tau_holdout=None, limit=None, distributed="off")
    return evaluate(sub, dataset=selection, backbone=backbone).scorer


def load_heatmap(path: str) -> np.ndarray:
    """Read one exported heatmap and check it is a finite 224x224 array in [0, 1]."""
    if not os.path.isfile(path):
        raise DataError("missing heatmap", path=path)
    try:
        m = np.load(path, allow_pickle=False)
    except Exception as e:
        raise DataError(f"unreadable heatmap ({type(e).__name__})", path=path) from None
    if m.shape != (MAP_SIZE, MAP_SIZE):
        raise DataError(f"heatmap must be {MAP_SIZE}x{MAP_SIZE}, got {m.shape}", path=path)
    if m.dtype.kind not in "fiu":
        raise DataError(f"heatmap must hold numbers, not {m.dtype}", path=path)
    if not np.isfinite(m).all() or m.min() < 0 or m.max() > 1:
        raise DataError("heatmap values must be finite and in [0, 1]", path=path)
    # kept in the precision it comes in: float64 stays float64 (quantize works in float64)
    return m if m.dtype.kind == "f" else m.astype(np.float64)


def _heatmap_batches(ds: WsolDataset, cams_dir: str, protocol, taus: np.ndarray, cfg: EvalConfig,
                     scorer: RunScorer, timer: StageTimer, desc: str = "score") -> None:
    """Every image of ``ds``: read ``<cams_dir>/<image_id>.npy``, localize, add to ``scorer``."""
    bs = max(cfg.batch_size, 1)
    for b0 in tqdm(range(0, len(ds), bs), desc=desc, unit="batch", disable=not cfg.progress):
        batch = ds.samples[b0:b0 + bs]
        with timer.stage("data", len(batch)):
            maps, gts, good = [], [], []
            for s in batch:
                try:
                    maps.append(load_heatmap(confined_path(cams_dir, s.image_id, ".npy")))
                    gts.append(protocol.gt_boxes(s.boxes, image_size(s)))
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


def _score_protocol(cfg: EvalConfig):
    protocol = get_protocol(cfg.protocol)
    if not protocol.scores_heatmaps:
        raise WsolError("wsol score implements the wsoleval protocol (224x224 heatmaps); "
                        f"protocol {cfg.protocol!r} needs the raw maps of `wsol evaluate`")
    return protocol


def score(cams_dir: str, cfg: EvalConfig, dataset: Optional[WsolDataset] = None) -> EvalResult:
    """Score heatmaps computed anywhere: ``<cams_dir>/<image_id>.npy`` for each image (class
    predictions from ``cfg.predictions`` when given; τ by ``cfg.tau_policy``)."""
    check_config(cfg)
    if cfg.out:
        claim_run_dir(cfg.out)
    ds = load_split(cfg, dataset)
    if not os.path.isdir(cams_dir):
        raise DataError("heatmap folder not found", path=cams_dir)
    protocol = _score_protocol(cfg)
    taus = protocol.thresholds(cfg.cam_step)
    predictions = load_predictions(cfg, ds)
    scorer = RunScorer(taus, cfg.fixed_tau, has_predictions=predictions is not None,
                       region=RegionScorer(taus, ds.has_masks, cfg.pointing_tolerance), predictions=predictions)
    timer = StageTimer("cpu")
    t_start = time.perf_counter()
    if cfg.out:  # run.json first, an earlier run's results removed (as evaluate does)
        write_run_config(cfg, ds)
    try:  # Ctrl-C: say how far it got
        _heatmap_batches(ds, cams_dir, protocol, taus, cfg, scorer, timer)

        def selection(sel: WsolDataset) -> RunScorer:
            sel_scorer = RunScorer(taus, cfg.fixed_tau, has_predictions=False)
            _heatmap_batches(sel, cams_dir, protocol, taus, cfg, sel_scorer, StageTimer("cpu"), desc="selection")
            return sel_scorer

        choice = choose(cfg, scorer, ds, selection)
    except KeyboardInterrupt:
        raise RunInterrupted(interrupted_note(cfg, len(scorer.rows), len(ds))) from None
    stats = LoopStats(len(ds), 0, time.perf_counter() - t_start)
    timer.add("total", stats.wall, len(ds))
    meta = run_meta(cfg, len(taus), "cpu")
    meta.update({"backbone": "", "weights": "", "method": f"heatmaps:{os.path.basename(os.path.normpath(cams_dir))}"})
    res = result_tables(scorer, pd.DataFrame(timer.rows()), stats, meta, ds.has_boxes, model_run=False,
                        choice=choice)
    if cfg.out:
        write_run(cfg.out, res.tables())
    return res


BOX_FREE_COLUMNS = ("maxboxacc", "maxboxacc_v2", "maxboxacc_iou30", "maxboxacc_iou50", "maxboxacc_iou70", "tau_iou30",
                    "tau_iou50", "tau_iou70", "fixed_tau", "gt_known_loc_fixed", "top1_loc_fixed", "top5_loc_fixed",
                    "fingerprint_v2")


def score_boxes(boxes_path: str, cfg: EvalConfig, dataset: Optional[WsolDataset] = None) -> EvalResult:
    """Score boxes computed anywhere (``image_id,x0,y0,x1,y1[,score]``, original pixels) with
    class predictions from ``cfg.predictions`` when given (docs/protocol.md, Bring your own
    outputs). There is no τ: the MaxBoxAcc and fixed-τ columns are NaN; IoU, GT-known and
    Top-1/Top-5 Loc (with classes) are those of the given boxes. An image without a box
    counts as a miss (``n_missing_boxes``)."""
    from wsol.evaluation.box_scoring import NO_TAU, localize_given
    from wsol.evaluation.given_outputs import read_boxes
    from wsol.metrics.threshold_policy import GIVEN_BOXES, ThresholdChoice

    check_config(cfg)
    if cfg.tau_policy != "test_best":
        raise WsolError(f"tau_policy {cfg.tau_policy!r} chooses a threshold for maps; given boxes have none")
    if cfg.out:
        claim_run_dir(cfg.out)
    ds = load_split(cfg, dataset)
    protocol = get_protocol(cfg.protocol)
    given = read_boxes(boxes_path, [s.image_id for s in ds.samples])
    predictions = load_predictions(cfg, ds)
    scorer = RunScorer(NO_TAU, cfg.fixed_tau, has_predictions=predictions is not None,
                       box_dtype=protocol.box_dtype, predictions=predictions)
    if cfg.out:
        write_run_config(cfg, ds, given_boxes=True)
    t_start, n_missing = time.perf_counter(), 0
    for s in ds.samples:
        boxes = given.select(s.image_id, cfg.box_rule)
        n_missing += boxes is None
        size = image_size(s)
        loc = localize_given(boxes, protocol.gt_boxes(s.boxes, size), size, protocol)
        scorer.add([s.image_id], [s.label], [loc], None, status=["ok" if boxes is not None else "no_box"])
    if n_missing:
        log.warning("%s: %d of %d images have no box (scored as misses, n_missing_boxes)", boxes_path, n_missing,
                    len(ds))
    if given.n_unknown:
        log.warning("%s: %d row(s) name images outside the split (not scored)", boxes_path, given.n_unknown)
    stats = LoopStats(len(ds), 0, time.perf_counter() - t_start)
    meta = run_meta(cfg, 0, "cpu")
    meta.update({"backbone": "", "weights": "", "method": f"boxes:{os.path.basename(boxes_path)}",
                 "cam_step": float("nan"), "n_missing_boxes": n_missing,
                 "n_unknown_rows": given.n_unknown + (predictions.n_unknown if predictions else 0)})
    choice = ThresholdChoice(GIVEN_BOXES, 0, float("nan"), os.path.abspath(boxes_path), 0)
    timings = pd.DataFrame([{"stage": "total", "seconds": stats.wall, "images": len(ds)}])
    res = result_tables(scorer, timings, stats, meta, ds.has_boxes, model_run=False, choice=choice)
    for c in BOX_FREE_COLUMNS:
        res.summary[c] = float("nan") if c != "fingerprint_v2" else ""
    res.summary["n_unknown_rows"] = meta["n_unknown_rows"]
    res.summary["n_missing_boxes"] = n_missing
    if cfg.out:
        write_run(cfg.out, res.tables())
    return res
