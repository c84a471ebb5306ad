"""Hostile input, round two: path escapes, other commands' outputs, option values, permissions.

Every case goes through the real entry point (``wsol.cli.main``) and checks the promise of
README's "Bad input" table: exit 2 and one line naming the file (and line) at fault, nothing
written outside the output folder, nothing of another command's output removed.
"""
import os
import stat

import numpy as np
import pandas as pd
import pytest

from cub_fixture import make_cub
from wsol.cli import main
from wsol.errors import WsolError

TINY = ["--backbone", "tiny_test_net", "--weights", "random"]


def _err_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _files_under(folder) -> set:
    return {os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs}


@pytest.fixture
def cub(tmp_path):
    make_cub(str(tmp_path / "cub"), n_per_class=2)
    return tmp_path / "cub"


def _rewrite_line(path, lineno, text):
    lines = open(path).read().splitlines()
    lines[lineno - 1] = text
    open(path, "w").write("\n".join(lines) + "\n")


# ------------------------------------------------------------------ ids escaping the root
@pytest.mark.parametrize("bad", ["../../x/y.JPEG", "/etc/passwd", "a/../../b.jpg", "C:\\x.jpg", "..\\..\\x.jpg"])
def test_cub_image_id_escaping_the_root_is_refused(cub, tmp_path, capsys, bad):
    _rewrite_line(cub / "images.txt", 2, f"2 {bad}")
    before = _files_under(tmp_path)
    rc = main(["-q", "evaluate", "--root", str(cub), *TINY, "--out", str(tmp_path / "o"),
               "--save-cams", str(tmp_path / "o" / "cams")])
    line = _err_line(capsys)
    assert rc == 2 and f"{cub / 'images.txt'}:2:" in line and repr(bad) in line
    assert _files_under(tmp_path) - before <= {str(tmp_path / "o" / ".wsol.lock")}


@pytest.mark.parametrize("bad", ["../../x/y.JPEG", "/abs/y.JPEG"])
def test_wsoleval_image_id_escaping_is_refused(tmp_path, capsys, bad):
    d = tmp_path / "meta"
    d.mkdir()
    (d / "image_ids.txt").write_text(f"val/a.JPEG\n{bad}\n")
    (d / "class_labels.txt").write_text(f"val/a.JPEG,0\n{bad},1\n")
    cams = tmp_path / "cams"
    cams.mkdir()
    rc = main(["-q", "score", "--dataset", "wsoleval", "--root", str(d), "--cams", str(cams),
               "--out", str(tmp_path / "o")])
    line = _err_line(capsys)
    assert rc == 2 and f"{d / 'image_ids.txt'}:2:" in line


def test_folder_and_kaggle_ids_escaping_are_refused(tmp_path, capsys):
    from wsol.datasets.base import build_dataset
    from wsol.errors import DataError

    f = tmp_path / "f"
    f.mkdir()
    (f / "boxes.csv").write_text("image,label,x0,y0,x1,y1\na.jpg,0,1,1,5,5\n../out.jpg,0,1,1,5,5\n")
    with pytest.raises(DataError, match=r"boxes.csv:3: .*outside"):
        build_dataset("folder", str(f))
    k = tmp_path / "k"
    (k / "ILSVRC" / "Data" / "CLS-LOC" / "val").mkdir(parents=True)
    (k / "LOC_val_solution.csv").write_text("ImageId,PredictionString\n../../../x,n01 1 1 5 5\n")
    (k / "LOC_synset_mapping.txt").write_text("n01 thing\n")
    with pytest.raises(DataError, match=r"LOC_val_solution.csv:2: .*leaves the image root"):
        build_dataset("imagenet", str(k), "val")


def test_save_cams_never_writes_outside_its_folder(cub, tmp_path):
    """A dataset built in Python (no adapter checks) with an escaping id: refused before writing."""
    from wsol.datasets.base import build_dataset
    from wsol.engine.run import EvalConfig, evaluate

    ds = build_dataset("cub", str(cub), "test")
    ds.samples[0].image_id = "../../escaped"
    cams = tmp_path / "run" / "cams"
    with pytest.raises(WsolError, match="outside"):
        evaluate(EvalConfig(dataset="cub", root=str(cub), backbone="tiny_test_net", weights="random",
                            out=str(tmp_path / "run"), save_cams=str(cams), progress=False), dataset=ds)
    assert not (tmp_path / "escaped.npy").exists() and not (tmp_path.parent / "escaped.npy").exists()


def test_confined_path():
    from wsol.utils.io import confined_path

    assert confined_path("/a/b", "c/d.jpg", ".npy") == "/a/b/c/d.jpg.npy"
    for bad in ("../x", "c/../../x", "/etc/x"):
        with pytest.raises(WsolError):
            confined_path("/a/b", bad)


# ------------------------------------------------------------------ other commands' outputs
def _suite_folder(path):
    path.mkdir()
    pd.DataFrame([{"run_id": "r1", "status": "ok", "reason": "", "maxboxacc_v2": 61.5}]).to_csv(
        path / "summary.csv", index=False)
    return (path / "summary.csv").read_bytes()


@pytest.mark.parametrize("cmd", ["evaluate", "score"])
def test_run_into_a_suite_folder_is_refused_and_its_summary_kept(cub, tmp_path, capsys, cmd):
    suite = tmp_path / "suite"
    before = _suite_folder(suite)
    extra = ["--cams", str(tmp_path)] if cmd == "score" else TINY
    rc = main(["-q", cmd, "--root", str(cub), *extra, "--out", str(suite)])
    line = _err_line(capsys)
    assert rc == 2 and str(suite) in line and "summary.csv" in line and "suite" in line
    assert (suite / "summary.csv").read_bytes() == before


def test_export_metadata_into_a_run_folder_is_refused(cub, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["-q", "evaluate", "--root", str(cub), *TINY, "--out", str(run)]) == 0
    capsys.readouterr()
    # its own kind is fine: a second evaluate replaces the run
    assert main(["-q", "evaluate", "--root", str(cub), *TINY, "--out", str(run)]) == 0
    capsys.readouterr()
    suite = tmp_path / "suite"
    _suite_folder(suite)
    (suite / "image_ids.txt").write_text("x\n")  # looks like a suite; image_ids.txt would be overwritten
    rc = main(["-q", "export-metadata", "--dataset", "cub", "--root", str(cub), "--out", str(suite)])
    assert rc == 2 and "refused" in _err_line(capsys)


def test_suite_refuses_a_run_folder_and_a_second_suite_on_one_folder(cub, tmp_path, capsys):
    from wsol.utils.outdirs import folder_lock

    yaml_path = tmp_path / "s.yaml"
    yaml_path.write_text(f"name: s\ndatasets:\n  - {{name: cub, root: {cub}, split: test}}\n"
                         "backbones:\n  - {name: tiny_test_net, weights: random}\nmethods: [cam]\n")
    run = tmp_path / "run"
    assert main(["-q", "evaluate", "--root", str(cub), *TINY, "--out", str(run)]) == 0
    capsys.readouterr()
    summary = (run / "summary.csv").read_bytes()
    assert main(["-q", "suite", str(yaml_path), "--out", str(run)]) == 2
    assert "refused" in _err_line(capsys) and (run / "summary.csv").read_bytes() == summary
    out = tmp_path / "suite"
    with folder_lock(str(out), "wsol suite"):  # another suite holds the folder
        rc = main(["-q", "suite", str(yaml_path), "--out", str(out)])
        line = _err_line(capsys)
    assert rc == 2 and "another wsol suite is running" in line and f"pid {os.getpid()}" in line
    assert not (out / "summary.csv").exists()
    assert main(["-q", "suite", str(yaml_path), "--out", str(out)]) == 0  # lock released


def test_report_and_overlay_refuse_to_overwrite_another_kind_of_file(cub, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["-q", "evaluate", "--root", str(cub), *TINY, "--out", str(run)]) == 0
    summary = (run / "summary.csv").read_bytes()
    rc = main(["-q", "report", str(run), "--out", str(run / "summary.csv")])
    line = _err_line(capsys)
    assert rc == 2 and "summary.csv" in line and "refused" in line
    assert (run / "summary.csv").read_bytes() == summary
    image = next((cub / "images").rglob("*.jpg"))
    rc = main(["-q", "overlay", "--image", str(image), *TINY, "--out", str(run / "per_image.csv")])
    assert rc == 2 and "refused" in _err_line(capsys)
    assert main(["-q", "report", str(run), "--out", str(tmp_path / "r.html")]) == 0
    assert main(["-q", "report", str(run), "--out", str(tmp_path / "r.html")]) == 0  # its own kind: replaced


# ------------------------------------------------------------------ option values
BAD_OPTIONS = [
    ("evaluate", "--batch-size", "0", ">= 1"), ("evaluate", "--batch-size", "-4", ">= 1"),
    ("evaluate", "--cam-step", "0", "(0, 1)"), ("evaluate", "--cam-step", "2", "(0, 1)"),
    ("evaluate", "--cam-step", "-0.1", "(0, 1)"), ("evaluate", "--cam-step", "nan", "(0, 1)"),
    ("evaluate", "--data-workers", "-1", ">= 0"), ("evaluate", "--device", "tpu", "cuda:N"),
    ("evaluate", "--limit", "-2", ">= 1"), ("evaluate", "--fixed-tau", "5", "[0, 1)"),
    ("evaluate", "--workers", "-1", ">= 0"), ("evaluate", "--method-batch", "0", ">= 1"),
    ("evaluate", "--on-error", "ignore", "one of fail, skip"), ("evaluate", "--protocol", "x", "one of wsoleval"),
    ("score", "--cam-step", "inf", "(0, 1)"), ("score", "--batch-size", "abc", ">= 1"),
    ("bench", "--repeats", "0", ">= 1"), ("bench", "--images", "-1", ">= 1"), ("bench", "--device", "gpu", "cuda"),
    ("train", "--epochs", "0", ">= 1"), ("train", "--lr", "-1", "> 0"), ("train", "--holdout", "1", "[0, 1)"),
    ("train", "--momentum", "nan", "[0, 1)"), ("train", "--data-workers", "-3", ">= 0"),
    ("demo", "--device", "tpu", "cuda"), ("demo", "--seed", "-1", ">= 0"),
    ("report", "--gallery", "-1", ">= 0"), ("overlay", "--tau", "1.5", "[0, 1)"),
    ("overlay", "--gt-box", "nan", "finite"), ("make-synthetic", "--classes", "0", "1..256"),
]
REQUIRED = {"evaluate": ["--root", "r", "--out", "o"], "score": ["--root", "r", "--out", "o", "--cams", "c"],
            "train": ["--root", "r", "--out", "o"], "report": ["r"], "overlay": ["--image", "i"],
            "make-synthetic": ["--out", "o"], "bench": [], "demo": []}


@pytest.mark.parametrize("cmd,opt,value,rng", BAD_OPTIONS, ids=[f"{c}{o}={v}" for c, o, v, _ in BAD_OPTIONS])
def test_option_values_are_checked_at_parse_time(tmp_path, capsys, cmd, opt, value, rng, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [opt, value, "1", "2", "3"] if opt == "--gt-box" else [opt, value]
    with pytest.raises(SystemExit) as e:
        main([cmd, *REQUIRED[cmd], *args])
    line = _err_line(capsys)
    assert e.value.code == 2 and opt in line and rng in line
    assert os.listdir(tmp_path) == []  # nothing started


@pytest.mark.parametrize("option,value,msg", [("batch_size", "0", "integer >= 1"), ("cam_step", "1e400", "(0, 1)"),
                                              ("fixed_tau", "5", "[0, 1)"), ("device", "tpu", "cuda:N"),
                                              ("limit", "1e400", "must be an integer")])
def test_suite_file_options_are_checked_like_the_cli(cub, tmp_path, capsys, option, value, msg):
    y = tmp_path / "s.yaml"
    y.write_text(f"name: s\ndatasets:\n  - {{name: cub, root: {cub}, split: test}}\n"
                 f"backbones:\n  - {{name: tiny_test_net, weights: random}}\nmethods: [cam]\n"
                 f"options:\n  {option}: {value}\n")
    rc = main(["-q", "suite", str(y), "--out", str(tmp_path / "o")])
    line = _err_line(capsys)
    assert rc == 2 and f"{y}:8:" in line and option in line and msg in line
    assert not (tmp_path / "o").exists()


def test_python_api_checks_the_same_ranges(cub, tmp_path):
    import wsol

    for kw, msg in ((dict(batch_size=0), "batch_size"), (dict(cam_step=float("nan")), "cam_step"),
                    (dict(fixed_tau=5.0), "fixed_tau"), (dict(workers=-1), "workers"), (dict(limit=-2), "limit")):
        with pytest.raises(WsolError, match=msg):
            wsol.evaluate(dataset="cub", root=str(cub), backbone="tiny_test_net", weights="random",
                          out=str(tmp_path / "o"), progress=False, **kw)


# ------------------------------------------------------------------ --out itself
def test_out_naming_a_file_or_under_a_file(cub, tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("mine")
    for out in (f, f / "sub"):
        rc = main(["-q", "evaluate", "--root", str(cub), *TINY, "--out", str(out)])
        line = _err_line(capsys)
        assert rc == 2 and str(f) in line
    rc = main(["-q", "evaluate", "--root", str(cub), *TINY, "--out", str(tmp_path / "o"), "--save-cams", str(f)])
    line = _err_line(capsys)
    assert rc == 2 and str(f) in line and "not a folder" in line
    assert f.read_text() == "mine"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores folder permissions")
def test_out_under_a_read_only_parent(cub, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc = main(["-q", "evaluate", "--root", str(cub), *TINY, "--out", str(ro / "o")])
        assert rc == 2 and str(ro / "o") in _err_line(capsys)
    finally:
        ro.chmod(0o755)


# ------------------------------------------------------------------ permissions
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_outputs_get_the_umask_permissions(cub, tmp_path, capsys, umask):
    old = os.umask(umask)
    try:
        run = tmp_path / "run"
        assert main(["-q", "evaluate", "--root", str(cub), *TINY, "--out", str(run),
                     "--save-cams", str(run / "cams"), "--report"]) == 0
        meta = tmp_path / "meta"
        assert main(["-q", "export-metadata", "--dataset", "cub", "--root", str(cub), "--out", str(meta)]) == 0
    finally:
        os.umask(old)
    files = [p for p in _files_under(tmp_path) if p.startswith((str(run), str(meta))) and not p.endswith(".lock")]
    assert len(files) > 10
    want = 0o666 & ~umask
    modes = {p: stat.S_IMODE(os.stat(p).st_mode) for p in files}
    assert {p: m for p, m in modes.items() if m != want} == {}
