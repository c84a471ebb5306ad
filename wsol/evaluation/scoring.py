"""The run's summary table: its column order, the threshold-policy columns read from the box
evaluator, and the one-row frame."""
from __future__ import annotations

import datetime as _dt
from typing import Optional

import pandas as pd

from wsol import __version__
from wsol.evaluation.box_evaluator import BoxEvaluator
from wsol.metrics.box_accuracy import LOC_MODE, metrics_at_tau
from wsol.metrics.threshold_policy import RULES, ThresholdChoice, choose_tau

SUMMARY_COLUMNS = [
    "dataset", "split", "protocol", "backbone", "weights", "method", "n_images", "top1_cls",
    "top5_cls", "gt_known_loc", "top1_loc", "top5_loc", "loc_tau", "loc_mode", "loc_tau_rule",
    "fixed_tau", "gt_known_loc_fixed", "top1_loc_fixed", "top5_loc_fixed", "maxboxacc",
    "maxboxacc_v2", "tau_policy", "tau_policy_rule", "tau_policy_source", "tau_policy_n_images", "policy_tau",
    "policy_gt_known_loc", "policy_top1_loc", "policy_top5_loc", "policy_boxacc_v2", "policy_mean_iou",
    "classifier", "fingerprint_loc", "fingerprint_v2", "maxboxacc_iou30", "maxboxacc_iou50", "maxboxacc_iou70", "tau_iou30",
    "tau_iou50", "tau_iou70", "mean_iou", "pxap", "piou", "piou_tau", "pointing_game",
    "pointing_game_class_avg", "energy_pointing_game", "pointing_region", "pointing_tolerance", "cam_step", "n_thresholds", "n_skipped", "metric_denominator",
    "n_nonfinite", "n_size_mismatch", "n_missing_predictions", "n_missing_boxes", "n_unknown_rows", "images_per_s", "device", "wsol_version", "date",
    "n_masks_empty", "n_masks_all_ignored", "n_masks_no_background",
]


def policy_columns(boxes: BoxEvaluator, choice: ThresholdChoice) -> dict:
    """summary.csv's threshold-policy columns: which policy chose τ, by which rule, on what
    (and how many images), the τ, and the Loc numbers of the test set at it."""
    at = metrics_at_tau(boxes.boxacc, choice.index)
    out = {"tau_policy": choice.policy, "tau_policy_rule": RULES[choice.policy], "tau_policy_source": choice.source,
           "tau_policy_n_images": choice.n_images, "policy_tau": choice.tau}
    out.update({f"policy_{k}": at[k] for k in ("gt_known_loc", "top1_loc", "top5_loc", "boxacc_v2", "mean_iou")})
    if not boxes.has_predictions or (boxes.predictions is not None and boxes.predictions.k < 5):
        out["policy_top5_loc"] = float("nan")
        if not boxes.has_predictions:
            out["policy_top1_loc"] = float("nan")
    return out


def policy_choice(boxes: BoxEvaluator, policy: str, fixed_tau: float, selection: Optional[BoxEvaluator] = None,
                  source: str = "") -> ThresholdChoice:
    """The τ ``policy`` picks for the run whose box evaluator is ``boxes`` (``selection``: the
    box evaluator of the selection set, for holdout and pseudo_boxes)."""
    i50 = boxes.boxacc.iou_thresholds.index(50)
    test_curve = boxes.boxacc.curves()[LOC_MODE][i50]
    sel_curve = None if selection is None else selection.boxacc.curves()[LOC_MODE][i50]
    n_sel = 0 if selection is None else int(selection.boxacc.state["n"])
    return choose_tau(policy, boxes.taus, test_curve, fixed_tau, sel_curve, source, n_sel,
                      int(boxes.boxacc.state["n"]))


def summary_frame(numbers: dict, meta: dict) -> pd.DataFrame:
    """One-row summary.csv with the columns of SUMMARY_COLUMNS first."""
    row = {**meta, **numbers}
    row.setdefault("wsol_version", __version__)
    row.setdefault("date", _dt.date.today().isoformat())
    cols = [c for c in SUMMARY_COLUMNS if c in row] + [c for c in row if c not in SUMMARY_COLUMNS]
    return pd.DataFrame([{c: row.get(c) for c in cols}])
