"""The gradient family: Grad-CAM, Grad-CAM++, XGrad-CAM, LayerCAM, HiResCAM.

All take ``g = d y_c / d A``, the gradient of each image's target logit ``y_c`` (pre-softmax)
with respect to the feature maps ``A = feats`` [B, K, h, w]. The trunk runs without
autograd (the engine's forward is under ``torch.no_grad()``); the method then re-runs only
the head, ``backbone.forward_logits``, on a leaf copy of the features that requires grad,
and one call ``torch.autograd.grad(sum_b y_{b, t_b}, A, retain_graph=False)`` gives every
image's gradient at once (images do not interact in an eval-mode net). No hooks, no
``.backward()``, no parameter needs or gets a ``.grad``; the only graph ever built is the
head's, so memory stays that of the forward pass. Everything stays batched on the feats'
device, in float32 (or float64 when the feats are).

Every map is ``ReLU(...)`` of its combination (option ``relu=False`` keeps the sign), as in
the papers' definitions and pytorch-grad-cam; note that the protocol's plain ``cam`` has no
ReLU. With a GAP + linear head, ``g_k = W[c, k] / (h w)`` everywhere, so Grad-CAM, XGrad-CAM
and HiResCAM all equal ReLU(CAM) / (h w).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from wsol.cams.base import CamMethod, check_targets, register_method
from wsol.errors import WsolError


def target_gradients(feats: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor,
                     method: str = "gradient method") -> torch.Tensor:
    """``d logits[b, targets[b]] / d feats[b]`` for every b at once -> [B, K, h, w].

    ``logits`` must have been computed from ``feats`` with autograd on. Frees the graph
    (``retain_graph=False``); raises a one-line WsolError when there is no graph.
    """
    check_targets(targets, logits.shape[1])
    if not feats.requires_grad or not logits.requires_grad:
        raise WsolError(f"{method} needs gradients: `logits` must be computed from `feats` with autograd on "
                        f"(see head_gradients)")
    t = targets.to(device=logits.device, dtype=torch.long).view(-1, 1)
    score = logits.gather(1, t).sum()
    (grads,) = torch.autograd.grad(score, feats, retain_graph=False)
    return grads


def head_gradients(backbone, feats: torch.Tensor, targets: torch.Tensor,
                   method: str = "gradient method") -> torch.Tensor:
    """Target-logit gradients w.r.t. ``feats`` through the head only -> [B, K, h, w].

    ``feats`` may come from a no-grad forward pass: the head (``backbone.forward_logits``)
    is re-run under ``torch.enable_grad()`` on ``feats.detach().requires_grad_()``, a leaf,
    so no graph of the trunk is ever built and the parameters need not require grad. The
    head's output equals the forward pass's logits (same function, same input).
    """
    with torch.enable_grad():
        leaf = feats.detach().requires_grad_(True)
        logits = backbone.forward_logits(leaf)
        return target_gradients(leaf, logits, targets, method)


class GradientCamMethod(CamMethod):
    """Base of the gradient family: ``combine(A, g) -> [B, h, w]``, then ReLU."""

    needs_grad = True

    def __init__(self, relu: bool = True, **options):
        super().__init__(relu=relu, **options)
        self.relu = bool(relu)

    def combine(self, acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, backbone, images, feats, logits, targets):
        check_targets(targets, logits.shape[1])
        grads = head_gradients(backbone, feats, targets, self.name)
        with torch.no_grad():  # float32 at least: g^3 (Grad-CAM++) underflows in half precision
            dtype = torch.promote_types(feats.dtype, torch.float32)
            out = self.combine(feats.detach().to(dtype), grads.to(dtype))
            return F.relu(out) if self.relu else out


def _weighted_sum(weights: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
    """sum_k w[b, k] A[b, k] -> [B, h, w]."""
    return torch.einsum("bk,bkhw->bhw", weights, acts)


@register_method
class GradCAM(GradientCamMethod):
    """Selvaraju et al. 2017: ``w_k = mean_ij g_kij``; ``ReLU(sum_k w_k A_k)``."""

    name = "gradcam"
    description = "Grad-CAM (Selvaraju 2017): maps weighted by the spatial mean of the target logit's gradient, ReLU"

    def combine(self, acts, grads):
        return _weighted_sum(grads.mean(dim=(2, 3)), acts)


@register_method
class GradCAMPlusPlus(GradientCamMethod):
    """Chattopadhay et al. 2018, in the closed form pytorch-grad-cam uses.

    With ``S = exp(y_c)`` and a net piecewise linear in ``A``, the paper's second and third
    derivatives of S are ``S g^2`` and ``S g^3``; S cancels in
    ``alpha_kij = g_kij^2 / (2 g_kij^2 + sum_ab A_kab * g_kij^3)`` (eps = 1e-6 added to the
    denominator; alpha = 0 where g = 0). ``w_k = sum_ij alpha_kij ReLU(g_kij)`` (the common
    factor S of ``dS/dA`` is dropped: one positive scale per image). ``ReLU(sum_k w_k A_k)``.
    """

    name = "gradcampp"
    description = "Grad-CAM++ (Chattopadhay 2018): alpha-weighted positive gradients, exp-score closed form (as pytorch-grad-cam)"
    eps = 1e-6

    def combine(self, acts, grads):
        g2 = grads * grads
        g3 = g2 * grads
        sum_a = acts.sum(dim=(2, 3), keepdim=True)
        alpha = g2 / (2 * g2 + sum_a * g3 + self.eps)
        alpha = torch.where(grads != 0, alpha, torch.zeros_like(alpha))
        weights = (alpha * F.relu(grads)).sum(dim=(2, 3))
        return _weighted_sum(weights, acts)


@register_method
class XGradCAM(GradientCamMethod):
    """Fu et al. 2020: ``w_k = sum_ij (A_kij / (sum_ab A_kab + eps)) g_kij`` (eps = 1e-7)."""

    name = "xgradcam"
    description = "XGrad-CAM (Fu 2020): gradients averaged with the activation-normalized maps as weights, ReLU"
    eps = 1e-7

    def combine(self, acts, grads):
        sum_a = acts.sum(dim=(2, 3), keepdim=True)
        weights = (grads * acts / (sum_a + self.eps)).sum(dim=(2, 3))
        return _weighted_sum(weights, acts)


@register_method
class LayerCAM(GradientCamMethod):
    """Jiang et al. 2021: ``ReLU(sum_k ReLU(g_k) * A_k)`` (elementwise)."""

    name = "layercam"
    description = "LayerCAM (Jiang 2021): positive gradients times activations, elementwise, summed over channels, ReLU"

    def combine(self, acts, grads):
        return (F.relu(grads) * acts).sum(dim=1)


@register_method
class HiResCAM(GradientCamMethod):
    """Draelos & Carin 2020: ``sum_k g_k * A_k`` (elementwise), then ReLU like the others
    (the paper's map is the sum itself; ``relu=False`` returns it)."""

    name = "hirescam"
    description = "HiResCAM (Draelos 2020): gradient times activation elementwise, summed over channels, ReLU"

    def combine(self, acts, grads):
        return (grads * acts).sum(dim=1)
