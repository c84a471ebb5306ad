"""The training-method interface and its registry (``wsol train --wsol-method NAME``).

A training method decides three things for ``wsol train``: which architecture it needs
(``architecture``: ``cam`` for a plain GAP + linear classifier, or a model variant with
method layers: ``acol``, ``spg``, ``adl``), how a batch is turned into a loss
(:meth:`TrainMethod.loss`), and its hyperparameters (a dataclass whose fields, with the
reference defaults, become ``--<method>-<field>`` options of ``wsol train``). See
``docs/training.md`` ("Training methods").
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Type

import torch
from torch import nn

from wsol.errors import WsolError
from wsol.utils.options import Option, options_of
from wsol.utils.registry import Registry

_ORDER = ("cam", "has", "acol", "spg", "adl", "cutmix",   # Choe et al.'s table order
          "tscam", "sat", "bas")                          # then the later families
TRAIN_METHODS: Registry[type] = Registry("training method (--wsol-method)",
                                         [f"wsol.training.methods.{m}" for m in _ORDER])


@dataclasses.dataclass
class NoOptions:
    """A method without hyperparameters."""


class TrainMethod:
    """One WSOL training method. Subclasses set the class attributes and :meth:`loss`."""

    name: str = ""
    description: str = ""
    #: the model variant the method trains: 'cam' (plain), 'acol', 'spg' or 'adl'
    architecture: str = "cam"
    #: dataclass of hyperparameters declared with :func:`wsol.utils.options.option` (default = the reference's)
    Options: type = NoOptions

    def __init__(self, options: Mapping[str, Any] | None = None):
        self.options = make_options(self.Options, options or {}, self.name)

    def option_dict(self) -> Dict[str, Any]:
        """The hyperparameters as plain values (recorded in train_config.json and checkpoints)."""
        return dataclasses.asdict(self.options)

    #: defaults of ``wsol train``'s schedule fields that the method's reference trainer sets
    #: differently (``lr``, ``weight_decay``, ``epochs``, ``batch_size``, ``lr_decay_epochs``);
    #: they apply where the user left the field unset (None)
    recipe: Dict[str, Any] = {}

    def model_options(self) -> Dict[str, Any]:
        """Options the method's architecture is built with (e.g. ADL's drop rate)."""
        return {}

    def architecture_for(self, backbone: str) -> Optional[Tuple[str, Dict[str, Any]]]:
        """(backbone name, model options) the method trains for ``backbone``, or None for the
        generic rule (:func:`wsol.models.method_heads.variant_for` with ``architecture``)."""
        return None

    def make_optimizer(self, model: nn.Module, trainable: Sequence[nn.Parameter], cfg: Any
                       ) -> Optional[Tuple[torch.optim.Optimizer, Any]]:
        """(optimizer, per-epoch lr scheduler) of the method's reference trainer, or None for
        ``wsol train``'s SGD; ``cfg`` is the resolved TrainConfig (lr, weight_decay, ...)."""
        return None

    def loss(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor
             ) -> Tuple[torch.Tensor, torch.Tensor]:
        """(loss, logits) of one training batch; may modify ``images`` in place."""
        raise NotImplementedError


def method_options(method: str, cls: type) -> Dict[str, Option]:
    """The declared hyperparameters of training method ``method`` (field -> Option), each
    named ``<method>_<field>`` so that its refusal reads the same from every door (the
    flag ``--has-drop-rate``, ``method_options={'drop_rate': ...}``, a suite's YAML)."""
    return {k: dataclasses.replace(o, name=f"{method}_{k}", flag="--" + option_flag(method, k))
            for k, o in options_of(cls).items()}


def make_options(cls: type, given: Mapping[str, Any], method: str):
    """``cls(**given)``, each value checked by its declaration (text converted to the type);
    an unknown name is a one-line error naming the method's options."""
    specs = method_options(method, cls)
    kw = {}
    for k, v in given.items():
        if k not in specs:
            known = ", ".join(specs) or "none"
            raise WsolError(f"--wsol-method {method} has no option '{k}' (its options: {known})")
        kw[k] = specs[k].coerce(v)
    return cls(**kw)


def option_flag(method: str, field: str) -> str:
    """The CLI flag of a hyperparameter: ``has`` + ``grid_size`` -> ``has-grid-size``."""
    return f"{method}-{field}".replace("_", "-")


def register_train_method(cls: Type[TrainMethod]) -> Type[TrainMethod]:
    """Class decorator: register ``cls`` under ``cls.name``."""
    return TRAIN_METHODS.add(cls.name, cls)


def list_train_methods() -> List[Type[TrainMethod]]:
    """The registered methods, in the reference's order (cam first)."""
    return sorted((c for _, c in TRAIN_METHODS.items()),
                  key=lambda c: (_ORDER.index(c.name) if c.name in _ORDER else len(_ORDER), c.name))


def create_train_method(name: str, options: Mapping[str, Any] | None = None) -> TrainMethod:
    """The method ``name`` with ``options`` (hyperparameters; missing ones take the defaults)."""
    return TRAIN_METHODS.get(name)(options)


def train_outputs(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> Dict[str, torch.Tensor]:
    """The model's training-mode outputs: ``model.forward_train(images, labels)`` when the
    model has method heads (a dict with at least 'logits'), else ``{'logits': ...}``."""
    fwd = getattr(model, "forward_train", None)
    if fwd is not None:
        return fwd(images, labels)
    return {"logits": model(images)[1]}
