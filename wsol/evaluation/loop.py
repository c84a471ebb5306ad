"""The inference loop, after detectron2's ``inference_on_dataset``: built objects in (backbone,
loader, method, localizer, scorer, timer), no config; the scorer holds the results.

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
from wsol.evaluation.faithfulness import score_batch
from wsol.evaluation.fastpath import FastPath
from wsol.evaluation.scoring import RunScorer
from wsol.evaluation.timing import StageTimer
from wsol.errors import DataError, WsolError
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


def _localize_job(protocol: Protocol, cams: np.ndarray, gts: List[np.ndarray], sizes: List[Tuple[int, int]],
                  taus: np.ndarray, sweep: str, keep_maps: bool):
    """Worker-pool job: raw maps -> (localizations, normalized maps or None, seconds)."""
    t0 = time.perf_counter()
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

    def submit(self, cams: np.ndarray, gts: List[np.ndarray], sizes: List[Tuple[int, int]], tag: object) -> None:
        """Queue a batch; ``tag`` comes back with its result."""
        args = (self.protocol, cams, gts, sizes, self.taus, self.sweep, self.keep_maps)
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
    """What the loop counted besides the scorer's state."""

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


def _forward_and_cam(runner: FastPath, method, backbone, images: torch.Tensor, labels: torch.Tensor,
                     timer: StageTimer, batch_size: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One batch through the model: (raw maps, logits, top-k classes) as numpy."""
    n, k = len(images), None
    try:
        # The trunk never builds a graph; gradient methods differentiate the head alone
        # on a leaf copy of the features (wsol.cams.gradcam.head_gradients).
        with timer.stage("forward", n), torch.no_grad(), runner.autocast():
            feats, logits = runner.forward(images)
        with timer.stage("cam", n), torch.no_grad(), runner.autocast():
            cams = method(backbone, images, feats, logits, labels)
            # Only the raw low-res maps leave the device; the exact OpenCV upsample +
            # sweep run in the CPU pool (why not on the GPU: wsol.evaluation.fastpath).
            k = min(5, logits.shape[1])
            return (cams.detach().float().cpu().numpy(), logits.detach().float().cpu().numpy(),
                    logits.detach().float().topk(k, dim=1).indices.cpu().numpy())
    except torch.cuda.OutOfMemoryError:
        raise WsolError(f"CUDA out of memory at --batch-size {batch_size}; "
                        f"try --batch-size {max(1, batch_size // 2)}") from None


def _logits_fn(runner: FastPath) -> Callable[[torch.Tensor], torch.Tensor]:
    """``batch -> logits`` through the run's forward path (its autocast included)."""
    def logits(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), runner.autocast():
            return runner.forward(x)[1]
    return logits


def _statuses(cams: np.ndarray, logits: np.ndarray) -> List[str]:
    """'ok', or why an image's map will be all zeros (non-finite map or logits)."""
    out = []
    for c, l in zip(cams, logits):
        out.append("nonfinite_map" if not np.isfinite(c).all() else
                   "nonfinite_logits" if not np.isfinite(l).all() else "ok")
    return out


def _faithfulness(scorer: RunScorer, runner, timer: StageTimer, images, labels, cams, logits, ok: List[int],
                  positions: List[int]) -> None:
    """The batch's perturbed forwards for the run's faithfulness metrics (when it has any),
    on the readable images ``ok``."""
    if scorer.faithfulness is None or not ok:
        return
    with timer.stage("faithfulness", len(ok)):
        score_batch(scorer.faithfulness, _logits_fn(runner), images[ok], labels[ok], cams[ok], logits[ok], positions)


def inference_on_dataset(backbone, loader, method, localizer: Localizer, scorer: RunScorer, timer: StageTimer,
                         runner: Optional[FastPath] = None, on_error: str = "fail", exclude_skipped: bool = False,
                         save_maps: Optional[Callable[[Sequence[str], np.ndarray], None]] = None,
                         progress: bool = False, desc: str = "") -> LoopStats:
    """Run every batch of ``loader`` through ``backbone`` and ``method``, localize the maps
    and add them to ``scorer``; stage times go to ``timer``.

    ``loader.dataset`` has ``samples`` and ``positions`` (each sample's place in the whole
    dataset, kept by the scorer) and yields (image, label, index, (width, height), error).
    ``runner`` moves batches to the device and runs the forward pass (default: plain fp32 on
    the backbone's device). ``on_error``: 'fail' raises on an unreadable image, 'skip'
    records it in the scorer. ``save_maps(image_ids, maps)`` receives the normalized maps
    when the localizer keeps them. The caller holds the backbone in :func:`inference_context`.
    """
    view = loader.dataset
    if runner is None:
        runner = FastPath(None, next(backbone.parameters()).device)
        runner.prepare(backbone)
    bar = tqdm(total=len(view), desc=desc, unit="img", disable=not progress)
    n_nonfinite, t_start = 0, time.perf_counter()
    size_notes: List[str] = []
    t_data = t_start
    try:
        for images, labels, idx, sizes, errors in loader:
            bad = [j for j, e in enumerate(errors) if e]
            if bad and on_error == "fail":
                raise DataError(errors[bad[0]] + "  (use --on-error skip to record it and go on)")
            n = len(idx)
            images = runner.to_device(images)
            labels_dev = labels.to(runner.device, non_blocking=True)
            timer.add("data", time.perf_counter() - t_data, n)
            t_batch = time.perf_counter()
            cams, logits, top5 = _forward_and_cam(runner, method, backbone, images, labels_dev, timer,
                                                  loader.batch_size or n)
            status = _statuses(cams, logits)
            n_nonfinite += sum(s != "ok" for s in status)
            _record_skipped(bad, idx, labels, errors, view, scorer, exclude_skipped)
            ok = [j for j in range(n) if j not in bad]
            _faithfulness(scorer, runner, timer, images, labels_dev, cams, logits, ok,
                          [view.positions[idx[j]] for j in ok])
            record = _batch_record(ok, idx, labels, sizes, top5, status, view, localizer.protocol)
            size_notes += record.size_notes
            localizer.submit(cams[record.rows], record.gts, record.sizes, record)
            for result, done in localizer.ready():
                _record(result, done, view, scorer, timer, save_maps)
            timer.add("total", time.perf_counter() - t_batch + timer.records["data"].seconds[-1], n)
            bar.update(n)
            t_data = time.perf_counter()
        for result, tag in localizer.ready(drain=True):
            _record(result, tag, view, scorer, timer, save_maps)
    finally:
        bar.close()
        localizer.close()
    if n_nonfinite:
        log.warning("%d image(s) had non-finite logits or maps: scored with an all-zero map "
                    "(status column of per_image.csv)", n_nonfinite)
    warn_size_mismatch(size_notes)
    return LoopStats(len(view), n_nonfinite, time.perf_counter() - t_start, size_notes)


@dataclass
class BatchRecord:
    """What the loop keeps of a batch's scored images while their maps are localized."""

    rows: List[int]                   # positions in the batch (skipped images left out)
    indices: List[int]                # their indices in the loader's view
    labels: np.ndarray
    top5: np.ndarray
    status: List[str]                 # 'ok' or why the map is all zeros
    samples: List[Sample]
    gts: List[np.ndarray]             # ground-truth boxes in the protocol's frame
    sizes: List[Tuple[int, int]]      # the frame the boxes were annotated in
    size_notes: List[str] = field(default_factory=list)


def _batch_record(rows: List[int], idx, labels: torch.Tensor, sizes, top5: np.ndarray, status: List[str], view,
                  protocol: Protocol) -> BatchRecord:
    """The record of a batch's readable images (ground truth in the protocol's frame)."""
    smp = [view.samples[idx[j]] for j in rows]
    size_ok, notes = box_frame_sizes(smp, [sizes[j] for j in rows])
    gts = [protocol.gt_boxes(s.boxes, wh) for s, wh in zip(smp, size_ok)]
    return BatchRecord(rows, [idx[j] for j in rows], labels.numpy()[rows], top5[rows], [status[j] for j in rows],
                       smp, gts, size_ok, notes)


def _record_skipped(bad: List[int], idx, labels: torch.Tensor, errors, view, scorer: RunScorer,
                    exclude_skipped: bool) -> None:
    """--on-error skip: each unreadable image recorded, scored as a miss (or excluded)."""
    for j in bad:
        scorer.add_skipped(view.samples[idx[j]].image_id, int(labels[j]), errors[j], exclude_skipped,
                           index=view.positions[idx[j]])


def _record(result: tuple, rec: BatchRecord, view, scorer: RunScorer, timer: StageTimer,
            save_maps: Optional[Callable[[Sequence[str], np.ndarray], None]]) -> None:
    """A finished batch into the scorer (and its maps to ``save_maps``)."""
    locs, maps, secs = result
    idx, labels, top5, status, samples, gts = rec.indices, rec.labels, rec.top5, rec.status, rec.samples, rec.gts
    timer.add("localize", secs, len(idx))
    ids = [view.samples[i].image_id for i in idx]
    if maps is not None and save_maps is not None:
        save_maps(ids, maps)
    t0 = time.perf_counter()
    scorer.add(ids, labels.tolist(), locs, top5, status, indices=[view.positions[i] for i in idx], samples=samples,
               maps=maps, gts=gts)
    timer.add("metrics", time.perf_counter() - t0, len(idx))
