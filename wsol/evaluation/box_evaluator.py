"""The box evaluator: MaxBoxAcc / MaxBoxAccV2, GT-known / Top-1 / Top-5 Loc, classification,
and the per-image rows of per_image.csv (docs/protocol.md)."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import numpy as np
import pandas as pd

from wsol.evaluation.evaluator import DatasetEvaluator
from wsol.evaluation.records import ScoredBatch
from wsol.localize.boxes import MODES
from wsol.metrics.box_accuracy import IOU_THRESHOLDS, LOC_MODE, V2_MODE, BoxAccEvaluator

LOC_RULE = "argmax_tau BoxAcc(tau, IoU 0.5), largest box"
#: summary numbers taken from the wsoleval scoring of the same maps when the protocol is another
FAIR_COLUMNS = ("maxboxacc", "maxboxacc_v2", "maxboxacc_iou30", "maxboxacc_iou50", "maxboxacc_iou70",
                "tau_iou30", "tau_iou50", "tau_iou70")
FAIR_PREFIX = "fair_"
#: summary.csv columns that come from boxes (NaN for a dataset without any box, e.g. OpenImages)
BOX_METRICS = ("gt_known_loc", "top1_loc", "top5_loc", "loc_tau", "gt_known_loc_fixed", "top1_loc_fixed",
               "top5_loc_fixed", "maxboxacc", "maxboxacc_v2", "maxboxacc_iou30", "maxboxacc_iou50",
               "maxboxacc_iou70", "tau_iou30", "tau_iou50", "tau_iou70", "mean_iou")
#: summary columns without a meaning when the classes are not known (or top-5 is not)
TOP1_COLUMNS = ("top1_cls", "top1_loc", "top1_loc_fixed")
TOP5_COLUMNS = ("top5_cls", "top5_loc", "top5_loc_fixed")


class BoxEvaluator(DatasetEvaluator):
    """Streaming box localization state (:class:`BoxAccEvaluator`'s hit counts, and the
    wsoleval scoring of the same maps under another protocol: ``fair_taus``) plus the per-image
    lists of per_image.csv: ``rows`` (dicts), ``iou_all`` / ``iou_largest`` (float32 [n_tau]),
    ``box`` (the largest-mode box per τ, [n_tau, 4] of ``box_dtype``) and ``index`` (dataset
    position).

    ``has_predictions``: the classes are known (the model's, or ``predictions`` read from a
    file, which then replace the model's); ``has_boxes``: the dataset has boxes (else the box
    columns are NaN)."""

    name = "boxes"

    def __init__(self, taus: Sequence[float], fixed_tau: float = 0.2, has_predictions: bool = True,
                 box_dtype=np.uint8, fair_taus: Optional[Sequence[float]] = None, predictions=None,
                 has_boxes: bool = True):
        super().__init__()
        self.taus = np.asarray(taus, dtype=np.float64)
        self.boxacc = self.add_metric(BoxAccEvaluator(self.taus, IOU_THRESHOLDS, fixed_tau))
        self.fair = self.add_metric(BoxAccEvaluator(np.asarray(fair_taus, np.float64), IOU_THRESHOLDS, fixed_tau),
                                    FAIR_PREFIX) if fair_taus is not None else None
        self.has_predictions, self.has_boxes = has_predictions, has_boxes
        self.box_dtype = box_dtype  # the protocol's box type (uint8 holds 224-grid boxes)
        self.predictions = predictions
        self.add_state("rows", [], "cat", "per-image CSV fields (dicts)", per_image=True)
        self.add_state("iou_all", [], "cat", "float32 [n_tau] per image: best IoU, all contours", per_image=True)
        self.add_state("iou_largest", [], "cat", "float32 [n_tau] per image: best IoU, largest box", per_image=True)
        self.add_state("box", [], "cat", "[n_tau, 4] per image: the largest-mode box", per_image=True)
        self.add_state("index", [], "cat", "int per image: position in the dataset", per_image=True)
        self.add_state("n_skipped", 0, "sum", "images that could not be scored")
        self.add_state("exclude_skipped", False, "any", "skipped images left out of the denominators")
        self.add_state("n_missing_predictions", 0, "sum", "images without a row in the class-prediction file")

    # ------------------------------------------------------------ update
    def process(self, batch: ScoredBatch) -> None:
        """Add a batch of scored images, or of skipped ones (each a miss at every τ, IoU 0 and
        classification wrong, unless ``batch.exclude``: then left out of every denominator)."""
        if batch.skipped:
            self._process_skipped(batch)
            return
        locs, labels = batch.locs, np.asarray(batch.labels, dtype=np.int64)
        ious = np.stack([l.iou for l in locs]) if len(locs) else np.zeros((0, len(MODES), len(self.taus)))
        top5 = batch.top5
        if self.predictions is not None:  # a separate classifier's predictions, looked up by image id
            top5, missing = self.predictions.lookup(list(batch.image_ids))
            self.n_missing_predictions += missing
        if top5 is not None and len(top5):
            t1 = top5[:, 0] == labels
            t5 = (top5 == labels[:, None]).any(axis=1)
        else:
            t1 = t5 = np.zeros(len(labels), dtype=bool)
        self.boxacc.process(ious, t1, t5)
        if self.fair is not None and len(locs):
            self.fair.process(np.stack([l.fair.iou for l in locs]), t1, t5)
        for i, (iid, lab, loc) in enumerate(zip(batch.image_ids, labels, locs)):
            self.rows.append(self._row(iid, lab, i, top5, t1, t5, batch.status))
            self.index.append(int(batch.indices[i]))
            self.iou_all.append(loc.iou[MODES.index(V2_MODE)].astype(np.float32))
            self.iou_largest.append(loc.iou[MODES.index(LOC_MODE)].astype(np.float32))
            self.box.append(loc.boxes[MODES.index(LOC_MODE)].astype(self.box_dtype))

    def _row(self, iid: str, lab: int, i: int, top5, t1, t5, status) -> dict:
        row: Dict[str, Any] = {"image_id": iid, "label": int(lab)}
        if top5 is not None and len(top5):
            row["pred_top1"] = int(top5[i, 0])
            row["pred_top5"] = " ".join(str(int(c)) for c in top5[i] if c >= 0)
            row["top1_correct"] = bool(t1[i])
            row["top5_correct"] = bool(t5[i])
        row["_status"] = status[i] if status is not None else "ok"
        if self.predictions is not None and iid not in self.predictions.top:
            row["_status"] = "no_prediction" if row["_status"] == "ok" else row["_status"]
        row["_reason"] = ""
        return row

    def _process_skipped(self, batch: ScoredBatch) -> None:
        n_t = len(self.taus)
        for iid, lab, index, reason in zip(batch.image_ids, batch.labels, batch.indices, batch.reasons):
            self.n_skipped += 1
            self.exclude_skipped = batch.exclude
            if not batch.exclude:
                self.boxacc.process(np.zeros((1, len(MODES), n_t)), np.zeros(1, bool), np.zeros(1, bool))
                if self.fair is not None:
                    self.fair.process(np.zeros((1, len(MODES), len(self.fair.taus))), np.zeros(1, bool),
                                      np.zeros(1, bool))
            row = {"image_id": iid, "label": int(lab)}
            if self.has_predictions:
                row.update({"pred_top1": -1, "pred_top5": "", "top1_correct": False, "top5_correct": False})
            self.index.append(int(index))
            self.rows.append({**row, "_status": "skipped", "_reason": reason})
            self.iou_all.append(np.zeros(n_t, np.float32))
            self.iou_largest.append(np.zeros(n_t, np.float32))
            self.box.append(np.zeros((n_t, 4), self.box_dtype))

    # ------------------------------------------------------------ compute
    def evaluate(self) -> Dict[str, Any]:
        """The summary numbers (NaN for classification without predictions, for boxes
        without boxes)."""
        s = self.boxacc.evaluate().__dict__.copy()
        blank = () if self.has_predictions else TOP1_COLUMNS + TOP5_COLUMNS
        if self.predictions is not None and self.predictions.k < 5:  # top-5 needs five columns
            blank += TOP5_COLUMNS
        for k in blank:
            s[k] = float("nan")
        s["loc_mode"] = LOC_MODE
        s["loc_tau_rule"] = LOC_RULE
        if self.fair is not None:  # the fair numbers: the same maps under wsoleval
            fair = self.fair.evaluate().__dict__
            s.update({k: fair[k] for k in FAIR_COLUMNS})
            s["maxboxacc_rule"] = f"wsoleval (MaxBoxAccV2 over {len(self.fair.taus)} taus)"
        s["n_skipped"] = self.n_skipped
        s["metric_denominator"] = ("scored images only (skipped excluded)" if self.exclude_skipped
                                   else "all images (skipped count as misses)")
        if not self.has_boxes:
            s.update({k: float("nan") for k in BOX_METRICS if k in s})
        return s

    def per_image(self) -> pd.DataFrame:
        """per_image.csv's box columns: predictions, IoU and predicted box at loc_tau (and at the
        fixed τ), status and reason; indexed by dataset position."""
        df = pd.DataFrame(self.rows)
        if not self.rows:
            return df
        li, fi = self.boxacc.loc_tau_index(), self.boxacc.fixed_index
        df.index = pd.Index(self.index)
        status, reason = df.pop("_status"), df.pop("_reason")
        iou_l, iou_a = np.stack(self.iou_largest), np.stack(self.iou_all)
        boxes = np.stack(self.box)
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
        for mode, acc in self.boxacc.curves().items():
            for k, t in enumerate(self.boxacc.iou_thresholds):
                parts.append(pd.DataFrame({"mode": mode, "iou_threshold": t / 100, "tau": self.taus,
                                           "box_acc": acc[k]}))
        return pd.concat(parts, ignore_index=True)
