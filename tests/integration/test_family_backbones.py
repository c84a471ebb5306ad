"""``wsol evaluate --method bas|sat`` on a plain backbone builds the family's model, as
``wsol train --wsol-method`` does (``resnet18`` -> ``resnet18+bas``, ``deit_tiny_patch16_224``
-> ``deit_sat_tiny_patch16_224``), warns that its new heads are untrained when the weights
are ImageNet's or random, and runs on real images; a backbone with no such model is still
refused in one line."""
from __future__ import annotations

import logging

import pandas as pd
import pytest

import wsol
from shared_data import imagenet_val_100
from wsol.cams.base import create_method
from wsol.engine.build import method_architecture
from wsol.errors import WsolError


@pytest.mark.parametrize("method,backbone,arch", [("bas", "resnet18", "resnet18+bas"),
                                                  ("bas", "resnet50", "bas_resnet50"),
                                                  ("bas", "bas_vgg16", "bas_vgg16"),
                                                  ("sat", "deit_tiny_patch16_224", "deit_sat_tiny_patch16_224"),
                                                  ("sat", "resnet18", "resnet18"),       # no SAT model: refused later
                                                  ("bas", "deit_tiny_patch16_224", "deit_tiny_patch16_224"),
                                                  ("cam", "resnet18", "resnet18")])
def test_the_method_picks_its_familys_model(method, backbone, arch, caplog):
    with caplog.at_level(logging.WARNING):
        assert method_architecture(create_method(method), backbone, "random") == arch
    assert ("heads are new" in caplog.text) == (arch != backbone)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        method_architecture(create_method(method), backbone, "trained.pt")
    assert "heads are new" not in caplog.text   # a checkpoint is the trained model


@pytest.mark.parametrize("method,backbone", [("bas", "resnet18"), ("sat", "deit_tiny_patch16_224")])
def test_evaluate_runs_a_family_method_on_a_plain_backbone(method, backbone, tmp_path, caplog):
    root = imagenet_val_100()
    with caplog.at_level(logging.WARNING):
        summary = wsol.evaluate(dataset="imagenet", root=root, backbone=backbone, weights="random", method=method,
                                limit=3, batch_size=3, out=str(tmp_path / "o"))
    assert "untrained" in caplog.text
    per_image = pd.read_csv(tmp_path / "o" / "per_image.csv")
    assert len(per_image) == 3 and (per_image["status"] == "ok").all()
    assert float(summary["maxboxacc_v2"].iloc[0]) >= 0


def test_a_backbone_without_the_familys_model_is_refused(tmp_path):
    root = imagenet_val_100()
    with pytest.raises(WsolError, match="needs a ViT backbone"):
        wsol.evaluate(dataset="imagenet", root=root, backbone="resnet18", weights="random", method="sat",
                      limit=2, batch_size=2, out=str(tmp_path / "o"))
