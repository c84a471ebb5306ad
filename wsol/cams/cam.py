"""Class activation map (Zhou et al. 2016), the protocol's default (docs/protocol.md, Class activation map).

Backbones whose inference defines their own class maps (``Backbone.class_maps``: ACoL's fused
map of its two heads) give those; the others ``sum_k W[c,k] F[k]``.
"""
from __future__ import annotations

import torch

from wsol.cams.base import CamMethod, check_targets, register_method
from wsol.errors import WsolError


def class_activation_maps(feats: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``cam[b,h,w] = sum_k W[t_b,k] F[b,k,h,w]`` (no ReLU, no bias), batched -> [B, h, w]."""
    return torch.einsum("bk,bkhw->bhw", weight[targets].to(feats.dtype), feats)


@register_method
class CAM(CamMethod):
    name = "cam"
    description = "Class activation map: feature maps weighted by the class's classifier row (default)"

    def __call__(self, backbone, images, feats, logits, targets):
        check_targets(targets, backbone.num_classes)
        own = backbone.class_maps(feats.detach(), targets)
        if own is not None:  # the model defines its class maps (ACoL's fused map)
            return own.detach()
        if not backbone.info.cam_exact:
            raise WsolError(f"cam is not exact for backbone '{backbone.name}' "
                            f"({backbone.info.note or 'head is not GAP + linear'}); use --method gradcam")
        w = backbone.classifier_weight()
        check_targets(targets, w.shape[0])
        return class_activation_maps(feats.detach(), w.detach(), targets)
