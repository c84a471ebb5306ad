"""Which parameters of a backbone train: the feature stack as ordered units, freezing by
``--train-layers`` (all | head | last:N), and the SGD parameter groups (new layers at a
higher learning rate). The training engine asks the model layer, it does not reach in."""
from __future__ import annotations

import logging
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from wsol.errors import WsolError
from wsol.models.backbone import Backbone

log = logging.getLogger(__name__)

_EXPAND_NAMES = ("blocks", "stages", "layers", "features")
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def _has_params(m: nn.Module) -> bool:
    return any(True for _ in m.parameters())


def _scan(bb: Backbone) -> Tuple[List[Tuple[str, List[nn.Module]]], set]:
    """(units, names of the net's top-level children that run in the feature stack)."""
    root = getattr(bb, "net", bb)
    top = [(n, m) for n, m in root.named_children() if _has_params(m)]
    order: Dict[str, int] = {}
    hooks = []

    def hook_for(name: str):
        def h(mod, inp, out):
            order.setdefault(name, len(order))
        return h

    for n, m in top:
        hooks.append(m.register_forward_hook(hook_for(n)))
        if isinstance(m, (nn.Sequential, nn.ModuleList)):
            for cn, c in m.named_children():
                if _has_params(c):
                    hooks.append(c.register_forward_hook(hook_for(f"{n}.{cn}")))
    was_training = bb.training
    bb.eval()
    try:
        p = next(bb.parameters())
        with torch.no_grad():
            bb.feature_stack(torch.zeros(1, 3, 224, 224, device=p.device, dtype=p.dtype))
    finally:
        for h in hooks:
            h.remove()
        bb.train(was_training)
    for n, _ in top:   # a container whose stages ran one by one (NAME+bas's trunk and tail)
        ran = [i for k, i in order.items() if k.startswith(f"{n}.")]
        if n not in order and ran:
            order[n] = min(ran)
    feat_top = [(n, m) for n, m in top if n in order]
    units: List[Tuple[str, List[nn.Module]]] = []
    for n, m in sorted(feat_top, key=lambda nm: order[nm[0]]):
        kids = [(f"{n}.{cn}", c) for cn, c in m.named_children() if f"{n}.{cn}" in order]
        if isinstance(m, (nn.Sequential, nn.ModuleList)) and len(kids) > 1 and \
                (n in _EXPAND_NAMES or len(feat_top) == 1):
            parts = sorted(kids, key=lambda nm: order[nm[0]])
        else:
            parts = [(n, m)]
        for pn, pm in parts:
            if isinstance(pm, _NORMS) and units:
                units[-1] = (f"{units[-1][0]}+{pn}", units[-1][1] + [pm])
            else:
                units.append((pn, [pm]))
    return units, {n for n, _ in feat_top}


def feature_units(bb: Backbone) -> List[Tuple[str, List[nn.Module]]]:
    """The feature stack as an ordered list of units ``(name, modules)``, input to output.

    Units are the top-level children of the wrapped net that run in the feature stack
    (``feature_stack``: ``forward_features``, or ``NAME+bas``'s trunk and tail), in the order they run; a Sequential/ModuleList named blocks/stages/layers/features (or
    the only child holding the whole stack) is split into its children (timm EfficientNet:
    ``blocks.0`` ... ``blocks.6``; torchvision ResNet: ``layer1`` ... ``layer4``). A norm
    layer joins the unit before it (``conv_head+bn2``); parameter-free modules are dropped.
    Modules that run only in ``forward_logits`` (the classifier) are no unit.
    """
    return _scan(bb)[0]


def parse_train_layers(spec: str) -> Optional[int]:
    """'all' -> None (everything), 'head' -> 0, 'last:N' -> N."""
    s = spec.strip().lower()
    if s == "all":
        return None
    if s == "head":
        return 0
    if s.startswith("last:"):
        try:
            n = int(s[5:])
        except ValueError:
            n = -1
        if n >= 0:
            return n
    raise WsolError(f"--train-layers takes 'all', 'head' or 'last:N' (N >= 0), got {spec!r}")


def set_trainable(bb: Backbone, spec: str) -> Tuple[List[nn.Parameter], List[nn.Module], List[str]]:
    """Freeze according to ``spec`` ('all' | 'head' | 'last:N').

    Returns (trainable parameters, frozen modules, names of the trained units). Under
    'head' and 'last:N' the trained parameters are the classifier and any other module run
    only in ``forward_logits``, the units holding new layers (``new_parameters()``, e.g.
    vgg16_gap's conv6), plus the last N other units of :func:`feature_units`; every other
    parameter gets ``requires_grad=False`` and its modules are kept in eval mode while
    training (BatchNorm statistics frozen too).
    """
    n = parse_train_layers(spec)
    params = list(bb.parameters())
    if n is None:
        for p in params:
            p.requires_grad_(True)
        return params, [], ["all"]
    units, feat_top = _scan(bb)
    if n > len(units):
        log.warning("--train-layers %s: the feature stack has only %d units; training all of them", spec, len(units))
        n = len(units)
    # units holding new (randomly initialised) layers are always trained, e.g. vgg16_gap's conv6
    new_ids = {id(p) for p in bb.new_parameters()}
    is_new = [any(id(p) in new_ids for m in mods for p in m.parameters()) for _, mods in units]
    # the last N units of the pretrained stack (units with new layers are not counted)
    pretrained_idx = [i for i in range(len(units)) if not is_new[i]]
    last_n = set(pretrained_idx[len(pretrained_idx) - n:]) if n else set()
    keep = [i in last_n or is_new[i] for i in range(len(units))]
    frozen_units = [u for u, k in zip(units, keep) if not k]
    trained_units = [u for u, k in zip(units, keep) if k]
    frozen_modules = [m for _, mods in frozen_units for m in mods]
    trained_ids = {id(p) for _, mods in trained_units for m in mods for p in m.parameters()}
    unit_ids = {id(p) for _, mods in units for m in mods for p in m.parameters()}
    # outside the units: trained when held by a child that runs only in forward_logits (the
    # head), frozen otherwise (e.g. position embeddings, parameters of the net itself)
    root = getattr(bb, "net", bb)
    head_ids = {id(p) for name, child in root.named_children() if name not in feat_top
                for p in child.parameters()}
    head_ids.update(id(p) for p in bb.new_parameters())
    trainable = []
    for p in params:
        on = id(p) in trained_ids or (id(p) not in unit_ids and id(p) in head_ids)
        p.requires_grad_(on)
        if on:
            trainable.append(p)
    return trainable, frozen_modules, ["head"] + [u for u, _ in trained_units]


def param_groups(bb: Backbone, trainable: Sequence[nn.Parameter], lr: float, mult: float,
                 weight_decay: float) -> List[dict]:
    """SGD groups: pretrained parameters at ``lr``, new ones (``new_parameters()``) at ``mult * lr``.

    Choe et al.'s architectures follow the reference trainer's own split instead
    (``reference_fast_parameters()``: VGG16 and InceptionV3 every layer outside the ImageNet
    trunk, ResNet50 ``layer4`` and ``fc``), so their runs match wsolevaluation's."""
    fast = getattr(bb, "reference_fast_parameters", None)
    new_ids = {id(p) for p in (fast() if fast is not None else bb.new_parameters())}
    base = [p for p in trainable if id(p) not in new_ids]
    new = [p for p in trainable if id(p) in new_ids]
    groups = []
    if base:
        groups.append({"params": base, "lr": lr, "weight_decay": weight_decay, "name": "pretrained"})
    if new:
        groups.append({"params": new, "lr": lr * mult, "weight_decay": weight_decay, "name": "new"})
    if not groups:
        raise WsolError("no parameter to train (check --train-layers)")
    return groups
