"""The perturbations behind the faithfulness metrics (docs/protocol.md, "Faithfulness"), each
against a case worked out by hand."""
import numpy as np
import pytest
import torch

from wsol.errors import WsolError
from wsol.evaluation.perturbation import (blend, bottom_mask, linear_imputation, make_baseline, masked_by_map,
                                          noisy_linear_imputation, position_ranks, top_mask)


def test_ranks_are_a_stable_descending_order():
    # values 0.1, 0.9, 0.5, 0.5 (row-major): 0.9 first, then the two 0.5 in row-major order, 0.1 last
    ranks = position_ranks(torch.tensor([[[0.1, 0.9], [0.5, 0.5]]]))
    assert ranks.tolist() == [[3, 0, 1, 2]]


def test_patch_ranks_use_the_mean_over_each_square():
    m = torch.zeros(1, 4, 4)
    m[0, 0, 0] = 1.0          # top-left patch mean 0.25
    m[0, 2:, 2:] = 0.5        # bottom-right patch mean 0.5
    ranks = position_ranks(m, patch=2)
    assert ranks.tolist() == [[1, 2, 3, 0]]
    mask = top_mask(ranks, 1, 4, 4, patch=2)[0, 0]
    assert mask.int().tolist() == [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]
    with pytest.raises(WsolError, match="patch size 3 must divide the input size 4x4"):
        position_ranks(m, patch=3)


def test_top_and_bottom_masks():
    ranks = torch.tensor([[3, 0, 1, 2]])
    assert top_mask(ranks, 2, 2, 2)[0, 0].int().tolist() == [[0, 1], [1, 0]]
    assert bottom_mask(ranks, 1, 2, 2)[0, 0].int().tolist() == [[1, 0], [0, 0]]


def test_baselines_and_blend():
    x = torch.arange(8, dtype=torch.float32).view(1, 2, 2, 2)  # channel 0: 0..3, channel 1: 4..7
    assert make_baseline(x, "zeros").abs().sum() == 0
    mean = make_baseline(x, "mean")
    assert mean[0, 0].unique().tolist() == [1.5] and mean[0, 1].unique().tolist() == [5.5]
    const = torch.full((1, 3, 16, 16), 0.7)
    assert make_baseline(const, "blur") == pytest.approx(const)  # a blur keeps a constant image
    with pytest.raises(WsolError, match="unknown faithfulness baseline"):
        make_baseline(x, "black")
    take = torch.tensor([[[[True, False], [False, False]]]])
    assert blend(x, torch.zeros_like(x), take)[0, :, 0, 0].tolist() == [0.0, 0.0]
    assert blend(x, torch.zeros_like(x), take)[0, :, 1, 1].tolist() == [3.0, 7.0]
    assert masked_by_map(x, torch.tensor([[[1.0, 0.5], [0.0, 1.0]]]))[0, 1].tolist() == [[4.0, 2.5], [0.0, 7.0]]


def test_linear_imputation_by_hand():
    # a removed centre is the weighted mean of its 8 neighbours: 1/6 each direct, 1/12 each diagonal
    img = np.array([[12.0, 1.0, 12.0], [2.0, 99.0, 3.0], [12.0, 4.0, 12.0]])[None]
    rem = np.zeros((3, 3), bool)
    rem[1, 1] = True
    out = linear_imputation(img, rem)
    assert out[0, 1, 1] == pytest.approx((1 + 2 + 3 + 4) / 6 + 4 * 12 / 12)
    assert out[0, 0, 0] == 12.0  # kept pixels unchanged
    # two adjacent removed pixels in a 1 x 4 row: x1 = (v0 + x2) / 2, x2 = (x1 + v3) / 2 -> 1, 2
    row = np.array([[[0.0, 50.0, 50.0, 3.0]]])
    out = linear_imputation(row, np.array([[False, True, True, False]]))
    assert out[0, 0].tolist() == pytest.approx([0.0, 1.0, 2.0, 3.0])


def test_noise_only_on_imputed_pixels_and_seeded():
    img = torch.ones(3, 5, 5)
    rem = torch.zeros(5, 5, dtype=torch.bool)
    rem[2, 1:4] = True
    a = noisy_linear_imputation(img, rem, 0.01, torch.Generator().manual_seed(3))
    b = noisy_linear_imputation(img, rem, 0.01, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.equal(a[:, ~rem], img[:, ~rem])
    d = (a[:, rem] - 1).abs()
    assert (d > 0).all() and (d < 0.1).all()
