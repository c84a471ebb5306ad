"""Threshold policies: which τ the Loc numbers are reported at (docs/protocol.md, Threshold
policies).

Every policy picks one index of the τ grid from a BoxAcc(τ, IoU 0.5) curve in the
largest-box mode, or from the user:

- ``test_best``: the τ that maximizes BoxAcc on the *test* boxes themselves (what
  MaxBoxAcc does; an optimistic, test-set-tuned choice);
- ``fixed``: a τ given in advance (``--fixed-tau``), the grid value nearest to it;
- ``holdout``: the τ maximizing BoxAcc on a held-out split with real boxes (wsolevaluation's
  ``train-fullsup`` metadata, or a fraction of the dataset's train split);
- ``pseudo_boxes``: the τ maximizing BoxAcc on pseudo-boxes (boxes nobody annotated by hand,
  e.g. from a detector), given as a wsolevaluation metadata folder.

Pure functions over arrays; the engine computes the selection curve and hands it in.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from wsol.errors import WsolError

POLICIES = ("test_best", "fixed", "holdout", "pseudo_boxes")
SELECTION_POLICIES = ("holdout", "pseudo_boxes")  # those that need a selection set
GIVEN_BOXES = "given_boxes"  # boxes scored as they come: no τ at all

RULES = {
    "test_best": "argmax_tau BoxAcc(tau, IoU 0.5, largest box) on the test boxes",
    "fixed": "the fixed tau given in advance (nearest grid value)",
    "holdout": "argmax_tau BoxAcc(tau, IoU 0.5, largest box) on a held-out split with boxes",
    "pseudo_boxes": "argmax_tau BoxAcc(tau, IoU 0.5, largest box) on pseudo-boxes",
    GIVEN_BOXES: "no threshold: the given boxes are scored as they are",
}


@dataclass
class ThresholdChoice:
    """The τ a policy chose: its name, the grid index and value, where the choice came from
    (a folder, 'test boxes', ...) and how many images it was made on (0 for ``fixed``)."""

    policy: str
    index: int
    tau: float
    source: str
    n_images: int


def check_policy(policy: str, source: Optional[str] = None, holdout: Optional[float] = None) -> None:
    """A one-line error for an unknown policy or a selection policy without its data."""
    if policy not in POLICIES:
        raise WsolError(f"tau_policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    if policy == "pseudo_boxes" and not source:
        raise WsolError("tau_policy pseudo_boxes needs --tau-source METADATA_DIR (the pseudo-boxes, "
                        "wsolevaluation layout)")
    if policy == "holdout" and not source and not holdout:
        raise WsolError("tau_policy holdout needs --tau-source METADATA_DIR (e.g. wsolevaluation's "
                        "train-fullsup) or --tau-holdout FRACTION (of the dataset's train split)")
    if policy not in SELECTION_POLICIES and (source or holdout):
        raise WsolError(f"--tau-source / --tau-holdout only apply to tau_policy holdout or pseudo_boxes, "
                        f"not {policy!r}")


def best_index(box_acc: Sequence[float]) -> int:
    """Index of the largest BoxAcc (the first on ties, as numpy.argmax)."""
    a = np.asarray(box_acc, dtype=np.float64)
    if a.size == 0:
        raise WsolError("no thresholds to choose from")
    return int(np.argmax(a))


def nearest_index(taus: Sequence[float], tau: float) -> int:
    """Index of the grid τ nearest to ``tau`` (the lower one on ties)."""
    return int(np.argmin(np.abs(np.asarray(taus, dtype=np.float64) - float(tau))))


def choose_tau(policy: str, taus: Sequence[float], test_curve: Sequence[float], fixed_tau: float = 0.2,
               selection_curve: Optional[Sequence[float]] = None, source: str = "",
               n_selection: int = 0, n_test: int = 0) -> ThresholdChoice:
    """The τ of ``policy``: ``test_curve`` / ``selection_curve`` are BoxAcc(τ, IoU 0.5) in
    the largest-box mode on the test set and on the selection set (holdout, pseudo_boxes)."""
    taus = np.asarray(taus, dtype=np.float64)
    if policy == "test_best":
        k, src, n = best_index(test_curve), "test boxes", n_test
    elif policy == "fixed":
        k, src, n = nearest_index(taus, fixed_tau), f"fixed {fixed_tau:g}", 0
    elif policy in SELECTION_POLICIES:
        if selection_curve is None:
            raise WsolError(f"tau_policy {policy} needs a selection set")
        if len(selection_curve) != len(taus):
            raise WsolError(f"selection curve has {len(selection_curve)} thresholds, the grid {len(taus)}")
        k, src, n = best_index(selection_curve), source, n_selection
    else:
        check_policy(policy)
        raise AssertionError(policy)  # check_policy raised
    return ThresholdChoice(policy, k, float(taus[k]), src, int(n))
