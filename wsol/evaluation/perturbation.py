"""Perturbed inputs for the faithfulness metrics (docs/protocol.md, "Faithfulness"): the map's
order of positions, the removal masks, the baselines, the map-multiplied image and ROAD's noisy
linear imputation. Pure functions on tensors in the model's input space (normalized images
[B, C, H, W]); the forward passes are :mod:`wsol.evaluation.faithfulness`'s.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import splu

from wsol.errors import WsolError

#: RISE's blur baseline: Gaussian kernel of 11 pixels, sigma 5
BLUR_KERNEL, BLUR_SIGMA = 11, 5.0

# ROAD's neighbour weights (Rong et al. 2022): 1/6 for the four direct neighbours, 1/12 for the diagonals
_NEIGHBOURS = (((0, 1), 1 / 6), ((0, -1), 1 / 6), ((1, 0), 1 / 6), ((-1, 0), 1 / 6),
               ((1, 1), 1 / 12), ((1, -1), 1 / 12), ((-1, 1), 1 / 12), ((-1, -1), 1 / 12))


def check_patch(patch: int, height: int, width: int) -> None:
    """A patch size must divide the input's height and width."""
    if patch < 1 or height % patch or width % patch:
        raise WsolError(f"faithfulness patch size {patch} must divide the input size {height}x{width}")


def position_ranks(maps: torch.Tensor, patch: int = 1) -> torch.Tensor:
    """Rank of each position in the map's order, most relevant first: [B, n_positions] int64.

    A position is a ``patch`` x ``patch`` block (row-major) scored by the map's mean over it;
    ties keep row-major order (a stable sort), so the order never depends on the device.
    """
    b, h, w = maps.shape
    check_patch(patch, h, w)
    scores = maps.float()
    if patch > 1:
        scores = F.avg_pool2d(scores.unsqueeze(1), patch).squeeze(1)
    order = torch.argsort(scores.reshape(b, -1), dim=1, descending=True, stable=True)
    return torch.argsort(order, dim=1)


def top_mask(ranks: torch.Tensor, count: int, height: int, width: int, patch: int = 1) -> torch.Tensor:
    """Bool [B, 1, H, W]: the pixels of the ``count`` most relevant positions."""
    b = ranks.shape[0]
    sel = (ranks < count).reshape(b, height // patch, width // patch)
    if patch > 1:
        sel = sel.repeat_interleave(patch, dim=1).repeat_interleave(patch, dim=2)
    return sel.unsqueeze(1)


def bottom_mask(ranks: torch.Tensor, count: int, height: int, width: int) -> torch.Tensor:
    """Bool [B, 1, H, W]: the ``count`` least relevant pixels (ranks over pixels)."""
    n = ranks.shape[1]
    return (ranks >= n - count).reshape(ranks.shape[0], 1, height, width)


def make_baseline(images: torch.Tensor, kind: str) -> torch.Tensor:
    """What removed positions become: ``zeros`` (0 in the model's input space, i.e. the
    normalization's mean colour, as RISE's deletion), ``blur`` (RISE's insertion canvas: Gaussian
    blur, kernel 11, sigma 5, reflected border) or ``mean`` (each image's own mean colour per
    channel)."""
    if kind == "zeros":
        return torch.zeros_like(images)
    if kind == "mean":
        return images.mean(dim=(2, 3), keepdim=True).expand_as(images).clone()
    if kind == "blur":
        return gaussian_blur(images, BLUR_KERNEL, BLUR_SIGMA)
    raise WsolError(f"unknown faithfulness baseline {kind!r} (zeros, blur, mean)")


def gaussian_blur(images: torch.Tensor, kernel: int, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflected borders (as torchvision's gaussian_blur)."""
    half = (kernel - 1) * 0.5
    x = torch.linspace(-half, half, kernel, device=images.device, dtype=torch.float32)
    k1 = torch.exp(-0.5 * (x / sigma) ** 2)
    k1 = (k1 / k1.sum()).to(images.dtype)
    c = images.shape[1]
    pad = kernel // 2
    out = F.pad(images, (pad, pad, pad, pad), mode="reflect")
    out = F.conv2d(out, k1.view(1, 1, 1, kernel).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(out, k1.view(1, 1, kernel, 1).repeat(c, 1, 1, 1), groups=c)


def masked_by_map(images: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """The explanation image of Average Drop: the input times the normalized map [B, H, W]."""
    return images * maps.unsqueeze(1).to(images.dtype)


def blend(images: torch.Tensor, baseline: torch.Tensor, take_baseline: torch.Tensor) -> torch.Tensor:
    """``baseline`` where ``take_baseline`` (bool [B, 1, H, W]) is set, the image elsewhere."""
    return torch.where(take_baseline, baseline, images)


def dissection_order(ys: np.ndarray, xs: np.ndarray, leaf: int = 64) -> np.ndarray:
    """Geometric nested-dissection order of grid points: split the points' bounding box at its
    middle row or column (the longer side), order the two halves recursively, the separating
    line last. It keeps the sparse factorization of a grid system small (fill ~ n log n)."""
    parts: list = []

    def split(idx: np.ndarray) -> None:
        if len(idx) <= leaf:
            parts.append(idx)
            return
        y, x = ys[idx], xs[idx]
        c = y if (y.max() - y.min()) >= (x.max() - x.min()) else x
        mid = (int(c.min()) + int(c.max())) // 2
        split(idx[c < mid])
        split(idx[c > mid])
        parts.append(idx[c == mid])

    split(np.arange(len(ys)))
    return np.concatenate(parts)


def linear_imputation(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """ROAD's linear imputation of one image: every removed pixel becomes the weighted mean of
    its in-image neighbours (weights 1/6 direct, 1/12 diagonal), solved jointly as one sparse
    linear system over the removed pixels (sparse LU in nested-dissection order). ``image``
    [C, H, W], ``removed`` bool [H, W]; float64 result [C, H, W] (noise not added)."""
    c, h, w = image.shape
    flat = image.reshape(c, -1).astype(np.float64)
    rem = removed.reshape(-1)
    unknown = np.flatnonzero(rem)
    out = flat.copy()
    if len(unknown) == 0:
        return out.reshape(c, h, w)
    unknown = unknown[dissection_order(unknown // w, unknown % w)]
    n = len(unknown)
    var = np.full(h * w, -1, dtype=np.int64)
    var[unknown] = np.arange(n)
    ys, xs = unknown // w, unknown % w
    diag = np.zeros(n)
    rhs = np.zeros((n, c))
    rows, cols, vals = [np.arange(n)], [np.arange(n)], []
    for (dy, dx), wt in _NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        nb = ny[inside] * w + nx[inside]
        eq = np.flatnonzero(inside)
        diag[eq] += wt
        known = ~rem[nb]
        rhs[eq[known]] += wt * flat[:, nb[known]].T
        rows.append(eq[~known])
        cols.append(var[nb[~known]])
        vals.append(np.full(int((~known).sum()), -wt))
    a = coo_matrix((np.concatenate([diag] + vals), (np.concatenate(rows), np.concatenate(cols))),
                   shape=(n, n)).tocsc()
    lu = splu(a, permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    out[:, unknown] = lu.solve(rhs).T
    return out.reshape(c, h, w)


def noisy_linear_imputation(image: torch.Tensor, removed: torch.Tensor, noise: float,
                            generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """ROAD's noisy linear imputation of one image [C, H, W] (any device): the linear imputation
    plus ``noise`` x N(0, 1) on the imputed pixels only (drawn on the CPU from ``generator``,
    [C, n_removed] in row-major order, as pytorch-grad-cam draws it)."""
    rem = removed.reshape(image.shape[-2:]).cpu().numpy().astype(bool)
    filled = torch.from_numpy(linear_imputation(image.detach().cpu().numpy(), rem)).to(image.dtype)
    if noise > 0:
        idx = torch.from_numpy(np.flatnonzero(rem.reshape(-1)))
        c = image.shape[0]
        draw = torch.randn((c, len(idx)), generator=generator, dtype=image.dtype)
        flat = filled.reshape(c, -1)
        flat[:, idx] += noise * draw
    return filled.to(image.device)

