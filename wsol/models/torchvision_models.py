"""torchvision classifiers as Backbones (features by explicit module calls, no hooks).

Listed with: name, source, feature layer (whose output the CAM weights), feature stride
(input pixels per map cell), cam_exact (head is GAP + linear) and a note where CAM is not
exact. Non-exact heads (VGG16's FC stack, MobileNetV3's hidden layer, ConvNeXt's LayerNorm)
run through ``logits_fn``; ``cam`` refuses them, the gradient methods do not.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Dict, Iterable, List, Optional

import torch
import torch.nn.functional as F
import torchvision

from wsol.errors import WsolError
from wsol.models.backbone import BackboneInfo, NetBackbone
from wsol.models.registry import register_backbone

log = logging.getLogger(__name__)


def _resnet_features(net, x):
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    return net.layer4(net.layer3(net.layer2(net.layer1(x))))


def _densenet_features(net, x):
    return F.relu(net.features(x))


def _plain_features(net, x):
    return net.features(x)


def torchvision_state_dict(name: str, weights: str = "DEFAULT") -> Dict[str, torch.Tensor]:
    """torchvision's ImageNet state dict for model ``name`` (``weights``: enum member name).

    Read from the torch hub cache (``torch.hub.get_dir()/checkpoints/<file>``) when there,
    downloaded otherwise; offline, fails with one line saying which file to put where.
    """
    w = getattr(torchvision.models.get_model_weights(name), weights)
    fname = os.path.basename(w.url)
    target = os.path.join(torch.hub.get_dir(), "checkpoints", fname)
    try:
        return w.get_state_dict(progress=True, check_hash=False)
    except Exception as e:
        raise WsolError(f"cannot fetch pretrained weights for '{name}' ({type(e).__name__}); "
                        f"download {w.url} and put it at {target}, or pass --weights FILE") from None


def torchvision_weights_cached(name: str, weights: str = "DEFAULT") -> bool:
    """Is torchvision's checkpoint for ``name`` in the torch hub cache (no download needed)?"""
    w = getattr(torchvision.models.get_model_weights(name), weights)
    return os.path.isfile(os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(w.url)))


def load_torchvision_weights(net: torch.nn.Module, name: str) -> None:
    """Load torchvision's DEFAULT ImageNet weights for ``name`` (torch hub cache).

    Offline, fails with one line saying which file to put where.
    """
    net.load_state_dict(torchvision_state_dict(name))


def load_shared_weights(net: torch.nn.Module, state_dict: Dict[str, torch.Tensor],
                        new: Iterable[str] = (), what: str = "") -> List[str]:
    """Load every key of ``net`` outside the ``new`` prefixes from ``state_dict`` (a base
    net's checkpoint whose extra keys are ignored); returns the keys loaded.

    A shared key that is missing or has another shape is an error (the checkpoint is not
    the base net's).
    """
    new = tuple(new)
    own = net.state_dict()
    shared = [k for k in own if not k.startswith(tuple(f"{p}." for p in new))]
    bad = [k for k in shared if k not in state_dict or state_dict[k].shape != own[k].shape]
    if bad:
        k = bad[0]
        got = tuple(state_dict[k].shape) if k in state_dict else "missing"
        raise WsolError(f"{what or 'checkpoint'}: does not fit the shared layers ({len(bad)} keys, "
                        f"e.g. {k}: {got} vs {tuple(own[k].shape)})")
    net.load_state_dict({k: state_dict[k] for k in shared}, strict=False)
    log.info("%s: loaded %d shared tensors; new (random): %s", what, len(shared), ", ".join(new) or "-")
    return shared


def _vgg_logits(net, f):
    return net.classifier(torch.flatten(net.avgpool(f), 1))


def _mobilenet_v3_logits(net, f):
    return net.classifier(torch.flatten(net.avgpool(f), 1))


def _convnext_logits(net, f):
    return net.classifier(net.avgpool(f))  # LayerNorm2d, Flatten, Linear


def _inception_features(net, x):
    """Inception3 up to Mixed_7c (the aux head is never run)."""
    x = net._transform_input(x)
    x = net.maxpool1(net.Conv2d_2b_3x3(net.Conv2d_2a_3x3(net.Conv2d_1a_3x3(x))))
    x = net.maxpool2(net.Conv2d_4a_3x3(net.Conv2d_3b_1x1(x)))
    x = net.Mixed_5d(net.Mixed_5c(net.Mixed_5b(x)))
    x = net.Mixed_6e(net.Mixed_6d(net.Mixed_6c(net.Mixed_6b(net.Mixed_6a(x)))))
    return net.Mixed_7c(net.Mixed_7b(net.Mixed_7a(x)))


def he_init_bias_free_convs(net: torch.nn.Module) -> None:
    """He (fan-in) init of the bias-free convs (those followed by BN): keeps random-weight
    activations O(1); PyTorch's default init lets deep nets' activations decay into float
    denormals, which are orders of magnitude slower on CPU."""
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d) and m.bias is None:
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")


def _register(name: str, features_fn: Callable, head: str, stride: int, layer: str,
              cam_exact: bool = True, note: str = "", logits_fn: Optional[Callable] = None,
              random_init: Optional[Callable] = None, **net_kwargs) -> None:
    def info() -> BackboneInfo:
        return BackboneInfo(name, "torchvision", layer, stride, cam_exact, note)

    def build(pretrained: bool, num_classes: int):
        net = torchvision.models.get_model(name, weights=None, num_classes=1000 if pretrained else num_classes,
                                           **net_kwargs)
        if pretrained:
            load_torchvision_weights(net, name)
        elif random_init is not None:
            random_init(net)
        return NetBackbone(net, info(), features_fn, head, logits_fn=logits_fn)

    register_backbone(info(), build, weights_offline=lambda: torchvision_weights_cached(name))


for _n in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"):
    _register(_n, _resnet_features, "fc", 32, "layer4")
for _n in ("densenet121", "densenet161", "densenet169"):
    _register(_n, _densenet_features, "classifier", 32, "features (+ReLU)")
_register("mobilenet_v2", _plain_features, "classifier", 32, "features")
for _i in range(8):
    _register(f"efficientnet_b{_i}", _plain_features, "classifier", 32, "features")
_register("vgg16", _plain_features, "classifier", 32, "features (pool5)", cam_exact=False,
          note="head is flatten(512x7x7) + FC 4096 + FC 4096 + FC (ReLU, dropout), not GAP + linear",
          logits_fn=_vgg_logits)
# Random weights of inception_v3 and mobilenet_v3_*: He init of the convs before BN (see
# he_init_bias_free_convs; with torchvision's init their activations reach float denormals).
# transform_input: the checkpoint (a TF port) expects inputs in [-1, 1]; the net maps the
# ImageNet-normalized input there itself. AuxLogits is built (checkpoints load strictly)
# but never run. torchvision's truncated-normal init is skipped (slow, and random
# activations explode to ~1e12 in eval mode).
_register("inception_v3", _inception_features, "fc", 32, "Mixed_7c",
          note="valid padding: 5x5 maps at 224 (8x8 at 299); transform_input on; aux head not run",
          random_init=he_init_bias_free_convs, aux_logits=True, transform_input=True, init_weights=False)
_register("mobilenet_v3_small", _plain_features, "classifier", 32, "features", cam_exact=False,
          note="head is GAP + Linear(576->1024) + Hardswish + Linear, not GAP + linear",
          logits_fn=_mobilenet_v3_logits, random_init=he_init_bias_free_convs)
_register("mobilenet_v3_large", _plain_features, "classifier", 32, "features", cam_exact=False,
          note="head is GAP + Linear(960->1280) + Hardswish + Linear, not GAP + linear",
          logits_fn=_mobilenet_v3_logits, random_init=he_init_bias_free_convs)
_register("convnext_tiny", _plain_features, "classifier", 32, "features", cam_exact=False,
          note="head is GAP + LayerNorm + Linear: the LayerNorm after pooling breaks GAP + linear",
          logits_fn=_convnext_logits)
