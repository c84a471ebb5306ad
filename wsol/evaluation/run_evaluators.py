"""The evaluators of a run, put together in one place for ``wsol evaluate``, ``wsol score`` and
the threshold policy's selection runs: boxes always; masks and pointing where the protocol
scores whole maps (masks only when the dataset has them); faithfulness when asked. The
summary columns of the evaluators a run does not have are NaN, so every run's summary.csv
has the same columns."""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from wsol.evaluation.box_evaluator import BoxEvaluator
from wsol.evaluation.evaluator import DatasetEvaluator, DatasetEvaluators
from wsol.evaluation.faithfulness import FaithfulnessEvaluator, FaithfulnessOptions
from wsol.evaluation.region_scoring import MaskEvaluator, PointingEvaluator


def run_evaluators(taus: Sequence[float], fixed_tau: float, *, box_dtype=np.uint8, has_predictions: bool = True,
                   predictions=None, has_boxes: bool = True, fair_taus: Optional[Sequence[float]] = None,
                   region: bool = True, has_masks: bool = False, pointing_tolerance: float = 0.0,
                   faithfulness: Optional[FaithfulnessOptions] = None) -> DatasetEvaluators:
    """The composite evaluator of a run (``region``: the protocol has the whole-map scores)."""
    evaluators: List[DatasetEvaluator] = [BoxEvaluator(taus, fixed_tau, has_predictions, box_dtype, fair_taus,
                                                       predictions, has_boxes)]
    blanks: dict = {}
    if region and has_masks:
        evaluators.append(MaskEvaluator(taus))
    else:
        blanks.update(MaskEvaluator.blank())
    if region:
        evaluators.append(PointingEvaluator(has_masks, pointing_tolerance))
    else:
        blanks.update(PointingEvaluator.blank())
    if faithfulness is not None:
        evaluators.append(FaithfulnessEvaluator(faithfulness))
    return DatasetEvaluators(evaluators, blanks)
