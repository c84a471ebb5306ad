"""Token-attention maps of ViT backbones (docs/protocol.md, "Token-attention maps"), batched
on the model's device. Each reads the record of the forward pass that made the features
(``wsol.models.vit_tokens``): the head-mean softmax attention ``A_l`` [B, N, N] of every
block l, captured without changing the logits.

- ``cls_attention``: the last block's class-token row, patch columns: ``A_L[0, patches]``.
- ``rollout`` (Abnar & Zuidema 2020): ``R = Â_L ... Â_1`` with ``Â_l = (A_l + I)`` divided
  by its row sums; the class-token row of R, patch columns.
- ``tscam`` (Gao et al. 2021): ``(sum_l A_l[0, patches]) * S_c``, S_c the model's semantic
  map of the class (TS-CAM models: the conv head's output; plain ViTs: the class's head row
  on each final patch token). No ReLU, no normalization: values can be negative.
- ``scm`` (Bai et al. 2022, test time): the same attention sum min-max normalized per image
  over the patches, ``(a - min) / max(a - min)``, times S_c.
- ``sat`` (Wu et al. 2023): SAT models only: the mean over the last three blocks of
  ``sigmoid(head-mean pre-softmax attention row of the spatial token)``, patch columns.
  Class-agnostic (the target does not enter it).

The first batch of a backbone that did not record attention runs its features once more
with capture on; capture then stays on for the next batches.
"""
from __future__ import annotations

import torch

from wsol.cams.base import CamMethod, check_targets, register_method
from wsol.errors import WsolError


def token_record(method: str, backbone, images: torch.Tensor, feats: torch.Tensor):
    """The attention record of ``feats``' pass; a one-line error for non-token backbones."""
    if not hasattr(backbone, "attention_record"):
        raise WsolError(f"method '{method}' needs a ViT backbone (attention between tokens); "
                        f"'{backbone.name}' has none (e.g. --backbone deit_small_patch16_224)")
    if not getattr(backbone, "class_token", False):
        raise WsolError(f"method '{method}' reads the class token's attention; '{backbone.name}' has no class token")
    return backbone.attention_record(images, feats.detach())


def patch_row(attn: torch.Tensor, rec) -> torch.Tensor:
    """The class token's row of [B, N, N] on the patch columns -> [B, h, w]."""
    return attn[:, 0, rec.patches].reshape(-1, *rec.grid)


def attention_sum(rec) -> torch.Tensor:
    """``sum_l A_l[0, patches]`` -> [B, h, w] (TS-CAM's and SCM's attention map)."""
    return patch_row(torch.stack(rec.attention).sum(dim=0), rec)


def rollout(attention) -> torch.Tensor:
    """Attention rollout of a list of [B, N, N] head-mean attentions -> [B, N, N]."""
    eye = torch.eye(attention[0].shape[-1], device=attention[0].device, dtype=attention[0].dtype)
    out = None
    for a in attention:
        a_hat = a + eye
        a_hat = a_hat / a_hat.sum(dim=-1, keepdim=True)
        out = a_hat if out is None else a_hat @ out
    return out


def minmax_patches(m: torch.Tensor) -> torch.Tensor:
    """Per image ``(m - min) / max(m - min)`` over its cells (SCM's ``norm_cam``, no epsilon)."""
    flat = m.flatten(1)
    flat = flat - flat.min(dim=1, keepdim=True).values
    return (flat / flat.max(dim=1, keepdim=True).values).reshape(m.shape)


def semantic_map(backbone, rec, targets: torch.Tensor) -> torch.Tensor:
    """The model's class map S_c of each target on the record's grid [B, h, w]."""
    check_targets(targets, backbone.num_classes)
    return backbone.class_maps(rec.feats, targets).float()


class TokenAttentionMethod(CamMethod):
    needs_grad = False
    example_backbone = "deit_tiny_patch16_224"

    def map(self, backbone, rec, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def __call__(self, backbone, images, feats, logits, targets):
        rec = token_record(self.name, backbone, images, feats)
        return self.map(backbone, rec, targets)


@register_method
class ClsAttention(TokenAttentionMethod):
    name = "cls_attention"
    description = "ViT: the last block's class-token attention to the patches, mean over heads (class-agnostic)"

    def map(self, backbone, rec, targets):
        return patch_row(rec.attention[-1], rec)


@register_method
class Rollout(TokenAttentionMethod):
    name = "rollout"
    description = ("ViT: attention rollout (Abnar & Zuidema 2020): head-mean attention + identity, row-normalized, "
                   "multiplied over blocks; class-token row (class-agnostic)")

    def map(self, backbone, rec, targets):
        return patch_row(rollout(rec.attention), rec)


@register_method
class TsCam(TokenAttentionMethod):
    name = "tscam"
    description = "TS-CAM (Gao 2021): class-token attention summed over blocks x the class's semantic map"

    def map(self, backbone, rec, targets):
        return attention_sum(rec) * semantic_map(backbone, rec, targets)


@register_method
class Scm(TokenAttentionMethod):
    name = "scm"
    description = "SCM (Bai 2022) at test time: min-max normalized TS-CAM attention x the class's semantic map"

    def map(self, backbone, rec, targets):
        return minmax_patches(attention_sum(rec)) * semantic_map(backbone, rec, targets)


@register_method
class Sat(TokenAttentionMethod):
    name = "sat"
    example_backbone = "deit_sat_tiny_patch16_224"
    description = "SAT (Wu 2023): the spatial token's attention masks of the last three blocks, averaged (class-agnostic)"

    @classmethod
    def architecture_for(cls, backbone: str) -> str:
        """SAT's model of the same DeiT (``deit_tiny_patch16_224`` -> ``deit_sat_tiny_patch16_224``);
        any other name stays as it is (and is refused)."""
        from wsol.models.families import family_architecture

        try:
            return family_architecture(backbone, "sat")
        except WsolError:
            return backbone

    def map(self, backbone, rec, targets):
        if not hasattr(backbone, "sat_map"):
            raise WsolError(f"method 'sat' needs a SAT model (--backbone deit_sat_small_patch16_224); "
                            f"'{backbone.name}' has no spatial token")
        return backbone.sat_map(rec)
