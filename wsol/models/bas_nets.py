"""The four BAS nets (wpy1999/BAS, ``WSOL/Model/*.py``) with the reference's module names, so
that its checkpoints load with their own keys (``docs/training.md``, "BAS"). At 224 input:

- ``BasResNet50``: torchvision ResNet-50 naming (``conv1, bn1, layer1..4``, no ``fc``),
  layer3 at stride 1 (``x_loc`` = its 28x28 output, 1024 channels), a 2x2 max-pool, then
  layer4 at stride 1 (14x14, 2048 channels);
- ``BasVgg16``: ``conv1_1 .. conv5_3`` (bias, no BN), pools after blocks 1-4 only;
  ``x_loc`` = relu4_3 (512 channels, 28x28) before pool4; the tail is pool4 + conv5;
- ``BasInceptionV3``: Inception-v3 modules ``Conv2d_1a_3x3 .. Mixed_7c`` (BN eps 0.001),
  Mixed_6a at stride 1, ``x_loc`` = Mixed_6e (768 channels, 28x28); Mixed_7a's stride-2
  convs and max-pool are padded by 1 (14x14);
- ``BasMobileNetV1``: MobileNet-V1 with ReLU as ``model.0 .. model.13``; ``x_loc`` = the
  output of ``model.11`` (512 channels, 28x28), the tail ``model.12..13`` (14x14, 1024).
"""
from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.inception import InceptionD, InceptionE

from wsol.models.bas_common import BasNet, cls_head, loc_head, xavier_init
from wsol.models.wsoleval_inception import _Trunk as _InceptionTrunk
from wsol.models.wsoleval_resnet import LAYERS
from wsol.models.wsoleval_resnet import _Trunk as _ResNetTrunk


class BasResNet50(_ResNetTrunk, BasNet):
    arch = "resnet50"

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._stem()
        for stage, (planes, n, s) in enumerate(zip((64, 128, 256, 512), LAYERS, (1, 2, 1, 1)), start=1):
            setattr(self, f"layer{stage}", nn.Sequential(*self._blocks(planes, n, s)))
        self.classifier_cls = cls_head(2048, num_classes)
        self.classifier_loc = loc_head(1024, num_classes)
        xavier_init(self.modules())

    def trunk(self, x):
        return self.layer3(self.layer2(self.layer1(self._stem_forward(x))))

    def tail_modules(self):
        return {"layer4": self.layer4}

    def tail(self, x, mods):
        return mods["layer4"](F.max_pool2d(x, kernel_size=2))


_VGG_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


class BasVgg16(BasNet):
    arch = "vgg16"
    bas_clamp = 0.0

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        c_in = 3
        for b, (width, n) in enumerate(_VGG_BLOCKS, start=1):
            for i in range(1, n + 1):
                setattr(self, f"conv{b}_{i}", nn.Conv2d(c_in, width, kernel_size=3, padding=1))
                c_in = width
        self.classifier_cls = cls_head(512, num_classes)
        self.classifier_loc = loc_head(512, num_classes)

    def _block(self, x: torch.Tensor, b: int, mods: Dict[str, nn.Module]) -> torch.Tensor:
        for i in range(1, _VGG_BLOCKS[b - 1][1] + 1):
            x = F.relu(mods[f"conv{b}_{i}"](x))
        return x

    def trunk(self, x):
        mods = dict(self.named_children())
        for b in (1, 2, 3):
            x = F.max_pool2d(self._block(x, b, mods), 2)
        return self._block(x, 4, mods)

    def tail_modules(self):
        return {f"conv5_{i}": getattr(self, f"conv5_{i}") for i in (1, 2, 3)}

    def tail(self, x, mods):
        return self._block(F.max_pool2d(x, 2), 5, mods)


class InceptionDPadded(InceptionD):
    """Mixed_7a as BAS builds it: its stride-2 convs and max-pool padded by 1 (28 -> 14)."""

    def __init__(self, in_channels: int):
        super().__init__(in_channels)
        for conv in (self.branch3x3_2.conv, self.branch7x7x3_4.conv):
            conv.padding = (1, 1)

    def _forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return [b3, b7, F.max_pool2d(x, kernel_size=3, stride=2, padding=1)]


class BasInceptionV3(_InceptionTrunk, BasNet):
    arch = "inception_v3"

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._build_trunk(large_feature_map=True)  # no pool after Mixed_5d: 28x28 at Mixed_6e
        self.Mixed_7a = InceptionDPadded(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048)
        self.classifier_cls = cls_head(2048, num_classes)
        self.classifier_loc = loc_head(768, num_classes)
        xavier_init(self.modules())

    def trunk(self, x):
        return self.Mixed_6e(self.mixed_6a_to_6d(self.stem_to_5d(x)))

    def tail_modules(self):
        return {"Mixed_7a": self.Mixed_7a, "Mixed_7b": self.Mixed_7b, "Mixed_7c": self.Mixed_7c}

    def tail(self, x, mods):
        return mods["Mixed_7c"](mods["Mixed_7b"](mods["Mixed_7a"](x)))


def _conv_bn(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def _conv_dw(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False), nn.BatchNorm2d(c_in),
                         nn.ReLU(inplace=True),
                         nn.Conv2d(c_in, c_out, 1, 1, 0, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


_MOBILENET = ((32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 1),
              (512, 512, 1), (512, 512, 1), (512, 512, 1), (512, 512, 1), (512, 512, 1), (512, 1024, 2),
              (1024, 1024, 1))


class BasMobileNetV1(BasNet):
    arch = "mobilenet_v1"

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.model = nn.Sequential(_conv_bn(3, 32, 2), *(_conv_dw(a, b, s) for a, b, s in _MOBILENET))
        self.classifier_cls = cls_head(1024, num_classes)
        self.classifier_loc = loc_head(512, num_classes)
        xavier_init(self.modules())

    def trunk(self, x):
        return self.model[:-2](x)

    def tail_modules(self):
        return {"tail": self.model[-2:]}

    def tail(self, x, mods):
        return mods["tail"](x)


NETS = {"resnet50": BasResNet50, "vgg16": BasVgg16, "inception_v3": BasInceptionV3, "mobilenet_v1": BasMobileNetV1}
