"""Splitting a split: a per-class held-out part (``wsol train --holdout``, the holdout
threshold policy's ``--tau-holdout``)."""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

from wsol.datasets.base import Sample
from wsol.errors import WsolError


def split_holdout(samples: Sequence[Sample], fraction: float, seed: int) -> Tuple[List[Sample], List[Sample]]:
    """(train, held-out): ``round(fraction * n_c)`` images of each class c held out (at least
    one when fraction > 0 and the class has two or more), chosen with ``seed``; order kept."""
    if not 0 <= fraction < 1:
        raise WsolError(f"--holdout must be in [0, 1), got {fraction}")
    if fraction == 0:
        return list(samples), []
    rng = np.random.default_rng([seed, 7919])
    by_class: Dict[int, List[int]] = {}
    for i, s in enumerate(samples):
        by_class.setdefault(s.label, []).append(i)
    held = set()
    for c in sorted(by_class):
        idx = by_class[c]
        k = min(max(1, int(round(fraction * len(idx)))), len(idx) - 1)
        if k > 0:
            held.update(rng.choice(idx, size=k, replace=False).tolist())
    return ([s for i, s in enumerate(samples) if i not in held],
            [s for i, s in enumerate(samples) if i in held])
