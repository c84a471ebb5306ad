"""Byte-identity of the output CSVs of a fixed set of runs, pinned by hashes.

Restructuring must not change a single output byte: several methods, all three sweeps,
both protocols, skipped images, ``score`` of exported heatmaps and a two-process torchrun
run, on a small synthetic CUB-layout set with the tiny test backbone (resnet18 for the
torchrun run, whose subprocesses do not have the test registry). ``per_image.csv`` and
``curves.csv`` are hashed as written; ``summary.csv`` without the columns that vary from
run to run (throughput, device, version, date); ``timings.csv`` is all timing, not hashed.

The hashes are in ``tests/fixtures/golden/csv_hashes.json``. A change that is meant to change the
numbers regenerates them with ``WSOL_UPDATE_GOLDEN=1 python -m pytest tests/integration/test_golden_outputs.py``
and says why in its commit.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from typing import Dict

import pytest

from cub_fixture import make_cub

from wsol.cli import main

from shared_data import REPO  # noqa: E402
GOLDEN = os.path.join(REPO, "tests", "fixtures", "golden", "csv_hashes.json")
VOLATILE = {"images_per_s", "device", "wsol_version", "date"}
UPDATE = os.environ.get("WSOL_UPDATE_GOLDEN") == "1"

TINY = ["--backbone", "tiny_test_net", "--weights", "random", "--batch-size", "3"]
# run name -> extra CLI arguments of `wsol evaluate` (all on the same data)
EVAL_RUNS: Dict[str, list] = {
    "cam-fast": ["--method", "cam", "--save-cams", "{out}/cams"],
    "cam-reference-step0.001": ["--method", "cam", "--sweep", "reference", "--cam-step", "0.001", "--fixed-tau", "0.3"],
    "gradcam-per-threshold": ["--method", "gradcam", "--sweep", "per-threshold"],
    "gradcampp-workers": ["--method", "gradcampp", "--workers", "1"],
    "layercam": ["--method", "layercam"],
    "scorecam": ["--method", "scorecam", "--method-batch", "4"],
    "center_gaussian": ["--method", "center_gaussian"],
    "random-seeded": ["--method", "random"],
    "cam2016": ["--method", "cam", "--protocol", "cam2016"],
    "skip-missing": ["--method", "cam", "--on-error", "skip", "--delete-first"],
    "skip-missing-excluded": ["--method", "cam", "--on-error", "skip", "--exclude-skipped", "--delete-first"],
}


def csv_digest(path: str, base: str = "") -> str:
    """sha256 of a CSV's bytes (the temporary folder ``base`` written as ``<TMP>``, for the
    reasons that name a file); for summary.csv after dropping the VOLATILE columns."""
    data = open(path, "rb").read()
    if base:
        data = data.replace(base.encode("utf-8"), b"<TMP>")
    if os.path.basename(path) == "summary.csv":
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
        keep = [i for i, c in enumerate(rows[0]) if c not in VOLATILE]
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([[r[i] for i in keep] for r in rows])
        data = buf.getvalue().encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def run_digests(out: str, base) -> Dict[str, str]:
    return {f: csv_digest(os.path.join(out, f), str(base)) for f in ("summary.csv", "per_image.csv", "curves.csv")}


@pytest.fixture(scope="module")
def cub_set(tmp_path_factory):
    base = tmp_path_factory.mktemp("golden")
    make_cub(str(base / "cub"), n_per_class=6, seed=3)  # 9 test images
    make_cub(str(base / "cub_missing"), n_per_class=6, seed=3)
    first = sorted((base / "cub_missing" / "images").rglob("*.jpg"))
    os.remove(first[0])  # a test image (even k are test images in make_cub)
    return base


@pytest.fixture(scope="module")
def digests(cub_set, one_thread):
    got: Dict[str, Dict[str, str]] = {}
    for name, extra in EVAL_RUNS.items():
        out = str(cub_set / "runs" / name)
        extra = [a.replace("{out}", out) for a in extra]
        root = cub_set / ("cub_missing" if "--delete-first" in extra else "cub")
        extra = [a for a in extra if a != "--delete-first"]
        assert main(["-q", "evaluate", "--root", str(root), *TINY, *extra, "--out", out]) == 0, name
        if "--on-error" in extra:  # the planted missing image is in the split
            assert open(os.path.join(out, "per_image.csv")).read().count(",skipped,") == 1
        got[name] = run_digests(out, cub_set)
    out = str(cub_set / "runs" / "score")
    assert main(["-q", "score", "--root", str(cub_set / "cub"), "--cams", str(cub_set / "runs" / "cam-fast" / "cams"),
                 "--batch-size", "4", "--out", out]) == 0
    got["score"] = run_digests(out, cub_set)
    return got


def _torchrun_digests(cub_set) -> Dict[str, str]:
    out = str(cub_set / "runs" / "torchrun")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "wsol", "-q", "evaluate", "--root", str(cub_set / "cub"), "--backbone", "resnet18",
                        "--weights", "random", "--batch-size", "2", "--method", "gradcam", "--out", out],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return run_digests(out, cub_set)


def _check(name: str, got: Dict[str, str]) -> None:
    golden = json.load(open(GOLDEN)) if os.path.isfile(GOLDEN) else {}
    if UPDATE:
        golden[name] = got
        with open(GOLDEN, "w") as f:
            json.dump(dict(sorted(golden.items())), f, indent=1)
            f.write("\n")
        return
    assert name in golden, f"{name}: no golden hashes (WSOL_UPDATE_GOLDEN=1 to record them)"
    diff = [f for f in got if got[f] != golden[name].get(f)]
    assert not diff, f"{name}: {', '.join(diff)} changed"


@pytest.mark.parametrize("name", [*EVAL_RUNS, "score"])
def test_csv_bytes_unchanged(name, digests):
    _check(name, digests[name])


def test_torchrun_csv_bytes_unchanged(cub_set):
    _check("torchrun-gradcam", _torchrun_digests(cub_set))


def test_digest_ignores_only_the_volatile_columns(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "summary.csv").write_text("n_images,maxboxacc_v2,images_per_s,date\n9,55.5,12.3,2026-01-01\n")
    (b / "summary.csv").write_text("n_images,maxboxacc_v2,images_per_s,date\n9,55.5,99.9,2027-02-02\n")
    assert csv_digest(str(a / "summary.csv")) == csv_digest(str(b / "summary.csv"))
    (b / "summary.csv").write_text("n_images,maxboxacc_v2,images_per_s,date\n9,55.50,12.3,2026-01-01\n")
    assert csv_digest(str(a / "summary.csv")) != csv_digest(str(b / "summary.csv"))
