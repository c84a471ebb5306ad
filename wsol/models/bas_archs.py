"""BAS (Wu et al., CVPR 2022) as backbones: ``bas_resnet50``, ``bas_vgg16``,
``bas_inception_v3``, ``bas_mobilenet_v1`` (``docs/training.md``, "BAS").

The released checkpoints load as they are: ``{'model': state_dict, ...}``, keys without a
prefix (CUB, ``train.py``) or with DDP's ``module.`` (ILSVRC, ``train_ILSVRC.py``); the head
size (1000 or 200) is read from ``classifier_cls.4.weight``. Loading is strict.

Features are ``x_loc`` (the 28x28 map ``classifier_loc`` reads); the logits run the tail and
``classifier_cls`` from there (GAP). Maps:

- ``cam`` gives the model's own class map: ``classifier_loc``'s sigmoid map of the target
  class (BAS's foreground map with topk 1, as the reference evaluates ILSVRC);
- ``bas`` gives the foreground map ``M_fg`` with the reference's ``topk`` for the head
  (:meth:`BasBackbone.default_topk`: 1 for 1000 classes; for a 200-class CUB head 200 on
  ResNet50/InceptionV3 and 80 on VGG16/MobileNetV1), or the method's ``topk`` option.

``pretrained=True`` fills the trunk from torchvision's ImageNet-1k V1 weights (ResNet50 and
InceptionV3 by name, VGG16's ``features`` convs in order, as the reference loader does);
MobileNetV1's ImageNet file is not in torchvision, so it has none.
"""
from __future__ import annotations

import logging
from typing import Dict, Optional

import torch
from torch import nn

from wsol.errors import WsolError
from wsol.models.bas_common import CUB_TOPK, xavier_init
from wsol.models.bas_nets import NETS
from wsol.models.backbone import Backbone, BackboneInfo
from wsol.models.registry import register_backbone
from wsol.models.torchvision_models import he_init_bias_free_convs, torchvision_state_dict, torchvision_weights_cached

log = logging.getLogger(__name__)

_LAYERS = {"resnet50": "layer3", "vgg16": "relu4_3", "inception_v3": "Mixed_6e", "mobilenet_v1": "model.11"}
_TV_NAMES = {"resnet50": "resnet50", "vgg16": "vgg16", "inception_v3": "inception_v3"}


class BasBackbone(Backbone):
    """Backbone over a BAS net (kept whole under ``self.net``, keys as the reference)."""

    def __init__(self, net: nn.Module, info: BackboneInfo):
        super().__init__(info)
        self.net = net
        self.arch = net.arch

    def forward_features(self, x):
        return self.net.forward_features(x)

    def forward_logits(self, feats):
        return self.net.forward_logits(feats)

    def classifier(self) -> nn.Module:
        return self.net.classifier_layer()

    def classifier_weight(self) -> torch.Tensor:
        return self.classifier().weight.flatten(1)

    def default_topk(self) -> int:
        """The reference's topk for this head: CUB (200 classes) per architecture, else 1."""
        return CUB_TOPK[self.arch] if self.num_classes == 200 else 1

    def foreground(self, feats: torch.Tensor, logits: torch.Tensor, targets: Optional[torch.Tensor],
                   topk: Optional[int] = None) -> torch.Tensor:
        """M_fg [B, h, w]: the mean sigmoid map of ``targets`` (topk 1) or of the ``topk``
        highest logits (``None``: :meth:`default_topk`)."""
        k = self.default_topk() if topk is None else int(topk)
        return self.net.foreground(feats, logits, targets, k)[:, 0]

    def class_maps(self, feats, targets):
        return self.foreground(feats, feats.new_zeros(feats.shape[0], 1), targets, topk=1)

    def forward_train(self, x, labels=None):
        """The reference's training outputs (topk 1, as its trainer); see ``BasNet.forward_train``."""
        if labels is None:
            raise WsolError("BAS training needs the labels (its erase branch scores the label)")
        return self.net.forward_train(x, labels, topk=1)

    def reset_classifier(self, num_classes: int) -> None:
        old_cls, old_loc = self.net.classifier_cls[4], self.net.classifier_loc[0]
        self.net.classifier_cls[4] = nn.Conv2d(old_cls.in_channels, num_classes, kernel_size=1)
        self.net.classifier_loc[0] = nn.Conv2d(old_loc.in_channels, num_classes, kernel_size=3, padding=1)
        xavier_init([self.net.classifier_cls[4], self.net.classifier_loc[0]])


def _info(arch: str) -> BackboneInfo:
    return BackboneInfo(f"bas_{arch}", "wsol", _LAYERS[arch], 8, False,
                        "BAS (Wu et al. 2022): conv head classifier_cls on the tail; cam = classifier_loc's sigmoid "
                        "map of the class; method bas = the foreground map (topk classes)")


def _vgg_key_map(net: nn.Module, sd: Dict[str, torch.Tensor]) -> Dict[str, str]:
    """torchvision ``features.N`` convs, in order, onto ``convB_I`` (the reference's loader)."""
    ours = [n for n, _ in net.named_children() if n.startswith("conv")]
    tv = sorted({k.rsplit(".", 1)[0] for k in sd if k.startswith("features.")}, key=lambda k: int(k.split(".")[1]))
    out = {}
    for o, t in zip(ours, tv):
        out[f"{t}.weight"], out[f"{t}.bias"] = f"{o}.weight", f"{o}.bias"
    return out


def _load_pretrained(net: nn.Module, arch: str) -> None:
    if arch not in _TV_NAMES:
        raise WsolError(f"bas_{arch}: no ImageNet weights for its trunk in torchvision (the reference's "
                        "mobilenet_v1_with_relu file); use --weights random or a BAS checkpoint")
    sd = torchvision_state_dict(_TV_NAMES[arch], "IMAGENET1K_V1")
    mapping = _vgg_key_map(net, sd) if arch == "vgg16" else {k: k for k in sd}
    own = net.state_dict()
    src = {mapping[k]: v for k, v in sd.items() if k in mapping and mapping[k] in own}
    bad = [k for k, v in src.items() if v.shape != own[k].shape]
    if bad or not src:
        raise WsolError(f"bas_{arch} <- torchvision {arch}: does not fit (e.g. {bad[:1] or 'no key'})")
    net.load_state_dict(src, strict=False)
    log.info("bas_%s: %d tensors from torchvision %s; classifier_cls/classifier_loc random", arch, len(src), arch)


def build_bas(arch: str, pretrained: bool, num_classes: int) -> BasBackbone:
    """The BAS net of ``arch`` with ``num_classes`` classes (trunk from ImageNet if ``pretrained``)."""
    net = NETS[arch](num_classes)
    he_init_bias_free_convs(net)  # trunk convs before BN: keeps random activations O(1)
    if pretrained:
        _load_pretrained(net, arch)
    bb = BasBackbone(net, _info(arch))
    bb.mark_new("net.classifier_cls", "net.classifier_loc")
    return bb


def _builder(arch: str):
    return lambda pretrained, num_classes: build_bas(arch, pretrained, num_classes)


def _cached(arch: str):
    """The trunk's ImageNet weights at hand? (MobileNetV1: none exist in torchvision: unknown)"""
    if arch not in _TV_NAMES:
        return lambda: None
    return lambda: torchvision_weights_cached(_TV_NAMES[arch], "IMAGENET1K_V1")


for _arch in NETS:
    register_backbone(_info(_arch), _builder(_arch), weights_offline=_cached(_arch))
