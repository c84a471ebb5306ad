"""Integration on the 100 real ILSVRC2012 val images in ../shared (skipped when absent)."""
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from wsol.datasets.base import build_dataset
from wsol.engine.run import EvalConfig, evaluate, score
from wsoleval_reference import ReferenceBoxEvaluator, resize_bbox

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def lite_run(shared_imagenet, tmp_path_factory):
    out = tmp_path_factory.mktemp("lite_real")
    cfg = EvalConfig(dataset="imagenet", root=shared_imagenet, split="val", backbone="efficientnet_lite0",
                     weights="pretrained", batch_size=50, out=str(out), save_cams=str(out / "cams"),
                     progress=False)
    return cfg, evaluate(cfg), out


def test_lite0_top1_on_real_images(lite_run):
    _, res, _ = lite_run
    s = res.summary.iloc[0]
    assert s.n_images == 100
    assert s.top1_cls >= 68.0
    assert s.top5_cls >= s.top1_cls and s.gt_known_loc >= s.top1_loc


def test_maxboxacc_v2_equals_the_slow_reference(lite_run, shared_imagenet):
    cfg, res, out = lite_run
    ds = build_dataset("imagenet", shared_imagenet, "val")
    ref = ReferenceBoxEvaluator(multi_contour_eval=True)
    ref1 = ReferenceBoxEvaluator(multi_contour_eval=False, iou_thresholds=(50,))
    for s in ds.samples:
        m = np.load(out / "cams" / f"{s.image_id}.npy")
        with Image.open(s.path) as im:
            size = im.size
        gt = [resize_bbox(b, size) for b in s.boxes]
        ref.accumulate(m, gt)
        ref1.accumulate(m, gt)
    r = ref.compute()
    sm = res.summary.iloc[0]
    assert sm.maxboxacc_v2 == pytest.approx(np.mean(r), abs=1e-9)
    assert [sm.maxboxacc_iou30, sm.maxboxacc_iou50, sm.maxboxacc_iou70] == pytest.approx(r, abs=1e-9)
    assert sm.maxboxacc == pytest.approx(ref1.compute()[0], abs=1e-9)
    # per-image IoU at loc_tau, image by image
    li = int(np.argmin(np.abs(np.arange(0, 1, 0.01) - sm.loc_tau)))
    np.testing.assert_allclose(res.per_image.iou.to_numpy(), [p[li] for p in ref1.per_image], atol=1e-6)


def test_exported_heatmaps_rescore_identically(lite_run, shared_imagenet, tmp_path):
    cfg, res, out = lite_run
    # through the wsolevaluation metadata adapter, without images: sizes from image_sizes.txt
    cfg2 = EvalConfig(dataset="wsoleval", root=f"{shared_imagenet}/wsoleval/test", split="test",
                      out=str(tmp_path), progress=False)
    again = score(str(out / "cams"), cfg2).summary.iloc[0]
    first = res.summary.iloc[0]
    for c in ("n_images", "gt_known_loc", "maxboxacc", "maxboxacc_v2", "maxboxacc_iou30", "maxboxacc_iou50",
              "maxboxacc_iou70", "tau_iou30", "tau_iou50", "tau_iou70", "loc_tau", "mean_iou"):
        assert again[c] == first[c], c
    a = pd.read_csv(out / "per_image.csv").set_index("image_id")
    b = pd.read_csv(tmp_path / "per_image.csv").set_index("image_id")
    pd.testing.assert_series_equal(a.iou, b.iou.loc[a.index], check_exact=True)


def test_wsoleval_metadata_run_equals_the_kaggle_run(lite_run, shared_imagenet, tmp_path, capsys):
    """wsolevaluation's own ILSVRC metadata (no class list: labels reach 983 on this sample)
    with the pretrained 1000-way head, through the CLI and with no extra file, gives exactly
    the Kaggle adapter's numbers: the head is kept, not re-initialised."""
    from wsol.cli import main

    _, res, out = lite_run
    rc = main(["-q", "evaluate", "--dataset", "wsoleval", "--root", f"{shared_imagenet}/wsoleval/test",
               "--images", f"{shared_imagenet}/ILSVRC/Data/CLS-LOC", "--backbone", "efficientnet_lite0",
               "--weights", "pretrained", "--batch-size", "50", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "re-initialised" not in err
    a, b = pd.read_csv(out / "summary.csv").iloc[0], pd.read_csv(tmp_path / "summary.csv").iloc[0]
    assert a.top1_cls == b.top1_cls >= 68.0
    skip = {"dataset", "split", "images_per_s", "date", "device"}
    for c in a.index:
        if c not in skip:
            assert (a[c] == b[c]) or (pd.isna(a[c]) and pd.isna(b[c])), c
    pa = pd.read_csv(out / "per_image.csv").set_index("image_id")
    pb = pd.read_csv(tmp_path / "per_image.csv").set_index("image_id")
    pd.testing.assert_frame_equal(pa, pb.loc[pa.index])
    pd.testing.assert_frame_equal(pd.read_csv(out / "curves.csv"), pd.read_csv(tmp_path / "curves.csv"))
