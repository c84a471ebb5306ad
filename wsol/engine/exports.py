"""``wsol evaluate --save-boxes FILE --save-predictions FILE``: the run's own boxes and classes
in the formats ``wsol score --boxes/--predictions`` reads, so any scorer (wsol's included)
can re-score them (docs/protocol.md, Bring your own outputs).

Boxes: one row per scored image, the largest-mode box at the threshold policy's τ, in
original pixels by the protocol's :meth:`~wsol.localize.protocols.Protocol.boxes_to_original`
(wsoleval: the centre of each 224-grid cell, so re-scoring gives back the same 224-grid box).
Predictions: ``image_id,top1..top5`` class indices. Skipped images have no row (a re-score
counts them as misses, as the run did unless ``--exclude-skipped``).
"""
from __future__ import annotations

import os
from typing import List

import numpy as np
import pandas as pd

from wsol.datasets.base import WsolDataset
from wsol.datasets.wsoleval import image_size
from wsol.engine.config import EvalConfig
from wsol.evaluation.box_evaluator import BoxEvaluator
from wsol.metrics.threshold_policy import ThresholdChoice
from wsol.report.csv import write_csv_atomic


def boxes_frame(boxes: BoxEvaluator, choice: ThresholdChoice, ds: WsolDataset, protocol) -> pd.DataFrame:
    """image_id, x0, y0, x1, y1 (original pixels) of every scored image at ``choice``'s τ."""
    by_id = {s.image_id: s for s in ds.samples}
    rows: List[list] = []
    for row, box in zip(boxes.rows, boxes.box):
        if row.get("_status") == "skipped":
            continue
        s = by_id[row["image_id"]]
        b = protocol.boxes_to_original(np.asarray(box[choice.index], dtype=np.float64), image_size(s))[0]
        rows.append([row["image_id"], *b.tolist()])
    return pd.DataFrame(rows, columns=["image_id", "x0", "y0", "x1", "y1"])


def predictions_frame(boxes: BoxEvaluator) -> pd.DataFrame:
    """image_id, top1..topk of every scored image (k = 5, or fewer classes)."""
    rows = [(r["image_id"], [int(c) for c in str(r.get("pred_top5", "")).split()])
            for r in boxes.rows if r.get("_status") != "skipped"]
    k = max((len(c) for _, c in rows), default=0)
    rows = [(i, c) for i, c in rows if len(c) == k]
    return pd.DataFrame([[i, *c] for i, c in rows], columns=["image_id"] + [f"top{j}" for j in range(1, k + 1)])


def export_outputs(cfg: EvalConfig, boxes: BoxEvaluator, choice: ThresholdChoice, ds: WsolDataset, protocol) -> None:
    """Write ``cfg.save_boxes`` and ``cfg.save_predictions`` where asked."""
    for path, make in ((cfg.save_boxes, lambda: boxes_frame(boxes, choice, ds, protocol)),
                       (cfg.save_predictions, lambda: predictions_frame(boxes))):
        if path:
            folder = os.path.dirname(os.path.abspath(path))
            os.makedirs(folder, exist_ok=True)
            write_csv_atomic(make(), path)
