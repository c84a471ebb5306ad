"""CAM-method registry. A method maps (backbone, images, features, logits, targets) to raw
maps [B, h, w] on the model's device; post-processing happens in ``wsol.localize``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

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

    #: option -> :class:`wsol.utils.rules.Rule`; the rule is applied in ``__init__`` (so a
    #: method built directly checks its options as ``create_method`` and the CLI do)
    option_rules: Dict[str, Any] = {}

    def __init__(self, **options):
        self.options = {k: (self.option_rules[k].coerce(f"{self.name} option {k}", v) if k in self.option_rules else v)
                        for k, v in options.items()}

    def __call__(self, backbone, images: torch.Tensor, feats: torch.Tensor, logits: torch.Tensor,
                 targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def architecture_for(cls, backbone: str) -> str:
        """The model the method reads its map from when the user names ``backbone`` (a method
        that needs its own heads maps a plain backbone to its family's model, as ``wsol train
        --wsol-method`` does); the name itself when the method runs on it, or when no mapping
        exists (the method then refuses the model in one line)."""
        return backbone


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


def method_option_rules(cls: type) -> Dict[str, Any]:
    """The options method class ``cls`` takes (its ``__init__`` keywords) with their rules:
    the class's ``option_rules`` where declared, else the type of the default (None: any)."""
    import inspect

    from wsol.utils.rules import Rule

    declared = getattr(cls, "option_rules", {})
    out: Dict[str, Any] = {}
    for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        if p.name in declared:
            out[p.name] = declared[p.name]
            continue
        d = p.default
        kind = next((k for t, k in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"))
                     if isinstance(d, t)), None)
        out[p.name] = Rule(kind) if kind else None
    return out


def create_method(name: str, **options) -> CamMethod:
    """Instantiate method ``name`` (unknown names list the closest ones). Its options are
    checked first: an unknown key is refused with the valid ones listed, values are typed
    (text from ``--method-option`` / YAML converted) and checked against their rules."""
    from wsol.utils.rules import check_keys

    cls = METHODS.get(name)
    rules = method_option_rules(cls)
    check_keys(options, rules, f"method '{name}'")
    typed = {k: (rules[k].coerce(f"{name} option {k}", v) if rules[k] is not None else v)
             for k, v in options.items()}
    return cls(**typed)


def check_targets(targets: torch.Tensor, num_classes: int) -> None:
    """Raise a clear error when a target class is outside the head."""
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= num_classes):
        raise WsolError(f"target class {int(targets.max())} outside the classifier head "
                        f"(0..{num_classes - 1}): does --weights match the dataset's classes?")
