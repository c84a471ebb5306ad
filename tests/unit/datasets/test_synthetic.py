"""The procedural CUB-layout dataset: formats, determinism, tight boxes, spread, cache."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import types

import numpy as np
import pytest
from PIL import Image

from wsol.datasets import synthetic as syn
from wsol.datasets.base import Sample, WsolDataset, build_dataset
from wsol.errors import DataError, WsolError

from shared_data import REPO

SMALL = dict(n_classes=3, n_train_per_class=2, n_test_per_class=2, seed=7)
FILES = ("images.txt", "image_class_labels.txt", "classes.txt", "train_test_split.txt",
         "bounding_boxes.txt")


def _lines(root: str, name: str) -> list:
    with open(os.path.join(root, name), encoding="utf-8") as f:
        text = f.read()
    assert text.endswith("\n") and "\r" not in text
    return text.splitlines()


def read_local(root: str, split: str) -> WsolDataset:
    """A minimal CUB reader (the real one is wsol.datasets.cub, written elsewhere)."""
    paths = dict(l.split(" ", 1) for l in _lines(root, "images.txt"))
    labels = dict(l.split() for l in _lines(root, "image_class_labels.txt"))
    flags = dict(l.split() for l in _lines(root, "train_test_split.txt"))
    boxes = {l.split()[0]: [float(v) for v in l.split()[1:]] for l in _lines(root, "bounding_boxes.txt")}
    names = [l.split(" ", 1)[1].split(".", 1)[1] for l in _lines(root, "classes.txt")]
    want = "1" if split == "train" else "0"
    samples = []
    for i, rel in paths.items():
        if flags[i] != want:
            continue
        x, y, w, h = boxes[i]
        samples.append(Sample(rel, os.path.join(root, "images", rel), int(labels[i]) - 1,
                              [[x, y, x + w, y + h]]))
    return WsolDataset("cub", split, root, os.path.join(root, "images"), samples, names)


@pytest.fixture(scope="module")
def small_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("syn") / "a")
    return syn.make_synthetic(root, progress=False, **SMALL)


def test_files_and_formats(small_root):
    n_cls, n_per = SMALL["n_classes"], SMALL["n_train_per_class"] + SMALL["n_test_per_class"]
    n = n_cls * n_per
    classes = _lines(small_root, "classes.txt")
    assert len(classes) == n_cls
    names = []
    for k, line in enumerate(classes, 1):
        m = re.fullmatch(r"(\d+) (\d{3})\.([A-Z][a-z]+(?:_[A-Z][a-z]+)+)", line)
        assert m and int(m[1]) == k and int(m[2]) == k, line
        names.append(m[3])
    assert len(set(names)) == n_cls

    images = _lines(small_root, "images.txt")
    labels = _lines(small_root, "image_class_labels.txt")
    splits = _lines(small_root, "train_test_split.txt")
    boxes = _lines(small_root, "bounding_boxes.txt")
    assert len(images) == len(labels) == len(splits) == len(boxes) == n
    train_per_class = [0] * n_cls
    for i, (im, lb, sp, bx) in enumerate(zip(images, labels, splits, boxes), 1):
        m = re.fullmatch(r"(\d+) (\d{3})\.(\w+)/(\w+)_(\d{4})\.jpg", im)
        assert m and int(m[1]) == i, im
        c = int(m[2])
        assert m[3] == m[4] == names[c - 1]
        assert lb == f"{i} {c}"
        assert re.fullmatch(rf"{i} [01]", sp), sp
        train_per_class[c - 1] += int(sp.split()[1])
        assert re.fullmatch(rf"{i}( \d+\.0){{4}}", bx), bx
        assert os.path.isfile(os.path.join(small_root, "images", im.split()[1]))
    assert train_per_class == [SMALL["n_train_per_class"]] * n_cls
    assert os.path.isfile(os.path.join(small_root, syn.STAMP_NAME))


def test_boxes_inside_and_sized(small_root):
    sizes = set()
    for split in ("train", "test"):
        for s in read_local(small_root, split):
            with Image.open(s.path) as im:
                W, H = im.size
            sizes.add((W, H))
            x0, y0, x1, y1 = s.boxes[0]
            assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H
            assert syn.MIN_AREA <= (x1 - x0) * (y1 - y0) / (W * H) <= syn.MAX_AREA
    assert len(sizes) > 1  # image sizes vary


def test_boxes_are_tight_masks_of_the_written_images(small_root):
    # Re-render each image from its documented seed: its mask's tight box is the GT box.
    ds = read_local(small_root, "train").samples + read_local(small_root, "test").samples
    for s in ds:
        c, k = s.label, int(s.image_id[-8:-4])
        img, mask, label = syn.render_sample(np.random.default_rng([SMALL["seed"], c, k]), c,
                                             SMALL["n_classes"])
        assert label == c and mask.dtype == bool and mask.shape == img.shape[:2]
        with Image.open(s.path) as im:
            assert im.size == (img.shape[1], img.shape[0])
            jpg = np.asarray(im.convert("RGB"), dtype=np.int16)
        assert np.abs(jpg - img).mean() < 6  # the file is this rendering (JPEG q95)
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        x0, y0, x1, y1 = s.boxes[0]
        assert (x0, y0, x1, y1) == (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
        assert mask.sum() / ((x1 - x0) * (y1 - y0)) > 0.3  # solid-ish object


def test_render_box_equals_mask_box():
    rng = np.random.default_rng(3)
    for label in range(8):
        _, mask, _ = syn.render_sample(rng, label)
        x, y, w, h = syn.mask_box(mask)
        assert mask[y, x:x + w].any() and mask[y + h - 1, x:x + w].any()
        assert mask[y:y + h, x].any() and mask[y:y + h, x + w - 1].any()
        assert mask.sum() == mask[y:y + h, x:x + w].sum()


def test_deterministic_bytes(tmp_path, small_root):
    again = syn.make_synthetic(str(tmp_path / "b"), progress=False, **SMALL)
    other = syn.make_synthetic(str(tmp_path / "c"), progress=False, **{**SMALL, "seed": 8})
    rels = [l.split()[1] for l in _lines(small_root, "images.txt")]

    def read(root, rel):
        with open(os.path.join(root, rel), "rb") as f:
            return f.read()

    for name in FILES + (syn.STAMP_NAME,):
        assert read(small_root, name) == read(again, name)
    for rel in rels:
        assert read(small_root, "images/" + rel) == read(again, "images/" + rel)
    assert read(small_root, "bounding_boxes.txt") != read(other, "bounding_boxes.txt")
    assert all(read(small_root, "images/" + r) != read(other, "images/" + r) for r in rels)


def test_centres_spread_over_the_image():
    rng = np.random.default_rng(0)
    centres = []
    for i in range(200):
        _, mask, _ = syn.render_sample(rng, i % 3, 3)
        H, W = mask.shape
        x, y, w, h = syn.mask_box(mask)
        centres.append(((x + w / 2) / W, (y + h / 2) / H))
    c = np.array(centres)
    quadrants = {(cx >= 0.5, cy >= 0.5) for cx, cy in c}
    assert len(quadrants) == 4
    assert (c.std(0) > 0.15).all(), c.std(0)
    # most centres are far from the image centre (a centre prior would miss them)
    assert (np.hypot(c[:, 0] - 0.5, c[:, 1] - 0.5) > 0.15).mean() > 0.5


def test_distractors_present_and_classes_distinct():
    names = syn.class_names(8)
    assert len(set(names)) == 8
    specs = syn.class_specs(8)
    assert len({s[0] for s in specs}) == 8 and len({s[2] for s in specs}) == 8
    assert len(set(syn.class_names(256))) == 256
    with pytest.raises(ValueError):
        syn.class_specs(257)


def test_is_current(small_root, tmp_path):
    assert syn.synthetic_is_current(small_root, **SMALL)
    assert not syn.synthetic_is_current(small_root, **{**SMALL, "seed": 8})
    assert not syn.synthetic_is_current(small_root, **{**SMALL, "n_classes": 4})
    assert not syn.synthetic_is_current(small_root)  # defaults differ
    assert not syn.synthetic_is_current(str(tmp_path))
    with pytest.raises(TypeError):
        syn.synthetic_is_current(small_root, classes=3)


def test_refuses_foreign_folder_and_bad_args(tmp_path):
    (tmp_path / "images.txt").write_text("1 001.A/a.jpg\n")
    with pytest.raises(DataError):
        syn.make_synthetic(str(tmp_path), progress=False, **SMALL)
    assert (tmp_path / "images.txt").read_text() == "1 001.A/a.jpg\n"
    ours = syn.make_synthetic(str(tmp_path / "ours"), progress=False, **SMALL)
    with pytest.raises(WsolError, match=r"^synthetic n_classes must be an integer in 1\.\.256, got 999$"):
        syn.make_synthetic(ours, progress=False, n_classes=999)  # validated before the old set is removed
    assert syn.synthetic_is_current(ours, **SMALL)


def test_regenerating_with_other_params_replaces_the_set(tmp_path):
    root = str(tmp_path)
    syn.make_synthetic(root, progress=False, **SMALL)
    syn.make_synthetic(root, progress=False, **{**SMALL, "n_classes": 2})
    assert sorted(os.listdir(os.path.join(root, "images"))) == sorted(
        f"{k:03d}.{n}" for k, n in enumerate(syn.class_names(2), 1))
    assert len(_lines(root, "images.txt")) == 2 * 4


def test_registered_builder_generates_and_caches(tmp_path, monkeypatch):
    fake = types.ModuleType("wsol.datasets.cub")
    fake.read_cub = read_local
    monkeypatch.setitem(sys.modules, "wsol.datasets.cub", fake)
    root = str(tmp_path)
    ds = build_dataset("synthetic", root, "test", **SMALL)
    assert ds.name == "synthetic" and len(ds) == 3 * 2 and ds.num_classes == 3
    assert syn.synthetic_is_current(root, **SMALL)

    def boom(*a, **k):
        raise AssertionError("regenerated a current set")

    monkeypatch.setattr(syn, "make_synthetic", boom)
    assert len(build_dataset("synthetic", root, "train")) == 3 * 2  # cached params kept
    assert len(build_dataset("synthetic", root, "train", seed=7)) == 3 * 2
    with pytest.raises(AssertionError):
        build_dataset("synthetic", root, "train", seed=8)


def test_cli(tmp_path, capsys):
    from wsol.cli import main

    out = str(tmp_path / "cli")
    assert main(["make-synthetic", "--out", out, "--classes", "2", "--train-per-class", "1",
                 "--test-per-class", "1", "--seed", "3", "--quiet"]) == 0
    assert syn.synthetic_is_current(out, n_classes=2, n_train_per_class=1,
                                    n_test_per_class=1, seed=3)
    with pytest.raises(SystemExit) as e:  # checked at parse time: one line with the valid range
        main(["make-synthetic", "--out", out, "--classes", "999", "--quiet"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--classes" in err and "1..256" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as e:
        main(["make-synthetic", "--help"])
    assert e.value.code == 0 and "CUB-200-2011" in capsys.readouterr().out


def test_data_script_help():
    script = os.path.join(REPO, "data_scripts",
                          "make_synthetic.py")
    r = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--train-per-class" in r.stdout


@pytest.mark.parametrize("argv", [["-q", "make-synthetic"], ["make-synthetic", "-q"], ["make-synthetic", "--quiet"]])
def test_make_synthetic_quiet_flag_anywhere(argv, tmp_path, capsys):
    """``wsol -q make-synthetic`` and ``wsol make-synthetic -q`` print no bar and no summary."""
    from wsol.cli import main

    assert main(argv + ["--out", str(tmp_path / "d"), "--classes", "2", "--train-per-class", "1",
                        "--test-per-class", "1"]) == 0
    out = capsys.readouterr()
    assert out.out == "" and "synthetic" not in out.err
    assert os.path.isdir(tmp_path / "d")


def test_make_synthetic_prints_summary_without_quiet(tmp_path, capsys):
    from wsol.cli import main

    assert main(["make-synthetic", "--out", str(tmp_path / "d"), "--classes", "2", "--train-per-class", "1",
                 "--test-per-class", "1"]) == 0
    assert "wrote 4 images in 2 classes" in capsys.readouterr().out


@pytest.mark.parametrize("name", list(syn.param_options()))
def test_each_generator_parameter_is_refused_alike_everywhere(name, tmp_path, capsys):
    """One declaration per parameter: make-synthetic's flag, make_synthetic() and a
    --dataset-option of --dataset synthetic give the same line for a value past its bound."""
    from wsol.cli import main
    from wsol.datasets.base import build_dataset

    opt = syn.param_options()[name]
    bad = int(opt.max) + 1
    line = f"synthetic {name} must be an integer in {int(opt.min)}..{int(opt.max)}, got {bad}"
    with pytest.raises(WsolError) as api:
        syn.make_synthetic(str(tmp_path / "a"), progress=False, **{name: bad})
    assert str(api.value) == line
    with pytest.raises(WsolError) as adapter:
        build_dataset("synthetic", str(tmp_path / "b"), "test", **{name: str(bad)})
    assert line in str(adapter.value)
    with pytest.raises(SystemExit):
        main(["make-synthetic", "--out", str(tmp_path / "c"), opt.flag_name(), str(bad)])
    assert line in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()
