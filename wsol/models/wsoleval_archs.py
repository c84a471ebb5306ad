"""Choe et al.'s (CVPR 2020, "Evaluating WSOL right") architectures, one registered name per
architecture x head, following clovaai/wsolevaluation module for module so that its
checkpoints load with their own keys (``docs/training.md``, "Training methods and model
heads"):

- ``vgg16_gap``, ``resnet50_s1``, ``inception_v3_gap``: CAM / HaS / CutMix models, and ADL
  models with ``adl=True`` (chosen automatically when a checkpoint's keys are ADL's);
- ``vgg16_acol``, ``resnet50_acol``, ``inception_v3_acol``: ACoL's two heads; the CAM is the
  model's fused map (``Backbone.class_maps``);
- ``vgg16_spg``, ``resnet50_spg``, ``inception_v3_spg``: SPG; the CAM is the ``SPG_A4`` map.

Model options (``--model-option KEY=VALUE``): ``large_feature_map`` (28x28 maps at 224
instead of 14x14; nothing in a checkpoint reveals it), ``adl``, ``adl_drop_rate``,
``adl_drop_threshold`` (CAM names), ``acol_drop_threshold`` (ACoL names).

``pretrained=True`` loads torchvision's ImageNet-1k V1 checkpoint of the base net (read from
the torch hub cache, downloaded otherwise) into the layers the reference fills from it (its
key remapping for ADL and SPG included); the other layers stay random.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

from wsol.models import wsoleval_inception as inc
from wsol.models import wsoleval_resnet as res
from wsol.models import wsoleval_vgg as vgg
from wsol.models.adl import ADL_DROP_RATE, ADL_DROP_THRESHOLD
from wsol.models.backbone import Backbone, BackboneInfo
from wsol.models.heads import ACOL_DROP_THRESHOLD
from wsol.models.registry import register_backbone
from wsol.models.torchvision_models import he_init_bias_free_convs, torchvision_state_dict, torchvision_weights_cached
from wsol.errors import WsolError

log = logging.getLogger(__name__)

CAM_OPTIONS = {"large_feature_map": False, "adl": False, "adl_drop_rate": ADL_DROP_RATE,
               "adl_drop_threshold": ADL_DROP_THRESHOLD}
ACOL_OPTIONS = {"large_feature_map": False, "acol_drop_threshold": ACOL_DROP_THRESHOLD}
SPG_OPTIONS = {"large_feature_map": False}

# the reference trainer's 10x-lr rule (main.py _FEATURE_PARAM_LAYER_PATTERNS): VGG and
# InceptionV3 train every parameter outside these prefixes at 10x; ResNet50 those inside
_FEATURE_PATTERNS = {"vgg16": (("features.",), False), "resnet50": (("layer4.", "fc."), True),
                     "inception_v3": (("Mixed", "Conv2d_1", "Conv2d_2", "Conv2d_3", "Conv2d_4"), False)}


class WsolevalBackbone(Backbone):
    """Backbone over a ``WsolevalNet`` (kept whole under ``self.net``, keys as the reference)."""

    def __init__(self, net: nn.Module, info: BackboneInfo, arch: str, method: str, options: Dict[str, Any]):
        super().__init__(info)
        self.net = net
        self.arch = arch
        self.method = method
        self.model_options = dict(options)

    def forward_features(self, x):
        return self.net.forward_features(x)

    def forward_logits(self, feats):
        return self.net.forward_logits(feats)

    def classifier(self) -> nn.Module:
        return self.net.classifier_layer()

    def classifier_weight(self) -> torch.Tensor:
        return self.classifier().weight.flatten(1)

    def reset_classifier(self, num_classes: int) -> None:
        self.net.reset_head(num_classes)

    def class_maps(self, feats, targets):
        return self.net.class_maps(feats, targets)

    def forward_train(self, x, labels=None):
        return self.net.forward_train(x, labels)

    def reference_fast_parameters(self) -> List[nn.Parameter]:
        """Parameters the reference trainer puts in its 10x-lr group (see ``_FEATURE_PATTERNS``)."""
        prefixes, inside = _FEATURE_PATTERNS[self.arch]
        return [p for n, p in self.net.named_parameters() if any(s in n for s in prefixes) == inside]


# name -> (arch, method, net class, options, CAM layer, note)
_SPECS: Dict[str, Tuple[str, str, Callable[..., nn.Module], Dict[str, Any], str, str]] = {
    "vgg16_gap": ("vgg16", "cam", vgg.VggCam, CAM_OPTIONS, "conv6 (+ReLU)",
                  "Choe et al. 2020: VGG16 without pool5 + 3x3 conv to 1024 + ReLU, GAP, linear; 14x14 at 224; "
                  "ADL with adl=true"),
    "resnet50_s1": ("resnet50", "cam", res.ResNetCam, CAM_OPTIONS, "layer4",
                    "Choe et al. 2020: ResNet50 with layer4 at stride 1; 14x14 at 224; ADL with adl=true"),
    "inception_v3_gap": ("inception_v3", "cam", inc.InceptionCam, CAM_OPTIONS, "SPG_A3_2b (+ReLU)",
                         "Choe et al. 2020: InceptionV3 to Mixed_6e + 2 3x3 convs to 1024, GAP, 1x1 conv SPG_A4; "
                         "14x14 at 224; ADL with adl=true"),
    "vgg16_acol": ("vgg16", "acol", vgg.VggAcol, ACOL_OPTIONS, "features+avgpool3x3",
                   "ACoL (wsolevaluation): two conv heads; cam = the model's fused map of both heads"),
    "resnet50_acol": ("resnet50", "acol", res.ResNetAcol, ACOL_OPTIONS, "layer4",
                      "ACoL (wsolevaluation): two conv heads; cam = the model's fused map of both heads"),
    "inception_v3_acol": ("inception_v3", "acol", inc.InceptionAcol, ACOL_OPTIONS, "Mixed_6e",
                          "ACoL (wsolevaluation): two conv heads; cam = the model's fused map of both heads"),
    "vgg16_spg": ("vgg16", "spg", vgg.VggSpg, SPG_OPTIONS, "SPG_A_3",
                  "SPG (wsolevaluation): 1x1 conv classifier SPG_A_4 (cam = its map) + side branches B, C"),
    "resnet50_spg": ("resnet50", "spg", res.ResNetSpg, SPG_OPTIONS, "layer4",
                     "SPG (wsolevaluation): 1x1 conv classifier SPG_A4 (cam = its map) + side branches B, C"),
    "inception_v3_spg": ("inception_v3", "spg", inc.InceptionSpg, SPG_OPTIONS, "SPG_A3_2b (+ReLU)",
                         "SPG (wsolevaluation): 1x1 conv classifier SPG_A4 (cam = its map) + side branches B, C"),
}


def _info(name: str, large_feature_map: bool = False) -> BackboneInfo:
    arch, method, _, _, layer, note = _SPECS[name]
    return BackboneInfo(name, "wsol", layer, 8 if large_feature_map else 16, method != "acol", note)


def _not_pretrained(net: nn.Module, arch: str, method: str) -> List[str]:
    """Top-level modules of ``net`` that torchvision's ImageNet checkpoint does not fill."""
    if arch == "vgg16":
        filled = ("features",) + (("SPG_A_1", "SPG_A_2") if method == "spg" else ())
    elif arch == "resnet50":
        filled = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "SPG_A1", "SPG_A2")
        if method in ("cam", "adl"):
            filled += ("fc",)  # the reference keeps the ImageNet fc on a 1000-class head
    else:
        filled = tuple(n for n, _ in net.named_children() if n.startswith(("Conv2d_", "Mixed_")))
    return [n for n, m in net.named_children() if n not in filled and any(True for _ in m.parameters())]


def _load_pretrained(net: nn.Module, arch: str, method: str, name: str) -> None:
    sd = torchvision_state_dict(arch, "IMAGENET1K_V1")
    if arch == "vgg16":
        mapping = vgg.pretrained_key_map(net, method)
    elif arch == "resnet50":
        mapping = res.pretrained_key_map(net, method, sd.keys())
    else:
        mapping = {k: k for k in sd}
    own = net.state_dict()
    new = tuple(f"{n}." for n in _not_pretrained(net, arch, method))
    wanted = [k for k in own if not k.startswith(new)]
    src = {mapping[k]: v for k, v in sd.items() if k in mapping}
    bad = [k for k in wanted if k not in src or src[k].shape != own[k].shape]
    if bad:
        raise WsolError(f"{name} <- torchvision {arch} IMAGENET1K_V1: does not fit ({len(bad)} keys, e.g. {bad[0]})")
    net.load_state_dict({k: src[k] for k in wanted}, strict=False)
    log.info("%s: loaded %d tensors from torchvision %s; new (random): %s", name, len(wanted), arch,
             ", ".join(n.rstrip(".") for n in new) or "-")


def build_wsoleval(name: str, pretrained: bool, num_classes: int, **options: Any) -> WsolevalBackbone:
    """Build registered architecture ``name`` (see the module docstring) with its options."""
    arch, method, cls, defaults, _, _ = _SPECS[name]
    opts = {**defaults, **options}
    if method == "cam" and opts.get("adl"):
        method = "adl"
    net = cls(1000 if pretrained else num_classes, **opts)
    if arch != "vgg16":
        he_init_bias_free_convs(net)  # trunk convs before BN: keeps random activations O(1)
    if pretrained:
        _load_pretrained(net, arch, method, name)
    bb = WsolevalBackbone(net, _info(name, bool(opts["large_feature_map"])), arch, method, opts)
    bb.mark_new(*(f"net.{n}" for n in _not_pretrained(net, arch, method) if f"net.{n}" != f"net.{net.head}"))
    return bb


def _make_builder(name: str):
    def build(pretrained: bool, num_classes: int, **options: Any) -> WsolevalBackbone:
        return build_wsoleval(name, pretrained, num_classes, **options)
    return build


def _cached(name: str):
    return lambda: torchvision_weights_cached(_SPECS[name][0], "IMAGENET1K_V1")


for _name, _spec in _SPECS.items():
    register_backbone(_info(_name), _make_builder(_name), options=_spec[3], weights_offline=_cached(_name))
