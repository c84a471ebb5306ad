"""CAM-method registry. A method maps (backbone, images, features, logits, targets) to raw
maps [B, h, w] on the model's device; post-processing happens in ``wsol.localize``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import torch

from wsol.errors import WsolError
from wsol.utils.registry import Registry


class CamMethod:
    """Base class. ``needs_grad``: the method differentiates the head itself (the gradient
    family; see ``wsol.cams.gradcam.head_gradients``): callers run the backbone under
    ``torch.no_grad()`` for every method and never enable gradients on the parameters."""

    name: str = ""
    description: str = ""
    needs_grad: bool = False
    #: a backbone the method runs on, for methods that do not run on every backbone (the
    #: token-attention maps need a ViT, ``bas`` a BAS net): examples and
    #: tests/integration/test_matrix.py run it there; None: any backbone with feature maps
    example_backbone: Optional[str] = None

    def __init__(self, **options):
        self.options = options

    def __call__(self, backbone, images: torch.Tensor, feats: torch.Tensor, logits: torch.Tensor,
                 targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@dataclass
class MethodInfo:
    name: str
    description: str
    needs_grad: bool


METHODS: Registry[type] = Registry("method", [f"wsol.cams.{m}" for m in ("cam", "gradcam", "scorecam", "baselines",
                                                                                  "attention", "bas", "pc1")])


def register_method(cls: type) -> type:
    """Class decorator: register a CamMethod subclass under ``cls.name``."""
    return METHODS.add(cls.name, cls)


def list_methods(pattern: str = "*") -> List[MethodInfo]:
    """Registered CAM methods matching ``pattern``, sorted by name."""
    return [MethodInfo(n, c.description, c.needs_grad) for n, c in METHODS.items(pattern)]


def create_method(name: str, **options) -> CamMethod:
    """Instantiate method ``name`` (unknown names list the closest ones)."""
    return METHODS.get(name)(**options)


def check_targets(targets: torch.Tensor, num_classes: int) -> None:
    """Raise a clear error when a target class is outside the head."""
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= num_classes):
        raise WsolError(f"target class {int(targets.max())} outside the classifier head "
                        f"(0..{num_classes - 1}): does --weights match the dataset's classes?")
