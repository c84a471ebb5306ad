"""What the inference loop hands to evaluators: one record per finished batch
(:class:`ScoredBatch`, for :meth:`~wsol.evaluation.evaluator.DatasetEvaluator.process`) and,
for evaluators that perturb the model's inputs, one right after the forward pass
(:class:`ForwardBatch`, for ``process_forward``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from wsol.datasets.base import Sample
from wsol.datasets.masks import load_gt_mask
from wsol.localize.image import ImageLocalization


@dataclass
class ScoredBatch:
    """A batch's images as scored: their localizations, class predictions, maps and ground truth.

    A batch of images that could not be read has ``reasons`` (one per image) and nothing to
    score: ``locs``, ``maps`` and ``gts`` are empty; ``exclude`` says whether they leave the
    denominators (``--exclude-skipped``) or count as misses.
    """

    image_ids: List[str]
    labels: np.ndarray                      # int64 [B]
    indices: List[int]                      # positions in the whole dataset
    locs: Sequence[ImageLocalization] = ()
    top5: Optional[np.ndarray] = None       # int [B, k] predicted classes, best first; None: no predictions
    status: Optional[List[str]] = None      # 'ok' or why the map was replaced by zeros
    samples: Sequence[Sample] = ()
    maps: Optional[Sequence[np.ndarray]] = None  # normalized maps on the map grid (when kept)
    gts: Sequence[np.ndarray] = ()          # ground-truth boxes on the protocol's grid
    reasons: Optional[List[str]] = None     # set: these images were skipped, and why
    exclude: bool = False
    _masks: Dict[int, Optional[np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def skipped(self) -> bool:
        return self.reasons is not None

    def __len__(self) -> int:
        return len(self.image_ids)

    def mask(self, j: int, size: int) -> Optional[np.ndarray]:
        """Image ``j``'s ground-truth mask at ``size`` x ``size`` (None without one), read once
        for every evaluator that asks."""
        if j not in self._masks:
            s = self.samples[j]
            self._masks[j] = load_gt_mask(s.mask, size) if s.mask is not None else None
        return self._masks[j]

    @classmethod
    def skipped_images(cls, samples: Sequence[Sample], indices: Sequence[int], reasons: Sequence[str],
                       exclude: bool) -> "ScoredBatch":
        """The record of images that could not be read."""
        return cls([s.image_id for s in samples], np.asarray([s.label for s in samples], dtype=np.int64),
                   list(indices), samples=list(samples), reasons=list(reasons), exclude=exclude)


@dataclass
class ForwardBatch:
    """A batch right after its forward pass, readable images only: inputs and labels on the
    model's device, the raw maps and logits (numpy), dataset positions, and ``logits_fn``
    (batch -> logits through the run's own forward path) for perturbed passes."""

    images: torch.Tensor
    labels: torch.Tensor
    cams: np.ndarray
    logits: np.ndarray
    positions: List[int]
    logits_fn: Callable[[torch.Tensor], torch.Tensor]
