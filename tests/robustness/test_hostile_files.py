"""Hostile input, round two: files (huge, truncated, non-UTF-8, BOM), silent wrong numbers,
check-data decoding, an interrupted run. Each case runs the real entry point (``wsol.cli.main``)."""
import logging
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cub_fixture import make_cub
from wsol.cli import main

TINY = ["--backbone", "tiny_test_net", "--weights", "random"]


def _err_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("WARNING", "INFO"))]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def cub(tmp_path):
    make_cub(str(tmp_path / "cub"), n_per_class=2)
    return tmp_path / "cub"


def _test_images(cub):
    from wsol.datasets.base import build_dataset
    return build_dataset("cub", str(cub), "test").samples


# ------------------------------------------------------------------ decompression bombs
def test_decompression_bomb_is_one_line_or_a_skip(cub, tmp_path, capsys, monkeypatch):
    """PIL refuses images over 2 x MAX_IMAGE_PIXELS; a 15000x12000 JPEG is over the default limit,
    here the limit is lowered so the fixture's ~150x150 images trip it."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    s = _test_images(cub)[0]
    rc = main(["-q", "evaluate", "--root", str(cub), *TINY, "--out", str(tmp_path / "o")])
    line = _err_line(capsys)
    assert rc == 2 and s.path in line and "too large" in line
    rc = main(["-q", "evaluate", "--root", str(cub), *TINY, "--out", str(tmp_path / "skip"), "--on-error", "skip"])
    assert rc == 0
    per = pd.read_csv(tmp_path / "skip" / "per_image.csv")
    assert (per.status == "skipped").all() and per.reason.str.contains("too large").all()
    rc = main(["-q", "overlay", "--image", s.path, *TINY, "--out", str(tmp_path / "x.png")])
    line = _err_line(capsys)
    assert rc == 2 and s.path in line and "too large" in line
    rc = main(["-q", "check-data", "--dataset", "cub", "--root", str(cub)])
    out = capsys.readouterr().out
    assert rc == 1 and "unreadable" in out and "too large" in out


# ------------------------------------------------------------------ encodings
def test_binary_garbage_in_annotation_files_names_file_and_line(cub, tmp_path, capsys):
    boxes = cub / "bounding_boxes.txt"
    data = boxes.read_bytes().split(b"\n")
    data[2] = b"3 \xff\xfe\x00garbage"
    boxes.write_bytes(b"\n".join(data))
    rc = main(["-q", "evaluate", "--root", str(cub), *TINY, "--out", str(tmp_path / "o")])
    line = _err_line(capsys)
    assert rc == 2 and f"{boxes}:3:" in line and "UTF-8" in line
    f = tmp_path / "f"
    f.mkdir()
    (f / "boxes.csv").write_bytes(b"image,label,x0,y0,x1,y1\na.jpg,0,1,1,5,5\n\x89PNG\r\n\x1a\n\x00\x00")
    rc = main(["-q", "check-data", "--dataset", "folder", "--root", str(f)])
    assert rc == 1 and f"{f / 'boxes.csv'}:3:" in capsys.readouterr().out
    suite = tmp_path / "s.yaml"
    suite.write_bytes(b"name: s\ndatasets: \xe9\xe9\n")
    assert main(["-q", "suite", str(suite), "--dry-run"]) == 2
    assert f"{suite}:2:" in _err_line(capsys)


def test_utf8_bom_is_read_as_utf8(cub, tmp_path, capsys):
    """A BOM (Excel's 'CSV UTF-8') is not part of the first id or header: same samples as without."""
    from wsol.datasets.base import build_dataset

    plain = build_dataset("cub", str(cub), "test").samples
    for name in ("images.txt", "bounding_boxes.txt", "classes.txt"):
        p = cub / name
        p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())
    bom = build_dataset("cub", str(cub), "test").samples
    assert [s.image_id for s in bom] == [s.image_id for s in plain]
    assert all(np.array_equal(a.boxes, b.boxes) for a, b in zip(bom, plain))
    meta = tmp_path / "meta"
    assert main(["-q", "export-metadata", "--dataset", "cub", "--root", str(cub), "--out", str(meta)]) == 0
    for name in ("image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt"):
        p = meta / name
        p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())
    ws = build_dataset("wsoleval", str(meta), "test")
    assert [s.image_id for s in ws.samples] == [s.image_id for s in plain]


# ------------------------------------------------------------------ silent wrong numbers
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e300"])
def test_non_finite_or_huge_box_coordinates_are_refused(cub, tmp_path, capsys, value):
    boxes = cub / "bounding_boxes.txt"
    lines = boxes.read_text().splitlines()
    f = lines[1].split()
    lines[1] = " ".join([f[0], value, *f[2:]])
    boxes.write_text("\n".join(lines) + "\n")
    rc = main(["-q", "evaluate", "--root", str(cub), *TINY, "--out", str(tmp_path / "o")])
    line = _err_line(capsys)
    assert rc == 2 and f"{boxes}:2:" in line and value in line
    meta = tmp_path / "meta"
    meta.mkdir()
    (meta / "image_ids.txt").write_text("a.jpg\n")
    (meta / "class_labels.txt").write_text("a.jpg,0\n")
    (meta / "localization.txt").write_text(f"a.jpg,1,2,{value},4\n")
    rc = main(["-q", "score", "--dataset", "wsoleval", "--root", str(meta), "--cams", str(tmp_path),
               "--out", str(tmp_path / "o2")])
    assert rc == 2 and f"{meta / 'localization.txt'}:1:" in _err_line(capsys)


def test_size_mismatch_warns_once_counts_and_uses_the_annotated_size(cub, tmp_path, capsys, caplog):
    """Two images annotated at twice their real size: one warning, n_size_mismatch = 2, and the
    boxes scaled by the annotated size -- proven by `wsol score`, which only knows the annotation,
    giving the same IoUs from the same heatmaps."""
    meta = tmp_path / "meta"
    assert main(["-q", "export-metadata", "--dataset", "cub", "--root", str(cub), "--split", "test",
                 "--out", str(meta)]) == 0
    sizes = (meta / "image_sizes.txt").read_text().splitlines()
    for i in (0, 2):
        iid, w, h = sizes[i].split(",")
        sizes[i] = f"{iid},{int(w) * 2},{int(h) * 2}"
    (meta / "image_sizes.txt").write_text("\n".join(sizes) + "\n")
    run, cams = tmp_path / "run", tmp_path / "run" / "cams"
    with caplog.at_level(logging.WARNING):
        assert main(["-q", "evaluate", "--dataset", "wsoleval", "--root", str(meta), "--images",
                     str(cub / "images"), *TINY, "--out", str(run), "--save-cams", str(cams)]) == 0
    warnings = [r.getMessage() for r in caplog.records if "differ in size" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("2 image(s)") and "annotated size" in warnings[0]
    summary = pd.read_csv(run / "summary.csv").iloc[0]
    assert summary.n_size_mismatch == 2
    assert main(["-q", "score", "--dataset", "wsoleval", "--root", str(meta), "--cams", str(cams),
                 "--out", str(tmp_path / "score")]) == 0
    a = pd.read_csv(run / "per_image.csv").set_index("image_id")
    b = pd.read_csv(tmp_path / "score" / "per_image.csv").set_index("image_id")
    assert np.allclose(a.loc[b.index, "best_iou"], b.best_iou)
    assert pd.read_csv(tmp_path / "score" / "summary.csv").maxboxacc_v2.iloc[0] == summary.maxboxacc_v2


def test_report_refuses_a_truncated_per_image_csv(cub, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["-q", "evaluate", "--root", str(cub), *TINY, "--out", str(run)]) == 0
    per = run / "per_image.csv"
    full = per.read_bytes()
    per.write_bytes(full[:-7])  # cut inside the last line
    assert main(["-q", "report", str(run)]) == 2
    line = _err_line(capsys)
    assert str(per) in line and "truncated" in line
    per.write_bytes(b"".join(full.splitlines(keepends=True)[:-2]))  # whole lines missing
    assert main(["-q", "report", str(run)]) == 2
    line = _err_line(capsys)
    assert str(per) in line and "1 rows, but summary.csv counts 3 images" in line
    per.write_bytes(full)
    assert main(["-q", "report", str(run)]) == 0


def test_overlay_refuses_an_inverted_gt_box(cub, tmp_path, capsys):
    s = _test_images(cub)[0]
    rc = main(["-q", "overlay", "--image", s.path, *TINY, "--gt-box", "50", "50", "10", "10",
               "--out", str(tmp_path / "x.png")])
    line = _err_line(capsys)
    assert rc == 2 and "inverted" in line and "50 50 10 10" in line
    assert not (tmp_path / "x.png").exists()


# ------------------------------------------------------------------ check-data decodes
def test_check_data_decodes_every_image_by_default(cub, capsys):
    s = _test_images(cub)[1]
    data = open(s.path, "rb").read()
    assert len(data) > 4000
    open(s.path, "wb").write(data[:2048])  # header intact, body cut
    rc = main(["-q", "check-data", "--dataset", "cub", "--root", str(cub)])
    out = capsys.readouterr().out
    assert rc == 1 and "1 unreadable" in out and s.image_id in out and "decoded" in out
    rc = main(["-q", "check-data", "--dataset", "cub", "--root", str(cub), "--header-only"])
    out = capsys.readouterr().out
    assert rc == 0 and "0 unreadable" in out and "headers only" in out
    for workers in ("0", "3"):  # inline and threaded agree
        rc = main(["-q", "check-data", "--dataset", "cub", "--root", str(cub), "--data-workers", workers])
        assert rc == 1 and "1 unreadable" in capsys.readouterr().out


# ------------------------------------------------------------------ Ctrl-C
def test_interrupted_evaluate_says_how_far_it_got(cub, tmp_path, monkeypatch, capsys):
    out = tmp_path / "o"
    assert main(["-q", "evaluate", "--root", str(cub), *TINY, "--out", str(out), "--batch-size", "2"]) == 0
    before = {n: (out / n).read_bytes() for n in os.listdir(out)}
    from wsol.evaluation import box_evaluator

    real_add, calls = box_evaluator.BoxEvaluator.process, []

    def add_then_interrupt(self, *a, **k):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real_add(self, *a, **k)
    monkeypatch.setattr(box_evaluator.BoxEvaluator, "process", add_then_interrupt)
    rc = main(["-q", "evaluate", "--root", str(cub), *TINY, "--out", str(out), "--batch-size", "2"])
    err = capsys.readouterr().err.strip()
    assert rc == 130 and len(err.splitlines()) == 1
    assert "2 of 3 images scored" in err and f"{out} is as it was" in err and "rerun" in err
    # the earlier run's results are untouched (results replace them only when a run finishes)
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == before


def test_interrupted_score_says_how_far_it_got(cub, tmp_path, monkeypatch, capsys):
    run, cams, out = tmp_path / "run", tmp_path / "run" / "cams", tmp_path / "score"
    assert main(["-q", "evaluate", "--root", str(cub), *TINY, "--out", str(run), "--save-cams", str(cams)]) == 0
    assert main(["-q", "score", "--root", str(cub), "--cams", str(cams), "--out", str(out)]) == 0
    capsys.readouterr()
    before = {n: (out / n).read_bytes() for n in os.listdir(out)}
    from wsol.evaluation import box_evaluator

    def interrupt(self, *a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(box_evaluator.BoxEvaluator, "process", interrupt)
    rc = main(["-q", "score", "--root", str(cub), "--cams", str(cams), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 130 and "0 of 3 images scored" in err and f"{out} is as it was" in err
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == before  # the earlier score's files kept
