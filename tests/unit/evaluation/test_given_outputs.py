"""Bring your own outputs: boxes and class-prediction CSVs read and scored by ``wsol score``
(docs/protocol.md, Bring your own outputs), with hand-computed numbers and one-line errors."""
from __future__ import annotations

import os
import textwrap

import numpy as np
import pandas as pd
import pytest

from wsol.cli.app import main
from wsol.errors import DataError
from wsol.evaluation.given_outputs import read_boxes, read_predictions
from wsol.localize.protocols import get_protocol


def write(path, text: str) -> str:
    path.write_text(textwrap.dedent(text))
    return str(path)


# ----------------------------------------------------------------------------- readers
@pytest.mark.parametrize("text, line, message", [
    ("image,x0,y0,x1,y1\na,1,2,3,4\n", 1, "header must start with image_id,x0,y0,x1,y1"),
    ("image_id,x0,y0,x1,y1,conf\na,1,2,3,4,1\n", 1, r"header must be image_id,x0,y0,x1,y1\[,score\]"),
    ("image_id,x0,y0,x1,y1\na,1,2,3,4\nb,1,two,3,4\n", 3, "y0 must be a number, got 'two'"),
    ("image_id,x0,y0,x1,y1\na,5,2,3,4\n", 2, "box corners out of order: x0=5 x1=3"),
    ("image_id,x0,y0,x1,y1\na,1,2,3\n", 2, "expected 5 cells"),
    ("image_id,x0,y0,x1,y1,score\na,1,2,3,4,nan\n", 2, "score must be finite"),
    ("image_id,x0,y0,x1,y1\n,1,2,3,4\n", 2, "empty image_id"),
    ("", None, "empty file"),
])
def test_bad_box_rows_name_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path / "b.csv", text)
    with pytest.raises(DataError, match=message) as e:
        read_boxes(path, ["a", "b"])
    assert str(e.value).startswith(f"{path}:{line}: " if line else f"{path}: ")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("text, line, message", [
    ("image_id,top1,top3\na,1,2\n", 1, r"header must be image_id,top1\[,top2,...,top5\]"),
    ("image_id,top1\na,cat\n", 2, "'cat' is neither a class index nor a class name"),
    ("image_id,top1\na,7\n", 2, r"class index 7 out of range \[0, 3\)"),
    ("image_id,top1\na,1\na,2\n", 3, "second row for a"),
    ("image_id,top1,top2\na,1,one\n", 2, "the same class twice"),
    ("image_id,top1,top2\na,1\n", 2, "expected 3 cells, got 2"),
])
def test_bad_prediction_rows_name_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path / "p.csv", text)
    with pytest.raises(DataError, match=message) as e:
        read_predictions(path, ["zero", "one", "two"], 3, ["a"])
    assert str(e.value).startswith(f"{path}:{line}: ")


def test_predictions_take_names_or_indices_and_count_unknown_images(tmp_path):
    path = write(tmp_path / "p.csv", "image_id,top1,top2\na,two,0\nzz,1,zero\n")
    p = read_predictions(path, ["zero", "one", "two"], 3, ["a", "b"])
    assert p.k == 2 and p.n_unknown == 1 and list(p.top["a"]) == [2, 0]
    top, missing = p.lookup(["a", "b"])
    assert missing == 1 and top.tolist() == [[2, 0, -1, -1, -1], [-1] * 5]


def test_box_rule_top_needs_a_score_for_several_boxes(tmp_path):
    path = write(tmp_path / "b.csv", "image_id,x0,y0,x1,y1\na,0,0,9,9\nb,1,1,2,2\na,5,5,9,9\n")
    g = read_boxes(path, ["a", "b"])
    assert g.select("a", "all").tolist() == [[0, 0, 9, 9], [5, 5, 9, 9]] and g.select("c", "top") is None
    with pytest.raises(DataError, match=r"b.csv: 2 boxes for a \(lines 2, 4\) and no score column"):
        g.select("a", "top")
    scored = read_boxes(write(tmp_path / "s.csv", "image_id,x0,y0,x1,y1,score\na,0,0,9,9,0.2\na,5,5,9,9,0.7\n"),
                        ["a"])
    assert scored.select("a", "top").tolist() == [[5, 5, 9, 9]]


def test_wsoleval_box_export_round_trips_on_any_width():
    """The cell-centre export maps back to the same 224-grid box, also for images narrower
    than 224 (where some grid cells hold no original pixel)."""
    p = get_protocol("wsoleval")
    grid = np.array([[0, 0, 223, 223], [17, 3, 150, 99], [1, 1, 1, 1]])
    for w, h in ((500, 375), (100, 37), (224, 224), (1, 7), (333, 1000)):
        assert (p.gt_boxes(p.boxes_to_original(grid, (w, h)), (w, h)) == grid).all(), (w, h)


# ----------------------------------------------------------------------------- scored by hand
@pytest.fixture()
def four(tmp_path):
    """Four 448x224 images, each with ground truth [0,0,199,99] (224 grid: [0,0,99,99]);
    labels 0, 1, 2, 3 (10 classes)."""
    d = tmp_path / "meta"
    d.mkdir()
    ids = ["im/a.jpg", "im/b.jpg", "im/c.jpg", "im/d.jpg"]
    (d / "image_ids.txt").write_text("".join(f"{i}\n" for i in ids))
    (d / "class_labels.txt").write_text("".join(f"{i},{k}\n" for k, i in enumerate(ids)))
    (d / "image_sizes.txt").write_text("".join(f"{i},448,224\n" for i in ids))
    (d / "localization.txt").write_text("".join(f"{i},0,0,199,99\n" for i in ids))
    # a: the GT box itself (IoU 1); b: half its width, [0,0,49,99] on the grid (IoU 0.5, a hit);
    # c: a wrong box scored 0.9 and the right one scored 0.1; d: no box; zz: not in the split
    boxes = write(tmp_path / "boxes.csv", """\
        image_id,x0,y0,x1,y1,score
        im/a.jpg,0,0,199,99,1
        im/b.jpg,0,0,99,99,1
        im/c.jpg,300,150,440,200,0.9
        im/c.jpg,0,0,199,99,0.1
        zz.jpg,0,0,1,1,1
        """)
    # top-1 right for a, c, d; b has its class second
    preds = write(tmp_path / "preds.csv", """\
        image_id,top1,top2,top3,top4,top5
        im/a.jpg,0,5,6,7,8
        im/b.jpg,2,1,5,6,7
        im/c.jpg,2,0,1,3,4
        im/d.jpg,3,0,1,2,4
        """)
    return tmp_path, str(d), boxes, preds


@pytest.mark.parametrize("rule, gt_known, top1_loc, top5_loc, mean_iou", [
    ("top", 50.0, 25.0, 50.0, 37.5),    # hits: a (IoU 1), b (IoU .5); c's top box misses; d has none
    ("all", 75.0, 50.0, 75.0, 62.5),    # c's second box counts: IoU 1
])
def test_hand_made_boxes_score_by_hand(four, rule, gt_known, top1_loc, top5_loc, mean_iou):
    tmp_path, meta, boxes, preds = four
    out = tmp_path / rule
    assert main(["-q", "score", "--boxes", boxes, "--predictions", preds, "--box-rule", rule, "--dataset",
                 "wsoleval", "--root", meta, "--dataset-option", "num_classes=10", "--out", str(out)]) == 0
    s = pd.read_csv(out / "summary.csv").iloc[0]
    assert (s.gt_known_loc, s.top1_loc, s.top5_loc) == (gt_known, top1_loc, top5_loc)
    assert s.mean_iou == pytest.approx(mean_iou, abs=1e-12)
    assert (s.top1_cls, s.top5_cls) == (75.0, 100.0)  # a, c, d / all four
    assert s.policy_gt_known_loc == gt_known and s.policy_top1_loc == top1_loc
    assert s.n_images == 4 and s.n_missing_boxes == 1 and s.n_unknown_rows == 1 and s.n_missing_predictions == 0
    assert s.tau_policy == "given_boxes" and np.isnan(s.policy_tau) and np.isnan(s.maxboxacc_v2)
    assert s.classifier == "separate" and "box_rule=given_boxes" in s.fingerprint_loc
    per = pd.read_csv(out / "per_image.csv")
    assert list(per.status) == ["ok", "ok", "ok", "no_box"]  # the image without a box is counted, as a miss
    assert per.iou.tolist() == pytest.approx([1.0, 0.5, 0.0 if rule == "top" else 1.0, 0.0])


def test_boxes_without_classes_and_with_three_columns(four):
    tmp_path, meta, boxes, _ = four
    preds = write(tmp_path / "p3.csv", "image_id,top1,top2,top3\nim/a.jpg,0,1,2\nim/b.jpg,1,0,2\n")
    out = tmp_path / "k3"
    assert main(["-q", "score", "--boxes", boxes, "--predictions", preds, "--dataset", "wsoleval", "--root", meta,
                 "--dataset-option", "num_classes=10", "--out", str(out)]) == 0
    s = pd.read_csv(out / "summary.csv").iloc[0]
    assert s.top1_cls == 50.0 and np.isnan(s.top5_cls) and np.isnan(s.top5_loc)  # top-5 needs five columns
    assert s.top1_loc == 50.0 and s.n_missing_predictions == 2  # a, b right; c, d without a row: wrong
    out = tmp_path / "nocls"
    assert main(["-q", "score", "--boxes", boxes, "--dataset", "wsoleval", "--root", meta, "--out", str(out)]) == 0
    s = pd.read_csv(out / "summary.csv").iloc[0]
    assert s.gt_known_loc == 50.0 and np.isnan(s.top1_loc) and s.classifier == "none"


def test_bad_row_through_the_cli_is_one_line(four, capsys):
    tmp_path, meta, _, _ = four
    bad = write(tmp_path / "bad.csv", "image_id,x0,y0,x1,y1\nim/a.jpg,0,0,9,9\nim/b.jpg,0,0,-,9\n")
    assert main(["-q", "score", "--boxes", bad, "--dataset", "wsoleval", "--root", meta, "--out",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"{bad}:3: x1 must be a number, got '-'") and len(err.splitlines()) == 1


def test_predictions_with_heatmaps(four):
    """Given classes combined with given heatmaps (class-agnostic maps): Top-1 Loc = GT-known
    restricted to the images whose first class is right."""
    tmp_path, meta, _, preds = four
    cams = tmp_path / "cams" / "im"
    cams.mkdir(parents=True)
    m = np.zeros((224, 224))
    m[:100, :99] = 1.0  # box [0,0,99,100] by the reference's x + w rule: IoU 100*100/(100*101) with [0,0,99,99]
    for n in ("a", "b", "c", "d"):
        np.save(cams / f"{n}.jpg.npy", m)
    out = tmp_path / "maps"
    assert main(["-q", "score", "--cams", str(tmp_path / "cams"), "--predictions", preds, "--dataset", "wsoleval",
                 "--root", meta, "--dataset-option", "num_classes=10", "--out", str(out)]) == 0
    s = pd.read_csv(out / "summary.csv").iloc[0]
    assert s.gt_known_loc == 100.0 and s.top1_loc == 75.0 and s.top5_loc == 100.0
    assert s.classifier == "separate" and os.path.isfile(out / "per_image.csv")
