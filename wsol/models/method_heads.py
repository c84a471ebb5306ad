"""ACoL, SPG, ADL and BAS on any backbone: the generic method variants ``NAME+acol``,
``NAME+spg``, ``NAME+adl``, ``NAME+bas`` (``docs/training.md``, "Generic method heads").

Choe et al.'s three architectures have the reference's own variants (``vgg16_acol``,
``resnet50_spg``, ``vgg16_gap`` with ``adl=true`` ...; :func:`variant_for` picks them).
Every other backbone (e.g. the offline ``efficientnet_lite0``) gets the method's layers
added the same way on top of its feature stack:

- ``+acol``: the backbone's classifier is removed; two ACoL heads (3x3 conv to 1024 + ReLU,
  3x3 conv 1024 + ReLU, 1x1 conv to the classes, as the reference's) read the last feature
  map; head B sees it erased where head A's normalized class map is >=
  ``acol_drop_threshold``. The CAM is the max of both heads' normalized maps.
- ``+spg``: the classifier is removed; SPG's stages A1, A2, A3 are new 3x3 convs (512
  channels + ReLU) on the last feature map, ``SPG_A4`` a 1x1 conv to the classes (the CAM
  is its map), branch B (shared head) reads A1 and A2 and branch C reads A3, as in the
  reference's VGG16 SPG. (The reference taps backbone stages for A1/A2; here they are new
  layers, so any backbone works.)
- ``+adl``: a parameter-free ADL layer at the end of each of the last two stages of the
  feature stack (timm ``blocks``, torchvision ``layer3``/``layer4`` or ``features``); keys
  are unchanged, so the backbone's own checkpoints load.
- ``+bas``: the classifier is removed; BAS's ``classifier_loc`` (as the reference BAS nets
  define it) reads the map before the last downsampling, ``classifier_cls`` the last feature
  map after the remaining stages (the tail), as in the reference nets (:mod:`wsol.models.bas_variant`).
  The reference nets themselves are ``bas_resnet50`` ... (``--wsol-method bas`` picks them
  for ``resnet50``, ``vgg16``, ``inception_v3``).

All new layers are Xavier-initialised and returned by ``new_parameters()`` (10x lr).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch
from torch import nn

from wsol.errors import WsolError
from wsol.models.adl import ADL, ADL_DROP_RATE, ADL_DROP_THRESHOLD
from wsol.models.backbone import Backbone, BackboneInfo, NetBackbone, TimmBackbone
from wsol.models.heads import ACOL_DROP_THRESHOLD, class_attention, erase_attention, normalize_maps
from wsol.models.wsoleval_common import acol_classifier, gap, init_like_reference, spg_outputs, spg_side_branches

KINDS = ("acol", "spg", "adl", "bas")
#: model options of the generic variants (name -> default)
OPTIONS: Dict[str, Dict[str, Any]] = {
    "acol": {"acol_drop_threshold": ACOL_DROP_THRESHOLD},
    "spg": {},
    "adl": {"adl_drop_rate": ADL_DROP_RATE, "adl_drop_threshold": ADL_DROP_THRESHOLD},
    "bas": {},
}
#: the reference's own variants of Choe et al.'s architectures: (backbone, kind) -> (name, options)
_REFERENCE: Dict[Tuple[str, str], Tuple[str, Dict[str, Any]]] = {}
for _arch, _acol, _spg in (("vgg16_gap", "vgg16_acol", "vgg16_spg"),
                           ("resnet50_s1", "resnet50_acol", "resnet50_spg"),
                           ("inception_v3_gap", "inception_v3_acol", "inception_v3_spg")):
    _REFERENCE[(_arch, "acol")] = (_acol, {})
    _REFERENCE[(_arch, "spg")] = (_spg, {})
    _REFERENCE[(_arch, "adl")] = (_arch, {"adl": True})


def split_variant(name: str) -> Tuple[str, Optional[str]]:
    """``'efficientnet_lite0+acol'`` -> ``('efficientnet_lite0', 'acol')``; no suffix -> (name, None)."""
    base, sep, kind = name.rpartition("+")
    if not sep:
        return name, None
    if kind not in KINDS or not base:
        raise WsolError(f"backbone '{name}': the method suffix must be one of {', '.join('+' + k for k in KINDS)}")
    return base, kind


def method_of(name: str) -> str:
    """The method architecture a backbone name stands for: 'acol', 'spg', 'adl', 'bas' or 'cam'."""
    base, kind = split_variant(name)
    if kind:
        return kind
    for k in ("acol", "spg"):
        if name.endswith(f"_{k}"):
            return k
    return "cam"


def variant_for(backbone: str, kind: str, options: Optional[Dict[str, Any]] = None) -> Tuple[str, Dict[str, Any]]:
    """(backbone name, model options) that trains method architecture ``kind`` ('cam',
    'acol', 'spg', 'adl') for ``backbone``; ``options``: the method's hyperparameters as
    model options (``acol_drop_threshold``, ``adl_drop_rate``, ``adl_drop_threshold``).

    Choe et al.'s architectures map to the reference's variants (``vgg16_gap`` + acol ->
    ``vgg16_acol``; + adl -> ``vgg16_gap`` with ``adl=True``); other backbones to the
    generic ``NAME+kind``. A backbone that already is a method variant must match ``kind``.
    """
    opts = dict(options or {})
    if (backbone, kind) in _REFERENCE:
        name, extra = _REFERENCE[(backbone, kind)]
        return name, {**extra, **opts}
    have = method_of(backbone)
    if have == kind:
        return backbone, opts
    if have != "cam":
        article = {"bas": "a"}.get(have, "an")  # an ACoL/SPG/ADL (read as letters), a BAS (a word)
        raise WsolError(f"backbone '{backbone}' is {article} {have.upper()} architecture: train it with "
                        f"--wsol-method {have}, or give the plain backbone")
    if kind == "cam":
        return backbone, {}
    return f"{backbone}+{kind}", opts


# ----------------------------------------------------------------------------- building
def strip_head(base: Backbone) -> int:
    """Remove ``base``'s classifier (GAP + linear) and return its input width."""
    fc = base.classifier()
    width = int(fc.weight.shape[1])
    if isinstance(base, TimmBackbone):
        base.net.reset_classifier(0)
    elif isinstance(base, NetBackbone) and isinstance(getattr(base.net, base._head, None), nn.Linear):
        setattr(base.net, base._head, nn.Identity())
    else:
        raise WsolError(f"backbone '{base.name}': its classifier cannot be replaced by a method head")
    return width


class _Variant(Backbone):
    """Shares ``base.net`` (the method's new layers are added to it) and its feature pass."""

    kind = ""

    def __init__(self, base: Backbone, info: BackboneInfo):
        super().__init__(info, base.mean, base.std)
        self.net = base.net
        self._base_features = base.forward_features   # runs on self.net, the same module

    def classifier_weight(self) -> torch.Tensor:
        return self.classifier().weight.flatten(1)

    def _new(self, **modules: nn.Module) -> None:
        for name, m in modules.items():
            init_like_reference(m.modules(), "xavier")
            setattr(self.net, name, m)
        self.mark_new(*(f"net.{n}" for n in modules))


class AcolVariant(_Variant):
    """ACoL's two heads on any backbone's last feature map (module docstring)."""

    kind = "acol"

    def __init__(self, base: Backbone, info: BackboneInfo, num_classes: int,
                 acol_drop_threshold: float = ACOL_DROP_THRESHOLD):
        width = strip_head(base)
        super().__init__(base, info)
        self.drop_threshold = float(acol_drop_threshold)
        self.model_options = {"acol_drop_threshold": self.drop_threshold}
        self._new(classifier_A=acol_classifier(width, num_classes, inplace=False),
                  classifier_B=acol_classifier(width, num_classes, inplace=False))

    def forward_features(self, x):
        return self._base_features(x)

    def forward_logits(self, feats):
        return gap(self.net.classifier_A(feats))

    def classifier(self) -> nn.Module:
        return self.net.classifier_A[4]

    def acol_outputs(self, f: torch.Tensor, labels: Optional[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """logits (head A), logit_b (head B on the erased feature), feat_map_a, feat_map_b."""
        feat_map_a = self.net.classifier_A(f)
        logits = gap(feat_map_a)
        labels = logits.argmax(dim=1) if labels is None else labels
        erased = erase_attention(f, class_attention(feat_map_a, labels), self.drop_threshold)
        feat_map_b = self.net.classifier_B(erased)
        return {"logits": logits, "logit_b": gap(feat_map_b), "feat_map_a": feat_map_a, "feat_map_b": feat_map_b}

    def class_maps(self, feats, targets):
        out = self.acol_outputs(feats, targets)
        idx = torch.arange(feats.shape[0], device=feats.device)
        a = normalize_maps(out["feat_map_a"].detach()[idx, targets].unsqueeze(1))
        b = normalize_maps(out["feat_map_b"].detach()[idx, targets].unsqueeze(1))
        return torch.maximum(a, b)[:, 0]

    def forward_train(self, x, labels=None):
        return self.acol_outputs(self.forward_features(x), labels)

    def reset_classifier(self, num_classes: int) -> None:
        for seq in (self.net.classifier_A, self.net.classifier_B):
            new = nn.Conv2d(seq[4].in_channels, num_classes, kernel_size=1)
            init_like_reference([new], "xavier")
            seq[4] = new


def _conv_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), nn.ReLU(inplace=True))


class SpgVariant(_Variant):
    """SPG's stages and side branches on any backbone's last feature map (module docstring)."""

    kind = "spg"
    WIDTH = 512

    def __init__(self, base: Backbone, info: BackboneInfo, num_classes: int):
        width = strip_head(base)
        super().__init__(base, info)
        self.model_options = {}
        w = self.WIDTH
        b1, b2, shared, c = spg_side_branches(w, w, w, w, w)
        self._new(SPG_A_1=_conv_relu(width, w), SPG_A_2=_conv_relu(w, w), SPG_A_3=_conv_relu(w, w),
                  SPG_A_4=nn.Conv2d(w, num_classes, kernel_size=1), SPG_B_1a=b1, SPG_B_2a=b2, SPG_B_shared=shared,
                  SPG_C=c)

    def forward_features(self, x):
        n = self.net
        return n.SPG_A_3(n.SPG_A_2(n.SPG_A_1(self._base_features(x))))

    def forward_logits(self, feats):
        w = self.net.SPG_A_4
        return nn.functional.linear(gap(feats), w.weight.flatten(1), w.bias)

    def classifier(self) -> nn.Module:
        return self.net.SPG_A_4

    def forward_train(self, x, labels=None):
        n = self.net
        a1 = n.SPG_A_1(self._base_features(x))
        logits_b1 = n.SPG_B_shared(n.SPG_B_1a(a1))
        a2 = n.SPG_A_2(a1)
        logits_b2 = n.SPG_B_shared(n.SPG_B_2a(a2))
        a3 = n.SPG_A_3(a2)
        return spg_outputs(self, n.SPG_A_4(a3), labels, logits_b1, logits_b2, n.SPG_C(a3))

    def reset_classifier(self, num_classes: int) -> None:
        new = nn.Conv2d(self.net.SPG_A_4.in_channels, num_classes, kernel_size=1)
        init_like_reference([new], "xavier")
        self.net.SPG_A_4 = new


def _adl_stages(net: nn.Module) -> Tuple[nn.Sequential, ...]:
    """The last two stages (``nn.Sequential``) of the feature stack, where ADL layers go."""
    if isinstance(getattr(net, "blocks", None), nn.Sequential):          # timm EfficientNet/MobileNet
        stages = [m for m in net.blocks if isinstance(m, nn.Sequential)]
    elif isinstance(getattr(net, "layer4", None), nn.Sequential):        # torchvision ResNet
        stages = [net.layer3, net.layer4]
    elif isinstance(getattr(net, "stages", None), nn.Sequential):        # timm ResNet/ConvNeXt-style
        stages = [getattr(m, "blocks", m) for m in net.stages]
        stages = [m for m in stages if isinstance(m, nn.Sequential)]
    else:
        stages = []
    if len(stages) < 2:
        raise WsolError("no place for ADL layers in this backbone (it needs a stack of stages: timm blocks/stages "
                        "or torchvision layer1..4); ADL variants: vgg16_gap, resnet50_s1, inception_v3_gap with adl=true")
    return tuple(stages[-2:])


def add_adl(base: Backbone, info: BackboneInfo, adl_drop_rate: float = ADL_DROP_RATE,
            adl_drop_threshold: float = ADL_DROP_THRESHOLD) -> Backbone:
    """``base`` with an ADL layer appended to each of its last two stages (keys unchanged)."""
    for stage in _adl_stages(base.net):
        stage.append(ADL(adl_drop_rate, adl_drop_threshold))
    base.info = info
    base.model_options = {"adl_drop_rate": float(adl_drop_rate), "adl_drop_threshold": float(adl_drop_threshold)}
    return base
