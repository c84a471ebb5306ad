"""wsolevaluation's ResNet50 variants (CAM/HaS/CutMix, ADL, ACoL, SPG), with its module names.

torchvision's Bottleneck blocks (same keys as the reference's); layer4 at stride 1 and
layer3 at stride 2, or 1 with ``large_feature_map`` (14x14 / 28x28 maps at 224). ADL layers
sit after block 0 of layer3 and after blocks 0 and 2 of layer4 (so ``layer3.1``,
``layer4.1`` and ``layer4.4`` are ADL and the blocks after them shift by one). SPG splits
layer3 into ``SPG_A1`` (block 0) and ``SPG_A2`` (blocks 1-5).
"""
from __future__ import annotations

from typing import Dict, List, Optional

import torch
from torch import nn
from torchvision.models.resnet import Bottleneck

from wsol.models.adl import ADL
from wsol.models.wsoleval_common import (AcolNet, WsolevalNet, acol_classifier, init_like_reference,
                                         spg_outputs, spg_side_branches)

LAYERS = (3, 4, 6, 3)
ADL_POSITIONS = {3: (0,), 4: (0, 2)}  # stage -> blocks followed by an ADL layer


class _Trunk:
    """Stem and stage builders shared by the variants (``self.inplanes`` tracks widths)."""

    inplanes: int

    def _stem(self) -> None:
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    def _blocks(self, planes: int, blocks: int, stride: int) -> List[nn.Module]:
        out = planes * Bottleneck.expansion
        down = None
        if stride != 1 or self.inplanes != out:
            down = nn.Sequential(nn.Conv2d(self.inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out))
        layers: List[nn.Module] = [Bottleneck(self.inplanes, planes, stride, down)]
        self.inplanes = out
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return layers

    def _stem_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))


class ResNetCam(_Trunk, WsolevalNet):
    """ResNet50, GAP, ``fc``; ``adl=True`` inserts the ADL layers."""

    head = "fc"

    def __init__(self, num_classes: int = 1000, large_feature_map: bool = False, adl: bool = False,
                 adl_drop_rate: float = 0.75, adl_drop_threshold: float = 0.9):
        super().__init__()
        self._stem()
        strides = (1, 2, 1 if large_feature_map else 2, 1)
        for stage, (planes, n, s) in enumerate(zip((64, 128, 256, 512), LAYERS, strides), start=1):
            blocks = self._blocks(planes, n, s)
            if adl:
                for pos in reversed(ADL_POSITIONS.get(stage, ())):
                    blocks.insert(pos + 1, ADL(adl_drop_rate, adl_drop_threshold))
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        self.fc = nn.Linear(512 * Bottleneck.expansion, num_classes)
        init_like_reference(self.modules(), "xavier")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self._stem_forward(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class ResNetAcol(_Trunk, AcolNet):
    """ResNet50 trunk + two ACoL heads 2048 -> 1024 -> 1024 -> classes."""

    init_mode = "he"

    def __init__(self, num_classes: int = 1000, large_feature_map: bool = False, acol_drop_threshold: float = 0.7):
        super().__init__()
        self.drop_threshold = float(acol_drop_threshold)
        self._stem()
        self.layer1 = nn.Sequential(*self._blocks(64, 3, 1))
        self.layer2 = nn.Sequential(*self._blocks(128, 4, 2))
        self.layer3 = nn.Sequential(*self._blocks(256, 6, 1 if large_feature_map else 2))
        self.layer4 = nn.Sequential(*self._blocks(512, 3, 1))
        self.classifier_A = acol_classifier(2048, num_classes, inplace=False)
        self.classifier_B = acol_classifier(2048, num_classes, inplace=False)
        init_like_reference(self.modules(), self.init_mode)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self._stem_forward(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class ResNetSpg(_Trunk, WsolevalNet):
    """ResNet50 with layer3 split into SPG_A1/SPG_A2, ``SPG_A4`` 1x1 conv classifier, side
    branches B (after SPG_A1 and SPG_A2, 1024 wide) and C (on layer4, 512 wide)."""

    head = "SPG_A4"

    def __init__(self, num_classes: int = 1000, large_feature_map: bool = False):
        super().__init__()
        self._stem()
        self.layer1 = nn.Sequential(*self._blocks(64, 3, 1))
        self.layer2 = nn.Sequential(*self._blocks(128, 4, 2))
        l3 = self._blocks(256, 6, 1 if large_feature_map else 2)
        self.SPG_A1, self.SPG_A2 = nn.Sequential(*l3[:1]), nn.Sequential(*l3[1:])
        self.layer4 = nn.Sequential(*self._blocks(512, 3, 1))
        self.SPG_A4 = nn.Conv2d(2048, num_classes, kernel_size=1)
        self.SPG_B_1a, self.SPG_B_2a, self.SPG_B_shared, self.SPG_C = spg_side_branches(1024, 1024, 1024, 2048, 512)
        init_like_reference(self.modules(), "xavier")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self._stem_forward(x)
        return self.layer4(self.SPG_A2(self.SPG_A1(self.layer2(self.layer1(x)))))

    def forward_train(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        x = self.SPG_A1(self.layer2(self.layer1(self._stem_forward(x))))
        logits_b1 = self.SPG_B_shared(self.SPG_B_1a(x))
        x = self.SPG_A2(x)
        logits_b2 = self.SPG_B_shared(self.SPG_B_2a(x))
        x = self.layer4(x)
        return spg_outputs(self, self.SPG_A4(x), labels, logits_b1, logits_b2, self.SPG_C(x))


def pretrained_key_map(net: nn.Module, method: str, sd_keys) -> Dict[str, str]:
    """torchvision ``resnet50`` key -> this net's key, as the reference's loader maps them
    (ADL: block indices shifted past the ADL layers; SPG: layer3 -> SPG_A1/SPG_A2)."""
    out = {}
    for k in sd_keys:
        parts = k.split(".")
        if method == "adl" and parts[0] in ("layer3", "layer4"):
            stage, block = int(parts[0][-1]), int(parts[1])
            parts[1] = str(block + sum(1 for p in ADL_POSITIONS[stage] if p < block))
        elif method == "spg" and parts[0] == "layer3":
            block = int(parts[1])
            parts[:2] = ["SPG_A1", "0"] if block == 0 else ["SPG_A2", str(block - 1)]
        out[k] = ".".join(parts)
    return out
