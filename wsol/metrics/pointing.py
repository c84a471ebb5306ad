"""The pointing game and the energy-based pointing game (docs/protocol.md, "Pointing games").

- Pointing game (Zhang et al. 2016; TorchRay's implementation): the map's maximum (the first
  in row-major order on ties, ``numpy.argmax``) is a hit when an object pixel lies within
  ``tolerance`` pixels (Euclidean, on the map grid) of it; tolerance 0 = on the object.
  Accuracy overall and averaged over classes (mean of the per-class accuracies).
- Energy-based pointing game (Wang et al., Score-CAM 2020): the share of the map's mass
  ``sum(map * region) / sum(map)`` inside the object region (0 for an all-zero map).

The object region is a bool array on the map grid: GT boxes filled (inclusive corners) or
a mask's object pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

import numpy as np

from wsol.metrics.state import StateSpec


def peak_point(score_map: np.ndarray) -> Tuple[int, int]:
    """(x, y) of the map's maximum, first in row-major order on ties."""
    y, x = np.unravel_index(int(np.argmax(score_map)), np.shape(score_map))
    return int(x), int(y)


def boxes_region(boxes: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    """Bool [H, W]: the union of boxes x0, y0, x1, y1 (inclusive, clipped to the grid)."""
    region = np.zeros(shape, bool)
    h, w = shape
    for x0, y0, x1, y1 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        x0, y0 = max(int(x0), 0), max(int(y0), 0)
        x1, y1 = min(int(x1), w - 1), min(int(y1), h - 1)
        if x1 >= x0 and y1 >= y0:
            region[y0:y1 + 1, x0:x1 + 1] = True
    return region


def pointing_hit(point: Tuple[int, int], region: np.ndarray, tolerance: float = 0.0) -> bool:
    """True when an object pixel of ``region`` lies within ``tolerance`` pixels of ``point``."""
    x, y = point
    if tolerance <= 0:
        return bool(region[y, x])
    r = int(np.floor(tolerance))
    h, w = region.shape
    y0, y1, x0, x1 = max(y - r, 0), min(y + r, h - 1), max(x - r, 0), min(x + r, w - 1)
    yy, xx = np.mgrid[y0:y1 + 1, x0:x1 + 1]
    disk = (yy - y) ** 2 + (xx - x) ** 2 <= tolerance ** 2
    return bool((region[y0:y1 + 1, x0:x1 + 1] & disk).any())


def energy_share(score_map: np.ndarray, region: np.ndarray) -> float:
    """Share of the map's mass inside ``region`` (float64 sums; 0 when the map sums to 0)."""
    m = np.asarray(score_map, dtype=np.float64)
    total = m.sum()
    return float(m[region].sum() / total) if total > 0 else 0.0


@dataclass
class PointingSummary:
    """Percentages: pointing game overall and class-averaged; mean energy share."""

    pointing_game: float
    pointing_game_class_avg: float
    energy_pointing_game: float
    n_pointing_images: int


def pointing_summary(hits: Sequence[bool], labels: Sequence[int], energies: Sequence[float]) -> PointingSummary:
    """Functional twin of :class:`PointingAccumulator`."""
    acc = PointingAccumulator()
    for h, lab, e in zip(hits, labels, energies):
        acc.add(bool(h), int(lab), float(e))
    return acc.summary()


class PointingAccumulator:
    """Streaming pointing-game counts: hits and images per class, energy sum (flat in images),
    declared in :attr:`STATE` (class -> count dicts add key by key)."""

    STATE = (
        StateSpec("pointing_hits", "sum", "class -> pointing hits"),
        StateSpec("pointing_count", "sum", "class -> images pointed at"),
        StateSpec("energy_sum", "sum", "sum of the energy shares"),
    )

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.hits: Dict[int, int] = {}
        self.count: Dict[int, int] = {}
        self.energy_sum = 0.0

    @property
    def state(self) -> Dict[str, object]:
        return {"pointing_hits": self.hits, "pointing_count": self.count, "energy_sum": self.energy_sum}

    @state.setter
    def state(self, value: Dict[str, object]) -> None:
        self.hits, self.count = dict(value["pointing_hits"]), dict(value["pointing_count"])
        self.energy_sum = value["energy_sum"]

    def add(self, hit: bool, label: int, energy: float) -> None:
        self.hits[label] = self.hits.get(label, 0) + int(hit)
        self.count[label] = self.count.get(label, 0) + 1
        self.energy_sum += float(energy)

    def summary(self) -> PointingSummary:
        n = sum(self.count.values())
        if n == 0:
            nan = float("nan")
            return PointingSummary(nan, nan, nan, 0)
        per_class = [self.hits[c] / self.count[c] for c in sorted(self.count)]
        return PointingSummary(100.0 * sum(self.hits.values()) / n, 100.0 * float(np.mean(per_class)),
                               100.0 * self.energy_sum / n, n)
