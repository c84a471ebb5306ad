"""timm Vision Transformers as CAM backbones (DeiT, ViT, distilled and register-token
variants; ``docs/training.md``, "Token backbones (ViT)").

Features: the patch tokens of the **last block**, as that block reads them (its ``norm1``
output), on the patch grid [B, D, h, w]; the prefix tokens (class, distillation, register
tokens: ``num_prefix_tokens`` of the model) are dropped from the grid. The head is what the
model uses: the last block on all tokens (the prefix tokens of the same pass are kept in the
pass's record), the final ``norm``, the model's own pooling (class token, or mean of the
patch tokens) and its linear head(s). So ``forward_logits(features)`` gives the model's
logits exactly, and the gradient family differentiates the target logit with respect to the
last block's patch tokens through the last attention (as pytorch-grad-cam's ViT recipe,
target layer ``blocks[-1].norm1``).

Plain ``cam`` on a ViT (``class_maps``): the class's head row applied to each final patch
token (after ``fc_norm`` where the model has one; distilled models average their two heads).
It is exact (``mean_hw(cam) + b == logit``) only when the model pools the patch tokens by
their mean with no norm after the pooling; with a class-token head it is not, and ``wsol
models`` says so.
"""
from __future__ import annotations

import logging
from typing import Optional, Tuple

import torch
from torch import nn

from wsol.errors import WsolError
from wsol.models.backbone import Backbone, BackboneInfo
from wsol.models.vit_tokens import TokenBackboneMixin, TokenRecord, capture_attention, grid_to_tokens, tokens_to_grid

log = logging.getLogger(__name__)

INPUT_SIZE = 224
VIT_METHODS_NOTE = "attention methods: cls_attention, rollout, tscam, scm"


def is_timm_vit(net: nn.Module) -> bool:
    """A timm ``VisionTransformer`` (or subclass, e.g. distilled) with standard blocks."""
    from timm.models.vision_transformer import Attention, Block, VisionTransformer

    return (isinstance(net, VisionTransformer) and len(net.blocks) > 0
            and all(type(b) is Block and type(b.attn) is Attention for b in net.blocks))


def vit_cam_exact(net: nn.Module) -> bool:
    """Is the head GAP over patch tokens + linear (so the per-token head map averages to the logit)?"""
    return (getattr(net, "global_pool", "") == "avg" and isinstance(net.fc_norm, nn.Identity)
            and getattr(net, "attn_pool", None) is None and getattr(net, "head_dist", None) is None
            and isinstance(net.head, nn.Linear))


def vit_info(name: str, net: nn.Module) -> BackboneInfo:
    """The truthful listing of a built timm ViT: which CAM methods are exact on it."""
    if vit_cam_exact(net):
        pool = "avg"
    elif net.global_pool == "token":
        pool = "token"
    else:
        pool = f"{net.global_pool} pool + fc_norm" if not isinstance(net.fc_norm, nn.Identity) else f"{net.global_pool} pool"
    info = listed_info(name, pool, len(net.blocks))
    info.stride = int(net.patch_embed.patch_size[0])
    return info


class ViTBackbone(TokenBackboneMixin, Backbone):
    """A timm ViT split at its last block (module docstring). ``net`` stays whole (timm keys)."""

    def __init__(self, net: nn.Module, info: BackboneInfo):
        cfg = getattr(net, "pretrained_cfg", None) or {}
        super().__init__(info, cfg.get("mean", (0.485, 0.456, 0.406)), cfg.get("std", (0.229, 0.224, 0.225)))
        if not is_timm_vit(net):
            raise WsolError(f"{info.name}: not a timm VisionTransformer with standard blocks")
        self.net = net
        self.prefix = int(net.num_prefix_tokens)
        self.class_token = getattr(net, "cls_token", None) is not None

    # ------------------------------------------------------------ forward
    def _grid(self, x: torch.Tensor) -> Tuple[int, int]:
        ph, pw = self.net.patch_embed.patch_size
        return x.shape[-2] // ph, x.shape[-1] // pw

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        t = net.patch_embed(x)
        t = net._pos_embed(t)
        t = net.patch_drop(t)
        return net.norm_pre(t)

    def _last_block(self, tokens_in: torch.Tensor, normed: torch.Tensor) -> torch.Tensor:
        """The last block (its attention reads ``normed``) then the final norm -> [B, N, D]."""
        blk = self.net.blocks[-1]
        y = tokens_in + blk.drop_path1(blk.ls1(blk.attn(normed)))
        y = y + blk.drop_path2(blk.ls2(blk.mlp(blk.norm2(y))))
        return self.net.norm(y)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        grid = self._grid(x)
        with capture_attention(self.net.blocks, self.record_attention) as attn:
            t = self._embed(x)
            for blk in self.net.blocks[:-1]:
                t = blk(t)
            normed = self.net.blocks[-1].norm1(t)
            final = self._last_block(t, normed)
        feats = tokens_to_grid(normed[:, self.prefix:], grid)
        self._record = TokenRecord(feats, slice(self.prefix, None), grid, final, list(attn) or None,
                                   {"tokens_in": t, "prefix_normed": normed[:, :self.prefix]})
        return feats

    def forward_logits(self, feats: torch.Tensor) -> torch.Tensor:
        rec = self.record_for(feats)
        if rec is None:
            raise WsolError(f"{self.name}: the ViT head needs the prefix tokens of the forward pass that made these "
                            f"features (call forward_features first)")
        if feats is rec.feats or not feats.requires_grad:
            final = rec.final
        else:  # a leaf copy (gradient methods): re-run the last block on it
            normed = torch.cat([rec.extra["prefix_normed"], grid_to_tokens(feats)], dim=1)
            final = self._last_block(rec.extra["tokens_in"], normed)
        return self.net.forward_head(final)

    # ------------------------------------------------------------ head
    def classifier(self) -> nn.Linear:
        return self.net.head

    def reset_classifier(self, num_classes: int) -> None:
        self.net.reset_classifier(num_classes)

    def class_maps(self, feats: torch.Tensor, targets: torch.Tensor) -> Optional[torch.Tensor]:
        """The class's head row on each final patch token [B, h, w] (bias left out)."""
        rec = self.record_for(feats)
        if rec is None:
            raise WsolError(f"{self.name}: cam needs the forward pass that made these features")
        return token_class_scores(self.net, rec.final[:, rec.patches], targets).reshape(-1, *rec.grid)


def token_class_scores(net: nn.Module, tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``W[t_b] . fc_norm(token)`` for every token of image b -> [B, n] (the mean of both
    heads for distilled models)."""
    z = net.fc_norm(tokens)
    t = targets.to(device=tokens.device, dtype=torch.long)
    w = net.head.weight[t]
    head_dist = getattr(net, "head_dist", None)
    if isinstance(head_dist, nn.Linear):
        w = (w + head_dist.weight[t]) / 2
    return torch.einsum("bnd,bd->bn", z, w.to(z.dtype))


# ---------------------------------------------------------------- registration
#: timm ViTs registered by name (``wsol models vit``) -> how their head pools the tokens; any
#: other timm ViT name works too (its listing is computed when it is built)
VIT_NAMES = {
    "deit_tiny_patch16_224": "token", "deit_small_patch16_224": "token", "deit_base_patch16_224": "token",
    "deit_tiny_distilled_patch16_224": "token", "deit_small_distilled_patch16_224": "token",
    "deit_base_distilled_patch16_224": "token",
    "vit_tiny_patch16_224": "token", "vit_small_patch16_224": "token", "vit_base_patch16_224": "token",
    "vit_large_patch16_224": "token", "vit_base_patch16_gap_224": "avg",
    "vit_base_patch16_reg4_gap_256": "avg pool + fc_norm", "vit_medium_patch16_reg4_gap_256": "avg pool + fc_norm",
}


def listed_info(name: str, pool: str, depth: int = 12) -> BackboneInfo:
    """The listing of a registered ViT before it is built (equal to :func:`vit_info` of the
    built model; tests/unit/models/test_vit.py checks it)."""
    exact = pool == "avg"
    methods = VIT_METHODS_NOTE if pool == "token" else "no class token: attention methods do not apply"
    if exact:
        note = f"cam exact (GAP over patch tokens + linear); gradient family exact through the last block; {methods}"
    else:
        note = (f"cam approximate: head row on each final patch token (the head reads the "
                f"{'class token' if pool == 'token' else pool}); gradient family exact through the last block; "
                f"{methods}")
    return BackboneInfo(name, "timm", f"blocks.{depth - 1}.norm1 (patch tokens)", 16, exact, note)


def build_timm_vit(name: str, pretrained: bool, num_classes: int) -> ViTBackbone:
    """``timm.create_model(name)`` at a 224x224 input (timm resamples the position
    embeddings of models trained at another size) wrapped as a :class:`ViTBackbone`."""
    import timm

    kwargs = {}
    cfg = timm.models.get_pretrained_cfg(name)
    size = tuple((cfg.input_size if cfg is not None else (3, INPUT_SIZE, INPUT_SIZE))[-2:])
    if size != (INPUT_SIZE, INPUT_SIZE):
        kwargs["img_size"] = INPUT_SIZE
    net = timm.create_model(name, pretrained=pretrained, num_classes=num_classes, **kwargs)
    return ViTBackbone(net, vit_info(name, net))


def _register() -> None:
    from wsol.models.registry import register_backbone, timm_weights_cached

    for name, pool in VIT_NAMES.items():
        depth = 24 if "large" in name else 12
        register_backbone(listed_info(name, pool, depth),
                          lambda pretrained, n, name=name: build_timm_vit(name, pretrained, n),
                          weights_offline=lambda name=name: timm_weights_cached(name))


_register()
