"""Hand-computed cases for each convention of docs/protocol.md."""
import numpy as np
import pytest

from wsol.localize.boxes import boxes_at_level, scale_gt_boxes, sweep_reference
from wsol.localize.image import localize_map
from wsol.localize.iou import iou, iou_matrix
from wsol.localize.maps import level_thresholds, normalize, postprocess, quantize, thresholds, upsample
from wsol.metrics.box_accuracy import (BoxAccEvaluator, box_accuracy, loc_accuracy, max_box_acc,
                                       max_box_acc_v2)


# ---------------------------------------------------------------- thresholds and quantization
def test_thresholds_are_arange_not_linspace():
    t = thresholds(0.01)
    assert len(t) == 100 and t[0] == 0.0 and t[-1] == pytest.approx(0.99)
    assert t[29] == np.arange(0, 1, 0.01)[29]
    assert len(thresholds(0.001)) == 1000
    # arange's float for 0.29 times 100 is 28.999999999999996: the cut is 28, not 29
    assert level_thresholds(100, t)[29] == 28
    assert level_thresholds(100, t)[58] == 57
    # so a pixel at q=29 with max 100 is foreground at tau[29] (integer percent arithmetic would say no)
    q = np.zeros((224, 224), np.uint8)
    q[0, 0] = 100
    q[100, 100] = 29
    boxes = sweep_reference(q, t).boxes["all"]
    assert [100, 100, 101, 101] in boxes[29].tolist()
    assert [100, 100, 101, 101] not in boxes[30].tolist()


def test_quantize_truncates():
    m = np.array([[0.0, 0.5, 1.0, 0.99999, 1 / 255, 0.0039]])
    assert quantize(m).tolist() == [[0, 127, 255, 254, 1, 0]]


def test_quantize_uses_float64():
    # a float64 heatmap value just below 100/255: float32 rounds it up to 100, float64 keeps 99
    m = np.array([(100 - 1e-7) / 255], dtype=np.float64)
    assert int(np.floor(255 * m.astype(np.float32))[0]) == 100
    assert quantize(m)[0] == 99


def test_strict_threshold():
    q = np.zeros((224, 224), np.uint8)
    q[10, 10] = 200           # max -> cut at tau 0.5 is floor(0.5 * 200) = 100
    q[50:60, 50:60] = 100     # equal to the cut: background
    q[100:103, 100:104] = 101  # above: foreground
    res = sweep_reference(q, np.array([0.5]))
    assert sorted(res.boxes["all"][0].tolist()) == [[10, 10, 11, 11], [100, 100, 104, 103]]


# ---------------------------------------------------------------- post-processing
def test_constant_and_nan_maps_become_zero():
    assert not normalize(np.full((7, 7), 3.0)).any()
    bad = np.random.default_rng(0).random((7, 7))
    bad[3, 3] = np.nan
    assert not normalize(bad).any()
    bad[3, 3] = np.inf
    assert not normalize(bad).any()
    loc = localize_map(postprocess(np.full((7, 7), 2.0)), np.array([[0, 0, 10, 10]]), thresholds())
    # nothing above threshold at any tau: box [0,0,0,0], IoU = 1 / 121 with inclusive widths
    assert np.allclose(loc.iou, 1 / 121)
    assert (loc.boxes == 0).all()


def test_resize_then_normalize():
    rng = np.random.default_rng(1)
    cam = rng.normal(size=(7, 7)).astype(np.float32)
    out = postprocess(cam)
    assert out.shape == (224, 224) and out.dtype == np.float64
    assert out.min() == 0 and out.max() == 1
    np.testing.assert_array_equal(out, normalize(upsample(cam)))
    # bicubic overshoots: normalizing first and resizing after leaves [0,1]
    other = upsample(normalize(cam))
    assert other.min() < 0 or other.max() > 1


def test_upsample_is_opencv_cubic_in_float64():
    """The reference casts the raw map to float64 (its tensor-to-NumPy helper) before the
    resize: a float32 raw map must be resized as float64, not as float32."""
    import cv2
    cam = np.arange(49, dtype=np.float32).reshape(7, 7) ** 1.5
    ref = cv2.resize(cam.astype(np.float64), (224, 224), interpolation=cv2.INTER_CUBIC)
    got = upsample(cam)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, ref)
    # and it matters: the float32 resize differs in the low bits
    assert (cv2.resize(cam, (224, 224), interpolation=cv2.INTER_CUBIC).astype(np.float64) != ref).any()


# ---------------------------------------------------------------- boxes
def test_hole_boxes_in_all_contours_mode():
    q = np.zeros((224, 224), np.uint8)
    q[10:31, 10:31] = 200
    q[15:26, 15:26] = 0  # hole: background pixels 15..25
    b = boxes_at_level(q, 100)
    # outer: columns 10..30 -> [10, 10, 31, 31]; the hole contour runs along the foreground
    # pixels bordering it (14 and 26) -> [14, 14, 27, 27]
    assert sorted(b["all"].tolist()) == [[10, 10, 31, 31], [14, 14, 27, 27]]
    assert b["largest"].tolist() == [[10, 10, 31, 31]]


def test_largest_is_by_polygon_area_not_pixel_count():
    q = np.zeros((224, 224), np.uint8)
    q[50, 10:100] = 200         # 90 pixels, polygon area 0
    q[150:153, 150:153] = 200   # 9 pixels, polygon area 4
    b = boxes_at_level(q, 100)
    assert b["largest"].tolist() == [[150, 150, 153, 153]]
    assert sorted(b["all"].tolist()) == [[10, 50, 100, 51], [150, 150, 153, 153]]


def test_eight_connectivity():
    q = np.zeros((224, 224), np.uint8)
    q[20, 20] = q[21, 21] = q[22, 22] = 200  # diagonal chain: one component
    assert boxes_at_level(q, 0)["all"].tolist() == [[20, 20, 23, 23]]


def test_box_clipped_to_223():
    q = np.zeros((224, 224), np.uint8)
    q[200:, 210:] = 200
    assert boxes_at_level(q, 100)["largest"].tolist() == [[210, 200, 223, 223]]
    q[:] = 255
    assert boxes_at_level(q, 100)["all"].tolist() == [[0, 0, 223, 223]]


def test_no_foreground_gives_zero_box():
    q = np.zeros((224, 224), np.uint8)
    q[5, 5] = 10
    res = sweep_reference(q, np.array([0.0, 0.99]))
    assert res.boxes["all"][0].tolist() == [[5, 5, 6, 6]]  # cut floor(0*10)=0: 10 > 0
    assert res.boxes["all"][1].tolist() == [[5, 5, 6, 6]]  # cut floor(0.99*10)=9
    q[5, 5] = 0
    assert sweep_reference(q, np.array([0.0])).boxes["largest"][0].tolist() == [[0, 0, 0, 0]]


def test_gt_scaling_truncates_per_axis():
    b = scale_gt_boxes(np.array([[10.9, 20.0, 499.0, 333.3]]), width=500, height=375)
    # int(10.9*224/500)=int(4.8832)=4; int(20*224/375)=int(11.946)=11;
    # int(499*224/500)=int(223.552)=223; int(333.3*224/375)=int(199.09)=199
    assert b.tolist() == [[4, 11, 223, 199]]


# ---------------------------------------------------------------- IoU and accuracy
def test_inclusive_iou():
    assert iou([0, 0, 0, 0], [0, 0, 0, 0]) == 1.0
    assert iou([0, 0, 1, 1], [1, 1, 2, 2]) == pytest.approx(1 / 7)
    assert iou([0, 0, 9, 9], [0, 0, 4, 9]) == pytest.approx(50 / 100)
    assert iou([0, 0, 1, 1], [5, 5, 6, 6]) == 0.0
    # non-positive union (degenerate inverted boxes) -> 0
    assert iou([5, 5, 3, 3], [5, 5, 3, 3]) == 0.0


def test_image_iou_is_max_over_pred_and_gt_boxes():
    q = np.zeros((224, 224), np.uint8)
    q[0:10, 0:10] = 200
    q[100:150, 100:150] = 200
    gt = np.array([[100, 100, 150, 150], [0, 0, 9, 9]])
    loc = localize_map(q.astype(np.float64) / 255.0, gt, np.array([0.5]))
    assert loc.iou[0, 0] == pytest.approx(1.0)        # all contours: the small box matches GT 2 exactly
    assert loc.iou[1, 0] == pytest.approx(iou([100, 100, 150, 150], [100, 100, 150, 150]))


def test_max_box_acc_per_iou_threshold_separately():
    # 4 images, 3 taus; best tau differs per IoU threshold
    ious = np.array([[0.35, 0.55, 0.75],
                     [0.35, 0.55, 0.10],
                     [0.80, 0.20, 0.10],
                     [0.35, 0.10, 0.10]])
    acc = box_accuracy(ious)
    # delta .3: taus -> 4,2,1 images; .5: 1,2,1; .7: 1,0,1
    np.testing.assert_allclose(acc, [[100, 50, 25], [25, 50, 25], [25, 0, 25]])
    assert max_box_acc(ious, 30) == 100 and max_box_acc(ious, 50) == 50 and max_box_acc(ious, 70) == 25
    assert max_box_acc_v2(ious) == pytest.approx((100 + 50 + 25) / 3)
    # a single shared tau would give at most (50+50+0)/3 at tau 1
    assert loc_accuracy(ious, [True, False, True, True], tau_index=1) == 25.0


def test_evaluator_matches_hand_values():
    taus = np.array([0.0, 0.5, 0.9])
    largest = np.array([[0.6, 0.4, 0.1], [0.6, 0.6, 0.1], [0.1, 0.7, 0.7], [0.0, 0.0, 0.0]])
    allc = np.array([[0.6, 0.8, 0.1], [0.6, 0.6, 0.3], [0.3, 0.7, 0.7], [0.0, 0.3, 0.0]])
    ious = np.stack([allc, largest], axis=1)  # MODES = ("all", "largest")
    t1 = np.array([True, False, True, True])
    t5 = np.array([True, True, True, True])
    ev = BoxAccEvaluator(taus, fixed_tau=0.9)
    ev.process(ious[:2], t1[:2], t5[:2])
    ev.process(ious[2:], t1[2:], t5[2:])  # streaming in two batches
    s = ev.evaluate()
    # largest @ IoU .5 per tau: [2, 2, 1] -> loc tau index 0 (first max): 50%
    assert s.loc_tau == 0.0 and s.gt_known_loc == 50.0 and s.maxboxacc == 50.0
    assert s.top1_loc == 25.0 and s.top5_loc == 50.0
    assert s.gt_known_loc_fixed == 25.0 and s.top1_loc_fixed == 25.0
    # all-contours: .3 -> [3,4,2] max 100 @0.5; .5 -> [2,3,1] 75 @0.5; .7 -> [0,2,1] 50 @0.5
    assert (s.maxboxacc_iou30, s.maxboxacc_iou50, s.maxboxacc_iou70) == (100.0, 75.0, 50.0)
    assert s.tau_iou30 == 0.5 and s.maxboxacc_v2 == pytest.approx(75.0)
    assert s.top1_cls == 75.0 and s.top5_cls == 100.0
    assert s.mean_iou == pytest.approx(100 * (0.6 + 0.6 + 0.1 + 0.0) / 4)


def test_iou_matrix_shape_and_symmetry():
    rng = np.random.default_rng(0)
    a = np.sort(rng.integers(0, 224, (5, 2, 2)), axis=1).transpose(0, 2, 1).reshape(5, 4)[:, [0, 2, 1, 3]]
    b = a[::-1].copy()
    m = iou_matrix(a, b)
    assert m.shape == (5, 5)
    np.testing.assert_allclose(m, iou_matrix(b, a).T)
    assert ((m >= 0) & (m <= 1)).all()
