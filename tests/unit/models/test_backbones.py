"""Backbones: each listed one builds with random weights, gives the documented map at 224
and a CAM (gradcam where CAM is not exact); the listing agrees with ``check_cam_exact``;
Choe et al.'s architectures load a torchvision checkpoint into their shared layers."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torchvision

from wsol.cams.base import create_method, list_methods
from wsol.errors import WsolError
from wsol.models import torchvision_models
from wsol.models.backbone import check_cam_exact
from wsol.models.registry import create_backbone, list_models

# name: (source, feature layer, stride, map side at 224, cam_exact)
BACKBONES = {
    "vgg16": ("torchvision", "features (pool5)", 32, 7, False),
    "inception_v3": ("torchvision", "Mixed_7c", 32, 5, True),  # valid padding: 5x5, not 7x7
    "mobilenet_v3_small": ("torchvision", "features", 32, 7, False),
    "mobilenet_v3_large": ("torchvision", "features", 32, 7, False),
    "convnext_tiny": ("torchvision", "features", 32, 7, False),
    "vgg16_gap": ("wsol", "conv6 (+ReLU)", 16, 14, True),
    "resnet50_s1": ("wsol", "layer4", 16, 14, True),
    "inception_v3_gap": ("wsol", "SPG_A3_2b (+ReLU)", 16, 14, True),
    # representatives of the families registered before (the big variants are not built here)
    "resnet18": ("torchvision", "layer4", 32, 7, True),
    "mobilenet_v2": ("torchvision", "features", 32, 7, True),
    "efficientnet_b0": ("torchvision", "features", 32, 7, True),
}
# layers declared new (10x lr), besides the classifier
NEW_LAYERS = {"vgg16_gap": ("net.conv6",), "inception_v3_gap": ("net.SPG_A3_1b", "net.SPG_A3_2b")}
WSOLEVAL_BASE = {"vgg16_gap": "vgg16", "resnet50_s1": "resnet50", "inception_v3_gap": "inception_v3"}


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    """One intra-op thread for this module (see conftest.one_thread)."""


@pytest.fixture(scope="module", params=sorted(BACKBONES))
def built(request):
    """Each backbone built once, with one forward pass at 224, batch 1, as the engine runs it:
    parameters frozen, no autograd (gradient methods differentiate the head themselves)."""
    torch.manual_seed(0)
    bb = create_backbone(request.param, "random")
    for p in bb.parameters():
        p.requires_grad_(False)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        feats, logits = bb(x)
    return SimpleNamespace(name=request.param, bb=bb, x=x, feats=feats, logits=logits)


def test_listing_fields(built):
    source, layer, stride, _, exact = BACKBONES[built.name]
    listed = {i.name: i for i in list_models()}[built.name]
    for info in (listed, built.bb.info):
        assert (info.name, info.source, info.feature_layer, info.stride, info.cam_exact) == \
            (built.name, source, layer, stride, exact)
        assert exact or info.note, "a non-exact backbone must say why"


def test_feature_map_has_documented_stride(built):
    _, _, stride, side, _ = BACKBONES[built.name]
    assert built.feats.shape[0] == 1 and built.feats.shape[2:] == (side, side)
    assert built.logits.shape == (1, 1000)
    if built.name == "inception_v3":
        assert "5x5 maps at 224" in built.bb.info.note
    else:
        assert 224 // stride == side


def test_map_per_image(built):
    t = built.logits.argmax(1)
    if built.bb.info.cam_exact:
        cam = create_method("cam")(built.bb, built.x, built.feats, built.logits, t)
        assert cam.shape == built.feats.shape[:1] + built.feats.shape[2:] and torch.isfinite(cam).all()
    else:
        with pytest.raises(WsolError) as e:
            create_method("cam")(built.bb, built.x, built.feats, built.logits, t)
        msg = str(e.value)
        assert "\n" not in msg and "not exact" in msg and "gradcam" in msg
    for name in [m.name for m in list_methods() if m.needs_grad]:  # every gradient method, every backbone
        with torch.no_grad():
            g = create_method(name)(built.bb, built.x, built.feats, built.logits, t)
        assert g.shape == built.feats.shape[:1] + built.feats.shape[2:] and torch.isfinite(g).all(), name


def test_check_cam_exact_agrees_with_listing(built):
    assert check_cam_exact(built.bb, batch=1) == built.bb.info.cam_exact == BACKBONES[built.name][4]


def test_new_parameters_are_classifier_plus_new_layers(built):
    bb = built.bb
    expected = {id(p) for p in bb.classifier().parameters()}
    for path in NEW_LAYERS.get(built.name, ()):
        expected |= {id(p) for p in bb.get_submodule(path).parameters()}
    assert {id(p) for p in bb.new_parameters()} == expected
    assert len(bb.new_parameters()) == len(expected)


def test_every_registered_backbone_is_listed_completely():
    infos = list_models()
    assert set(BACKBONES) <= {i.name for i in infos}
    for i in infos:
        assert i.source in ("torchvision", "wsol", "timm") and i.feature_layer and i.stride in (8, 16, 32)
        assert isinstance(i.cam_exact, bool) and (i.cam_exact or i.note)


# ------------------------------------------------------------------ pretrained weights

def _fake_torchvision_state_dict(name: str):
    """A state dict with torchvision's keys and shapes for ``name`` (random values)."""
    kw = {"aux_logits": True, "init_weights": False} if name == "inception_v3" else {}
    with torch.device("meta"):
        net = torchvision.models.get_model(name, weights=None, **kw)
    g = torch.Generator().manual_seed(0)
    return {k: (torch.randn(v.shape, generator=g) if v.is_floating_point() else torch.zeros(v.shape, dtype=v.dtype))
            for k, v in net.state_dict().items()}


@pytest.mark.parametrize("name", sorted(WSOLEVAL_BASE))
def test_wsoleval_pretrained_loads_shared_layers_only(name, monkeypatch):
    base = WSOLEVAL_BASE[name]
    sd = _fake_torchvision_state_dict(base)
    asked = []

    def fake(model_name, weights="DEFAULT"):
        asked.append((model_name, weights))
        return sd

    monkeypatch.setattr(torchvision_models, "torchvision_state_dict", fake)
    monkeypatch.setattr("wsol.models.wsoleval_archs.torchvision_state_dict", fake)
    bb = create_backbone(name, "pretrained")
    assert asked == [(base, "IMAGENET1K_V1")]
    own = bb.net.state_dict()
    head = {"vgg16_gap": ("fc.",), "inception_v3_gap": ("SPG_A4.",), "resnet50_s1": ()}[name]  # the reference's heads
    new = tuple(p[len("net."):] + "." for p in NEW_LAYERS.get(name, ())) + head
    shared = [k for k in own if not k.startswith(new)]
    assert len(shared) > 20
    for k in shared:
        assert torch.equal(own[k], sd[k]), k
    for k in own:
        if k.startswith(new):
            assert k not in sd or own[k].shape != sd[k].shape or not torch.equal(own[k], sd[k]), k


def test_pretrained_reads_torch_hub_cache(tmp_path):
    """weights='pretrained' takes torchvision's file from torch.hub.get_dir()/checkpoints."""
    name = "mobilenet_v3_small"
    fname = torchvision.models.get_model_weights(name).DEFAULT.url.rsplit("/", 1)[1]
    sd = _fake_torchvision_state_dict(name)
    (tmp_path / "checkpoints").mkdir()
    torch.save(sd, tmp_path / "checkpoints" / fname)
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path))
    try:
        bb = create_backbone(name, "pretrained")
    finally:
        torch.hub.set_dir(old)
    for k, v in bb.net.state_dict().items():
        assert torch.equal(v, sd[k]), k


@pytest.mark.parametrize("name", ["vgg16_gap", "mobilenet_v3_small"])
def test_pretrained_offline_is_one_line(name, monkeypatch, tmp_path):
    def offline(self, *a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", offline)
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path))
    try:
        with pytest.raises(WsolError) as e:
            create_backbone(name, "pretrained")
    finally:
        torch.hub.set_dir(old)
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "checkpoints") in msg and "https://download.pytorch.org/" in msg


def test_check_cam_exact_is_scale_free():
    """Tiny logits (random weights) must not pass a non-GAP head as exact, nor fail a GAP one."""
    import torch.nn.functional as F
    from torch import nn

    from wsol.models.backbone import BackboneInfo, NetBackbone

    def tiny(square: bool, scale: float) -> NetBackbone:
        torch.manual_seed(0)
        net = nn.Module()
        net.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        net.fc = nn.Linear(4, 3)
        with torch.no_grad():
            net.fc.weight.mul_(scale)
            net.fc.bias.mul_(scale)
        logits_fn = (lambda n, f: n.fc((f * f).mean(dim=(2, 3)))) if square else None
        return NetBackbone(net, BackboneInfo("t", "test", "conv", 2, not square),
                           lambda n, x: F.relu(n.conv(x)), "fc", logits_fn=logits_fn)

    for scale in (1.0, 1e-6):
        assert check_cam_exact(tiny(False, scale), size=16)
        assert not check_cam_exact(tiny(True, scale), size=16)


def test_inception_v3_pretrained_loads_torchvision_keys_strictly(monkeypatch):
    """The aux head is built, so torchvision's checkpoint loads strictly; transform_input on."""
    sd = _fake_torchvision_state_dict("inception_v3")
    monkeypatch.setattr(torchvision_models, "torchvision_state_dict", lambda name, weights="DEFAULT": sd)
    bb = create_backbone("inception_v3", "pretrained")
    assert bb.net.transform_input and bb.net.state_dict().keys() == sd.keys()
    assert all(torch.equal(v, sd[k]) for k, v in bb.net.state_dict().items())
