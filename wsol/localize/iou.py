"""Box IoU with inclusive pixel coordinates (DESIGN.md §3)."""
from __future__ import annotations

import numpy as np


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
