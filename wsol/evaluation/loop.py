"""The inference loop, after detectron2's ``inference_on_dataset``: built objects in (runner,
loader, evaluator, localizer, timer), no config; the evaluator holds the results. The runner
is the model or heatmap files (:mod:`wsol.evaluation.runners`), so ``wsol evaluate`` and
``wsol score`` go through the same loop.

:func:`inference_context` puts a backbone in evaluation mode without parameter gradients
(and channels_last when asked) and gives it back exactly as it came in. :class:`Localizer`
runs the protocol's localization inline or in a process pool, overlapped with the next
batch's forward pass, and hands results back in submission order.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Deque, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm

from wsol.datasets.base import Sample
from wsol.evaluation.evaluator import DatasetEvaluator
from wsol.evaluation.records import ForwardBatch, ScoredBatch
from wsol.evaluation.timing import StageTimer
from wsol.errors import DataError
from wsol.localize.protocols import Protocol

log = logging.getLogger(__name__)


@contextmanager
def inference_context(backbone: torch.nn.Module, channels_last: bool = False) -> Iterator[torch.nn.Module]:
    """Evaluation mode, no parameter gradients, optionally channels_last memory format, for
    the duration; on exit the module's train/eval mode, every parameter's requires_grad and
    every 4-d tensor's memory format are as they were."""
    was_training = backbone.training
    grads = [(p, p.requires_grad) for p in backbone.parameters()]
    tensors = list(backbone.parameters()) + list(backbone.buffers())
    contiguous = [(t, t.is_contiguous()) for t in tensors if t.dim() == 4]
    try:
        backbone.eval()
        for p, _ in grads:
            p.requires_grad_(False)
        if channels_last:
            backbone.to(memory_format=torch.channels_last)
        yield backbone
    finally:
        if channels_last:
            for t, was in contiguous:
                if was and not t.is_contiguous():
                    t.data = t.data.contiguous()
        for p, flag in grads:
            p.requires_grad_(flag)
        backbone.train(was_training)


def _localize_job(protocol: Protocol, cams, gts: List[np.ndarray], sizes: List[Tuple[int, int]],
                  taus: np.ndarray, sweep: str, keep_maps: bool, normalized: bool = False):
    """Worker-pool job: raw maps -> (localizations, normalized maps or None, seconds);
    ``normalized``: the maps are already normalized on the 224 grid (heatmap files), kept as they are."""
    t0 = time.perf_counter()
    if normalized:
        locs, maps = protocol.localize_maps(cams, gts, taus, sweep), (cams if keep_maps else None)
    else:
        locs, maps = protocol.localize(cams, gts, sizes, taus, sweep, keep_maps)
    return locs, maps, time.perf_counter() - t0


class Localizer:
    """Raw maps -> per-image localizations under ``protocol`` at ``taus`` with ``sweep``,
    inline (``workers=0``) or in ``workers`` processes with at most ``2 * workers`` batches
    in flight. ``keep_maps``: also return the normalized maps (for ``--save-cams``)."""

    def __init__(self, protocol: Protocol, taus: np.ndarray, sweep: str = "fast", workers: int = 0,
                 keep_maps: bool = False):
        self.protocol, self.taus, self.sweep = protocol, np.asarray(taus), sweep
        self.workers, self.keep_maps = int(workers), keep_maps
        self.pool: Optional[ProcessPoolExecutor] = ProcessPoolExecutor(self.workers) if self.workers > 0 else None
        self.pending: Deque[Tuple[Future, object]] = deque()

    def submit(self, cams, gts: List[np.ndarray], sizes: List[Tuple[int, int]], tag: object,
               normalized: bool = False) -> None:
        """Queue a batch of raw maps (``normalized``: of normalized maps); ``tag`` comes back
        with its result."""
        args = (self.protocol, cams, gts, sizes, self.taus, self.sweep, self.keep_maps, normalized)
        if self.pool is None:
            fut: Future = Future()
            fut.set_result(_localize_job(*args))
        else:
            fut = self.pool.submit(_localize_job, *args)
        self.pending.append((fut, tag))

    def ready(self, drain: bool = False) -> Iterator[Tuple[tuple, object]]:
        """Finished batches in submission order: ((locs, maps, seconds), tag). Without
        ``drain`` it waits only while too many batches are in flight."""
        while self.pending and (drain or self.pool is None or self.pending[0][0].done()
                                or len(self.pending) > 2 * self.workers):
            fut, tag = self.pending.popleft()
            yield fut.result(), tag

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None


@dataclass
class LoopStats:
    """What the loop counted besides the evaluator's state."""

    n_images: int
    n_nonfinite: int
    wall: float
    size_notes: List[str] = field(default_factory=list)  # images whose real size differs from the annotation

    @property
    def n_size_mismatch(self) -> int:
        return len(self.size_notes)


def box_frame_sizes(samples: List[Sample], real: List[Tuple[int, int]]) -> Tuple[List[Tuple[int, int]], List[str]]:
    """The size each sample's boxes are scaled by, and a note per image whose real size differs
    from its annotation's.

    The annotated size wins where there is one: boxes and sizes come from the same
    annotation (wsolevaluation scales by image_sizes.txt, not by the file), and ``wsol score``
    has no image to look at (``docs/protocol.md``, "Image sizes").
    """
    out, notes = [], []
    for s, (w, h) in zip(samples, real):
        if s.width > 0 and s.height > 0:
            if (w, h) != (s.width, s.height):
                notes.append(f"{s.image_id}: annotated {s.width}x{s.height}, image is {w}x{h}")
            out.append((s.width, s.height))
        else:
            out.append((w, h))
    return out, notes


def warn_size_mismatch(notes: List[str]) -> None:
    """One warning for all the images whose real size differs from the annotated one."""
    if notes:
        log.warning("%d image(s) differ in size from their annotation (e.g. %s); their boxes were scaled by "
                    "the annotated size (n_size_mismatch in summary.csv; `wsol check-data` lists them)",
                    len(notes), notes[0])


@dataclass
class LoopOptions:
    """How the loop treats what it meets: ``on_error`` 'fail' raises on an unreadable image,
    'skip' records it (a miss, or left out of the denominators with ``exclude_skipped``);
    ``save_maps(image_ids, maps)`` receives the normalized maps when the localizer keeps them;
    a progress bar named ``desc``."""

    on_error: str = "fail"
    exclude_skipped: bool = False
    save_maps: Optional[Callable[[Sequence[str], Sequence[np.ndarray]], None]] = None
    progress: bool = False
    desc: str = ""


def inference_on_dataset(runner, loader, evaluator: DatasetEvaluator, localizer: Localizer,
                         timer: Optional[StageTimer] = None, options: Optional[LoopOptions] = None) -> LoopStats:
    """Run every batch of ``loader`` through ``runner`` (the model, or heatmap files:
    :mod:`wsol.evaluation.runners`), localize the maps with ``localizer`` and hand each finished
    batch to ``evaluator``; stage times go to ``timer``.

    ``loader.dataset`` has ``samples`` and ``positions`` (each sample's place in the whole
    dataset) and yields (data, label, index, (width, height), error).
    """
    loop = _Loop(runner, loader, evaluator, localizer, timer or StageTimer(runner.device), options or LoopOptions())
    bar = tqdm(total=len(loop.view), desc=loop.opts.desc, unit="img", disable=not loop.opts.progress)
    try:
        runner.prepare()
        t_start = t_data = time.perf_counter()
        for batch in loader:
            n = len(batch[2])
            t_batch = loop.batch(batch, t_data)
            loop.timer.add("total", time.perf_counter() - t_batch + loop.timer.records["data"].seconds[-1], n)
            bar.update(n)
            t_data = time.perf_counter()
        for result, tag in localizer.ready(drain=True):
            loop.record(result, tag)
    finally:
        bar.close()
        localizer.close()
    if loop.n_nonfinite:
        log.warning("%d image(s) had non-finite logits or maps: scored with an all-zero map "
                    "(status column of per_image.csv)", loop.n_nonfinite)
    warn_size_mismatch(loop.size_notes)
    return LoopStats(len(loop.view), loop.n_nonfinite, time.perf_counter() - t_start, loop.size_notes)


class _Loop:
    """The objects of one :func:`inference_on_dataset` call and what it counts."""

    def __init__(self, runner, loader, evaluator: DatasetEvaluator, localizer: Localizer, timer: StageTimer,
                 opts: LoopOptions):
        self.runner, self.loader, self.evaluator, self.localizer = runner, loader, evaluator, localizer
        self.timer, self.opts, self.view = timer, opts, loader.dataset
        self.n_nonfinite = 0
        self.size_notes: List[str] = []

    def batch(self, batch, t_data: float) -> float:
        """One loader batch: run it, hand skipped images and forward outputs over, queue the
        localization, record the batches that are done; -> when its work began."""
        data, labels, idx, sizes, errors = batch
        view, timer, opts = self.view, self.timer, self.opts
        bad = [j for j, e in enumerate(errors) if e]
        if bad and opts.on_error == "fail":
            raise DataError(errors[bad[0]] + "  (use --on-error skip to record it and go on)")
        n = len(idx)
        data = self.runner.to_device(data)
        labels_dev = labels.to(self.runner.device, non_blocking=True)
        timer.add("data", time.perf_counter() - t_data, n)
        t_batch = time.perf_counter()
        out = self.runner.run(data, labels_dev, timer, self.loader.batch_size or n)
        self.n_nonfinite += sum(s != "ok" for s in out.status)
        if bad:  # --on-error skip: each unreadable image recorded, scored as a miss (or excluded)
            self.evaluator.process(ScoredBatch.skipped_images([view.samples[idx[j]] for j in bad],
                                                              [view.positions[idx[j]] for j in bad],
                                                              [errors[j] for j in bad], opts.exclude_skipped))
        ok = [j for j in range(n) if j not in bad]
        if self.evaluator.uses_forward and ok and out.logits is not None:
            with timer.stage("faithfulness", len(ok)):
                self.evaluator.process_forward(ForwardBatch(data[ok], labels_dev[ok], out.maps[ok], out.logits[ok],
                                                            [view.positions[idx[j]] for j in ok],
                                                            self.runner.logits_fn()))
        record = _batch_record(ok, idx, labels, sizes, out, view, self.localizer.protocol)
        self.size_notes += record.size_notes
        self.localizer.submit(_take(out.maps, record.rows), record.gts, record.sizes, record, self.runner.normalized)
        for result, done in self.localizer.ready():
            self.record(result, done)
        return t_batch

    def record(self, result: tuple, rec: "BatchRecord") -> None:
        """A finished batch into the evaluator (and its maps to ``save_maps``)."""
        locs, maps, secs = result
        idx = rec.indices
        self.timer.add("localize", secs, len(idx))
        ids = [self.view.samples[i].image_id for i in idx]
        if maps is not None and self.opts.save_maps is not None:
            self.opts.save_maps(ids, maps)
        t0 = time.perf_counter()
        self.evaluator.process(ScoredBatch(ids, rec.labels, [self.view.positions[i] for i in idx], locs, rec.top5,
                                           rec.status, rec.samples, maps, rec.gts))
        self.timer.add("metrics", time.perf_counter() - t0, len(idx))


def _take(maps: Sequence[np.ndarray], rows: List[int]):
    """The maps of ``rows``: an array's rows, or a list's items."""
    return [maps[j] for j in rows] if isinstance(maps, list) else maps[rows]


@dataclass
class BatchRecord:
    """What the loop keeps of a batch's scored images while their maps are localized."""

    rows: List[int]                   # positions in the batch (skipped images left out)
    indices: List[int]                # their indices in the loader's view
    labels: np.ndarray
    top5: Optional[np.ndarray]        # None: the runner knows no classes
    status: List[str]                 # 'ok' or why the map is all zeros
    samples: List[Sample]
    gts: List[np.ndarray]             # ground-truth boxes in the protocol's frame
    sizes: List[Tuple[int, int]]      # the frame the boxes were annotated in
    size_notes: List[str] = field(default_factory=list)


def _batch_record(rows: List[int], idx, labels: torch.Tensor, sizes, out, view, protocol: Protocol) -> BatchRecord:
    """The record of a batch's readable images (ground truth in the protocol's frame)."""
    smp = [view.samples[idx[j]] for j in rows]
    size_ok, notes = box_frame_sizes(smp, [sizes[j] for j in rows])
    gts = [protocol.gt_boxes(s.boxes, wh) for s, wh in zip(smp, size_ok)]
    top5 = out.top5[rows] if out.top5 is not None else None
    return BatchRecord(rows, [idx[j] for j in rows], labels.numpy()[rows], top5, [out.status[j] for j in rows],
                       smp, gts, size_ok, notes)
