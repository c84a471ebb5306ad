"""``wsol train``: fine-tune a backbone with image-level labels only (Choe et al.'s recipe).

The recipe of "Evaluating WSOL right" (CVPR 2020): train transform resize 256x256 ->
random crop 224 -> horizontal flip; SGD with momentum 0.9 and weight decay 1e-4; the layers
that are not from the ImageNet checkpoint (``Backbone.new_parameters()``: the classifier)
at 10x the learning rate; the learning rate multiplied by 0.1 every ``lr_decay_epochs``.

The checkpoint is chosen on a held-out part of the *train* split (``holdout`` of the train
images of each class, drawn with the seed): its boxes are used only to pick the epoch with
the best MaxBoxAccV2 (the "train-fullsup" split of Choe et al.), or the best top-1 with
``select_by='top1'``. Every epoch writes ``<out>/last.pt`` (weights, optimizer, scheduler,
grad scaler, epoch, RNG states, log), so ``resume=True`` continues an interrupted run and
ends with the very weights an uninterrupted run would have (each epoch's shuffling and
augmentation draw from generators seeded by ``(seed, epoch)``).

The WSOL training method (``wsol_method``: cam, has, acol, spg, adl, cutmix; see
:mod:`wsol.training.methods`) turns each batch into a loss and picks the architecture:
``acol``, ``spg`` and ``adl`` train a model variant with the method's layers (see
:func:`method_architecture`). Checkpoints record the method, its hyperparameters and the
architecture, so ``wsol evaluate --backbone <the trained name> --weights best.pt`` rebuilds it.

Outputs in ``out``: ``last.pt``, ``best.pt`` (both loadable with
``create_backbone(name, weights=path)`` / ``wsol evaluate --weights``), ``train_log.csv``
(one row per epoch) and ``train_config.json``.
"""
from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from wsol.datasets.base import Sample, WsolDataset, build_dataset
from wsol.datasets.splits import split_holdout  # noqa: F401  (re-exported: wsol.training.train.split_holdout)
from wsol.engine.config import DEVICE
from wsol.training.methods import TrainMethod, create_train_method, list_train_methods
from wsol.errors import WsolError, first_line
from wsol.models.backbone import Backbone
from wsol.models.checkpoint import save_checkpoint
from wsol.models.registry import create_backbone
from wsol.models.training import param_groups, parse_train_layers, set_trainable
from wsol.report.csv import write_csv_atomic
from wsol.utils.io import write_text_atomic
from wsol.utils.options import check_options, option
from wsol.utils.outdirs import claim_output_dir
from wsol.transforms.image import ImageFolderView, train_transform

log = logging.getLogger(__name__)

LAST = "last.pt"
BEST = "best.pt"
LOG_FILE = "train_log.csv"
CONFIG_FILE = "train_config.json"
SELECT_BY = ("maxboxacc_v2", "top1", "last")
AMP_MODES = ("auto", "bf16", "fp16", "off")
#: Config fields that may differ between a run and its resumption.
_RESUMABLE_CHANGES = ("epochs", "resume", "progress", "data_workers", "device", "out")
#: The schedule of Choe et al.'s recipe: the values of the TrainConfig fields left unset (None),
#: unless the training method's ``recipe`` (its reference trainer's defaults) sets them.
SCHEDULE_DEFAULTS = {"epochs": 50, "lr": 1e-3, "batch_size": 32, "lr_decay_epochs": 15, "weight_decay": 1e-4}


@dataclass
class TrainConfig:
    """Everything a training run depends on (its fields are the ``wsol train`` options, each
    declared once: :mod:`wsol.utils.options`)."""

    dataset: str = option("cub", help="dataset adapter (see `wsol datasets`)")
    root: str = option("", help="dataset folder (for cub: the CUB_200_2011 folder holding images/)")
    split: str = option("train", help="split to train on")
    backbone: str = option("efficientnet_lite0", help="backbone name (see `wsol models`)")
    weights: str = option("pretrained", help="starting weights: 'pretrained' (ImageNet; the head is replaced by "
                                             "one sized for the dataset), 'random', or a checkpoint file")
    wsol_method: str = option("cam", choices=lambda: [m.name for m in list_train_methods()], help="how the classifier is trained for localization (`wsol methods "
                                          "--training` describes each); the hyperparameters below apply to "
                                          "their method only")
    method_options: Dict[str, object] = option(default_factory=dict, cli=False, help="--<method>-<option> flags")
    model_options: Dict[str, object] = option(default_factory=dict, cli=False, help="--model-option KEY=VALUE")
    # None: the --wsol-method's reference value (its ``recipe``), else SCHEDULE_DEFAULTS (resolve_schedule)
    epochs: Optional[int] = option(None, min=1, help="training epochs (default: the method's reference value, "
                                                     "`wsol methods --training`; 50 for Choe et al.'s)")
    lr: Optional[float] = option(None, min=0, min_open=True,
                                 help="learning rate of the pretrained layers; the new ones (classifier) get 10x "
                                      "(default: the method's; 1e-3 for Choe et al.'s)")
    batch_size: Optional[int] = option(None, min=1, help="images per step (default: the method's; 32 for "
                                                         "Choe et al.'s)")
    lr_decay_epochs: Optional[int] = option(None, min=1, metavar="N",
                                            help="multiply the learning rate by 0.1 every N epochs (default: the "
                                                 "method's; 15 for Choe et al.'s)")
    momentum: float = option(0.9, min=0, max=1, max_open=True, help="SGD momentum")
    weight_decay: Optional[float] = option(None, min=0, help="weight decay (default: the method's; 1e-4 for "
                                                             "Choe et al.'s)")
    nesterov: bool = option(False, help="Nesterov momentum, as wsolevaluation's trainer (off by default: wsol's "
                                        "demo was tuned without)")
    new_lr_mult: float = option(10.0, min=0, min_open=True, cli=False,
                                help="learning-rate multiplier of the new layers")
    train_layers: str = option("all", metavar="all|head|last:N",
                               help="what is trained: 'all' layers, only the classifier ('head'), or the classifier "
                                    "and the last N blocks/stages of the feature stack ('last:N'; new layers such "
                                    "as vgg16_gap's conv6 always train; e.g. ResNet layer4 = last:1, "
                                    "EfficientNet conv_head+bn2 = last:1, + blocks.6 = last:2). Frozen layers keep "
                                    "their BatchNorm statistics")
    holdout: float = option(0.1, min=0, max=1, max_open=True, metavar="FRACTION",
                            help="share of each class's train images held out (seeded) to choose the best epoch; "
                                 "their boxes are used for that choice only; 0 = keep the last epoch")
    select_by: str = option("maxboxacc_v2", choices=SELECT_BY,
                            help="how best.pt is chosen on the held-out images: MaxBoxAccV2 of --val-method CAMs, "
                                 "classification top-1, or simply the last epoch")
    val_method: str = option("cam", help="CAM method scored on the held-out images")
    val_batch_size: int = option(64, min=1, flag="--batch-size-eval",
                                 help="images per batch when scoring the held-out images")
    cam_step: float = option(0.01, min=0, max=1, min_open=True, max_open=True, cli=False,
                             help="threshold step of the held-out scoring")
    device: str = option("cpu", help="torch device: cpu, cuda, cuda:N or mps", **DEVICE)
    amp: str = option("auto", choices=AMP_MODES,
                      help="mixed precision on CUDA: bf16 or fp16 autocast (fp16 with a gradient scaler); 'auto' = "
                           "bf16 where supported, else fp16; ignored on CPU")
    out: str = option("", metavar="DIR", help="output folder (checkpoints, train_log.csv)")
    resume: bool = option(False, help="continue the run in --out from its last.pt (model, optimizer, scheduler, "
                                      "epoch, RNG); --epochs may be raised to train longer")
    data_workers: int = option(0, min=0, help="DataLoader worker processes for decoding and augmentation")
    seed: int = option(0, min=0, help="seed of everything: head initialisation, held-out split, shuffling, "
                                      "augmentation")
    dataset_options: Dict[str, object] = option(default_factory=dict, cli=False,
                                                help="--dataset-option KEY=VALUE")
    progress: bool = option(True, cli=False, help="progress bars (CLI: not -q)")


# ----------------------------------------------------------------------------- seeding
def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global RNG and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch`` (0-based): shuffling and augmentation depend on it only."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def _seed_worker(worker_id: int) -> None:
    s = torch.initial_seed() % 2**32  # set by the DataLoader from its generator
    random.seed(s)
    np.random.seed(s)


def rng_states() -> dict:
    """The global RNG states (python, numpy, torch CPU and CUDA) as checkpoint-safe values."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    st = {"python": random.getstate(),
          "numpy": {"kind": kind, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                    "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
          "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_states(st: dict) -> None:
    """Restore what :func:`rng_states` returned."""
    py = st["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = st["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


# ----------------------------------------------------------------------------- data
def _collate(batch):
    """(images, labels, errors): the loader's per-image read errors travel to the main process."""
    errors = [b[4] for b in batch if len(b) > 4 and b[4]]
    return torch.stack([b[0] for b in batch]), torch.tensor([b[1] for b in batch], dtype=torch.int64), errors


# ----------------------------------------------------------------------------- layers
# ----------------------------------------------------------------------------- AMP
def amp_dtype(mode: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype for ``mode`` on ``device`` (None: float32). AMP is CUDA-only."""
    if mode not in AMP_MODES:
        raise WsolError(f"--amp takes one of {', '.join(AMP_MODES)}, got {mode!r}")
    if mode == "off":
        return None
    if device.type != "cuda":
        if mode != "auto":
            log.warning("--amp %s is used on CUDA only; training in float32 on %s", mode, device)
        return None
    if mode == "bf16" or (mode == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


# ----------------------------------------------------------------------------- loop
def make_optimizer(bb: Backbone, trainable: Sequence[nn.Parameter], cfg: TrainConfig,
                   method: Optional[TrainMethod] = None) -> Tuple[torch.optim.Optimizer, object]:
    """The optimizer and per-epoch scheduler of ``method`` when its reference trainer has its
    own (``TrainMethod.make_optimizer``), else SGD (momentum, weight decay; new layers at
    ``new_lr_mult`` x lr) and the step decay (x0.1 every ``lr_decay_epochs``); call
    ``scheduler.step()`` once per epoch."""
    method = method or create_train_method("cam")
    cfg = resolve_schedule(cfg, method)
    own = method.make_optimizer(bb, trainable, cfg)
    if own is not None:
        return own
    opt = torch.optim.SGD(param_groups(bb, trainable, cfg.lr, cfg.new_lr_mult, cfg.weight_decay),
                          lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.nesterov)
    return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_decay_epochs, gamma=0.1)


def train_step(bb: Backbone, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
               images: torch.Tensor, labels: torch.Tensor, dtype: Optional[torch.dtype] = None,
               method: Optional[TrainMethod] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """One SGD step on a batch (autocast to ``dtype`` when given) with the loss of
    ``method`` (default: plain cross-entropy, ``cam``); returns the (detached) loss and
    logits computed before the step."""
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


def resolve_schedule(cfg: TrainConfig, method: TrainMethod) -> TrainConfig:
    """``cfg`` with each unset (None) schedule field taken from ``method.recipe``, else from
    :data:`SCHEDULE_DEFAULTS`."""
    fill = {k: method.recipe.get(k, v) for k, v in SCHEDULE_DEFAULTS.items() if getattr(cfg, k) is None}
    return replace(cfg, **fill)


def _check(cfg: TrainConfig) -> None:
    if not cfg.out:
        raise WsolError("training needs an output folder (--out DIR)")
    check_options(cfg)
    parse_train_layers(cfg.train_layers)


def _config_dict(cfg: TrainConfig) -> dict:
    return json.loads(json.dumps(asdict(cfg), default=str))


def _validate(cfg: TrainConfig, arch: str, bb: Backbone, holdout: WsolDataset) -> Dict[str, float]:
    """Top-1 and localization of the live model ``bb`` (architecture ``arch``) on the held-out
    images; the model comes back in the mode it went in."""
    from wsol.engine.run import EvalConfig, evaluate

    ecfg = EvalConfig(dataset=cfg.dataset, root=cfg.root, split=holdout.split, backbone=arch,
                      weights="live", method=cfg.val_method, batch_size=cfg.val_batch_size,
                      device=cfg.device, cam_step=cfg.cam_step, progress=False, seed=cfg.seed,
                      data_workers=cfg.data_workers)
    s = evaluate(ecfg, dataset=holdout, backbone=bb).summary.iloc[0]
    return {"val_top1": float(s["top1_cls"]), "val_gt_known_loc": float(s["gt_known_loc"]),
            "val_maxboxacc_v2": float(s["maxboxacc_v2"])}


def _has_class_maps(bb: Backbone) -> bool:
    """Does the model define its own class maps (ACoL's fused map), which ``cam`` uses?"""
    p = next(bb.parameters())
    with torch.no_grad():
        f = bb.forward_features(torch.zeros(1, 3, 224, 224, device=p.device, dtype=p.dtype))
        return bb.class_maps(f, torch.zeros(1, dtype=torch.long, device=p.device)) is not None


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
    return {"wsol_method": method.name, "method_options": method.option_dict(),
            "base_backbone": backbone}


def _load_resume(path: str) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WsolError(f"{path}: cannot read the checkpoint to resume from "
                        f"({type(e).__name__}: {first_line(e)})") from None


def train(cfg: TrainConfig) -> pd.DataFrame:
    """Fine-tune ``cfg.backbone`` on ``cfg.split`` with image labels only; return the
    per-epoch log (also written to ``<out>/train_log.csv``). See the module docstring."""
    from wsol.engine.run import resolve_device

    _check(cfg)   # the schema's one-line errors first (unset schedule fields are None here)
    method = create_train_method(cfg.wsol_method, cfg.method_options)
    cfg = replace(resolve_schedule(cfg, method), method_options=method.option_dict())  # recorded resolved
    arch, model_opts = method_architecture(method, cfg.backbone)  # a mismatch fails before any work
    dev = resolve_device(cfg.device)
    claim_output_dir(cfg.out, "train", [LAST, BEST, LOG_FILE, CONFIG_FILE])
    last_path = os.path.join(cfg.out, LAST)
    if os.path.exists(last_path) and not cfg.resume:
        raise WsolError(f"{cfg.out} already holds a training run ({LAST}); pass --resume to continue it "
                        "or choose another --out")
    seed_everything(cfg.seed)
    train_samples, holdout, select_by, num_classes = _split(cfg)
    bb = _build_backbone(cfg, arch, {**dict(cfg.model_options), **model_opts}, num_classes, select_by, dev)
    trainable, frozen_modules, trained_units = set_trainable(bb, cfg.train_layers)
    log.info("training %s (%s, --wsol-method %s) on %d images (%d held out), %d classes: %s, %.2fM parameters",
             arch, cfg.weights, method.name, len(train_samples), len(holdout), num_classes,
             ", ".join(trained_units), sum(p.numel() for p in trainable) / 1e6)
    opt, sched = make_optimizer(bb, trainable, cfg, method)
    dtype = amp_dtype(cfg.amp, dev)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    start, best_score, rows = _resume(cfg, last_path, bb, opt, sched, scaler)
    write_text_atomic(os.path.join(cfg.out, CONFIG_FILE), json.dumps(_config_dict(cfg), indent=1, sort_keys=True))
    if start >= cfg.epochs:
        log.info("%s already trained for %d epochs", cfg.out, start)
        return pd.DataFrame(rows)
    view = ImageFolderView(train_samples, train_transform(bb.mean, bb.std))
    record = method_record(method, cfg.backbone, arch)
    for epoch in range(start, cfg.epochs):
        row = _train_epoch(cfg, epoch, bb, view, opt, scaler, dtype, method, frozen_modules, dev)
        sched.step()
        st = {"config": _config_dict(cfg), "epoch": epoch + 1, "optimizer": opt.state_dict(),
              "scheduler": sched.state_dict(), "scaler": scaler.state_dict(), "rng": None,
              "best_score": best_score, "log": rows}
        bb.eval()
        if select_by != "last":  # the live model, no checkpoint round trip
            t1 = time.perf_counter()
            row.update(_validate(cfg, arch, bb, holdout))
            row["val_seconds"] = time.perf_counter() - t1
            score = row["val_maxboxacc_v2"] if select_by == "maxboxacc_v2" else row["val_top1"]
        else:
            score = float(epoch)
        row["best"] = bool(score > best_score)
        if row["best"]:
            best_score = score
            save_checkpoint(bb, os.path.join(cfg.out, BEST),
                            {**record, "epoch": epoch + 1, "select_by": select_by, "score": score})
        rows.append(row)
        # the RNG states after this epoch's validation: resumption continues from here
        save_checkpoint(bb, last_path, {**record, "train_state": {**st, "best_score": best_score, "log": rows,
                                                                  "rng": rng_states()}})
        write_csv_atomic(pd.DataFrame(rows), os.path.join(cfg.out, LOG_FILE))
        msg = ", ".join(f"{k}={v:.4g}" for k, v in row.items()
                        if k in ("train_loss", "train_top1", "val_top1", "val_maxboxacc_v2"))
        log.info("epoch %d/%d: %s%s", epoch + 1, cfg.epochs, msg, " (best)" if row["best"] else "")
    return pd.DataFrame(rows)


def _split(cfg: TrainConfig) -> Tuple[List[Sample], WsolDataset, str, int]:
    """(training samples, the held-out split, the selection rule that applies, the class count)."""
    full = build_dataset(cfg.dataset, cfg.root, cfg.split, **dict(cfg.dataset_options))
    if len(full) == 0:
        raise WsolError(f"split '{cfg.split}' of {cfg.root} has no images")
    train_samples, held = split_holdout(full.samples, cfg.holdout if cfg.select_by != "last" else 0.0, cfg.seed)
    holdout = WsolDataset(full.name, f"{cfg.split}-holdout", full.root, full.image_root, held, full.class_names)
    if cfg.select_by != "last" and not held:
        log.warning("no held-out images (--holdout 0): best.pt is the last epoch")
    return train_samples, holdout, cfg.select_by if held else "last", full.num_classes


def _build_backbone(cfg: TrainConfig, arch: str, model_opts: dict, num_classes: int, select_by: str,
                    dev: torch.device) -> Backbone:
    """The model to fine-tune, with a head for the dataset's classes; the validation method
    is checked now rather than after the first epoch."""
    bb = create_backbone(arch, cfg.weights, num_classes=num_classes, device=dev, options=model_opts,
                         new_head=True)  # fine-tuning: a new head for the dataset's classes is the point
    if bb.num_classes != num_classes:  # a checkpoint file trained on other classes
        log.warning("%s: the checkpoint's head has %d classes, the dataset %d: head re-initialised",
                    cfg.weights, bb.num_classes, num_classes)
        bb.reset_classifier(num_classes)
        bb.to(dev)
    if select_by == "maxboxacc_v2":
        from wsol.cams.base import create_method

        create_method(cfg.val_method)
        if cfg.val_method == "cam" and not bb.info.cam_exact and not _has_class_maps(bb):
            raise WsolError(f"CAM is not exact for '{arch}' ({bb.info.note or 'head is not GAP + linear'}): "
                            "choose the checkpoint with --val-method gradcam or --select-by top1")
    return bb


def _resume(cfg: TrainConfig, last_path: str, bb: Backbone, opt, sched, scaler) -> Tuple[int, float, List[dict]]:
    """(first epoch to run, best score so far, log rows so far): from ``last.pt`` with
    ``--resume`` (the options must match), else a fresh start."""
    if not (cfg.resume and os.path.exists(last_path)):
        if cfg.resume:
            log.info("--resume: no %s in %s yet; starting from epoch 1", LAST, cfg.out)
        return 0, -math.inf, []
    ck = _load_resume(last_path)
    st = ck.get("train_state") if isinstance(ck, dict) else None
    if not st:
        raise WsolError(f"{last_path}: not a `wsol train` checkpoint (no training state)")
    old = st["config"]
    new = _config_dict(cfg)
    defaults = _config_dict(TrainConfig())  # keys added since the run was started
    diff = [k for k in new if k not in _RESUMABLE_CHANGES and old.get(k, defaults.get(k)) != new[k]]
    if diff:
        raise WsolError(f"--resume: the run in {cfg.out} was made with other options "
                        f"({', '.join(f'{k}={old.get(k)!r}' for k in diff)})")
    bb.load_state_dict(ck["state_dict"])
    opt.load_state_dict(st["optimizer"])
    sched.load_state_dict(st["scheduler"])
    scaler.load_state_dict(st["scaler"])
    set_rng_states(st["rng"])
    log.info("resuming %s after epoch %d", last_path, int(st["epoch"]))
    return int(st["epoch"]), float(st["best_score"]), list(st["log"])


def _train_epoch(cfg: TrainConfig, epoch: int, bb: Backbone, view, opt, scaler, dtype, method: TrainMethod,
                 frozen_modules: Sequence[nn.Module], dev: torch.device) -> dict:
    """One pass over the training images (seeded per epoch); -> the epoch's log row so far."""
    es = _epoch_seed(cfg.seed, epoch)
    seed_everything(es)
    gen = torch.Generator()
    gen.manual_seed(es)
    loader = torch.utils.data.DataLoader(view, batch_size=cfg.batch_size, shuffle=True, generator=gen,
                                         num_workers=cfg.data_workers, collate_fn=_collate,
                                         worker_init_fn=_seed_worker, pin_memory=dev.type == "cuda",
                                         persistent_workers=False)
    bb.train()
    for m in frozen_modules:
        m.eval()
    lrs = [g["lr"] for g in opt.param_groups]
    t0 = time.perf_counter()
    tot_loss, tot_correct, tot_n = 0.0, 0, 0
    bar = tqdm(total=len(view), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="img", disable=not cfg.progress,
               leave=False)
    try:
        for images, labels, errors in loader:
            if errors:
                raise WsolError(f"{errors[0]} (training needs every image of the split)")
            images = images.to(dev, non_blocking=True)
            labels = labels.to(dev, non_blocking=True)
            loss, logits = train_step(bb, opt, scaler, images, labels, dtype, method)
            n = labels.numel()
            tot_loss += float(loss) * n
            tot_correct += int((logits.argmax(1) == labels).sum())
            tot_n += n
            bar.update(n)
            bar.set_postfix(loss=f"{tot_loss / tot_n:.3f}")
    finally:
        bar.close()
    return {"epoch": epoch + 1, "lr": lrs[0], "lr_new": lrs[-1], "train_loss": tot_loss / max(tot_n, 1),
            "train_top1": 100.0 * tot_correct / max(tot_n, 1), "n_train": tot_n,
            "train_seconds": time.perf_counter() - t0}
