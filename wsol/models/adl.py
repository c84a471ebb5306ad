"""Attention-based Dropout Layer (Choe & Shim, CVPR 2019), as wsolevaluation places it.

In training mode the layer takes the channel-mean attention ``a`` of its input and, with
probability ``drop_rate`` (one draw per forward pass, for the whole batch), multiplies the
input by the drop mask ``a < threshold * max(a)`` (per image); otherwise by the importance
map ``sigmoid(a)``. In eval mode it is the identity. It has no parameters, so inserting it
into an ``nn.Sequential`` shifts the indices of the layers after it (checkpoint keys).
"""
from __future__ import annotations

import torch
from torch import nn

ADL_DROP_RATE = 0.75
ADL_DROP_THRESHOLD = 0.9


class ADL(nn.Module):
    """Attention-based dropout: identity at eval; drop mask or importance map in training."""

    def __init__(self, drop_rate: float = ADL_DROP_RATE, drop_threshold: float = ADL_DROP_THRESHOLD):
        super().__init__()
        if not 0 <= drop_rate <= 1:
            raise ValueError(f"ADL drop rate must be in [0, 1], got {drop_rate}")
        if not 0 <= drop_threshold <= 1:
            raise ValueError(f"ADL drop threshold must be in [0, 1], got {drop_threshold}")
        self.drop_rate = float(drop_rate)
        self.drop_threshold = float(drop_threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        attention = x.mean(dim=1, keepdim=True)
        use_drop_mask = bool(torch.floor(torch.rand([]) + self.drop_rate))  # True with prob. drop_rate
        if use_drop_mask:
            return x * self.drop_mask(attention)
        return x * torch.sigmoid(attention)

    def drop_mask(self, attention: torch.Tensor) -> torch.Tensor:
        """1 where ``attention < threshold * max`` (max per image), else 0; [B, 1, h, w]."""
        peak = attention.flatten(1).max(dim=1).values.view(-1, 1, 1, 1)
        return (attention < peak * self.drop_threshold).to(attention.dtype)

    def extra_repr(self) -> str:
        return f"drop_rate={self.drop_rate}, drop_threshold={self.drop_threshold}"
