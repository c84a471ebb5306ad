"""The training loop of ``wsol train``: build the model for the method, run the epochs
(each seeded by ``(seed, epoch)``), score the selection split, write checkpoints and the log.

The recipe (defaults, schedule, optimizer) is :mod:`wsol.training.recipe`; checkpoints and
resumption :mod:`wsol.training.checkpoints`; the selection split
:mod:`wsol.training.selection`; the WSOL methods :mod:`wsol.training.methods`.
"""
from __future__ import annotations

import logging
import os
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple

import json

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from wsol.errors import WsolError
from wsol.models.backbone import Backbone
from wsol.models.registry import create_backbone
from wsol.models.training import set_trainable
from wsol.report.csv import write_csv_atomic
from wsol.training import checkpoints as ck
from wsol.training import selection
from wsol.training.methods import TrainMethod, create_train_method
from wsol.training.recipe import TrainConfig, amp_dtype, config_dict, method_optimizer, resolve, set_epoch_lr
from wsol.transforms.image import ImageFolderView, train_transform
from wsol.utils.io import write_text_atomic
from wsol.utils.options import check_options
from wsol.utils.outdirs import claim_output_dir

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- seeding
def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global RNG and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch`` (0-based): shuffling and augmentation depend on it only."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def _seed_worker(worker_id: int) -> None:
    s = torch.initial_seed() % 2**32  # set by the DataLoader from its generator
    random.seed(s)
    np.random.seed(s)


def _collate(batch):
    """(images, labels, errors): the loader's per-image read errors travel to the main process."""
    errors = [b[4] for b in batch if len(b) > 4 and b[4]]
    return torch.stack([b[0] for b in batch]), torch.tensor([b[1] for b in batch], dtype=torch.int64), errors


# ----------------------------------------------------------------------------- the step
def train_step(bb: Backbone, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
               images: torch.Tensor, labels: torch.Tensor, dtype: Optional[torch.dtype] = None,
               method: Optional[TrainMethod] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """One SGD step on a batch (autocast to ``dtype`` when given) with the loss of
    ``method`` (default: plain cross-entropy, ``cam``): the loss, then zero the gradients,
    backpropagate and step, as the reference trainer orders them. Returns the (detached)
    loss and logits computed before the step."""
    method = method or create_train_method("cam")
    ctx = torch.autocast(images.device.type, dtype=dtype) if dtype is not None else nullcontext()
    with ctx:
        loss, logits = method.loss(bb, images, labels)
    if not torch.isfinite(loss):
        raise WsolError(f"the training loss is {loss.item()} (lower --lr?)")
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    return loss.detach(), logits.detach()


# ----------------------------------------------------------------------------- the model
def method_architecture(method: TrainMethod, backbone: str) -> Tuple[str, Dict[str, object]]:
    """(backbone name, model options) that ``method`` trains for ``backbone``: the backbone
    itself for the methods that train the plain architecture (cam, has, cutmix), else the
    method's variant of it (:func:`wsol.models.method_heads.variant_for`: the reference's
    ``*_acol``/``*_spg``/``adl=true`` for Choe et al.'s architectures, ``NAME+acol`` ... for
    the others) with the method's hyperparameters as model options."""
    from wsol.models.method_heads import variant_for

    own = method.architecture_for(backbone)
    return own if own is not None else variant_for(backbone, method.architecture, method.model_options())


def method_record(method: TrainMethod, backbone: str, arch: str) -> dict:
    """What checkpoints record about the training method (besides ``backbone``, the
    architecture trained, and ``model_options``, what it was built with): the method's name
    and hyperparameters and the backbone asked for."""
    return {"wsol_method": method.name, "method_options": method.option_dict(), "base_backbone": backbone}


def build_backbone(cfg: TrainConfig, arch: str, model_opts: dict, num_classes: int,
                   dev: torch.device) -> Backbone:
    """The model to fine-tune, with a head for the dataset's classes, initialised by the
    architecture's own rule (for Choe et al.'s nets, the reference's)."""
    bb = create_backbone(arch, cfg.weights, num_classes=num_classes, device=dev, options=model_opts,
                         new_head=True)  # fine-tuning: a new head for the dataset's classes is the point
    if bb.num_classes != num_classes:  # a checkpoint file trained on other classes
        log.warning("%s: the checkpoint's head has %d classes, the dataset %d: head re-initialised",
                    cfg.weights, bb.num_classes, num_classes)
        bb.reset_classifier(num_classes)
        bb.to(dev)
    return bb


# ----------------------------------------------------------------------------- the epochs
def train_epoch(cfg: TrainConfig, epoch: int, bb: Backbone, view, opt, scaler, dtype, method: TrainMethod,
                frozen_modules: Sequence[nn.Module], dev: torch.device, sched=None) -> dict:
    """One pass over the training images (seeded per epoch) at the epoch's learning rate;
    -> the epoch's log row so far (``lr``: the base group's rate, ``lr_new``: the 10x group's)."""
    if sched is None:
        lrs = set_epoch_lr(opt, epoch + 1, cfg)
    else:  # the method's own schedule (stepped after each epoch)
        lrs = {"lr": opt.param_groups[0]["lr"], "lr_new": opt.param_groups[-1]["lr"]}
    es = epoch_seed(cfg.seed, epoch)
    seed_everything(es)
    gen = torch.Generator()
    gen.manual_seed(es)
    loader = torch.utils.data.DataLoader(view, batch_size=cfg.batch_size, shuffle=True, generator=gen,
                                         num_workers=cfg.data_workers, collate_fn=_collate,
                                         worker_init_fn=_seed_worker, pin_memory=dev.type == "cuda")
    bb.train()
    for m in frozen_modules:
        m.eval()
    t0 = time.perf_counter()
    tot_loss, tot_correct, tot_n = 0.0, 0, 0
    with tqdm(total=len(view), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="img", disable=not cfg.progress,
              leave=False) as bar:
        for images, labels, errors in loader:
            if errors:
                raise WsolError(f"{errors[0]} (training needs every image of the split)")
            loss, logits = train_step(bb, opt, scaler, images.to(dev, non_blocking=True),
                                      labels.to(dev, non_blocking=True), dtype, method)
            labels = labels.to(dev)
            tot_loss += float(loss) * labels.numel()
            tot_correct += int((logits.argmax(1) == labels).sum())
            tot_n += labels.numel()
            bar.update(labels.numel())
            bar.set_postfix(loss=f"{tot_loss / tot_n:.3f}")
    return {"epoch": epoch + 1, **lrs, "train_loss": tot_loss / max(tot_n, 1),
            "train_top1": 100.0 * tot_correct / max(tot_n, 1), "n_train": tot_n,
            "train_seconds": time.perf_counter() - t0}


@dataclass
class _Run:
    """What the epochs of one run share."""

    cfg: TrainConfig
    arch: str
    bb: Backbone
    method: TrainMethod
    data: selection.TrainData
    opt: torch.optim.Optimizer
    sched: object
    scaler: torch.amp.GradScaler
    dtype: Optional[torch.dtype]
    frozen: List[nn.Module]
    dev: torch.device
    record: dict


def _finish_epoch(run: _Run, row: dict, state: ck.RunState) -> None:
    """Score the selection split, write best.pt / last.pt / train_log.csv, log a line."""
    cfg, bb, epoch = run.cfg, run.bb, row["epoch"]
    bb.eval()
    if run.data.selection is not None:  # the live model, no checkpoint round trip
        t1 = time.perf_counter()
        row.update(selection.score(cfg, run.arch, bb, run.data.selection))
        row["val_seconds"] = time.perf_counter() - t1
    value = selection.select_score(row, run.data.select_by, epoch)
    row["best"] = bool(value > state.best_score)
    if row["best"]:
        state.best_score = value
        ck.save_best(bb, cfg.out, run.record, epoch, run.data.select_by, value)
    state.rows.append(row)
    ck.save_last(bb, cfg, run.record, epoch, run.opt, run.scaler, state)
    write_csv_atomic(pd.DataFrame(state.rows), os.path.join(cfg.out, ck.LOG_FILE))
    msg = ", ".join(f"{k}={v:.4g}" for k, v in row.items()
                    if k in ("lr", "train_loss", "train_top1", "val_top1", "val_maxboxacc_v2"))
    log.info("epoch %d/%d: %s%s", epoch, cfg.epochs, msg, " (best)" if row["best"] else "")


def _setup(cfg: TrainConfig) -> _Run:
    """Check the options, read the data, build the model and the optimizer."""
    from wsol.engine.run import resolve_device

    method = create_train_method(cfg.wsol_method, cfg.method_options)
    cfg = replace(cfg, method_options=method.option_dict())  # recorded with every default
    arch, model_opts = method_architecture(method, cfg.backbone)  # a mismatch fails before any work
    dev = resolve_device(cfg.device)
    claim_output_dir(cfg.out, "train", [ck.LAST, ck.BEST, ck.LOG_FILE, ck.CONFIG_FILE])
    if os.path.exists(os.path.join(cfg.out, ck.LAST)) and not cfg.resume:
        raise WsolError(f"{cfg.out} already holds a training run ({ck.LAST}); pass --resume to continue it "
                        "or choose another --out")
    seed_everything(cfg.seed)
    data = selection.prepare(cfg)
    bb = build_backbone(cfg, arch, {**dict(cfg.model_options), **model_opts}, data.num_classes, dev)
    selection.check_val_method(cfg, arch, bb, data.select_by)
    trainable, frozen, units = set_trainable(bb, cfg.train_layers)
    n_sel = len(data.selection) if data.selection is not None else 0
    log.info("training %s (%s, --wsol-method %s, recipe %s) on %d images (%d to select), %d classes: %s, "
             "%.2fM parameters", arch, cfg.weights, method.name, cfg.recipe, len(data.train), n_sel,
             data.num_classes, ", ".join(units), sum(p.numel() for p in trainable) / 1e6)
    opt, sched = method_optimizer(bb, trainable, cfg, method)
    dtype = amp_dtype(cfg.amp, dev)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    return _Run(cfg, arch, bb, method, data, opt, sched, scaler, dtype, frozen, dev,
                method_record(method, cfg.backbone, arch))


def train(cfg: TrainConfig) -> pd.DataFrame:
    """Fine-tune ``cfg.backbone`` on ``cfg.split`` with image labels only; return the
    per-epoch log (also written to ``<out>/train_log.csv``). With ``cfg.test_split`` the
    checkpoint ``cfg.eval_checkpoint`` is then evaluated on it (``<out>/test/``)."""
    check_options(cfg, ["wsol_method"])  # the schema's refusal line before the registry's
    run = _setup(resolve(cfg, create_train_method(cfg.wsol_method, cfg.method_options)))
    cfg = run.cfg
    state = ck.resume(cfg, run.bb, run.opt, run.scaler)
    for _ in range(state.start if run.sched is not None else 0):  # the method's own schedule, where it was
        run.sched.step()
    write_text_atomic(os.path.join(cfg.out, ck.CONFIG_FILE), json.dumps(config_dict(cfg), indent=1, sort_keys=True))
    if state.start >= cfg.epochs:
        log.info("%s already trained for %d epochs", cfg.out, state.start)
    view = ImageFolderView(run.data.train, train_transform(run.bb.mean, run.bb.std))
    for epoch in range(state.start, cfg.epochs):
        row = train_epoch(cfg, epoch, run.bb, view, run.opt, run.scaler, run.dtype, run.method, run.frozen, run.dev,
                          run.sched)
        if run.sched is not None:
            run.sched.step()
        _finish_epoch(run, row, state)
    if cfg.test_split:
        name = ck.LAST if cfg.eval_checkpoint == "last" else ck.BEST
        res = selection.evaluate_test(cfg, run.arch, os.path.join(cfg.out, name))
        log.info("%s on %s: MaxBoxAccV2 %.2f, top-1 %.2f", name, cfg.test_split, res["maxboxacc_v2"], res["top1_cls"])
    return pd.DataFrame(state.rows)
