"""BAS's box rule and protocol ``bas``, with hand-computed expectations: the box (SAT's
rule, which BAS shares), BAS's thresholds per dataset and architecture, and a run's row
(its own Loc at one threshold, MaxBoxAccV2 of the same maps beside it)."""
from __future__ import annotations

import numpy as np
import pytest

from wsol.localize.bas_protocol import BasProtocol, bas_arch, bas_threshold
from wsol.localize.family_protocols import sat_box, sat_normalize
from wsol.localize.protocols import get_protocol


def bas_box(raw, threshold):
    return sat_box(sat_normalize(raw), threshold)


def largest_component_box(mask):
    return sat_box(mask.astype(np.float32), 0.5)


def test_normalize_uses_the_guard_and_keeps_size():
    m = np.array([[0.0, 1.0], [2.0, 4.0]], np.float32)
    out = sat_normalize(m, size=2)  # resize 2 -> 2 is the identity
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
    assert bas_arch("bas_vgg16") == bas_arch("vgg16_gap") == "vgg16" and bas_arch("tf_inception_v3") == "inception_v3"
    assert bas_arch("bas_mobilenet_v1") == "mobilenet_v1" and bas_arch("efficientnet_lite0") == "resnet50"


def test_configure_then_backbone_picks_the_threshold():
    p = get_protocol("bas")
    assert isinstance(p, BasProtocol)
    cub, imnet = p.configure(200, 0.01), p.configure(1000, 0.01)
    assert cub.for_backbone("bas_vgg16").thresholds(0.01).tolist() == [0.1]
    assert imnet.for_backbone("bas_vgg16").thresholds(0.01).tolist() == [0.45]
    assert imnet.for_backbone("bas_mobilenet_v1").thresholds(0.01).tolist() == [0.5]
    assert imnet.for_backbone("bas_resnet50").thresholds(0.01).tolist() == [0.25]
    assert len(imnet.for_backbone("bas_vgg16").fair_taus) == 100  # the wsoleval grid beside it
    assert imnet.for_backbone("bas_vgg16") != imnet.for_backbone("bas_resnet50")
    assert p.threshold is None  # the registered protocol is not changed


def test_localize_gives_the_bas_box_and_the_fair_sweep():
    p = get_protocol("bas").configure(200, 0.1).for_backbone("bas_vgg16")  # tau 0.1
    cam = np.zeros((28, 28), np.float32)
    cam[7:14, 7:21] = 1.0
    gt = np.array([[56, 56, 167, 111]])
    locs, maps = p.localize(cam[None], [gt], [(224, 224)], p.thresholds(0.1), "fast", keep_maps=True)
    loc = locs[0]
    box = bas_box(cam, 0.1)
    assert loc.iou.shape == (2, 1) and loc.boxes[1, 0].tolist() == box.tolist()
    x0, y0, x1, y1 = box  # IoU with the +1 convention
    inter = (min(x1, 167) - max(x0, 56) + 1) * (min(y1, 111) - max(y0, 56) + 1)
    union = (x1 - x0 + 1) * (y1 - y0 + 1) + 112 * 56 - inter
    assert loc.iou[1, 0] == pytest.approx(inter / union) and loc.iou[1, 0] > 0.7
    assert loc.fair is not None and loc.fair.iou.shape == (2, 10)
