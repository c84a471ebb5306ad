"""TS-CAM, SCM and SAT checkpoints in their released layout load into wsol strictly and give
the reference's logits, maps and boxes (``../shared/fixtures/{tscam,scm,sat}-models``).

Each checkpoint is written by the fixtures' fill rule in the layout its trainer saves
(``{'state_dict'|'model': {'module.<key>': ...}}``), loaded the way ``--weights FILE`` does,
run on the 4 real inputs: logits and raw maps within the READMEs' tolerance; the family's
box rule on our maps gives the fixture boxes at every fixture threshold; and one ``wsol
evaluate --weights FILE --method M --protocol P`` run per family on the real images gives
the same maps and, in per_image.csv, the fixture boxes at the protocol's ImageNet threshold.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch

from wsol.cams.base import create_method
from wsol.localize.boxes import boxes_at_level
from wsol.localize.family_protocols import (SAT_THRESHOLDS, TSCAM_THRESHOLDS, sat_box, sat_normalize, scm_normalize,
                                            tscam_box, tscam_normalize)
from wsol.localize.maps import level_thresholds, postprocess_batch, quantize
from wsol.models.registry import create_backbone
from vit_fixtures import (MODELS, fixture_array, fixture_boxes, folder, inputs, spec, write_released_checkpoint)

pytestmark = pytest.mark.skipif(not os.path.isdir(folder("deit_sat_small_patch16_224")),
                                reason="../shared/fixtures/{tscam,scm,sat}-models not present")
METHOD = {"tscam": "tscam", "scm": "scm", "sat": "sat"}
TOL = {"tscam": dict(rtol=1e-4, atol=1e-5), "scm": dict(rtol=1e-4, atol=1e-5), "sat": dict(rtol=1e-4, atol=1e-6)}


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    """One intra-op thread for this module (see conftest.one_thread)."""


def family(model: str) -> str:
    return model.split("_")[1]


def scm_box(raw: np.ndarray, tau: float) -> list:
    """SCM's evaluator box at ``tau``: the wsolevaluation contour rule on its bilinear map."""
    q = quantize(scm_normalize(raw))
    return boxes_at_level(q, int(level_thresholds(int(q.max()), [tau])[0]))["largest"][0].tolist()


def own_box(fam: str, raw: np.ndarray, tau: float) -> list:
    if fam == "tscam":
        return tscam_box(tscam_normalize(raw), tau).tolist()
    if fam == "sat":
        return sat_box(sat_normalize(raw), tau).tolist()
    return scm_box(raw, tau)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """model -> (backbone loaded from its released-layout checkpoint, checkpoint path)."""
    base = tmp_path_factory.mktemp("ckpt")
    out = {}
    for model in MODELS:
        path = str(base / f"{model}.pth")
        write_released_checkpoint(model, path)
        out[model] = (create_backbone(model, path), path)
    return out


@pytest.mark.parametrize("model", list(MODELS))
def test_released_checkpoint_loads_strictly_with_reference_keys(model, loaded):
    bb, _ = loaded[model]
    assert sorted(bb.net.state_dict()) == sorted(k for k, _ in spec(model)["keys"])


@pytest.mark.parametrize("model", list(MODELS))
def test_logits_maps_and_boxes_equal_the_reference(model, loaded):
    bb, _ = loaded[model]
    fam = family(model)
    x, labels, _ = inputs()
    with torch.no_grad():
        feats, logits = bb(x)
        ours = create_method(METHOD[fam])(bb, x, feats, logits, labels).numpy()
    np.testing.assert_allclose(logits.numpy(), fixture_array(model, "_logits"), rtol=1e-4, atol=1e-5)
    ref = fixture_array(model)
    assert ref.std() > 0
    np.testing.assert_allclose(ours, ref, **TOL[fam])
    for tau, boxes in fixture_boxes(model)["boxes"].items():
        assert [own_box(fam, m, float(tau)) for m in ours] == boxes, (model, tau)


def test_scm_attention_map_and_top1_boxes(loaded):
    model = "deit_scm_small_patch16_224"
    bb, _ = loaded[model]
    x, _, _ = inputs()
    from wsol.cams.attention import attention_sum, minmax_patches, token_record

    with torch.no_grad():
        feats, logits = bb(x)
        top1 = logits.argmax(dim=1)
        ours = create_method("scm")(bb, x, feats, logits, top1).numpy()
        attn = minmax_patches(attention_sum(token_record("scm", bb, x, feats))).numpy()
    meta = fixture_boxes(model)
    assert top1.tolist() == meta["top1_pred"]
    np.testing.assert_allclose(ours, fixture_array(model, "_top1"), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(attn, fixture_array(model, "_attn"), rtol=1e-4, atol=1e-5)
    for tau, boxes in meta["boxes_top1_pred"].items():
        assert [scm_box(m, float(tau)) for m in ours] == boxes


def test_a_renamed_key_is_refused(tmp_path):
    """Strict: a checkpoint missing one reference key is a one-line error naming the file."""
    from wsol.errors import WsolError

    path = str(tmp_path / "bad.pth")
    write_released_checkpoint("deit_tscam_tiny_patch16_224", path)
    ck = torch.load(path, weights_only=True)
    ck["state_dict"]["module.head.kernel"] = ck["state_dict"].pop("module.head.weight")
    torch.save(ck, path)
    with pytest.raises(WsolError) as e:
        create_backbone("deit_tscam_tiny_patch16_224", path)
    assert "bad.pth" in str(e.value) and "missing" in str(e.value) and "\n" not in str(e.value)


def _evaluate(shared_imagenet, model, path, protocol, out, cams):
    from wsol.cli import main

    return main(["-q", "evaluate", "--dataset", "wsoleval", "--root", os.path.join(shared_imagenet, "wsoleval", "test"),
                 "--dataset-option", f"images={os.path.join(shared_imagenet, 'ILSVRC', 'Data', 'CLS-LOC')}",
                 "--dataset-option", "num_classes=1000", "--limit", "4", "--backbone", model, "--weights", path,
                 "--method", METHOD[protocol], "--protocol", protocol, "--batch-size", "4", "--out", str(out),
                 "--save-cams", str(cams)])


@pytest.mark.slow
@pytest.mark.parametrize("model", ["deit_tscam_tiny_patch16_224", "deit_scm_small_patch16_224",
                                   "deit_sat_small_patch16_224"])
def test_wsol_evaluate_weights_file_reproduces_maps_and_boxes(model, loaded, shared_imagenet, tmp_path):
    fam = family(model)
    _, path = loaded[model]
    out, cams = tmp_path / "run", tmp_path / "cams"
    assert _evaluate(shared_imagenet, model, path, fam, out, cams) == 0
    ids = inputs()[2]
    ref = fixture_array(model)
    saved = np.stack([np.load(cams / f"{iid}.npy") for iid in ids])
    norm = {"tscam": tscam_normalize, "sat": sat_normalize, "scm": scm_normalize}[fam]
    np.testing.assert_allclose(saved, np.stack([norm(r) for r in ref]), rtol=0, atol=1e-4)
    per = pd.read_csv(out / "per_image.csv").set_index("image_id").loc[ids]
    tau = float(per["loc_tau"].iloc[0])
    if fam != "scm":  # one threshold: ImageNet's (a 1000-class dataset)
        assert tau == {"tscam": TSCAM_THRESHOLDS, "sat": SAT_THRESHOLDS}[fam]["imagenet"]
        assert per[["box_x0", "box_y0", "box_x1", "box_y1"]].values.tolist() == fixture_boxes(model)["boxes"][
            {"tscam": "0.12", "sat": "0.3"}[fam]]
    else:
        assert per[["box_x0", "box_y0", "box_x1", "box_y1"]].values.tolist() == [scm_box(r, tau) for r in ref]
    summary = pd.read_csv(out / "summary.csv").iloc[0]
    assert summary.protocol == fam and summary.maxboxacc_rule.startswith("wsoleval")
    wsoleval = postprocess_batch(ref)  # the fair number: the same maps under wsoleval
    assert 0 <= summary.maxboxacc_v2 <= 100 and wsoleval.shape == (4, 224, 224)
