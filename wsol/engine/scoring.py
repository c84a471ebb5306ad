"""Accumulate localized images into the evaluator and per-image records; build the tables."""
from __future__ import annotations

import datetime as _dt
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from wsol import __version__
from wsol.localize.boxes import MODES
from wsol.localize.image import ImageLocalization
from wsol.metrics.box_accuracy import IOU_THRESHOLDS, LOC_MODE, V2_MODE, BoxAccEvaluator

LOC_RULE = "argmax_tau BoxAcc(tau, IoU 0.5), largest box"

SUMMARY_COLUMNS = [
    "dataset", "split", "protocol", "backbone", "weights", "method", "n_images", "top1_cls",
    "top5_cls", "gt_known_loc", "top1_loc", "top5_loc", "loc_tau", "loc_mode", "loc_tau_rule",
    "fixed_tau", "gt_known_loc_fixed", "top1_loc_fixed", "top5_loc_fixed", "maxboxacc",
    "maxboxacc_v2", "maxboxacc_iou30", "maxboxacc_iou50", "maxboxacc_iou70", "tau_iou30",
    "tau_iou50", "tau_iou70", "mean_iou", "pxap", "piou", "piou_tau", "pointing_game",
    "pointing_game_class_avg", "energy_pointing_game", "pointing_region", "pointing_tolerance", "cam_step", "n_thresholds", "n_skipped", "metric_denominator",
    "n_nonfinite", "n_size_mismatch", "images_per_s", "device", "wsol_version", "date",
]


class RunScorer:
    """Streaming evaluator plus the per-image arrays needed for per_image.csv.

    Per-image state is O(n_images x n_tau) small arrays (IoU float32, boxes uint8), kept only
    for the CSV at the finally chosen τ; the metric state itself is flat.
    """

    def __init__(self, taus: Sequence[float], fixed_tau: float = 0.2, has_predictions: bool = True,
                 box_dtype=np.uint8):
        self.taus = np.asarray(taus, dtype=np.float64)
        self.evaluator = BoxAccEvaluator(self.taus, IOU_THRESHOLDS, fixed_tau)
        self.has_predictions = has_predictions
        self.box_dtype = box_dtype  # uint8 holds the 224-grid boxes; cam2016 boxes need int32
        self.rows: List[dict] = []
        self._iou: Dict[str, List[np.ndarray]] = {m: [] for m in MODES}
        self._box: List[np.ndarray] = []
        self.n_skipped = 0
        self.exclude_skipped = False

    def add_skipped(self, image_id: str, label: int, reason: str, exclude: bool = False) -> None:
        """Record an image that could not be scored (``--on-error skip``).

        It counts as a miss at every τ (IoU 0, classification wrong) unless ``exclude``,
        in which case it is left out of every denominator.
        """
        self.n_skipped += 1
        self.exclude_skipped = exclude
        n_t = len(self.taus)
        if not exclude:
            self.evaluator.process(np.zeros((1, len(MODES), n_t)), np.zeros(1, bool), np.zeros(1, bool))
        row = {"image_id": image_id, "label": int(label)}
        if self.has_predictions:
            row.update({"pred_top1": -1, "pred_top5": "", "top1_correct": False, "top5_correct": False})
        self.rows.append({**row, "_status": "skipped", "_reason": reason})
        for m in MODES:
            self._iou[m].append(np.zeros(n_t, np.float32))
        self._box.append(np.zeros((n_t, 4), self.box_dtype))

    def add(self, image_ids: Sequence[str], labels: Sequence[int], locs: Sequence[ImageLocalization],
            top5: Optional[np.ndarray] = None, status: Optional[Sequence[str]] = None) -> None:
        """Add a batch of localized images; ``top5`` int [B, k] predicted classes, best first;
        ``status`` per image ('ok', or why its map was replaced by zeros)."""
        ious = np.stack([l.iou for l in locs]) if locs else np.zeros((0, len(MODES), len(self.taus)))
        labels = np.asarray(labels, dtype=np.int64)
        if top5 is not None and len(top5):
            t1 = top5[:, 0] == labels
            t5 = (top5 == labels[:, None]).any(axis=1)
        else:
            t1 = t5 = np.zeros(len(labels), dtype=bool)
        self.evaluator.process(ious, t1, t5)
        for i, (iid, lab, loc) in enumerate(zip(image_ids, labels, locs)):
            row = {"image_id": iid, "label": int(lab)}
            if top5 is not None and len(top5):
                row["pred_top1"] = int(top5[i, 0])
                row["pred_top5"] = " ".join(str(int(c)) for c in top5[i])
                row["top1_correct"] = bool(t1[i])
                row["top5_correct"] = bool(t5[i])
            row["_status"] = status[i] if status is not None else "ok"
            row["_reason"] = ""
            self.rows.append(row)
            for mi, m in enumerate(MODES):
                self._iou[m].append(loc.iou[mi].astype(np.float32))
            self._box.append(loc.boxes[MODES.index(LOC_MODE)].astype(self.box_dtype))

    def summary(self) -> dict:
        """The summary numbers (dict of floats; NaN for classification without predictions)."""
        s = self.evaluator.evaluate().__dict__.copy()
        if not self.has_predictions:
            for k in ("top1_cls", "top5_cls", "top1_loc", "top5_loc", "top1_loc_fixed", "top5_loc_fixed"):
                s[k] = float("nan")
        s["loc_mode"] = LOC_MODE
        s["loc_tau_rule"] = LOC_RULE
        s["n_skipped"] = self.n_skipped
        s["metric_denominator"] = ("scored images only (skipped excluded)" if self.exclude_skipped
                                   else "all images (skipped count as misses)")
        return s

    def per_image(self) -> pd.DataFrame:
        """per_image.csv: predictions, IoU and predicted box at loc_tau (and at the fixed τ)."""
        li = self.evaluator.loc_tau_index() if self.rows else 0
        fi = self.evaluator.fixed_index
        df = pd.DataFrame(self.rows)
        if not self.rows:
            return df
        status, reason = df.pop("_status"), df.pop("_reason")
        iou_l = np.stack(self._iou[LOC_MODE])
        iou_a = np.stack(self._iou[V2_MODE])
        boxes = np.stack(self._box)
        df["loc_tau"] = self.taus[li]
        df["iou"] = iou_l[:, li].astype(np.float64)
        for j, c in enumerate(("box_x0", "box_y0", "box_x1", "box_y1")):
            df[c] = boxes[:, li, j].astype(int)
        df["gt_known_correct"] = df["iou"] >= 0.5
        if "top1_correct" in df:
            df["top1_loc_correct"] = df["gt_known_correct"] & df["top1_correct"]
            df["top5_loc_correct"] = df["gt_known_correct"] & df["top5_correct"]
        df["iou_all_contours"] = iou_a[:, li].astype(np.float64)
        df["iou_fixed_tau"] = iou_l[:, fi].astype(np.float64)
        best = iou_l.argmax(axis=1)
        df["best_iou"] = iou_l[np.arange(len(df)), best].astype(np.float64)
        df["best_tau"] = self.taus[best]
        df["status"] = status
        df["reason"] = reason
        return df

    def curves(self) -> pd.DataFrame:
        """curves.csv, long format: mode, iou_threshold, tau, box_acc."""
        parts = []
        for mode, acc in self.evaluator.curves().items():
            for k, t in enumerate(self.evaluator.iou_thresholds):
                parts.append(pd.DataFrame({"mode": mode, "iou_threshold": t / 100, "tau": self.taus,
                                           "box_acc": acc[k]}))
        return pd.concat(parts, ignore_index=True)


def summary_frame(numbers: dict, meta: dict) -> pd.DataFrame:
    """One-row summary.csv with the columns of SUMMARY_COLUMNS first."""
    row = {**meta, **numbers}
    row.setdefault("wsol_version", __version__)
    row.setdefault("date", _dt.date.today().isoformat())
    cols = [c for c in SUMMARY_COLUMNS if c in row] + [c for c in row if c not in SUMMARY_COLUMNS]
    return pd.DataFrame([{c: row.get(c) for c in cols}])
