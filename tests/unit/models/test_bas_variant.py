"""BAS's erase branch without copies (``run_frozen``) and the generic variant ``NAME+bas``:
the same numbers as deep copies, the heads' shapes, which parameters each term reaches, and
how ``--wsol-method bas`` picks its architecture."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from wsol.errors import WsolError
from wsol.models.bas_common import bas_train_outputs, pool_to, run_frozen
from wsol.models.registry import create_backbone


def _tail_and_head():
    torch.manual_seed(0)
    return {"tail": nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True)),
            "head": nn.Sequential(nn.Conv2d(4, 5, 1), nn.ReLU(inplace=True))}


def _run(x, mods):
    return mods["head"](mods["tail"](x))


def test_run_frozen_gives_the_deep_copies_numbers_without_touching_the_modules():
    mods = _tail_and_head()
    for m in mods.values():
        m.train()
    x = torch.randn(2, 3, 6, 6)
    copies = {k: copy.deepcopy(m) for k, m in mods.items()}
    x1 = x.clone().requires_grad_(True)
    ref = _run(x1, copies)
    ref.square().sum().backward()
    x2 = x.clone().requires_grad_(True)
    out = run_frozen(mods, _run, x2)
    out.square().sum().backward()
    assert torch.equal(out, ref) and torch.equal(x2.grad, x1.grad)
    # the live modules: no weight gradient, running statistics untouched (the copies' moved)
    assert all(p.grad is None for m in mods.values() for p in m.parameters())
    bn, bn_copy = mods["tail"][1], copies["tail"][1]
    assert torch.equal(bn.running_mean, torch.zeros(4)) and int(bn.num_batches_tracked) == 0
    assert not torch.equal(bn_copy.running_mean, torch.zeros(4)) and int(bn_copy.num_batches_tracked) == 1


def test_pool_to_matches_the_reference_pooling():
    m = torch.arange(16.0).view(1, 1, 4, 4)
    assert torch.equal(pool_to(m, torch.zeros(1, 3, 4, 4)), m)                       # same grid: unchanged
    assert torch.equal(pool_to(m, torch.zeros(1, 3, 2, 2)),                           # 2x2 means
                       torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))
    assert pool_to(m, torch.zeros(1, 3, 3, 3)).shape == (1, 1, 3, 3)                  # adaptive otherwise


def test_bas_train_outputs_hand_computed():
    """One image, 1x1 grid, identity 'classifier': every output by hand."""
    cls = nn.Conv2d(2, 2, 1, bias=False)
    loc = nn.Sequential(nn.Conv2d(2, 2, 1, bias=False), nn.Sigmoid())
    with torch.no_grad():
        cls.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
        loc[0].weight.zero_()                       # sigmoid(0) = 0.5 for every class
    x = torch.tensor([[[[4.0]], [[2.0]]]])
    out = bas_train_outputs(x, lambda t, mods: mods["c"](t), {"c": cls}, loc, torch.tensor([0]))
    assert out["logits"].tolist() == [[4.0, 2.0]]
    assert out["m_fg"].tolist() == [[[[0.5]]]]
    assert out["logits_fg"].tolist() == [[2.0, 1.0]]          # F x m_fg
    assert out["s"].tolist() == [4.0] and out["s_bg"].tolist() == [2.0]   # x (1 - 0.5), label 0
    assert out["bas"].tolist() == [pytest.approx(0.5)] and out["area"].tolist() == [0.5]


def test_bas_net_erase_branch_updates_only_the_main_paths_statistics():
    bb = create_backbone("bas_mobilenet_v1", "random", num_classes=3).train()
    bn = bb.net.model[-1][1]                       # a batch norm of the tail
    out = bb.forward_train(torch.randn(2, 3, 64, 64), torch.tensor([0, 2]))
    assert int(bn.num_batches_tracked) == 1         # the erase branch ran on clones
    out["s_bg"].sum().backward()                    # S_bg reaches m_fg, not the tail or classifier_cls
    assert bb.net.classifier_loc[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in bb.net.classifier_cls.parameters())
    assert all(p.grad is None for p in bb.net.model[-2:].parameters())


@pytest.fixture(scope="module")
def variant():
    torch.manual_seed(0)
    return create_backbone("test_byobnet+bas", "random", num_classes=3)


def test_generic_variant_splits_before_the_last_downsampling(variant):
    """timm's test_byobnet (stem /2, stages /2 /2 /2 /2 at 64 input: 32, 16, 8, 4, 2 cells): the
    last downsampling is stages.3, so x_loc is stages.2's output (stride 16) and the tail is
    stages.3 + final_conv."""
    bb = variant
    assert bb.split.trunk == ("stem", "stages.0", "stages.1", "stages.2")
    assert bb.split.tail == ("stages.3", "final_conv") and bb.split.factor == 2
    assert (bb.info.feature_layer, bb.info.stride) == ("stages.2", 16)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        x_loc = bb.eval().forward_features(x)
        assert x_loc.shape == (1, 128, 4, 4)                                  # 64 / 16
        assert bb.feature_stack(x).shape == (1, 256, 2, 2)                    # 64 / 32
        assert torch.equal(bb.tail_modules()(x_loc), bb.net.final_conv(bb.net.stages[3](x_loc)))


def test_generic_variant_on_efficientnet_lite0():
    """The documented split of the offline trunk: x_loc = blocks.4 (112 channels, 14x14 at
    224), tail blocks.5 (the last /2), blocks.6, conv_head, bn2; --train-layers last:3 trains
    the tail (the same units as the plain backbone's last:3) and the heads."""
    from wsol.models.training import feature_units, set_trainable

    bb = create_backbone("efficientnet_lite0+bas", "random", num_classes=4)
    assert bb.split.trunk[-1] == "blocks.4" and bb.split.tail == ("blocks.5", "blocks.6", "conv_head", "bn2")
    assert (bb.info.feature_layer, bb.info.stride) == ("blocks.4", 16)
    assert bb.net.classifier_loc[0].in_channels == 112 and bb.net.classifier_cls[0].in_channels == 1280
    with torch.no_grad():
        assert bb.eval().forward_features(torch.zeros(1, 3, 224, 224)).shape == (1, 112, 14, 14)
    assert [u for u, _ in feature_units(bb)][-4:] == ["blocks.4", "blocks.5", "blocks.6", "conv_head+bn2"]
    _, _, trained = set_trainable(bb, "last:3")
    assert trained == ["head", "blocks.5", "blocks.6", "conv_head+bn2"]


def test_generic_variant_refuses_a_stack_it_cannot_split():
    """A feature pass that is no plain sequence of the net's children (a skip around them)."""
    from wsol.models.backbone import BackboneInfo, NetBackbone
    from wsol.models.bas_variant import split_feature_stack

    net = nn.Module()
    net.a, net.b, net.fc = nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.Conv2d(4, 4, 3, stride=2, padding=1), \
        nn.Linear(4, 2)
    base = NetBackbone(net, BackboneInfo("skip", "wsol", "b", 4, True), lambda n, x: n.b(n.a(x)) + 1.0, "fc")
    with pytest.raises(WsolError, match=r"'skip': \+bas cannot split its feature stack"):
        split_feature_stack(base)
    base = NetBackbone(net, BackboneInfo("plain", "wsol", "b", 4, True), lambda n, x: n.b(n.a(x)), "fc")
    assert split_feature_stack(base).trunk == ("a",) and split_feature_stack(base).tail == ("b",)


def test_generic_variant_heads_and_shapes(variant):
    bb = variant
    assert bb.name == "test_byobnet+bas" and bb.num_classes == 3 and not bb.info.cam_exact
    assert bb.new_layers == ("net.classifier_cls", "net.classifier_loc")
    keys = set(bb.state_dict())
    assert {"net.classifier_cls.0.weight", "net.classifier_cls.2.weight", "net.classifier_cls.4.weight",
            "net.classifier_loc.0.weight"} <= keys
    assert not any(k.startswith("net.head.fc.") for k in keys)          # the base classifier is gone
    cls, loc = bb.net.classifier_cls, bb.net.classifier_loc
    assert [m.out_channels for m in cls if isinstance(m, nn.Conv2d)] == [1024, 1024, 3]
    assert [m.kernel_size for m in cls if isinstance(m, nn.Conv2d)] == [(3, 3), (3, 3), (1, 1)]
    assert loc[0].out_channels == 3 and loc[0].kernel_size == (3, 3) and isinstance(loc[1], nn.Sigmoid)
    assert (loc[0].in_channels, cls[0].in_channels) == (128, 256)       # x_loc's width, the last map's
    assert float(cls[0].bias.detach().abs().sum()) == 0.0               # Xavier, zero bias
    with torch.no_grad():
        feats, logits = bb.eval()(torch.randn(2, 3, 64, 64))
        assert feats.shape == (2, 128, 4, 4) and logits.shape == (2, 3)
        last = bb.net.final_conv(bb.net.stages[3](feats))              # the tail
        assert torch.allclose(logits, cls(last).mean(dim=(2, 3)))      # GAP of classifier_cls after the tail
        maps = torch.sigmoid(loc[0](feats))                            # every class's map, on x_loc's grid
        t = torch.tensor([2, 0])
        assert bb.class_maps(feats, t).shape == (2, 4, 4)
        assert torch.allclose(bb.class_maps(feats, t), maps[torch.arange(2), t], atol=1e-6)
        top2 = logits.topk(2, dim=1).indices
        want = torch.stack([maps[b, top2[b]].mean(0) for b in range(2)])
        assert torch.allclose(bb.foreground(feats, logits, None, 2), want, atol=1e-6)
        assert torch.allclose(bb.foreground(feats, logits, t), maps[torch.arange(2), t], atol=1e-6)


def test_generic_variant_training_outputs_and_gradients(variant):
    bb = variant.train()
    bb.zero_grad(set_to_none=True)
    bn = next(m for m in bb.net.stages[3].modules() if isinstance(m, nn.BatchNorm2d))   # in the tail
    seen = int(bn.num_batches_tracked)
    x, y = torch.randn(2, 3, 64, 64), torch.tensor([1, 2])
    out = bb.forward_train(x, y)
    assert int(bn.num_batches_tracked) == seen + 1     # the tail ran once live; the erase branch on clones
    feats = bb.forward_features(x)
    assert out["m_fg"].shape == (2, 1, 4, 4) and out["logits"].shape == out["logits_fg"].shape == (2, 3)
    fmap = bb.net.classifier_cls(bb.tail_modules()(feats))                  # 2x2: the last map's grid
    pooled = nn.functional.avg_pool2d(out["m_fg"], 2)                      # the reference's pooling
    assert torch.allclose(out["logits_fg"], (fmap * pooled).mean(dim=(2, 3)), atol=1e-5)
    out["s_bg"].sum().backward()    # the erase branch reaches m_fg (classifier_loc and the trunk), not the tail
    assert bb.net.classifier_loc[0].weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in bb.net.stages[2].parameters())
    assert all(p.grad is None for p in bb.net.classifier_cls.parameters())
    assert all(p.grad is None for n in bb.split.tail for p in bb.net.get_submodule(n).parameters())
    with pytest.raises(WsolError, match="needs the labels"):
        bb.forward_train(x)
    bb.reset_classifier(5)
    assert bb.num_classes == 5 and bb.net.classifier_loc[0].out_channels == 5


def test_generic_variant_refuses_a_vit():
    with pytest.raises(WsolError, match=r"\+bas needs a CNN backbone"):
        create_backbone("deit_tiny_patch16_224+bas", "random", num_classes=2)


def test_wsol_method_bas_picks_its_architecture():
    from wsol.training import train as tr
    from wsol.training.methods import create_train_method

    bas = create_train_method("bas")
    assert tr.method_architecture(bas, "efficientnet_lite0") == ("efficientnet_lite0+bas", {})
    assert tr.method_architecture(bas, "efficientnet_lite0+bas") == ("efficientnet_lite0+bas", {})
    assert tr.method_architecture(bas, "resnet50") == ("bas_resnet50", {})         # the reference net
    assert tr.method_architecture(bas, "bas_vgg16") == ("bas_vgg16", {})
    for vit in ("deit_small_patch16_224", "deit_base_patch16_224"):               # 'base' holds 'bas'
        with pytest.raises(WsolError, match="bas trains a BAS model.*got the ViT"):
            tr.method_architecture(bas, vit)
    with pytest.raises(WsolError, match="is an ACOL architecture"):
        tr.method_architecture(bas, "efficientnet_lite0+acol")
    with pytest.raises(WsolError, match="is a BAS architecture: train it with --wsol-method bas"):
        tr.method_architecture(create_train_method("acol"), "efficientnet_lite0+bas")
