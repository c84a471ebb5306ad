"""A classifier seen as (features, classifier): what every CAM method needs.

``Backbone.forward_features(x) -> [B, K, h, w]`` is the last conv stage;
``Backbone.forward_logits(f) -> [B, C]`` is pooling + head; ``classifier_weight()`` is the
[C, K] matrix whose rows weight the feature maps in CAM. ``cam_exact`` says whether the
head is global-average-pool + linear, i.e. whether ``mean_hw(CAM_c) + b_c`` equals logit c.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class BackboneInfo:
    """What ``wsol models`` lists for a backbone."""

    name: str
    source: str            # timm | torchvision | wsol
    feature_layer: str     # the layer whose output the CAM weights
    stride: int            # input pixels per feature-map cell
    cam_exact: bool        # GAP + linear head
    note: str = ""         # why CAM is not exact, or other caveats


class Backbone(nn.Module):
    """Base wrapper. Subclasses set ``net`` and implement the three hooks below."""

    def __init__(self, info: BackboneInfo, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD):
        super().__init__()
        self.info = info
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        self.new_layers: Tuple[str, ...] = ()   # submodule paths not from the checkpoint
        self.model_options: Dict[str, Any] = {}  # the options it was built with (recorded in checkpoints)

    @property
    def name(self) -> str:
        return self.info.name

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_logits(self, feats: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def feature_stack(self, x: torch.Tensor) -> torch.Tensor:
        """Input -> the last map of the feature stack: ``forward_features`` unless the CAM
        layer sits inside the stack (``NAME+bas``: its trunk, then its tail)."""
        return self.forward_features(x)

    def classifier(self) -> nn.Linear:
        raise NotImplementedError

    def classifier_weight(self) -> torch.Tensor:
        """[C, K] classifier rows (for CAM)."""
        return self.classifier().weight

    def class_maps(self, feats: torch.Tensor, targets: torch.Tensor) -> Optional[torch.Tensor]:
        """The model's own class maps [B, h, w] of ``targets`` where its inference defines them
        (ACoL's fused map); None for the rest, whose CAM is ``classifier_weight`` x ``feats``."""
        return None

    def forward_train(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Training-mode outputs as a dict with at least ``logits`` (ACoL and SPG heads add the
        maps their losses need; see ``docs/training.md``)."""
        return {"logits": self(x)[1]}

    @property
    def num_classes(self) -> int:
        return int(self.classifier().weight.shape[0])

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        f = self.forward_features(x)
        return f, self.forward_logits(f)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head by a fresh ``num_classes``-way linear layer (for fine-tuning)."""
        raise NotImplementedError

    def mark_new(self, *paths: str) -> None:
        """Declare submodules (paths relative to this wrapper, e.g. ``'net.conv6'``) as new:
        layers that an ImageNet checkpoint does not provide."""
        for p in paths:
            self.get_submodule(p)  # fail early on a typo
        self.new_layers = tuple(dict.fromkeys(self.new_layers + tuple(paths)))

    def new_parameters(self) -> Sequence[nn.Parameter]:
        """Parameters not from the ImageNet checkpoint (trained at 10x lr in the recipe):
        the classifier's and those of the layers declared with ``mark_new``."""
        out, seen = [], set()
        mods = [self.classifier()] + [self.get_submodule(p) for p in self.new_layers]
        for m in mods:
            for prm in m.parameters():
                if id(prm) not in seen:
                    seen.add(id(prm))
                    out.append(prm)
        return out


def check_cam_exact(backbone: Backbone, size: int = 224, atol: float = 1e-3, batch: int = 2) -> bool:
    """Empirically: is logit_c == mean over h,w of CAM_c + b_c (GAP + linear head)?

    A classifier whose input width differs from the feature channels (hidden FC layers) is
    not exact.
    """
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            p = next(backbone.parameters(), None)
            x = torch.randn(batch, 3, size, size, device=p.device if p is not None else "cpu")
            f, logits = backbone(x)
            fc = backbone.classifier()
            w = backbone.classifier_weight()
            if w.shape[1] != f.shape[1] or w.shape[0] != logits.shape[1]:
                return False
            cam_mean = torch.einsum("ck,bkhw->bchw", w, f).mean(dim=(2, 3))
            # scale: the size of the summed terms (not of the logits, which random weights
            # can make tiny, nor clamped at 1, which would let tiny logits pass as exact)
            scale = torch.einsum("ck,bk->bc", w.abs(), f.abs().mean(dim=(2, 3)))
            if fc.bias is not None:
                cam_mean = cam_mean + fc.bias
                scale = scale + fc.bias.abs()
            scale = scale.max().clamp_min(torch.finfo(scale.dtype).tiny)
            return bool(((cam_mean - logits).abs().max() / scale) < atol)
    finally:
        backbone.train(was_training)


class TimmBackbone(Backbone):
    """Any timm classifier: ``forward_features`` / ``forward_head`` (no hooks)."""

    def __init__(self, net: nn.Module, info: BackboneInfo, mean=None, std=None):
        cfg = getattr(net, "pretrained_cfg", None) or {}
        super().__init__(info, mean or cfg.get("mean", IMAGENET_MEAN), std or cfg.get("std", IMAGENET_STD))
        self.net = net

    def forward_features(self, x):
        return self.net.forward_features(x)

    def forward_logits(self, feats):
        return self.net.forward_head(feats)

    def classifier(self) -> nn.Linear:
        head = self.net.get_classifier()
        if isinstance(head, nn.Linear):
            return head
        lin = [m for m in head.modules() if isinstance(m, nn.Linear)] if isinstance(head, nn.Module) else []
        if not lin:
            raise TypeError(f"{self.name}: classifier is not linear ({type(head).__name__})")
        return lin[-1]

    def reset_classifier(self, num_classes: int) -> None:
        self.net.reset_classifier(num_classes)


def _get_sub(root: nn.Module, path: str) -> nn.Module:
    m = root
    for p in path.split("."):
        m = getattr(m, p)
    return m


def _set_sub(root: nn.Module, path: str, value: nn.Module) -> None:
    *parents, last = path.split(".")
    m = root
    for p in parents:
        m = getattr(m, p)
    setattr(m, last, value)


class NetBackbone(Backbone):
    """A plain ``nn.Module`` (torchvision, or wsol's own) split by two functions.

    ``features_fn(net, x)`` runs the net up to the CAM layer; the logits are
    ``net.<head>(flatten(GAP(features)))``, or ``logits_fn(net, features)`` when given (heads
    that are not GAP + linear: VGG's FC stack, ConvNeXt's LayerNorm, MobileNetV3's hidden
    layer). ``classifier()`` is then the head's last ``nn.Linear``. The net is kept whole
    under ``self.net`` so its checkpoints load with their own key names.
    """

    def __init__(self, net: nn.Module, info: BackboneInfo, features_fn: Callable, head: str,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 logits_fn: Optional[Callable[[nn.Module, torch.Tensor], torch.Tensor]] = None):
        super().__init__(info, mean, std)
        self.net = net
        self._features_fn = features_fn
        self._head = head
        self._logits_fn = logits_fn

    def forward_features(self, x):
        return self._features_fn(self.net, x)

    def forward_logits(self, feats):
        if self._logits_fn is not None:
            return self._logits_fn(self.net, feats)
        return _get_sub(self.net, self._head)(torch.flatten(feats.mean(dim=(2, 3)), 1))

    def classifier(self) -> nn.Linear:
        head = _get_sub(self.net, self._head)
        if isinstance(head, nn.Linear):
            return head
        return [m for m in head.modules() if isinstance(m, nn.Linear)][-1]

    def reset_classifier(self, num_classes: int) -> None:
        head = _get_sub(self.net, self._head)
        old = self.classifier()
        new = nn.Linear(old.in_features, num_classes)
        if head is old:
            _set_sub(self.net, self._head, new)
            return
        for name, m in head.named_modules():
            if m is old:
                _set_sub(head, name, new)
