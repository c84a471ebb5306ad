"""Hostile input, round three: a newcomer's paper cuts. ``wsol models | head`` (every listing
command), `wsol compare` on a suite that measured few numbers, re-scoring the heatmaps of a
``--limit``ed evaluate, OpenImages ``score`` without image_sizes.txt, ``check-data`` without
``--dataset``. Through ``wsol.cli.main`` (and one real pipe).
"""
import io
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from cub_fixture import make_cub
from shared_data import REPO
from wsol.cli import main
from wsol.datasets.base import build_dataset, dataset_info

TINY = ["--backbone", "tiny_test_net", "--weights", "random"]


class ClosedPipe(io.StringIO):
    """stdout whose reader has gone: every write and flush raises BrokenPipeError."""

    def write(self, s):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")


@pytest.fixture
def suite_dir(tmp_path):
    d = tmp_path / "runs"
    d.mkdir()
    pd.DataFrame([
        {"run_id": "r1", "status": "ok", "reason": "", "dataset_name": "cub", "dataset": "cub", "split": "test",
         "backbone": "vgg16_gap", "method": "cam", "protocol": "wsoleval", "n_images": 5794, "maxboxacc_v2": 61.25},
    ]).to_csv(d / "summary.csv", index=False)
    return d


# ------------------------------------------------------------------ closed pipes
def _listing_commands(tmp_path, suite_dir):
    cub = tmp_path / "cub"
    make_cub(str(cub), n_per_class=1)
    smoke = os.path.join(REPO, "benchmarks", "suites", "smoke.yaml")
    return [["models"], ["methods"], ["datasets"], ["suite", smoke, "--dry-run", "--out", str(tmp_path / "s")],
            ["compare", str(suite_dir)], ["check-data", "--root", str(cub), "--no-verify"], ["--help"],
            ["evaluate", "--help"]]


def test_every_listing_command_survives_a_closed_pipe(tmp_path, suite_dir, monkeypatch, capsys):
    """Before: `wsol models | head` ended in a BrokenPipeError traceback."""
    for argv in _listing_commands(tmp_path, suite_dir):
        monkeypatch.setattr(sys, "stdout", ClosedPipe())
        rc = main(["-q", *argv])
        monkeypatch.undo()
        err = capsys.readouterr().err
        assert rc == 141 and "Traceback" not in err and "BrokenPipe" not in err, (argv, err)


@pytest.mark.slow
def test_wsol_models_into_head_through_a_real_pipe():
    """A fresh interpreter importing every backbone family: ~40 s on a loaded machine."""
    env = {**os.environ, "PYTHONPATH": REPO}
    p = subprocess.run(f"{sys.executable} -m wsol models | head -1", shell=True, capture_output=True, text=True,
                       env=env, cwd=REPO, timeout=300)
    assert p.stdout.startswith("name") and "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr, p.stderr


# ------------------------------------------------------------------ compare --measured-only
def test_compare_can_print_only_the_measured_rows(suite_dir, capsys):
    """Before: the smoke suite printed 92 'not run' rows and there was no way to hide them."""
    assert main(["-q", "compare", str(suite_dir)]) == 0
    full = capsys.readouterr().out
    assert "not run" in full and "--measured-only prints only those" in full
    assert main(["-q", "compare", str(suite_dir), "--measured-only"]) == 0
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln.startswith("| cub")]
    assert "not run" not in out and len(rows) == 1 and "| 61.25 |" in rows[0]
    cmp = pd.read_csv(suite_dir / "comparison.csv")       # the files keep every row
    assert (cmp.status == "not run").sum() == len(cmp) - 1


# ------------------------------------------------------------------ score after evaluate --limit
def test_rescoring_a_limited_evaluate_says_pass_the_limit(tmp_path, capsys):
    """Before: score failed on the first absent heatmap and suggested --on-error skip, which
    would count the images never evaluated as misses."""
    cub = tmp_path / "cub"
    make_cub(str(cub), n_per_class=2)                      # 3 test images
    run, cams = tmp_path / "run", tmp_path / "run" / "cams"
    assert main(["-q", "evaluate", "--root", str(cub), *TINY, "--limit", "2", "--out", str(run),
                 "--save-cams", str(cams)]) == 0
    capsys.readouterr()
    for extra in ([], ["--on-error", "skip"]):
        rc = main(["-q", "score", "--root", str(cub), "--cams", str(cams), "--out", str(tmp_path / "s"), *extra])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1
        assert f"{cams}: heatmaps for only the first 2 of the 3 images" in err and "pass --limit 2" in err
    assert main(["-q", "score", "--root", str(cub), "--cams", str(cams), "--out", str(tmp_path / "s"),
                 "--limit", "2"]) == 0
    a, b = pd.read_csv(run / "summary.csv").iloc[0], pd.read_csv(tmp_path / "s" / "summary.csv").iloc[0]
    assert a.maxboxacc_v2 == b.maxboxacc_v2 and b.n_images == 2


def test_a_heatmap_missing_in_the_middle_still_names_the_file(tmp_path, capsys):
    cub = tmp_path / "cub"
    make_cub(str(cub), n_per_class=2)
    cams = tmp_path / "cams"
    assert main(["-q", "evaluate", "--root", str(cub), *TINY, "--out", str(tmp_path / "r"),
                 "--save-cams", str(cams)]) == 0
    capsys.readouterr()
    first = build_dataset("cub", str(cub), "test").samples[0]
    os.remove(cams / (first.image_id + ".npy"))
    assert main(["-q", "score", "--root", str(cub), "--cams", str(cams), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "missing heatmap" in err and first.image_id in err and "--on-error skip" in err


# ------------------------------------------------------------------ OpenImages without image_sizes.txt
def _oi_with_cams(tmp_path):
    from wsol.datasets.openimages import write_example

    meta, split, opts = write_example(str(tmp_path / "oi"))
    cams = tmp_path / "cams"
    rng = np.random.default_rng(0)
    for s in build_dataset("openimages", meta, split, images=opts["images"]).samples:
        p = cams / (s.image_id + ".npy")
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, rng.random((224, 224)))
    os.remove(os.path.join(meta, "image_sizes.txt"))
    return meta, opts["images"], cams


def test_openimages_score_needs_no_image_sizes(tmp_path, capsys):
    """Before: `score` with masks= but no --images and no image_sizes.txt failed with 'size of
    ... unknown' naming no file. OpenImages has no boxes, so no size is needed at all."""
    meta, images, cams = _oi_with_cams(tmp_path)
    out = tmp_path / "o"
    assert main(["-q", "score", "--dataset", "openimages", "--root", meta, "--dataset-option", f"masks={images}",
                 "--cams", str(cams), "--out", str(out)]) == 0
    s = pd.read_csv(out / "summary.csv").iloc[0]
    assert s.n_images == 6 and 0 < s.pxap < 100


def test_wsoleval_without_image_sizes_names_the_file(tmp_path, capsys):
    meta, split, opts = dataset_info("wsoleval").example(str(tmp_path / "w"))
    ds = build_dataset("wsoleval", meta, split)
    cams = tmp_path / "cams"
    for s in ds.samples:
        p = cams / (s.image_id + ".npy")
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, np.zeros((224, 224)))
    os.remove(os.path.join(meta, split, "image_sizes.txt"))
    assert main(["-q", "score", "--dataset", "wsoleval", "--root", meta, "--cams", str(cams),
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "image_sizes.txt" in err and "--images DIR" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------ check-data without --dataset
@pytest.mark.parametrize("name", ["cub", "folder", "wsoleval", "openimages", "imagenet"])
def test_check_data_finds_the_adapter_from_the_files(tmp_path, capsys, name):
    """Before: `wsol check-data --root DIR` required --dataset."""
    root, split, opts = dataset_info(name).example(str(tmp_path / name))
    args = ["check-data", "--root", root, "--no-verify"]
    for k, v in opts.items():
        args += ["--dataset-option", f"{k}={v}"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{name} (")


def test_check_data_on_an_unknown_folder_says_pass_dataset(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("hello")
    assert main(["-q", "check-data", "--root", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no dataset layout recognised; pass --dataset" in err
