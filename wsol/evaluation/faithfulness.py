"""The faithfulness evaluator (docs/protocol.md, "Faithfulness"): runs the perturbed forward
passes of a batch on the model's device and hands the class scores to the metrics of
:mod:`wsol.metrics.faithfulness`.

The run's own forward pass gives the original scores (the unperturbed end of every curve);
each perturbation step is one batched forward over the batch (a 20-step deletion curve is 20
extra passes per batch, not per image). Deletion's last point and insertion's first are the
same all-baseline input when both use the same baseline, and it is then run once. The class
is the image's label (the class the map was computed for).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import torch

from wsol.errors import WsolError
from wsol.evaluation.evaluator import DatasetEvaluator
from wsol.evaluation.records import ForwardBatch, ScoredBatch
from wsol.evaluation import perturbation as P
from wsol.localize.maps import postprocess_batch
from wsol.metrics.faithfulness import (BASELINES, FAITHFULNESS_METRICS, ROAD_PERCENTILES, ConfidenceEvaluator,
                                       CurveEvaluator, RoadEvaluator, perturbation_counts, removal_count)

#: (class score [B], top-1 hit [B]) of a batch of model inputs
ScoreFn = Callable[[torch.Tensor], Tuple[np.ndarray, np.ndarray]]

PER_IMAGE_COLUMNS = ("class_score", "masked_score", "conf_drop", "conf_increase", "deletion_auc", "insertion_auc",
                     "road_morf", "road_lerf", "road_combined")


def parse_metrics(text: Optional[str]) -> Tuple[str, ...]:
    """``"deletion,insertion"`` -> ('deletion', 'insertion'); ``all`` -> every metric; an unknown
    name is a one-line error listing the valid ones."""
    if text is None or str(text).strip() == "":
        return ()
    names = [t.strip() for t in str(text).split(",") if t.strip()]
    if names == ["all"]:
        return FAITHFULNESS_METRICS
    bad = [n for n in names if n not in FAITHFULNESS_METRICS]
    if bad:
        raise WsolError(f"unknown faithfulness metric {bad[0]!r}; choose from {', '.join(FAITHFULNESS_METRICS)} or all")
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class FaithfulnessOptions:
    """What to measure and how; every field is recorded in summary.csv."""

    metrics: Tuple[str, ...]
    steps: int = 20
    patch: int = 1
    deletion_baseline: str = "zeros"
    insertion_baseline: str = "blur"
    road_percentiles: Tuple[float, ...] = ROAD_PERCENTILES
    road_noise: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        for name, value in (("deletion_baseline", self.deletion_baseline),
                            ("insertion_baseline", self.insertion_baseline)):
            if value not in BASELINES:
                raise WsolError(f"{name} must be one of {', '.join(BASELINES)}, got {value!r}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, (int, np.integer)) or self.steps < 1:
            raise WsolError(f"faithfulness_steps must be an integer >= 1, got {self.steps!r}")
        if isinstance(self.patch, bool) or not isinstance(self.patch, (int, np.integer)) or self.patch < 1:
            raise WsolError(f"faithfulness_patch must be an integer >= 1, got {self.patch!r}")
        if not (np.isfinite(self.road_noise) and self.road_noise >= 0):
            raise WsolError(f"road_noise must be a number >= 0, got {self.road_noise!r}")

    def record(self) -> Dict[str, object]:
        """The summary.csv columns that say how the metrics were computed."""
        out: Dict[str, object] = {"faithfulness": ",".join(self.metrics), "faithfulness_class": "label"}
        if "deletion" in self.metrics or "insertion" in self.metrics:
            out.update(faithfulness_steps=self.steps, faithfulness_patch=self.patch)
        if "deletion" in self.metrics:
            out["deletion_baseline"] = self.deletion_baseline
        if "insertion" in self.metrics:
            out["insertion_baseline"] = self.insertion_baseline
        if "road" in self.metrics:
            out.update(road_percentiles=" ".join(f"{p:g}" for p in self.road_percentiles),
                       road_noise=self.road_noise, road_imputation="noisy_linear")
        return out


@dataclass
class _Batch:
    """One batch's inputs to the perturbations."""

    images: torch.Tensor      # [B, C, H, W] model inputs, on the model's device
    maps: torch.Tensor        # [B, H, W] normalized maps, same device
    original: np.ndarray      # [B] class score on the unperturbed image
    positions: Sequence[int]  # dataset positions (ROAD's noise seeds)
    ranks: Dict[int, torch.Tensor] = field(default_factory=dict)

    def ranks_for(self, patch: int) -> torch.Tensor:
        if patch not in self.ranks:
            self.ranks[patch] = P.position_ranks(self.maps, patch)
        return self.ranks[patch]


class FaithfulnessEvaluator(DatasetEvaluator):
    """Streaming faithfulness state for the chosen metrics, plus one row per image.

    It works on the model's inputs (:meth:`process_forward`, right after the forward pass);
    :meth:`process` only records the skipped images. Its state is declared: the per-image
    rows with their dataset positions, the metrics' sums, and the number of perturbable
    positions of the inputs (which sets the deletion/insertion fractions; a union, so a shard
    without images takes it from the others)."""

    name = "faithfulness"
    uses_forward = True

    def __init__(self, options: FaithfulnessOptions):
        super().__init__()
        self.options = options
        self.confidence = self.add_metric(ConfidenceEvaluator()) if "avg_drop" in options.metrics else None
        self.curve_evs: Dict[str, CurveEvaluator] = {k: self.add_metric(CurveEvaluator(k)) for k in self._curve_kinds()}
        self.road = self.add_metric(RoadEvaluator(options.road_percentiles)) if "road" in options.metrics else None
        self.add_state("faith_rows", [], "cat", "per-image faithfulness columns (dicts)", per_image=True)
        self.add_state("index", [], "cat", "int per image: position in the dataset", per_image=True)
        self.add_state("curve_positions", set(), "union", "perturbable positions of an input (one value)")

    # ------------------------------------------------------------ declared state
    def _curve_kinds(self) -> List[str]:
        return [k for k in ("deletion", "insertion") if k in self.options.metrics]

    @property
    def counts(self) -> np.ndarray:
        """Positions perturbed at each point of the curves."""
        return perturbation_counts(next(iter(self.curve_positions)), self.options.steps)

    def _set_fractions(self, n_positions: Optional[int] = None) -> None:
        """The curves' fractions from the inputs' perturbable positions (once known)."""
        if n_positions is not None:
            self.curve_positions.add(int(n_positions))
        if len(self.curve_positions) > 1:
            raise WsolError(f"faithfulness: inputs of different sizes ({sorted(self.curve_positions)} positions)")
        if self.curve_positions:
            n = next(iter(self.curve_positions))
            for ev in self.curve_evs.values():
                if ev.fractions is None:
                    ev.fractions = self.counts / n

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._set_fractions()

    def reset(self) -> None:
        super().reset()
        for ev in self.curve_evs.values():
            ev.fractions = None
            ev.reset()

    # ------------------------------------------------------------ update
    def process_forward(self, batch: ForwardBatch) -> None:
        """A batch after the run's forward pass: the perturbed passes on the normalized maps."""
        h, w = batch.images.shape[-2:]
        maps = torch.from_numpy(normalized_maps(batch.cams, h, w)).to(batch.images.device, torch.float32)
        lab = batch.labels.to(batch.images.device)
        original = torch.softmax(torch.from_numpy(np.asarray(batch.logits, np.float32)), dim=1)
        original = original.gather(1, lab.cpu().view(-1, 1)).squeeze(1).double().numpy()
        self.perturb(class_scorer(batch.logits_fn, lab), batch.images, maps, original, batch.positions)

    def process(self, batch: ScoredBatch) -> None:
        """Images that could not be scored: a row of NaN each, left out of every mean."""
        if batch.skipped:
            for index in batch.indices:
                self.index.append(int(index))
                self.faith_rows.append({})

    def perturb(self, score: ScoreFn, images: torch.Tensor, maps: torch.Tensor, original: np.ndarray,
                positions: Sequence[int]) -> None:
        """A batch: model inputs and normalized maps [B, H, W] on the model's device, the class
        scores of the run's own forward pass, the images' dataset positions."""
        if len(images) == 0:
            return
        b = _Batch(images, maps.to(images.device), np.asarray(original, dtype=np.float64), list(positions))
        rows: List[dict] = [{"class_score": float(s)} for s in b.original]
        if self.confidence is not None:
            masked, _ = score(P.masked_by_map(b.images, b.maps))
            drop, inc = self.confidence.process(b.original, masked)
            for r, m, d, c in zip(rows, masked, drop, inc):
                r.update(masked_score=float(m), conf_drop=100.0 * float(d), conf_increase=bool(c))
        if self.curve_evs:
            self._process_curves(score, b, rows)
        if self.road is not None:
            self._process_road(score, b, rows)
        self.index.extend(int(i) for i in b.positions)
        self.faith_rows.extend(rows)

    def _process_curves(self, score: ScoreFn, b: _Batch, rows: List[dict]) -> None:
        o = self.options
        h, w = b.images.shape[-2:]
        P.check_patch(o.patch, h, w)
        self._set_fractions((h // o.patch) * (w // o.patch))
        ranks = b.ranks_for(o.patch)
        base = {k: P.make_baseline(b.images, getattr(o, f"{k}_baseline")) for k in self.curve_evs}
        counts = self.counts
        last = len(counts) - 1
        curves = {k: np.zeros((len(b.images), len(counts))) for k in self.curve_evs}
        shared = None  # the all-baseline input, when deletion and insertion share a baseline
        if "deletion" in curves:
            curves["deletion"][:, 0] = b.original
            for j in range(1, len(counts)):
                top = P.top_mask(ranks, int(counts[j]), h, w, o.patch)
                curves["deletion"][:, j] = score(P.blend(b.images, base["deletion"], top))[0]
            shared = curves["deletion"][:, last] if o.deletion_baseline == o.insertion_baseline else None
        if "insertion" in curves:
            curves["insertion"][:, last] = b.original
            for j in range(0, last):
                if j == 0 and shared is not None:
                    curves["insertion"][:, 0] = shared
                    continue
                top = P.top_mask(ranks, int(counts[j]), h, w, o.patch)
                curves["insertion"][:, j] = score(P.blend(b.images, base["insertion"], ~top))[0]
        for k, c in curves.items():
            auc = self.curve_evs[k].process(c)
            for r, a in zip(rows, auc):
                r[f"{k}_auc"] = float(a)

    def _process_road(self, score: ScoreFn, b: _Batch, rows: List[dict]) -> None:
        o = self.options
        n, (h, w) = len(b.images), b.images.shape[-2:]
        ranks = b.ranks_for(1)
        gens = [torch.Generator().manual_seed(int(o.seed) * 1_000_003 + int(i)) for i in b.positions]
        res = {k: np.zeros((n, len(o.road_percentiles))) for k in ("morf", "lerf", "morf_hit", "lerf_hit")}
        for order in ("morf", "lerf"):
            for j, pct in enumerate(o.road_percentiles):
                k = removal_count(h * w, pct)
                rem = P.top_mask(ranks, k, h, w) if order == "morf" else P.bottom_mask(ranks, k, h, w)
                imputed = torch.stack([P.noisy_linear_imputation(b.images[i], rem[i, 0], o.road_noise, gens[i])
                                       for i in range(n)])
                res[order][:, j], res[f"{order}_hit"][:, j] = score(imputed)
        combined = self.road.process(res["morf"], res["lerf"], res["morf_hit"], res["lerf_hit"])
        for i, r in enumerate(rows):
            r.update(road_morf=float(res["morf"][i].mean()), road_lerf=float(res["lerf"][i].mean()),
                     road_combined=float(combined[i]))

    # ------------------------------------------------------------ compute
    def evaluate(self) -> dict:
        """The metrics' numbers and the options they were computed with."""
        out: dict = dict(self.options.record())
        if self.confidence is not None:
            out.update(self.confidence.evaluate())
        for k, ev in self.curve_evs.items():
            out[f"{k}_auc"] = ev.evaluate()[f"{k}_auc"]
        if self.road is not None:
            out.update({k: v for k, v in self.road.evaluate().items() if not k.endswith("_curve")})
        out["n_faithfulness"] = sum(1 for r in self.faith_rows if "class_score" in r)
        return out

    def per_image(self) -> pd.DataFrame:
        """The per-image columns of the chosen metrics, indexed by dataset position."""
        cols = [c for c in PER_IMAGE_COLUMNS if any(c in r for r in self.faith_rows)] or ["class_score"]
        return pd.DataFrame([{c: r.get(c, np.nan) for c in cols} for r in self.faith_rows], columns=cols,
                            index=pd.Index(self.index))

    def curves(self) -> Optional[pd.DataFrame]:
        """curves.csv rows: mode deletion / insertion (fraction, mean class score) and
        road_morf / road_lerf (fraction removed, mean class score, top-1 accuracy %)."""
        parts = []
        for k, ev in self.curve_evs.items():
            if ev.fractions is not None:
                parts.append(pd.DataFrame({"mode": k, "fraction": ev.fractions, "score": ev.evaluate()[f"{k}_curve"]}))
        if self.road is not None:
            r = self.road.evaluate()
            for k in ("road_morf", "road_lerf"):
                parts.append(pd.DataFrame({"mode": k, "fraction": np.asarray(self.options.road_percentiles) / 100.0,
                                           "score": r[f"{k}_curve"], "accuracy": r[f"{k}_acc_curve"]}))
        return pd.concat(parts, ignore_index=True) if parts else None


def class_scorer(forward: Callable[[torch.Tensor], torch.Tensor], labels: torch.Tensor) -> ScoreFn:
    """A :data:`ScoreFn` from ``forward(batch) -> logits``: the labels' softmax scores and whether
    each label is the top-1 class."""
    def score(batch: torch.Tensor) -> Tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            logits = forward(batch).float()
        probs = torch.softmax(logits, dim=1).gather(1, labels.view(-1, 1)).squeeze(1)
        return probs.double().cpu().numpy(), (logits.argmax(dim=1) == labels).cpu().numpy()
    return score


def normalized_maps(cams: np.ndarray, height: int, width: int) -> np.ndarray:
    """Raw maps [B, h, w] -> the run's normalized maps at the input size (the very maps that are
    scored: bicubic upsample, then min-max; wsol.localize.maps)."""
    if height != width:
        raise WsolError(f"faithfulness needs square model inputs, got {height}x{width}")
    return postprocess_batch(cams, height)
