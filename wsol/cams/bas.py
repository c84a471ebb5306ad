"""BAS's foreground map (Wu et al., CVPR 2022) as CAM method ``bas`` (docs/protocol.md,
"BAS's foreground map and PC1").

The map is the BAS head's own output: ``classifier_loc``'s sigmoid maps averaged over a set
of classes, ``M_fg`` [B, 28, 28] at 224 input. With ``topk = 1`` the class is the target
(the ground-truth label under the protocol: BAS's ILSVRC setting); with ``topk = k > 1`` the
``k`` highest-scoring classes of the image, whatever its label (the CUB setting: the map is
then class-agnostic). The default ``topk`` is the reference's for the head: 1 on a
1000-class head; on a 200-class (CUB) head 200 for ResNet50/InceptionV3, 80 for
VGG16/MobileNetV1; on a generic variant ``NAME+bas`` 1. Only BAS backbones (``bas_*``,
``NAME+bas``) have the head; the map is computed on the model's device, batched, from the
features of the same forward pass.
"""
from __future__ import annotations

from typing import Optional, Union

from wsol.cams.base import CamMethod, check_targets, register_method
from wsol.errors import WsolError


def _topk(value: Union[None, str, int]) -> Optional[int]:
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return None
    try:
        k = int(value)
    except (TypeError, ValueError):
        k = 0
    if isinstance(value, bool) or k < 1 or str(k) != str(value).strip():
        raise WsolError(f"bas: topk must be 'auto' or an integer >= 1 (classes averaged), got {value!r}")
    return k


@register_method
class BasForeground(CamMethod):
    name = "bas"
    description = ("BAS (Wu et al. 2022): the foreground head's sigmoid map, mean over the target (topk 1) "
                   "or the top-k predicted classes (bas_* and NAME+bas backbones)")
    example_backbone = "bas_mobilenet_v1"

    def __init__(self, topk: Union[None, str, int] = None, **options):
        super().__init__(topk=topk, **options)
        self.topk = _topk(topk)

    @classmethod
    def architecture_for(cls, backbone: str) -> str:
        """A BAS net for a plain CNN (``resnet50`` -> ``bas_resnet50``, another CNN ->
        ``NAME+bas``); a ViT or an unknown name stays as it is (and is refused)."""
        from wsol.models.families import bas_architecture

        try:
            return bas_architecture(backbone)
        except WsolError:
            return backbone

    def __call__(self, backbone, images, feats, logits, targets):
        foreground = getattr(backbone, "foreground", None)
        if foreground is None:
            raise WsolError(f"method bas needs a BAS backbone (bas_resnet50, bas_vgg16, bas_inception_v3, "
                            f"bas_mobilenet_v1, or a CNN's NAME+bas); '{backbone.name}' has no foreground head")
        check_targets(targets, backbone.num_classes)
        if self.topk is not None and self.topk > backbone.num_classes:
            raise WsolError(f"bas: topk {self.topk} > the head's {backbone.num_classes} classes")
        return foreground(feats.detach(), logits.detach(), targets, self.topk).detach()
