"""The run's threshold policy (docs/protocol.md, Threshold policies): the selection set a
policy chooses τ on, and the choice itself.

``holdout`` and ``pseudo_boxes`` score the same model (or the same heatmap folder) on a
selection set whose boxes are real (a held-out split) or pseudo (boxes nobody annotated),
then read the test set's numbers at the τ best on that set. The selection set comes from
``tau_source`` (a wsolevaluation metadata folder: image_ids.txt, class_labels.txt,
image_sizes.txt, localization.txt) or, for ``holdout``, ``tau_holdout`` of each class of the
dataset's train split.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Optional

from wsol.datasets.base import WsolDataset, build_dataset
from wsol.datasets.splits import split_holdout
from wsol.engine.config import EvalConfig
from wsol.errors import DataError
from wsol.evaluation.box_evaluator import BoxEvaluator
from wsol.evaluation.scoring import policy_choice
from wsol.metrics.threshold_policy import SELECTION_POLICIES, ThresholdChoice

log = logging.getLogger(__name__)


def selection_dataset(cfg: EvalConfig, test: WsolDataset) -> Optional[WsolDataset]:
    """The images and boxes the policy chooses τ on (None for test_best and fixed)."""
    if cfg.tau_policy not in SELECTION_POLICIES:
        return None
    if cfg.tau_source:
        images = cfg.dataset_options.get("images") or test.image_root or None
        ds = build_dataset("wsoleval", cfg.tau_source, "val", images=images)
    else:
        full = build_dataset(cfg.dataset, cfg.root, "train", **cfg.dataset_options)
        held = split_holdout(full.samples, float(cfg.tau_holdout), cfg.seed)[1]
        ds = WsolDataset(full.name, "train-holdout", full.root, full.image_root, held, full.class_names)
    if len(ds) == 0 or not ds.has_boxes:
        raise DataError(f"tau_policy {cfg.tau_policy}: the selection set has no images with boxes",
                        path=cfg.tau_source or cfg.root)
    return ds


def selection_source(cfg: EvalConfig) -> str:
    """Where the selection set came from, for summary.csv's ``tau_policy_source``."""
    if cfg.tau_source:
        return os.path.abspath(cfg.tau_source)
    return f"{cfg.tau_holdout:g} of each class of {cfg.dataset}/train (seed {cfg.seed})"


def choose(cfg: EvalConfig, boxes: BoxEvaluator, test: WsolDataset,
           score_selection: Callable[[WsolDataset], BoxEvaluator]) -> ThresholdChoice:
    """The τ of ``cfg.tau_policy`` for the run whose box evaluator is ``boxes``;
    ``score_selection(ds)`` scores the selection set with the run's model or heatmaps (called
    only when the policy needs it) and returns its box evaluator."""
    sel = selection_dataset(cfg, test)
    selection = None
    if sel is not None:
        log.info("tau policy %s: scoring %d selection images (%s)", cfg.tau_policy, len(sel), selection_source(cfg))
        selection = score_selection(sel)
    return policy_choice(boxes, cfg.tau_policy, cfg.fixed_tau, selection,
                         selection_source(cfg) if sel is not None else "")
