"""CAM Back Again's PC1 map (Yasuki & Taki, CVPR 2024) as CAM method ``pc1``
(docs/protocol.md, "BAS's foreground map and PC1").

For each image, with features F [K, h, w]:

1. (``weighted``, the reference) each channel is multiplied by the target class's classifier
   weight ``W[t, k]``; after step 2 only the weight's sign matters (a negative weight turns
   the channel upside down); this needs a head that weights the feature maps (GAP + linear,
   ``cam_exact``). With ``weighted=false`` the features are used as they are (no class at
   all: any backbone);
2. each channel is min-max normalized to [0, 1] (a constant channel becomes 0);
3. the K channels are K samples of h*w values: the first principal component (the leading
   eigenvector of the h*w x h*w covariance of the channel-centred samples, float64) with
   scikit-learn's sign rule (>= 1.5: its largest-magnitude entry is positive), divided by
   its maximum;
4. the sign fix of the reference: binarize at the map's mean, keep the "frame" (every cell
   but ``[1:h-2, 1:w-2]``, the reference's indexing), and when its sum over ``(h - 1) * 4``
   exceeds 0.5 the map becomes ``1 - map`` (the object should not touch the border).

Batched on the model's device (float64; MPS has none, so there the eigenproblem runs on the
CPU). The targets are the protocol's (ground-truth labels); the reference uses the top-1
prediction: ``target=predicted``.
"""
from __future__ import annotations

import torch

from wsol.cams.base import CamMethod, check_targets, register_method
from wsol.errors import WsolError
from wsol.utils.rules import Rule

def minmax_channels(feats: torch.Tensor) -> torch.Tensor:
    """[B, K, n] -> each channel min-max normalized over n (constant channels -> 0)."""
    lo = feats.amin(dim=2, keepdim=True)
    span = feats.amax(dim=2, keepdim=True) - lo
    return torch.where(span > 0, (feats - lo) / torch.where(span > 0, span, torch.ones_like(span)),
                       torch.zeros_like(feats))


def first_component(samples: torch.Tensor) -> torch.Tensor:
    """[B, K, n] samples (rows) -> [B, n] first principal component, largest |entry| positive."""
    centred = samples - samples.mean(dim=1, keepdim=True)
    cov = centred.transpose(1, 2) @ centred
    _, vecs = torch.linalg.eigh(cov)              # ascending eigenvalues
    pc = vecs[..., -1]
    peak = pc.gather(1, pc.abs().argmax(dim=1, keepdim=True))
    return pc * torch.where(peak < 0, -1.0, 1.0).to(pc.dtype)


def frame_flip(pc1: torch.Tensor) -> torch.Tensor:
    """The reference's sign fix on [B, h, w] maps: ``1 - map`` where the frame of the
    above-mean mask covers more than half of ``(h - 1) * 4`` cells."""
    h, w = pc1.shape[-2:]
    above = (pc1 > pc1.mean(dim=(1, 2), keepdim=True)).to(pc1.dtype)
    above[:, 1:h - 2, 1:w - 2] = 0
    flip = above.sum(dim=(1, 2)) / ((h - 1) * 4) > 0.5
    return torch.where(flip[:, None, None], 1 - pc1, pc1)


def pc1_maps(feats: torch.Tensor) -> torch.Tensor:
    """PC1 maps [B, h, w] (float64) of (already weighted) features [B, K, h, w]."""
    b, k, h, w = feats.shape
    dev = feats.device
    work = feats.detach().to("cpu" if dev.type == "mps" else dev, torch.float64)
    pc = first_component(minmax_channels(work.reshape(b, k, h * w)))
    pc = pc / pc.amax(dim=1, keepdim=True)
    return frame_flip(pc.reshape(b, h, w)).to(dev)


@register_method
class PC1(CamMethod):
    name = "pc1"
    option_rules = {"weighted": Rule("bool"), "target": Rule("str", choices=("label", "predicted"))}
    description = ("CAM Back Again (Yasuki & Taki 2024): first principal component of the (class-weight signed) "
                   "feature maps, any CNN backbone")

    def __init__(self, weighted=True, target: str = "label", **options):
        super().__init__(weighted=weighted, target=target, **options)
        self.weighted, self.target = self.options["weighted"], self.options["target"]

    def __call__(self, backbone, images, feats, logits, targets):
        if feats.dim() != 4:
            raise WsolError(f"pc1 needs feature maps [B, K, h, w]; '{backbone.name}' gives {tuple(feats.shape)}")
        if self.target == "predicted":
            targets = logits.argmax(dim=1)
        if self.weighted:
            w = backbone.classifier_weight()
            if not backbone.info.cam_exact or w.shape[1] != feats.shape[1]:
                raise WsolError(f"pc1: the classifier of '{backbone.name}' does not weight its {feats.shape[1]} "
                                "feature channels; use --method-option weighted=false")
            check_targets(targets, w.shape[0])
            feats = feats.detach() * w.detach()[targets].to(feats.dtype)[:, :, None, None]
        return pc1_maps(feats).float()
