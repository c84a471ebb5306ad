"""Given boxes (from any method, in original pixels) -> the per-image localization the
box evaluator takes: one 'τ' (there is no threshold), both box modes holding the same IoU
(docs/protocol.md, Bring your own outputs).

The predicted boxes go through the protocol's own ground-truth rule (:meth:`Protocol.gt_boxes`:
under wsoleval, per axis onto the 224 grid and truncated, exactly as the ground truth), after
clipping to the image; the IoU is the best over predicted x ground-truth boxes.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from wsol.localize.boxes import MODES
from wsol.localize.image import ImageLocalization
from wsol.localize.iou import iou_matrix

NO_TAU = np.array([np.nan])  # the 'grid' of given boxes: one entry, no threshold


def clip_boxes(boxes: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Clip original-pixel boxes to the image: x in [0, W-1], y in [0, H-1]."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    w, h = size
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, w - 1)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, h - 1)
    return b


def localize_given(boxes: Optional[np.ndarray], gt: np.ndarray, size: Tuple[int, int], protocol) -> ImageLocalization:
    """``boxes`` [n, 4] original pixels (None: no prediction, IoU 0), ``gt`` the image's
    ground truth as :meth:`Protocol.gt_boxes` gave it, ``size`` (W, H) -> a one-τ
    :class:`ImageLocalization` (the best box and its IoU, the same in both modes)."""
    iou = np.zeros((len(MODES), 1), dtype=np.float64)
    best = np.zeros((len(MODES), 1, 4), dtype=np.int64)
    if boxes is None or len(boxes) == 0 or len(gt) == 0:
        return ImageLocalization(iou, best)
    pred = np.asarray(protocol.gt_boxes(clip_boxes(boxes, size), size))
    per_box = iou_matrix(pred, np.asarray(gt)).max(axis=1)
    j = int(np.argmax(per_box))  # first box reaching the max
    iou[:, 0] = per_box[j]
    best[:, 0] = pred[j]
    return ImageLocalization(iou, best)
