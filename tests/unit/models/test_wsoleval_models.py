"""The wsolevaluation heads and layers on tiny inputs, hand-computed: ADL, ACoL erasing and
fused map, SPG attention; every architecture's training outputs; model options
(``large_feature_map``, ``adl``) and their errors; options recorded in wsol checkpoints."""
from __future__ import annotations

import pytest
import torch

from wsol.errors import WsolError
from wsol.models.adl import ADL
from wsol.models.heads import class_attention, erase_attention, normalize_maps, spg_attention
from wsol.models.registry import create_backbone

NAMES = ("vgg16_gap", "resnet50_s1", "inception_v3_gap", "vgg16_acol", "resnet50_acol", "inception_v3_acol",
         "vgg16_spg", "resnet50_spg", "inception_v3_spg")


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    """One intra-op thread for this module (see conftest.one_thread)."""


def test_adl_is_identity_in_eval_mode():
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(ADL().eval()(x), x)


def test_adl_drop_mask_zeroes_where_attention_reaches_threshold_times_max():
    # channel means: [[1, 2], [3, 4]] -> max 4, threshold 0.75 * 4 = 3: drop 3 and 4
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 4.0]]]])
    out = ADL(drop_rate=1.0, drop_threshold=0.75).train()(x)
    assert torch.equal(out, x * torch.tensor([[1.0, 1.0], [0.0, 0.0]]))


def test_adl_importance_map_is_sigmoid_of_channel_mean():
    x = torch.tensor([[[[0.0, 2.0]], [[2.0, -2.0]]]])  # channel means [1, 0]
    out = ADL(drop_rate=0.0, drop_threshold=0.9).train()(x)
    assert torch.allclose(out, x * torch.sigmoid(torch.tensor([1.0, 0.0])))


def test_adl_draw_is_one_per_forward_with_the_drop_rate():
    torch.manual_seed(0)
    layer = ADL(drop_rate=0.75, drop_threshold=0.5).train()
    x = torch.tensor([[[[1.0, 3.0]]]])  # drop mask [1, 0]; importance map sigmoid([1, 3])
    drops = sum(bool(layer(x)[0, 0, 0, 1] == 0) for _ in range(2000))
    assert 0.72 * 2000 < drops < 0.78 * 2000


def test_adl_rejects_rates_outside_unit_interval():
    with pytest.raises(ValueError):
        ADL(drop_rate=1.5)


def test_normalize_and_class_attention_by_hand():
    f = torch.zeros(1, 2, 1, 3)
    f[0, 1, 0] = torch.tensor([2.0, 4.0, 6.0])
    assert torch.equal(class_attention(f, torch.tensor([1])), torch.tensor([[[[0.0, 0.5, 1.0]]]]))
    assert torch.equal(normalize_maps(f)[0, 1], torch.tensor([[0.0, 0.5, 1.0]]))


def test_acol_erasing_zeroes_attention_at_or_above_threshold():
    feature = torch.ones(1, 2, 1, 4)
    attention = torch.tensor([[[[0.2, 0.7, 0.69, 1.0]]]])
    out = erase_attention(feature, attention, 0.7)
    assert torch.equal(out, torch.tensor([[[[1.0, 0.0, 1.0, 0.0]]] * 2]).view(1, 2, 1, 4))


@pytest.fixture(scope="module")
def acol():
    torch.manual_seed(0)
    return create_backbone("vgg16_acol", "random", num_classes=5).eval()


def test_acol_head_b_sees_the_feature_erased_by_head_a_attention(acol):
    x, labels = torch.randn(2, 3, 64, 64), torch.tensor([1, 3])
    with torch.no_grad():
        f = acol.forward_features(x)
        out = acol.forward_train(x, labels)
        a = out["feat_map_a"][torch.arange(2), labels].unsqueeze(1)
        att = (a - a.amin((2, 3), keepdim=True)) / (a.amax((2, 3), keepdim=True) - a.amin((2, 3), keepdim=True))
        erased = f * (att < 0.7)
        assert torch.allclose(out["feat_map_b"], acol.net.classifier_B(erased), atol=1e-6)
        assert torch.allclose(out["logit_b"], out["feat_map_b"].mean((2, 3)))
        assert torch.allclose(out["logits"], acol(x)[1])


def test_acol_cam_is_max_of_both_normalized_heads(acol):
    from wsol.cams.base import create_method

    x, labels = torch.randn(2, 3, 64, 64), torch.tensor([0, 4])
    with torch.no_grad():
        f, logits = acol(x)
        cam = create_method("cam")(acol, x, f, logits, labels)
        out = acol.forward_train(x, labels)
    idx = torch.arange(2)
    a = normalize_maps(out["feat_map_a"][idx, labels].unsqueeze(1))[:, 0]
    b = normalize_maps(out["feat_map_b"][idx, labels].unsqueeze(1))[:, 0]
    assert torch.equal(cam, torch.maximum(a, b))
    assert not acol.info.cam_exact and "fused" in acol.info.note


def test_spg_attention_by_hand():
    feat_map = torch.zeros(1, 2, 2, 2)
    feat_map[0, 1] = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    b1, b2 = torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 100.0)
    att, fused = spg_attention(feat_map, torch.tensor([1]), b1, b2)
    assert att.shape == fused.shape == (1, 1, 224, 224)
    assert att[0, 0, 0, 0] == 0 and att[0, 0, -1, -1] == 1  # bilinear, corners kept
    assert torch.allclose(fused, torch.full_like(fused, 0.75))  # (sigmoid(0) + sigmoid(100)) / 2


@pytest.mark.parametrize("name", NAMES)
def test_train_outputs_and_large_feature_map(name):
    """Training-mode dict keys/shapes as the reference's; large_feature_map doubles the map."""
    torch.manual_seed(0)
    x, labels = torch.randn(2, 3, 64, 64), torch.tensor([0, 2])
    sides = {}
    for lfm in (False, True):
        bb = create_backbone(name, "random", num_classes=3, options={"large_feature_map": lfm})
        assert bb.model_options["large_feature_map"] is lfm and bb.info.stride == (8 if lfm else 16)
        with torch.no_grad():
            sides[lfm] = bb.forward_features(x).shape[-1]
            if lfm:
                continue
            out = bb.train().forward_train(x, labels)
        assert out["logits"].shape == (2, 3)
        if name.endswith("_acol"):
            assert set(out) == {"logits", "logit_b", "feat_map_a", "feat_map_b"}
            assert out["feat_map_a"].shape == out["feat_map_b"].shape == (2, 3, sides[False], sides[False])
        elif name.endswith("_spg"):
            assert set(out) == {"logits", "logits_b1", "logits_b2", "logits_c", "attention", "fused_attention"}
            assert out["attention"].shape == out["fused_attention"].shape == (2, 1, 224, 224)
            assert out["logits_c"].shape[1] == out["logits_b1"].shape[1] == 1
        else:
            assert set(out) == {"logits"}
    assert sides[True] == 2 * sides[False] == 8


def test_adl_option_inserts_layers_where_the_reference_puts_them():
    vgg = create_backbone("vgg16_gap", "random", options={"adl": "true"})
    assert [i for i, m in enumerate(vgg.net.features) if isinstance(m, ADL)] == [17, 24, 32]
    r50 = create_backbone("resnet50_s1", "random", options={"adl": True, "adl_drop_rate": 0.5})
    assert isinstance(r50.net.layer3[1], ADL) and isinstance(r50.net.layer4[1], ADL) and isinstance(r50.net.layer4[4], ADL)
    assert r50.net.layer3[1].drop_rate == 0.5 and r50.net.layer3[1].drop_threshold == 0.9
    inc = create_backbone("inception_v3_gap", "random", options={"adl": True})
    assert all(isinstance(getattr(inc.net, n), ADL) for n in ("ADL_5d", "ADL_6e", "ADL_A3_2b"))


@pytest.mark.parametrize("name,opts,msg", [
    ("vgg16_spg", {"adl": True}, "has no model option 'adl' (accepted: large_feature_map)"),
    ("vgg16_gap", {"large_feature_map": "maybe"}, "large_feature_map of 'vgg16_gap' must be true or false"),
    ("resnet18", {"large_feature_map": True}, "accepted: none"),
])
def test_bad_model_options_are_one_line_errors(name, opts, msg):
    with pytest.raises(WsolError) as e:
        create_backbone(name, "random", options=opts)
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_wsol_checkpoint_records_model_options(tmp_path):
    from wsol.models.checkpoint import save_checkpoint

    bb = create_backbone("resnet50_spg", "random", num_classes=4, options={"large_feature_map": True})
    save_checkpoint(bb, str(tmp_path / "c.pt"))
    back = create_backbone("resnet50_spg", str(tmp_path / "c.pt"))
    assert back.model_options["large_feature_map"] is True and back.num_classes == 4
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(back.forward_features(x), bb.eval().forward_features(x))


def test_vgg_large_feature_map_checkpoint_says_which_option(tmp_path):
    bb = create_backbone("vgg16_gap", "random", num_classes=2, options={"large_feature_map": True})
    torch.save({"state_dict": bb.net.state_dict()}, tmp_path / "lfm.pth.tar")  # no recorded options
    with pytest.raises(WsolError) as e:
        create_backbone("vgg16_gap", str(tmp_path / "lfm.pth.tar"))
    assert "pass --model-option large_feature_map=true" in str(e.value)
    ok = create_backbone("vgg16_gap", str(tmp_path / "lfm.pth.tar"), options={"large_feature_map": "true"})
    assert ok.model_options["large_feature_map"] is True


def _fake_torchvision(name: str):
    import torchvision

    kw = {"aux_logits": True, "init_weights": False} if name == "inception_v3" else {}
    with torch.device("meta"):
        net = torchvision.models.get_model(name, weights=None, **kw)
    g = torch.Generator().manual_seed(1)
    return {k: (torch.randn(v.shape, generator=g) if v.is_floating_point() else torch.zeros(v.shape, dtype=v.dtype))
            for k, v in net.state_dict().items()}


# (name, options, torchvision key, key in the wsol net it must land in)
PRETRAINED_MAP = [
    ("vgg16_spg", {}, "features.17.weight", "SPG_A_1.0.weight"),
    ("vgg16_spg", {}, "features.28.bias", "SPG_A_2.4.bias"),
    ("vgg16_gap", {"adl": True}, "features.17.weight", "features.18.weight"),
    ("vgg16_gap", {"adl": True}, "features.28.weight", "features.30.weight"),
    ("vgg16_gap", {"large_feature_map": True}, "features.24.weight", "features.23.weight"),
    ("vgg16_acol", {}, "features.28.weight", "features.28.weight"),
    ("resnet50_spg", {}, "layer3.0.conv1.weight", "SPG_A1.0.conv1.weight"),
    ("resnet50_spg", {}, "layer3.5.bn3.running_var", "SPG_A2.4.bn3.running_var"),
    ("resnet50_s1", {"adl": True}, "layer3.1.conv1.weight", "layer3.2.conv1.weight"),
    ("resnet50_s1", {"adl": True}, "layer4.2.conv3.weight", "layer4.3.conv3.weight"),
    ("resnet50_s1", {"adl": True}, "fc.weight", "fc.weight"),
    ("resnet50_acol", {}, "layer4.2.conv3.weight", "layer4.2.conv3.weight"),
    ("inception_v3_spg", {}, "Mixed_6e.branch_pool.conv.weight", "Mixed_6e.branch_pool.conv.weight"),
]


@pytest.mark.parametrize("name,opts,src,dst", PRETRAINED_MAP)
def test_pretrained_weights_go_where_the_reference_loader_puts_them(name, opts, src, dst, monkeypatch):
    base = {"vgg16": "vgg16", "resnet50": "resnet50", "inception": "inception_v3"}[name.split("_")[0]]
    sd = _fake_torchvision(base)
    monkeypatch.setattr("wsol.models.wsoleval_archs.torchvision_state_dict", lambda n, w="DEFAULT": sd)
    bb = create_backbone(name, "pretrained", options=opts)
    assert torch.equal(bb.net.state_dict()[dst], sd[src])


@pytest.mark.parametrize("name,fast,slow", [
    ("vgg16_gap", ("conv6.weight", "fc.bias"), ("features.0.weight",)),
    ("vgg16_spg", ("SPG_A_1.0.weight", "SPG_C.2.bias"), ("features.14.weight",)),
    ("resnet50_s1", ("layer4.0.conv1.weight", "fc.weight"), ("layer3.0.conv1.weight", "conv1.weight")),
    ("resnet50_acol", ("layer4.2.bn3.weight",), ("classifier_A.0.weight", "layer1.0.conv1.weight")),
    ("inception_v3_acol", ("classifier_B.4.weight",), ("Mixed_6e.branch1x1.conv.weight", "Conv2d_1a_3x3.conv.weight")),
])
def test_reference_lr_groups(name, fast, slow):
    """The reference trainer's 10x group: VGG16/InceptionV3 everything outside the trunk,
    ResNet50 layer4 and fc only (so its ACoL/SPG heads train at 1x)."""
    bb = create_backbone(name, "random", num_classes=3)
    ids = {id(p) for p in bb.reference_fast_parameters()}
    params = dict(bb.net.named_parameters())
    assert all(id(params[n]) in ids for n in fast) and not any(id(params[n]) in ids for n in slow)
