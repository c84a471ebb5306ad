"""The ViT families' box rules on hand-drawn maps, and their thresholds by dataset."""
from __future__ import annotations

import numpy as np
import pytest

from wsol.localize.family_protocols import (sat_box, sat_normalize, scm_normalize, tscam_box, tscam_normalize)
from wsol.localize.protocols import get_protocol


def test_tscam_box_largest_contour_exclusive_corner_and_strict_threshold():
    m = np.zeros((20, 30))
    m[2:5, 3:6] = 1.0        # 3x3 blob
    m[10:18, 12:25] = 0.5    # 8x13 blob at half the peak
    # threshold 0.4: int(0.4 * 255) = 102 < 127 -> both kept, the larger (by contour area) wins
    assert tscam_box(m, 0.4).tolist() == [12, 10, 25, 18]
    # threshold 0.5: int(0.5 * 255) = 127 = uint8(0.5 * 255): not strictly above -> only the peak blob
    assert tscam_box(m, 0.5).tolist() == [3, 2, 6, 5]
    assert tscam_box(np.zeros((8, 8)), 0.1).tolist() == [0, 0, 1, 1]


def test_tscam_normalize_is_float32_bilinear_then_minmax():
    raw = np.array([[0.0, 2.0], [4.0, 6.0]], np.float32)
    out = tscam_normalize(raw, size=4)
    assert out.dtype == np.float32 and out.min() == 0 and out.max() == 1
    # bilinear with half-pixel centres: output column 1 samples source x = 0.25 (row 0 clamps to
    # source row 0): 0 + 0.25 * (2 - 0) = 0.5; the corners clamp to 0 and 6, so min-max divides by 6
    np.testing.assert_allclose(out[0, :2], [0.0, 0.5 / 6], atol=1e-6)


def test_sat_box_largest_component_8_connected_first_on_tie_and_empty_whole_image():
    m = np.zeros((10, 10))
    m[1, 1] = m[2, 2] = 0.9            # diagonal pair: one 8-connected component of 2 pixels
    m[6, 6] = m[6, 7] = 0.9            # another of 2 pixels, met later in a row-major scan
    assert sat_box(m, 0.5).tolist() == [1, 1, 3, 3]   # the first, max exclusive
    m[8, 1:5] = 0.9                    # 4 pixels: the largest
    assert sat_box(m, 0.5).tolist() == [1, 8, 5, 9]
    assert sat_box(m, 0.9).tolist() == [0, 0, 10, 10]  # strictly greater: nothing -> the whole image


def test_sat_normalize_has_the_epsilon():
    out = sat_normalize(np.array([[0.0, 1.0], [1.0, 1.0]], np.float32), size=2)
    np.testing.assert_allclose(out, [[0.0, 1 / (1 + 1e-5)], [1 / (1 + 1e-5), 1 / (1 + 1e-5)]], rtol=1e-6)


def test_scm_normalize_float64_no_epsilon():
    out = scm_normalize(np.array([[1.0, 3.0], [3.0, 5.0]]), size=2)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [[0.0, 0.5], [0.5, 1.0]])


@pytest.mark.parametrize("name,cub,imagenet", [("tscam", 0.1, 0.12), ("sat", 0.4, 0.3)])
def test_thresholds_by_dataset(name, cub, imagenet):
    p = get_protocol(name)
    assert p.configure(200, 0.01).thresholds(0.01).tolist() == [cub]
    assert p.configure(1000, 0.01).thresholds(0.01).tolist() == [imagenet]
    assert len(p.configure(1000, 0.01).fair_taus) == 100
    assert len(get_protocol("scm").configure(200, 0.001).thresholds(0.001)) == 100  # SCM's own 0.01 sweep


def test_localize_gives_the_rule_box_and_the_wsoleval_localization_of_the_same_map():
    from wsol.localize.image import localize_batch
    from wsol.localize.maps import postprocess_batch

    raw = np.zeros((1, 14, 14))
    raw[0, 3:7, 4:10] = 1.0
    gt = [np.array([[60, 40, 150, 110]])]
    p = get_protocol("tscam").configure(1000, 0.01)
    locs, maps = p.localize(raw, gt, [(224, 224)], p.thresholds(0.01), "fast", keep_maps=True)
    box = tscam_box(tscam_normalize(raw[0]), 0.12)
    assert locs[0].boxes[1, 0].tolist() == box.tolist()
    x0, y0, x1, y1 = box.tolist()
    inter = (min(x1, 150) - max(x0, 60) + 1) * (min(y1, 110) - max(y0, 40) + 1)
    union = (x1 - x0 + 1) * (y1 - y0 + 1) + 91 * 71 - inter
    assert locs[0].iou[1, 0] == pytest.approx(inter / union)
    fair = localize_batch(postprocess_batch(raw), gt, p.fair_taus, "fast")[0]
    np.testing.assert_array_equal(locs[0].fair.iou, fair.iou)
    assert maps.shape == (1, 224, 224)
