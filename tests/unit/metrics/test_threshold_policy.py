"""Threshold policies (docs/protocol.md, Threshold policies), each pinned by hand.

The heatmap of every test is two nested squares on a 224x224 image (no scaling): 0.5 on
[0..111]^2 and 1.0 on [0..55]^2. Quantized (floor(255 m)) that is 127 and 255, so with
cam_step 0.25 (τ = 0, .25, .5, .75, cuts floor(255 τ) = 0, 63, 127, 191) the box is the big
square at τ 0 and .25 and the small square at τ .5 and .75; as the reference boxes a
contour (``x + w``, one pixel past it) those are [0,0,112,112] and [0,0,56,56]. Against a
ground truth of the big square [0,0,111,111]: IoU 112²/113² = 0.98 at the first two τ, and
57²/112² = 0.26 at the last two.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from wsol.cli.app import main
from wsol.errors import WsolError
from wsol.evaluation.box_evaluator import BoxEvaluator
from wsol.evaluation.records import ScoredBatch
from wsol.evaluation.scoring import policy_choice
from wsol.localize.boxes import MODES
from wsol.localize.image import ImageLocalization
from wsol.metrics.box_accuracy import BoxAccEvaluator, metrics_at_tau
from wsol.metrics.threshold_policy import check_policy, choose_tau, nearest_index

BIG, SMALL = "0 0 111 111", "0 0 55 55"


# ----------------------------------------------------------------------------- pure functions
def test_choose_tau_each_policy_by_hand():
    taus = [0.0, 0.25, 0.5, 0.75]
    test = [10.0, 80.0, 80.0, 20.0]       # best on test: index 1 (first of the tie)
    sel = [5.0, 5.0, 7.0, 90.0]           # best on the selection set: index 3
    c = choose_tau("test_best", taus, test, n_test=9)
    assert (c.policy, c.index, c.tau, c.source, c.n_images) == ("test_best", 1, 0.25, "test boxes", 9)
    c = choose_tau("fixed", taus, test, fixed_tau=0.6)
    assert (c.index, c.tau, c.n_images) == (2, 0.5, 0)  # nearest grid value to 0.6
    assert nearest_index(taus, 0.125) == 0  # a tie goes to the lower τ
    for policy in ("holdout", "pseudo_boxes"):
        c = choose_tau(policy, taus, test, selection_curve=sel, source="/m", n_selection=4)
        assert (c.policy, c.index, c.tau, c.source, c.n_images) == (policy, 3, 0.75, "/m", 4)
    with pytest.raises(WsolError, match="needs a selection set"):
        choose_tau("holdout", taus, test)
    with pytest.raises(WsolError, match="3 thresholds, the grid 4"):
        choose_tau("pseudo_boxes", taus, test, selection_curve=[1, 2, 3])


def test_check_policy_errors_name_the_option():
    with pytest.raises(WsolError, match="tau_policy must be one of"):
        check_policy("best")
    with pytest.raises(WsolError, match="pseudo_boxes needs --tau-source"):
        check_policy("pseudo_boxes")
    with pytest.raises(WsolError, match="holdout needs --tau-source METADATA_DIR .* or --tau-holdout"):
        check_policy("holdout")
    with pytest.raises(WsolError, match="only apply to tau_policy holdout or pseudo_boxes"):
        check_policy("fixed", source="/m")
    check_policy("holdout", holdout=0.1)


def test_metrics_at_tau_by_hand():
    """4 images, τ grid of 2; IoUs (largest = all contours here) and classes chosen so every
    number is a count over 4."""
    ious = np.array([[0.9, 0.4], [0.6, 0.6], [0.2, 0.8], [0.5, 0.1]])
    ev = BoxAccEvaluator([0.0, 0.5])
    ev.process(np.repeat(ious[:, None, :], len(MODES), axis=1), np.array([True, False, True, True]),
               np.array([True, True, True, True]))
    at0, at1 = metrics_at_tau(ev, 0), metrics_at_tau(ev, 1)
    assert at0["gt_known_loc"] == 75.0 and at0["top1_loc"] == 50.0 and at0["top5_loc"] == 75.0  # .9 .6 .5
    assert at1["gt_known_loc"] == 50.0 and at1["top1_loc"] == 25.0  # .6 (wrong class) and .8
    # BoxAccV2 at τ 0: IoU >= .3 / .5 / .7 -> 3 / 3 / 1 of 4
    assert at0["boxacc_v2"] == pytest.approx((75 + 75 + 25) / 3)
    assert at0["mean_iou"] == pytest.approx(55.0) and at1["tau"] == 0.5


def test_box_evaluator_choice_reads_the_curve_of_each_set():
    taus = [0.0, 0.5]
    test, sel = BoxEvaluator(taus, has_predictions=False), BoxEvaluator(taus, has_predictions=False)

    def loc(a, b):
        return ImageLocalization(np.array([[a, b]] * len(MODES)), np.zeros((len(MODES), 2, 4), np.int16))

    test.process(ScoredBatch(["a", "b"], np.array([0, 0]), [0, 1], [loc(0.9, 0.1), loc(0.7, 0.2)]))  # best: τ 0
    sel.process(ScoredBatch(["c"], np.array([0]), [0], [loc(0.1, 0.9)]))  # best on the selection: τ .5
    assert policy_choice(test, "test_best", 0.2).tau == 0.0
    c = policy_choice(test, "pseudo_boxes", 0.2, sel, "/p")
    assert (c.tau, c.n_images, c.source) == (0.5, 1, "/p")


# ----------------------------------------------------------------------------- end to end
def _metadata(folder, rows) -> str:
    """wsolevaluation metadata: rows of (image_id, label, 'x0 y0 x1 y1' box), 224x224 images."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "image_ids.txt"), "w") as f:
        f.writelines(f"{i}\n" for i, _, _ in rows)
    with open(os.path.join(folder, "class_labels.txt"), "w") as f:
        f.writelines(f"{i},{c}\n" for i, c, _ in rows)
    with open(os.path.join(folder, "image_sizes.txt"), "w") as f:
        f.writelines(f"{i},224,224\n" for i, _, _ in rows)
    with open(os.path.join(folder, "localization.txt"), "w") as f:
        f.writelines(f"{i},{','.join(b.split())}\n" for i, _, b in rows)
    return str(folder)


@pytest.fixture()
def nested(tmp_path):
    """Two test images with the nested-squares map and the big square as ground truth; a
    pseudo-box folder saying the small square; a held-out folder (another image) saying the
    big one."""
    cams = tmp_path / "cams"
    (cams / "im").mkdir(parents=True)
    m = np.zeros((224, 224))
    m[:112, :112] = 0.5
    m[:56, :56] = 1.0
    for name in ("a.jpg", "b.jpg", "h.jpg"):
        np.save(cams / "im" / f"{name}.npy", m)
    test = _metadata(tmp_path / "test", [("im/a.jpg", 0, BIG), ("im/b.jpg", 1, BIG)])
    pseudo = _metadata(tmp_path / "pseudo", [("im/a.jpg", 0, SMALL), ("im/b.jpg", 1, SMALL)])
    held = _metadata(tmp_path / "held", [("im/h.jpg", 0, BIG)])
    return tmp_path, str(cams), test, pseudo, held


def _score(tmp_path, cams, test, name, *extra) -> pd.Series:
    out = tmp_path / name
    assert main(["-q", "score", "--cams", cams, "--dataset", "wsoleval", "--root", test, "--cam-step", "0.25",
                 "--out", str(out), *extra]) == 0
    return pd.read_csv(out / "summary.csv").iloc[0]


@pytest.mark.parametrize("policy, extra, tau, gt_known, source, n_sel", [
    ("test_best", [], 0.0, 100.0, "test boxes", 2),
    ("fixed", ["--fixed-tau", "0.75"], 0.75, 0.0, "fixed 0.75", 0),
    ("fixed", ["--fixed-tau", "0.3"], 0.25, 100.0, "fixed 0.3", 0),
    ("pseudo_boxes", ["--tau-source", "PSEUDO"], 0.5, 0.0, "PSEUDO", 2),
    ("holdout", ["--tau-source", "HELD"], 0.0, 100.0, "HELD", 1),
])
def test_each_policy_end_to_end(nested, policy, extra, tau, gt_known, source, n_sel):
    tmp_path, cams, test, pseudo, held = nested
    paths = {"PSEUDO": pseudo, "HELD": held}
    extra = [paths.get(x, x) for x in extra]
    s = _score(tmp_path, cams, test, policy + "".join(extra).replace("/", "_"), "--tau-policy", policy, *extra)
    assert s.tau_policy == policy and s.policy_tau == tau and s.policy_gt_known_loc == gt_known
    assert s.tau_policy_n_images == n_sel
    assert s.tau_policy_source == (os.path.abspath(paths[source]) if source in paths else source)
    # BoxAccV2 at the chosen τ: IoU .98 passes .3/.5/.7; IoU .26 passes none
    iou = 112 ** 2 / 113 ** 2 if gt_known else 57 ** 2 / 112 ** 2
    assert s.policy_boxacc_v2 == gt_known and s.policy_mean_iou == pytest.approx(100 * iou, abs=1e-12)
    # MaxBoxAccV2 (best τ per IoU on the test boxes) is reported next to it, whatever the policy
    assert s.maxboxacc_v2 == 100.0 and s.gt_known_loc == 100.0 and s.loc_tau == 0.0
    assert f"threshold_policy={policy if policy != 'fixed' else 'fixed:' + extra[1]}" in s.fingerprint_loc
    assert s.fingerprint_v2.startswith("threshold_policy=test_best_per_iou;box_rule=all_contours;")
    # run.json carries the same fingerprints, per metric
    name = policy + "".join(extra).replace("/", "_")
    fps = json.load(open(tmp_path / name / "run.json"))["fingerprints"]
    assert ";".join(f"{k}={v}" for k, v in fps["policy_top1_loc"].items()) == s.fingerprint_loc
    assert ";".join(f"{k}={v}" for k, v in fps["maxboxacc_v2"].items()) == s.fingerprint_v2


def test_holdout_fraction_of_train_split(tmp_path):
    """--tau-holdout takes each class's share of the dataset's *train* split: a synthetic set,
    heatmaps of every image the same all-ones map, so any τ below 1 gives the whole image."""
    from wsol.datasets.base import build_dataset

    root = str(tmp_path / "syn")
    train = build_dataset("synthetic", root, "train", n_classes=2, n_train_per_class=4, n_test_per_class=2)
    test = build_dataset("synthetic", root, "test")
    cams = tmp_path / "cams"
    for s in train.samples + test.samples:
        p = cams / f"{s.image_id}.npy"
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, np.ones((224, 224)))
    out = tmp_path / "out"
    assert main(["-q", "score", "--cams", str(cams), "--dataset", "synthetic", "--root", root, "--cam-step", "0.5",
                 "--tau-policy", "holdout", "--tau-holdout", "0.5", "--out", str(out)]) == 0
    s = pd.read_csv(out / "summary.csv").iloc[0]
    assert s.tau_policy == "holdout" and s.tau_policy_n_images == 4  # 2 of each class's 4
    assert s.tau_policy_source == "0.5 of each class of synthetic/train (seed 0)" and s.policy_tau == 0.0


def test_policy_without_its_data_is_one_line(nested, capsys):
    tmp_path, cams, test, _, _ = nested
    assert main(["-q", "score", "--cams", cams, "--dataset", "wsoleval", "--root", test, "--out",
                 str(tmp_path / "x"), "--tau-policy", "pseudo_boxes"]) == 2
    assert "pseudo_boxes needs --tau-source" in capsys.readouterr().err
