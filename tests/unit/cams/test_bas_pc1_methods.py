"""CAM methods ``bas`` (BAS's foreground map) and ``pc1`` (CAM Back Again), with
hand-computed expectations, and PC1's parity with ``../shared/fixtures/cam-back-again-models``
(maps, probabilities, 8-bit maps) through the model in its released layout and through
``wsol evaluate --weights FILE``."""
from __future__ import annotations

import csv
import os

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from bas_fixtures import CBA, INPUTS, read_json, write_cba_checkpoint
from wsol.cams.base import create_method
from wsol.cams.pc1 import first_component, frame_flip, minmax_channels, pc1_maps
from wsol.errors import WsolError
from wsol.models.bas_common import foreground_classes, foreground_map
from wsol.models.registry import create_backbone


# ---------------------------------------------------------------- bas
def test_foreground_map_by_hand():
    loc = torch.zeros(1, 3, 2, 2)
    loc[0, 0] = torch.tensor([[0.2, 0.4], [0.6, 0.8]])
    loc[0, 1] = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    loc[0, 2] = 0.5
    scores = torch.tensor([[0.1, 3.0, 2.0]])
    # topk 1: the label's map, whatever the scores
    assert torch.equal(foreground_map(loc, foreground_classes(scores, torch.tensor([0]), 1)), loc[:, :1])
    # topk 2: the two best-scoring classes (1 and 2), averaged
    classes = foreground_classes(scores, torch.tensor([0]), 2)
    assert classes.tolist() == [[1, 2]]
    torch.testing.assert_close(foreground_map(loc, classes)[0, 0], torch.tensor([[0.75, 0.25], [0.25, 0.75]]))


def test_bas_method_on_a_bas_backbone_and_refusals():
    bb = create_backbone("bas_mobilenet_v1", "random", num_classes=5)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        f, logits = bb(x)
        m1 = create_method("bas")(bb, x, f, logits, torch.tensor([1, 4]))
        m2 = create_method("bas", topk=2)(bb, x, f, logits, torch.tensor([1, 4]))
        loc = bb.net.loc_maps(f)
    assert m1.shape == (2, 8, 8) and bb.default_topk() == 1
    torch.testing.assert_close(m1, loc[torch.arange(2), torch.tensor([1, 4])])
    top2 = logits.topk(2, dim=1).indices
    torch.testing.assert_close(m2, loc.gather(1, top2[:, :, None, None].expand(-1, -1, 8, 8)).mean(1))
    torch.testing.assert_close(create_method("cam")(bb, x, f, logits, torch.tensor([1, 4])), m1)
    with pytest.raises(WsolError, match="topk"):
        create_method("bas", topk=0)
    with pytest.raises(WsolError, match="topk 9"):
        create_method("bas", topk=9)(bb, x, f, logits, torch.tensor([1, 4]))
    other = create_backbone("resnet18", "random", num_classes=5)
    with torch.no_grad():
        f2, l2 = other(x)
    with pytest.raises(WsolError, match="needs a BAS backbone"):
        create_method("bas")(other, x, f2, l2, torch.tensor([1, 4]))


def test_default_topk_is_the_references_for_cub_heads():
    assert create_backbone("bas_vgg16", "random", num_classes=200).default_topk() == 80
    assert create_backbone("bas_mobilenet_v1", "random", num_classes=200).default_topk() == 80
    assert create_backbone("bas_mobilenet_v1", "random", num_classes=1000).default_topk() == 1


# ---------------------------------------------------------------- pc1 by hand
def test_minmax_channels_and_constant_channel():
    f = torch.tensor([[[1.0, 3.0, 2.0], [5.0, 5.0, 5.0]]], dtype=torch.float64)
    torch.testing.assert_close(minmax_channels(f), torch.tensor([[[0.0, 1.0, 0.5], [0.0, 0.0, 0.0]]],
                                                                dtype=torch.float64))


def test_first_component_by_hand():
    # samples on the line (t, 2t): the first component is (1, 2)/sqrt(5), largest entry positive
    s = torch.tensor([[[1.0, 2.0], [-1.0, -2.0], [3.0, 6.0]]], dtype=torch.float64)
    torch.testing.assert_close(first_component(s), torch.tensor([[1.0, 2.0]], dtype=torch.float64) / 5 ** 0.5)
    torch.testing.assert_close(first_component(-s), first_component(s))  # the sign rule, not the data's sign


def test_first_component_matches_scikit_learn():
    sklearn = pytest.importorskip("sklearn.decomposition")
    rng = np.random.default_rng(0)
    x = rng.random((40, 9))
    want = sklearn.PCA(n_components=5).fit(x).components_[0]
    got = first_component(torch.from_numpy(x)[None])[0].numpy()
    if int(__import__("sklearn").__version__.split(".")[0]) >= 1 and tuple(
            int(v) for v in __import__("sklearn").__version__.split(".")[:2]) >= (1, 5):
        np.testing.assert_allclose(got, want, atol=1e-10)
    else:  # older releases fix the sign by U: equal up to sign
        np.testing.assert_allclose(np.abs(got), np.abs(want), atol=1e-10)


def test_frame_flip_by_hand():
    # 5x5: the reference's "interior" is [1:3, 1:3]; the frame has 25 - 4 = 21 cells, compared with (5-1)*4 = 16
    m = torch.zeros(1, 5, 5, dtype=torch.float64)
    m[0, 0, :] = 1.0  # 5 frame cells above the mean: 5/16 <= 0.5, kept
    torch.testing.assert_close(frame_flip(m), m)
    m2 = torch.ones(1, 5, 5, dtype=torch.float64)
    m2[0, 1:3, 1:3] = 0.0  # 21 frame cells above the mean (21/16 > 0.5): flipped
    torch.testing.assert_close(frame_flip(m2), 1 - m2)


def test_pc1_of_a_blob_by_hand():
    # channels b and 1 - b (b: a 3x3 blob in a 7x7 map): centred over the 2 channels they are
    # +-(b - 1/2), so PC1 is +-(b - 1/2) normalized, / max gives +-1 on the blob and -+1 off it;
    # with the blob in the interior, the frame fix leaves (1, -1) or flips (-1, 1) to (2, 0):
    # either way the blob is 2 above the rest
    b = torch.zeros(7, 7)
    b[2:5, 2:5] = 1.0
    m = pc1_maps(torch.stack([b, 1 - b])[None])[0]
    assert set(torch.unique(m.round(decimals=9)).tolist()) in ({1.0, -1.0}, {2.0, 0.0})
    assert float(m[3, 3] - m[0, 0]) == pytest.approx(2.0)


def test_pc1_options():
    with pytest.raises(WsolError, match="weighted"):
        create_method("pc1", weighted="maybe")
    bas = create_backbone("bas_mobilenet_v1", "random", num_classes=3)  # its classifier reads another map
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        f, logits = bas(x)
    with pytest.raises(WsolError, match="weighted=false"):
        create_method("pc1")(bas, x, f, logits, torch.tensor([0]))
    assert create_method("pc1", weighted="false")(bas, x, f, logits, torch.tensor([0])).shape == (1, 8, 8)
    with pytest.raises(WsolError, match="target"):
        create_method("pc1", target="gt")


# ---------------------------------------------------------------- parity with the fixtures
needs_cba = pytest.mark.skipif(not os.path.isdir(CBA), reason="../shared/fixtures/cam-back-again-models not present")


@needs_cba
def test_released_layout_gives_reference_probs_cam_pc1(tmp_path):
    path = str(tmp_path / "model.pth")
    write_cba_checkpoint(path)
    bb = create_backbone("cba_convnext_tiny", path)
    x = torch.from_numpy(np.load(os.path.join(INPUTS, "inputs.npy")))
    targets = torch.tensor(read_json(CBA, "convnext_tiny_targets.json")["targets"])
    with torch.no_grad():
        f, logits = bb(x)
        pc1 = create_method("pc1", target="predicted")(bb, x, f, logits, torch.zeros(4, dtype=torch.long))
        cam = create_method("cam")(bb, x, f, logits, targets)
    np.testing.assert_allclose(torch.softmax(logits, 1).numpy(), np.load(os.path.join(CBA, "convnext_tiny_probs.npy")),
                               rtol=1e-4, atol=1e-6)
    assert logits.argmax(1).tolist() == targets.tolist()
    ref_pc1 = np.load(os.path.join(CBA, "convnext_tiny_pc1.npy"))
    np.testing.assert_allclose(pc1.numpy(), ref_pc1, rtol=1e-5, atol=1e-5)
    # the reference's CAM is the channel mean of the weighted features, ReLU, / max: ours up to scale
    c = np.maximum(cam.numpy(), 0)
    np.testing.assert_allclose(c / c.max(axis=(1, 2), keepdims=True), np.load(os.path.join(CBA, "convnext_tiny_cam.npy")),
                               rtol=1e-4, atol=1e-6)
    u8 = np.stack([np.uint8(255 * cv2.resize(m.astype(np.float64), (224, 224))) for m in pc1.numpy()])
    ref_u8 = np.load(os.path.join(CBA, "convnext_tiny_pc1_u8.npy"))
    diff = np.abs(u8.astype(int) - ref_u8)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # a value on an integer boundary may round apart


@needs_cba
def test_wsol_evaluate_pc1_with_the_released_checkpoint(shared_imagenet, tmp_path):
    from wsol.cli import main
    from wsol.datasets.base import build_dataset
    from wsol.localize.maps import postprocess_batch

    ckpt = str(tmp_path / "model.pth")
    write_cba_checkpoint(ckpt)
    ids = read_json(INPUTS, "labels.json")["image_ids"]
    by_id = {s.image_id: s for s in build_dataset("wsoleval", os.path.join(shared_imagenet, "wsoleval", "test")).samples}
    rows = [["image", "label", "x0", "y0", "x1", "y1"]]
    rows += [[iid, by_id[iid].label % 200, *map(float, b)] for iid in ids for b in by_id[iid].boxes]
    with open(tmp_path / "boxes.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    out, cams = tmp_path / "run", tmp_path / "cams"
    rc = main(["-q", "evaluate", "--dataset", "folder", "--root", os.path.join(shared_imagenet, "ILSVRC", "Data", "CLS-LOC"),
               "--dataset-option", f"csv={tmp_path / 'boxes.csv'}", "--dataset-option", "num_classes=200",
               "--backbone", "cba_convnext_tiny", "--weights", ckpt, "--method", "pc1", "--method-option",
               "target=predicted", "--batch-size", "4", "--out", str(out), "--save-cams", str(cams)])
    assert rc == 0
    ours = np.stack([np.load(cams / f"{iid}.npy") for iid in ids])
    ref = postprocess_batch(np.load(os.path.join(CBA, "convnext_tiny_pc1.npy")))
    assert float(np.abs(ours - ref).max()) <= 1e-4
    per = pd.read_csv(out / "per_image.csv").set_index("image_id").loc[ids]
    assert per.pred_top1.tolist() == read_json(CBA, "convnext_tiny_targets.json")["targets"]
