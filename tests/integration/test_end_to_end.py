"""`wsol evaluate` + `wsol score` round trip on a tiny CUB-layout folder, checked against the
literal wsolevaluation reference kept in tests/fixtures/wsoleval_reference.py."""
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cub_fixture import make_cub
from wsol.cli import main
from wsol.datasets.base import build_dataset
from wsol.evaluation.scoring import SUMMARY_COLUMNS
from wsoleval_reference import ReferenceBoxEvaluator, resize_bbox

TIMING_COLS = {"images_per_s", "date"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    make_cub(str(root / "cub"), n_per_class=4)
    out, cams = root / "out", root / "cams"
    rc = main(["-q", "evaluate", "--root", str(root / "cub"), "--backbone", "tiny_test_net", "--weights", "random",
               "--batch-size", "4", "--out", str(out), "--save-cams", str(cams)])
    assert rc == 0
    return root, out, cams


def test_csvs_have_the_documented_columns(run):
    _, out, _ = run
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns[:len(SUMMARY_COLUMNS)]) == SUMMARY_COLUMNS
    assert len(summary) == 1 and summary.n_images[0] == 6
    per = pd.read_csv(out / "per_image.csv")
    for c in ("image_id", "label", "pred_top1", "pred_top5", "iou", "box_x0", "box_y1", "loc_tau"):
        assert c in per.columns
    assert len(per) == 6
    curves = pd.read_csv(out / "curves.csv")
    assert list(curves.columns) == ["mode", "iou_threshold", "tau", "box_acc"]
    assert len(curves) == 2 * 3 * 100
    timings = pd.read_csv(out / "timings.csv")
    assert {"data", "forward", "cam", "localize", "metrics", "total"} <= set(timings.stage)
    # per-image rows agree with the summary
    s = summary.iloc[0]
    assert per.gt_known_correct.mean() * 100 == pytest.approx(s.gt_known_loc)
    assert per.top1_correct.mean() * 100 == pytest.approx(s.top1_cls)


def test_numbers_match_wsoleval_reference(run):
    root, out, cams = run
    ds = build_dataset("cub", str(root / "cub"), "test")
    ref_all = ReferenceBoxEvaluator(multi_contour_eval=True)
    ref_big = ReferenceBoxEvaluator(multi_contour_eval=False, iou_thresholds=(50,))
    for smp in ds.samples:
        m = np.load(cams / f"{smp.image_id}.npy")
        assert m.shape == (224, 224) and m.dtype == np.float64 and 0 <= m.min() and m.max() <= 1
        with Image.open(smp.path) as im:
            size = im.size
        gt = [resize_bbox(b, size) for b in smp.boxes]
        ref_all.accumulate(m, gt)
        ref_big.accumulate(m, gt)
    s = pd.read_csv(out / "summary.csv").iloc[0]
    r30, r50, r70 = ref_all.compute()
    assert (s.maxboxacc_iou30, s.maxboxacc_iou50, s.maxboxacc_iou70) == pytest.approx((r30, r50, r70), abs=1e-4)
    assert s.maxboxacc_v2 == pytest.approx(np.mean([r30, r50, r70]), abs=1e-4)
    assert s.maxboxacc == pytest.approx(ref_big.compute()[0], abs=1e-4)
    per = pd.read_csv(out / "per_image.csv")
    li = int(round(s.loc_tau / 0.01))
    np.testing.assert_allclose(per.iou, [p[li] for p in ref_big.per_image], atol=1e-6)


def test_exported_heatmaps_rescore_identically(run, tmp_path):
    root, out, cams = run
    for sweep in ("fast", "reference", "per-threshold"):
        rc = main(["-q", "score", "--cams", str(cams), "--root", str(root / "cub"), "--out", str(tmp_path / sweep),
                   "--sweep", sweep])
        assert rc == 0
        a = pd.read_csv(out / "summary.csv").iloc[0]
        b = pd.read_csv(tmp_path / sweep / "summary.csv").iloc[0]
        for c in ("n_images", "gt_known_loc", "loc_tau", "maxboxacc", "maxboxacc_v2", "maxboxacc_iou30",
                  "maxboxacc_iou50", "maxboxacc_iou70", "tau_iou30", "tau_iou50", "tau_iou70", "mean_iou",
                  "gt_known_loc_fixed"):
            assert a[c] == b[c], c
        assert np.isnan(b.top1_cls) and np.isnan(b.top1_loc)  # no predictions when scoring heatmaps
        pa, pb = pd.read_csv(out / "per_image.csv"), pd.read_csv(tmp_path / sweep / "per_image.csv")
        pd.testing.assert_series_equal(pa.iou, pb.iou)


def test_two_runs_give_identical_csvs(run, tmp_path):
    root, out, _ = run
    assert main(["-q", "evaluate", "--root", str(root / "cub"), "--backbone", "tiny_test_net", "--weights", "random",
                 "--batch-size", "4", "--out", str(tmp_path), "--workers", "1"]) == 0
    for f in ("per_image.csv", "curves.csv"):
        assert (out / f).read_bytes() == (tmp_path / f).read_bytes(), f
    a = pd.read_csv(out / "summary.csv").drop(columns=list(TIMING_COLS))
    b = pd.read_csv(tmp_path / "summary.csv").drop(columns=list(TIMING_COLS))
    pd.testing.assert_frame_equal(a, b)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "wsol", *args], capture_output=True, text=True)


def _main(capsys, *args):
    rc = main(["-q", *args])
    return rc, capsys.readouterr().err


def test_bad_input_is_one_line_with_exit_2(tmp_path, capsys):
    rc, err = _main(capsys, "evaluate", "--root", str(tmp_path / "missing"), "--out", str(tmp_path / "o"),
                    "--weights", "random")
    assert rc == 2 and err.count("\n") == 1 and "missing" in err
    make_cub(str(tmp_path / "cub"))
    os.remove(tmp_path / "cub" / "images.txt")
    rc, err = _main(capsys, "evaluate", "--root", str(tmp_path / "cub"), "--out", str(tmp_path / "o"),
                    "--weights", "random")
    assert rc == 2 and "images.txt" in err and err.count("\n") == 1
    make_cub(str(tmp_path / "cub2"))
    rc, err = _main(capsys, "evaluate", "--root", str(tmp_path / "cub2"), "--out", str(tmp_path / "o"),
                    "--weights", "random", "--backbone", "resnet5O")
    assert rc == 2 and "resnet50" in err and err.count("\n") == 1
    rc, err = _main(capsys, "evaluate", "--root", str(tmp_path / "cub2"), "--out", str(tmp_path / "o"),
                    "--weights", "random", "--backbone", "tiny_test_net", "--method", "gradcamm")
    assert rc == 2 and "unknown method" in err and "gradcam" in err and err.count("\n") == 1


def test_console_script_exit_code_and_debug_traceback(tmp_path):
    """In a real process: one line and exit 2 without --debug; the traceback with it."""
    r = _cli("evaluate", "--root", str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    r = _cli("--debug", "evaluate", "--root", str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert r.returncode != 0 and "Traceback" in r.stderr
