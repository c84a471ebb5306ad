"""Protocol ``bas``: BAS's own box rule (:mod:`wsol.localize.bas_boxes`) at its paper's
threshold, beside the 2020 sweep on the same maps (docs/protocol.md, "The bas protocol").

The threshold is BAS's for the dataset and architecture: a 200-class head is CUB (0.1);
any other is ILSVRC (VGG16 0.45, ResNet50 0.25, InceptionV3 0.25, MobileNetV1 0.5). The
architecture is the backbone's ``arch`` (BAS and wsolevaluation backbones) or read from its
name (``vgg``, ``mobilenet``, ``inception``; anything else counts as ResNet50).
"""
from __future__ import annotations

import numpy as np

from wsol.localize.bas_boxes import BAS_THRESHOLDS, bas_box, bas_threshold
from wsol.localize.protocols import PROTOCOLS, FamilyProtocol

_ARCH_WORDS = (("vgg", "vgg16"), ("mobilenet", "mobilenet_v1"), ("inception", "inception_v3"))


def bas_arch(backbone) -> str:
    """The BAS architecture whose threshold applies to ``backbone``."""
    arch = getattr(backbone, "arch", None)
    if arch in {a for _, a in BAS_THRESHOLDS}:
        return arch
    name = str(getattr(backbone, "name", "")).lower()
    return next((a for word, a in _ARCH_WORDS if word in name), "resnet50")


class BasProtocol(FamilyProtocol):
    """BAS (Wu et al. 2022): min-max (+1e-5) normalized map, bilinear to 224, foreground
    above one threshold, the largest 8-connected component's box."""

    name = "bas"
    description = ("BAS (Wu et al. 2022): one threshold (CUB 0.1; ILSVRC VGG16 0.45, ResNet50/InceptionV3 0.25, "
                   "MobileNetV1 0.5), largest connected component; MaxBoxAccV2 of the same maps beside it")

    def for_run(self, backbone, num_classes: int) -> "BasProtocol":
        kind = "cub" if int(num_classes) == 200 else "imagenet"
        arch = bas_arch(backbone)
        tau = bas_threshold(kind, arch)
        dataset = "CUB" if kind == "cub" else "ILSVRC"
        return self.with_threshold(tau, f"BAS: largest connected component at tau {tau:g} ({dataset}, {arch})")

    def own_box(self, raw_map: np.ndarray) -> np.ndarray:
        return bas_box(raw_map, float(self.own_threshold))


PROTOCOLS.add(BasProtocol.name, BasProtocol())
