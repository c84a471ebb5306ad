"""Model selection: the split that chooses the checkpoint and the scores taken on it.

As in Choe et al., the images whose boxes choose the checkpoint (``train-fullsup``) are a
split of their own, scored every epoch: ``--selection-split NAME`` (wsolevaluation's ``val``
folder holds train-fullsup for ImageNet, CUB and OpenImages). ``auto`` (the default) takes
the adapter's ``val`` split when it has one (``wsoleval``, ``openimages``) and otherwise holds
out ``--holdout`` of each class's training images (seeded); ``none`` (or ``--holdout 0``
without a split) scores nothing. ``best.pt`` is the epoch with the best ``--select-by``
score; the checkpoint evaluated on ``--test-split`` is the last one unless
``--eval-checkpoint best``.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from wsol.datasets.base import Sample, WsolDataset, build_dataset, dataset_info
from wsol.datasets.splits import split_holdout
from wsol.errors import WsolError
from wsol.models.backbone import Backbone
from wsol.training.recipe import TrainConfig

log = logging.getLogger(__name__)

NO_SPLIT = ("", "none")


@dataclass
class TrainData:
    """The images a run trains on and the split that selects its checkpoint."""

    train: List[Sample]
    selection: Optional[WsolDataset]
    select_by: str            # the rule that applies ('last' when nothing is scored)
    num_classes: int
    dataset: WsolDataset      # the training split as read


def selection_split_name(cfg: TrainConfig) -> str:
    """The split that selects (``''``: hold out part of the training split instead)."""
    name = cfg.selection_split
    if name == "auto":
        splits = dataset_info(cfg.dataset).splits
        return "val" if "val" in splits and cfg.split != "val" else ""
    return "" if name in NO_SPLIT else name


def _read_selection(cfg: TrainConfig, name: str, train: WsolDataset) -> WsolDataset:
    sel = build_dataset(cfg.dataset, cfg.root, name, **dict(cfg.dataset_options))
    if len(sel) == 0:
        raise WsolError(f"{cfg.root}: the selection split '{name}' has no images")
    shared = {s.path or s.image_id for s in train.samples} & {s.path or s.image_id for s in sel.samples}
    if shared:
        raise WsolError(f"{cfg.root}: the selection split '{name}' shares {len(shared)} image(s) with the "
                        f"training split '{cfg.split}' (e.g. {sorted(shared)[0]}); choose another --selection-split")
    if sel.num_classes > train.num_classes:
        raise WsolError(f"{cfg.root}: the selection split '{name}' has labels up to {sel.num_classes - 1}, "
                        f"the training split only {train.num_classes} classes")
    if cfg.select_by == "maxboxacc_v2" and not any(len(s.boxes) for s in sel.samples):
        raise WsolError(f"{cfg.root}: the selection split '{name}' has no boxes to choose by MaxBoxAccV2 "
                        "(--select-by top1, or another --selection-split)")
    return sel


def prepare(cfg: TrainConfig) -> TrainData:
    """Read the training split and the selection images (see the module docstring)."""
    full = build_dataset(cfg.dataset, cfg.root, cfg.split, **dict(cfg.dataset_options))
    if len(full) == 0:
        raise WsolError(f"split '{cfg.split}' of {cfg.root} has no images")
    name = selection_split_name(cfg)
    if name:
        sel = _read_selection(cfg, name, full)
        return TrainData(list(full.samples), sel, cfg.select_by, full.num_classes, full)
    fraction = 0.0 if cfg.selection_split in NO_SPLIT else cfg.holdout
    train, held = split_holdout(full.samples, fraction, cfg.seed)
    if not held:
        if cfg.select_by != "last" and cfg.selection_split not in NO_SPLIT:
            log.warning("no selection images (--holdout 0): best.pt is the last epoch")
        return TrainData(train, None, "last", full.num_classes, full)
    sel = WsolDataset(full.name, f"{cfg.split}-holdout", full.root, full.image_root, held, full.class_names)
    return TrainData(train, sel, cfg.select_by, full.num_classes, full)


def score(cfg: TrainConfig, arch: str, bb: Backbone, selection: WsolDataset) -> Dict[str, float]:
    """Top-1 and localization of the live model ``bb`` (architecture ``arch``) on the
    selection images; the model comes back in the mode it went in."""
    from wsol.engine.run import EvalConfig, evaluate

    ecfg = EvalConfig(dataset=cfg.dataset, root=cfg.root, split=selection.split, backbone=arch,
                      weights="live", method=cfg.val_method, batch_size=cfg.val_batch_size,
                      device=cfg.device, cam_step=cfg.cam_step, progress=False, seed=cfg.seed,
                      data_workers=cfg.data_workers)
    s = evaluate(ecfg, dataset=selection, backbone=bb).summary.iloc[0]
    return {"val_top1": float(s["top1_cls"]), "val_gt_known_loc": float(s["gt_known_loc"]),
            "val_maxboxacc_v2": float(s["maxboxacc_v2"])}


def select_score(row: dict, select_by: str, epoch: int) -> float:
    """The number ``best.pt`` is chosen by (the epoch itself for 'last')."""
    if select_by == "maxboxacc_v2":
        return row["val_maxboxacc_v2"]
    if select_by == "top1":
        return row["val_top1"]
    return float(epoch)


def has_class_maps(bb: Backbone) -> bool:
    """Does the model define its own class maps (ACoL's fused map), which ``cam`` uses?"""
    p = next(bb.parameters())
    with torch.no_grad():
        f = bb.forward_features(torch.zeros(1, 3, 224, 224, device=p.device, dtype=p.dtype))
        return bb.class_maps(f, torch.zeros(1, dtype=torch.long, device=p.device)) is not None


def check_val_method(cfg: TrainConfig, arch: str, bb: Backbone, select_by: str) -> None:
    """Fail before the first epoch when the selection's CAM method cannot score ``bb``."""
    if select_by != "maxboxacc_v2":
        return
    from wsol.cams.base import create_method

    create_method(cfg.val_method)
    if cfg.val_method == "cam" and not bb.info.cam_exact and not has_class_maps(bb):
        raise WsolError(f"CAM is not exact for '{arch}' ({bb.info.note or 'head is not GAP + linear'}): "
                        "choose the checkpoint with --val-method gradcam or --select-by top1")


def evaluate_test(cfg: TrainConfig, arch: str, weights: str):
    """Evaluate checkpoint ``weights`` on ``cfg.test_split`` with ``cfg.val_method``; the run
    (summary.csv, ...) goes to ``<out>/test``. Returns the summary row as a dict."""
    from wsol.engine.run import EvalConfig, evaluate

    out = os.path.join(cfg.out, "test")
    ecfg = EvalConfig(dataset=cfg.dataset, root=cfg.root, split=cfg.test_split, backbone=arch,
                      weights=weights, method=cfg.val_method, batch_size=cfg.val_batch_size,
                      device=cfg.device, progress=cfg.progress, seed=cfg.seed, out=out,
                      data_workers=cfg.data_workers, dataset_options=dict(cfg.dataset_options))
    return evaluate(ecfg).summary.iloc[0].to_dict()
