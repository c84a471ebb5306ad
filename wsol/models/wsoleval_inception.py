"""wsolevaluation's InceptionV3 variants (CAM/HaS/CutMix, ADL, ACoL, SPG), with its module names.

The trunk is torchvision's InceptionV3 to Mixed_6e with the reference's changes for a larger
map: first conv padded, both stem max-pools padded with ceil mode, one 3x3/2 max-pool after
Mixed_5d (left out with ``large_feature_map``: 28x28 instead of 14x14 at 224), Mixed_6a at
stride 1. CAM/ADL/SPG add ``SPG_A3_1b``/``SPG_A3_2b`` (3x3 convs to 1024 + ReLU) and the
classifier ``SPG_A4``, a 1x1 conv (GAP of it equals a linear layer on the GAP). No
``transform_input``: inputs are ImageNet-normalized. In training, CAM and SPG apply dropout
0.5 before each of the three new convs (ADL and ACoL do not), as the reference.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.inception import BasicConv2d, InceptionA, InceptionB, InceptionC

from wsol.models.adl import ADL
from wsol.models.wsoleval_common import (AcolNet, WsolevalNet, acol_classifier, init_like_reference,
                                         spg_outputs, spg_side_branches)


class InceptionBStride1(InceptionB):
    """Mixed_6a at stride 1 (3x3 convs padded, max-pool 3x3/1 padded), as wsolevaluation."""

    def __init__(self, in_channels: int):
        super().__init__(in_channels)
        for conv in (self.branch3x3.conv, self.branch3x3dbl_3.conv):
            conv.stride = (1, 1)
            conv.padding = (1, 1)

    def _forward(self, x):
        b3 = self.branch3x3(x)
        d = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return [b3, d, F.max_pool2d(x, kernel_size=3, stride=1, padding=1)]


class _Trunk(nn.Module):
    """Conv2d_1a_3x3 .. Mixed_6e; ``stem_to_5d`` and ``mixed_6`` are the two halves."""

    def _build_trunk(self, large_feature_map: bool) -> None:
        self.large_feature_map = bool(large_feature_map)
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2, padding=1)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionBStride1(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)

    def stem_to_5d(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1, ceil_mode=True)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1, ceil_mode=True)
        return self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))

    def pool_5d(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.large_feature_map else F.max_pool2d(x, kernel_size=3, stride=2, ceil_mode=True)

    def mixed_6a_to_6d(self, x: torch.Tensor) -> torch.Tensor:
        return self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(self.Mixed_6a(x))))


def _a3(c_in: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, 1024, kernel_size=3, padding=1), nn.ReLU(inplace=True))


class InceptionCam(_Trunk, WsolevalNet):
    """Trunk + SPG_A3_1b + SPG_A3_2b, GAP, ``SPG_A4``; ``adl=True`` adds ADL after Mixed_5d,
    Mixed_6e and SPG_A3_2b (``ADL_5d``, ``ADL_6e``, ``ADL_A3_2b``: no parameters)."""

    head = "SPG_A4"

    def __init__(self, num_classes: int = 1000, large_feature_map: bool = False, adl: bool = False,
                 adl_drop_rate: float = 0.75, adl_drop_threshold: float = 0.9):
        super().__init__()
        self.adl = bool(adl)
        self.logits_dropout = not self.adl
        if self.adl:
            self.ADL_5d = ADL(adl_drop_rate, adl_drop_threshold)
            self.ADL_6e = ADL(adl_drop_rate, adl_drop_threshold)
            self.ADL_A3_2b = ADL(adl_drop_rate, adl_drop_threshold)
        self._build_trunk(large_feature_map)
        self.SPG_A3_1b = _a3(768)
        self.SPG_A3_2b = _a3(1024)
        self.SPG_A4 = nn.Conv2d(1024, num_classes, kernel_size=1, padding=0)
        init_like_reference(self.modules(), "xavier")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_to_5d(x)
        if self.adl:
            x = self.ADL_5d(x)
        x = self.Mixed_6e(self.mixed_6a_to_6d(self.pool_5d(x)))
        if self.adl:
            return self.ADL_A3_2b(self.SPG_A3_2b(self.SPG_A3_1b(self.ADL_6e(x))))
        x = self.SPG_A3_1b(F.dropout(x, 0.5, self.training))
        return self.SPG_A3_2b(F.dropout(x, 0.5, self.training))


class InceptionAcol(_Trunk, AcolNet):
    """Trunk (to Mixed_6e) + two ACoL heads 768 -> 1024 -> 1024 -> classes."""

    def __init__(self, num_classes: int = 1000, large_feature_map: bool = False, acol_drop_threshold: float = 0.7):
        super().__init__()
        self.drop_threshold = float(acol_drop_threshold)
        self._build_trunk(large_feature_map)
        self.classifier_A = acol_classifier(768, num_classes, inplace=True)
        self.classifier_B = acol_classifier(768, num_classes, inplace=True)
        init_like_reference(self.modules(), "xavier")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.Mixed_6e(self.mixed_6a_to_6d(self.pool_5d(self.stem_to_5d(x))))


class InceptionSpg(_Trunk, WsolevalNet):
    """Trunk + SPG_A3_1b/2b + ``SPG_A4``; branch B1 on the pooled Mixed_5d output (288 ch),
    B2 on Mixed_6d's output (the reference's choice), C on the dropped-out SPG_A3_2b output."""

    head = "SPG_A4"
    logits_dropout = True

    def __init__(self, num_classes: int = 1000, large_feature_map: bool = False):
        super().__init__()
        self._build_trunk(large_feature_map)
        self.SPG_A3_1b = _a3(768)
        self.SPG_A3_2b = _a3(1024)
        self.SPG_A4 = nn.Conv2d(1024, num_classes, kernel_size=1, padding=0)
        self.SPG_B_1a, self.SPG_B_2a, self.SPG_B_shared, self.SPG_C = spg_side_branches(288, 768, 512, 1024, 512)
        init_like_reference(self.modules(), "xavier")

    def _head_convs(self, feat: torch.Tensor) -> torch.Tensor:
        x = self.SPG_A3_1b(F.dropout(feat, 0.5, self.training))
        return self.SPG_A3_2b(F.dropout(x, 0.5, self.training))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._head_convs(self.Mixed_6e(self.mixed_6a_to_6d(self.pool_5d(self.stem_to_5d(x)))))

    def forward_train(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        x = self.pool_5d(self.stem_to_5d(x))
        logits_b1 = self.SPG_B_shared(self.SPG_B_1a(x))
        x = self.mixed_6a_to_6d(x)
        logits_b2 = self.SPG_B_shared(self.SPG_B_2a(x))
        x = F.dropout(self._head_convs(self.Mixed_6e(x)), 0.5, self.training)
        return spg_outputs(self, self.SPG_A4(x), labels, logits_b1, logits_b2, self.SPG_C(x))
