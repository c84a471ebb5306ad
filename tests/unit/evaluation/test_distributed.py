"""torchrun data-parallel evaluation: 2 CPU processes (gloo) give the single-process CSVs."""
import os
import subprocess
import sys

import pandas as pd
import pytest

from cub_fixture import make_cub
from wsol.cli import main
from wsol.engine.distributed import launched_by_torchrun
from wsol.evaluation.sharding import shard_bounds
from wsol.evaluation.timing import reduce_timings

from shared_data import REPO  # noqa: E402
NOT_COMPARED = {"images_per_s", "device", "date"}


@pytest.mark.parametrize("n", [0, 1, 2, 9, 10, 50_000])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
def test_shards_cover_every_image_once(n, world):
    idx = [i for r in range(world) for i in range(*shard_bounds(n, world, r))]
    assert idx == list(range(n))
    sizes = [b - a for a, b in (shard_bounds(n, world, r) for r in range(world))]
    assert max(sizes) - min(sizes) <= 1


def test_reduce_timings_sums_rates():
    row = dict(seconds=2.0, images=10, images_per_s=5.0, median_batch_ms=100.0, batches=2, warmup_batches=1)
    a = pd.DataFrame([{"stage": "forward", **row}, {"stage": "wall", **row}])
    b = pd.DataFrame([{"stage": "forward", **row, "images_per_s": 7.0, "median_batch_ms": 300.0}])
    out, per_rank = reduce_timings([a, b])
    f = out.set_index("stage").loc["forward"]
    assert (f.seconds, f.images, f.images_per_s, f.median_batch_ms, f.batches) == (4.0, 20, 12.0, 200.0, 4)
    assert "wall" not in set(out.stage) and list(per_rank["rank"]) == [0, 0, 1]


def test_launch_detection(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not launched_by_torchrun()
    monkeypatch.setenv("RANK", "1")
    assert launched_by_torchrun()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not launched_by_torchrun()  # a one-process torchrun is the plain path


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    return env


def test_torchrun_two_cpu_ranks_equal_single_process(tmp_path):
    make_cub(str(tmp_path / "cub"), n_per_class=6)  # 9 test images: shards of 4 and 5
    common = ["-m", "wsol", "-q", "evaluate", "--root", str(tmp_path / "cub"), "--backbone", "resnet18",
              "--weights", "random", "--batch-size", "2"]
    assert main(common[2:] + ["--out", str(tmp_path / "one")]) == 0  # single process, in this one
    multi = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                            *common, "--out", str(tmp_path / "two")], env=_env(), capture_output=True, text=True,
                           timeout=300)
    assert multi.returncode == 0, multi.stderr[-3000:]
    assert multi.stdout.count("n_images=9") == 1  # rank 0 reports, once
    one, two = (pd.read_csv(tmp_path / d / "summary.csv") for d in ("one", "two"))
    assert two.device[0].startswith("2 x ")
    cols = [c for c in one.columns if c not in NOT_COMPARED]
    assert list(two.columns) == list(one.columns)
    pd.testing.assert_frame_equal(one[cols], two[cols])
    assert one.n_images[0] == 9
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "one" / "per_image.csv"),
                                  pd.read_csv(tmp_path / "two" / "per_image.csv"))
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "one" / "curves.csv"),
                                  pd.read_csv(tmp_path / "two" / "curves.csv"))
    t = pd.read_csv(tmp_path / "two" / "timings.csv").set_index("stage")
    assert t.loc["forward", "images"] == 9 and t.loc["wall", "images"] == 9 and (t.ranks == 2).all()
    per_rank = pd.read_csv(tmp_path / "two" / "timings_per_rank.csv")
    assert sorted(per_rank[per_rank.stage == "total"].images) == [4, 5]


def test_torchrun_two_cpu_ranks_merge_pixel_metrics(tmp_path):
    """Masks (OpenImages layout): the PxAP histograms and pointing counts of the shards add up."""
    from wsol.datasets.base import dataset_info

    meta, split, opts = dataset_info("openimages").example(str(tmp_path / "oi"))
    common = ["-m", "wsol", "-q", "evaluate", "--dataset", "openimages", "--root", meta, "--images", opts["images"],
              "--backbone", "resnet18", "--weights", "random", "--new-head", "--batch-size", "2"]
    assert main(common[2:] + ["--out", str(tmp_path / "one")]) == 0
    multi = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                            *common, "--out", str(tmp_path / "two")], env=_env(), capture_output=True, text=True,
                           timeout=300)
    assert multi.returncode == 0, multi.stderr[-3000:]
    one, two = (pd.read_csv(tmp_path / d / "summary.csv") for d in ("one", "two"))
    cols = [c for c in one.columns if c not in NOT_COMPARED]
    pd.testing.assert_frame_equal(one[cols], two[cols])
    assert 0 < one.pxap[0] < 100 and one.pointing_region[0] == "mask"
    for f in ("per_image.csv", "curves.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "one" / f), pd.read_csv(tmp_path / "two" / f))
