"""Reports: the overlay picture, the figures, the one-file HTML run/suite reports, and the
`wsol report` / `wsol overlay` commands."""
import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from wsol.cli import main
from wsol.report import plots
from wsol.report.html import select_gallery, write_report, write_suite_report
from wsol.report.overlay import GT_COLOR, PRED_COLOR, overlay_image, save_png, scale_pred_box

from shared_data import REPO  # noqa: E402
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
IMG_SRC = re.compile(r'<img\b[^>]*\bsrc="([^"]*)"', re.S)


def _is_png(b: bytes) -> Image.Image:
    assert b[:8] == PNG_MAGIC
    im = Image.open(io.BytesIO(b))
    im.load()
    assert im.format == "PNG" and im.width > 0 and im.height > 0
    return im


def _decode_src(src: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix), src[:60]
    return _is_png(base64.b64decode(src[len(prefix):]))


# ------------------------------------------------------------------------------------------
# overlay

def test_overlay_draws_boxes_at_scaled_positions_and_blends_heatmap():
    h, w = 300, 400
    img = np.full((h, w, 3), 128, np.uint8)
    hm = np.zeros((224, 224), np.float32)
    hm[:, 150:] = 1.0                      # hot on the right (in image pixels: x > ~268)
    gt = np.array([[40, 50, 150, 200]])    # original pixels
    pred = [120, 20, 200, 100]             # 224 grid -> x*400/224, y*300/224
    out = overlay_image(img, hm, gt, pred, iou=0.42, label_text="")
    assert out.shape == img.shape and out.dtype == np.uint8
    assert (img == 128).all()              # input untouched
    px0, py0, px1, py1 = scale_pred_box(pred, w, h)
    assert (px0, py0, px1, py1) == (214, 27, 357, 134)
    ymid, xmid = (py0 + py1) // 2, (px0 + px1) // 2
    for y, x in [(ymid, px0), (ymid, px1), (py1, xmid)]:  # left, right, bottom edges
        assert tuple(out[y, x]) == PRED_COLOR, (y, x, out[y, x])
    assert tuple(out[ymid, px0 + 10]) != PRED_COLOR        # inside is not filled
    gy = (50 + 200) // 2
    for y, x in [(gy, 40), (gy, 150), (50, 95), (200, 95)]:
        assert tuple(out[y, x]) == GT_COLOR, (y, x, out[y, x])
    # far from the boxes: hot side is blended red, cold side blue, both differ from the image
    hot, cold = out[280, 390].astype(int), out[280, 10].astype(int)
    assert (hot != 128).any() and (cold != 128).any()
    assert hot[0] > hot[2] + 40 and cold[2] > cold[0] + 40
    # the IoU is written in white on red near the predicted box
    near = out[max(0, py0 - 30):py1 + 30, px0:px1].reshape(-1, 3).astype(int)
    assert ((near > 220).all(axis=1)).sum() > 10


def test_overlay_without_heatmap_keeps_the_image():
    img = np.random.default_rng(0).integers(0, 255, (120, 90, 3), dtype=np.uint8)
    out = overlay_image(img, None, np.array([[10, 10, 40, 40]]), None, None, "")
    assert (out[80:, 60:] == img[80:, 60:]).all()
    assert tuple(out[25, 10]) == GT_COLOR


def test_overlay_rejects_non_rgb(tmp_path):
    from wsol.errors import WsolError

    with pytest.raises(WsolError):
        overlay_image(np.zeros((10, 10), np.uint8), None, None, None, None, "")
    p = save_png(str(tmp_path / "a" / "b.png"), np.zeros((5, 7, 3), np.uint8))
    assert Image.open(p).size == (7, 5)


# ------------------------------------------------------------------------------------------
# plots

def _curves(peak: float = 60.0) -> pd.DataFrame:
    taus = np.arange(0, 1, 0.01)
    parts = []
    for mode in ("all", "largest"):
        for k, thr in enumerate((0.3, 0.5, 0.7)):
            acc = np.clip(peak - 20 * k - 200 * (taus - 0.3) ** 2, 0, 100)
            parts.append(pd.DataFrame({"mode": mode, "iou_threshold": thr, "tau": taus, "box_acc": acc}))
    return pd.concat(parts, ignore_index=True)


def test_plots_return_png():
    _is_png(plots.plot_boxacc_curves(_curves()))
    per = pd.DataFrame({"label": np.repeat(np.arange(60), 2), "gt_known_correct": [True, False] * 60})
    pc = plots.per_class_accuracy(per, [f"{i:03d}.Class_{i}" for i in range(60)])
    assert list(pc.columns) == ["label", "name", "n_images", "accuracy"]
    assert pc.name[3] == "Class 3" and (pc.accuracy == 50).all()
    _is_png(plots.plot_per_class(pc))             # > 40 classes: worst and best 20
    _is_png(plots.plot_per_class(pc.head(5)))
    suite = pd.DataFrame({"dataset": ["cub", "cub", "imagenet"], "backbone": ["resnet18", "resnet50", "resnet18"],
                          "method": ["cam", "cam", "gradcam"], "maxboxacc_v2": [50.0, 61.5, float("nan")]})
    _is_png(plots.plot_suite_bars(suite))


def test_select_gallery_best_worst_random_fixed_seed():
    per = pd.DataFrame({"image_id": [f"im{i:02d}.jpg" for i in range(20)], "iou": np.linspace(0, 0.95, 20)})
    sel = select_gallery(per, 3)
    assert list(sel.group) == ["best"] * 3 + ["worst"] * 3 + ["random"] * 3
    assert list(sel[sel.group == "best"].image_id) == ["im19.jpg", "im18.jpg", "im17.jpg"]
    assert list(sel[sel.group == "worst"].image_id) == ["im00.jpg", "im01.jpg", "im02.jpg"]
    assert sel.image_id.is_unique
    assert list(select_gallery(per, 3).image_id) == list(sel.image_id)  # same seed, same picks
    small = select_gallery(per.head(4), 3)
    assert len(small) == 4 and small.image_id.is_unique


# ------------------------------------------------------------------------------------------
# run and suite reports on a real (tiny) run

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    root, out = str(base / "syn"), str(base / "run")
    assert main(["make-synthetic", "--out", root, "--classes", "3", "--train-per-class", "1",
                 "--test-per-class", "4", "--quiet"]) == 0
    assert main(["-q", "evaluate", "--dataset", "cub", "--root", root, "--backbone", "resnet18",
                 "--weights", "random", "--batch-size", "12", "--out", out,
                 "--save-cams", os.path.join(out, "cams")]) == 0
    with open(os.path.join(out, "run.json"), "w") as f:
        json.dump({"dataset": "cub", "root": root, "split": "test", "dataset_options": {},
                   "backbone": "resnet18", "weights": "random", "method": "cam"}, f)
    return base, root, out


def test_run_report_is_one_file_with_numbers_and_gallery(run):
    base, root, out = run
    path = write_report(out, n_gallery=2)
    assert path == os.path.join(out, "report.html")
    text = open(path, encoding="utf-8").read()
    s = pd.read_csv(os.path.join(out, "summary.csv")).iloc[0]
    for col in ("maxboxacc_v2", "maxboxacc", "gt_known_loc", "top1_loc", "top1_cls"):
        assert f"{s[col]:.2f}" in text, col
    assert "resnet18" in text and "Red Striped Star" in text
    srcs = IMG_SRC.findall(text)
    assert srcs and all(src.startswith("data:image/png;base64,") for src in srcs)
    for src in srcs:
        _decode_src(src)
    gallery = re.findall(r'<img class="gallery"[^>]*src="([^"]*)"', text)
    assert len(gallery) == 6                       # 2 best + 2 worst + 2 random of 12 images
    # BoxAcc curves, pixel precision-recall (the synthetic set has masks), per-class
    assert len(re.findall(r'<img class="plot"', text)) == 3
    # nothing outside the file is referenced
    assert not re.search(r'(src|href)="(?!data:|#)', text)
    assert "<link" not in text and "<script" not in text
    # a gallery picture has the image's aspect and (for the hot map) colours of the overlay
    im = _decode_src(gallery[0])
    assert max(im.size) <= 304


def test_run_report_root_and_cams_missing(run, tmp_path):
    base, root, out = run
    bare = tmp_path / "bare"
    bare.mkdir()
    for n in ("summary.csv", "per_image.csv", "curves.csv", "timings.csv"):
        shutil.copy(os.path.join(out, n), bare / n)
    text = open(write_report(str(bare), n_gallery=2), encoding="utf-8").read()
    assert "No gallery" in text and "--root" in text and 'class="gallery"' not in text
    # with a root but no heatmaps: boxes only, said so
    text = open(write_report(str(bare), root=root, n_gallery=1, out_html=str(tmp_path / "r.html")),
                encoding="utf-8").read()
    assert "heatmaps absent" in text and len(re.findall(r'<img class="gallery"', text)) == 3


def test_suite_report_lists_runs_and_links_reports(run, tmp_path):
    base, root, out = run
    suite = tmp_path / "suite"
    (suite / "runs").mkdir(parents=True)
    shutil.copytree(out, suite / "runs" / "cub-resnet18-cam")
    (suite / "runs" / "cub-resnet18-cam" / "report.html").write_text("<html></html>")
    rows = pd.DataFrame({"run_id": ["cub-resnet18-cam", "cub-resnet50-cam", "cub-resnet18-gradcam"],
                         "dataset": "cub", "backbone": ["resnet18", "resnet50", "resnet18"],
                         "method": ["cam", "cam", "gradcam"], "maxboxacc_v2": [41.25, 55.5, float("nan")],
                         "status": ["ok", "ok", "failed"]})
    rows.to_csv(suite / "summary.csv", index=False)
    path = write_suite_report(str(suite))
    text = open(path, encoding="utf-8").read()
    for rid in rows.run_id:
        assert rid in text
    assert "41.25" in text and "55.50" in text and "failed" in text
    assert 'href="runs/cub-resnet18-cam/report.html"' in text
    assert text.count('href="') == 1
    srcs = IMG_SRC.findall(text)
    assert len(srcs) == 1
    _decode_src(srcs[0])


def test_cli_report_run_suite_and_errors(run, tmp_path, capsys):
    base, root, out = run
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("wsol: error:") and "summary.csv" in err and "\n" not in err
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err
    dest = tmp_path / "x" / "rep.html"
    assert main(["-q", "report", out, "--gallery", "1", "--out", str(dest)]) == 0
    assert dest.is_file() and f"wrote {dest}" in capsys.readouterr().out
    suite = tmp_path / "s"
    suite.mkdir()
    pd.DataFrame({"run_id": ["a"], "dataset": ["cub"], "backbone": ["resnet18"], "method": ["cam"],
                  "maxboxacc_v2": [12.0], "status": ["ok"]}).to_csv(suite / "summary.csv", index=False)
    assert main(["-q", "report", str(suite)]) == 0
    assert "wsol suite report" in (suite / "report.html").read_text()


# ------------------------------------------------------------------------------------------
# wsol overlay

def test_imagenet_class_list_matches_the_index_order():
    """The shipped names are in sorted-WNID (class index) order: spot checks of known
    index/name pairs, and a truncated or missing list degrades to indices with a warning."""
    from wsol.datasets import class_names as cn

    names = cn.imagenet_class_names()
    assert names[0] == "tench" and names[207] == "golden retriever" and names[999] == "toilet tissue"
    assert len(set(names)) > 990  # a handful of real duplicates (e.g. 'crane', 'maillot')


def test_imagenet_class_list_missing_or_short_warns(tmp_path, monkeypatch, caplog):
    from wsol.datasets import class_names as cn

    short = tmp_path / "short.txt"
    short.write_text("tench\ngoldfish\n")
    monkeypatch.setattr(cn, "IMAGENET_CLASSES_FILE", str(short))
    assert cn.imagenet_class_names() == [] and "2 names instead of 1000" in caplog.text
    monkeypatch.setattr(cn, "IMAGENET_CLASSES_FILE", str(tmp_path / "absent.txt"))
    assert cn.imagenet_class_names() == [] and "absent.txt: missing class names file" in caplog.text


def test_cli_overlay_writes_png_and_prints_top5(run, tmp_path, capsys):
    base, root, out = run
    image = sorted((base / "syn" / "images").rglob("*.jpg"))[0]
    dest = tmp_path / "ov.png"
    assert main(["-q", "overlay", "--image", str(image), "--backbone", "resnet18", "--weights", "random",
                 "--gt-box", "10", "10", "60", "60", "--out", str(dest)]) == 0
    text = capsys.readouterr().out
    ranks = re.findall(r"^\s+([1-5])\.\s+\S+%\s+(\d+)\s+(.+)$", text, re.M)
    assert [r[0] for r in ranks] == ["1", "2", "3", "4", "5"]
    from wsol.datasets.class_names import imagenet_class_names

    names = imagenet_class_names()
    assert all(names[int(c)] == n for _, c, n in ranks)
    assert "IoU" in text and f"wrote {dest}" in text
    im = Image.open(dest)
    assert im.format == "PNG" and im.size == Image.open(image).size
    # a chosen class by name, and a bad one
    assert main(["-q", "overlay", "--image", str(image), "--backbone", "resnet18", "--weights", "random",
                 "--class", "golden retriever", "--out", str(tmp_path / "g.png")]) == 0
    assert "class 207 (golden retriever)" in capsys.readouterr().out
    assert main(["-q", "overlay", "--image", str(image), "--backbone", "resnet18", "--weights", "random",
                 "--class", "1000", "--out", str(tmp_path / "h.png")]) == 2
    assert "outside the classifier head" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------
# browser

@pytest.mark.slow
def test_report_renders_in_headless_chromium(run, tmp_path):
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("/usr/bin/chromium absent (apt-get install -y chromium)")
    base, root, out = run
    html = write_report(out, n_gallery=2, out_html=str(tmp_path / "report.html"))
    shot = tmp_path / "shot.png"
    r = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "check_report_browser.py"),
                        "--report", html, "--screenshot", str(shot)],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": REPO})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all 8 images loaded" in r.stdout
    assert Image.open(shot).size[0] > 0
