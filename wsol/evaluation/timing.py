"""Per-stage timer (after detectron2's inference_on_dataset): data, forward, cam, localize,
metrics, total. On CUDA each stage is closed with a synchronize so times are honest; the
first ``warmup`` batches are excluded from rates."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Tuple

import numpy as np
import pandas as pd
import torch

STAGES = ("data", "forward", "cam", "localize", "metrics", "total")


@dataclass
class StageRecord:
    seconds: List[float] = field(default_factory=list)
    images: List[int] = field(default_factory=list)


class StageTimer:
    """Collect per-batch seconds per stage. ``with timer.stage('forward', n_images): ...``"""

    def __init__(self, device: str | torch.device = "cpu", warmup: int = 1):
        self.device = torch.device(device)
        self.warmup = warmup
        self.records: Dict[str, StageRecord] = {s: StageRecord() for s in STAGES}

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextmanager
    def stage(self, name: str, n_images: int) -> Iterator[None]:
        self._sync()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.add(name, time.perf_counter() - t0, n_images)

    def add(self, name: str, seconds: float, n_images: int) -> None:
        rec = self.records.setdefault(name, StageRecord())
        rec.seconds.append(float(seconds))
        rec.images.append(int(n_images))

    def rows(self) -> List[dict]:
        """One row per stage: seconds (all batches), images, images_per_s and median batch
        ms computed over the batches after the warm-up (all batches if there are too few)."""
        out = []
        for name in STAGES + tuple(k for k in self.records if k not in STAGES):
            rec = self.records.get(name)
            if rec is None or not rec.seconds:
                continue
            s, n = np.asarray(rec.seconds), np.asarray(rec.images)
            k = self.warmup if len(s) > self.warmup else 0
            rate = float(n[k:].sum() / s[k:].sum()) if s[k:].sum() > 0 else float("nan")
            out.append({"stage": name, "seconds": float(s.sum()), "images": int(n.sum()),
                        "images_per_s": rate, "median_batch_ms": float(np.median(s[k:]) * 1000),
                        "batches": int(len(s)), "warmup_batches": int(k)})
        return out

    def images_per_s(self) -> float:
        for r in self.rows():
            if r["stage"] == "total":
                return r["images_per_s"]
        return float("nan")


def reduce_timings(per_rank: List[pd.DataFrame]) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """Per-rank timings -> (timings summed over ranks as :mod:`wsol.engine.distributed`
    documents, all ranks' rows with a ``rank`` column)."""
    frames = [df.assign(rank=r) for r, df in enumerate(per_rank) if df is not None and len(df)]
    if not frames:
        return pd.DataFrame(), pd.DataFrame()
    allr = pd.concat(frames, ignore_index=True)
    rows = []
    for stage, g in allr.groupby("stage", sort=False):
        if stage == "wall":
            continue
        rows.append({"stage": stage, "seconds": float(g.seconds.sum()), "images": int(g.images.sum()),
                     "images_per_s": float(g.images_per_s.sum()),
                     "median_batch_ms": float(np.median(g.median_batch_ms)),
                     "batches": int(g.batches.sum()), "warmup_batches": int(g.warmup_batches.sum())})
    out = pd.DataFrame(rows)
    out["ranks"] = len(per_rank)
    return out, allr
