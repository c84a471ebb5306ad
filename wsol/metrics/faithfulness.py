"""Faithfulness of a map to the classifier (docs/protocol.md, "Faithfulness"): pure arithmetic
on the class scores that the perturbed forward passes produced. Nothing here perturbs an
image or runs a model: ``wsol.evaluation.faithfulness`` does that and hands the scores in.

- Average Drop and Increase in Confidence (Chattopadhay et al. 2018, Grad-CAM++): with Y the
  class's softmax score on the image and O on the image multiplied by the normalized map,
  ``drop = max(0, Y - O) / Y`` and ``increase = [O > Y]``, both averaged over images (in %).
- Deletion and insertion (Petsiuk et al. 2018, RISE): the class's softmax score after each of
  the steps that remove (deletion) or reveal (insertion) the positions in the map's order;
  the area under that curve by the trapezoidal rule on the fraction axis [0, 1].
- ROAD (Rong et al. 2022): the class's softmax score (and top-1 hit) after removing a fraction
  of the pixels most relevant first (MoRF) or least relevant first (LeRF) with noisy linear
  imputation, at each fraction; the combined score is ``mean over fractions of (LeRF - MoRF) / 2``
  (higher: the map separates what matters from what does not).

Each metric is a streaming evaluator (``reset`` / ``process`` / ``evaluate``, state declared with
its reduction as in ``wsol.metrics.state``) with a functional twin that runs the same update
and compute on whole arrays.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from wsol.metrics.state import StateSpec

#: the faithfulness metrics by name (``--faithfulness``)
FAITHFULNESS_METRICS = ("avg_drop", "deletion", "insertion", "road")
#: what the removed positions are replaced by in deletion / insertion
BASELINES = ("zeros", "blur", "mean")
#: ROAD's removal fractions in percent (Rong et al. 2022's figures; pytorch-grad-cam's list)
ROAD_PERCENTILES = (10, 20, 30, 40, 50, 60, 70, 80, 90)


# ---------------------------------------------------------------- arithmetic
def confidence_change(original: np.ndarray, masked: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per image: (drop = max(0, Y - O) / Y, increase = O > Y) from the original scores Y and the
    masked-image scores O (float64; a zero original score gives drop 0)."""
    y = np.asarray(original, dtype=np.float64)
    o = np.asarray(masked, dtype=np.float64)
    safe = np.where(y > 0, y, 1.0)
    drop = np.where(y > 0, np.maximum(0.0, y - o) / safe, 0.0)
    return drop, o > y


def perturbation_counts(n_positions: int, steps: int) -> np.ndarray:
    """How many positions are perturbed at each point of a curve: 0, s, 2s, ... and finally all
    ``n_positions``, with ``s = ceil(n_positions / steps)`` (RISE's fixed step; the last step may
    be shorter, and with ``steps`` not dividing the positions there can be fewer points)."""
    if n_positions < 1 or steps < 1:
        raise ValueError(f"need n_positions >= 1 and steps >= 1, got {n_positions}, {steps}")
    s = math.ceil(n_positions / steps)
    return np.array(list(range(0, n_positions, s)) + [n_positions], dtype=np.int64)


def curve_auc(fractions: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """Trapezoidal area under each curve (rows of ``curves`` [B, K]) on ``fractions`` [K]."""
    f = np.asarray(fractions, dtype=np.float64)
    c = np.asarray(curves, dtype=np.float64)
    return ((c[:, 1:] + c[:, :-1]) * 0.5 * np.diff(f)[None, :]).sum(axis=1)


def road_combined(morf: np.ndarray, lerf: np.ndarray) -> np.ndarray:
    """Per image: mean over fractions of (LeRF - MoRF) / 2 (rows [B, P])."""
    return ((np.asarray(lerf, np.float64) - np.asarray(morf, np.float64)) / 2).mean(axis=1)


def removal_count(n_positions: int, percent: float) -> int:
    """Positions removed at ``percent`` % (rounded half to even, as Python's round)."""
    return int(round(n_positions * percent / 100.0))


# ---------------------------------------------------------------- evaluators
def _zeros(n: int) -> torch.Tensor:
    return torch.zeros(n, dtype=torch.float64)


class ConfidenceEvaluator:
    """Streaming Average Drop and Increase in Confidence."""

    STATE = (
        StateSpec("conf_drop_sum", "sum", "sum over images of max(0, Y - O) / Y"),
        StateSpec("conf_increase_count", "sum", "images with O > Y"),
        StateSpec("conf_n", "sum", "images"),
    )

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.state: Dict[str, object] = {"conf_drop_sum": 0.0, "conf_increase_count": 0, "conf_n": 0}

    def process(self, original: np.ndarray, masked: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Add a batch; returns the per-image (drop, increase)."""
        drop, inc = confidence_change(original, masked)
        self.state["conf_drop_sum"] += float(drop.sum())
        self.state["conf_increase_count"] += int(inc.sum())
        self.state["conf_n"] += int(len(drop))
        return drop, inc

    def evaluate(self) -> Dict[str, float]:
        """avg_drop and increase_in_confidence in % (NaN without images)."""
        n = self.state["conf_n"]
        if n == 0:
            return {"avg_drop": float("nan"), "increase_in_confidence": float("nan")}
        return {"avg_drop": 100.0 * self.state["conf_drop_sum"] / n,
                "increase_in_confidence": 100.0 * self.state["conf_increase_count"] / n}


class CurveEvaluator:
    """Streaming deletion or insertion: the mean curve and the mean area under it.

    ``kind`` ('deletion' or 'insertion') prefixes the state names; ``fractions`` [K] are the
    perturbed shares at the curve's points (0 first, 1 last). They may be set later (they
    depend on the input size): until then the curve sum is None, which a merge skips."""

    def __init__(self, kind: str, fractions: Optional[Sequence[float]] = None) -> None:
        self.kind = kind
        self.fractions = None if fractions is None else np.asarray(fractions, dtype=np.float64)
        self.STATE = (
            StateSpec(f"{kind}_curve_sum", "sum", "float64 [K]: sum of the curves (None before any)"),
            StateSpec(f"{kind}_auc_sum", "sum", "sum of the areas"),
            StateSpec(f"{kind}_n", "sum", "images"),
        )
        self.reset()

    def reset(self) -> None:
        k = self.kind
        start = None if self.fractions is None else _zeros(len(self.fractions))
        self.state: Dict[str, object] = {f"{k}_curve_sum": start, f"{k}_auc_sum": 0.0, f"{k}_n": 0}

    def process(self, curves: np.ndarray) -> np.ndarray:
        """Add a batch of curves [B, K] (class scores at each point); returns the per-image areas."""
        if self.fractions is None:
            raise ValueError(f"{self.kind}: the curve's fractions are not set")
        c = np.asarray(curves, dtype=np.float64).reshape(-1, len(self.fractions))
        auc = curve_auc(self.fractions, c)
        k = self.kind
        total = self.state[f"{k}_curve_sum"]
        total = _zeros(len(self.fractions)) if total is None else total
        self.state[f"{k}_curve_sum"] = total + torch.from_numpy(c.sum(axis=0))
        self.state[f"{k}_auc_sum"] += float(auc.sum())
        self.state[f"{k}_n"] += int(len(c))
        return auc

    def evaluate(self) -> Dict[str, object]:
        """``<kind>_auc`` (mean area) and ``<kind>_curve`` (mean curve, numpy [K])."""
        k, n = self.kind, self.state[f"{self.kind}_n"]
        if n == 0:
            size = 0 if self.fractions is None else len(self.fractions)
            return {f"{k}_auc": float("nan"), f"{k}_curve": np.full(size, np.nan)}
        return {f"{k}_auc": self.state[f"{k}_auc_sum"] / n,
                f"{k}_curve": self.state[f"{k}_curve_sum"].numpy() / n}


class RoadEvaluator:
    """Streaming ROAD: mean MoRF / LeRF class scores and top-1 accuracies per removal fraction,
    and the combined score."""

    STATE = (
        StateSpec("road_morf_sum", "sum", "float64 [P]: sum of MoRF scores per fraction"),
        StateSpec("road_lerf_sum", "sum", "float64 [P]: sum of LeRF scores per fraction"),
        StateSpec("road_morf_hits", "sum", "float64 [P]: MoRF top-1 hits per fraction"),
        StateSpec("road_lerf_hits", "sum", "float64 [P]: LeRF top-1 hits per fraction"),
        StateSpec("road_n", "sum", "images"),
    )

    def __init__(self, percentiles: Sequence[float] = ROAD_PERCENTILES) -> None:
        self.percentiles = np.asarray(percentiles, dtype=np.float64)
        self.reset()

    def reset(self) -> None:
        p = len(self.percentiles)
        self.state: Dict[str, object] = {"road_morf_sum": _zeros(p), "road_lerf_sum": _zeros(p),
                                         "road_morf_hits": _zeros(p), "road_lerf_hits": _zeros(p), "road_n": 0}

    def process(self, morf: np.ndarray, lerf: np.ndarray, morf_hit: np.ndarray, lerf_hit: np.ndarray
                ) -> np.ndarray:
        """Add a batch: scores and top-1 hits [B, P] after MoRF / LeRF removal; returns the
        per-image combined scores."""
        arrays = {"road_morf_sum": morf, "road_lerf_sum": lerf, "road_morf_hits": morf_hit,
                  "road_lerf_hits": lerf_hit}
        for name, a in arrays.items():
            a = np.asarray(a, dtype=np.float64).reshape(-1, len(self.percentiles))
            self.state[name] = self.state[name] + torch.from_numpy(a.sum(axis=0))
        self.state["road_n"] += int(np.shape(morf)[0])
        return road_combined(morf, lerf)

    def evaluate(self) -> Dict[str, object]:
        """road_morf, road_lerf (mean scores over fractions and images), road_combined,
        road_morf_acc / road_lerf_acc (% top-1 over fractions and images), and the per-fraction
        means (numpy [P]) as ``road_*_curve``."""
        n = self.state["road_n"]
        names = ("road_morf", "road_lerf", "road_morf_acc", "road_lerf_acc")
        if n == 0:
            out: Dict[str, object] = {k: float("nan") for k in names + ("road_combined",)}
            out.update({f"{k}_curve": np.full(len(self.percentiles), np.nan) for k in names})
            return out
        curves = {"road_morf": self.state["road_morf_sum"].numpy() / n,
                  "road_lerf": self.state["road_lerf_sum"].numpy() / n,
                  "road_morf_acc": 100.0 * self.state["road_morf_hits"].numpy() / n,
                  "road_lerf_acc": 100.0 * self.state["road_lerf_hits"].numpy() / n}
        out = {k: float(v.mean()) for k, v in curves.items()}
        out["road_combined"] = float(((curves["road_lerf"] - curves["road_morf"]) / 2).mean())
        out.update({f"{k}_curve": v for k, v in curves.items()})
        return out


# ---------------------------------------------------------------- functional twins
def average_drop(original: np.ndarray, masked: np.ndarray) -> Dict[str, float]:
    """Functional twin of :class:`ConfidenceEvaluator`: avg_drop and increase_in_confidence (%)."""
    ev = ConfidenceEvaluator()
    ev.process(original, masked)
    return ev.evaluate()


def deletion_insertion_auc(kind: str, fractions: Sequence[float], curves: np.ndarray) -> Dict[str, object]:
    """Functional twin of :class:`CurveEvaluator`: the mean area and mean curve."""
    ev = CurveEvaluator(kind, fractions)
    ev.process(curves)
    return ev.evaluate()


def road_scores(morf: np.ndarray, lerf: np.ndarray, morf_hit: np.ndarray, lerf_hit: np.ndarray,
                percentiles: Sequence[float] = ROAD_PERCENTILES) -> Dict[str, object]:
    """Functional twin of :class:`RoadEvaluator`."""
    ev = RoadEvaluator(percentiles)
    ev.process(morf, lerf, morf_hit, lerf_hit)
    return ev.evaluate()
