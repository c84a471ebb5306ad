"""torchvision classifiers as Backbones (features by explicit module calls, no hooks)."""
from __future__ import annotations

import os
from typing import Callable

import torch
import torch.nn.functional as F
import torchvision

from wsol.errors import WsolError
from wsol.models.backbone import BackboneInfo, NetBackbone
from wsol.models.registry import register_backbone


def _resnet_features(net, x):
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    return net.layer4(net.layer3(net.layer2(net.layer1(x))))


def _densenet_features(net, x):
    return F.relu(net.features(x))


def _plain_features(net, x):
    return net.features(x)


def load_torchvision_weights(net: torch.nn.Module, name: str) -> None:
    """Load torchvision's DEFAULT ImageNet weights for ``name`` (torch hub cache).

    Offline, fails with one line saying which file to put where.
    """
    weights = torchvision.models.get_model_weights(name).DEFAULT
    fname = os.path.basename(weights.url)
    target = os.path.join(torch.hub.get_dir(), "checkpoints", fname)
    try:
        sd = weights.get_state_dict(progress=True, check_hash=False)
    except Exception as e:
        raise WsolError(f"cannot fetch pretrained weights for '{name}' ({type(e).__name__}); "
                        f"download {weights.url} and put it at {target}, or pass --weights FILE") from None
    net.load_state_dict(sd)


def _register(name: str, features_fn: Callable, head: str, stride: int, layer: str) -> None:
    def build(pretrained: bool, num_classes: int):
        net = torchvision.models.get_model(name, weights=None, num_classes=1000 if pretrained else num_classes)
        if pretrained:
            load_torchvision_weights(net, name)
        return NetBackbone(net, BackboneInfo(name, "torchvision", layer, stride, True), features_fn, head)

    register_backbone(BackboneInfo(name, "torchvision", layer, stride, True), build)


for _n in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"):
    _register(_n, _resnet_features, "fc", 32, "layer4")
for _n in ("densenet121", "densenet161", "densenet169"):
    _register(_n, _densenet_features, "classifier", 32, "features (+ReLU)")
_register("mobilenet_v2", _plain_features, "classifier", 32, "features")
for _i in range(8):
    _register(f"efficientnet_b{_i}", _plain_features, "classifier", 32, "features")
