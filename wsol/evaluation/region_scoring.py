"""Evaluators of a run that need the whole map, not its boxes: PxAP / PIoU on masks
(:class:`MaskEvaluator`) and the pointing games (:class:`PointingEvaluator`).

Per image: the normalized 224x224 map, its GT boxes on the 224 grid and, when the dataset
has masks, the mask (read once per image by the record, ``wsol.datasets.masks``). The
pointing game uses the mask when the image has one, else the boxes; the energy-based game
uses the boxes when the image has any, else the mask (docs/protocol.md, "Pointing games").
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from wsol.datasets.base import Sample
from wsol.datasets.masks import AMBIGUOUS, FOREGROUND, ambiguity
from wsol.evaluation.evaluator import DatasetEvaluator
from wsol.evaluation.records import ScoredBatch
from wsol.metrics.mask_accuracy import PixelPREvaluator
from wsol.metrics.pointing import PointingAccumulator, boxes_region, energy_share, peak_point, pointing_hit

PER_IMAGE_COLUMNS = ["point_x", "point_y", "pointing_hit", "energy_in_gt"]

#: summary.csv columns counting ambiguous masks (wsol.datasets.masks.AMBIGUOUS), NaN without masks
MASK_COUNT_COLUMNS = tuple(f"n_masks_{k}" for k in AMBIGUOUS)

log = logging.getLogger(__name__)


class MaskEvaluator(DatasetEvaluator):
    """Streaming PxAP / PIoU on the images that have a mask (:class:`PixelPREvaluator`'s
    histograms) and the ambiguous masks met (``n_masks_<kind>``)."""

    name = "masks"
    uses_maps = True

    def __init__(self, taus: Sequence[float]):
        super().__init__()
        self.taus = np.asarray(taus, dtype=np.float64)
        self.pixel = self.add_metric(PixelPREvaluator(self.taus))
        self.add_state("mask_flags", [], "cat", "(image_id, kind) of each ambiguous mask")

    @staticmethod
    def blank() -> dict:
        """The summary columns as NaN, for a run that does not compute them."""
        return dict.fromkeys(("pxap", "piou", "piou_tau") + MASK_COUNT_COLUMNS, float("nan"))

    def process(self, batch: ScoredBatch) -> None:
        """The masked images of a batch: normalized maps against their masks on the map grid."""
        if batch.skipped:
            return
        for j, (s, m) in enumerate(zip(batch.samples, batch.maps)):
            mask = batch.mask(j, m.shape[0])
            if mask is not None:
                self.pixel.process(m, mask)
                kind = ambiguity(mask)
                if kind:
                    self.mask_flags.append((s.image_id, kind))

    def evaluate(self) -> dict:
        """pxap, piou, piou_tau and the counts of ambiguous masks."""
        ms = self.pixel.evaluate()
        return {"pxap": ms.pxap, "piou": ms.piou, "piou_tau": ms.piou_tau, **self.mask_counts()}

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

    def curves(self) -> pd.DataFrame:
        """curves.csv rows of the pixel PR curve (mode 'pixel'), thresholds 1.0 down to 0."""
        pr = self.pixel.curve()
        k = pr.thresholds <= 1.0
        return pd.DataFrame({"mode": "pixel", "tau": pr.thresholds[k], "precision": pr.precision[k],
                             "recall": pr.recall[k], "pixel_iou": pr.iou[k]})


class PointingEvaluator(DatasetEvaluator):
    """The pointing games (:class:`PointingAccumulator`) and their per-image columns: the peak
    of each map, whether it hits the object (the mask when the image has one, else its boxes,
    within ``tolerance`` pixels) and the map's energy share in the boxes (else the mask)."""

    name = "pointing"
    uses_maps = True

    def __init__(self, with_masks: bool, tolerance: float = 0.0):
        super().__init__()
        self.with_masks, self.tolerance = with_masks, float(tolerance)
        self.pointing = self.add_metric(PointingAccumulator())
        self.add_state("region_rows", [], "cat", "per-image pointing columns (dicts)", per_image=True)
        self.add_state("index", [], "cat", "int per image: position in the dataset", per_image=True)
        self.add_state("pointing_regions", set(), "union", "what the pointing game used: mask, boxes")
        self.add_state("energy_regions", set(), "union", "what the energy game used: boxes, mask")

    @staticmethod
    def blank() -> dict:
        """The summary columns as NaN (no region named), for a run that does not compute them."""
        out = dict.fromkeys(("pointing_game", "pointing_game_class_avg", "energy_pointing_game",
                             "pointing_tolerance"), float("nan"))
        out["pointing_region"] = ""
        return out

    def process(self, batch: ScoredBatch) -> None:
        """A batch: normalized maps, GT boxes on the map grid, masks where the dataset has them;
        a skipped image is a miss with no energy unless excluded."""
        if batch.skipped:
            for lab, index in zip(batch.labels, batch.indices):
                if not batch.exclude:
                    self.pointing.add(False, int(lab), 0.0)
                self.index.append(int(index))
                self.region_rows.append({"point_x": -1, "point_y": -1,
                                         "pointing_hit": np.nan if batch.exclude else False,
                                         "energy_in_gt": np.nan if batch.exclude else 0.0})
            return
        for j, (s, m, g) in enumerate(zip(batch.samples, batch.maps, batch.gts)):
            self.index.append(int(batch.indices[j]))
            self.region_rows.append(self._point(s, m, g, batch.mask(j, m.shape[0]) if self.with_masks else None))

    def _point(self, s: Sample, m: np.ndarray, g: np.ndarray, mask: Optional[np.ndarray]) -> dict:
        box_region = boxes_region(g, m.shape) if len(g) else None
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
        return row

    def evaluate(self) -> dict:
        """The pointing games and the rules they used."""
        ps = self.pointing.summary()
        return {"pointing_game": ps.pointing_game, "pointing_game_class_avg": ps.pointing_game_class_avg,
                "energy_pointing_game": ps.energy_pointing_game,
                "pointing_region": "+".join(sorted(self.pointing_regions)), "pointing_tolerance": self.tolerance}

    def per_image(self) -> pd.DataFrame:
        """The per-image columns, indexed by dataset position."""
        return pd.DataFrame(self.region_rows, columns=PER_IMAGE_COLUMNS, index=pd.Index(self.index))
