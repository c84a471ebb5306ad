"""BAS on any CNN backbone: the generic method variant ``NAME+bas`` (``docs/training.md``,
"BAS", and "Generic method heads").

The variant splits the backbone's feature stack as the four reference BAS nets split theirs:
the *trunk* runs up to the stage before the last downsampling, whose output ``x_loc`` (stride
16 on a stride-32 backbone: 14x14 at 224 input for ``efficientnet_lite0``, the output of
``blocks.4``) ``classifier_loc`` reads; the *tail* (the stages from the last downsampling on,
and the layers after them, e.g. ``blocks.5``, ``blocks.6``, ``conv_head``, ``bn2``) runs from
``x_loc`` to the last feature map, which ``classifier_cls`` reads. The backbone's classifier
is removed; the heads are BAS's:

- ``classifier_cls``: 3x3 conv to 1024 + ReLU, 3x3 conv 1024 + ReLU, 1x1 conv to the classes
  on the tail's output; GAP of its map = the logits;
- ``classifier_loc``: 3x3 conv to the classes + sigmoid on ``x_loc``: the per-class
  foreground maps.

The erase branch runs the tail and ``classifier_cls`` frozen (:func:`run_frozen`) on
``x_loc.detach() * (1 - M_fg)``, and ``score_2`` multiplies the class maps by M_fg pooled
onto the last map's grid (:func:`pool_to`). The training forward, loss and optimizer are
BAS's (:func:`wsol.models.bas_common.bas_train_outputs`, ``--wsol-method bas``): the new heads'
names hold ``classifier``, so they take the reference's 10x / 20x learning rates.
``forward_features`` gives ``x_loc`` and ``forward_logits`` runs the tail and
``classifier_cls``; at evaluation ``cam`` gives ``classifier_loc``'s map of the target class
and ``bas`` the foreground map (``topk`` 1 by default: the target's), both on ``x_loc``'s grid.
Both heads are Xavier-initialised with zero biases, as the reference's.

The split is found from the backbone's own modules (:func:`split_feature_stack`): its
top-level children in the order ``forward_features`` runs them, with the stage container
(``blocks``, ``stages``, ``layers``, ``features``) opened into its stages; the variant
checks once that running them in turn gives ``forward_features``'s output, else refuses the
backbone with a clear error.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from wsol.errors import WsolError
from wsol.models.backbone import Backbone, BackboneInfo
from wsol.models.bas_common import bas_train_outputs, cls_head, gap, head_foreground, loc_head, xavier_init
from wsol.models.method_heads import strip_head
from wsol.models.vit_tokens import TokenBackboneMixin

#: stage containers opened into their stages (timm EfficientNet ``blocks``, ByobNet ``stages`` ...)
_CONTAINERS = ("blocks", "stages", "layers", "features")
#: the input side of the probe that finds the split
_PROBE = 128


@dataclass(frozen=True)
class StackSplit:
    """Where ``NAME+bas`` cuts the feature stack: module paths (relative to ``net``) of the
    trunk (input -> ``x_loc``) and of the tail (``x_loc`` -> the last feature map), in order;
    ``factor``: how much the tail shrinks the map (2: ``x_loc`` at twice the last map's side)."""

    trunk: Tuple[str, ...]
    tail: Tuple[str, ...]
    factor: int


def _run_order(base: Backbone, x: torch.Tensor) -> Tuple[List[Tuple[str, nn.Module]], Dict[str, torch.Size],
                                                         torch.Tensor]:
    """The modules ``base.forward_features`` runs (top-level children of ``base.net``, stage
    containers opened) in their order, each one's output shape, and the features."""
    seen: Dict[str, torch.Size] = {}
    mods: Dict[str, nn.Module] = {}
    hooks = []

    def watch(name: str, m: nn.Module) -> None:
        def h(mod, inp, out):
            if name not in seen:
                seen[name] = out.shape if isinstance(out, torch.Tensor) else torch.Size()
        mods[name] = m
        hooks.append(m.register_forward_hook(h))

    for n, m in base.net.named_children():
        if n in _CONTAINERS and isinstance(m, nn.Sequential) and len(m) > 1:
            for cn, c in m.named_children():
                watch(f"{n}.{cn}", c)
        else:
            watch(n, m)
    try:
        feats = base.forward_features(x)
    finally:
        for h in hooks:
            h.remove()
    return [(n, mods[n]) for n in seen], seen, feats


def split_feature_stack(base: Backbone) -> StackSplit:
    """Cut ``base``'s feature stack before the stage of its last downsampling (the reference
    BAS nets' trunk / tail split; module docstring). Raises :class:`WsolError` when the
    stack is not a plain sequence of modules or never downsamples."""
    was_training = base.training
    base.eval()
    try:
        p = next(base.parameters())
        x = torch.randn(1, 3, _PROBE, _PROBE, generator=torch.Generator().manual_seed(0)).to(p.device, p.dtype)
        with torch.no_grad():
            order, shapes, feats = _run_order(base, x)
            h = x
            for _, m in order:
                h = m(h)
            same = h.shape == feats.shape and torch.allclose(h, feats, rtol=1e-4, atol=1e-5)
    finally:
        base.train(was_training)
    if not same or any(len(shapes[n]) != 4 for n, _ in order):
        raise WsolError(f"backbone '{base.name}': +bas cannot split its feature stack (its modules, run in turn, "
                        "do not give its feature map); BAS nets: bas_resnet50, bas_vgg16, bas_inception_v3, "
                        "bas_mobilenet_v1")
    sides = [_PROBE] + [int(shapes[n][-1]) for n, _ in order]
    down = [i for i in range(len(order)) if sides[i + 1] < sides[i]]
    if not down or down[-1] == 0:
        raise WsolError(f"backbone '{base.name}': +bas needs a feature stack that downsamples after its first layer")
    j = down[-1]
    names = [n for n, _ in order]
    return StackSplit(tuple(names[:j]), tuple(names[j:]), max(1, round(sides[j] / sides[-1])))


class BasVariant(Backbone):
    """BAS's ``classifier_loc`` on the map before ``base``'s last downsampling and
    ``classifier_cls`` after the tail; shares ``base.net`` (the heads are added to it)."""

    kind = "bas"
    bas_clamp = 1.0

    def __init__(self, base: Backbone, info: BackboneInfo, num_classes: int):
        if isinstance(base, TokenBackboneMixin):
            raise WsolError(f"backbone '{info.name}': +bas needs a CNN backbone (a feature map); "
                            f"'{base.name}' is a ViT (token features)")
        width = strip_head(base)
        split = split_feature_stack(base)
        stride = base.info.stride // split.factor if base.info.stride else 0
        super().__init__(BackboneInfo(**{**vars(info), "feature_layer": split.trunk[-1], "stride": stride}),
                         base.mean, base.std)
        self.net = base.net
        self.split = split
        self.model_options = {}
        loc_width = self._trunk_width()
        self.net.classifier_cls = cls_head(width, num_classes)
        self.net.classifier_loc = loc_head(loc_width, num_classes)
        xavier_init(list(self.net.classifier_cls.modules()) + list(self.net.classifier_loc.modules()))
        self.mark_new("net.classifier_cls", "net.classifier_loc")

    def _trunk_width(self) -> int:
        p = next(self.net.parameters())
        was_training = self.net.training
        self.net.eval()
        try:
            with torch.no_grad():
                return int(self.forward_features(torch.zeros(1, 3, _PROBE, _PROBE, device=p.device,
                                                             dtype=p.dtype)).shape[1])
        finally:
            self.net.train(was_training)

    def _modules_at(self, names: Tuple[str, ...]) -> nn.Sequential:
        return nn.Sequential(*(self.net.get_submodule(n) for n in names))

    def tail_modules(self) -> nn.Sequential:
        """The tail (``x_loc`` -> the last feature map) as one sequence of ``net``'s own modules."""
        return self._modules_at(self.split.tail)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``x_loc``: the trunk's output, the map ``classifier_loc`` reads."""
        for n in self.split.trunk:
            x = self.net.get_submodule(n)(x)
        return x

    def feature_stack(self, x: torch.Tensor) -> torch.Tensor:
        """The whole feature stack (trunk, then tail): the last feature map."""
        return self.tail_modules()(self.forward_features(x))

    def forward_logits(self, feats: torch.Tensor) -> torch.Tensor:
        return gap(self._path(feats, {"tail": self.tail_modules(), "classifier_cls": self.net.classifier_cls}))

    def classifier(self) -> nn.Module:
        return self.net.classifier_cls[4]

    def classifier_weight(self) -> torch.Tensor:
        return self.classifier().weight.flatten(1)

    def default_topk(self) -> int:
        """The foreground map's classes by default: the target's alone (BAS's ILSVRC setting)."""
        return 1

    def foreground(self, feats: torch.Tensor, logits: torch.Tensor, targets: Optional[torch.Tensor],
                   topk: Optional[int] = None) -> torch.Tensor:
        """M_fg [B, h, w] on ``x_loc``'s grid: the mean sigmoid map of ``targets`` (topk 1) or
        of the ``topk`` highest logits."""
        k = self.default_topk() if topk is None else int(topk)
        return head_foreground(self.net.classifier_loc, feats, logits, targets, k)[:, 0]

    def class_maps(self, feats: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.foreground(feats, feats.new_zeros(feats.shape[0], 1), targets, topk=1)

    @staticmethod
    def _path(x: torch.Tensor, mods: Dict[str, nn.Module]) -> torch.Tensor:
        return mods["classifier_cls"](mods["tail"](x))

    def forward_train(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """BAS's training outputs (topk 1, as its trainer): ``classifier_loc`` on ``x_loc``,
        the tail and ``classifier_cls`` after it, the erase branch through frozen copies of both."""
        if labels is None:
            raise WsolError("BAS training needs the labels (its erase branch scores the label)")
        mods = {"tail": self.tail_modules(), "classifier_cls": self.net.classifier_cls}
        return bas_train_outputs(self.forward_features(x), self._path, mods, self.net.classifier_loc, labels, 1,
                                 self.bas_clamp)

    def reset_classifier(self, num_classes: int) -> None:
        old_cls, old_loc = self.net.classifier_cls[4], self.net.classifier_loc[0]
        self.net.classifier_cls[4] = nn.Conv2d(old_cls.in_channels, num_classes, kernel_size=1)
        self.net.classifier_loc[0] = nn.Conv2d(old_loc.in_channels, num_classes, kernel_size=3, padding=1)
        xavier_init([self.net.classifier_cls[4], self.net.classifier_loc[0]])
