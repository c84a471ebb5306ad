"""PxAP and PIoU: pixel-wise precision-recall of a heatmap against a mask (docs/protocol.md, "Masks").

PxAP is Choe et al.'s (CVPR 2020) pixel average precision, computed as wsolevaluation's
``MaskEvaluator`` does it:

- bins: the τ grid ``[0, s, 2s, ..., 1-s]`` plus right edges ``1, 2, 3``, i.e. the bins
  ``[0, s), ..., [1-s, 1), [1, 2), [2, 3]`` of ``numpy.histogram`` (so a score of exactly 1.0
  lands in ``[1, 2)``);
- two histograms of map values summed over all images: at object pixels (mask == 1) and at
  background pixels (mask == 0); ignored pixels (255) enter neither;
- reversed cumulative sums give TP and FP at each threshold ``score >= edge``, from the
  highest edge (2.0) down to 0; FN = positives - TP;
- precision = TP / (TP + FP), recall = TP / positives; PxAP = 100 x sum over thresholds k
  >= 1 with TP + FP > 0 of precision[k] x (recall[k] - recall[k-1]).

PIoU (the TPAMI version of the paper) is the peak over the same thresholds of the pixel IoU
TP / (TP + FP + FN), in percent.

The state is two int64 histograms (flat in the number of images; shards add up); the
streaming :class:`PixelPREvaluator` and the functional :func:`pixel_pr_summary` share
:func:`score_histograms` and :func:`pr_from_histograms`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, Iterable, Sequence, Tuple

import numpy as np
import torch

from wsol.metrics.state import StateSpec

FOREGROUND, BACKGROUND, IGNORE = 1, 0, 255

log = logging.getLogger(__name__)


def bin_edges(taus: Sequence[float]) -> np.ndarray:
    """The histogram edges: the τ grid followed by 1, 2 and 3 (float64)."""
    return np.append(np.asarray(taus, dtype=np.float64), [1.0, 2.0, 3.0])


def _sorted_histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """numpy.histogram's counts for array bins: sort once, then locate the edges in it."""
    v = np.sort(values)
    cum = np.concatenate([v.searchsorted(edges[:-1], side="left"), v.searchsorted(edges[-1:], side="right")])
    return np.diff(cum).astype(np.int64)


def score_histograms(score_map: np.ndarray, gt_mask: np.ndarray, edges: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Counts of map values per bin at object and at background pixels -> two int64 [n_bins].

    Bin k holds ``edges[k] <= v < edges[k+1]`` (the last bin is closed); values outside
    ``[edges[0], edges[-1]]`` (and NaN) are not counted: numpy.histogram's rule, computed
    the way it does (sort, then binary-search the few edges), in float64.
    """
    v = np.asarray(score_map, dtype=np.float64).ravel()
    m = np.asarray(gt_mask).ravel()
    if v.shape != m.shape:
        raise ValueError(f"map {np.shape(score_map)} and mask {np.shape(gt_mask)} differ in shape")
    return _sorted_histogram(v[m == FOREGROUND], edges), _sorted_histogram(v[m == BACKGROUND], edges)


@dataclass
class PixelPR:
    """The pixel precision-recall curve, thresholds from high to low.

    thresholds: ``score >= threshold`` is predicted object (2.0, 1.0, 1-s, ..., 0);
    tp, fp, fn: int64 counts; precision (NaN where nothing is predicted), recall, iou.
    """

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    iou: np.ndarray


def pr_from_histograms(fg_hist: np.ndarray, bg_hist: np.ndarray, edges: np.ndarray) -> PixelPR:
    """TP/FP/FN, precision, recall and IoU at each threshold from the two histograms."""
    fg_hist = np.asarray(fg_hist, dtype=np.int64)
    bg_hist = np.asarray(bg_hist, dtype=np.int64)
    tp = fg_hist[::-1].cumsum()
    fp = bg_hist[::-1].cumsum()
    fn = int(fg_hist.sum()) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), np.nan)
        recall = tp / fg_hist.sum() if fg_hist.sum() > 0 else np.full(len(tp), np.nan)
        union = tp + fp + fn
        iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
    return PixelPR(np.asarray(edges[:-1], dtype=np.float64)[::-1], tp, fp, fn, precision, recall, iou)


def pxap_from_pr(pr: PixelPR) -> float:
    """PxAP in percent (NaN when there are no object pixels, no background pixels -- every
    precision would be 1 -- or no scored pixels at all)."""
    if pr.tp[-1] + pr.fn[-1] <= 0 or pr.fp[-1] <= 0:
        return float("nan")
    keep = (pr.tp + pr.fp)[1:] != 0
    return float((pr.precision[1:] * np.diff(pr.recall))[keep].sum() * 100)


def piou_from_pr(pr: PixelPR) -> Tuple[float, float]:
    """(PIoU in percent, the threshold reaching it, first from the top on ties); NaN when undefined
    (no object or no background pixel)."""
    if pr.tp[-1] + pr.fn[-1] <= 0 or pr.fp[-1] <= 0 or not np.isfinite(pr.iou).any():
        return float("nan"), float("nan")
    k = int(np.nanargmax(pr.iou))
    return float(pr.iou[k] * 100), float(pr.thresholds[k])


@dataclass
class MaskSummary:
    """Summary numbers of the pixel metrics (percent)."""

    pxap: float
    piou: float
    piou_tau: float
    n_mask_images: int


def pixel_pr_summary(maps: Iterable[np.ndarray], masks: Iterable[np.ndarray], taus: Sequence[float]) -> MaskSummary:
    """Functional twin of :class:`PixelPREvaluator`: PxAP and PIoU of maps x masks at once."""
    ev = PixelPREvaluator(taus)
    for m, g in zip(maps, masks):
        ev.process(m, g)
    return ev.evaluate()


class PixelPREvaluator:
    """Streaming PxAP / PIoU: ``reset() / process(map, mask) / evaluate()``.

    State: ``fg_hist``, ``bg_hist`` int64 [n_bins] and ``n`` (images), reduced by sum
    (``merge`` for shards), declared in :attr:`STATE`.
    """

    STATE = (
        StateSpec("fg_hist", "sum", "int64 [n_bins]: object pixels per score bin"),
        StateSpec("bg_hist", "sum", "int64 [n_bins]: background pixels per score bin"),
        StateSpec("n", "sum", "int64 []: images"),
    )

    def __init__(self, taus: Sequence[float]):
        self.taus = np.asarray(taus, dtype=np.float64)
        self.edges = bin_edges(self.taus)
        self.reset()

    def reset(self) -> None:
        n_bins = len(self.edges) - 1
        self.state: Dict[str, torch.Tensor] = {"fg_hist": torch.zeros(n_bins, dtype=torch.int64),
                                               "bg_hist": torch.zeros(n_bins, dtype=torch.int64),
                                               "n": torch.zeros((), dtype=torch.int64)}

    def process(self, score_map: np.ndarray, gt_mask: np.ndarray) -> None:
        """Add one image: a map with values in [0, 1] and its uint8 mask (1/0/255), same shape."""
        fg, bg = score_histograms(score_map, gt_mask, self.edges)
        self.state["fg_hist"] += torch.from_numpy(fg)
        self.state["bg_hist"] += torch.from_numpy(bg)
        self.state["n"] += 1

    def merge(self, other_state: Dict[str, torch.Tensor]) -> None:
        for k, v in other_state.items():
            self.state[k] += v

    def curve(self) -> PixelPR:
        return pr_from_histograms(self.state["fg_hist"].numpy(), self.state["bg_hist"].numpy(), self.edges)

    def evaluate(self) -> MaskSummary:
        pr = self.curve()
        if int(self.state["n"]) and pr.tp[-1] + pr.fn[-1] <= 0:
            log.warning("PxAP undefined: no object pixel in any mask")
        elif int(self.state["n"]) and pr.fp[-1] <= 0:
            log.warning("PxAP undefined: no background pixel in any mask (ignored or object everywhere)")
        piou, tau = piou_from_pr(pr)
        return MaskSummary(pxap_from_pr(pr), piou, tau, int(self.state["n"]))
