"""What every wsolevaluation-style net in wsol implements (see ``docs/training.md``,
"Training methods and model heads").

A net splits into ``forward_features(x)`` (the map the CAM weights) and
``forward_logits(f)`` (GAP + classifier, or ACoL's head A); ``forward_train(x, labels)``
returns the reference model's training output dict; ``class_maps(f, labels)`` returns the
model's own class maps where inference defines them (ACoL) and None otherwise.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from wsol.models.heads import class_attention, erase_attention, normalize_maps, spg_attention


def init_like_reference(modules, mode: str) -> None:
    """wsolevaluation's ``initialize_weights``: convs He (fan-out) or Xavier-uniform with zero
    bias, batch norms (1, 0), linear layers N(0, 0.01) with zero bias."""
    for m in modules:
        if isinstance(m, nn.Conv2d):
            if mode == "he":
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def conv_classifier(layer: nn.Module, pooled: torch.Tensor) -> torch.Tensor:
    """A linear or 1x1-conv classifier applied to pooled features [B, K] -> [B, C]."""
    if isinstance(layer, nn.Linear):
        return layer(pooled)
    return F.linear(pooled, layer.weight.flatten(1), layer.bias)


def gap(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(2, 3))


class WsolevalNet(nn.Module):
    """Base of the nets: GAP + ``head`` classifier (``nn.Linear`` ``fc`` or 1x1 conv ``SPG_A4``).

    ``logits_dropout``: dropout (p=0.5, training only) on the features before the classifier,
    as the reference's InceptionV3 CAM/SPG heads have.
    """

    head: str = "fc"
    logits_dropout: bool = False
    #: the reference's ``initialize_weights`` mode of this net ('he' or 'xavier'): a new head
    #: for another class count is initialised by it, as the reference's constructor does
    init_mode: str = "xavier"

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def classifier_layer(self) -> nn.Module:
        return self.get_submodule(self.head)

    def forward_logits(self, f: torch.Tensor) -> torch.Tensor:
        if self.logits_dropout:
            f = F.dropout(f, 0.5, self.training)
        return conv_classifier(self.classifier_layer(), gap(f))

    def class_maps(self, f: torch.Tensor, labels: torch.Tensor) -> Optional[torch.Tensor]:
        return None

    def forward_train(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        return {"logits": self.forward_logits(self.forward_features(x))}

    def reset_head(self, num_classes: int) -> None:
        old = self.classifier_layer()
        if isinstance(old, nn.Linear):
            new: nn.Module = nn.Linear(old.in_features, num_classes)
        else:
            new = nn.Conv2d(old.in_channels, num_classes, kernel_size=1)
        init_like_reference([new], self.init_mode)
        _set_child(self, self.head, new)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_logits(self.forward_features(x))


def _set_child(root: nn.Module, path: str, value: nn.Module) -> None:
    *parents, last = path.split(".")
    m = root
    for p in parents:
        m = m.get_submodule(p)
    setattr(m, last, value)


def acol_classifier(in_channels: int, num_classes: int, inplace: bool) -> nn.Sequential:
    """One ACoL head: 3x3 conv to 1024 + ReLU, 3x3 conv 1024 + ReLU, 1x1 conv to the classes."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 1024, kernel_size=3, stride=1, padding=1), nn.ReLU(inplace=inplace),
        nn.Conv2d(1024, 1024, kernel_size=3, stride=1, padding=1), nn.ReLU(inplace=inplace),
        nn.Conv2d(1024, num_classes, kernel_size=1, stride=1, padding=0))


class AcolNet(WsolevalNet):
    """ACoL's two heads on ``forward_features``: head A classifies; B sees the feature with A's
    class attention >= ``drop_threshold`` erased. Subclasses build ``classifier_A``/``_B``."""

    head = "classifier_A.4"
    drop_threshold: float = 0.7

    def forward_logits(self, f: torch.Tensor) -> torch.Tensor:
        return gap(self.classifier_A(f))

    def acol_outputs(self, f: torch.Tensor, labels: Optional[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """The reference's dict: logits (A), logit_b (B), feat_map_a, feat_map_b."""
        feat_map_a = self.classifier_A(f)
        logits = gap(feat_map_a)
        labels = logits.argmax(dim=1) if labels is None else labels
        erased = erase_attention(f, class_attention(feat_map_a, labels), self.drop_threshold)
        feat_map_b = self.classifier_B(erased)
        return {"logits": logits, "logit_b": gap(feat_map_b), "feat_map_a": feat_map_a, "feat_map_b": feat_map_b}

    def class_maps(self, f: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Inference map: max of the min-max normalized A and B maps of the label [B, h, w]."""
        out = self.acol_outputs(f, labels)
        idx = torch.arange(f.shape[0], device=f.device)
        a = normalize_maps(out["feat_map_a"].detach()[idx, labels].unsqueeze(1))
        b = normalize_maps(out["feat_map_b"].detach()[idx, labels].unsqueeze(1))
        return torch.maximum(a, b)[:, 0]

    def forward_train(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        return self.acol_outputs(self.forward_features(x), labels)

    def reset_head(self, num_classes: int) -> None:
        for name in ("classifier_A", "classifier_B"):
            seq = getattr(self, name)
            new = nn.Conv2d(seq[4].in_channels, num_classes, kernel_size=1)
            init_like_reference([new], self.init_mode)
            seq[4] = new


def spg_side_branches(in_b1: int, in_b2: int, width_b: int, in_c: int, width_c: int
                      ) -> Tuple[nn.Sequential, nn.Sequential, nn.Sequential, nn.Sequential]:
    """SPG_B_1a, SPG_B_2a, SPG_B_shared, SPG_C as the reference builds them."""
    b1 = nn.Sequential(nn.Conv2d(in_b1, width_b, kernel_size=3, padding=1), nn.ReLU(inplace=True))
    b2 = nn.Sequential(nn.Conv2d(in_b2, width_b, kernel_size=3, padding=1), nn.ReLU(inplace=True))
    shared = nn.Sequential(nn.Conv2d(width_b, width_b, kernel_size=3, padding=1), nn.ReLU(inplace=True),
                           nn.Conv2d(width_b, 1, kernel_size=1))
    c = nn.Sequential(nn.Conv2d(in_c, width_c, kernel_size=3, padding=1), nn.ReLU(inplace=True),
                      nn.Conv2d(width_c, 1, kernel_size=1))
    return b1, b2, shared, c


def spg_outputs(net: nn.Module, feat_map: torch.Tensor, labels: Optional[torch.Tensor], logits_b1: torch.Tensor,
                logits_b2: torch.Tensor, logits_c: torch.Tensor) -> Dict[str, torch.Tensor]:
    """The reference SPG model's training dict from its parts."""

    logits = gap(feat_map)
    labels = logits.argmax(dim=1) if labels is None else labels
    attention, fused = spg_attention(feat_map, labels, logits_b1, logits_b2)
    return {"attention": attention, "fused_attention": fused, "logits": logits, "logits_b1": logits_b1,
            "logits_b2": logits_b2, "logits_c": logits_c}
