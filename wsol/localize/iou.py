"""Box IoU with inclusive pixel coordinates (docs/protocol.md, IoU)."""
from __future__ import annotations

from typing import Tuple

import numpy as np
from numba import njit


def iou_matrix(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU of every predicted box with every GT box: [n, 4] x [m, 4] -> [n, m] float64.

    Widths are ``x1 - x0 + 1``; a non-positive union gives IoU 0 (wsolevaluation's rule).
    """
    a = np.asarray(pred, dtype=np.float64).reshape(-1, 1, 4)
    b = np.asarray(gt, dtype=np.float64).reshape(1, -1, 4)
    ix = np.maximum(0.0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
    iy = np.maximum(0.0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1)
    inter = ix * iy
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    union = area_a + area_b - inter
    out = np.zeros(np.broadcast_shapes(a.shape[:2], b.shape[:2]), dtype=np.float64)
    ok = union > 0
    out[ok] = inter[ok] / union[ok]
    return out


def iou(box_a, box_b) -> float:
    """IoU of two single boxes."""
    return float(iou_matrix(np.asarray(box_a)[None], np.asarray(box_b)[None])[0, 0])


@njit(cache=True)
def _best_per_cut(flat: np.ndarray, start: np.ndarray, end: np.ndarray, gt: np.ndarray,
                  iou_out: np.ndarray, box_out: np.ndarray) -> None:
    for i in range(start.shape[0]):
        best = -1.0
        for r in range(start[i], end[i]):
            ax0, ay0, ax1, ay1 = float(flat[r, 0]), float(flat[r, 1]), float(flat[r, 2]), float(flat[r, 3])
            area_a = (ax1 - ax0 + 1) * (ay1 - ay0 + 1)
            m = 0.0
            for g in range(gt.shape[0]):
                ix = max(0.0, min(ax1, gt[g, 2]) - max(ax0, gt[g, 0]) + 1)
                iy = max(0.0, min(ay1, gt[g, 3]) - max(ay0, gt[g, 1]) + 1)
                inter = ix * iy
                union = area_a + (gt[g, 2] - gt[g, 0] + 1) * (gt[g, 3] - gt[g, 1] + 1) - inter
                v = inter / union if union > 0 else 0.0
                if v > m:
                    m = v
            if m > best:  # first box of the cut reaching the max
                best = m
                box_out[i, 0] = flat[r, 0]
                box_out[i, 1] = flat[r, 1]
                box_out[i, 2] = flat[r, 2]
                box_out[i, 3] = flat[r, 3]
        iou_out[i] = best


def best_iou_of_segments(flat: np.ndarray, start: np.ndarray, end: np.ndarray,
                         gt: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """For each segment ``flat[start[i]:end[i]]`` of predicted boxes (non-empty): the max IoU
    over its boxes x ``gt`` and the first box reaching it -> ``(iou [n] float64, box [n, 4] int32)``.

    Same float64 arithmetic as :func:`iou_matrix` (compiled: scoring runs it once per distinct
    cut of every image, where numpy's per-call overhead dominated).
    """
    n = len(start)
    iou_out = np.zeros(n, np.float64)
    box_out = np.zeros((n, 4), np.int32)
    if n:
        _best_per_cut(np.ascontiguousarray(flat, dtype=np.int32), np.asarray(start, np.int64),
                      np.asarray(end, np.int64), np.ascontiguousarray(gt, dtype=np.float64).reshape(-1, 4),
                      iou_out, box_out)
    return iou_out, box_out
