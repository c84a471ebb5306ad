"""``wsol evaluate`` and ``wsol score``: config -> build -> loop -> tables
(docs/architecture.md, Flow).

:func:`evaluate` builds the run's objects from an :class:`EvalConfig`
(:mod:`wsol.engine.build`), runs :func:`wsol.evaluation.loop.inference_on_dataset` over them and
writes the tables; under torchrun it hands over to :mod:`wsol.engine.distributed`, which
does the same on each rank's shard and merges the evaluators' declared state.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from typing import Optional

import numpy as np
import pandas as pd

from wsol.datasets.base import WsolDataset
from wsol.datasets.wsoleval import image_size
from wsol.engine.build import (RUN_OUTPUTS, EvalResult, build, claim_run_dir, device_name, interrupted_note,
                               load_predictions, load_split, loop_options, loop_timings, make_evaluator,
                               make_loader, make_localizer, resolve_device, result_tables, run_meta,
                               save_heatmaps, staged_run, write_run_config)
from wsol.engine.config import EvalConfig, check_config
from wsol.engine.exports import export_outputs
from wsol.engine.policy import choose
from wsol.evaluation.box_evaluator import BoxEvaluator
from wsol.evaluation.evaluator import DatasetEvaluators
from wsol.evaluation.loop import Localizer, LoopOptions, LoopStats, inference_context, inference_on_dataset
from wsol.evaluation.records import ScoredBatch
from wsol.evaluation.region_scoring import MaskEvaluator, PointingEvaluator
from wsol.evaluation.run_evaluators import run_evaluators
from wsol.evaluation.runners import HeatmapRunner, heatmap_loader, load_heatmap
from wsol.evaluation.timing import StageTimer
from wsol.errors import DataError, RunInterrupted, WsolError
from wsol.localize.protocols import get_protocol
from wsol.report.csv import write_run
from wsol.utils.outdirs import fresh_dir

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
    # an earlier run's results stay until this one finishes; a failed run leaves no empty folders
    with staged_run(cfg.out) as stage, fresh_dir(cfg.save_cams):
        b = build(cfg, dataset, backbone)
        if stage:
            write_run_config(cfg, b.dataset, b.backbone, folder=stage)
        evaluator, timer = make_evaluator(b, cfg), StageTimer(b.device)
        with inference_context(b.backbone, cfg.channels_last):
            try:
                stats = inference_on_dataset(b.runner, make_loader(b, cfg), evaluator,
                                             make_localizer(b, cfg, evaluator), timer, loop_options(cfg))
            except KeyboardInterrupt:
                raise RunInterrupted(interrupted_note(cfg, len(evaluator["boxes"].rows), len(b.dataset))) from None
        choice = choose(cfg, evaluator["boxes"], b.dataset, lambda sel: _selection_boxes(cfg, sel, b.backbone))
        meta = run_meta(cfg, len(b.taus), device_name(b.device))
        res = result_tables(evaluator, loop_timings(timer, stats), stats, meta, choice=choice)
        export_outputs(cfg, evaluator["boxes"], choice, b.dataset, b.protocol)
        if stage:
            write_run(stage, res.tables())
    return res


def _selection_boxes(cfg: EvalConfig, selection: WsolDataset, backbone) -> BoxEvaluator:
    """The run's model scored on the threshold policy's selection set (nothing written)."""
    sub = replace(cfg, out=None, save_cams=None, save_boxes=None, save_predictions=None, predictions=None,
                  tau_policy="test_best", tau_source=None, tau_holdout=None, limit=None, distributed="off")
    return evaluate(sub, dataset=selection, backbone=backbone).boxes


def _score_protocol(cfg: EvalConfig):
    protocol = get_protocol(cfg.protocol)
    if not protocol.scores_heatmaps:
        raise WsolError("wsol score implements the wsoleval protocol (224x224 heatmaps); "
                        f"protocol {cfg.protocol!r} needs the raw maps of `wsol evaluate`")
    return protocol


def _score_heatmaps(samples, cams_dir: str, cfg: EvalConfig, protocol, evaluator, timer: StageTimer,
                    desc: str = "score") -> LoopStats:
    """The heatmaps of ``samples`` through the inference loop into ``evaluator``."""
    localizer = Localizer(protocol, protocol.thresholds(cfg.cam_step), cfg.sweep, keep_maps=evaluator.uses_maps)
    opts = LoopOptions(on_error=cfg.on_error, exclude_skipped=cfg.exclude_skipped, progress=cfg.progress, desc=desc)
    return inference_on_dataset(HeatmapRunner(), heatmap_loader(samples, cams_dir, cfg.batch_size), evaluator,
                                localizer, timer, opts)


def score(cams_dir: str, cfg: EvalConfig, dataset: Optional[WsolDataset] = None) -> EvalResult:
    """Score heatmaps computed anywhere: ``<cams_dir>/<image_id>.npy`` for each image (class
    predictions from ``cfg.predictions`` when given; τ by ``cfg.tau_policy``), through the same
    loop and evaluators as ``evaluate`` (the heatmap files are the runner)."""
    check_config(cfg)
    with staged_run(cfg.out) as stage:  # an earlier run's results stay until this one finishes
        ds = load_split(cfg, dataset)
        if not os.path.isdir(cams_dir):
            raise DataError("heatmap folder not found", path=cams_dir)
        protocol = _score_protocol(cfg)
        taus = protocol.thresholds(cfg.cam_step)
        predictions = load_predictions(cfg, ds)
        evaluator = run_evaluators(taus, cfg.fixed_tau, has_predictions=predictions is not None,
                                   predictions=predictions, has_boxes=ds.has_boxes, has_masks=ds.has_masks,
                                   pointing_tolerance=cfg.pointing_tolerance)
        _check_limited_heatmaps(cams_dir, ds, cfg)
        timer = StageTimer("cpu")
        if stage:
            write_run_config(cfg, ds, folder=stage)
        try:  # Ctrl-C: say how far it got
            stats = _score_heatmaps(ds.samples, cams_dir, cfg, protocol, evaluator, timer)

            def selection(sel: WsolDataset) -> BoxEvaluator:
                sel_eval = run_evaluators(taus, cfg.fixed_tau, has_predictions=False, region=False)
                _score_heatmaps(sel.samples, cams_dir, cfg, protocol, sel_eval, StageTimer("cpu"), desc="selection")
                return sel_eval["boxes"]

            choice = choose(cfg, evaluator["boxes"], ds, selection)
        except KeyboardInterrupt:
            raise RunInterrupted(interrupted_note(cfg, len(evaluator["boxes"].rows), len(ds))) from None
        meta = run_meta(cfg, len(taus), "cpu")
        meta.update({"backbone": "", "weights": "",
                     "method": f"heatmaps:{os.path.basename(os.path.normpath(cams_dir))}"})
        res = result_tables(evaluator, pd.DataFrame(timer.rows()), stats, meta, model_run=False, choice=choice)
        if stage:
            write_run(stage, res.tables())
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
    boxes = BoxEvaluator(NO_TAU, cfg.fixed_tau, has_predictions=predictions is not None,
                         box_dtype=protocol.box_dtype, predictions=predictions, has_boxes=ds.has_boxes)
    evaluator = DatasetEvaluators([boxes], {**MaskEvaluator.blank(), **PointingEvaluator.blank()})
    if cfg.out:
        write_run_config(cfg, ds, given_boxes=True)
    t_start, n_missing = time.perf_counter(), 0
    for k, s in enumerate(ds.samples):
        pred = given.select(s.image_id, cfg.box_rule)
        n_missing += pred is None
        size = image_size(s)
        loc = localize_given(pred, protocol.gt_boxes(s.boxes, size), size, protocol)
        evaluator.process(ScoredBatch([s.image_id], np.array([s.label], np.int64), [k], [loc],
                                      status=["ok" if pred is not None else "no_box"]))
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
    res = result_tables(evaluator, timings, stats, meta, model_run=False, choice=choice)
    for c in BOX_FREE_COLUMNS:
        res.summary[c] = float("nan") if c != "fingerprint_v2" else ""
    res.summary["n_unknown_rows"] = meta["n_unknown_rows"]
    res.summary["n_missing_boxes"] = n_missing
    if cfg.out:
        write_run(cfg.out, res.tables())
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
