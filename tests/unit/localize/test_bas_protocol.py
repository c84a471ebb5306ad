"""BAS's box rule and protocol ``bas``, with hand-computed expectations; and the family
protocol's Loc columns in the scorer (summary and per_image), merged shards included."""
from __future__ import annotations

import numpy as np
import pytest

from wsol.evaluation.scoring import RunScorer, own_loc_summary
from wsol.localize.bas_boxes import bas_box, bas_normalize, bas_threshold, largest_component_box
from wsol.localize.bas_protocol import BasProtocol, bas_arch
from wsol.localize.image import ImageLocalization
from wsol.localize.maps import thresholds
from wsol.localize.protocols import get_protocol


def test_normalize_uses_the_guard_and_keeps_size():
    m = np.array([[0.0, 1.0], [2.0, 4.0]], np.float32)
    out = bas_normalize(m, size=2)  # resize 2 -> 2 is the identity
    np.testing.assert_allclose(out, m / np.float32(4 + 1e-5), rtol=1e-7)
    assert out.dtype == np.float32 and out.max() < 1.0


def test_largest_component_box_is_exclusive_and_8_connected():
    mask = np.zeros((6, 6), bool)
    mask[1, 1] = mask[2, 2] = mask[3, 3] = True  # a diagonal: one 8-connected component of 3
    mask[0, 5] = mask[1, 5] = True               # a column of 2
    np.testing.assert_array_equal(largest_component_box(mask), [1, 1, 4, 4])


def test_tie_goes_to_the_component_met_first_in_a_row_major_scan():
    mask = np.zeros((5, 5), bool)
    mask[3, 0:2] = True   # 2 pixels, first pixel at row 3
    mask[1, 3:5] = True   # 2 pixels, first pixel at row 1: met first
    np.testing.assert_array_equal(largest_component_box(mask), [3, 1, 5, 2])


def test_empty_foreground_gives_the_whole_image():
    np.testing.assert_array_equal(largest_component_box(np.zeros((224, 224), bool)), [0, 0, 224, 224])
    flat = np.full((28, 28), 0.3, np.float32)  # normalizes to 0: nothing above any threshold
    np.testing.assert_array_equal(bas_box(flat, 0.1), [0, 0, 224, 224])


def test_threshold_applies_to_the_guarded_normalization():
    m = np.zeros((224, 224), np.float32)
    m[10:20, 30:50] = 1.0
    m[100:110, 100:200] = 0.5  # larger, but at the threshold after normalization (0.5 / (1 + 1e-5) < 0.5)
    np.testing.assert_array_equal(bas_box(m, 0.5), [30, 10, 50, 20])
    np.testing.assert_array_equal(bas_box(m, 0.4), [100, 100, 200, 110])


def test_thresholds_of_the_paper():
    assert bas_threshold("cub", "vgg16") == bas_threshold("cub", "mobilenet_v1") == 0.1
    assert bas_threshold("imagenet", "vgg16") == 0.45 and bas_threshold("imagenet", "resnet50") == 0.25
    assert bas_threshold("imagenet", "inception_v3") == 0.25 and bas_threshold("imagenet", "mobilenet_v1") == 0.5
    assert bas_threshold("imagenet", "convnext") == 0.25  # unknown: ResNet50's


class _Named:
    def __init__(self, name, arch=None):
        self.name = name
        if arch:
            self.arch = arch


def test_for_run_picks_dataset_and_architecture():
    p = get_protocol("bas")
    assert p.own_threshold is None
    assert p.for_run(_Named("bas_vgg16", "vgg16"), 1000).own_threshold == 0.45
    assert p.for_run(_Named("bas_vgg16", "vgg16"), 200).own_threshold == 0.1
    assert p.for_run(_Named("vgg16_gap", "vgg16"), 1000).own_threshold == 0.45
    assert p.for_run(_Named("mobilenetv3_large_100"), 1000).own_threshold == 0.5
    assert p.for_run(_Named("efficientnet_lite0"), 1000).own_threshold == 0.25
    assert bas_arch(_Named("tf_inception_v3")) == "inception_v3"
    run = p.for_run(_Named("bas_resnet50", "resnet50"), 1000)
    assert "0.25" in run.own_rule and "ILSVRC" in run.own_rule and run != p and run == BasProtocol().with_threshold(0.25, "")


def test_localize_gives_the_sweep_and_the_own_box():
    p = get_protocol("bas").for_run(_Named("bas_vgg16", "vgg16"), 200)  # tau 0.1
    cam = np.zeros((28, 28), np.float32)
    cam[7:14, 7:21] = 1.0  # 8x upsampling: columns 56..167, rows 56..111 (bilinear spreads a little)
    gt = np.array([[56, 56, 167, 111]])
    locs, maps = p.localize(cam[None], [gt], [(224, 224)], thresholds(0.1), "fast", keep_maps=True)
    loc = locs[0]
    assert maps.shape == (1, 224, 224) and loc.iou.shape == (2, 10)
    box = bas_box(cam, 0.1)
    np.testing.assert_array_equal(loc.own_box, box)
    x0, y0, x1, y1 = box  # IoU with the +1 convention, as the 2020 protocol
    inter = (min(x1, 167) - max(x0, 56) + 1) * (min(y1, 111) - max(y0, 56) + 1)
    union = (x1 - x0 + 1) * (y1 - y0 + 1) + 112 * 56 - inter
    assert loc.own_iou == pytest.approx(inter / union)
    assert loc.own_iou > 0.7


def test_own_loc_summary_by_hand():
    rows = [{"top1_correct": True, "top5_correct": True}, {"top1_correct": False, "top5_correct": True},
            {"top1_correct": True, "top5_correct": True, "_status": "skipped"}, {"top1_correct": True}]
    out = own_loc_summary(rows, [0.6, 0.5, 0.0, 0.4], (0.25, "rule"), False, True)
    assert out["gt_known_loc"] == 50.0 and out["top1_loc"] == 25.0 and out["top5_loc"] == 50.0
    assert out["loc_tau"] == 0.25 and out["loc_tau_rule"] == "rule"
    out = own_loc_summary(rows, [0.6, 0.5, 0.0, 0.4], (0.25, "rule"), True, True)  # skipped left out
    assert out["gt_known_loc"] == pytest.approx(200 / 3) and out["top1_loc"] == pytest.approx(100 / 3)


def _loc(iou_sweep, own_iou, own_box):
    iou = np.full((2, 3), iou_sweep)
    return ImageLocalization(iou, np.zeros((2, 3, 4), np.int16), own_iou, np.array(own_box))


def test_scorer_reports_the_own_rule_and_keeps_maxboxacc_v2():
    taus = [0.0, 0.5, 0.9]
    one = RunScorer(taus, own=(0.45, "BAS rule"))
    one.add(["a", "b"], [1, 2], [_loc(0.9, 0.6, [1, 2, 30, 40]), _loc(0.9, 0.2, [0, 0, 224, 224])],
            top5=np.array([[1, 0], [0, 2]]))
    s = one.summary()
    assert s["gt_known_loc"] == 50.0 and s["top1_loc"] == 50.0 and s["top5_loc"] == 50.0
    assert s["loc_tau"] == 0.45 and s["loc_tau_rule"] == "BAS rule"
    assert s["maxboxacc_v2"] == 100.0  # the sweep's: both images at IoU 0.9 at every tau
    per = one.per_image()
    assert per.loc_tau.tolist() == [0.45, 0.45] and per.iou.tolist() == pytest.approx([0.6, 0.2])
    assert per[["box_x0", "box_y0", "box_x1", "box_y1"]].values.tolist() == [[1, 2, 30, 40], [0, 0, 224, 224]]
    assert per.gt_known_correct.tolist() == [True, False]
    # two shards merged give the same numbers and rows
    a, b = RunScorer(taus, own=(0.45, "BAS rule")), RunScorer(taus, own=(0.45, "BAS rule"))
    b.add(["b"], [2], [_loc(0.9, 0.2, [0, 0, 224, 224])], top5=np.array([[0, 2]]), indices=[1])
    a.add(["a"], [1], [_loc(0.9, 0.6, [1, 2, 30, 40])], top5=np.array([[1, 0]]), indices=[0])
    b.merge(a.state_dict())
    assert b.summary()["gt_known_loc"] == 50.0
    assert b.per_image().image_id.tolist() == ["a", "b"] and b.per_image().iou.tolist() == pytest.approx([0.6, 0.2])
