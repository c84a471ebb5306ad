"""Masks as ground truth through the real entry points: OpenImages30k metadata (`wsol score`
without images, `wsol evaluate` with them), CUB segmentations (the synthetic set writes them),
folder datasets with a mask column; PxAP checked against the wsolevaluation re-statement."""
import os

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import wsoleval_mask_reference as ref
from cub_fixture import make_cub
from wsol.cli import main
from wsol.datasets.base import build_dataset
from wsol.datasets.masks import load_gt_mask
from wsol.datasets.synthetic import make_synthetic
from wsol.evaluation.scoring import SUMMARY_COLUMNS
from wsol.localize.maps import thresholds


def make_openimages(root: str, n: int = 6, seed: int = 0):
    """An OpenImages30k-layout tree: metadata/test/*.txt, images/test/*.jpg and masks beside
    them (several instances for some images, empty ignore for some). Returns (meta, images)."""
    rng = np.random.default_rng(seed)
    meta, img_root = os.path.join(root, "metadata", "test"), os.path.join(root, "OpenImages")
    os.makedirs(meta)
    os.makedirs(os.path.join(img_root, "test"))
    ids, labels, sizes, loc = [], [], [], []
    for i in range(n):
        w, h = int(rng.integers(150, 260)), int(rng.integers(120, 240))
        iid = f"test/{i:04x}abcd.jpg"
        img = (rng.random((h, w, 3)) * 80).astype(np.uint8)
        insts = []
        for k in range(1 + i % 3):
            m = np.zeros((h, w), np.uint8)
            x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
            m[y0:y0 + h // 3, x0:x0 + w // 4] = 255
            img[m > 0] = (220, 60 + 40 * (i % 3), 30)
            name = f"test/{i:04x}abcd_m{k}.png"
            cv2.imwrite(os.path.join(img_root, name), m)
            insts.append(name)
        ignore = ""
        if i % 2 == 0:
            g = np.zeros((h, w), np.uint8)
            g[h // 2:, w // 2:] = 1       # an ignore box (any non-zero value counts)
            ignore = f"test/{i:04x}abcd_ignore.png"
            cv2.imwrite(os.path.join(img_root, ignore), g)
        Image.fromarray(img).save(os.path.join(img_root, iid), quality=95)
        ids.append(iid)
        labels.append(f"{iid},{i % 3}")
        sizes.append(f"{iid},{w},{h}")
        loc.extend(f"{iid},{p},{ignore if k == 0 else ''}" for k, p in enumerate(insts))
    for name, lines in (("image_ids.txt", ids), ("class_labels.txt", labels), ("image_sizes.txt", sizes),
                        ("localization.txt", loc)):
        with open(os.path.join(meta, name), "w") as f:
            f.write("\n".join(lines) + "\n")
    return meta, img_root


def reference_pxap(ds, cams_dir, taus, mask_root):
    ev = ref.MaskEvaluator(taus)
    rows = {}
    with open(os.path.join(ds.root, "localization.txt")) as f:
        for line in f:
            iid, m, ign = line.rstrip("\n").split(",")
            rows.setdefault(iid, ([], ign))[0].append(m)
    for s in ds.samples:
        paths, ign = rows[s.image_id]
        ev.accumulate(np.load(os.path.join(cams_dir, s.image_id + ".npy")), ref.get_mask(mask_root, paths, ign))
    return ev.compute(), ev.compute_piou()


@pytest.fixture(scope="module")
def oi(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("oi"))
    meta, images = make_openimages(root)
    out, cams = os.path.join(root, "eval"), os.path.join(root, "cams")
    rc = main(["-q", "evaluate", "--dataset", "openimages", "--root", meta, "--images", images,
               "--backbone", "tiny_test_net", "--weights", "random", "--batch-size", "4",
               "--out", out, "--save-cams", cams])
    assert rc == 0
    return root, meta, images, out, cams


def test_openimages_masks_equal_the_reference_reader(oi):
    _, meta, images, _, _ = oi
    ds = build_dataset("openimages", meta, "test", images=images)
    assert ds.has_masks and not ds.has_boxes
    n_multi = 0
    with open(os.path.join(meta, "localization.txt")) as f:
        rows = {}
        for line in f:
            iid, m, ign = line.rstrip("\n").split(",")
            rows.setdefault(iid, ([], ign))[0].append(m)
    for s in ds.samples:
        paths, ign = rows[s.image_id]
        n_multi += len(paths) > 1
        got = load_gt_mask(s.mask)
        assert np.array_equal(got, ref.get_mask(images, paths, ign)), s.image_id
        assert (got == 255).any() == bool(ign)
    assert n_multi >= 2


def test_openimages_evaluate_gives_pxap_equal_to_the_reference(oi):
    _, meta, images, out, cams = oi
    s = pd.read_csv(os.path.join(out, "summary.csv")).iloc[0]
    ds = build_dataset("openimages", meta, "test", images=images)
    pxap, piou = reference_pxap(ds, cams, thresholds(0.01), images)
    # summary.csv keeps 10 significant digits; the Python API gives the full float
    assert s.pxap == pytest.approx(pxap, rel=1e-9) and s.piou == pytest.approx(piou, rel=1e-9)
    from wsol.engine.run import EvalConfig, score

    api = score(cams, EvalConfig(dataset="openimages", root=meta, dataset_options={"masks": images},
                                 progress=False)).summary.iloc[0]
    assert abs(api.pxap - pxap) <= 1e-9 and abs(api.piou - piou) <= 1e-9
    assert np.isnan(s.maxboxacc_v2) and np.isnan(s.gt_known_loc)   # no boxes: box metrics not defined
    assert s.pointing_region == "mask"
    curves = pd.read_csv(os.path.join(out, "curves.csv"))
    px = curves[curves["mode"] == "pixel"]
    assert len(px) == 101 and px.recall.iloc[-1] == 1.0
    per = pd.read_csv(os.path.join(out, "per_image.csv"))
    assert per.pointing_hit.mean() * 100 == pytest.approx(s.pointing_game)
    assert list(per.columns[-2:]) == ["status", "reason"]


def test_openimages_score_needs_no_images(oi, tmp_path):
    _, meta, images, out, cams = oi
    rc = main(["-q", "score", "--cams", cams, "--dataset", "openimages", "--root", meta,
               "--dataset-option", f"masks={images}", "--out", str(tmp_path / "s")])
    assert rc == 0
    a = pd.read_csv(os.path.join(out, "summary.csv")).iloc[0]
    b = pd.read_csv(tmp_path / "s" / "summary.csv").iloc[0]
    for c in ("pxap", "piou", "piou_tau", "pointing_game", "energy_pointing_game"):
        assert a[c] == b[c], c


def test_openimages_bad_input_names_the_file(oi, tmp_path, capsys):
    root, meta, images, _, cams = oi
    # no mask root
    assert main(["-q", "score", "--cams", cams, "--dataset", "openimages", "--root", meta,
                 "--out", str(tmp_path / "a")]) == 2
    assert "masks=DIR" in capsys.readouterr().err
    # a missing mask file
    bad = tmp_path / "meta"
    bad.mkdir()
    for n in ("image_ids.txt", "class_labels.txt", "image_sizes.txt"):
        (bad / n).write_text(open(os.path.join(meta, n)).read())
    lines = open(os.path.join(meta, "localization.txt")).read().splitlines()
    first = lines[0].split(",")
    (bad / "localization.txt").write_text("\n".join([f"{first[0]},test/nope.png,"] + lines[1:]) + "\n")
    assert main(["-q", "score", "--cams", cams, "--dataset", "openimages", "--root", str(bad),
                 "--dataset-option", f"masks={images}", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert "nope.png" in err and "missing mask file" in err and len(err.splitlines()) == 1
    # a second ignore mask for one image: file and line
    iid = first[0]
    (bad / "localization.txt").write_text("\n".join(lines + [f"{iid},{first[1]},test/x.png"]) + "\n")
    assert main(["-q", "score", "--cams", cams, "--dataset", "openimages", "--root", str(bad),
                 "--dataset-option", f"masks={images}", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert f"localization.txt:{len(lines) + 1}:" in err and "second ignore mask" in err


# ----------------------------------------------------------------------------- CUB segmentations
@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("syn") / "syn")
    make_synthetic(root, n_classes=3, n_train_per_class=1, n_test_per_class=3, progress=False)
    return root


def test_synthetic_writes_the_exact_object_masks(syn):
    from wsol.datasets.synthetic import render_sample

    ds = build_dataset("cub", syn, "all")
    assert ds.has_masks
    s = ds.samples[0]
    png = cv2.imread(s.mask.paths[0], cv2.IMREAD_GRAYSCALE)
    _, mask, _ = render_sample(np.random.default_rng([0, 0, 1]), 0, 3)
    assert np.array_equal(png > 0, mask) and set(np.unique(png)) <= {0, 255}
    x0, y0, x1, y1 = s.boxes[0]
    ys, xs = np.nonzero(png)
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x0, y0, x1, y1)


def test_cub_with_segmentations_evaluate_and_score(syn, tmp_path):
    out, cams = str(tmp_path / "e"), str(tmp_path / "cams")
    assert main(["-q", "evaluate", "--dataset", "cub", "--root", syn, "--backbone", "tiny_test_net",
                 "--weights", "random", "--out", out, "--save-cams", cams, "--pointing-tolerance", "15"]) == 0
    s = pd.read_csv(os.path.join(out, "summary.csv")).iloc[0]
    assert list(pd.read_csv(os.path.join(out, "summary.csv")).columns[:len(SUMMARY_COLUMNS)]) == SUMMARY_COLUMNS
    assert 0 < s.pxap < 100 and 0 < s.piou <= 100 and not np.isnan(s.maxboxacc_v2)
    assert s.pointing_region == "mask" and s.pointing_tolerance == 15
    ds = build_dataset("cub", syn, "test")
    ev = ref.MaskEvaluator(thresholds(0.01))
    for smp in ds.samples:
        g = (ref.load_mask_image(smp.mask.paths[0]) > 127.5).astype(np.uint8)
        ev.accumulate(np.load(os.path.join(cams, smp.image_id + ".npy")), g)
    assert s.pxap == pytest.approx(ev.compute(), rel=1e-9)
    # energy share is measured in the boxes: recompute one image by hand
    per = pd.read_csv(os.path.join(out, "per_image.csv"))
    smp = ds.samples[0]
    m = np.load(os.path.join(cams, smp.image_id + ".npy")).astype(np.float64)
    from PIL import Image as _I

    w, h = _I.open(smp.path).size
    x0, y0, x1, y1 = (int(v * 224 / d) for v, d in zip(smp.boxes[0], (w, h, w, h)))
    assert per.energy_in_gt[0] == pytest.approx(m[y0:y1 + 1, x0:x1 + 1].sum() / m.sum())
    # segmentations=off: no masks, no pxap
    out2 = str(tmp_path / "s")
    assert main(["-q", "score", "--cams", cams, "--dataset", "cub", "--root", syn,
                 "--dataset-option", "segmentations=off", "--out", out2]) == 0
    s2 = pd.read_csv(os.path.join(out2, "summary.csv")).iloc[0]
    assert np.isnan(s2.pxap) and s2.pointing_region == "boxes"
    assert "pixel" not in set(pd.read_csv(os.path.join(out2, "curves.csv"))["mode"])


def test_cub_soft_segmentations_are_binarized_at_the_majority(tmp_path):
    root = str(tmp_path / "CUB_200_2011")
    recs = make_cub(root, n_per_class=1)
    seg = tmp_path / "segmentations"          # beside the CUB folder, as the archive unpacks
    for rel, *_ in recs:
        p = seg / (os.path.splitext(rel)[0] + ".png")
        p.parent.mkdir(parents=True, exist_ok=True)
        g = np.zeros((60, 80), np.uint8)
        g[:, :20], g[:, 20:40], g[:, 40:60] = 102, 127, 153   # 2/5, ~1/2, 3/5 of annotators
        cv2.imwrite(str(p), g)
    ds = build_dataset("cub", root, "test")
    m = load_gt_mask(ds.samples[0].mask)
    assert m[:, :112].max() == 0 and m[:, 112:168].min() == 1 and m[:, 168:].max() == 0
    ds2 = build_dataset("cub", root, "test", seg_threshold=100)
    assert load_gt_mask(ds2.samples[0].mask)[:, :56].min() == 1


def test_folder_with_a_mask_column(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["image,label,x0,y0,x1,y1,mask,ignore"]
    for i in range(3):
        img = (rng.random((100, 120, 3)) * 255).astype(np.uint8)
        Image.fromarray(img).save(tmp_path / f"im{i}.png")
        m = np.zeros((100, 120), np.uint8)
        m[10:50, 20:60] = 255
        cv2.imwrite(str(tmp_path / f"m{i}.png"), m)
        rows.append(f"im{i}.png,{i % 2},20,10,59,49,m{i}.png,")
    rows.append("im0.png,0,70,60,90,80,m0.png,")    # second box of im0, same mask
    (tmp_path / "boxes.csv").write_text("\n".join(rows) + "\n")
    ds = build_dataset("folder", str(tmp_path))
    assert ds.has_masks and len(ds.samples[0].mask.paths) == 1 and len(ds.samples[0].boxes) == 2
    out = str(tmp_path / "out")
    assert main(["-q", "evaluate", "--dataset", "folder", "--root", str(tmp_path), "--backbone", "tiny_test_net",
                 "--weights", "random", "--out", out]) == 0
    s = pd.read_csv(os.path.join(out, "summary.csv")).iloc[0]
    assert 0 < s.pxap <= 100


def test_report_shows_the_pixel_pr_curve(oi):
    _, meta, images, out, cams = oi
    assert main(["-q", "report", out, "--cams", cams]) == 0
    html = open(os.path.join(out, "report.html"), encoding="utf-8").read()
    assert "Pixel precision-recall (masks)" in html and 'data-metric="pxap"' in html
    assert "BoxAcc vs threshold" not in html        # OpenImages has no boxes


def test_check_data_finds_missing_mask_files(oi, tmp_path, capsys):
    _, meta, images, _, _ = oi
    assert main(["check-data", "--dataset", "openimages", "--root", meta, "--dataset-option", f"images={images}"]) == 0
    out = capsys.readouterr().out
    assert "masks: 6 images with masks, 0 mask files missing" in out and "no box" not in out
    import shutil

    copy = tmp_path / "OpenImages"
    shutil.copytree(images, copy)
    victim = sorted((copy / "test").glob("*_m1.png"))[0]
    victim.unlink()
    assert main(["check-data", "--dataset", "openimages", "--root", meta, "--dataset-option", f"images={copy}"]) == 1
    out = capsys.readouterr().out
    assert "1 missing mask files" in out and victim.name in out and "FAILED" in out
