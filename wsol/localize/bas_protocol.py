"""Protocol ``bas``: BAS's own box rule at its paper's threshold (Wu et al., CVPR 2022;
``docs/protocol.md``, "The bas protocol"), with MaxBoxAccV2 of the same maps beside it.

BAS boxes as SAT does (``wsol.localize.family_protocols.sat_box``: ``(m - min) / (max - min +
1e-5)``, bilinear to 224, pixels above the threshold, the largest 8-connected component, its
exclusive-end box; nothing above: the whole image). Its thresholds depend on the dataset and
the architecture (its ``get_hyperparameters``): CUB 0.1 for every architecture; ILSVRC
VGG16 0.45, ResNet50 0.25, InceptionV3 0.25, MobileNetV1 0.5. The ``cub`` adapter or a
200-class dataset is CUB.
The architecture is read from the backbone's name (``vgg``, ``mobilenet``, ``inception``;
anything else takes ResNet50's threshold) once the run knows it (:meth:`Protocol.for_backbone`).
"""
from __future__ import annotations

import copy

from wsol.localize.family_protocols import CUB_CLASSES, SatProtocol

#: (dataset kind, architecture) -> BAS's threshold
BAS_THRESHOLDS = {("cub", "vgg16"): 0.1, ("cub", "resnet50"): 0.1, ("cub", "inception_v3"): 0.1,
                  ("cub", "mobilenet_v1"): 0.1, ("imagenet", "vgg16"): 0.45, ("imagenet", "resnet50"): 0.25,
                  ("imagenet", "inception_v3"): 0.25, ("imagenet", "mobilenet_v1"): 0.5}
_ARCH_WORDS = (("vgg", "vgg16"), ("mobilenet", "mobilenet_v1"), ("inception", "inception_v3"))


def bas_arch(backbone_name: str) -> str:
    """The BAS architecture whose threshold applies to a backbone named ``backbone_name``."""
    name = str(backbone_name).lower()
    return next((arch for word, arch in _ARCH_WORDS if word in name), "resnet50")


def bas_threshold(dataset_kind: str, arch: str) -> float:
    """BAS's threshold for ``dataset_kind`` ('cub' or 'imagenet') and ``arch`` (unknown: ResNet50's)."""
    return BAS_THRESHOLDS.get((dataset_kind, arch), BAS_THRESHOLDS[(dataset_kind, "resnet50")])


class BasProtocol(SatProtocol):
    """BAS's rule: SAT's box at BAS's per-dataset, per-architecture threshold."""

    name = "bas"
    description = ("BAS (Wu 2022): one threshold (CUB 0.1; ImageNet VGG16 0.45, ResNet50/InceptionV3 0.25, "
                   "MobileNetV1 0.5), largest connected component; MaxBoxAccV2 from wsoleval")
    thresholds_by_dataset = {"cub": 0.1, "imagenet": 0.25}  # before the backbone is known: ResNet50's
    dataset_kind: str = "imagenet"

    def configure(self, num_classes, cam_step, dataset=""):
        out = super().configure(num_classes, cam_step, dataset)
        out.dataset_kind = "cub" if dataset == "cub" or num_classes == CUB_CLASSES else "imagenet"
        return out

    def for_backbone(self, backbone_name: str) -> "BasProtocol":
        out = copy.copy(self)
        out.threshold = bas_threshold(self.dataset_kind, bas_arch(backbone_name))
        return out


def register() -> None:
    from wsol.localize.protocols import PROTOCOLS

    PROTOCOLS.add(BasProtocol.name, BasProtocol())


register()
