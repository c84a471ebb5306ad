"""Hostile input, round three: masks as people store them, and ambiguous masks.

A 0/1 label mask (8- or 16-bit), a 16-bit 0/65535 mask, a palette mask and a mask in the alpha
channel must all be read as the object their author meant; masks with no object, no background
or nothing but ignored pixels are named in a warning and counted in summary.csv. Each case runs
``wsol score`` / ``wsol evaluate`` through ``wsol.cli.main``.
"""
import logging
import os
import shutil

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from wsol.cli import main
from wsol.datasets.base import build_dataset
from wsol.datasets.masks import ambiguity, mask_gray
from wsol.datasets.synthetic import make_synthetic


# ------------------------------------------------------------------ unit: the reading rules
def _object(h=4, w=5):
    m = np.zeros((h, w), np.uint8)
    m[1:3, 1:4] = 1
    return m


def _save(kind, m, path):
    """Save the 0/1 object ``m`` the way a user might (``kind``)."""
    if kind == "0/255":
        cv2.imwrite(path, m * 255)
    elif kind == "0/1 8-bit":
        cv2.imwrite(path, m)
    elif kind == "0/1 16-bit":
        cv2.imwrite(path, m.astype(np.uint16))
    elif kind == "0/65535 16-bit":
        cv2.imwrite(path, m.astype(np.uint16) * 65535)
    elif kind == "palette":
        p = Image.fromarray(m, "P")
        p.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)   # index 1 is dark red: gray 38
        p.save(path)
    elif kind == "alpha":
        rgba = np.zeros(m.shape + (4,), np.uint8)          # black everywhere, object in alpha
        rgba[..., 3] = m * 255
        Image.fromarray(rgba, "RGBA").save(path)
    elif kind == "gray+alpha":
        la = np.zeros(m.shape + (2,), np.uint8)
        la[..., 1] = m * 255
        Image.fromarray(la, "LA").save(path)
    elif kind == "bilevel":
        Image.fromarray(m.astype(bool)).save(path)


KINDS = ["0/255", "0/1 8-bit", "0/1 16-bit", "0/65535 16-bit", "palette", "alpha", "gray+alpha", "bilevel"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_storage_reads_as_0_255(tmp_path, kind):
    m = _object()
    path = str(tmp_path / "m.png")
    _save(kind, m, path)
    assert np.array_equal(mask_gray(path), m * 255.0)


def test_soft_and_opaque_masks_keep_their_gray_values(tmp_path):
    soft = np.array([[0, 1, 2], [102, 127, 153]], np.uint8)      # not a 0/1 label mask: values kept
    cv2.imwrite(str(tmp_path / "s.png"), soft)
    assert np.array_equal(mask_gray(str(tmp_path / "s.png")), soft.astype(np.float32))
    rgba = np.full((2, 3, 4), 255, np.uint8)                      # fully opaque: the colour is the mask
    rgba[0, :, :3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "o.png")
    assert np.array_equal(mask_gray(str(tmp_path / "o.png")), np.array([[0, 0, 0], [255, 255, 255]], np.float32))
    w16 = np.array([[0, 200], [300, 65535]], np.uint16)           # 16-bit beyond 255: scaled by 255/65535
    cv2.imwrite(str(tmp_path / "w.png"), w16)
    assert np.allclose(mask_gray(str(tmp_path / "w.png")), [[0, 200 * 255 / 65535], [300 * 255 / 65535, 255]])


def test_ambiguity_kinds():
    assert ambiguity(np.array([[1, 0], [255, 0]], np.uint8)) is None
    assert ambiguity(np.array([[0, 0], [255, 0]], np.uint8)) == "empty"
    assert ambiguity(np.full((2, 2), 255, np.uint8)) == "all_ignored"
    assert ambiguity(np.array([[1, 255], [255, 1]], np.uint8)) == "no_background"


# ------------------------------------------------------------------ end to end: wsol score on CUB segmentations
@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    """A synthetic CUB with 0/255 segmentations and random heatmaps for its test split."""
    base = tmp_path_factory.mktemp("masks")
    root = str(base / "syn")
    make_synthetic(root, n_classes=2, n_train_per_class=1, n_test_per_class=3, progress=False)
    cams = base / "cams"
    rng = np.random.default_rng(0)
    for s in build_dataset("cub", root, "test").samples:
        p = cams / (s.image_id + ".npy")
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, rng.random((224, 224)).astype(np.float32))
    rc, ref = _score(root, str(cams), str(base / "ref"))
    assert rc == 0 and 0 < ref.pxap < 100 and ref.n_masks_empty == 0
    return root, str(cams), ref


def _score(root, cams, out, *extra):
    rc = main(["-q", "score", "--dataset", "cub", "--root", root, "--cams", cams, "--out", out, *extra])
    return rc, (pd.read_csv(os.path.join(out, "summary.csv")).iloc[0] if rc == 0 else None)


def _restore(syn_root, tmp_path, kind):
    """A copy of the synthetic CUB whose segmentations are saved as ``kind``."""
    root = str(tmp_path / kind.replace("/", "_").replace(" ", "_"))
    shutil.copytree(syn_root, root)
    seg = os.path.join(root, "segmentations")
    for d, _, files in os.walk(seg):
        for f in files:
            p = os.path.join(d, f)
            obj = (cv2.imread(p, cv2.IMREAD_GRAYSCALE) > 127).astype(np.uint8)
            os.remove(p)
            _save(kind, obj, p)
    return root


@pytest.mark.parametrize("kind", ["0/1 8-bit", "0/1 16-bit", "0/65535 16-bit", "palette", "alpha"])
def test_masks_as_people_store_them_score_like_0_255(syn, tmp_path, kind):
    """Before: a 0/1 or palette or alpha mask was all background under CUB's 127.5 level, so PxAP
    dropped without a word. Now every storage gives the 0/255 mask's PxAP to the last digit."""
    root, cams, ref = syn
    rc, got = _score(_restore(root, tmp_path, kind), cams, str(tmp_path / "got"))
    assert rc == 0 and got.pxap == ref.pxap and got.piou == ref.piou and got.n_masks_empty == 0


@pytest.mark.parametrize("bad", ["-1", "255", "nan", "inf", "abc"])
def test_seg_threshold_outside_the_gray_range_is_refused(syn, tmp_path, capsys, bad):
    """Before: seg_threshold=-1 made every pixel object and PxAP 100."""
    root, cams, _ = syn
    rc, _ = _score(root, cams, str(tmp_path / "o"), "--dataset-option", f"seg_threshold={bad}")
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "seg_threshold must be a gray level in [0, 255)" in err


def test_an_empty_mask_is_named_and_counted(syn, tmp_path, caplog):
    root, cams, _ = syn
    root2 = str(tmp_path / "one_empty")
    shutil.copytree(root, root2)
    s = build_dataset("cub", root2, "test").samples[1]
    cv2.imwrite(s.mask.paths[0], np.zeros((30, 40), np.uint8))
    with caplog.at_level(logging.WARNING):
        rc, got = _score(root2, cams, str(tmp_path / "o"))
    assert rc == 0 and got.n_masks_empty == 1 and got.n_masks_all_ignored == 0 and got.n_masks_no_background == 0
    assert any("no object pixel" in r.getMessage() and s.image_id in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------ OpenImages: ignore masks covering the background
@pytest.fixture
def openimages(tmp_path):
    from wsol.datasets.openimages import write_example

    meta, _split, opts = write_example(str(tmp_path / "oi"))
    return meta, opts["images"]


def _random_cams(meta, images, cams, seed=0):
    rng = np.random.default_rng(seed)
    for s in build_dataset("openimages", meta, "test", images=images).samples:
        p = os.path.join(cams, s.image_id + ".npy")
        os.makedirs(os.path.dirname(p), exist_ok=True)
        np.save(p, rng.random((224, 224)).astype(np.float32))


def test_openimages_ignore_covering_all_background_is_not_pxap_100(openimages, tmp_path, caplog):
    """Before: when each row's ignore mask covered all background a random map scored PxAP 100.
    Now such masks are counted, named, and PxAP without a single background pixel is NaN."""
    meta, images = openimages
    loc = os.path.join(meta, "localization.txt")
    rows = []
    for k, line in enumerate(open(loc).read().split()):
        iid, mask, _ign = line.split(",")
        ign = f"{mask[:-4]}_allbg.png"
        m = cv2.imread(os.path.join(images, mask), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(os.path.join(images, ign), 255 - m)
        rows.append(f"{iid},{mask},{ign if not any(r.startswith(iid + ',') for r in rows) else ''}")
    open(loc, "w").write("\n".join(rows) + "\n")
    cams = str(tmp_path / "cams")
    _random_cams(meta, images, cams)
    out = str(tmp_path / "o")
    with caplog.at_level(logging.WARNING):
        rc = main(["-q", "score", "--dataset", "openimages", "--root", meta, "--images", images,
                   "--cams", cams, "--out", out])
    s = pd.read_csv(os.path.join(out, "summary.csv")).iloc[0]
    n = s.n_images
    assert rc == 0 and np.isnan(s.pxap) and np.isnan(s.piou) and s.n_masks_no_background == n
    msgs = " | ".join(r.getMessage() for r in caplog.records)
    assert "no background pixel" in msgs and "PxAP undefined" in msgs


def test_openimages_all_ignored_and_empty_masks_are_counted(openimages, tmp_path, caplog):
    meta, images = openimages
    loc = os.path.join(meta, "localization.txt")
    lines = open(loc).read().split()
    first_ids = list(dict.fromkeys(ln.split(",")[0] for ln in lines))
    h, w = 40, 50
    cv2.imwrite(os.path.join(images, "empty.png"), np.zeros((h, w), np.uint8))
    cv2.imwrite(os.path.join(images, "everything.png"), np.full((h, w), 255, np.uint8))
    keep = [ln for ln in lines if ln.split(",")[0] not in first_ids[:2]]
    keep += [f"{first_ids[0]},empty.png,", f"{first_ids[1]},empty.png,everything.png"]
    open(loc, "w").write("\n".join(keep) + "\n")
    cams = str(tmp_path / "cams")
    _random_cams(meta, images, cams)
    out = str(tmp_path / "o")
    with caplog.at_level(logging.WARNING):
        assert main(["-q", "score", "--dataset", "openimages", "--root", meta, "--images", images,
                     "--cams", cams, "--out", out]) == 0
    s = pd.read_csv(os.path.join(out, "summary.csv")).iloc[0]
    assert (s.n_masks_empty, s.n_masks_all_ignored, s.n_masks_no_background) == (1, 1, 0)
    assert 0 < s.pxap < 100
    msgs = " | ".join(r.getMessage() for r in caplog.records)
    assert first_ids[0] in msgs and first_ids[1] in msgs and "every pixel ignored" in msgs


def test_a_dataset_without_masks_has_blank_mask_counts(tmp_path):
    from cub_fixture import make_cub

    make_cub(str(tmp_path / "cub"), n_per_class=1)
    out = str(tmp_path / "o")
    assert main(["-q", "evaluate", "--root", str(tmp_path / "cub"), "--backbone", "tiny_test_net",
                 "--weights", "random", "--out", out]) == 0
    s = pd.read_csv(os.path.join(out, "summary.csv")).iloc[0]
    assert np.isnan(s.n_masks_empty) and np.isnan(s.pxap)
