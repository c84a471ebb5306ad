"""timm ViTs as CAM backbones: the features, the head, the attention capture, the listing."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from wsol.cams.gradcam import head_gradients
from wsol.errors import WsolError
from wsol.models.vit import VIT_NAMES, ViTBackbone, listed_info, vit_info
from wsol.models.vit_tokens import capture_attention


def tiny_vit(**kw) -> nn.Module:
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    args = dict(img_size=32, patch_size=8, embed_dim=16, depth=3, num_heads=2, num_classes=5)
    args.update(kw)
    return VisionTransformer(**args).eval()


def wrap(net, name="tiny") -> ViTBackbone:
    return ViTBackbone(net, vit_info(name, net)).eval()


@pytest.fixture(scope="module")
def x():
    torch.manual_seed(1)
    return torch.randn(2, 3, 32, 32)


@pytest.mark.parametrize("kw", [{}, {"reg_tokens": 2}, {"class_token": False, "global_pool": "avg", "fc_norm": False},
                                {"class_token": False, "global_pool": "avg", "reg_tokens": 4}])
def test_features_are_the_last_blocks_patch_tokens_and_logits_the_models(kw, x):
    net = tiny_vit(**kw)
    bb = wrap(net)
    seen = {}
    net.blocks[-1].norm1.register_forward_hook(lambda m, i, o: seen.setdefault("n1", o))
    with torch.no_grad():
        feats, logits = bb(x)
        ref = net(x)
    assert torch.equal(logits, ref)                      # bitwise: the same ops in the same order
    prefix = net.num_prefix_tokens
    assert feats.shape == (2, 16, 4, 4)
    # patch (i, j) of the grid is token prefix + 4 i + j of the last block's norm1 output
    assert torch.equal(feats[1, :, 2, 3], seen["n1"][1, prefix + 2 * 4 + 3])


def test_attention_capture_leaves_logits_bitwise_equal_and_matches_the_explicit_softmax(x):
    net = tiny_vit()
    bb = wrap(net)
    with torch.no_grad():
        _, plain = bb(x)
        bb.record_attention = True
        _, captured = bb(x)
    assert torch.equal(plain, captured)
    ours = bb._record.attention
    assert len(ours) == 3 and ours[0].shape == (2, 17, 17)
    # the explicit path: fused attention off, attn_drop (identity in eval) receives the softmax
    explicit = []

    class Keep(nn.Module):
        def forward(self, a):
            explicit.append(a.mean(dim=1))
            return a

    for blk in net.blocks:
        blk.attn.fused_attn = False
        blk.attn.attn_drop = Keep()
    with torch.no_grad():
        net(x)
    for a, b in zip(ours, explicit):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours[0].sum(-1), torch.ones(2, 17))


def test_capture_hooks_are_removed():
    net = tiny_vit()
    with capture_attention(net.blocks):
        assert all(len(b.attn.qkv._forward_hooks) == 1 for b in net.blocks)
    assert all(len(b.attn.qkv._forward_hooks) == 0 for b in net.blocks)


def test_head_gradients_equal_full_model_autograd_at_the_last_norm1(x):
    """The gradient family's gradient: d logit / d (last block's norm1 patch tokens), the same
    as autograd through the whole model with a hook there (pytorch-grad-cam's ViT layer)."""
    net = tiny_vit()
    bb = wrap(net)
    targets = torch.tensor([1, 3])
    with torch.no_grad():
        feats, _ = bb(x)
    ours = head_gradients(bb, feats, targets)
    keep = {}

    def hook(m, i, o):
        o.retain_grad()
        keep["n1"] = o

    h = net.blocks[-1].norm1.register_forward_hook(hook)
    logits = net(x)
    logits.gather(1, targets[:, None]).sum().backward()
    h.remove()
    ref = keep["n1"].grad[:, 1:].transpose(1, 2).reshape(2, 16, 4, 4)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-7)
    assert ours.abs().sum() > 0


def test_cam_is_exact_only_for_a_gap_head(x):
    gap = wrap(tiny_vit(class_token=False, global_pool="avg", fc_norm=False))
    tok = wrap(tiny_vit())
    assert gap.info.cam_exact and not tok.info.cam_exact and "approximate" in tok.info.note
    t = torch.tensor([0, 4])
    with torch.no_grad():
        for bb, exact in ((gap, True), (tok, False)):
            feats, logits = bb(x)
            cam = bb.class_maps(feats, t)
            recon = cam.mean(dim=(1, 2)) + bb.net.head.bias[t]
            assert torch.allclose(recon, logits.gather(1, t[:, None])[:, 0], atol=1e-5) == exact


def test_class_maps_by_hand_for_a_distilled_model(x):
    """Distilled DeiT: the map is the mean of both heads' rows on each final patch token."""
    from timm.models.deit import VisionTransformerDistilled

    torch.manual_seed(0)
    net = VisionTransformerDistilled(img_size=32, patch_size=8, embed_dim=16, depth=2, num_heads=2,
                                     num_classes=5).eval()
    bb = wrap(net)
    assert bb.prefix == 2
    t = torch.tensor([2, 2])
    with torch.no_grad():
        feats, logits = bb(x)
        torch.testing.assert_close(logits, net(x))
        cam = bb.class_maps(feats, t)
        final = bb._record.final[:, 2:]
        w = (net.head.weight[2] + net.head_dist.weight[2]) / 2
        torch.testing.assert_close(cam, (final @ w).reshape(2, 4, 4))


def test_forward_logits_refuses_features_of_another_pass(x):
    bb = wrap(tiny_vit())
    with torch.no_grad():
        bb(x)
        with pytest.raises(WsolError):
            bb.forward_logits(torch.zeros(2, 16, 4, 4))


@pytest.mark.parametrize("name", ["deit_tiny_patch16_224", "deit_tiny_distilled_patch16_224",
                                  pytest.param("vit_base_patch16_gap_224", marks=pytest.mark.slow),
                                  pytest.param("vit_medium_patch16_reg4_gap_256", marks=pytest.mark.slow)])
def test_listing_equals_the_built_models_truth(name):
    from wsol.models.registry import create_backbone, list_models

    bb = create_backbone(name, "random", num_classes=3)
    listed = next(i for i in list_models(name) if i.name == name)
    built = vit_info(name, bb.net)
    assert listed == built == listed_info(name, VIT_NAMES[name])
    assert isinstance(bb, ViTBackbone)
    with torch.no_grad():
        feats, logits = bb(torch.randn(1, 3, 224, 224))
    assert feats.shape[-2:] == (14, 14) and logits.shape == (1, 3)
