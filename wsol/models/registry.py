"""Backbone registry: string names -> Backbone, after timm's ``create_model``/``list_models``.

Names: wsol's own entries (offline EfficientNet-Lite, torchvision families, Choe et al.'s
architectures) and, for any other name, timm (``timm/NAME`` forces timm,
``torchvision/NAME`` forces torchvision).
"""
from __future__ import annotations

import fnmatch
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import torch

from wsol.errors import UnknownNameError, WsolError
from wsol.models.backbone import Backbone, BackboneInfo, TimmBackbone, check_cam_exact

log = logging.getLogger(__name__)

# builder(pretrained: bool, num_classes: int, **model_options) -> Backbone
Builder = Callable[..., Backbone]


@dataclass
class ModelEntry:
    info: BackboneInfo
    builder: Builder
    default_classes: int = 1000
    options: Dict[str, Any] = field(default_factory=dict)  # model option -> default value

    def build(self, pretrained: bool, num_classes: int, options: Optional[Dict[str, Any]] = None) -> Backbone:
        """The builder called with the model options (only entries that declare options take any)."""
        opts = check_model_options(self, options)
        return self.builder(pretrained, num_classes, **opts) if self.options else self.builder(pretrained, num_classes)


_REGISTRY: Dict[str, ModelEntry] = {}


def register_backbone(info: BackboneInfo, builder: Builder, default_classes: int = 1000,
                      options: Optional[Dict[str, Any]] = None) -> None:
    """Register ``builder`` under ``info.name``; ``options``: the model options it accepts
    (name -> default), passed to it as keyword arguments."""
    _REGISTRY[info.name] = ModelEntry(info, builder, default_classes, dict(options or {}))


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def check_model_options(entry: ModelEntry, options: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """``options`` checked against what ``entry`` accepts and coerced to the defaults' types
    (booleans from true/false/1/0/yes/no); unknown names or bad values: one-line error."""
    out: Dict[str, Any] = {}
    for key, value in (options or {}).items():
        if key not in entry.options:
            accepted = ", ".join(sorted(entry.options)) or "none"
            raise WsolError(f"backbone '{entry.info.name}' has no model option '{key}' (accepted: {accepted})")
        default = entry.options[key]
        try:
            if isinstance(default, bool):
                text = str(value).strip().lower()
                if text not in _TRUE + _FALSE:
                    raise ValueError
                value = text in _TRUE
            elif isinstance(default, float):
                value = float(value)
            elif isinstance(default, int):
                value = int(value)
        except (TypeError, ValueError):
            raise WsolError(f"model option {key}={value!r} for '{entry.info.name}': "
                            f"expected a {type(default).__name__} like {default!r}") from None
        out[key] = value
    return out


def _load_entries() -> None:
    import importlib

    for mod in ("torchvision_models", "efficientnet_lite", "wsoleval_archs"):
        try:
            importlib.import_module(f"wsol.models.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"wsol.models.{mod}":
                raise


def list_models(pattern: str = "*", include_timm: bool = False) -> List[BackboneInfo]:
    """Registered backbones whose name matches ``pattern`` (fnmatch); timm names optionally."""
    _load_entries()
    out = [e.info for n, e in sorted(_REGISTRY.items()) if fnmatch.fnmatch(n, pattern)]
    if include_timm:
        import timm

        for n in timm.list_models(pattern):
            out.append(BackboneInfo(f"timm/{n}", "timm", "forward_features", 0, False, "not checked"))
    return out


def model_options(name: str) -> Dict[str, Any]:
    """The model options backbone ``name`` accepts, with their defaults (wsol entries only)."""
    _load_entries()
    entry = _REGISTRY.get(name)
    return dict(entry.options) if entry else {}


def _timm_entry(name: str) -> ModelEntry:
    import timm

    if name not in timm.list_models() and name not in timm.list_models(pretrained=True):
        raise UnknownNameError("backbone", name, list(_REGISTRY) + timm.list_models())

    def build(pretrained: bool, num_classes: int) -> Backbone:
        try:
            net = timm.create_model(name, pretrained=pretrained, num_classes=num_classes)
        except Exception as e:  # offline hub failures come in many types
            if not pretrained:
                raise
            raise WsolError(_offline_hint_timm(name, e)) from None
        info = BackboneInfo(name, "timm", "forward_features", _stride(net), False)
        bb = TimmBackbone(net, info)
        bb.info.cam_exact = check_cam_exact(bb)
        if not bb.info.cam_exact:
            bb.info.note = "head is not global-average-pool + linear"
        return bb

    return ModelEntry(BackboneInfo(name, "timm", "forward_features", 0, False, "checked when built"), build)


def _stride(net) -> int:
    try:
        return int(net.feature_info[-1]["reduction"])
    except Exception:
        return 0


def _offline_hint_timm(name: str, err: Exception) -> str:
    import timm

    hub = ""
    try:
        cfg = timm.models.get_pretrained_cfg(name)
        hub = cfg.hf_hub_id or cfg.url or ""
    except Exception:
        pass
    cache = os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface"))
    return (f"cannot fetch pretrained timm weights for '{name}' ({type(err).__name__}: {str(err).splitlines()[0][:120]}); "
            f"with internet they are downloaded from {hub or 'the Hugging Face hub'} into {cache}; "
            f"offline, download the checkpoint elsewhere and pass --weights FILE")


def resolve(name: str) -> ModelEntry:
    """The registry entry for ``name`` (wsol entries first, then timm)."""
    _load_entries()
    if name.startswith("timm/"):
        return _timm_entry(name[5:])
    if name.startswith("torchvision/"):
        name = name[len("torchvision/"):]
        if name not in _REGISTRY or _REGISTRY[name].info.source != "torchvision":
            raise UnknownNameError("torchvision backbone", name,
                                   [n for n, e in _REGISTRY.items() if e.info.source == "torchvision"])
    if name in _REGISTRY:
        return _REGISTRY[name]
    if "+" in name:  # a generic method variant: NAME+acol, NAME+spg, NAME+adl
        from wsol.models.method_heads import variant_entry

        return variant_entry(name)
    return _timm_entry(name)


def create_backbone(name: str, weights: str = "random", num_classes: Optional[int] = None,
                    device: str | torch.device = "cpu", options: Optional[Dict[str, Any]] = None) -> Backbone:
    """Build backbone ``name`` with ``weights`` = 'random' | 'pretrained' | a checkpoint path.

    ``num_classes``: the head size wanted (None keeps the entry's default, or the
    checkpoint's). With 'pretrained' and a different ``num_classes`` the head is re-initialised.
    ``options``: model options (``wsol models`` lists them; e.g. ``large_feature_map``).
    """
    entry = resolve(name)
    check_model_options(entry, options)
    if weights in ("random", "none", "", None):
        bb = entry.build(False, num_classes or entry.default_classes, options)
    elif weights == "pretrained":
        bb = entry.build(True, entry.default_classes, options)
        if num_classes and num_classes != bb.num_classes:
            log.warning("%s: pretrained head has %d classes, dataset has %d: head re-initialised",
                        name, bb.num_classes, num_classes)
            bb.reset_classifier(num_classes)
    else:
        from wsol.models.checkpoint import load_checkpoint

        bb = load_checkpoint(entry, weights, num_classes, options)
    return bb.to(device).eval()
