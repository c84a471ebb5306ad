"""BoxAcc, MaxBoxAcc (V1), MaxBoxAccV2, Top-1/Top-5/GT-known Loc (docs/protocol.md, Accuracies).

Structure after pycocotools/torchmetrics: per-image matching happens upstream
(``wsol.localize.image``); here hit counts accumulate densely in one tensor with named
axes ``[mode, iou_threshold, tau]`` (reduced by sum, so shards add up), and every summary
number is a slice of it. Each metric also has a pure-function twin operating on per-image
IoU arrays.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from wsol.localize.boxes import MODES

IOU_THRESHOLDS = (30, 50, 70)  # percent, compared as iou >= t / 100 (wsolevaluation)
LOC_MODE = "largest"          # Top-1/Top-5/GT-known Loc and MaxBoxAcc (V1) use the largest box
V2_MODE = "all"


# ---------------------------------------------------------------- functional twins
def box_accuracy(ious: np.ndarray, iou_thresholds: Sequence[int] = IOU_THRESHOLDS) -> np.ndarray:
    """BoxAcc in percent: ious [N, n_tau] -> [n_iou, n_tau] share of images with IoU >= δ."""
    ious = np.asarray(ious, dtype=np.float64)
    hits = np.stack([(ious >= t / 100).sum(axis=0) for t in iou_thresholds])
    return hits * 100.0 / max(len(ious), 1)


def max_box_acc(ious: np.ndarray, iou_threshold: int = 50) -> float:
    """MaxBoxAcc(δ) = max over τ of BoxAcc(τ, δ), percent."""
    return float(box_accuracy(ious, [iou_threshold])[0].max())


def max_box_acc_v2(ious_all_contours: np.ndarray, iou_thresholds: Sequence[int] = IOU_THRESHOLDS) -> float:
    """MaxBoxAccV2 = mean over δ in {30, 50, 70} of MaxBoxAcc(δ), with all-contours IoUs."""
    return float(box_accuracy(ious_all_contours, iou_thresholds).max(axis=1).mean())


def loc_accuracy(ious_largest: np.ndarray, correct: np.ndarray, tau_index: int, iou_threshold: int = 50) -> float:
    """Top-k Loc at τ index: share of images with IoU >= δ and the GT class among the top-k."""
    ok = (np.asarray(ious_largest)[:, tau_index] >= iou_threshold / 100) & np.asarray(correct, bool)
    return float(ok.sum() * 100.0 / max(len(ok), 1))


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

    State is flat in the number of images: hit counts ``hits[mode, iou_threshold, tau]``,
    Top-k hit counts per τ, IoU sums per τ and classification counts, all int64/float64
    tensors reduced by sum (``state_dict`` / ``merge`` for shards).
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

    def process(self, ious: np.ndarray, top1_correct: np.ndarray, top5_correct: np.ndarray) -> None:
        """Add a batch: ious float [B, n_modes, n_tau]; top-k correctness bool [B]."""
        ious_t = torch.as_tensor(np.asarray(ious, dtype=np.float64))
        if ious_t.ndim != 3 or ious_t.shape[1:] != (len(MODES), len(self.taus)):
            raise ValueError(f"ious must be [B, {len(MODES)}, {len(self.taus)}], got {tuple(ious_t.shape)}")
        t1 = torch.as_tensor(np.asarray(top1_correct, dtype=bool))
        t5 = torch.as_tensor(np.asarray(top5_correct, dtype=bool))
        thr = torch.tensor([t / 100 for t in self.iou_thresholds], dtype=torch.float64)
        s = self.state
        s["hits"] += (ious_t[:, :, None, :] >= thr[None, None, :, None]).sum(0)
        loc = ious_t[:, MODES.index(LOC_MODE)] >= 0.5
        s["top1_hits"] += (loc & t1[:, None]).sum(0)
        s["top5_hits"] += (loc & t5[:, None]).sum(0)
        s["iou_sum"] += ious_t.sum(0)
        s["n"] += len(ious_t)
        s["top1_cls"] += t1.sum()
        s["top5_cls"] += t5.sum()

    def merge(self, other_state: Dict[str, torch.Tensor]) -> None:
        """Add another evaluator's state (shards reduce by sum)."""
        for k, v in other_state.items():
            self.state[k] += v

    def curves(self) -> Dict[str, np.ndarray]:
        """BoxAcc in percent per mode: {mode: [n_iou, n_tau]}."""
        n = max(int(self.state["n"]), 1)
        acc = self.state["hits"].double().numpy() * 100.0 / n
        return {m: acc[i] for i, m in enumerate(MODES)}

    def loc_tau_index(self) -> int:
        """Index of the τ maximizing BoxAcc(τ, IoU 0.5) in the largest-box mode (first on ties)."""
        return int(np.argmax(self.curves()[LOC_MODE][self.iou_thresholds.index(50)]))

    def evaluate(self) -> LocSummary:
        s = self.state
        n = int(s["n"])
        d = max(n, 1)
        curves = self.curves()
        i50 = self.iou_thresholds.index(50)
        li = self.loc_tau_index()
        fi = self.fixed_index
        v2 = curves[V2_MODE]
        per_iou = {t: (float(v2[k].max()), float(self.taus[int(np.argmax(v2[k]))]))
                   for k, t in enumerate(self.iou_thresholds)}

        def pct(x) -> float:
            return float(x) * 100.0 / d

        def get(t, j):
            return per_iou.get(t, (float("nan"), float("nan")))[j]

        return LocSummary(
            n_images=n,
            top1_cls=pct(s["top1_cls"]),
            top5_cls=pct(s["top5_cls"]),
            gt_known_loc=float(curves[LOC_MODE][i50, li]),
            top1_loc=pct(s["top1_hits"][li]),
            top5_loc=pct(s["top5_hits"][li]),
            loc_tau=float(self.taus[li]),
            fixed_tau=float(self.taus[fi]),
            gt_known_loc_fixed=float(curves[LOC_MODE][i50, fi]),
            top1_loc_fixed=pct(s["top1_hits"][fi]),
            top5_loc_fixed=pct(s["top5_hits"][fi]),
            maxboxacc=float(curves[LOC_MODE][i50].max()),
            maxboxacc_v2=float(np.mean([v[0] for v in per_iou.values()])),
            maxboxacc_iou30=get(30, 0),
            maxboxacc_iou50=get(50, 0),
            maxboxacc_iou70=get(70, 0),
            tau_iou30=get(30, 1),
            tau_iou50=get(50, 1),
            tau_iou70=get(70, 1),
            mean_iou=float(s["iou_sum"][MODES.index(LOC_MODE), li]) * 100.0 / d,
        )


def summarize_arrays(taus: Sequence[float], ious: np.ndarray, top1_correct, top5_correct,
                     fixed_tau: float = 0.2) -> LocSummary:
    """Functional twin of the evaluator: the whole summary from per-image arrays at once."""
    ev = BoxAccEvaluator(taus, fixed_tau=fixed_tau)
    ev.process(ious, top1_correct, top5_correct)
    return ev.evaluate()
