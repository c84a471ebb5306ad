"""Optimizer parameter groups of the later WSOL trainers (TS-CAM, SAT, BAS), by parameter
name as each reference model names its parameters.

wsol's backbones wrap the reference module as ``.net`` (the names in released checkpoints),
so the rules below read ``model.net.named_parameters()`` when there is one. Only the
parameters in ``trainable`` (``--train-layers``) and with ``requires_grad`` join a group;
the reference's order of parameters inside a group is kept (it is ``named_parameters``'s).
See ``docs/training.md`` ("The later families").
"""
from __future__ import annotations

from typing import Callable, Iterable, List, Optional, Sequence, Tuple

import torch
from torch import nn

from wsol.errors import WsolError

NamedParams = List[Tuple[str, nn.Parameter]]


def reference_named_parameters(model: nn.Module, trainable: Optional[Sequence[nn.Parameter]] = None
                               ) -> NamedParams:
    """``(name, parameter)`` under the reference model's names (``model.net`` when the
    backbone wraps one), limited to ``trainable`` and to parameters that require grad."""
    root = getattr(model, "net", model)
    keep = None if trainable is None else {id(p) for p in trainable}
    return [(n, p) for n, p in root.named_parameters()
            if p.requires_grad and (keep is None or id(p) in keep)]


def is_no_decay(name: str, p: torch.Tensor, skip: Iterable[str] = ()) -> bool:
    """The ViT trainers' rule: no weight decay on 1-d parameters (norm gains, biases), on
    names ending in ``.bias`` and on the names in ``skip``."""
    return p.ndim <= 1 or name.endswith(".bias") or name in set(skip)


def decay_groups(named: NamedParams, weight_decay: float, no_decay: Callable[[str, torch.Tensor], bool],
                 no_decay_first: bool) -> List[dict]:
    """Two AdamW groups, 'no_decay' (weight decay 0) and 'decay' (``weight_decay``).

    ``no_decay_first``: timm's legacy ``create_optimizer`` (TS-CAM) always lists the
    no-decay group first; SAT's group builder lists the groups in the order their first
    parameter appears. Empty groups are left out."""
    groups = {"decay": [], "no_decay": []}
    order: List[str] = ["no_decay", "decay"] if no_decay_first else []
    for n, p in named:
        g = "no_decay" if no_decay(n, p) else "decay"
        if g not in order:
            order.append(g)
        groups[g].append((n, p))
    out = [{"params": [p for _, p in groups[g]], "param_names": [n for n, _ in groups[g]], "name": g,
            "weight_decay": 0.0 if g == "no_decay" else weight_decay} for g in order if groups[g]]
    if not out:
        raise WsolError("no parameter to train (check --train-layers)")
    return out


def bas_groups(named: NamedParams, lr: float) -> List[dict]:
    """BAS's four SGD groups by name: outside the classifiers, names with 'weight' at lr and
    with 'bias' at 2 lr; inside (a name containing 'classifier'), 'weight' at 10 lr and
    'bias' at 20 lr. As in the reference, a parameter whose name has neither word is not
    trained; empty groups are left out."""
    spec = (("weight", False, 1.0), ("bias", False, 2.0), ("classifier_weight", True, 10.0),
            ("classifier_bias", True, 20.0))
    out = []
    for gname, in_cls, mult in spec:
        word = gname.rsplit("_", 1)[-1]
        members = [(n, p) for n, p in named
                   if ("classifier" in n) == in_cls and _bas_word(n) == word]
        if members:
            out.append({"params": [p for _, p in members], "param_names": [n for n, _ in members],
                        "name": gname, "lr": lr * mult, "lr_mult": mult})
    if not out:
        raise WsolError("no parameter to train (check --train-layers)")
    return out


def _bas_word(name: str) -> Optional[str]:
    """The reference's test: 'weight' if the name contains it, else 'bias' if it contains
    that, else None."""
    if "weight" in name:
        return "weight"
    if "bias" in name:
        return "bias"
    return None


def strip_names(groups: List[dict]) -> List[dict]:
    """The groups without the ``param_names`` entry (kept aside: torch's optimizers accept
    extra keys, but a checkpoint need not carry every name twice)."""
    return [{k: v for k, v in g.items() if k != "param_names"} for g in groups]
