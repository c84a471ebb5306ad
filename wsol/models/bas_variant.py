"""BAS on any CNN backbone: the generic method variant ``NAME+bas`` (``docs/training.md``,
"BAS", and "Generic method heads").

The four reference BAS nets (``bas_resnet50`` ...) read their foreground head from a 28x28
map inside the trunk and run the last stage (the *tail*) before the classifier. On any other
backbone (e.g. the offline ``efficientnet_lite0``) the variant puts BAS's two heads, as the
reference nets define them, on the backbone's last feature map, whose classifier it removes:

- ``classifier_cls``: 3x3 conv to 1024 + ReLU, 3x3 conv 1024 + ReLU, 1x1 conv to the classes;
  GAP of its map = the logits;
- ``classifier_loc``: 3x3 conv to the classes + sigmoid: the per-class foreground maps.

There is no tail: the erase branch runs (frozen copies of) ``classifier_cls`` on the detached
feature map times (1 - M_fg), and ``score_2`` multiplies the class maps by M_fg on the same
grid. The training forward, loss and optimizer are BAS's (:func:`wsol.models.bas_common.bas_train_outputs`,
``--wsol-method bas``): the new heads' names hold ``classifier``, so they take the
reference's 10x / 20x learning rates. At evaluation ``cam`` gives ``classifier_loc``'s map of
the target class and ``bas`` the foreground map (``topk`` 1 by default: the target's).
Both heads are Xavier-initialised with zero biases, as the reference's.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import nn

from wsol.errors import WsolError
from wsol.models.backbone import Backbone, BackboneInfo
from wsol.models.bas_common import bas_train_outputs, cls_head, gap, head_foreground, loc_head, xavier_init
from wsol.models.method_heads import strip_head
from wsol.models.vit_tokens import TokenBackboneMixin


class BasVariant(Backbone):
    """BAS's ``classifier_cls`` and ``classifier_loc`` on ``base``'s last feature map; shares
    ``base.net`` (the heads are added to it) and its feature pass."""

    kind = "bas"
    bas_clamp = 1.0

    def __init__(self, base: Backbone, info: BackboneInfo, num_classes: int):
        if isinstance(base, TokenBackboneMixin):
            raise WsolError(f"backbone '{info.name}': +bas needs a CNN backbone (a feature map); "
                            f"'{base.name}' is a ViT (token features)")
        width = strip_head(base)
        super().__init__(info, base.mean, base.std)
        self.net = base.net
        self._base_features = base.forward_features   # runs on self.net, the same module
        self.model_options = {}
        self.net.classifier_cls = cls_head(width, num_classes)
        self.net.classifier_loc = loc_head(width, num_classes)
        xavier_init(list(self.net.classifier_cls.modules()) + list(self.net.classifier_loc.modules()))
        self.mark_new("net.classifier_cls", "net.classifier_loc")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._base_features(x)

    def forward_logits(self, feats: torch.Tensor) -> torch.Tensor:
        return gap(self.net.classifier_cls(feats))

    def classifier(self) -> nn.Module:
        return self.net.classifier_cls[4]

    def classifier_weight(self) -> torch.Tensor:
        return self.classifier().weight.flatten(1)

    def default_topk(self) -> int:
        """The foreground map's classes by default: the target's alone (BAS's ILSVRC setting)."""
        return 1

    def foreground(self, feats: torch.Tensor, logits: torch.Tensor, targets: Optional[torch.Tensor],
                   topk: Optional[int] = None) -> torch.Tensor:
        """M_fg [B, h, w]: the mean sigmoid map of ``targets`` (topk 1) or of the ``topk``
        highest logits."""
        k = self.default_topk() if topk is None else int(topk)
        return head_foreground(self.net.classifier_loc, feats, logits, targets, k)[:, 0]

    def class_maps(self, feats: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.foreground(feats, feats.new_zeros(feats.shape[0], 1), targets, topk=1)

    @staticmethod
    def _path(x: torch.Tensor, mods: Dict[str, nn.Module]) -> torch.Tensor:
        return mods["classifier_cls"](x)

    def forward_train(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """BAS's training outputs (topk 1, as its trainer) on the last feature map."""
        if labels is None:
            raise WsolError("BAS training needs the labels (its erase branch scores the label)")
        return bas_train_outputs(self.forward_features(x), self._path, {"classifier_cls": self.net.classifier_cls},
                                 self.net.classifier_loc, labels, 1, self.bas_clamp)

    def reset_classifier(self, num_classes: int) -> None:
        old_cls, old_loc = self.net.classifier_cls[4], self.net.classifier_loc[0]
        self.net.classifier_cls[4] = nn.Conv2d(old_cls.in_channels, num_classes, kernel_size=1)
        self.net.classifier_loc[0] = nn.Conv2d(old_loc.in_channels, num_classes, kernel_size=3, padding=1)
        xavier_init([self.net.classifier_cls[4], self.net.classifier_loc[0]])
