"""On the shared real ImageNet images: boxes and classes that ``wsol evaluate`` exported
(``--save-boxes``, ``--save-predictions``) re-scored by ``wsol score --boxes --predictions``
give the very numbers of the run that made them; a τ policy on pseudo-boxes through the
model; ``wsol compare`` refuses a published number whose fingerprint differs, naming the
field."""
from __future__ import annotations

import os

import pandas as pd
import pytest

from shared_data import imagenet_val_100
from wsol.cli.app import main

pytestmark = [pytest.mark.slow, pytest.mark.realdata]
N = 12
SAME = ["top1_cls", "top5_cls", "gt_known_loc", "top1_loc", "top5_loc", "policy_gt_known_loc", "policy_top1_loc",
        "policy_top5_loc", "n_images"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = imagenet_val_100()
    d = tmp_path_factory.mktemp("byo")
    data = ["--dataset", "imagenet", "--root", root, "--limit", str(N)]
    assert main(["-q", "evaluate", *data, "--backbone", "efficientnet_lite0", "--weights", "pretrained",
                 "--out", str(d / "run"), "--save-boxes", str(d / "boxes.csv"),
                 "--save-predictions", str(d / "preds.csv")]) == 0
    return d, data


def test_exported_boxes_and_classes_rescore_to_the_same_numbers(run):
    d, data = run
    assert main(["-q", "score", *data, "--boxes", str(d / "boxes.csv"), "--predictions", str(d / "preds.csv"),
                 "--out", str(d / "rescored")]) == 0
    a = pd.read_csv(d / "run" / "summary.csv").iloc[0]
    b = pd.read_csv(d / "rescored" / "summary.csv").iloc[0]
    assert a.n_images == N and a.top1_loc > 0 and a.gt_known_loc > 0  # not a trivially empty run
    for c in SAME:
        assert a[c] == b[c], c  # exactly
    assert b.mean_iou == pytest.approx(a.mean_iou, abs=1e-9)
    assert b.n_missing_boxes == 0 and b.n_missing_predictions == 0 and b.n_unknown_rows == 0
    pa = pd.read_csv(d / "run" / "per_image.csv")
    pb = pd.read_csv(d / "rescored" / "per_image.csv")
    assert list(pa.image_id) == list(pb.image_id)
    assert pb.iou.tolist() == pytest.approx(pa.iou.tolist(), abs=1e-12)
    assert (pa[["box_x0", "box_y0", "box_x1", "box_y1"]].values == pb[["box_x0", "box_y0", "box_x1", "box_y1"]].values).all()
    assert (pa.top1_loc_correct == pb.top1_loc_correct).all() and (pa.pred_top5 == pb.pred_top5).all()


def test_pseudo_box_policy_through_the_model(run, tmp_path):
    """Pseudo-boxes = the whole image for 4 of the images: the policy's τ is the one a run
    with those boxes as its test set picks as its best (its loc_tau)."""
    d, data = run
    root = imagenet_val_100()
    meta = os.path.join(root, "wsoleval", "test")
    rows = {n: open(os.path.join(meta, n)).read().splitlines()[:4] for n in
            ("image_ids.txt", "class_labels.txt", "image_sizes.txt")}
    pseudo = tmp_path / "pseudo"
    pseudo.mkdir()
    for n, lines in rows.items():
        (pseudo / n).write_text("\n".join(lines) + "\n")
    (pseudo / "localization.txt").write_text("".join(
        f"{line.split(',')[0]},0,0,{int(line.split(',')[1]) - 1},{int(line.split(',')[2]) - 1}\n"
        for line in rows["image_sizes.txt"]))
    images = os.path.join(root, "ILSVRC", "Data", "CLS-LOC")
    common = ["--backbone", "efficientnet_lite0", "--weights", "pretrained"]
    test = ["--dataset", "wsoleval", "--root", meta, "--images", images, "--limit", str(N)]  # the same images
    assert main(["-q", "evaluate", *test, *common, "--tau-policy", "pseudo_boxes", "--tau-source", str(pseudo),
                 "--out", str(tmp_path / "policy")]) == 0
    assert main(["-q", "evaluate", "--dataset", "wsoleval", "--root", str(pseudo), "--images", images, *common,
                 "--out", str(tmp_path / "on_pseudo")]) == 0
    s = pd.read_csv(tmp_path / "policy" / "summary.csv").iloc[0]
    ref = pd.read_csv(tmp_path / "on_pseudo" / "summary.csv").iloc[0]
    base = pd.read_csv(d / "run" / "summary.csv").iloc[0]
    assert s.tau_policy == "pseudo_boxes" and s.tau_policy_n_images == 4 and s.policy_tau == ref.loc_tau
    assert s.maxboxacc_v2 == base.maxboxacc_v2 and s.gt_known_loc == base.gt_known_loc  # test numbers unchanged
    curves = pd.read_csv(d / "run" / "curves.csv")
    at = curves[(curves["mode"] == "largest") & (curves.iou_threshold == 0.5)].set_index("tau").box_acc
    assert s.policy_gt_known_loc == pytest.approx(at[s.policy_tau], abs=1e-12)


def test_compare_refuses_a_mismatched_fingerprint(run, capsys):
    d, _ = run
    top1 = pd.read_csv(d / "run" / "summary.csv").iloc[0].top1_loc
    keys = "imagenet,val,efficientnet_lite0,cam,wsoleval,top1_loc"
    fp = "test_best,largest_contour,224"
    (d / "paper.csv").write_text(
        "source,dataset,split,backbone,method,protocol,metric,value,threshold_policy,box_rule,map_resolution,"
        "test_crop,classifier\n"
        f"same,{keys},50.0,{fp},resize224,same\n"
        f"crop,{keys.replace('top1_loc', 'top5_loc')},60.0,{fp},resize256_crop224,same\n")
    assert main(["-q", "compare", str(d / "run"), "--paper", str(d / "paper.csv")]) == 0
    out = capsys.readouterr().out
    assert "fingerprint differs in test_crop (measured resize224, published resize256_crop224)" in out
    cmp = pd.read_csv(d / "run" / "comparison.csv")
    assert list(cmp.status) == ["measured", "fingerprint differs"]
    assert cmp.measured[0] == top1 and pd.isna(cmp.measured[1])
