"""Boxes from normalized maps at every τ (DESIGN.md §3), and GT box scaling.

``sweep_reference`` is the plain per-threshold OpenCV path (threshold, findContours with
RETR_TREE, boundingRect); it *is* the protocol. Faster sweeps must return exactly what it
returns and are checked against it in the tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence

import cv2
import numpy as np

from wsol.localize.iou import iou_matrix
from wsol.localize.maps import MAP_SIZE, level_thresholds

MODES = ("all", "largest")
EMPTY_BOX = np.zeros((1, 4), dtype=np.int32)


def scale_gt_boxes(boxes: np.ndarray, width: float, height: float, size: int = MAP_SIZE) -> np.ndarray:
    """Original-pixel x0,y0,x1,y1 boxes -> ``size`` grid, per axis, truncated: ``int(x0*224/W)``."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    sx = b[:, [0, 2]] * float(size) / float(width)
    sy = b[:, [1, 3]] * float(size) / float(height)
    out = np.stack([sx[:, 0], sy[:, 0], sx[:, 1], sy[:, 1]], axis=1)
    return np.trunc(out).astype(np.int64)


def _contour_box(contour: np.ndarray, w: int, h: int) -> List[int]:
    x, y, bw, bh = cv2.boundingRect(contour)
    return [x, y, min(x + bw, w - 1), min(y + bh, h - 1)]


def boxes_at_level(q: np.ndarray, cut: int) -> Dict[str, np.ndarray]:
    """Boxes of the mask ``q > cut`` in both modes, via OpenCV contours (the reference).

    'all': one box per contour of the RETR_TREE tree (outer and hole boundaries);
    'largest': the contour of largest polygon area (first one on ties, as Python's max).
    No foreground gives ``[[0, 0, 0, 0]]`` in both modes.
    """
    h, w = q.shape
    mask = np.where(q > cut, 255, 0).astype(np.uint8)
    contours = cv2.findContours(mask, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[-2]
    if len(contours) == 0:
        return {"all": EMPTY_BOX.copy(), "largest": EMPTY_BOX.copy()}
    all_boxes = np.asarray([_contour_box(c, w, h) for c in contours], dtype=np.int32)
    largest = max(contours, key=cv2.contourArea)
    return {"all": all_boxes, "largest": np.asarray([_contour_box(largest, w, h)], dtype=np.int32)}


@dataclass
class SweepResult:
    """Boxes at every τ for one map: ``boxes[mode][t]`` is an int32 [n, 4] array."""

    boxes: Dict[str, List[np.ndarray]]


def sweep_reference(q: np.ndarray, taus: Sequence[float]) -> SweepResult:
    """Per-threshold OpenCV sweep of a quantized uint8 map (the protocol's definition).

    Thresholds that give the same integer cut share one contour pass.
    """
    q = np.ascontiguousarray(q, dtype=np.uint8)
    cuts = level_thresholds(int(q.max()), taus)
    cache: Dict[int, Dict[str, np.ndarray]] = {}
    out: Dict[str, List[np.ndarray]] = {m: [] for m in MODES}
    for cut in cuts.tolist():
        if cut not in cache:
            cache[cut] = boxes_at_level(q, cut)
        for m in MODES:
            out[m].append(cache[cut][m])
    return SweepResult(out)


SWEEPS = {"reference": sweep_reference}


def get_sweep(name: str):
    """The sweep implementation called ``name`` ('reference', or 'fast' where available)."""
    from wsol.errors import UnknownNameError

    if name == "fast" and "fast" not in SWEEPS:
        import wsol.localize.fast_sweep  # noqa: F401  (registers SWEEPS["fast"]; needs numba)
    if name not in SWEEPS:
        raise UnknownNameError("sweep", name, SWEEPS)
    return SWEEPS[name]


def best_iou_per_tau(boxes_per_tau: List[np.ndarray], gt: np.ndarray) -> np.ndarray:
    """Max IoU over all predicted boxes x all GT boxes, at each τ -> float64 [n_tau]."""
    counts = np.fromiter((len(b) for b in boxes_per_tau), dtype=np.int64, count=len(boxes_per_tau))
    allb = np.concatenate(boxes_per_tau, axis=0)
    per_box = iou_matrix(allb, gt).max(axis=1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.maximum.reduceat(per_box, starts)
