"""What every token (ViT) backbone shares: the record of its last forward pass and the
capture of attention weights that timm's fused attention does not return.

A token backbone's ``forward_features`` returns the patch tokens as a grid [B, D, h, w]
(the CAM methods' contract) and keeps a :class:`TokenRecord` of that pass: the tokens the
grid came from, the final normalized tokens, and, when ``record_attention`` is on, every
block's head-mean softmax attention. Methods ask for it with ``backbone.record_for(feats)``,
which matches the features they were given by storage (``feats.detach()`` shares it), so
a record is never applied to another batch.

Attention capture (:func:`capture_attention`) never changes the model's outputs: a
forward hook on each block's ``attn.qkv`` layer reads the projection the block computed
anyway and recomputes ``softmax(q k^T * scale)`` on the side; the block itself still runs
timm's fused kernel. ``tests/unit/models/test_vit.py`` checks the logits are bitwise equal
with and without capture.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import nn

from wsol.errors import WsolError


@dataclass
class TokenRecord:
    """One forward pass of a token backbone.

    feats: the features returned ([B, D, h, w], patch tokens on the grid).
    patches: the token positions that are patches (``slice``), e.g. ``slice(1, 197)``.
    grid: (h, w) of the patch grid.
    final: the final (post-``norm``) tokens [B, N, D].
    attention: per block, the head-mean softmax attention [B, N, N] (float32), or None.
    extra: model-specific tensors of the pass (SAT's spatial-token masks, the tokens that
        enter a ViT's last block, ...).
    """

    feats: torch.Tensor
    patches: slice
    grid: Tuple[int, int]
    final: torch.Tensor
    attention: Optional[List[torch.Tensor]] = None
    extra: Dict[str, torch.Tensor] = field(default_factory=dict)

    def matches(self, feats: torch.Tensor) -> bool:
        """Were ``feats`` (or a detached view of them) produced by this pass?"""
        return (feats.shape == self.feats.shape and feats.device == self.feats.device
                and feats.data_ptr() == self.feats.data_ptr())


def head_mean_attention(qkv: torch.Tensor, attn: nn.Module) -> torch.Tensor:
    """``softmax(q k^T * scale)`` averaged over heads, from the output of a timm
    ``Attention``'s ``qkv`` layer [B, N, 3 D] -> float32 [B, N, N]."""
    B, N, _ = qkv.shape
    heads = attn.num_heads
    q, k, _ = qkv.reshape(B, N, 3, heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    logits = (q.float() * attn.scale) @ k.float().transpose(-2, -1)
    return logits.softmax(dim=-1).mean(dim=1)


def tokens_to_grid(tokens: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
    """[B, h*w, D] (row-major patches) -> [B, D, h, w]."""
    B, n, D = tokens.shape
    h, w = grid
    if n != h * w:
        raise WsolError(f"{n} patch tokens do not fill a {h}x{w} grid")
    return tokens.transpose(1, 2).reshape(B, D, h, w)


def grid_to_tokens(feats: torch.Tensor) -> torch.Tensor:
    """[B, D, h, w] -> [B, h*w, D] (inverse of :func:`tokens_to_grid`)."""
    return feats.flatten(2).transpose(1, 2)


@contextmanager
def capture_attention(blocks: Sequence[nn.Module], enabled: bool = True) -> Iterator[List[torch.Tensor]]:
    """While active, each call of a block's ``attn.qkv`` appends that block's head-mean
    attention [B, N, N] to the yielded list (in call order: block order). Hooks are
    removed on exit; ``enabled=False`` yields an empty list and hooks nothing."""
    out: List[torch.Tensor] = []
    handles = []
    if enabled:
        for blk in blocks:
            attn = blk.attn

            def hook(_mod, _inp, qkv, attn=attn):
                with torch.no_grad():
                    out.append(head_mean_attention(qkv.detach(), attn))

            handles.append(attn.qkv.register_forward_hook(hook))
    try:
        yield out
    finally:
        for h in handles:
            h.remove()


class TokenBackboneMixin:
    """The record API of token backbones (mixed into a ``Backbone`` subclass).

    ``record_attention``: capture every block's attention in the next forward passes (the
    attention CAM methods switch it on; off by default, as it costs a q k^T per block).
    ``class_token``: whether token 0 is a class token (attention methods read its row).
    """

    record_attention: bool = False
    class_token: bool = True
    _record: Optional[TokenRecord] = None

    def record_for(self, feats: torch.Tensor) -> Optional[TokenRecord]:
        """The record of the forward pass that produced ``feats``, or None."""
        rec = self._record
        return rec if rec is not None and rec.matches(feats) else None

    def attention_record(self, images: torch.Tensor, feats: torch.Tensor) -> TokenRecord:
        """The record of ``feats``' pass with attention; when that pass did not capture it,
        switch capture on (for the next batches too) and run the features again on
        ``images`` (no gradients)."""
        rec = self.record_for(feats)
        if rec is not None and rec.attention:
            return rec
        self.record_attention = True
        with torch.no_grad():
            self.forward_features(images)
        return self._record

    def drop_record(self) -> None:
        """Forget the last pass (frees its tensors)."""
        self._record = None
