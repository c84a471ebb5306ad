"""Every bad input of README's table is planted here and its promised behaviour checked."""
import errno
import os

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from cub_fixture import make_cub
from wsol.cli import main
from wsol.engine.run import EvalConfig, evaluate
from wsol.errors import DataError, WsolError
from wsol.transforms.image import load_rgb


def _cfg(root, out=None, **kw):
    base = dict(dataset="cub", root=str(root), backbone="tiny_test_net", weights="random", batch_size=4,
                out=str(out) if out else None, progress=False)
    base.update(kw)
    return EvalConfig(**base)


@pytest.fixture
def cub(tmp_path):
    make_cub(str(tmp_path / "cub"), n_per_class=4)
    return tmp_path / "cub"


def _first_test_image(cub):
    from wsol.datasets.base import build_dataset
    return build_dataset("cub", str(cub), "test").samples[0]


def test_missing_image_fails_with_one_line_then_skip_records_it(cub, tmp_path, capsys):
    s = _first_test_image(cub)
    os.remove(s.path)
    rc = main(["-q", "evaluate", "--root", str(cub), "--backbone", "tiny_test_net", "--weights", "random",
               "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and s.path in err and "missing image" in err and err.count("\n") == 1
    assert not (tmp_path / "o" / "summary.csv").exists()
    res = evaluate(_cfg(cub, tmp_path / "skip", on_error="skip"))
    per = res.per_image.set_index("image_id")
    assert per.loc[s.image_id, "status"] == "skipped" and "missing image" in per.loc[s.image_id, "reason"]
    sm = res.summary.iloc[0]
    assert sm.n_skipped == 1 and sm.n_images == 6 and "misses" in sm.metric_denominator
    ex = evaluate(_cfg(cub, tmp_path / "ex", on_error="skip", exclude_skipped=True)).summary.iloc[0]
    assert ex.n_images == 5 and ex.n_skipped == 1
    # a skipped image counts as a miss: same hits over 6 instead of 5
    assert sm.maxboxacc_iou30 == pytest.approx(ex.maxboxacc_iou30 * 5 / 6)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_image_names_the_file(cub, damage):
    s = _first_test_image(cub)
    data = open(s.path, "rb").read()
    with open(s.path, "wb") as f:
        f.write({"truncated": data[:200], "garbage": b"not a jpeg at all", "empty": b""}[damage])
    with pytest.raises(DataError, match="unreadable image") as e:
        evaluate(_cfg(cub))
    assert s.path in str(e.value)


@pytest.mark.parametrize("mode", ["L", "CMYK", "I;16", "RGBA", "LA", "P", "1"])
def test_odd_image_modes_become_rgb(tmp_path, mode):
    rng = np.random.default_rng(0)
    arr = (rng.random((40, 30, 3)) * 255).astype(np.uint8)
    im = Image.fromarray(arr)
    if mode == "I;16":
        im = Image.fromarray((rng.random((40, 30)) * 65535).astype(np.uint16))
    else:
        im = im.convert(mode)
    path = str(tmp_path / ("x.tif" if mode == "CMYK" else "x.png"))
    im.save(path)
    out = load_rgb(path)
    assert out.mode == "RGB" and out.size == (30, 40)
    if mode == "I;16":  # 16-bit scaled to 8-bit, not clipped
        assert np.asarray(out).max() > 200


def test_odd_modes_run_end_to_end(cub, tmp_path):
    from wsol.datasets.base import build_dataset
    for i, s in enumerate(build_dataset("cub", str(cub), "test").samples[:3]):
        im = Image.open(s.path)
        im.convert(["L", "CMYK", "RGB"][i]).save(s.path, "JPEG")
    res = evaluate(_cfg(cub))
    assert (res.per_image.status == "ok").all()


def test_empty_split_and_unrecognised_layout(cub, tmp_path):
    (cub / "train_test_split.txt").write_text("".join(f"{i} 1\n" for i in range(1, 13)))
    with pytest.raises(DataError, match="no images"):
        evaluate(_cfg(cub))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as e:
        evaluate(_cfg(tmp_path / "empty", dataset="imagenet", split="val"))
    assert "LOC_val_solution.csv" in str(e.value) or "layout" in str(e.value)


def test_class_id_out_of_range(cub):
    p = cub / "image_class_labels.txt"
    lines = p.read_text().splitlines()
    lines[1] = "2 7"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="image_class_labels.txt.*outside 1..3"):
        evaluate(_cfg(cub))


def test_label_outside_the_head(cub, tmp_path):
    from wsol.models.checkpoint import save_checkpoint
    from wsol.models.registry import create_backbone
    save_checkpoint(create_backbone("tiny_test_net", "random", num_classes=3), str(tmp_path / "c.pt"))
    with pytest.raises(WsolError, match="has 3 classes but dataset 'cub' has at least 10") as e:
        evaluate(_cfg(cub, weights=str(tmp_path / "c.pt")), dataset=_relabel(cub, 9))
    assert "--new-head" in str(e.value) and "\n" not in str(e.value)


def _relabel(cub, label):
    from wsol.datasets.base import build_dataset
    ds = build_dataset("cub", str(cub), "test")
    ds.samples[0].label = label
    ds.class_names = []
    ds.samples = ds.samples
    return ds


def test_inverted_box_in_cub_is_an_error(cub):
    p = cub / "bounding_boxes.txt"
    lines = p.read_text().splitlines()
    lines[0] = "1 10.0 10.0 -5.0 20.0"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"bounding_boxes.txt:1: negative box"):
        evaluate(_cfg(cub))


def test_box_outside_the_image_is_reported_by_check_data(cub, capsys):
    p = cub / "bounding_boxes.txt"
    lines = p.read_text().splitlines()
    lines[0] = "1 10.0 10.0 5000.0 20.0"
    p.write_text("\n".join(lines) + "\n")
    rc = main(["-q", "check-data", "--dataset", "cub", "--root", str(cub), "--split", "all"])
    out = capsys.readouterr().out
    assert rc == 1 and "outside" in out


def test_nonfinite_maps_are_flagged(cub, tmp_path):
    from wsol.cams.base import METHODS, CamMethod, register_method

    if "nan_test" not in METHODS:
        @register_method
        class NanCam(CamMethod):
            name = "nan_test"
            description = "test method with a NaN in the first map of each batch"

            def __call__(self, backbone, images, feats, logits, targets):
                m = feats.mean(1)
                m[0, 0, 0] = float("nan")
                return m
    res = evaluate(_cfg(cub, method="nan_test"))
    assert (res.per_image.status == "nonfinite_map").sum() == 2  # batches of 4 over 6 images
    assert res.summary.iloc[0].n_nonfinite == 2
    bad = res.per_image[res.per_image.status == "nonfinite_map"]
    assert (bad[["box_x0", "box_y0", "box_x1", "box_y1"]] == 0).all().all()


def test_checkpoint_mismatch_is_one_line(tmp_path, capsys):
    torch.save({"weight": torch.zeros(3)}, tmp_path / "bad.pt")
    make_cub(str(tmp_path / "cub"))
    rc = main(["-q", "evaluate", "--root", str(tmp_path / "cub"), "--backbone", "tiny_test_net",
               "--weights", str(tmp_path / "bad.pt"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "does not match backbone" in err and err.count("\n") == 1


def test_cuda_oom_suggests_a_batch_size(cub, monkeypatch):
    from wsol.models.backbone import NetBackbone

    def boom(self, x):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    monkeypatch.setattr(NetBackbone, "forward_features", boom)
    with pytest.raises(WsolError, match=r"--batch-size 2"):
        evaluate(_cfg(cub))


def test_disk_full_is_one_line_and_leaves_no_summary(cub, tmp_path, monkeypatch, capsys):
    real_replace = os.replace

    def full(src, dst):
        if str(dst).endswith(".csv"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)
    monkeypatch.setattr(os, "replace", full)
    rc = main(["-q", "evaluate", "--root", str(cub), "--backbone", "tiny_test_net", "--weights", "random",
               "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "No space left on device" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()  # made for this run, which failed: removed, no partial file left


def test_ctrl_c_stops_cleanly_and_keeps_the_earlier_run(cub, tmp_path, monkeypatch, capsys):
    out = tmp_path / "o"
    assert main(["-q", "evaluate", "--root", str(cub), "--backbone", "tiny_test_net", "--weights", "random",
                 "--out", str(out)]) == 0
    summary = (out / "summary.csv").read_bytes()
    from wsol.evaluation import box_evaluator

    def interrupt(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(box_evaluator.BoxEvaluator, "process", interrupt)
    rc = main(["-q", "evaluate", "--root", str(cub), "--backbone", "tiny_test_net", "--weights", "random",
               "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 130 and "rerun the same command" in err and f"{out} is as it was" in err
    # results replace the earlier run's only when a run finishes: the finished one is kept whole
    assert (out / "summary.csv").read_bytes() == summary and sorted(os.listdir(out)) == [
        "curves.csv", "per_image.csv", "run.json", "summary.csv", "timings.csv"]


def test_heatmap_faults_in_score(cub, tmp_path, capsys):
    cams = tmp_path / "cams"
    evaluate(_cfg(cub, save_cams=str(cams)))
    s = _first_test_image(cub)
    np.save(cams / f"{s.image_id}.npy", np.full((224, 224), 2.0, np.float32))
    rc = main(["-q", "score", "--cams", str(cams), "--root", str(cub), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "[0, 1]" in err and s.image_id in err
    np.save(cams / f"{s.image_id}.npy", np.zeros((10, 10), np.float32))
    rc = main(["-q", "score", "--cams", str(cams), "--root", str(cub), "--out", str(tmp_path / "o"),
               "--on-error", "skip"])
    assert rc == 0
    per = pd.read_csv(tmp_path / "o" / "per_image.csv")
    assert (per.status == "skipped").sum() == 1 and "224x224" in per.reason.dropna().iloc[0]
