"""BoxAcc, MaxBoxAcc (V1), MaxBoxAccV2, Top-1/Top-5/GT-known Loc (docs/protocol.md, Accuracies).

Structure after pycocotools/torchmetrics: per-image matching happens upstream
(``wsol.localize.image``); here hit counts accumulate densely in one tensor with named
axes ``[mode, iou_threshold, tau]`` (reduced by sum, so shards add up), and every summary
number is a slice of it. Each metric also has a pure-function twin operating on per-image
IoU arrays.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Sequence

import numpy as np
import torch

from wsol.localize.boxes import MODES
from wsol.metrics.state import StateSpec, merge_states

IOU_THRESHOLDS = (30, 50, 70)  # percent, compared as iou >= t / 100 (wsolevaluation)
LOC_MODE = "largest"          # Top-1/Top-5/GT-known Loc and MaxBoxAcc (V1) use the largest box
V2_MODE = "all"


# ---------------------------------------------------------------- update and compute
# One update (counts of one batch) and one compute (percentages) shared by the streaming
# evaluator and its functional twins, so the two cannot drift apart.

def hit_counts(ious: torch.Tensor, iou_thresholds: Sequence[int] = IOU_THRESHOLDS) -> torch.Tensor:
    """update: ious float64 [N, ..., n_tau] -> int64 [..., n_iou, n_tau], images with IoU >= δ."""
    thr = torch.tensor([t / 100 for t in iou_thresholds], dtype=torch.float64)
    return (ious.unsqueeze(-2) >= thr.view(-1, 1)).sum(0)


def loc_hits(ious_largest: torch.Tensor, correct: torch.Tensor, iou_threshold: int = 50) -> torch.Tensor:
    """update: int64 [n_tau] images with IoU >= δ (largest box) *and* ``correct`` (bool [N])."""
    return ((ious_largest >= iou_threshold / 100) & correct[:, None]).sum(0)


def percent(count, n: int):
    """compute: ``count * 100 / n`` in float64 (n = 0 counts as 1)."""
    if isinstance(count, torch.Tensor):
        count = count.double().numpy() if count.ndim else float(count)
    return count * 100.0 / max(int(n), 1)


def _as_tensor(x, dtype=np.float64) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=dtype))


# ---------------------------------------------------------------- functional twins
def box_accuracy(ious: np.ndarray, iou_thresholds: Sequence[int] = IOU_THRESHOLDS) -> np.ndarray:
    """BoxAcc in percent: ious [N, n_tau] -> [n_iou, n_tau] share of images with IoU >= δ."""
    ious = np.asarray(ious, dtype=np.float64)
    return percent(hit_counts(_as_tensor(ious), iou_thresholds), len(ious))


def max_box_acc(ious: np.ndarray, iou_threshold: int = 50) -> float:
    """MaxBoxAcc(δ) = max over τ of BoxAcc(τ, δ), percent."""
    return float(box_accuracy(ious, [iou_threshold])[0].max())


def max_box_acc_v2(ious_all_contours: np.ndarray, iou_thresholds: Sequence[int] = IOU_THRESHOLDS) -> float:
    """MaxBoxAccV2 = mean over δ in {30, 50, 70} of MaxBoxAcc(δ), with all-contours IoUs."""
    return float(box_accuracy(ious_all_contours, iou_thresholds).max(axis=1).mean())


def loc_accuracy(ious_largest: np.ndarray, correct: np.ndarray, tau_index: int, iou_threshold: int = 50) -> float:
    """Top-k Loc at τ index: share of images with IoU >= δ and the GT class among the top-k."""
    ious = np.asarray(ious_largest, dtype=np.float64)
    hits = loc_hits(_as_tensor(ious), _as_tensor(correct, bool), iou_threshold)
    return float(percent(hits[tau_index], len(ious)))


# ---------------------------------------------------------------- streaming evaluator
@dataclass
class LocSummary:
    """The summary numbers of one evaluation (percentages 0-100)."""

    n_images: int
    top1_cls: float
    top5_cls: float
    gt_known_loc: float
    top1_loc: float
    top5_loc: float
    loc_tau: float
    fixed_tau: float
    gt_known_loc_fixed: float
    top1_loc_fixed: float
    top5_loc_fixed: float
    maxboxacc: float
    maxboxacc_v2: float
    maxboxacc_iou30: float
    maxboxacc_iou50: float
    maxboxacc_iou70: float
    tau_iou30: float
    tau_iou50: float
    tau_iou70: float
    mean_iou: float


class BoxAccEvaluator:
    """Streaming localization evaluator: ``reset() / process(...) / evaluate()``.

    State is flat in the number of images and declared in :attr:`STATE` (all reduced by
    sum, so shards add up): hit counts ``hits[mode, iou_threshold, tau]``, Top-k hit counts
    per τ, IoU sums per τ and classification counts. :meth:`batch_state` is the update,
    :meth:`evaluate` the compute; the functional twins above share both.
    """

    def __init__(self, taus: Sequence[float], iou_thresholds: Sequence[int] = IOU_THRESHOLDS,
                 fixed_tau: float = 0.2):
        self.taus = np.asarray(taus, dtype=np.float64)
        self.iou_thresholds = tuple(int(t) for t in iou_thresholds)
        if 50 not in self.iou_thresholds:
            raise ValueError("IoU threshold 50 is required (Loc metrics use it)")
        self.fixed_tau = float(fixed_tau)
        self.fixed_index = int(np.argmin(np.abs(self.taus - self.fixed_tau)))
        self.reset()

    STATE = (
        StateSpec("hits", "sum", "int64 [mode, iou_threshold, tau]: images with IoU >= δ"),
        StateSpec("top1_hits", "sum", "int64 [tau]: largest-box IoU >= 0.5 and top-1 correct"),
        StateSpec("top5_hits", "sum", "int64 [tau]: largest-box IoU >= 0.5 and top-5 correct"),
        StateSpec("iou_sum", "sum", "float64 [mode, tau]: sum of the images' IoUs"),
        StateSpec("n", "sum", "int64 []: images"),
        StateSpec("top1_cls", "sum", "int64 []: top-1 correct"),
        StateSpec("top5_cls", "sum", "int64 []: top-5 correct"),
    )

    def reset(self) -> None:
        n_m, n_i, n_t = len(MODES), len(self.iou_thresholds), len(self.taus)
        self.state: Dict[str, torch.Tensor] = {
            "hits": torch.zeros(n_m, n_i, n_t, dtype=torch.int64),
            "top1_hits": torch.zeros(n_t, dtype=torch.int64),
            "top5_hits": torch.zeros(n_t, dtype=torch.int64),
            "iou_sum": torch.zeros(n_m, n_t, dtype=torch.float64),
            "n": torch.zeros((), dtype=torch.int64),
            "top1_cls": torch.zeros((), dtype=torch.int64),
            "top5_cls": torch.zeros((), dtype=torch.int64),
        }

    def batch_state(self, ious: np.ndarray, top1_correct: np.ndarray, top5_correct: np.ndarray
                    ) -> Dict[str, torch.Tensor]:
        """update: the state increments of a batch (ious float [B, n_modes, n_tau]; top-k bool [B])."""
        ious_t = _as_tensor(ious)
        if ious_t.ndim != 3 or ious_t.shape[1:] != (len(MODES), len(self.taus)):
            raise ValueError(f"ious must be [B, {len(MODES)}, {len(self.taus)}], got {tuple(ious_t.shape)}")
        t1, t5 = _as_tensor(top1_correct, bool), _as_tensor(top5_correct, bool)
        loc = ious_t[:, MODES.index(LOC_MODE)]
        return {"hits": hit_counts(ious_t, self.iou_thresholds), "top1_hits": loc_hits(loc, t1),
                "top5_hits": loc_hits(loc, t5), "iou_sum": ious_t.sum(0), "n": torch.tensor(len(ious_t)),
                "top1_cls": t1.sum(), "top5_cls": t5.sum()}

    def process(self, ious: np.ndarray, top1_correct: np.ndarray, top5_correct: np.ndarray) -> None:
        """Add a batch: ious float [B, n_modes, n_tau]; top-k correctness bool [B]."""
        self.merge(self.batch_state(ious, top1_correct, top5_correct))

    def merge(self, other_state: Dict[str, torch.Tensor]) -> None:
        """Add another evaluator's (or a batch's) state by the declared reductions (all sums)."""
        self.state = merge_states(self.STATE, [self.state, other_state])

    def curves(self) -> Dict[str, np.ndarray]:
        """BoxAcc in percent per mode: {mode: [n_iou, n_tau]}."""
        acc = percent(self.state["hits"], int(self.state["n"]))
        return {m: acc[i] for i, m in enumerate(MODES)}

    def loc_tau_index(self) -> int:
        """Index of the τ maximizing BoxAcc(τ, IoU 0.5) in the largest-box mode (first on ties)."""
        return int(np.argmax(self.curves()[LOC_MODE][self.iou_thresholds.index(50)]))

    def evaluate(self) -> LocSummary:
        """compute: every summary number, each a slice of the state."""
        s = self.state
        n = int(s["n"])
        curves = self.curves()
        i50 = self.iou_thresholds.index(50)
        li = self.loc_tau_index()
        fi = self.fixed_index
        v2 = curves[V2_MODE]
        per_iou = {t: (float(v2[k].max()), float(self.taus[int(np.argmax(v2[k]))]))
                   for k, t in enumerate(self.iou_thresholds)}

        def get(t, j):
            return per_iou.get(t, (float("nan"), float("nan")))[j]

        return LocSummary(
            n_images=n,
            top1_cls=percent(s["top1_cls"], n),
            top5_cls=percent(s["top5_cls"], n),
            gt_known_loc=float(curves[LOC_MODE][i50, li]),
            top1_loc=percent(s["top1_hits"][li], n),
            top5_loc=percent(s["top5_hits"][li], n),
            loc_tau=float(self.taus[li]),
            fixed_tau=float(self.taus[fi]),
            gt_known_loc_fixed=float(curves[LOC_MODE][i50, fi]),
            top1_loc_fixed=percent(s["top1_hits"][fi], n),
            top5_loc_fixed=percent(s["top5_hits"][fi], n),
            maxboxacc=float(curves[LOC_MODE][i50].max()),
            maxboxacc_v2=float(np.mean([v[0] for v in per_iou.values()])),
            maxboxacc_iou30=get(30, 0),
            maxboxacc_iou50=get(50, 0),
            maxboxacc_iou70=get(70, 0),
            tau_iou30=get(30, 1),
            tau_iou50=get(50, 1),
            tau_iou70=get(70, 1),
            mean_iou=percent(s["iou_sum"][MODES.index(LOC_MODE), li], n),
        )


def summarize_arrays(taus: Sequence[float], ious: np.ndarray, top1_correct, top5_correct,
                     fixed_tau: float = 0.2) -> LocSummary:
    """Functional twin of the evaluator: the whole summary from per-image arrays at once."""
    ev = BoxAccEvaluator(taus, fixed_tau=fixed_tau)
    ev.process(ious, top1_correct, top5_correct)
    return ev.evaluate()


# ---------------------------------------------------------------- metrics at one τ
def metrics_at_tau(evaluator: BoxAccEvaluator, k: int) -> Dict[str, float]:
    """The Loc numbers of ``evaluator`` at τ index ``k`` (percentages), each a slice of its
    state: GT-known / Top-1 / Top-5 Loc (largest box, IoU >= 0.5), BoxAccV2 (mean over
    δ of the all-contours BoxAcc at this one τ) and mean IoU (largest box)."""
    s = evaluator.state
    n = int(s["n"])
    curves = evaluator.curves()
    i50 = evaluator.iou_thresholds.index(50)
    return {"tau": float(evaluator.taus[k]),
            "gt_known_loc": float(curves[LOC_MODE][i50, k]),
            "top1_loc": float(percent(s["top1_hits"][k], n)),
            "top5_loc": float(percent(s["top5_hits"][k], n)),
            "boxacc_v2": float(curves[V2_MODE][:, k].mean()),
            "mean_iou": float(percent(s["iou_sum"][MODES.index(LOC_MODE), k], n))}
