"""Building the backbone for a dataset: its classifier head must fit the dataset's classes.

A pretrained (or checkpoint) head is never replaced silently: when it disagrees with the
dataset, :func:`backbone_for_dataset` raises a one-line error saying what to do, unless the
caller opted in to a fresh head (``--new-head``). See ``docs/protocol.md`` ("Classifier
head and class count").
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Optional

import torch

from wsol.datasets.base import WsolDataset
from wsol.errors import WsolError
from wsol.models.backbone import Backbone
from wsol.models.registry import create_backbone

log = logging.getLogger(__name__)

RANDOM_WEIGHTS = ("random", "none", "", None)


def head_mismatch(head_classes: int, ds: WsolDataset) -> bool:
    """True when a ``head_classes``-way head cannot serve ``ds``: a different count than the
    dataset's class list (or ``num_classes``), or, when the count is only inferred from the
    labels (no class list), fewer classes than the largest label needs."""
    n = ds.num_classes
    return head_classes != n if ds.classes_known else head_classes < n


def mismatch_message(backbone: str, weights: str, head_classes: int, ds: WsolDataset) -> str:
    """The one-line error for a head that does not fit ``ds``, with what to do."""
    n = ds.num_classes
    fixes = [f"--weights FILE with a checkpoint trained on these {n} classes (see `wsol train`)"]
    if not ds.class_names and max((s.label for s in ds.samples), default=-1) < head_classes:
        fixes.append(f"--dataset-option num_classes={head_classes} if the labels index this head's classes")
    elif ds.class_names:
        fixes.append("a class list that matches the head")
    fixes.append(f"--new-head to evaluate a freshly initialised {n}-way head (untrained: its maps and "
                 "top-1 mean nothing)")
    what = "at least " if not ds.classes_known else ""
    return (f"{backbone}: the head of --weights {weights} has {head_classes} classes but dataset "
            f"'{ds.name}' has {what}{n} ({ds.class_source()}); pass " + ", or ".join(fixes))


def backbone_for_dataset(ds: WsolDataset, backbone: str, weights: str, device: torch.device,
                         new_head: bool = False, options: Optional[Dict[str, Any]] = None) -> Backbone:
    """Build ``backbone`` with ``weights`` for ``ds``.

    Random weights get a head of ``ds.num_classes``; pretrained weights and checkpoints keep
    their head when it fits (:func:`head_mismatch`); otherwise ``new_head`` re-initialises it
    (with a warning) and without it a :class:`WsolError` says what to do. ``options``: model
    options (``create_backbone``).
    """
    if weights in RANDOM_WEIGHTS:
        return create_backbone(backbone, weights, num_classes=ds.num_classes, device=device, options=options)
    bb = create_backbone(backbone, weights, num_classes=None, device=device, options=options)
    if not head_mismatch(bb.num_classes, ds):
        if not ds.classes_known:  # kept on a lower bound: say so, it cannot be checked
            log.warning("dataset '%s' has no class list: the %d-class head of --weights %s is kept because the "
                        "labels (up to %d) fit it; if they are not this head's classes, pass "
                        "--dataset-option num_classes=N", ds.name, bb.num_classes, weights, ds.num_classes - 1)
        return bb
    if not new_head:
        raise WsolError(mismatch_message(backbone, str(weights), bb.num_classes, ds))
    log.warning("%s: --new-head: the %d-class head of --weights %s is replaced by a freshly initialised "
                "%d-class head (untrained: its maps and top-1 mean nothing)",
                backbone, bb.num_classes, weights, ds.num_classes)
    bb.reset_classifier(ds.num_classes)
    return bb.to(device).eval()
