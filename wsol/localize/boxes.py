"""Boxes from normalized maps at every τ (docs/protocol.md, Contours and boxes), and GT box scaling.

``sweep_per_threshold`` is the protocol exactly as published (wsolevaluation): for every τ,
``cv2.threshold`` at ``int(τ * max)``, ``cv2.findContours`` with RETR_TREE, boundingRect of
every contour, ``max(contours, key=cv2.contourArea)``. ``sweep_reference`` is the same OpenCV
path with one contour pass per distinct integer cut (τ that give the same cut give the same
mask, so the same contours). Faster sweeps must return exactly what these return and are
checked against them in the tests.

A :class:`SweepResult` holds the boxes of each distinct cut once plus the cut of every τ;
``result.boxes[mode][t]`` expands that to one array per τ on first use.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from operator import itemgetter
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from wsol.localize.iou import best_iou_of_segments
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
    q = np.ascontiguousarray(q, dtype=np.uint8)
    h, w = q.shape
    # cv2.threshold (as the published code): 255 where q > cut; any int cut, -1 and 255 included
    mask = cv2.threshold(q, cut, 255, cv2.THRESH_BINARY)[1]
    contours = cv2.findContours(mask, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[-2]
    if len(contours) == 0:
        return {"all": EMPTY_BOX.copy(), "largest": EMPTY_BOX.copy()}
    all_boxes = np.asarray([_contour_box(c, w, h) for c in contours], dtype=np.int32)
    largest = max(contours, key=cv2.contourArea)
    return {"all": all_boxes, "largest": np.asarray([_contour_box(largest, w, h)], dtype=np.int32)}


@dataclass
class CutBoxes:
    """Boxes of every distinct cut in one mode, packed: cut ``i``'s boxes are
    ``flat[start[i]:end[i]]`` (int32 [n_i, 4], at least one row: no foreground is [0,0,0,0])."""

    flat: np.ndarray
    start: np.ndarray
    end: np.ndarray

    @classmethod
    def from_lists(cls, per_cut: List[np.ndarray]) -> "CutBoxes":
        counts = np.fromiter((len(b) for b in per_cut), dtype=np.int64, count=len(per_cut))
        end = np.cumsum(counts)
        flat = np.concatenate(per_cut, axis=0).astype(np.int32, copy=False) if per_cut else EMPTY_BOX[:0].copy()
        return cls(flat, end - counts, end)

    def as_lists(self) -> List[np.ndarray]:
        """One array (a view of ``flat``) per cut."""
        n = len(self.start)
        if n and np.array_equal(self.end - self.start, np.ones(n, np.int64)) and np.array_equal(
                self.start, np.arange(n)):
            return list(self.flat[:n, None, :])  # one box per cut, in order: rows of a [n, 1, 4] view
        return [self.flat[s:e] for s, e in zip(self.start.tolist(), self.end.tolist())]


@dataclass
class SweepResult:
    """Boxes at every τ for one map.

    ``packed[mode]``: the boxes of each distinct integer cut (:class:`CutBoxes`);
    ``tau_cut[t]``: the distinct cut of τ number ``t``. Per-cut and per-τ lists of arrays are
    built on first use: ``cut_boxes[mode][i]`` and ``boxes[mode][t]`` (the same array
    object for every τ of one cut).
    """

    packed: Dict[str, CutBoxes]
    tau_cut: np.ndarray
    _per_cut: Optional[Dict[str, List[np.ndarray]]] = field(default=None, repr=False, compare=False)
    _per_tau: Optional[Dict[str, List[np.ndarray]]] = field(default=None, repr=False, compare=False)

    @classmethod
    def from_lists(cls, cut_boxes: Dict[str, List[np.ndarray]], tau_cut: np.ndarray) -> "SweepResult":
        return cls({m: CutBoxes.from_lists(b) for m, b in cut_boxes.items()}, np.asarray(tau_cut, np.int64))

    @property
    def cut_boxes(self) -> Dict[str, List[np.ndarray]]:
        """``cut_boxes[mode][i]``: int32 [n, 4] boxes of distinct cut ``i``."""
        if self._per_cut is None:
            self._per_cut = {m: p.as_lists() for m, p in self.packed.items()}
        return self._per_cut

    @property
    def boxes(self) -> Dict[str, List[np.ndarray]]:
        """``boxes[mode][t]``: int32 [n, 4] boxes at τ number ``t``."""
        if self._per_tau is None:
            idx = self.tau_cut.tolist()
            self._per_tau = {m: _pick(b, idx) for m, b in self.cut_boxes.items()}
        return self._per_tau

    @property
    def n_tau(self) -> int:
        return int(self.tau_cut.shape[0])


def _pick(items: List[np.ndarray], idx: List[int]) -> List[np.ndarray]:
    """``[items[i] for i in idx]`` at C speed."""
    if not idx:
        return []
    if len(idx) == 1:
        return [items[idx[0]]]
    return list(itemgetter(*idx)(items))


def sweep_per_threshold(q: np.ndarray, taus: Sequence[float]) -> SweepResult:
    """The published loop, literally: one OpenCV threshold + contour pass per τ, no sharing.

    Slowest path; kept as the yardstick the fast sweep is timed against
    (``benchmarks/sweep_speed.py``) and as a check on :func:`sweep_reference`'s cut sharing.
    """
    q = np.ascontiguousarray(q, dtype=np.uint8)
    q_max = float(np.max(q)) if q.size else 0.0
    per_tau = [boxes_at_level(q, int(tau * q_max)) for tau in np.asarray(taus, dtype=np.float64).tolist()]
    return SweepResult.from_lists({m: [b[m] for b in per_tau] for m in MODES},
                                  np.arange(len(per_tau), dtype=np.int64))


def sweep_reference(q: np.ndarray, taus: Sequence[float]) -> SweepResult:
    """Per-threshold OpenCV sweep of a quantized uint8 map, one contour pass per distinct cut.

    Same boxes as :func:`sweep_per_threshold` at every τ (thresholds that give the same
    integer cut give the same mask).
    """
    q = np.ascontiguousarray(q, dtype=np.uint8)
    cuts = level_thresholds(int(q.max()) if q.size else 0, taus)
    distinct, tau_cut = np.unique(cuts, return_inverse=True)
    per_cut = [boxes_at_level(q, int(c)) for c in distinct.tolist()]
    return SweepResult.from_lists({m: [b[m] for b in per_cut] for m in MODES}, tau_cut.reshape(-1))


def best_iou_per_cut(result: SweepResult, mode: str, gt: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Best IoU and the box achieving it (first on ties) at every τ, computed once per distinct cut.

    Returns ``(iou float64 [n_tau], box int32 [n_tau, 4])``.
    """
    p = result.packed[mode]
    iou, box = best_iou_of_segments(p.flat, p.start, p.end, gt)
    return iou[result.tau_cut], box[result.tau_cut]
