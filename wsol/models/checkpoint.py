"""Saving and loading backbone checkpoints (wsol's own and plain state dicts)."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

import logging

import torch

from wsol.errors import WsolError, first_line
from wsol.utils.io import atomic_write


#: more classes than any classification dataset has (ImageNet-21k: 21,843); a checkpoint
#: claiming more is corrupt, and building its head could exhaust memory
MAX_CLASSES = 100_000

log = logging.getLogger(__name__)


def save_checkpoint(backbone, path: str, extra: Optional[Dict[str, Any]] = None) -> None:
    """Write ``{'backbone', 'num_classes', 'model_options', 'state_dict', ...extra}`` atomically."""
    payload = {"backbone": backbone.name, "num_classes": backbone.num_classes,
               "model_options": dict(getattr(backbone, "model_options", {}) or {}),
               "state_dict": backbone.state_dict(), "wsol_checkpoint": 1}
    payload.update(extra or {})
    with atomic_write(path, "wb") as f:
        try:
            torch.save(payload, f)
        except RuntimeError as e:  # a full disk surfaces as PytorchStreamWriter's RuntimeError
            raise OSError(f"torch.save failed: {first_line(e)}") from None


def _state_dict_of(obj: Any, path: str) -> Dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict", "net"):
            if key in obj and isinstance(obj[key], dict):
                return obj[key]
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise WsolError(f"{path}: not a checkpoint (no state dict found)")


def _mismatch(own: Dict[str, torch.Tensor], sd: Dict[str, torch.Tensor]) -> List[str]:
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shape_bad = [k for k in own if k in sd and sd[k].shape != own[k].shape]
    bits = []
    if missing:
        bits.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
    if unexpected:
        bits.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
    if shape_bad:
        k = shape_bad[0]
        bits.append(f"shape mismatch at {k}: {tuple(sd[k].shape)} vs {tuple(own[k].shape)}")
    return bits


def _build_matching(entry, sd: Dict[str, torch.Tensor], n_cls: int, options: Dict[str, Any]):
    """Build ``entry`` with ``options`` for state dict ``sd``: (backbone, key-matched sd, problems)."""
    bb = entry.build(False, n_cls, options)
    own = bb.state_dict()
    if not any(k in own for k in sd):
        sd = {f"net.{k}": v for k, v in sd.items()}
    # a plain checkpoint may carry a head of another size: take it as the head size
    head_w = f"net.{_head_key(bb)}" if _head_key(bb) else None
    if head_w and head_w in sd and sd[head_w].shape[0] != own.get(head_w, sd[head_w]).shape[0]:
        bb = entry.build(False, int(sd[head_w].shape[0]), options)
        own = bb.state_dict()
    return bb, sd, _mismatch(own, sd)


def load_checkpoint(entry, path: str, num_classes: Optional[int] = None, options: Optional[Dict[str, Any]] = None):
    """Build ``entry``'s backbone and load ``path`` into it; keys may be the wrapper's
    (``net.…``), the bare net's, or carry a DataParallel ``module.`` prefix.

    Model options: ``options`` (the user's) over those a wsol checkpoint recorded. Keys must
    match exactly (strict); an ``adl`` option the user did not set is taken from the keys
    (ADL layers shift layer indices), and a mismatch that a ``large_feature_map`` flip would
    fix says so (for ResNet50 and InceptionV3 the keys cannot reveal it: say it explicitly).
    """
    if not os.path.isfile(path):
        raise WsolError(f"{path}: checkpoint file not found (--weights takes 'pretrained', 'random' or a file)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WsolError(f"{path}: cannot read checkpoint ({type(e).__name__}: {first_line(e)})") from None
    sd = {k[7:] if k.startswith("module.") else k: v for k, v in _state_dict_of(obj, path).items()}
    if isinstance(obj, dict) and obj.get("wsol_checkpoint") and obj.get("backbone") not in (None, entry.info.name):
        raise WsolError(f"{path}: checkpoint is for backbone '{obj['backbone']}', not '{entry.info.name}'")
    wsol_ckpt = isinstance(obj, dict) and obj.get("wsol_checkpoint")
    n_cls = obj.get("num_classes") if wsol_ckpt else None
    if n_cls is not None and (isinstance(n_cls, bool) or not isinstance(n_cls, int) or not 1 <= n_cls <= MAX_CLASSES):
        raise WsolError(f"{path}: checkpoint num_classes {n_cls!r} is not an integer in 1..{MAX_CLASSES}")
    n_cls = n_cls or num_classes or entry.default_classes
    recorded = dict(obj.get("model_options") or {}) if wsol_ckpt else {}
    user = dict(options or {})
    opts = {**{k: v for k, v in recorded.items() if k in entry.options}, **user}
    bb, sd_m, problems = _build_matching(entry, sd, n_cls, opts)
    if problems and "adl" in entry.options and "adl" not in user:
        flipped = {**opts, "adl": not bool(opts.get("adl", entry.options["adl"]))}
        alt = _build_matching(entry, sd, n_cls, flipped)
        if not alt[2]:
            log.info("%s: keys are those of %s with adl=%s", path, entry.info.name, flipped["adl"])
            bb, sd_m, problems = alt
    if problems:
        hint = ""
        if "large_feature_map" in entry.options and "large_feature_map" not in user:
            lfm = not bool(opts.get("large_feature_map", False))
            if not _build_matching(entry, sd, n_cls, {**opts, "large_feature_map": lfm})[2]:
                hint = f" (it matches large_feature_map={str(lfm).lower()}: pass --model-option large_feature_map={str(lfm).lower()})"
        raise WsolError(f"{path}: checkpoint does not match backbone '{entry.info.name}': " + "; ".join(problems) + hint)
    bb.load_state_dict(sd_m)
    return bb


def _head_key(bb) -> Optional[str]:
    fc = bb.classifier()
    for name, p in bb.net.named_parameters():
        if p is fc.weight:
            return name
    return None
