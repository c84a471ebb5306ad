"""Score-CAM (Wang et al., CVPR-W 2020): gradient-free, one masked forward pass per channel.

For image b and channel k: upsample ``A_bk`` to the input size (bilinear,
``align_corners=False``, as the authors' code), min-max normalize it to ``M_bk`` in [0, 1],
and run the model on ``images[b] * M_bk`` (the *normalized* input: masked-out pixels become
the dataset mean). The weight ``w_bk`` is the softmax probability (over classes) of the
target class on that masked input; the map is ``ReLU(sum_k w_bk A_bk)`` at feature
resolution. A constant channel has no normalized mask and gets weight 0 (the authors' code
skips it), and its forward pass is not run. There is no baseline subtraction (as the
authors' code). This differs from pytorch-grad-cam, which applies the softmax across
channels to the target logits instead of across classes.

Cost: one forward pass per non-constant channel and image (2048 per image on ResNet50). The
masked passes of all images run together, ``method_batch`` inputs at a time
(``create_method("scorecam", method_batch=64)``), under ``torch.no_grad()`` and with the
backbone in eval mode (its mode is restored afterwards).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from wsol.cams.base import CamMethod, check_targets, register_method
from wsol.utils.rules import Rule


@register_method
class ScoreCAM(CamMethod):
    name = "scorecam"
    option_rules = {"method_batch": Rule("int", 1, 65536)}
    description = ("Score-CAM (Wang 2020): each upsampled, min-max normalized map masks the input; "
                   "the target's softmax score on it is the map's weight")
    needs_grad = False

    def __init__(self, method_batch: int = 64, **options):
        super().__init__(method_batch=method_batch, **options)
        self.method_batch = self.options["method_batch"]

    @torch.no_grad()
    def channel_weights(self, backbone, images: torch.Tensor, acts: torch.Tensor,
                        targets: torch.Tensor) -> torch.Tensor:
        """Softmax score of each image's target on each masked input -> [B, K]."""
        B, K = acts.shape[:2]
        size = images.shape[-2:]
        weights = torch.zeros(B, K, device=acts.device, dtype=torch.float32)
        flat = acts.flatten(2)
        live = (flat.amax(dim=2) > flat.amin(dim=2)).nonzero()  # [n, 2] (b, k), constant maps skipped
        t = targets.to(device=acts.device, dtype=torch.long)
        was_training = backbone.training
        backbone.eval()
        try:
            for start in range(0, live.shape[0], self.method_batch):
                bi, ki = live[start:start + self.method_batch].unbind(1)
                up = F.interpolate(acts[bi, ki].unsqueeze(1).float(), size=size, mode="bilinear",
                                   align_corners=False)
                lo = up.amin(dim=(2, 3), keepdim=True)
                hi = up.amax(dim=(2, 3), keepdim=True)
                masks = (up - lo) / (hi - lo).clamp_min(torch.finfo(up.dtype).tiny)
                masked = images[bi.to(images.device)] * masks.to(images.device, images.dtype)
                _, out = backbone(masked)
                prob = torch.softmax(out.float(), dim=1)
                weights[bi, ki] = prob.gather(1, t[bi].view(-1, 1).to(prob.device)).squeeze(1).to(weights.device)
        finally:
            backbone.train(was_training)
        return weights

    def __call__(self, backbone, images, feats, logits, targets):
        check_targets(targets, logits.shape[1])
        acts = feats.detach()
        w = self.channel_weights(backbone, images, acts, targets)
        return F.relu(torch.einsum("bk,bkhw->bhw", w.to(acts.dtype), acts))
