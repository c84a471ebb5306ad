"""`wsol bench` CPU smoke (what CI runs) and the CSV/dataset helpers behind it."""
import csv
import os

import pandas as pd
import pytest

from wsol.cli import main
from wsol.apps.bench import (BENCH_COLUMNS, BenchConfig, append_rows, cycle_samples, device_slug,
                               resolve_workers)
from wsol.datasets.imagenet_like import make_imagenet_like


def test_bench_cpu_smoke(tmp_path):
    out = tmp_path / "cpu.csv"
    args = ["-q", "bench", "--images", "8", "--batch-size", "4", "--device", "cpu", "--backbone", "resnet18",
            "--repeats", "1", "--warmup", "1", "--workers", "1", "--data-workers", "0",
            "--cache-dir", str(tmp_path / "cache"), "--out-csv", str(out)]
    assert main(args) == 0
    df = pd.read_csv(out)
    assert list(df.columns) == BENCH_COLUMNS
    assert len(df) == 1
    r = df.iloc[0]
    assert r.device.startswith("cpu") and r.backbone == "resnet18" and r.batch_size == 4 and r.n_images == 8
    assert r["dtype"] == "fp32" and r.decode == "cpu" and not r.channels_last and not r["compile"]
    assert r.forward_images_per_s > 0 and r.e2e_images_per_s > 0
    assert r.ratio == pytest.approx(r.e2e_images_per_s / r.forward_images_per_s, rel=1e-4)
    for c in ("data_ms", "forward_ms", "cam_ms", "localize_ms", "metrics_ms", "total_ms"):
        assert r[c] > 0, c
    assert r.total_ms >= r.forward_ms
    assert r.projected_50k_s >= 50000 / r.e2e_images_per_s * 0.999
    # the generated images are a folder dataset anyone can evaluate
    folder = tmp_path / "cache" / "bench" / "jpeg-v1-n8-s0"
    assert (folder / "boxes.csv").is_file() and len(os.listdir(folder / "images")) == 8


def test_bench_refuses_gpu_decode_on_cpu(tmp_path, capsys):
    rc = main(["-q", "bench", "--device", "cpu", "--decode", "gpu", "--out-csv", str(tmp_path / "x.csv"),
               "--cache-dir", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("wsol: error: --decode gpu") and "\n" not in err
    assert not (tmp_path / "x.csv").exists()


def test_generated_images_are_imagenet_like(tmp_path):
    from PIL import Image

    folder = make_imagenet_like(str(tmp_path / "imgs"), 6, seed=1)
    rows = list(csv.DictReader(open(os.path.join(folder, "boxes.csv"))))
    assert {r["image"] for r in rows} == {f"images/{i:06d}.jpg" for i in range(6)}
    for r in rows:
        with Image.open(os.path.join(folder, r["image"])) as im:
            w, h = im.size
            assert im.format == "JPEG" and 300 <= min(w, h) and max(w, h) <= 640
        x0, y0, x1, y1 = (int(r[k]) for k in ("x0", "y0", "x1", "y1"))
        assert 0 <= x0 < x1 < w and 0 <= y0 < y1 < h and 0 <= int(r["label"]) < 1000
    mtime = os.path.getmtime(os.path.join(folder, "boxes.csv"))
    assert make_imagenet_like(folder, 6, seed=1) == folder  # cached: not rewritten
    assert os.path.getmtime(os.path.join(folder, "boxes.csv")) == mtime


def test_cycle_samples_gives_unique_ids():
    from wsol.datasets.base import Sample

    base = [Sample(f"a{i}.jpg", f"/x/a{i}.jpg", i, [[0, 0, 1, 1]]) for i in range(3)]
    out = cycle_samples(base, 7)
    assert [s.image_id for s in out] == ["a0.jpg", "a1.jpg", "a2.jpg", "a0.jpg#1", "a1.jpg#1", "a2.jpg#1", "a0.jpg#2"]
    assert out[3].path == "/x/a0.jpg"


def test_append_rows_header_and_union(tmp_path):
    p = tmp_path / "t" / "dev.csv"
    append_rows(str(p), [{"device": "d", "ratio": 0.5}])
    append_rows(str(p), [{"device": "e", "ratio": float("nan")}])
    lines = p.read_text().splitlines()
    assert lines[0] == ",".join(BENCH_COLUMNS) and len(lines) == 3
    # an older file with fewer columns keeps its rows and gains the new columns
    q = tmp_path / "old.csv"
    q.write_text("device,ratio\nold,0.9\n")
    append_rows(str(q), [{"device": "new", "ratio": 1.0}])
    df = pd.read_csv(q)
    assert list(df.device) == ["old", "new"] and list(df.columns[:len(BENCH_COLUMNS)]) == BENCH_COLUMNS


def test_device_slug_and_worker_split():
    assert device_slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"
    assert device_slug("cpu: AMD EPYC 7R13 Processor") == "cpu-amd-epyc-7r13-processor"
    assert resolve_workers(BenchConfig(), ncpu=16) == (8, 7)
    assert resolve_workers(BenchConfig.create(decode="gpu"), ncpu=16) == (4, 11)
    assert resolve_workers(BenchConfig(), ncpu=2) == (1, 1)
    assert resolve_workers(BenchConfig.create(workers=3, data_workers=0), ncpu=2) == (0, 3)


def test_bench_config_reuses_the_eval_schema():
    """BenchConfig keeps the evaluation's options in an EvalConfig, with the bench defaults."""
    from wsol.engine.config import EvalConfig

    cfg = BenchConfig()
    assert isinstance(cfg.run, EvalConfig)
    run = cfg.run
    assert (run.backbone, run.weights, run.workers, run.data_workers) == ("resnet50", "random", None, None)
    assert not run.dataset and not run.root and not run.split  # generated images
    c = BenchConfig.create(batch_size=8, repeats=2, dtype="bf16")
    assert (c.run.batch_size, c.repeats, c.run.dtype, c.run.backbone) == (8, 2, "bf16", "resnet50")
    with pytest.raises(TypeError):
        BenchConfig.create(no_such_option=1)
