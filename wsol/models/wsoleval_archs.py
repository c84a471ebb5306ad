"""Choe et al.'s (CVPR 2020, "Evaluating WSOL right") three CAM architectures.

All three end in GAP + linear on a 14x14 map at 224 input (feature stride 16), so ``cam``
is exact on them:

- ``vgg16_gap``: VGG16's 13 conv layers without the last max-pool (pool5), a 3x3 conv
  512->1024 + ReLU, GAP, linear.
- ``resnet50_s1``: torchvision's ResNet50 with stride 1 in the last stage (layer4's first
  block: conv2 and the downsample conv), GAP, linear.
- ``inception_v3_gap``: InceptionV3 cut after Mixed_6e, with wsolevaluation's changes for a
  larger map (first conv padded, both stem max-pools padded with ceil mode, one 3x3/2
  max-pool after Mixed_5d, Mixed_6a at stride 1), then two 3x3 convs 768->1024->1024 (each
  + ReLU), GAP, linear. wsolevaluation's 1x1 conv to the classes followed by GAP is the
  same function as our GAP followed by the linear layer. Map: 14x14 at 224, 18x18 at 299.
  No ``transform_input``: inputs are ImageNet-normalized, as in wsolevaluation. The
  training-time dropout wsolevaluation puts before each new conv is left out.

``pretrained=True`` loads torchvision's ImageNet-1k V1 checkpoint of the base net (the one
Choe et al. started from; read from the torch hub cache, downloaded otherwise, one-line
error offline) into the shared layers; the new layers stay random and are marked so that
``Backbone.new_parameters()`` returns them with the classifier (10x lr in the recipe).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models.inception import BasicConv2d, InceptionA, InceptionB, InceptionC

from wsol.models.backbone import BackboneInfo, NetBackbone
from wsol.models.registry import register_backbone
from wsol.models.torchvision_models import (_resnet_features, he_init_bias_free_convs, load_shared_weights,
                                           torchvision_state_dict, torchvision_weights_cached)

_VGG16_NO_POOL5 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]


class VGG16GAP(nn.Module):
    """VGG16 conv1-conv5 (no pool5) + conv6 3x3 512->1024 + ReLU; GAP + ``fc``.

    ``features`` keeps torchvision's indices 0..29, so ``vgg16`` checkpoint keys fit.
    """

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.features = torchvision.models.vgg.make_layers(_VGG16_NO_POOL5, batch_norm=False)
        self.conv6 = nn.Conv2d(512, 1024, kernel_size=3, padding=1)
        self.relu = nn.ReLU(inplace=False)
        self.fc = nn.Linear(1024, num_classes)
        for m in self.modules():  # He init, as wsolevaluation's VGG
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.fc.weight, 0, 0.01)
        nn.init.zeros_(self.fc.bias)


def _vgg16_gap_features(net: VGG16GAP, x: torch.Tensor) -> torch.Tensor:
    return net.relu(net.conv6(net.features(x)))


class _InceptionBStride1(InceptionB):
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


class InceptionV3GAP(nn.Module):
    """InceptionV3 (torchvision module names) to Mixed_6e + two 3x3 convs to 1024; GAP + ``fc``."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2, padding=1)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = _InceptionBStride1(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.SPG_A3_1b = nn.Sequential(nn.Conv2d(768, 1024, kernel_size=3, padding=1), nn.ReLU(inplace=True))
        self.SPG_A3_2b = nn.Sequential(nn.Conv2d(1024, 1024, kernel_size=3, padding=1), nn.ReLU(inplace=True))
        self.fc = nn.Linear(1024, num_classes)
        he_init_bias_free_convs(self)  # trunk (convs followed by BN)
        for m in (self.SPG_A3_1b[0], self.SPG_A3_2b[0], self.fc):  # xavier, as wsolevaluation
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


def _inception_v3_gap_features(net: InceptionV3GAP, x: torch.Tensor) -> torch.Tensor:
    x = net.Conv2d_2b_3x3(net.Conv2d_2a_3x3(net.Conv2d_1a_3x3(x)))
    x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1, ceil_mode=True)
    x = net.Conv2d_4a_3x3(net.Conv2d_3b_1x1(x))
    x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1, ceil_mode=True)
    x = net.Mixed_5d(net.Mixed_5c(net.Mixed_5b(x)))
    x = F.max_pool2d(x, kernel_size=3, stride=2, ceil_mode=True)
    x = net.Mixed_6e(net.Mixed_6d(net.Mixed_6c(net.Mixed_6b(net.Mixed_6a(x)))))
    return net.SPG_A3_2b(net.SPG_A3_1b(x))


def _resnet50_s1(num_classes: int) -> nn.Module:
    net = torchvision.models.resnet50(weights=None, num_classes=num_classes)
    block = net.layer4[0]
    block.conv2.stride = (1, 1)
    block.downsample[0].stride = (1, 1)
    he_init_bias_free_convs(net)  # torchvision's init lets random activations reach denormals
    return net


_INFOS = {
    "vgg16_gap": BackboneInfo(
        "vgg16_gap", "wsol", "conv6 (+ReLU)", 16, True,
        "Choe et al. 2020: VGG16 without pool5 + 3x3 conv to 1024 + ReLU, GAP, linear; 14x14 at 224"),
    "resnet50_s1": BackboneInfo(
        "resnet50_s1", "wsol", "layer4", 16, True,
        "Choe et al. 2020: ResNet50 with layer4 at stride 1; 14x14 at 224"),
    "inception_v3_gap": BackboneInfo(
        "inception_v3_gap", "wsol", "SPG_A3_2b (+ReLU)", 16, True,
        "Choe et al. 2020: InceptionV3 to Mixed_6e + 2 3x3 convs to 1024, GAP, linear; 14x14 at 224"),
}

# name -> (net factory, features fn, torchvision base, new layers (prefixes in net))
_SPECS = {
    "vgg16_gap": (VGG16GAP, _vgg16_gap_features, "vgg16", ("conv6", "fc")),
    "resnet50_s1": (_resnet50_s1, _resnet_features, "resnet50", ()),
    "inception_v3_gap": (InceptionV3GAP, _inception_v3_gap_features, "inception_v3", ("SPG_A3_1b", "SPG_A3_2b", "fc")),
}


def build_wsoleval(name: str, pretrained: bool, num_classes: int) -> NetBackbone:
    """Build one of the three architectures (see the module docstring)."""
    factory, features_fn, base, new = _SPECS[name]
    net = factory(1000 if pretrained else num_classes)
    if pretrained:
        sd = torchvision_state_dict(base, "IMAGENET1K_V1")
        load_shared_weights(net, sd, new, what=f"{name} <- torchvision {base} IMAGENET1K_V1")
    info = _INFOS[name]
    bb = NetBackbone(net, BackboneInfo(**vars(info)), features_fn, "fc")
    bb.mark_new(*(f"net.{p}" for p in new if p != "fc"))
    return bb


def _make_builder(name: str):
    return lambda pretrained, num_classes: build_wsoleval(name, pretrained, num_classes)


def _cached(name: str):
    return lambda: torchvision_weights_cached(_SPECS[name][2], "IMAGENET1K_V1")


for _name, _info in _INFOS.items():
    register_backbone(_info, _make_builder(_name), weights_offline=_cached(_name))
