"""CAM Back Again's models (Yasuki & Taki, CVPR 2024) as backbones, so that their checkpoints
load as they are (``docs/training.md``, "CAM Back Again").

The reference builds ``nn.Sequential(nn.Sequential(stem, stages), Net2Head)`` from a timm
ConvNeXt (its ``norm_pre`` and head, with the head's LayerNorm, dropped); ``Net2Head`` is an
average pool over the whole map, ``fc`` (a linear layer to the classes) and a softmax. A
checkpoint is that model's bare state dict: keys ``0.0.*`` (stem), ``0.1.<stage>.*``,
``1.fc.weight``, ``1.fc.bias``. Here the logits are ``fc``'s output (the softmax is left out:
it changes no ranking and no map); the features are the last stage's map, so ``cam`` is exact.

- ``cba_convnext_base_384``: the released CUB model (timm ``convnext_base.fb_in22k_ft_in1k_384``,
  1024 channels, 200 classes, inputs normalized with mean = std = 0.5). The release runs at
  384 px (12x12 maps); wsol's input rule feeds 224 (7x7).
- ``cba_convnext_tiny``: the same construction on ``convnext_tiny`` (768 channels, ImageNet
  mean/std), the reference fixtures' model.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from wsol.errors import WsolError, first_line
from wsol.models.backbone import IMAGENET_MEAN, IMAGENET_STD, BackboneInfo, NetBackbone
from wsol.models.registry import register_backbone


class Net2Head(nn.Module):
    """The reference's head: global average pool, ``fc`` (the softmax is not applied here)."""

    def __init__(self, num_classes: int, channels: int):
        super().__init__()
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.fc(feats.mean(dim=(2, 3)))


def _features(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return net[0](x)


def build_cba(timm_name: str, pretrained: bool, num_classes: int, name: str,
              mean: Sequence[float], std: Sequence[float]) -> NetBackbone:
    """timm ``timm_name``'s stem and stages + ``Net2Head`` (ImageNet trunk if ``pretrained``)."""
    import timm

    try:
        convnext = timm.create_model(timm_name, pretrained=pretrained)
    except Exception as e:  # offline hub failures come in many types
        raise WsolError(f"{name}: cannot build timm {timm_name} with pretrained={pretrained} "
                        f"({type(e).__name__}: {first_line(e)}); pass --weights FILE or random") from None
    stem, stages = list(convnext.children())[:2]
    channels = int(convnext.num_features)
    net = nn.Sequential(nn.Sequential(stem, stages), Net2Head(num_classes, channels))
    bb = NetBackbone(net, _info(name), _features, "1.fc", mean=mean, std=std)
    bb.mark_new("net.1")
    return bb


_SPECS = {"cba_convnext_base_384": ("convnext_base.fb_in22k_ft_in1k_384", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
          "cba_convnext_tiny": ("convnext_tiny", IMAGENET_MEAN, IMAGENET_STD)}


def _info(name: str) -> BackboneInfo:
    return BackboneInfo(name, "wsol", "stages (last)", 32, True,
                        f"CAM Back Again (Yasuki & Taki 2024): timm {_SPECS[name][0]} stem + stages, GAP, fc; "
                        "keys as the release (0.0.*, 0.1.*, 1.fc.*)")


def _builder(name: str):
    timm_name, mean, std = _SPECS[name]
    return lambda pretrained, num_classes: build_cba(timm_name, pretrained, num_classes, name, mean, std)


for _name in _SPECS:
    register_backbone(_info(_name), _builder(_name), default_classes=200)
