"""Hostile input, round three: nothing that exists is lost.

A rerun writes into a fresh (hidden) folder and replaces the old results only when it finishes;
``--out-csv`` refuses a file of another kind; a full disk on any write is one line and leaves
the previous file intact (ENOSPC is simulated by making the write itself fail). Through
``wsol.cli.main``.
"""
import errno
import os

import pandas as pd
import pytest

from cub_fixture import make_cub
from wsol.cli import main

TINY = ["--backbone", "tiny_test_net", "--weights", "random"]


def _err_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("WARNING", "INFO"))]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _snapshot(folder):
    return {os.path.relpath(os.path.join(d, f), folder): open(os.path.join(d, f), "rb").read()
            for d, _, fs in os.walk(folder) for f in fs}


def _enospc(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def run(tmp_path):
    """A CUB fixture and a finished evaluate run of it."""
    cub = tmp_path / "cub"
    make_cub(str(cub), n_per_class=2)
    out = tmp_path / "run"
    assert main(["-q", "evaluate", "--root", str(cub), *TINY, "--out", str(out)]) == 0
    return cub, out


# ------------------------------------------------------------------ reruns
def test_a_failed_rerun_leaves_the_finished_results(run, capsys):
    """Before: a rerun deleted the old CSVs first, so a rerun that failed left nothing."""
    cub, out = run
    before = _snapshot(out)
    img = next((cub / "images").rglob("*.jpg"))
    img.unlink()                                   # the rerun fails on a missing image
    assert main(["-q", "evaluate", "--root", str(cub), *TINY, "--out", str(out), "--cam-step", "0.05"]) == 2
    assert str(img) in _err_line(capsys)
    assert _snapshot(out) == before                # every byte as it was, no staging folder left


def test_a_finished_rerun_replaces_the_results_and_drops_stale_ones(run):
    cub, out = run
    (out / "report.html").write_text("<html>of the old numbers</html>")
    old = pd.read_csv(out / "summary.csv")
    assert main(["-q", "evaluate", "--root", str(cub), *TINY, "--out", str(out), "--cam-step", "0.05"]) == 0
    new = pd.read_csv(out / "summary.csv")
    assert old.n_thresholds[0] == 100 and new.n_thresholds[0] == 20
    assert sorted(os.listdir(out)) == ["curves.csv", "per_image.csv", "run.json", "summary.csv", "timings.csv"]


def test_a_failed_run_leaves_no_empty_out_or_save_cams(tmp_path, capsys):
    cub = tmp_path / "cub"
    make_cub(str(cub), n_per_class=1)
    next((cub / "images").rglob("*.jpg")).unlink()
    out, cams = tmp_path / "new" / "run", tmp_path / "cams"
    assert main(["-q", "evaluate", "--root", str(cub), *TINY, "--out", str(out), "--save-cams", str(cams)]) == 2
    _err_line(capsys)
    assert not out.exists() and not cams.exists()


def test_a_failed_score_leaves_the_earlier_score(run, tmp_path, capsys):
    cub, out = run
    cams = tmp_path / "cams"
    assert main(["-q", "evaluate", "--root", str(cub), *TINY, "--out", str(tmp_path / "r2"),
                 "--save-cams", str(cams)]) == 0
    sc = tmp_path / "score"
    assert main(["-q", "score", "--root", str(cub), "--cams", str(cams), "--out", str(sc)]) == 0
    before = _snapshot(sc)
    next(cams.rglob("*.npy")).write_bytes(b"garbage")
    assert main(["-q", "score", "--root", str(cub), "--cams", str(cams), "--out", str(sc)]) == 2
    assert "unreadable heatmap" in _err_line(capsys) and _snapshot(sc) == before


# ------------------------------------------------------------------ disk full
def test_disk_full_while_writing_results_keeps_the_previous_run(run, capsys, monkeypatch):
    cub, out = run
    before = _snapshot(out)
    monkeypatch.setattr(pd.DataFrame, "to_csv", _enospc)
    assert main(["-q", "evaluate", "--root", str(cub), *TINY, "--out", str(out), "--cam-step", "0.05"]) == 2
    line = _err_line(capsys)
    assert "No space left on device" in line and str(out) in line
    assert _snapshot(out) == before


def test_disk_full_while_saving_a_checkpoint_is_one_line(tmp_path, capsys, monkeypatch):
    """Before: a torch traceback (PytorchStreamWriter's RuntimeError is not an OSError)."""
    import torch

    from wsol.models.registry import create_backbone
    from wsol.models.checkpoint import save_checkpoint

    bb = create_backbone("tiny_test_net", "random", num_classes=3)
    path = tmp_path / "last.pt"
    save_checkpoint(bb, str(path))
    before = path.read_bytes()

    def full(*a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:783] . PytorchStreamWriter failed writing "
                           "file data/0: file write failed")
    monkeypatch.setattr(torch, "save", full)
    from wsol.errors import WsolError

    with pytest.raises(WsolError, match=r"last.pt: cannot write \(torch.save failed: .*file write failed\)"):
        save_checkpoint(bb, str(path))
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["last.pt"]


def test_disk_full_in_wsol_train_is_one_line(tmp_path, capsys, monkeypatch):
    import torch

    from wsol.datasets.synthetic import make_synthetic

    root = make_synthetic(str(tmp_path / "syn"), n_classes=2, n_train_per_class=2, n_test_per_class=1,
                          progress=False)

    def full(*a, **k):
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")
    monkeypatch.setattr(torch, "save", full)
    out = tmp_path / "train"
    rc = main(["-q", "train", "--dataset", "synthetic", "--root", root, "--backbone", "tiny_test_net",
               "--weights", "random", "--epochs", "1", "--batch-size", "4", "--out", str(out)])
    line = _err_line(capsys)
    assert rc == 2 and "cannot write (torch.save failed" in line and str(out) in line


def test_any_other_oserror_is_one_line(tmp_path, capsys, monkeypatch):
    """An OSError from a write that does not go through the atomic writers still ends in one line
    naming the file (here the synthetic generator's image write is made to raise it raw)."""
    from wsol.datasets import synthetic

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", path)
    monkeypatch.setattr(synthetic, "write_bytes_atomic", full)
    rc = main(["-q", "make-synthetic", "--out", str(tmp_path / "syn"), "--classes", "2"])
    line = _err_line(capsys)
    assert rc == 2 and line.startswith(f"wsol: error: {tmp_path / 'syn'}") and "No space left on device" in line


# ------------------------------------------------------------------ bench --out-csv
def test_bench_out_csv_refuses_a_run_summary(run, capsys):
    """Before: `wsol bench --out-csv RUN/summary.csv` appended a bench row to a finished run."""
    _cub, out = run
    before = _snapshot(out)
    rc = main(["-q", "bench", "--images", "4", "--batch-size", "4", "--device", "cpu", "--backbone", "tiny_test_net",
               "--repeats", "1", "--out-csv", str(out / "summary.csv")])
    line = _err_line(capsys)
    assert rc == 2 and f"--out-csv {out / 'summary.csv'}: exists and is not a `wsol bench` CSV" in line
    assert _snapshot(out) == before


@pytest.mark.parametrize("content", [b"\x80\x03}q\x00(X\x08\x00\x00\x00backbone", b"a,b\n1,2\n"])
def test_bench_out_csv_refuses_other_files(tmp_path, capsys, content):
    f = tmp_path / "x.csv"
    f.write_bytes(content)
    rc = main(["-q", "bench", "--images", "4", "--device", "cpu", "--backbone", "tiny_test_net",
               "--out-csv", str(f)])
    assert rc == 2 and "is not a `wsol bench` CSV" in _err_line(capsys) and f.read_bytes() == content


def test_bench_append_is_atomic_on_a_full_disk(tmp_path, monkeypatch):
    from wsol.apps.bench import BENCH_COLUMNS, append_rows
    from wsol.errors import WsolError
    from wsol.utils import io as wio

    path = str(tmp_path / "cpu.csv")
    row = {c: 1.0 for c in BENCH_COLUMNS}
    append_rows(path, [row])
    append_rows(path, [row])
    before = open(path, "rb").read()
    assert len(pd.read_csv(path)) == 2

    real = wio.os.replace
    monkeypatch.setattr(wio.os, "replace", _enospc)
    with pytest.raises(WsolError, match="cpu.csv: cannot write"):
        append_rows(path, [row])
    monkeypatch.setattr(wio.os, "replace", real)
    assert open(path, "rb").read() == before and os.listdir(tmp_path) == ["cpu.csv"]
