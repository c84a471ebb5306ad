"""wsolevaluation's VGG16 variants (CAM/HaS/CutMix, ADL, ACoL, SPG), with its module names.

Layer lists per method and feature-map size (``large_feature_map``: 28x28 at 224, else
14x14); 'M' max-pool 2x2/2, 'M1' 3x3/2 pad 1, 'M2' 3x3/1 pad 1, 'A' an ADL layer. A conv
entry is conv 3x3 + ReLU, so ``features.<i>`` keys follow the reference's indices.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from wsol.models.adl import ADL
from wsol.models.wsoleval_common import (AcolNet, WsolevalNet, acol_classifier, init_like_reference,
                                         spg_outputs, spg_side_branches)

Cfg = List[Union[int, str]]
CONFIGS: Dict[str, Dict[bool, Cfg]] = {
    "cam": {False: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
            True: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, 512, 512, 512]},
    "acol": {False: [64, 64, "M1", 128, 128, "M1", 256, 256, 256, "M1", 512, 512, 512, "M1", 512, 512, 512, "M2"],
             True: [64, 64, "M1", 128, 128, "M1", 256, 256, 256, "M1", 512, 512, 512, "M2", 512, 512, 512, "M2"]},
    "spg": {False: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M"],
            True: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M"]},
    "adl": {False: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", "A", 512, 512, 512, "A", "M", 512, 512, 512, "A"],
            True: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", "A", 512, 512, 512, "A", 512, 512, 512, "A"]},
}


def make_layers(cfg: Cfg, adl_drop_rate: float = 0.75, adl_drop_threshold: float = 0.9) -> nn.Sequential:
    layers: List[nn.Module] = []
    c_in = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        elif v == "M1":
            layers.append(nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        elif v == "M2":
            layers.append(nn.MaxPool2d(kernel_size=3, stride=1, padding=1))
        elif v == "A":
            layers.append(ADL(adl_drop_rate, adl_drop_threshold))
        else:
            layers += [nn.Conv2d(c_in, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            c_in = int(v)
    return nn.Sequential(*layers)


class VggCam(WsolevalNet):
    """Conv layers (CAM or ADL list) + conv6 3x3 512->1024 + ReLU; GAP + ``fc``."""

    head = "fc"
    init_mode = "he"

    def __init__(self, num_classes: int = 1000, large_feature_map: bool = False, adl: bool = False,
                 adl_drop_rate: float = 0.75, adl_drop_threshold: float = 0.9):
        super().__init__()
        self.features = make_layers(CONFIGS["adl" if adl else "cam"][large_feature_map], adl_drop_rate,
                                    adl_drop_threshold)
        self.conv6 = nn.Conv2d(512, 1024, kernel_size=3, padding=1)
        self.relu = nn.ReLU(inplace=False)
        self.fc = nn.Linear(1024, num_classes)
        init_like_reference(self.modules(), self.init_mode)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv6(self.features(x)))


class VggAcol(AcolNet):
    """ACoL conv layers, 3x3/1 average pool, two ACoL heads 512 -> 1024 -> 1024 -> classes."""

    def __init__(self, num_classes: int = 1000, large_feature_map: bool = False, acol_drop_threshold: float = 0.7):
        super().__init__()
        self.drop_threshold = float(acol_drop_threshold)
        self.features = make_layers(CONFIGS["acol"][large_feature_map])
        self.classifier_A = acol_classifier(512, num_classes, inplace=False)
        self.classifier_B = acol_classifier(512, num_classes, inplace=False)
        init_like_reference(self.modules(), "xavier")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.features(x), kernel_size=3, stride=1, padding=1)


def _three_convs(c_in: int, n: int) -> nn.Sequential:
    layers: List[nn.Module] = []
    for i in range(n):
        layers += [nn.Conv2d(c_in if i == 0 else 512, 512, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class VggSpg(WsolevalNet):
    """conv1-conv3 (+pool3), SPG_A_1 (conv4 block), pool (14x14 only), SPG_A_2 (conv5 block),
    SPG_A_3 (2 convs), SPG_A_4 1x1 conv classifier; side branches B (after A_1, A_2) and C."""

    head = "SPG_A_4"

    def __init__(self, num_classes: int = 1000, large_feature_map: bool = False):
        super().__init__()
        self.large_feature_map = bool(large_feature_map)
        self.features = make_layers(CONFIGS["spg"][large_feature_map])
        self.SPG_A_1 = _three_convs(256, 3)
        self.SPG_A_2 = _three_convs(512, 3)
        self.SPG_A_3 = _three_convs(512, 2)
        self.SPG_A_4 = nn.Conv2d(512, num_classes, kernel_size=1, padding=0)
        self.SPG_B_1a, self.SPG_B_2a, self.SPG_B_shared, self.SPG_C = spg_side_branches(512, 512, 512, 512, 512)
        init_like_reference(self.modules(), "xavier")

    def _a1(self, x: torch.Tensor) -> torch.Tensor:
        x = self.SPG_A_1(self.features(x))
        return x if self.large_feature_map else F.max_pool2d(x, kernel_size=3, stride=2, padding=1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.SPG_A_3(self.SPG_A_2(self._a1(x)))

    def forward_train(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        x = self._a1(x)
        logits_b1 = self.SPG_B_shared(self.SPG_B_1a(x))
        x = self.SPG_A_2(x)
        logits_b2 = self.SPG_B_shared(self.SPG_B_2a(x))
        x = self.SPG_A_3(x)
        logits_c = self.SPG_C(x)
        return spg_outputs(self, self.SPG_A_4(x), labels, logits_b1, logits_b2, logits_c)


# ImageNet (torchvision vgg16) key -> key in each variant; new layers are the rest
def pretrained_key_map(net: nn.Module, method: str) -> Dict[str, str]:
    """torchvision ``vgg16`` conv keys -> this net's keys, as the reference's loader maps them:
    SPG takes conv4/conv5 into ``SPG_A_1``/``SPG_A_2``; otherwise the k-th conv of
    ``features`` takes the k-th torchvision conv (shifted indices with ADL)."""
    tv_convs = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    if method == "spg":
        own = [f"features.{i}" for i in tv_convs[:7]] + [f"SPG_A_1.{i}" for i in (0, 2, 4)] + \
              [f"SPG_A_2.{i}" for i in (0, 2, 4)]
    else:
        own = [f"features.{i}" for i, m in enumerate(net.features) if isinstance(m, nn.Conv2d)]
    return {f"features.{t}.{s}": f"{o}.{s}" for t, o in zip(tv_convs, own) for s in ("weight", "bias")}
