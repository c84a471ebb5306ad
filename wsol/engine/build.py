"""Config -> built objects, and built objects -> the run's tables: the two halves of
``evaluate`` around the inference loop, shared by the single-process and torchrun paths."""
from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Dict, Optional, Sequence

import numpy as np
import pandas as pd
import torch

from wsol import __version__
from wsol.cams.base import CamMethod, check_targets, create_method
from wsol.datasets.base import WsolDataset, build_dataset
from wsol.engine.config import EvalConfig, check_config, faithfulness_options
from wsol.evaluation.box_evaluator import BoxEvaluator
from wsol.evaluation.evaluator import DatasetEvaluators
from wsol.evaluation.fastpath import FastPath
from wsol.engine.heads import backbone_for_dataset
from wsol.evaluation.loop import Localizer, LoopOptions, LoopStats
from wsol.evaluation.run_evaluators import run_evaluators
from wsol.evaluation.runners import ModelRunner
from wsol.evaluation.scoring import policy_columns, summary_frame, policy_choice
from wsol.metrics.fingerprint import measured_fingerprint
from wsol.metrics.threshold_policy import ThresholdChoice
from wsol.evaluation.timing import StageTimer
from wsol.errors import DataError, WsolError
from wsol.localize.protocols import Protocol, get_protocol
from wsol.transforms.image import ImageFolderView, test_transform
from wsol.utils.io import atomic_write, confined_path, write_text_atomic
from wsol.utils.outdirs import claim_output_dir, staged_outputs

log = logging.getLogger(__name__)

@dataclass
class EvalResult:
    """The four tables of a run (pandas DataFrames)."""

    summary: pd.DataFrame
    per_image: pd.DataFrame
    curves: pd.DataFrame
    timings: pd.DataFrame
    evaluator: Optional[DatasetEvaluators] = field(default=None, repr=False)  # the merged state behind the tables

    @property
    def boxes(self) -> Optional[BoxEvaluator]:
        """The box evaluator behind the tables (None when not kept)."""
        return self.evaluator["boxes"] if self.evaluator is not None else None

    def tables(self) -> Dict[str, pd.DataFrame]:
        return {"summary.csv": self.summary, "per_image.csv": self.per_image,
                "curves.csv": self.curves, "timings.csv": self.timings}


@dataclass
class Built:
    """What a config builds: the data, the model, the method and the protocol's rules."""

    dataset: WsolDataset
    backbone: torch.nn.Module
    method: CamMethod
    protocol: Protocol
    taus: np.ndarray
    fast: FastPath          # the speed options
    runner: ModelRunner     # backbone + method through ``fast``
    device: torch.device


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


def load_split(cfg: EvalConfig, dataset: Optional[WsolDataset] = None) -> WsolDataset:
    """The split to run (``dataset`` when given), limited; an empty split is an error."""
    ds = dataset or build_dataset(cfg.dataset, cfg.root, cfg.split, **cfg.dataset_options)
    ds = ds.limit(cfg.limit)
    if len(ds) == 0:
        raise DataError(f"split '{cfg.split}' has no images", path=ds.root)
    return ds


def method_architecture(method: CamMethod, backbone: str, weights: str) -> str:
    """The model ``method`` reads its map from for ``--backbone backbone`` (a family method's
    own model for a plain backbone: ``--method bas --backbone resnet18`` -> ``resnet18+bas``,
    as ``wsol train --wsol-method bas`` trains it, so its checkpoint loads as ``--weights``).
    Built from ImageNet or random weights, the family's new heads are untrained: said loudly."""
    arch = method.architecture_for(backbone)
    if arch != backbone:
        log.info("--method %s on '%s': the model is %s", method.name, backbone, arch)
        if weights in ("pretrained", "random"):
            log.warning("--method %s on '%s' builds %s, whose %s heads are new (weights %s): its maps are "
                        "untrained until you pass a checkpoint trained with `wsol train --wsol-method %s "
                        "--backbone %s` as --weights", method.name, backbone, arch, method.name, weights,
                        method.name, backbone)
    return arch


def build(cfg: EvalConfig, dataset: Optional[WsolDataset] = None, backbone=None,
          device: Optional[str] = None) -> Built:
    """Build everything ``cfg`` names. ``backbone``: an already built model to use as is;
    otherwise one is built for the dataset, its random init seeded by ``cfg.seed`` without
    touching the caller's global RNG state."""
    check_config(cfg)
    dev = resolve_device(device or cfg.device)
    fast = FastPath(cfg, dev)  # validates --dtype/--decode/--channels-last/--compile
    ds = load_split(cfg, dataset)
    protocol = get_protocol(cfg.protocol).configure(ds.num_classes, cfg.cam_step, cfg.dataset)
    method = create_method(cfg.method, **cfg.method_options)
    if backbone is None:
        arch = method_architecture(method, cfg.backbone, cfg.weights)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)  # random init is reproducible
            backbone = backbone_for_dataset(ds, arch, cfg.weights, dev, cfg.new_head, options=cfg.model_options)
    check_targets(torch.tensor([s.label for s in ds.samples]), backbone.num_classes)
    protocol = protocol.for_backbone(getattr(backbone, "name", cfg.backbone))  # e.g. bas: per architecture
    taus = protocol.thresholds(cfg.cam_step)
    return Built(ds, backbone, method, protocol, taus, fast, ModelRunner(backbone, method, fast), dev)


def make_loader(b: Built, cfg: EvalConfig, lo: int = 0, hi: Optional[int] = None) -> torch.utils.data.DataLoader:
    """The loader over samples ``[lo, hi)`` of the split (a torchrun rank's shard), in order."""
    hi = len(b.dataset) if hi is None else hi
    view = ImageFolderView(b.dataset.samples[lo:hi], test_transform(b.backbone.mean, b.backbone.std),
                           positions=range(lo, hi))
    # its own generator: a loader otherwise draws its workers' base seed from the global RNG
    return torch.utils.data.DataLoader(b.fast.view(view), batch_size=cfg.batch_size, shuffle=False,
                                       num_workers=cfg.data_workers, collate_fn=b.fast.collate(collate),
                                       pin_memory=b.device.type == "cuda",
                                       generator=torch.Generator().manual_seed(cfg.seed))


def collate(batch):
    """(images [B, 3, H, W], labels [B], indices, sizes, errors) from the view's items."""
    images = torch.stack([b[0] for b in batch])
    labels = torch.tensor([b[1] for b in batch], dtype=torch.int64)
    return images, labels, [b[2] for b in batch], [b[3] for b in batch], [b[4] for b in batch]


def make_evaluator(b: Built, cfg: EvalConfig) -> DatasetEvaluators:
    """The run's evaluators: boxes, the whole-map scores where the protocol has them, and
    faithfulness when asked."""
    return run_evaluators(b.taus, cfg.fixed_tau, box_dtype=b.protocol.box_dtype, has_predictions=True,
                          predictions=load_predictions(cfg, b.dataset), has_boxes=b.dataset.has_boxes,
                          fair_taus=b.protocol.fair_taus, region=b.protocol.region_metrics,
                          has_masks=b.dataset.has_masks, pointing_tolerance=cfg.pointing_tolerance,
                          faithfulness=faithfulness_options(cfg))


def loop_options(cfg: EvalConfig, progress: bool = True) -> LoopOptions:
    """The loop's options from the run's config (``progress``: this process may show a bar)."""
    return LoopOptions(on_error=cfg.on_error, exclude_skipped=cfg.exclude_skipped,
                       save_maps=heatmap_writer(cfg.save_cams), progress=cfg.progress and progress,
                       desc=f"{cfg.backbone}/{cfg.method}")


def load_predictions(cfg: EvalConfig, ds: WsolDataset):
    """The class-prediction file of ``cfg.predictions`` read against ``ds`` (None without one);
    rows naming images outside the split are counted and reported."""
    if not cfg.predictions:
        return None
    from wsol.evaluation.given_outputs import read_predictions

    p = read_predictions(cfg.predictions, ds.class_names, ds.num_classes, [s.image_id for s in ds.samples])
    if p.n_unknown:
        log.warning("%s: %d row(s) name images outside the split (not scored)", cfg.predictions, p.n_unknown)
    return p


def make_localizer(b: Built, cfg: EvalConfig, evaluator: DatasetEvaluators) -> Localizer:
    """The protocol's localization at the run's τ grid; it keeps the normalized maps when
    they are saved or scored as whole maps."""
    keep = cfg.save_cams is not None or evaluator.uses_maps
    return Localizer(b.protocol, b.taus, cfg.sweep, cfg.workers, keep_maps=keep)


def run_meta(cfg: EvalConfig, n_taus: int, device: str) -> dict:
    """The identity columns of summary.csv."""
    return {"dataset": cfg.dataset, "split": cfg.split, "protocol": cfg.protocol,
            "backbone": cfg.backbone, "weights": cfg.weights, "method": cfg.method,
            "cam_step": cfg.cam_step, "n_thresholds": n_taus, "device": device}


def wall_row(wall: float, n_images: int, batches: int, **extra) -> dict:
    """timings.csv's ``wall`` row: the whole run's clock and its overall rate."""
    rate = n_images / wall if wall > 0 else float("nan")
    return {"stage": "wall", "seconds": wall, "images": n_images, "images_per_s": rate,
            "median_batch_ms": float("nan"), "batches": batches, "warmup_batches": 0, **extra}


def result_tables(evaluator: DatasetEvaluators, timings: pd.DataFrame, stats: LoopStats, meta: dict,
                  model_run: bool = True, choice: Optional[ThresholdChoice] = None) -> EvalResult:
    """The run's tables from the evaluators' state, the stage timings and the loop's counts
    (``model_run``: the maps came from a model, so non-finite maps/logits were counted;
    ``choice``: the τ of the run's threshold policy, default test_best)."""
    numbers = evaluator.evaluate()
    numbers.update(policy_numbers(evaluator["boxes"], meta, choice))
    numbers["images_per_s"] = stats.n_images / stats.wall if stats.wall > 0 else float("nan")
    if model_run:
        numbers["n_nonfinite"] = stats.n_nonfinite
        numbers["n_size_mismatch"] = stats.n_size_mismatch
    return EvalResult(summary_frame(numbers, meta), evaluator.per_image(), evaluator.curves(), timings,
                      evaluator=evaluator if model_run else None)


def policy_numbers(boxes: BoxEvaluator, meta: dict, choice: Optional[ThresholdChoice]) -> dict:
    """The threshold-policy columns, where the classes came from, and the fingerprints of the
    policy's Loc numbers and of MaxBoxAccV2 (wsol.metrics.fingerprint)."""
    fixed = float(boxes.boxacc.fixed_tau)
    if choice is None:
        choice = policy_choice(boxes, "test_best", fixed)
    out = policy_columns(boxes, choice)
    # images without a prediction are counted (as misses), never dropped; rows naming no image of the split too
    out["n_missing_predictions"] = boxes.n_missing_predictions
    out["n_missing_boxes"] = 0
    out["n_unknown_rows"] = boxes.predictions.n_unknown if boxes.predictions is not None else 0
    out["classifier"] = "separate" if boxes.predictions is not None else ("same" if boxes.has_predictions else "none")
    protocol = get_protocol(meta.get("protocol", "wsoleval"))
    for col, metric in (("fingerprint_loc", "policy_top1_loc"), ("fingerprint_v2", "maxboxacc_v2")):
        fp = measured_fingerprint(metric, protocol, choice.policy, out["classifier"], fixed, boxes.taus)
        out[col] = fp.text() if fp is not None else ""
    return out


def loop_timings(timer: StageTimer, stats: LoopStats) -> pd.DataFrame:
    timings = pd.DataFrame(timer.rows())
    timings.loc[len(timings)] = wall_row(stats.wall, stats.n_images, len(timer.records["total"].seconds))
    return timings


RUN_OUTPUTS = ("summary.csv", "per_image.csv", "curves.csv", "timings.csv", "run.json", "report.html")


FINGERPRINT_METRICS = ("gt_known_loc", "top1_loc", "top5_loc", "maxboxacc", "maxboxacc_v2", "policy_gt_known_loc",
                       "policy_top1_loc", "policy_top5_loc", "policy_boxacc_v2", "pxap", "piou")


def config_fingerprints(cfg: EvalConfig, ds: WsolDataset, given_boxes: bool = False) -> Dict[str, Dict[str, str]]:
    """{metric: protocol fingerprint} of the run ``cfg`` describes (run.json ``fingerprints``)."""
    from wsol.metrics.fingerprint import run_fingerprints

    protocol = get_protocol(cfg.protocol)
    try:
        protocol = protocol.configure(ds.num_classes, cfg.cam_step)
    except Exception:  # a dataset whose class count is not known yet: the protocol's defaults
        pass
    classifier = "separate" if cfg.predictions else ("none" if given_boxes or cfg.method == "heatmaps" else "same")
    taus = [float("nan")] if given_boxes else protocol.thresholds(cfg.cam_step)
    return run_fingerprints(list(FINGERPRINT_METRICS), protocol, "given_boxes" if given_boxes else cfg.tau_policy,
                            classifier, cfg.fixed_tau, taus)


def write_run_config(cfg: EvalConfig, ds: WsolDataset, backbone=None, given_boxes: bool = False,
                     folder: Optional[str] = None) -> None:
    """``<folder>/run.json`` (default folder: ``cfg.out``): the resolved config (for reports,
    suites and reruns) and the protocol fingerprint of each localization metric; with the
    backbone, ``model_options_resolved`` holds every option it was built with (defaults, options
    a checkpoint recorded or its keys revealed, and the user's). A run writes it into its
    staging folder (:func:`staged_run`), so an earlier run's files stay as they are until the
    new run finishes."""
    folder = folder or claim_run_dir(cfg.out)
    info = {**asdict(cfg), "root": os.path.abspath(ds.root), "image_root": ds.image_root,
            "wsol_version": __version__, "class_names": ds.class_names,
            "fingerprints": config_fingerprints(cfg, ds, given_boxes)}
    if backbone is not None:
        info["model_options_resolved"] = dict(getattr(backbone, "model_options", {}) or {})
    write_text_atomic(os.path.join(folder, "run.json"), json.dumps(info, indent=1, default=str))


def claim_run_dir(out: str) -> str:
    """Create ``out`` for a run's outputs, refusing a folder whose summary.csv (or other run
    file) belongs to another kind of output, such as a suite (:mod:`wsol.utils.outdirs`)."""
    return claim_output_dir(out, "run", RUN_OUTPUTS)


def staged_run(out: Optional[str]):
    """A context yielding the folder a run writes into: a fresh one inside ``out`` whose files
    replace ``out``'s only when the run finishes (None without ``out``). A run that fails or is
    interrupted leaves an earlier run's results untouched, and no empty ``out`` it created."""
    created = bool(out) and not os.path.lexists(out)
    if out:
        claim_run_dir(out)
    return staged_outputs(out or None, RUN_OUTPUTS + ("timings_per_rank.csv",), created=created)


def heatmap_writer(folder: Optional[str]):
    """``save_maps(image_ids, maps)`` writing ``<folder>/<image_id>.npy``, or None."""
    if folder is None:
        return None
    return lambda ids, maps: save_heatmaps(folder, ids, maps)


def save_heatmaps(folder: str, image_ids: Sequence[str], maps: np.ndarray) -> None:
    """Write ``<folder>/<image_id>.npy`` (224x224 float64 in [0,1], as wsolevaluation writes
    them) for each map: the very values scored, so re-scoring gives identical numbers."""
    for iid, m in zip(image_ids, maps):
        path = confined_path(folder, iid, ".npy")  # an id escaping the folder is refused
        with atomic_write(path, "wb") as f:
            np.save(f, np.asarray(m, dtype=np.float64))


def interrupted_note(cfg: EvalConfig, done: int, total: int) -> str:
    """What an interrupted run leaves behind, in one line."""
    where = (f"{cfg.out} is as it was: results are written at the end, none were" if cfg.out
             else "nothing was written")
    cams = f"; the heatmaps of the scored images are in {cfg.save_cams}" if cfg.save_cams and done else ""
    return (f"{done} of {total} images scored when it stopped; {where}{cams}; rerun the same command to redo "
            "the run (suites skip the runs already finished)")
