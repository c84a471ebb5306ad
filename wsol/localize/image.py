"""Per-image localization: normalized map + scaled GT boxes -> IoU at every τ, both modes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from wsol.localize.boxes import MODES, best_iou_per_cut
from wsol.localize.sweeps import get_sweep
from wsol.localize.maps import quantize


@dataclass
class ImageLocalization:
    """iou: float64 [len(MODES), n_tau] best IoU per mode and τ;
    boxes: int16 [len(MODES), n_tau, 4], the box achieving that IoU (first on ties);
    fair: under a protocol other than wsoleval, the wsoleval localization of the same map
    (its MaxBoxAccV2 goes in the same summary row), else None."""

    iou: np.ndarray
    boxes: np.ndarray
    fair: Optional["ImageLocalization"] = None


def localize_map(norm_map: np.ndarray, gt_boxes: np.ndarray, taus: Sequence[float],
                 sweep: str = "reference") -> ImageLocalization:
    """Quantize ``norm_map`` (in [0,1], 224x224), sweep τ, and score against ``gt_boxes``
    (already scaled to the map grid)."""
    res = get_sweep(sweep)(quantize(norm_map), taus)
    gt = np.asarray(gt_boxes).reshape(-1, 4)
    n_tau = len(taus)
    ious = np.zeros((len(MODES), n_tau), dtype=np.float64)
    boxes = np.zeros((len(MODES), n_tau, 4), dtype=np.int16)
    for mi, mode in enumerate(MODES):
        ious[mi], boxes[mi] = best_iou_per_cut(res, mode, gt)  # once per distinct cut, then per τ
    return ImageLocalization(ious, boxes)


def localize_batch(norm_maps: np.ndarray, gt_boxes: List[np.ndarray], taus: Sequence[float],
                   sweep: str = "reference") -> List[ImageLocalization]:
    """:func:`localize_map` over a batch (picklable, so a worker pool can run it)."""
    return [localize_map(m, g, taus, sweep) for m, g in zip(norm_maps, gt_boxes)]


_WARM = False


def warm_up() -> None:
    """Compile (or load from numba's disk cache) the fast sweep and IoU kernels once per
    process, on a small map, so the first real batch is not charged for it."""
    global _WARM
    if _WARM:
        return
    m = np.zeros((16, 16), np.float32)
    m[4:12, 3:9] = 1.0
    m[6:8, 5:7] = 0.5
    localize_map(m, np.array([[2, 2, 10, 10]]), np.arange(0, 1, 0.25), sweep="fast")
    _WARM = True
