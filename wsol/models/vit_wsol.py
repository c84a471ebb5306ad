"""The DeiT-based WSOL architectures whose released checkpoints wsol loads as they are
(``docs/training.md``, "Token backbones (ViT)"):

- ``deit_tscam_{tiny,small,base}_patch16_224``: TS-CAM (Gao et al., ICCV 2021).
- ``deit_scm_{tiny,small,base}_patch16_224``: SCM (Bai et al., ECCV 2022), test-time path.
- ``deit_sat_{tiny,small,base}_patch16_224``: SAT (Wu et al., ICCV 2023).

All three are a timm DeiT (patch 16, depth 12, qkv bias, LayerNorm eps 1e-6; kept whole
under ``self.net`` so the reference keys load unchanged, ``module.`` stripped by the
loader) whose ``head`` is ``Conv2d(dim, C, 3, padding=1)`` on the 14x14 grid of final
(post-``norm``) patch tokens, the logits its global average. Features: that grid
[B, D, 14, 14]. ``class_maps``: the head's output for the class (the "semantic map", bias
included, so its mean is the logit: plain CAM is exact). The attention of every block is
recorded in every pass (their maps are made of it); the maps themselves are CAM methods
(``tscam``, ``scm``, ``sat`` in ``wsol.cams.attention``).

Training outputs (``forward_train(x, labels)``, in whatever mode the module is in):

- TS-CAM, SCM: ``{"logits"}`` (TS-CAM's reference trains with cross-entropy on them alone;
  SCM's training-only modules are held for strict loading but not run).
- SAT: ``{"logits", "mask", "mask_mean", "mask_smooth"}``: ``mask`` [B, 1, 14, 14] is the mean
  over the last three blocks of the spatial token's masks on the patch columns;
  ``mask_mean`` [B] its mean (the reference's ``ba_loss``); ``mask_smooth`` [B] the mean of
  ``(1 - g) * g`` with ``g`` = ``mask`` convolved with the fixed 3x3 Gaussian ``weight``
  (``norm_loss``). The reference loss is ``CE(logits) + mean(|mask_mean - area_thr|) +
  mean(mask_smooth)`` (train.py: ``area_thr`` 0.25 on CUB, 0.35 on ImageNet).
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from wsol.models.backbone import Backbone, BackboneInfo
from wsol.models.vit_tokens import TokenBackboneMixin, TokenRecord, capture_attention, tokens_to_grid

#: family -> base DeiT size -> timm name of the trunk
SIZES = {"tiny": "deit_tiny_patch16_224", "small": "deit_small_patch16_224", "base": "deit_base_patch16_224"}
SAT_MASKED_FROM = 9      # SAT: blocks with index >= 9 multiply their attention by the mask
SAT_MAP_LAST = 3         # SAT: the test map averages the last three blocks' masks
SCM_ENCODERS = 4         # SCM: training-only encoders whose scalars the checkpoints hold


def _deit_trunk(size: str, pretrained: bool, num_classes: int, drop_path_rate: float = 0.0) -> nn.Module:
    """timm DeiT of ``size`` (ImageNet weights when ``pretrained``) with the conv head;
    ``drop_path_rate``: stochastic depth of the last block in training (linear from 0)."""
    import timm

    net = timm.create_model(SIZES[size], pretrained=pretrained, drop_path_rate=drop_path_rate)
    net.head = nn.Conv2d(net.embed_dim, num_classes, kernel_size=3, stride=1, padding=1)
    _init_head(net.head)
    return net


def _init_head(head: nn.Conv2d) -> None:
    nn.init.kaiming_normal_(head.weight, mode="fan_out", nonlinearity="relu")
    nn.init.zeros_(head.bias)


class ConvHeadViT(TokenBackboneMixin, Backbone):
    """DeiT + 3x3 conv head + GAP (TS-CAM's layout; SCM and SAT build on it)."""

    family = "tscam"
    n_suffix = 0  # tokens after the patches (SAT's spatial token)

    def __init__(self, net: nn.Module, info: BackboneInfo):
        cfg = getattr(net, "pretrained_cfg", None) or {}
        super().__init__(info, cfg.get("mean", (0.485, 0.456, 0.406)), cfg.get("std", (0.229, 0.224, 0.225)))
        self.net = net
        self.record_attention = True
        self.class_token = True

    def _grid(self, x: torch.Tensor):
        ph, pw = self.net.patch_embed.patch_size
        return x.shape[-2] // ph, x.shape[-1] // pw

    def _tokens(self, x: torch.Tensor) -> TokenRecord:
        """Run the trunk; the record of the pass (final tokens, attention)."""
        net = self.net
        grid = self._grid(x)
        with capture_attention(net.blocks, self.record_attention) as attn:
            t = net.norm_pre(net.patch_drop(net._pos_embed(net.patch_embed(x))))
            t = net.norm(net.blocks(t))
        n = t.shape[1]
        patches = slice(1, n - self.n_suffix)
        return TokenRecord(tokens_to_grid(t[:, patches], grid), patches, grid, t, list(attn) or None)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self._record = self._tokens(x)
        return self._record.feats

    def forward_logits(self, feats: torch.Tensor) -> torch.Tensor:
        return self.net.head(feats).mean(dim=(2, 3))

    def semantic_maps(self, feats: torch.Tensor) -> torch.Tensor:
        """The head's output for every class [B, C, h, w] (before pooling)."""
        return self.net.head(feats)

    def class_maps(self, feats: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The head's output for each image's class [B, h, w], bias included (mean = logit):
        computed for that class only (the 3x3 patches of ``feats`` times its kernel)."""
        head = self.net.head
        t = targets.to(device=feats.device, dtype=torch.long)
        B, D, h, w = feats.shape
        cols = F.unfold(feats, kernel_size=3, padding=1)                 # [B, D*9, h*w]
        k = head.weight[t].reshape(B, -1).to(cols.dtype)                 # [B, D*9]
        out = torch.einsum("bk,bkn->bn", k, cols) + head.bias[t].to(cols.dtype)[:, None]
        return out.reshape(B, h, w)

    def classifier(self) -> nn.Conv2d:
        return self.net.head

    def classifier_weight(self) -> torch.Tensor:
        return self.net.head.weight.flatten(1)

    def reset_classifier(self, num_classes: int) -> None:
        old = self.net.head
        self.net.head = nn.Conv2d(old.in_channels, num_classes, 3, 1, 1).to(old.weight.device, old.weight.dtype)
        _init_head(self.net.head)

    def forward_train(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        return {"logits": self.forward_logits(self.forward_features(x))}


class _ScmFuse(nn.Module):
    def __init__(self):
        super().__init__()
        self._loss_rate = nn.Parameter(torch.ones(1))


class _ScmEncoder(nn.Module):
    """SCM's training-only encoder, reduced to the two scalars its checkpoints hold
    (``thred``, ``fuse._loss_rate``); never run (the test path ignores it)."""

    def __init__(self, thred: float = 0.5):
        super().__init__()
        self.fuse = _ScmFuse()
        self.thred = nn.Parameter(torch.ones(1) * thred)


class ScmViT(ConvHeadViT):
    """SCM at test time: TS-CAM's trunk and head; ``layers`` hold the SCM module's scalars."""

    family = "scm"

    def __init__(self, net: nn.Module, info: BackboneInfo):
        net.layers = nn.ModuleList([_ScmEncoder() for _ in range(SCM_ENCODERS)])
        super().__init__(net, info)


def sat_kernel(size: int = 3, nsig: float = 6.0) -> torch.Tensor:
    """SAT's fixed Gaussian kernel [1, 1, size, size]: sqrt of the outer product of the
    normal CDF differences over ``size`` bins of [-nsig - i/2, nsig + i/2], summing to 1."""
    interval = (2 * nsig + 1.0) / size
    edges = torch.linspace(-nsig - interval / 2.0, nsig + interval / 2.0, size + 1, dtype=torch.float64)
    cdf = 0.5 * (1 + torch.erf(edges / math.sqrt(2.0)))
    k1 = cdf[1:] - cdf[:-1]
    k = torch.sqrt(torch.outer(k1, k1))
    return (k / k.sum()).float().view(1, 1, size, size)


class SatViT(ConvHeadViT):
    """SAT: a spatial token after the patches (own position embedding); each block's mask is
    ``sigmoid(head-mean of the spatial token's pre-softmax attention row)`` [B, N]; blocks
    >= 9 multiply their softmax attention by it (so the logits depend on it)."""

    family = "sat"
    n_suffix = 1

    def __init__(self, net: nn.Module, info: BackboneInfo):
        dim = net.embed_dim
        net.loc_token = nn.Parameter(torch.zeros(1, 1, dim))
        net.loc_embed = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(net.loc_token, std=0.02)
        nn.init.trunc_normal_(net.loc_embed, std=0.02)
        net.weight = nn.Parameter(sat_kernel(), requires_grad=False)
        super().__init__(net, info)

    def _block(self, blk: nn.Module, t: torch.Tensor, masked: bool):
        """One block as SAT runs it -> (tokens, mask [B, N], head-mean attention [B, N, N])."""
        attn = blk.attn
        B, N, C = t.shape
        qkv = attn.qkv(blk.norm1(t)).reshape(B, N, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        logits = (q @ k.transpose(-2, -1)) * attn.scale
        mask = torch.sigmoid(logits[:, :, -1, :].mean(dim=1))          # [B, N]
        weights = logits.softmax(dim=-1)
        if masked:
            weights = weights * mask[:, None, None, :]
        out = attn.proj((attn.attn_drop(weights) @ v).transpose(1, 2).reshape(B, N, C))
        t = t + blk.drop_path1(blk.ls1(attn.proj_drop(out)))
        t = t + blk.drop_path2(blk.ls2(blk.mlp(blk.norm2(t))))
        return t, mask, weights.mean(dim=1)

    def _tokens(self, x: torch.Tensor) -> TokenRecord:
        net = self.net
        grid = self._grid(x)
        B = x.shape[0]
        t = net.patch_embed(x)
        t = torch.cat([net.cls_token.expand(B, -1, -1), t, net.loc_token.expand(B, -1, -1)], dim=1)
        t = net.pos_drop(t + torch.cat([net.pos_embed, net.loc_embed], dim=1))
        masks, attn = [], []
        for i, blk in enumerate(net.blocks):
            t, m, a = self._block(blk, t, i >= SAT_MASKED_FROM)
            masks.append(m)
            attn.append(a.float())
        t = net.norm(t)
        patches = slice(1, t.shape[1] - 1)
        return TokenRecord(tokens_to_grid(t[:, patches], grid), patches, grid, t, attn,
                           {"sat_masks": torch.stack(masks)})

    def sat_map(self, rec: TokenRecord) -> torch.Tensor:
        """SAT's class-agnostic map [B, h, w]: the last three masks on the patch columns, averaged."""
        return rec.extra["sat_masks"][-SAT_MAP_LAST:, :, rec.patches].mean(dim=0).reshape(-1, *rec.grid)

    def forward_train(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        rec = self._tokens(x)
        self._record = rec
        mask = self.sat_map(rec).unsqueeze(1)
        smooth = F.conv2d(mask, self.net.weight.to(mask.dtype), padding=1)
        B = x.shape[0]
        return {"logits": self.forward_logits(rec.feats), "mask": mask, "mask_mean": mask.reshape(B, -1).mean(-1),
                "mask_smooth": ((1 - smooth) * smooth).reshape(B, -1).mean(-1)}


# ---------------------------------------------------------------- registration
FAMILIES = {"tscam": (ConvHeadViT, "TS-CAM (Gao 2021)"), "scm": (ScmViT, "SCM (Bai 2022)"),
            "sat": (SatViT, "SAT (Wu 2023)")}


def family_name(family: str, size: str) -> str:
    return f"deit_{family}_{size}_patch16_224"


def family_info(family: str, size: str) -> BackboneInfo:
    _, paper = FAMILIES[family]
    own = {"tscam": "tscam", "scm": "scm", "sat": "sat"}[family]
    note = (f"{paper}: conv 3x3 head on the final patch grid + GAP (cam = its class map, exact); "
            f"its own map: --method {own}; also cls_attention, rollout, gradient family")
    return BackboneInfo(family_name(family, size), "wsol", "norm (patch tokens)", 16, True, note)


def build_family(family: str, size: str, pretrained: bool, num_classes: int,
                 drop_path_rate: float = 0.0) -> ConvHeadViT:
    """The family's model of ``size``; ``pretrained``: the DeiT trunk's ImageNet weights
    (timm), head and family layers new (the references' initialisation for training);
    ``drop_path_rate``: model option, the training methods set the references' 0.1."""
    cls, _ = FAMILIES[family]
    bb = cls(_deit_trunk(size, pretrained, num_classes, drop_path_rate), family_info(family, size))
    bb.model_options = {"drop_path_rate": float(drop_path_rate)}   # recorded in wsol checkpoints
    bb.mark_new(*[p for p in ("net.layers",) if hasattr(bb.net, "layers")])
    return bb


def _register() -> None:
    from wsol.models.registry import register_backbone, timm_weights_cached

    for family in FAMILIES:
        for size, trunk in SIZES.items():
            register_backbone(family_info(family, size),
                              lambda pretrained, n, family=family, size=size, **o: build_family(family, size,
                                                                                                pretrained, n, **o),
                              weights_offline=lambda trunk=trunk: timm_weights_cached(trunk),
                              options={"drop_path_rate": 0.0})


_register()
