"""Token-attention maps, each rule against a hand-computed case."""
from __future__ import annotations

import math

import pytest
import torch

from wsol.cams.attention import attention_sum, minmax_patches, patch_row, rollout
from wsol.cams.base import create_method
from wsol.errors import WsolError
from wsol.models.vit_tokens import TokenRecord


def record(attention, grid=(1, 2), patches=slice(1, None), final=None, extra=None):
    B = attention[0].shape[0]
    feats = torch.zeros(B, 1, *grid)
    return TokenRecord(feats, patches, grid, final if final is not None else torch.zeros(B, 3, 1), attention,
                       extra or {})


A1 = torch.tensor([[[0.5, 0.25, 0.25], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
A2 = torch.tensor([[[0.2, 0.6, 0.2], [0.5, 0.5, 0.0], [0.0, 0.5, 0.5]]])


def test_rollout_by_hand():
    """Â = (A + I) / 2 (rows of A sum to 1); R = Â2 Â1; class row = R[0]."""
    h1 = (A1[0] + torch.eye(3)) / 2   # [[.75,.125,.125],[0,1,0],[0,0,1]]
    h2 = (A2[0] + torch.eye(3)) / 2   # [[.6,.3,.1],[.25,.75,0],[0,.25,.75]]
    # row 0 of h2 @ h1: [.6*.75, .6*.125+.3*1, .6*.125+.1*1] = [.45, .375, .175]
    out = rollout([A1, A2])
    torch.testing.assert_close(out[0, 0], torch.tensor([0.45, 0.375, 0.175]))
    torch.testing.assert_close(out[0], h2 @ h1)
    torch.testing.assert_close(patch_row(out, record([A1, A2])), torch.tensor([[[0.375, 0.175]]]))


def test_rollout_rows_are_normalized_with_any_attention_rows():
    a = torch.tensor([[[2.0, 0.0], [1.0, 1.0]]])   # rows sum to 2: (A + I) / row sum still sums to 1
    torch.testing.assert_close(rollout([a])[0].sum(-1), torch.ones(2))
    torch.testing.assert_close(rollout([a])[0, 0], torch.tensor([1.0, 0.0]))


def test_attention_sum_and_minmax_by_hand():
    rec = record([A1, A2])
    # class rows on the patch columns: [.25, .25] + [.6, .2] = [.85, .45]
    torch.testing.assert_close(attention_sum(rec), torch.tensor([[[0.85, 0.45]]]))
    m = torch.tensor([[[3.0, 1.0], [2.0, 5.0]]])
    torch.testing.assert_close(minmax_patches(m), torch.tensor([[[0.5, 0.0], [0.25, 1.0]]]))


class FakeTokenBackbone:
    """Enough of a token backbone for the methods: a record, class maps, a head size."""

    name = "fake_vit"
    num_classes = 4
    class_token = True

    def __init__(self, rec, semantic):
        self._rec, self._sem = rec, semantic

    def attention_record(self, images, feats):
        return self._rec

    def class_maps(self, feats, targets):
        return self._sem[torch.arange(len(targets)), targets]


def test_tscam_scm_cls_attention_by_hand():
    rec = record([A1, A2])
    sem = torch.zeros(1, 4, 1, 2)
    sem[0, 2] = torch.tensor([[2.0, -1.0]])
    bb = FakeTokenBackbone(rec, sem)
    t = torch.tensor([2])
    run = lambda m: create_method(m)(bb, None, rec.feats, None, t)  # noqa: E731
    torch.testing.assert_close(run("tscam"), torch.tensor([[[0.85 * 2.0, 0.45 * -1.0]]]))   # no ReLU
    torch.testing.assert_close(run("scm"), torch.tensor([[[1.0 * 2.0, 0.0 * -1.0]]]))       # min-max first
    torch.testing.assert_close(run("cls_attention"), torch.tensor([[[0.6, 0.2]]]))          # last block only


def test_methods_refuse_a_cnn_and_sat_refuses_a_plain_vit():
    from wsol.models.registry import create_backbone

    cnn = create_backbone("tiny_test_net", "random", num_classes=3)
    x = torch.zeros(1, 3, 32, 32)
    with torch.no_grad():
        f, lg = cnn(x)
    with pytest.raises(WsolError, match="needs a ViT backbone"):
        create_method("rollout")(cnn, x, f, lg, torch.tensor([0]))
    rec = record([A1])
    with pytest.raises(WsolError, match="SAT model"):
        create_method("sat")(FakeTokenBackbone(rec, None), x, rec.feats, None, torch.tensor([0]))


def test_sat_kernel_equals_the_reference_formula():
    from scipy import stats

    from wsol.models.vit_wsol import sat_kernel

    nsig, k = 6.0, 3
    interval = (2 * nsig + 1.0) / k
    edges = [-nsig - interval / 2 + i * (2 * nsig + interval) / k for i in range(k + 1)]
    k1 = [stats.norm.cdf(b) - stats.norm.cdf(a) for a, b in zip(edges, edges[1:])]
    raw = [[math.sqrt(a * b) for b in k1] for a in k1]
    total = sum(map(sum, raw))
    ref = torch.tensor([[v / total for v in row] for row in raw])
    torch.testing.assert_close(sat_kernel()[0, 0], ref)


def test_sat_map_and_attention_methods_on_a_sat_model_batched():
    """SAT: the map is the mean of the last three masks on the patch columns; each image's
    map is what it is alone (batched, no cross-talk); its masks lie in (0, 1)."""
    from timm.models.vision_transformer import VisionTransformer
    from torch import nn

    from wsol.models.vit_wsol import SatViT, family_info

    torch.manual_seed(0)  # SAT's layout at a small width and input: 12 blocks, 4x4 patches
    net = VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=12, num_heads=2, num_classes=3)
    net.head = nn.Conv2d(16, 3, 3, padding=1)
    bb = SatViT(net, family_info("sat", "tiny")).eval()
    x = torch.randn(2, 3, 32, 32)
    t = torch.tensor([0, 2])
    with torch.no_grad():
        f, lg = bb(x)
        both = create_method("sat")(bb, x, f, lg, t)
        masks = bb._record.extra["sat_masks"]
        f1, lg1 = bb(x[1:])
        one = create_method("sat")(bb, x[1:], f1, lg1, t[1:])
    assert masks.shape == (12, 2, 18) and 0 < masks.min() and masks.max() < 1
    torch.testing.assert_close(both[0], masks[-3:, 0, 1:17].mean(0).reshape(4, 4))
    torch.testing.assert_close(both[1:], one, rtol=1e-4, atol=1e-6)
    out = bb.forward_train(x, t)
    assert set(out) == {"logits", "mask", "mask_mean", "mask_smooth"} and out["mask"].shape == (2, 1, 4, 4)
    torch.testing.assert_close(out["mask_mean"], both.reshape(2, -1).mean(-1), rtol=1e-4, atol=1e-6)
