"""``wsol evaluate`` and ``wsol score``: the end-to-end loop (docs/architecture.md, Flow)."""
from __future__ import annotations

import logging
import os
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Deque, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from wsol.cams.base import check_targets, create_method
from wsol.datasets.base import Sample, WsolDataset, build_dataset
from wsol.datasets.wsoleval import image_size
from wsol.engine.fastpath import FastPath
from wsol.engine.region_scoring import RegionScorer, attach, blank_box_metrics, blank_region_metrics
from wsol.engine.heads import backbone_for_dataset
from wsol.engine.scoring import RunScorer, summary_frame
from wsol.engine.timing import StageTimer
from wsol.errors import DataError, RunInterrupted, WsolError
from wsol.localize.boxes import scale_gt_boxes
from wsol.localize.image import ImageLocalization, localize_batch
from wsol.localize.maps import MAP_SIZE, postprocess_batch, thresholds
from wsol.report.csv import write_run
from wsol.transforms.image import ImageFolderView, load_rgb, test_transform
from wsol.utils.io import atomic_write, confined_path, ensure_dir, write_text_atomic
from wsol.utils.outdirs import claim_output_dir

log = logging.getLogger(__name__)

RUN_OUTPUTS = ("summary.csv", "per_image.csv", "curves.csv", "timings.csv", "run.json", "report.html")


@dataclass
class EvalConfig:
    """Everything one evaluation run depends on (its fields are the CLI options)."""

    dataset: str = "cub"
    root: str = ""
    split: str = "test"
    backbone: str = "efficientnet_lite0"
    weights: str = "pretrained"
    method: str = "cam"
    batch_size: int = 32
    device: str = "cpu"
    cam_step: float = 0.01
    fixed_tau: float = 0.2
    limit: Optional[int] = None
    data_workers: int = 0
    workers: int = 0
    sweep: str = "fast"
    save_cams: Optional[str] = None
    out: Optional[str] = None
    protocol: str = "wsoleval"
    dataset_options: Dict[str, object] = field(default_factory=dict)
    method_options: Dict[str, object] = field(default_factory=dict)
    model_options: Dict[str, object] = field(default_factory=dict)  # backbone options (large_feature_map, adl, ...)
    progress: bool = True
    seed: int = 0
    on_error: str = "fail"          # fail | skip
    pointing_tolerance: float = 0.0  # pointing game: hit within this many pixels of the object (TorchRay: 15)
    exclude_skipped: bool = False   # skipped images count as misses unless set
    # speed options (wsol.engine.fastpath); the defaults are the protocol's reference path
    dtype: str = "fp32"             # fp32 | bf16 | fp16: autocast for forward + CAM (bf16/fp16 not exact)
    channels_last: bool = False     # channels_last model and inputs
    compile: bool = False           # torch.compile the backbone forward
    decode: str = "cpu"             # cpu: PIL (protocol) | gpu: nvjpeg + antialiased resize (not bit-identical)
    distributed: str = "auto"       # auto: data-parallel under torchrun (wsol.engine.distributed) | off
    new_head: bool = False          # replace a pretrained/checkpoint head that does not fit the dataset


@dataclass
class EvalResult:
    """The four tables of a run (pandas DataFrames)."""

    summary: pd.DataFrame
    per_image: pd.DataFrame
    curves: pd.DataFrame
    timings: pd.DataFrame
    scorer: Optional[RunScorer] = field(default=None, repr=False)  # state to merge shards (not written)
    region: Optional[RegionScorer] = field(default=None, repr=False)  # pixel/pointing state (not written)

    def tables(self) -> Dict[str, pd.DataFrame]:
        return {"summary.csv": self.summary, "per_image.csv": self.per_image,
                "curves.csv": self.curves, "timings.csv": self.timings}


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


def interrupted_note(cfg: "EvalConfig", done: int, total: int) -> str:
    """What an interrupted run leaves behind, in one line."""
    where = (f"{cfg.out} holds run.json only: results are written at the end, none were" if cfg.out
             else "nothing was written")
    cams = f"; the heatmaps of the scored images are in {cfg.save_cams}" if cfg.save_cams and done else ""
    return (f"{done} of {total} images scored when it stopped; {where}{cams}; rerun the same command to redo "
            "the run (suites skip the runs already finished)")


def warn_size_mismatch(notes: List[str]) -> None:
    """One warning for all the images whose real size differs from the annotated one."""
    if notes:
        log.warning("%d image(s) differ in size from their annotation (e.g. %s); their boxes were scaled by "
                    "the annotated size (n_size_mismatch in summary.csv; `wsol check-data` lists them)",
                    len(notes), notes[0])


def _gt_on_map(samples: List[Sample], sizes: List[Tuple[int, int]]) -> List[np.ndarray]:
    return [scale_gt_boxes(s.boxes, w, h, MAP_SIZE) for s, (w, h) in zip(samples, sizes)]


def _localize_job(cams: np.ndarray, gts: List[np.ndarray], taus: np.ndarray, sweep: str,
                  keep_maps: bool, protocol: str = "wsoleval", sizes: Optional[List[Tuple[int, int]]] = None
                  ) -> Tuple[List[ImageLocalization], Optional[np.ndarray], float]:
    """Worker-pool job: raw maps -> (localizations, normalized maps or None, seconds).

    wsoleval: ``gts`` are on the 224 grid; cam2016 and cam2016_code: ``gts`` are in original
    pixels and ``sizes`` gives each image's (width, height).
    """
    t0 = time.perf_counter()
    maps = postprocess_batch(cams) if (keep_maps or protocol == "wsoleval") else None
    if protocol in ORIGINAL_RESOLUTION:
        if protocol == "cam2016":
            from wsol.localize.cam2016 import localize_cam2016 as fn
        else:
            from wsol.localize.cam2016_code import localize_cam2016_code as fn

        locs = [fn(c, g, w, h) for c, g, (w, h) in zip(cams, gts, sizes)]
    else:
        locs = localize_batch(maps, gts, taus, sweep)
    return locs, (maps if keep_maps else None), time.perf_counter() - t0


PROTOCOLS = ("wsoleval", "cam2016", "cam2016_code")
#: protocols that box at the original image resolution with one rule (docs/protocol.md, The cam2016 protocols)
ORIGINAL_RESOLUTION = ("cam2016", "cam2016_code")
SWEEPS = ("fast", "reference", "per-threshold")


def check_config(cfg: "EvalConfig") -> None:
    """The option ranges the CLI checks at parse time, for runs started from Python
    (``wsol.evaluate(...)``, suites): a one-line WsolError naming the option."""
    import math

    def bad(name: str, value, rule: str) -> None:
        raise WsolError(f"{name} must be {rule}, got {value!r}")

    for name, value, lo in (("batch_size", cfg.batch_size, 1), ("data_workers", cfg.data_workers, 0),
                            ("workers", cfg.workers, 0), ("limit", cfg.limit, 1)):
        if value is None and name == "limit":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
            bad(name, value, f"an integer >= {lo}")
    for name, value, ok, rule in (("cam_step", cfg.cam_step, lambda v: 0 < v < 1, "a number in (0, 1)"),
                                  ("fixed_tau", cfg.fixed_tau, lambda v: 0 <= v < 1, "a number in [0, 1)")):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not ok(value):
            bad(name, value, rule)
    for name, value, allowed in (("on_error", cfg.on_error, ("fail", "skip")), ("sweep", cfg.sweep, SWEEPS),
                                 ("protocol", cfg.protocol, PROTOCOLS)):
        if value not in allowed:
            bad(name, value, "one of " + ", ".join(allowed))


def protocol_thresholds(cfg: "EvalConfig") -> np.ndarray:
    """The τ grid of a protocol: arange(0, 1, cam_step) for wsoleval, [0.2] for cam2016 (and
    for cam2016_code, whose gray levels are fixed: one 'threshold' labels its single box)."""
    if cfg.protocol not in PROTOCOLS:
        from wsol.errors import UnknownNameError

        raise UnknownNameError("protocol", cfg.protocol, PROTOCOLS)
    if cfg.protocol in ORIGINAL_RESOLUTION:
        from wsol.localize.cam2016 import CAM2016_THRESHOLD

        return np.array([CAM2016_THRESHOLD])
    return thresholds(cfg.cam_step)


def write_run_config(cfg: "EvalConfig", ds: WsolDataset, backbone=None) -> None:
    """``<out>/run.json``: the resolved config (for reports, suites and reruns); with the
    backbone, ``model_options_resolved`` holds every option it was built with (defaults,
    options a checkpoint recorded or its keys revealed, and the user's)."""
    import json

    from wsol import __version__

    claim_run_dir(cfg.out)
    # an interrupted rerun must not leave an earlier run's results behind (summary.csv first)
    for stale in ("summary.csv", "per_image.csv", "curves.csv", "timings.csv", "report.html"):
        if os.path.exists(os.path.join(cfg.out, stale)):
            os.remove(os.path.join(cfg.out, stale))
    info = {**asdict(cfg), "root": os.path.abspath(ds.root), "image_root": ds.image_root,
            "wsol_version": __version__, "class_names": ds.class_names}
    if backbone is not None:
        info["model_options_resolved"] = dict(getattr(backbone, "model_options", {}) or {})
    write_text_atomic(os.path.join(cfg.out, "run.json"), json.dumps(info, indent=1, default=str))


def claim_run_dir(out: str) -> str:
    """Create ``out`` for a run's outputs, refusing a folder whose summary.csv (or other run
    file) belongs to another kind of output, such as a suite (:mod:`wsol.utils.outdirs`)."""
    return claim_output_dir(out, "run", RUN_OUTPUTS)


def save_heatmaps(folder: str, image_ids: List[str], maps: np.ndarray) -> None:
    """Write ``<folder>/<image_id>.npy`` (224x224 float64 in [0,1], as wsolevaluation writes
    them) for each map: the very values scored, so re-scoring gives identical numbers."""
    for iid, m in zip(image_ids, maps):
        path = confined_path(folder, iid, ".npy")  # an id escaping the folder is refused
        with atomic_write(path, "wb") as f:
            np.save(f, np.asarray(m, dtype=np.float64))


def _collate(batch):
    images = torch.stack([b[0] for b in batch])
    labels = torch.tensor([b[1] for b in batch], dtype=torch.int64)
    idx = [b[2] for b in batch]
    sizes = [b[3] for b in batch]
    errors = [b[4] for b in batch]
    return images, labels, idx, sizes, errors


def _run_meta(cfg: EvalConfig, n_taus: int, device: str) -> dict:
    return {"dataset": cfg.dataset, "split": cfg.split, "protocol": cfg.protocol,
            "backbone": cfg.backbone, "weights": cfg.weights, "method": cfg.method,
            "cam_step": cfg.cam_step, "n_thresholds": n_taus, "device": device}


def device_name(device: torch.device) -> str:
    """Human name of the device: GPU model or CPU model."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return "cpu: " + line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return "cpu: " + (platform.processor() or platform.machine())


def resolve_device(name: str) -> torch.device:
    """``cpu``/``cuda``/``cuda:N``; a clear error when CUDA is asked for but absent."""
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise WsolError(f"--device must be cpu, cuda, cuda:N or mps, got {name!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise WsolError("--device cuda asked for, but torch sees no CUDA device (use --device cpu)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise WsolError(f"--device {name}: torch sees {torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise WsolError("--device mps asked for, but torch sees no MPS device (use --device cpu)")
    return dev


def evaluate(cfg: EvalConfig, dataset: Optional[WsolDataset] = None, backbone=None) -> EvalResult:
    """Run backbone + CAM method over a dataset split and score it (docs/protocol.md).

    ``backbone``: an already built model to reuse (the bench's repeats); under torchrun
    (WORLD_SIZE > 1) the run is data-parallel, see :mod:`wsol.engine.distributed`.
    """
    check_config(cfg)
    from wsol.engine.distributed import launched_by_torchrun

    if cfg.distributed == "auto" and launched_by_torchrun():
        from wsol.engine.distributed import evaluate_distributed

        return evaluate_distributed(cfg, dataset, backbone)
    if cfg.out:
        claim_run_dir(cfg.out)
    if cfg.save_cams:
        ensure_dir(cfg.save_cams)  # a file in the way fails now, not after the first batch
    dev = resolve_device(cfg.device)
    fast = FastPath(cfg, dev)  # validates --dtype/--decode/--channels-last/--compile
    ds = dataset or build_dataset(cfg.dataset, cfg.root, cfg.split, **cfg.dataset_options)
    ds = ds.limit(cfg.limit)
    if len(ds) == 0:
        raise DataError(f"split '{cfg.split}' has no images", path=ds.root)
    taus = protocol_thresholds(cfg)
    method = create_method(cfg.method, **cfg.method_options)
    torch.manual_seed(cfg.seed)  # random init and random baselines are reproducible
    if backbone is not None:
        bb = backbone
    else:
        bb = backbone_for_dataset(ds, cfg.backbone, cfg.weights, dev, cfg.new_head, options=cfg.model_options)
    check_targets(torch.tensor([s.label for s in ds.samples]), bb.num_classes)
    for p in bb.parameters():
        p.requires_grad_(False)
    fast.prepare(bb)
    if cfg.out:
        write_run_config(cfg, ds, bb)

    view = ImageFolderView(ds.samples, test_transform(bb.mean, bb.std))
    loader = torch.utils.data.DataLoader(fast.view(view), batch_size=cfg.batch_size, shuffle=False,
                                         num_workers=cfg.data_workers, collate_fn=fast.collate(_collate),
                                         pin_memory=dev.type == "cuda")
    scorer = RunScorer(taus, cfg.fixed_tau, has_predictions=True,
                       box_dtype=np.int32 if cfg.protocol in ORIGINAL_RESOLUTION else np.uint8)
    region = RegionScorer(taus, ds.has_masks, cfg.pointing_tolerance) if cfg.protocol == "wsoleval" else None
    timer = StageTimer(dev)
    pool = ProcessPoolExecutor(cfg.workers) if cfg.workers > 0 else None
    pending: Deque[tuple] = deque()
    k = min(5, bb.num_classes)
    keep_maps = cfg.save_cams is not None or region is not None

    def finish(fut: Future, idx: list, labels: np.ndarray, top5: np.ndarray, status: List[str],
               gts: Optional[List[np.ndarray]] = None) -> None:
        locs, maps, secs = fut.result()
        timer.add("localize", secs, len(idx))
        if maps is not None and cfg.save_cams is not None:
            save_heatmaps(cfg.save_cams, [ds.samples[i].image_id for i in idx], maps)
        t0 = time.perf_counter()
        scorer.add([ds.samples[i].image_id for i in idx], labels.tolist(), locs, top5, status)
        if region is not None:
            region.add([ds.samples[i] for i in idx], maps, gts)
        timer.add("metrics", time.perf_counter() - t0, len(idx))

    bar = tqdm(total=len(ds), desc=f"{cfg.backbone}/{cfg.method}", unit="img", disable=not cfg.progress)
    t_start = time.perf_counter()
    t_data = time.perf_counter()
    n_nonfinite = 0
    size_notes: List[str] = []
    try:
        for images, labels, idx, sizes, errors in loader:
            bad = [j for j, e in enumerate(errors) if e]
            if bad and cfg.on_error == "fail":
                raise DataError(errors[bad[0]] + "  (use --on-error skip to record it and go on)")
            n = len(idx)
            images = fast.to_device(images)
            labels_dev = labels.to(dev, non_blocking=True)
            timer.add("data", time.perf_counter() - t_data, n)
            t_batch = time.perf_counter()
            try:
                # The trunk never builds a graph; gradient methods differentiate the head alone
                # on a leaf copy of the features (wsol.cams.gradcam.head_gradients).
                with timer.stage("forward", n), torch.no_grad(), fast.autocast():
                    feats, logits = fast.forward(images)
                with timer.stage("cam", n), torch.no_grad(), fast.autocast():
                    cams = method(bb, images, feats, logits, labels_dev)
                    # Only the raw low-res maps leave the device; the exact OpenCV upsample +
                    # sweep run in the CPU pool (why not on the GPU: wsol.engine.fastpath).
                    cams_np = cams.detach().float().cpu().numpy()
                    logits_np = logits.detach().float().cpu().numpy()
                    top5 = logits.detach().float().topk(k, dim=1).indices.cpu().numpy()
            except torch.cuda.OutOfMemoryError:
                raise WsolError(f"CUDA out of memory at --batch-size {cfg.batch_size}; "
                                f"try --batch-size {max(1, cfg.batch_size // 2)}") from None
            del feats, logits, cams
            status = ["ok"] * n
            for j in range(n):
                if not np.isfinite(cams_np[j]).all() or not np.isfinite(logits_np[j]).all():
                    status[j] = "nonfinite_map" if not np.isfinite(cams_np[j]).all() else "nonfinite_logits"
                    n_nonfinite += 1
            ok = [j for j in range(n) if j not in bad]
            for j in bad:  # --on-error skip: recorded, scored as a miss (or excluded)
                scorer.add_skipped(ds.samples[idx[j]].image_id, int(labels[j]), errors[j], cfg.exclude_skipped)
                if region is not None:
                    region.add_skipped(int(labels[j]), cfg.exclude_skipped)
            sel = [idx[j] for j in ok]
            smp = [ds.samples[i] for i in sel]
            frame, notes = box_frame_sizes(smp, [sizes[j] for j in ok])
            size_notes += notes
            if cfg.protocol in ORIGINAL_RESOLUTION:
                gts = [s.boxes for s in smp]
            else:
                gts = _gt_on_map(smp, frame)
            args = (cams_np[ok], gts, taus, cfg.sweep, keep_maps, cfg.protocol, frame)
            lab_ok, top5_ok, st_ok = labels.numpy()[ok], top5[ok], [status[j] for j in ok]
            if pool is None:
                fut: Future = Future()
                fut.set_result(_localize_job(*args))
                finish(fut, sel, lab_ok, top5_ok, st_ok, gts)
            else:
                pending.append((pool.submit(_localize_job, *args), sel, lab_ok, top5_ok, st_ok, gts))
                while pending and (pending[0][0].done() or len(pending) > 2 * cfg.workers):
                    finish(*pending.popleft())
            timer.add("total", time.perf_counter() - t_batch + timer.records["data"].seconds[-1], n)
            bar.update(n)
            t_data = time.perf_counter()
        while pending:
            finish(*pending.popleft())
    except KeyboardInterrupt:
        raise RunInterrupted(interrupted_note(cfg, len(scorer.rows), len(ds))) from None
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if n_nonfinite:
        log.warning("%d image(s) had non-finite logits or maps: scored with an all-zero map "
                    "(status column of per_image.csv)", n_nonfinite)
    warn_size_mismatch(size_notes)
    wall = time.perf_counter() - t_start
    numbers = scorer.summary()
    numbers["images_per_s"] = len(ds) / wall if wall > 0 else float("nan")
    numbers["n_nonfinite"] = n_nonfinite
    numbers["n_size_mismatch"] = len(size_notes)
    per_image, curves = scorer.per_image(), scorer.curves()
    if region is not None:
        numbers, per_image, curves = attach(numbers, per_image, curves, region)
    else:
        blank_region_metrics(numbers)
    if not ds.has_boxes:
        blank_box_metrics(numbers)
    timings = pd.DataFrame(timer.rows())
    timings.loc[len(timings)] = {"stage": "wall", "seconds": wall, "images": len(ds),
                                 "images_per_s": numbers["images_per_s"], "median_batch_ms": float("nan"),
                                 "batches": len(timer.records["total"].seconds), "warmup_batches": 0}
    meta = _run_meta(cfg, len(taus), device_name(dev))
    res = EvalResult(summary_frame(numbers, meta), per_image, curves, timings, scorer=scorer, region=region)
    if cfg.out:
        write_run(cfg.out, res.tables())
    return res


def load_heatmap(path: str) -> np.ndarray:
    """Read one exported heatmap and check it is a finite 224x224 array in [0, 1]."""
    if not os.path.isfile(path):
        raise DataError("missing heatmap", path=path)
    try:
        m = np.load(path, allow_pickle=False)
    except Exception as e:
        raise DataError(f"unreadable heatmap ({type(e).__name__})", path=path) from None
    if m.shape != (MAP_SIZE, MAP_SIZE):
        raise DataError(f"heatmap must be {MAP_SIZE}x{MAP_SIZE}, got {m.shape}", path=path)
    if m.dtype.kind not in "fiu":
        raise DataError(f"heatmap must hold numbers, not {m.dtype}", path=path)
    if not np.isfinite(m).all() or m.min() < 0 or m.max() > 1:
        raise DataError("heatmap values must be finite and in [0, 1]", path=path)
    # kept in the precision it comes in: float64 stays float64 (quantize works in float64)
    return m if m.dtype.kind == "f" else m.astype(np.float64)


def score(cams_dir: str, cfg: EvalConfig, dataset: Optional[WsolDataset] = None) -> EvalResult:
    """Score heatmaps computed anywhere: ``<cams_dir>/<image_id>.npy`` for each image."""
    check_config(cfg)
    if cfg.out:
        claim_run_dir(cfg.out)
    ds = dataset or build_dataset(cfg.dataset, cfg.root, cfg.split, **cfg.dataset_options)
    ds = ds.limit(cfg.limit)
    if len(ds) == 0:
        raise DataError(f"split '{cfg.split}' has no images", path=ds.root)
    if not os.path.isdir(cams_dir):
        raise DataError("heatmap folder not found", path=cams_dir)
    if cfg.protocol != "wsoleval":
        raise WsolError("wsol score implements the wsoleval protocol (224x224 heatmaps); "
                        f"protocol {cfg.protocol!r} needs the raw maps of `wsol evaluate`")
    taus = thresholds(cfg.cam_step)
    scorer = RunScorer(taus, cfg.fixed_tau, has_predictions=False)
    region = RegionScorer(taus, ds.has_masks, cfg.pointing_tolerance)
    timer = StageTimer("cpu")
    t_start = time.perf_counter()
    bs = max(cfg.batch_size, 1)
    if cfg.out:  # run.json first, an earlier run's results removed (as evaluate does)
        write_run_config(cfg, ds)
    try:  # Ctrl-C: say how far it got
        for b0 in tqdm(range(0, len(ds), bs), desc="score", unit="batch", disable=not cfg.progress):
            batch = ds.samples[b0:b0 + bs]
            with timer.stage("data", len(batch)):
                maps, gts, good = [], [], []
                for s in batch:
                    try:
                        maps.append(load_heatmap(confined_path(cams_dir, s.image_id, ".npy")))
                        gts.append(scale_gt_boxes(s.boxes, *image_size(s), MAP_SIZE) if len(s.boxes)
                                   else np.zeros((0, 4), np.int64))
                        good.append(s)
                    except DataError as e:
                        if cfg.on_error != "skip":
                            raise DataError(f"{e}  (use --on-error skip to record it and go on)") from None
                        maps = maps[:len(good)]
                        gts = gts[:len(good)]
                        scorer.add_skipped(s.image_id, s.label, str(e), cfg.exclude_skipped)
                        region.add_skipped(s.label, cfg.exclude_skipped)
            with timer.stage("localize", len(batch)):
                locs = localize_batch(maps, gts, taus, cfg.sweep)
            with timer.stage("metrics", len(batch)):
                scorer.add([s.image_id for s in good], [s.label for s in good], locs, None)
                region.add(good, maps, gts)
    except KeyboardInterrupt:
        raise RunInterrupted(interrupted_note(cfg, len(scorer.rows), len(ds))) from None
    wall = time.perf_counter() - t_start
    numbers = scorer.summary()
    numbers["images_per_s"] = len(ds) / wall if wall > 0 else float("nan")
    per_image, curves = scorer.per_image(), scorer.curves()
    numbers, per_image, curves = attach(numbers, per_image, curves, region)
    if not ds.has_boxes:
        blank_box_metrics(numbers)
    timer.add("total", wall, len(ds))
    meta = _run_meta(cfg, len(taus), "cpu")
    meta.update({"backbone": "", "weights": "", "method": f"heatmaps:{os.path.basename(os.path.normpath(cams_dir))}"})
    res = EvalResult(summary_frame(numbers, meta), per_image, curves, pd.DataFrame(timer.rows()))
    if cfg.out:
        write_run(cfg.out, res.tables())
    return res
