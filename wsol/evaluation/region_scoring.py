"""Scores of a run that need the whole map, not its boxes: PxAP / PIoU on masks and the
pointing games. One self-contained object the evaluate/score loops feed beside RunScorer.

Per image: the normalized 224x224 map, its GT boxes on the 224 grid and, when the dataset
has masks, the mask (loaded here, ``wsol.datasets.masks``). The pointing game uses the mask
when the image has one, else the boxes; the energy-based game uses the boxes when the image
has any, else the mask (docs/protocol.md, "Pointing games").
"""
from __future__ import annotations

import logging
from typing import List, Optional, Sequence

import numpy as np
import pandas as pd

from wsol.datasets.base import Sample
from wsol.datasets.masks import AMBIGUOUS, FOREGROUND, ambiguity, load_gt_mask
from wsol.metrics.mask_accuracy import PixelPREvaluator
from wsol.metrics.state import StateSpec
from wsol.metrics.pointing import PointingAccumulator, boxes_region, energy_share, peak_point, pointing_hit

PER_IMAGE_COLUMNS = ["point_x", "point_y", "pointing_hit", "energy_in_gt"]

#: summary.csv columns counting ambiguous masks (wsol.datasets.masks.AMBIGUOUS), NaN without masks
MASK_COUNT_COLUMNS = tuple(f"n_masks_{k}" for k in AMBIGUOUS)

log = logging.getLogger(__name__)


class RegionScorer:
    """Streaming PxAP/PIoU (when ``with_masks``) and pointing-game state plus per-image rows.

    Its state is declared in :attr:`STATE` with each reduction (``wsol.metrics.state``)."""

    STATE = (
        StateSpec("region_rows", "cat", "per-image pointing columns (dicts)"),
        StateSpec("pixel", "sum", "PixelPREvaluator state (histograms), None without masks"),
        StateSpec("pointing_hits", "sum", "class -> pointing hits"),
        StateSpec("pointing_count", "sum", "class -> images pointed at"),
        StateSpec("energy_sum", "sum", "sum of the energy shares"),
        StateSpec("pointing_regions", "union", "what the pointing game used: mask, boxes"),
        StateSpec("energy_regions", "union", "what the energy game used: boxes, mask"),
        StateSpec("mask_flags", "cat", "(image_id, kind) of each ambiguous mask"),
    )

    def __init__(self, taus: Sequence[float], with_masks: bool, tolerance: float = 0.0):
        self.taus = np.asarray(taus, dtype=np.float64)
        self.with_masks = with_masks
        self.tolerance = float(tolerance)
        self.pixel = PixelPREvaluator(self.taus) if with_masks else None
        self.pointing = PointingAccumulator()
        self.rows: List[dict] = []
        self.pointing_regions: set = set()
        self.energy_regions: set = set()
        self.mask_flags: List[tuple] = []

    def add(self, samples: Sequence[Sample], maps: np.ndarray, gt_boxes: Sequence[np.ndarray]) -> None:
        """A batch: samples, normalized maps [B, 224, 224], GT boxes already on the map grid."""
        for s, m, g in zip(samples, maps, gt_boxes):
            shape = m.shape
            mask = load_gt_mask(s.mask, shape[0]) if (self.with_masks and s.mask is not None) else None
            if mask is not None:
                self.pixel.process(m, mask)
                kind = ambiguity(mask)
                if kind:
                    self.mask_flags.append((s.image_id, kind))
            box_region = boxes_region(g, shape) if len(g) else None
            point_region = (mask == FOREGROUND) if mask is not None else box_region
            energy_region = box_region if box_region is not None else (
                (mask == FOREGROUND) if mask is not None else None)
            x, y = peak_point(m)
            row = {"point_x": x, "point_y": y, "pointing_hit": np.nan, "energy_in_gt": np.nan}
            if point_region is not None and energy_region is not None:
                hit = pointing_hit((x, y), point_region, self.tolerance)
                energy = energy_share(m, energy_region)
                self.pointing.add(hit, int(s.label), energy)
                self.pointing_regions.add("mask" if mask is not None else "boxes")
                self.energy_regions.add("boxes" if box_region is not None else "mask")
                row.update(pointing_hit=hit, energy_in_gt=energy)
            self.rows.append(row)

    def add_skipped(self, label: int, exclude: bool = False) -> None:
        """An image that could not be scored: a pointing miss with no energy unless ``exclude``."""
        if not exclude:
            self.pointing.add(False, int(label), 0.0)
        self.rows.append({"point_x": -1, "point_y": -1, "pointing_hit": np.nan if exclude else False,
                          "energy_in_gt": np.nan if exclude else 0.0})

    def summary(self) -> dict:
        """pxap, piou, piou_tau (masks only), the pointing games and the rules they used."""
        out: dict = {k: float("nan") for k in ("pxap", "piou", "piou_tau")}
        if self.pixel is not None:
            ms = self.pixel.evaluate()
            out.update(pxap=ms.pxap, piou=ms.piou, piou_tau=ms.piou_tau, **self.mask_counts())
        ps = self.pointing.summary()
        out.update(dict.fromkeys(MASK_COUNT_COLUMNS, float("nan")) if self.pixel is None else {})
        out.update(pointing_game=ps.pointing_game, pointing_game_class_avg=ps.pointing_game_class_avg,
                   energy_pointing_game=ps.energy_pointing_game,
                   pointing_region="+".join(sorted(self.pointing_regions)),
                   pointing_tolerance=self.tolerance)
        return out

    def mask_counts(self) -> dict:
        """n_masks_<kind> for each kind of ambiguous mask; each kind found is named in a warning."""
        out = {}
        for kind, what in AMBIGUOUS.items():
            ids = [i for i, k in self.mask_flags if k == kind]
            out[f"n_masks_{kind}"] = len(ids)
            if ids:
                more = f" and {len(ids) - 3} more" if len(ids) > 3 else ""
                log.warning("%d mask(s) with %s: %s%s", len(ids), what, ", ".join(ids[:3]), more)
        return out

    def state_dict(self) -> dict:
        """The whole state, keyed as :attr:`STATE`."""
        return {"region_rows": self.rows, "pixel": self.pixel.state if self.pixel is not None else None,
                "pointing_hits": self.pointing.hits, "pointing_count": self.pointing.count,
                "energy_sum": self.pointing.energy_sum, "pointing_regions": self.pointing_regions,
                "energy_regions": self.energy_regions, "mask_flags": self.mask_flags}

    def load_state_dict(self, state: dict, order: Optional[Sequence[int]] = None) -> None:
        """Replace the state; ``order``: the permutation that puts the rows in dataset order."""
        rows = state["region_rows"]
        self.rows = [rows[k] for k in order] if order is not None else list(rows)
        if self.pixel is not None and state["pixel"] is not None:
            self.pixel.state = state["pixel"]
        self.pointing.hits, self.pointing.count = dict(state["pointing_hits"]), dict(state["pointing_count"])
        self.pointing.energy_sum = state["energy_sum"]
        self.pointing_regions, self.energy_regions = set(state["pointing_regions"]), set(state["energy_regions"])
        self.mask_flags = list(state.get("mask_flags", []))

    def per_image(self) -> pd.DataFrame:
        """The per-image columns, in the order images were added."""
        return pd.DataFrame(self.rows, columns=PER_IMAGE_COLUMNS)

    def curves(self) -> Optional[pd.DataFrame]:
        """curves.csv rows of the pixel PR curve (mode 'pixel'), thresholds 1.0 down to 0."""
        if self.pixel is None:
            return None
        pr = self.pixel.curve()
        k = pr.thresholds <= 1.0
        return pd.DataFrame({"mode": "pixel", "tau": pr.thresholds[k], "precision": pr.precision[k],
                             "recall": pr.recall[k], "pixel_iou": pr.iou[k]})


#: summary.csv columns that come from boxes (NaN for a dataset without any box, e.g. OpenImages)
BOX_METRICS = ("gt_known_loc", "top1_loc", "top5_loc", "loc_tau", "gt_known_loc_fixed", "top1_loc_fixed",
               "top5_loc_fixed", "maxboxacc", "maxboxacc_v2", "maxboxacc_iou30", "maxboxacc_iou50",
               "maxboxacc_iou70", "tau_iou30", "tau_iou50", "tau_iou70", "mean_iou")


#: summary.csv columns of this module (NaN where not computed, e.g. protocol cam2016)
REGION_METRICS = ("pxap", "piou", "piou_tau", "pointing_game", "pointing_game_class_avg", "energy_pointing_game")


def blank_region_metrics(numbers: dict) -> None:
    """Add this module's summary columns as NaN (a run that did not compute them)."""
    for k in REGION_METRICS + MASK_COUNT_COLUMNS + ("pointing_tolerance",):
        numbers.setdefault(k, float("nan"))
    numbers.setdefault("pointing_region", "")


def blank_box_metrics(numbers: dict) -> None:
    """Set the box metrics of a summary to NaN (the dataset has masks but no boxes)."""
    for k in BOX_METRICS:
        if k in numbers:
            numbers[k] = float("nan")


def attach(summary: dict, per_image: pd.DataFrame, curves: pd.DataFrame, region: "RegionScorer"
           ) -> tuple:
    """Merge a RegionScorer's numbers, per-image columns (before status/reason) and curve rows
    into a run's tables."""
    summary = {**summary, **region.summary()}
    extra = region.per_image()
    if len(per_image) and len(per_image) == len(extra):
        tail = [c for c in ("status", "reason") if c in per_image.columns]
        base = per_image.reset_index(drop=True)
        per_image = pd.concat([base.drop(columns=tail), extra, base[tail]], axis=1)
    c = region.curves()
    if c is not None:
        curves = pd.concat([curves, c], ignore_index=True)
    return summary, per_image, curves
