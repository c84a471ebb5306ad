"""Backbone registry: string names -> Backbone, after timm's ``create_model``/``list_models``.

Names: wsol's own entries (offline EfficientNet-Lite, torchvision families, Choe et al.'s
architectures) and, for any other name, timm (``timm/NAME`` forces timm,
``torchvision/NAME`` forces torchvision).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import torch

from wsol.errors import UnknownNameError, WsolError, first_line
from wsol.models.backbone import Backbone, BackboneInfo, TimmBackbone, check_cam_exact
from wsol.utils.rules import Rule
from wsol.utils.registry import Registry

log = logging.getLogger(__name__)

# builder(pretrained: bool, num_classes: int, **model_options) -> Backbone
Builder = Callable[..., Backbone]


@dataclass
class ModelEntry:
    info: BackboneInfo
    builder: Builder
    default_classes: int = 1000
    #: () -> are the pretrained weights on this machine now (no download needed)? None: unknown
    weights_offline: Optional[Callable[[], bool]] = None
    options: Dict[str, Any] = field(default_factory=dict)  # model option -> default value

    def build(self, pretrained: bool, num_classes: int, options: Optional[Dict[str, Any]] = None) -> Backbone:
        """The builder called with the model options (only entries that declare options take any)."""
        opts = check_model_options(self, options)
        return self.builder(pretrained, num_classes, **opts) if self.options else self.builder(pretrained, num_classes)


BACKBONES: Registry[ModelEntry] = Registry("backbone", [f"wsol.models.{m}" for m in
                                                        ("torchvision_models", "efficientnet_lite", "wsoleval_archs",
                                                         "vit", "vit_wsol", "bas_archs", "cam_back_again")])


def register_backbone(info: BackboneInfo, builder: Builder, default_classes: int = 1000,
                      weights_offline: Optional[Callable[[], bool]] = None,
                      options: Optional[Dict[str, Any]] = None) -> None:
    """Register ``builder`` under ``info.name``; ``weights_offline()`` says whether its
    pretrained weights are at hand without a download (for ``wsol models``); ``options``: the
    model options it accepts (name -> default), passed to it as keyword arguments."""
    BACKBONES.add(info.name, ModelEntry(info, builder, default_classes, weights_offline, dict(options or {})))


def model_option_rule(key: str, default: Any) -> Rule:
    """The rule of a model option, from its default: its type, and [0, 1] for drop rates and
    thresholds on normalized maps (``adl_drop_rate``, ``acol_drop_threshold``, ...)."""
    kind = next(k for t, k in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str")) if isinstance(default, t))
    if kind == "float" and key.endswith(("_rate", "_threshold")):
        return Rule("float", 0.0, 1.0)
    return Rule(kind)


def check_model_options(entry: ModelEntry, options: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """``options`` checked against what ``entry`` accepts, each by its rule
    (:func:`model_option_rule`; text from ``--model-option`` / YAML converted); unknown names
    or bad values: one-line error."""
    out: Dict[str, Any] = {}
    for key, value in (options or {}).items():
        if key not in entry.options:
            accepted = ", ".join(sorted(entry.options)) or "none"
            raise WsolError(f"backbone '{entry.info.name}' has no model option '{key}' (accepted: {accepted})")
        rule = model_option_rule(key, entry.options[key])
        out[key] = rule.coerce(f"model option {key} of '{entry.info.name}'", value)
    return out


def model_options(name: str) -> Dict[str, Any]:
    """The model options backbone ``name`` accepts, with their defaults (wsol entries only)."""
    entry = BACKBONES.find(name)
    return dict(entry.options) if entry else {}


def name_pattern(pattern: str) -> str:
    """A bare word (no ``*?[``) matches as a substring: ``resnet`` -> ``*resnet*``."""
    return pattern if any(ch in pattern for ch in "*?[") else f"*{pattern}*"


def weights_offline(name: str) -> Optional[bool]:
    """Whether backbone ``name``'s pretrained weights are available right now without a
    download (package installed or file in the hub cache); None when wsol cannot tell."""
    if name.startswith("timm/"):
        return timm_weights_cached(name[5:])
    entry = BACKBONES.find(name)
    if entry is None or entry.weights_offline is None:
        return None
    try:
        return bool(entry.weights_offline())
    except Exception:  # a probe must never break a listing
        return None


def list_models(pattern: str = "*", include_timm: bool = False) -> List[BackboneInfo]:
    """Registered backbones whose name matches ``pattern`` (fnmatch; a bare word matches as
    a substring); timm names optionally."""
    pattern = name_pattern(pattern)
    out = [e.info for _, e in BACKBONES.items(pattern)]
    if include_timm:
        import timm

        for n in timm.list_models(pattern):
            out.append(BackboneInfo(f"timm/{n}", "timm", "forward_features", 0, False, "not checked"))
    return out


def _timm_entry(name: str) -> ModelEntry:
    import timm

    if name not in timm.list_models() and name not in timm.list_models(pretrained=True):
        raise BACKBONES.unknown(name, timm.list_models())

    def build(pretrained: bool, num_classes: int) -> Backbone:
        if pretrained and timm_weights_cached(name) is False and not hub_reachable():
            # fail fast: the hub client would otherwise retry for about a minute
            raise WsolError(_offline_hint_timm(name, ConnectionError("the hub is not reachable and the "
                                                                      "weights are not in the cache")))
        try:
            net = timm.create_model(name, pretrained=pretrained, num_classes=num_classes)
        except Exception as e:  # offline hub failures come in many types
            if not pretrained:
                raise
            raise WsolError(_offline_hint_timm(name, e)) from None
        from wsol.models.vit import ViTBackbone, is_timm_vit, vit_info

        if is_timm_vit(net):  # token features on the patch grid (wsol.models.vit)
            return ViTBackbone(net, vit_info(name, net))
        info = BackboneInfo(name, "timm", "forward_features", _stride(net), False)
        bb = TimmBackbone(net, info)
        bb.info.cam_exact = check_cam_exact(bb)
        if not bb.info.cam_exact:
            bb.info.note = "head is not global-average-pool + linear"
        return bb

    return ModelEntry(BackboneInfo(name, "timm", "forward_features", 0, False, "checked when built"), build)


def timm_weights_cached(name: str) -> Optional[bool]:
    """Are timm's pretrained weights for ``name`` in the Hugging Face (or torch hub) cache?
    None when timm has no pretrained config for it."""
    import timm

    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except Exception:
        cfg = None
    if cfg is None:
        return None
    if getattr(cfg, "hf_hub_id", None):
        from huggingface_hub import try_to_load_from_cache

        repo = cfg.hf_hub_id
        names = [n for n in (getattr(cfg, "hf_hub_filename", None), "model.safetensors", "pytorch_model.bin") if n]
        return any(isinstance(try_to_load_from_cache(repo, n), str) for n in names)
    if getattr(cfg, "url", None):
        return os.path.isfile(os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(cfg.url)))
    return None


def hub_reachable(timeout: float = 3.0) -> bool:
    """Can this machine open a connection to the Hugging Face hub (``HF_ENDPOINT``) now?
    False at once under ``HF_HUB_OFFLINE=1``."""
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


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
    return (f"cannot fetch pretrained timm weights for '{name}' ({type(err).__name__}: {first_line(err)}); "
            f"with internet they are downloaded from {hub or 'the Hugging Face hub'} into {cache}; "
            f"offline, download the checkpoint elsewhere and pass --weights FILE")


def resolve(name: str) -> ModelEntry:
    """The registry entry for ``name`` (wsol entries first, then timm)."""
    BACKBONES.load()
    if name.startswith("timm/"):
        return _timm_entry(name[5:])
    if name.startswith("torchvision/"):
        name = name[len("torchvision/"):]
        entry = BACKBONES.find(name)
        if entry is None or entry.info.source != "torchvision":
            raise UnknownNameError("torchvision backbone", name,
                                   [n for n, e in BACKBONES.items() if e.info.source == "torchvision"])
    entry = BACKBONES.find(name)
    if entry is not None:
        return entry
    if "+" in name:  # a generic method variant: NAME+acol, NAME+spg, NAME+adl, NAME+bas
        return variant_entry(name)
    return _timm_entry(name)


def create_backbone(name: str, weights: str = "random", num_classes: Optional[int] = None,
                    device: str | torch.device = "cpu", new_head: bool = False,
                    options: Optional[Dict[str, Any]] = None) -> Backbone:
    """Build backbone ``name`` with ``weights`` = 'random' | 'pretrained' | a checkpoint path.

    ``num_classes``: the head size wanted (None keeps the entry's default, or the
    checkpoint's). With 'pretrained' and a different ``num_classes`` the head is
    re-initialised only when ``new_head`` (fine-tuning); otherwise that is an error.
    ``options``: model options (``wsol models`` lists them; e.g. ``large_feature_map``).
    """
    entry = resolve(name)
    check_model_options(entry, options)
    if weights in ("random", "none", "", None):
        bb = entry.build(False, num_classes or entry.default_classes, options)
    elif weights == "pretrained":
        bb = entry.build(True, entry.default_classes, options)
        if num_classes and num_classes != bb.num_classes:
            if not new_head:
                raise WsolError(f"{name}: the pretrained head has {bb.num_classes} classes, not {num_classes}; "
                                f"pass new_head=True to replace it by a fresh {num_classes}-way head")
            log.warning("%s: pretrained head has %d classes, dataset has %d: head re-initialised",
                        name, bb.num_classes, num_classes)
            bb.reset_classifier(num_classes)
    else:
        from wsol.models.checkpoint import load_checkpoint

        bb = load_checkpoint(entry, weights, num_classes, options)
    return bb.to(device).eval()


def variant_entry(name: str):
    """The registry entry of generic variant ``name`` (``BASE+acol|spg|adl|bas``): the base
    entry with the method's heads (wsol.models.method_heads, wsol.models.bas_variant)."""
    from wsol.models.bas_variant import BasVariant
    from wsol.models.method_heads import OPTIONS, AcolVariant, SpgVariant, add_adl, split_variant

    base_name, kind = split_variant(name)
    base_entry = resolve(base_name)
    b = base_entry.info
    notes = {"acol": "ACoL heads on the last feature map; cam = the fused map of both heads",
             "spg": "SPG stages A1-A3 + side branches on the last feature map; cam = the SPG_A_4 map",
             "adl": "ADL layers at the end of the last two stages; inactive at evaluation",
             "bas": "BAS heads: classifier_loc on the map before the last downsampling (stride 16), "
                    "classifier_cls after the remaining stages; cam = classifier_loc's sigmoid map of the class; "
                    "method bas = the foreground map (topk classes)"}
    layer = {"acol": b.feature_layer, "spg": "SPG_A_3", "adl": b.feature_layer,
             "bas": "stage before the last /2"}[kind]
    stride = b.stride // {"bas": 2}.get(kind, 1)  # BAS's map is one stage before the last /2
    info = BackboneInfo(name, b.source, layer, stride, kind == "spg" or (kind == "adl" and b.cam_exact), notes[kind])

    def build(pretrained: bool, num_classes: int, **options: Any) -> Backbone:
        base = base_entry.build(pretrained, num_classes)
        # ADL keeps the base's head (exact as the base is); SPG's head is GAP + 1x1 conv (exact)
        exact = {"acol": False, "spg": True, "adl": base.info.cam_exact, "bas": False}[kind]
        built = BackboneInfo(**{**vars(info), "cam_exact": exact})
        if kind == "adl":
            return add_adl(base, built, **options)
        return {"acol": AcolVariant, "spg": SpgVariant, "bas": BasVariant}[kind](base, built, num_classes, **options)

    return ModelEntry(info, build, base_entry.default_classes, weights_offline=base_entry.weights_offline,
                      options=dict(OPTIONS[kind]))
