"""The fast threshold sweep returns exactly the reference's boxes (docs/protocol.md, Contours and boxes), box for box.

``sweep_fast`` promises the very same arrays as ``sweep_reference`` at every τ: same boxes in
the same order ('all') and the same single box ('largest'), int32, shape [n, 4]. Every test
compares the two paths on one family of maps, at 100 and 1000 thresholds.
"""
from __future__ import annotations

import glob
import os
from typing import Sequence

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsol.localize.boxes import SweepResult, best_iou_per_cut, sweep_per_threshold, sweep_reference
from wsol.localize.sweeps import get_sweep
from wsol.localize.fast_sweep import sweep_fast
from wsol.localize.maps import normalize, postprocess, quantize, thresholds
from shared_data import imagenet_val_100
from synthetic_maps import cam_like_map

T100 = thresholds(0.01)
T1000 = thresholds(0.001)


def assert_same(q: np.ndarray, taus: Sequence[float] = T100) -> None:
    """fast == reference at every τ, in both modes, array for array (values, order, dtype)."""
    ref = sweep_reference(q, taus)
    fast = sweep_fast(q, taus)
    for mode in ("all", "largest"):
        assert len(fast.boxes[mode]) == len(ref.boxes[mode]) == len(taus)
        for t, (r, f) in enumerate(zip(ref.boxes[mode], fast.boxes[mode])):
            assert f.dtype == np.int32 and f.shape == r.shape and np.array_equal(f, r), (
                f"{mode} at tau #{t} ({taus[t]!r}): reference {r.tolist()} fast {f.tolist()}")


def smooth_map(rng: np.random.Generator, h: int, w: int, sigma: float) -> np.ndarray:
    """Gaussian-blurred noise, min-max normalized and quantized as the protocol does."""
    z = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), sigma)
    return quantize(normalize(z))


cam_like = cam_like_map


def test_registry_names_both_paths():
    assert get_sweep("fast") is sweep_fast
    assert get_sweep("reference") is sweep_reference


@pytest.mark.parametrize("seed", range(6))
def test_smooth_maps(seed):
    rng = np.random.default_rng(seed)
    q = smooth_map(rng, 224, 224, sigma=[3, 6, 12, 20, 30, 45][seed])
    assert_same(q, T100)
    assert_same(q, T1000)


@pytest.mark.parametrize("seed", range(6))
def test_cam_like_maps(seed):
    rng = np.random.default_rng(100 + seed)
    for _ in range(2):
        q = cam_like(rng)
        assert_same(q, T100)
        assert_same(q, T1000)


def test_noisy_maps_with_hundreds_of_components():
    rng = np.random.default_rng(7)
    q = rng.integers(0, 256, (224, 224)).astype(np.uint8)
    assert_same(q, T100)
    q = smooth_map(rng, 96, 96, sigma=0.7)  # hundreds of blobs, holes in holes
    assert_same(q, T1000)
    q = (rng.random((120, 100)) < 0.55).astype(np.uint8) * 200  # binary: deep contour trees
    assert_same(q, T100)


def rings(size: int, widths: Sequence[int], values: Sequence[int], center=None) -> np.ndarray:
    """Concentric square rings (ring i has width widths[i] and value values[i])."""
    q = np.zeros((size, size), np.uint8)
    cy, cx = center if center is not None else (size // 2, size // 2)
    r = size
    for w, v in zip(widths, values):
        q[max(cy - r, 0): cy + r + 1, max(cx - r, 0): cx + r + 1] = v
        r -= w
        if r < 0:
            break
    return q


@pytest.mark.parametrize("case", [
    "nested", "one_pixel_rings", "diagonal_ring", "island_in_hole", "border_ring",
    "checker", "single_pixel_holes", "corner_holes", "spiral",
])
def test_holes_and_rings(case):
    rng = np.random.default_rng(3)
    if case == "nested":  # rings in holes in rings, values up and down
        q = rings(40, [3, 2, 4, 1, 3, 2, 5], [50, 200, 10, 240, 30, 180, 90])
    elif case == "one_pixel_rings":  # 1-pixel-wide rings: outer and hole contours share pixels
        q = rings(31, [1] * 16, [255 if i % 2 == 0 else 0 for i in range(16)])
    elif case == "diagonal_ring":  # 8-connected only through corners: a diamond ring
        q = np.zeros((21, 21), np.uint8)
        for i in range(9):
            for y, x in ((10 - 9 + i, 10 + i), (10 + i, 10 + 9 - i), (10 + 9 - i, 10 - i), (10 - i, 10 - 9 + i)):
                q[y, x] = 100 + i
        q[10, 10] = 250
    elif case == "island_in_hole":
        q = np.zeros((30, 30), np.uint8)
        q[3:27, 3:27] = 120
        q[7:23, 7:23] = 0
        q[12:18, 12:18] = 200
        q[14:16, 14:16] = 0
        q[5, 5] = 0  # a one-pixel hole beside
    elif case == "border_ring":  # rings cut by the image border: no hole there
        q = rings(25, [2, 3, 2, 3, 2], [90, 10, 160, 20, 250], center=(2, 20))
    elif case == "checker":
        yy, xx = np.mgrid[0:33, 0:35]
        q = (((yy // 2 + xx // 3) % 2) * 130 + (yy % 5) * 20).astype(np.uint8)
    elif case == "single_pixel_holes":
        q = np.full((25, 25), 200, np.uint8)
        q[rng.integers(1, 24, 40), rng.integers(1, 24, 40)] = rng.integers(0, 200, 40)
    elif case == "corner_holes":  # holes touching each other only diagonally
        q = np.full((12, 12), 80, np.uint8)
        for y, x in ((3, 3), (4, 4), (5, 5), (3, 7), (4, 8), (8, 2), (9, 1)):
            q[y, x] = 0
    else:  # spiral: long thin component, holes that open as the threshold moves
        q = np.zeros((41, 41), np.uint8)
        y, x, d, n = 20, 20, 0, 1
        steps = ((0, 1), (1, 0), (0, -1), (-1, 0))
        val = 255
        while 0 < y < 40 and 0 < x < 40:
            for _ in range(2):
                for _ in range(n):
                    if 0 <= y < 41 and 0 <= x < 41:
                        q[y, x] = max(val, 1)
                    y, x = y + steps[d][0], x + steps[d][1]
                    val -= 1
                d = (d + 1) % 4
            n += 2
    assert_same(q, T100)
    assert_same(q, T1000)
    assert_same(q.T.copy(), T100)
    assert_same(255 - q, T100)


@pytest.mark.parametrize("value", [0, 1, 7, 254, 255])
@pytest.mark.parametrize("shape", [(224, 224), (1, 1), (1, 9), (9, 1), (2, 2)])
def test_constant_maps(value, shape):
    assert_same(np.full(shape, value, np.uint8), T100)
    assert_same(np.full(shape, value, np.uint8), T1000)


@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (2, 1), (1, 17), (17, 1), (2, 3), (3, 2)])
def test_one_pixel_and_line_maps(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(20):
        assert_same(rng.integers(0, 256, shape).astype(np.uint8), T100)
    one = np.zeros(shape, np.uint8)
    one.flat[len(one.flat) // 2] = 255
    assert_same(one, T1000)


def test_maps_touching_the_border():
    q = np.zeros((50, 60), np.uint8)
    q[0, :] = 200  # top row
    q[:, -1] = 150  # right column
    q[-3:, :4] = 250  # bottom-left corner block
    q[20:30, 0] = 100  # left edge segment
    q[10:40, 10:50] = 120
    q[15:35, 15:45] = 0  # a hole in the middle
    q[49, 59] = 255  # bottom-right pixel
    assert_same(q, T100)
    assert_same(q, T1000)
    q2 = np.zeros((224, 224), np.uint8)
    q2[0, 0] = q2[0, 223] = q2[223, 0] = q2[223, 223] = 255  # four one-pixel corner blobs
    assert_same(q2, T100)


def test_tau_edge_cases():
    rng = np.random.default_rng(11)
    q = smooth_map(rng, 40, 50, sigma=4)
    for taus in ([], [0.5], [-0.3, 0.0, 1.0, 1.5, 0.999999], list(np.arange(1, 0, -0.05)),
                 [0.2, 0.2, 0.7, 0.2], np.linspace(0, 1, 333)):
        assert_same(q, taus)


def test_input_types_and_views():
    rng = np.random.default_rng(5)
    q = smooth_map(rng, 64, 48, sigma=3)
    big = np.zeros((128, 96), np.uint8)
    big[::2, ::2] = q
    assert_same(big[::2, ::2], T100)  # non-contiguous view
    assert_same(q.T, T100)  # transposed view
    assert_same(q.astype(np.int64), T100)  # cast like the reference does
    with pytest.raises(ValueError):
        sweep_fast(np.zeros((2, 2, 2), np.uint8), T100)


def test_results_are_shared_per_cut_like_the_reference():
    q = cam_like(np.random.default_rng(0))
    fast = sweep_fast(q, T1000)
    cuts = np.floor(T1000 * int(q.max())).astype(int)
    for mode in ("all", "largest"):
        first = {}
        for c, arr in zip(cuts.tolist(), fast.boxes[mode]):
            assert first.setdefault(c, arr) is arr


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 20).flatmap(lambda h: st.integers(1, 20).flatmap(
    lambda w: st.tuples(st.just((h, w)), st.lists(st.integers(0, 255), min_size=h * w, max_size=h * w)))))
def test_property_arbitrary_small_maps(hw_values):
    (h, w), values = hw_values
    assert_same(np.array(values, np.uint8).reshape(h, w), T100)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 20), st.integers(1, 20), st.integers(2, 5), st.integers(0, 2 ** 32 - 1))
def test_property_small_maps_few_levels(h, w, levels, seed):
    rng = np.random.default_rng(seed)
    q = (rng.integers(0, levels, (h, w)) * (255 // (levels - 1))).astype(np.uint8)
    assert_same(q, T1000)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(2, 6), st.integers(0, 2 ** 32 - 1), st.sampled_from([1, 2, 4, 8, 16]),
       st.sampled_from([0.0, 0.6, 1.5]))
def test_property_224_few_levels(levels, seed, cell, sigma):
    """224x224 maps with a few levels: blocky (nearest upsampled) or lightly blurred noise."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, levels, (224 // cell, 224 // cell)).astype(np.float32)
    z = cv2.resize(small, (224, 224), interpolation=cv2.INTER_NEAREST)
    if sigma:
        z = cv2.GaussianBlur(z, (0, 0), sigma)
    q = np.round(z * (255.0 / max(levels - 1, 1))).clip(0, 255).astype(np.uint8)
    assert_same(q, T100)


def _real_cams(n: int = 20) -> np.ndarray:
    """Quantized top-1 CAMs of EfficientNet-Lite0 on the shared ImageNet val images."""
    lite = pytest.importorskip("wsol.models.efficientnet_lite")
    files = sorted(glob.glob(os.path.join(imagenet_val_100(), "ILSVRC", "Data", "CLS-LOC", "val", "*.JPEG")))[:n]
    import torch

    from wsol.transforms.image import load_rgb, test_transform

    cfg = lite.LITE_CONFIG["efficientnet_lite0"]
    model = lite.build_efficientnet_lite("efficientnet_lite0").eval()
    tf = test_transform(cfg["mean"], cfg["std"])
    with torch.no_grad():
        x = torch.stack([tf(load_rgb(f)) for f in files])
        feat = model.forward_features(x)  # [B, 1280, 7, 7]
        top1 = model.forward_head(feat).argmax(1)
        cams = torch.einsum("bk,bkhw->bhw", model.get_classifier().weight[top1], feat).numpy()
    return np.stack([quantize(postprocess(c)) for c in cams])


@pytest.mark.realdata
def test_real_cams():
    for q in _real_cams():
        assert_same(q, T100)
        assert_same(q, T1000)


# ---- the published per-threshold loop, and the per-cut scoring ----------------------------

def assert_same_as_per_threshold(q: np.ndarray, taus: Sequence[float]) -> None:
    """The cut-sharing reference == one OpenCV pass per τ (the published loop), array for array."""
    lit = sweep_per_threshold(q, taus)
    ref = sweep_reference(q, taus)
    assert lit.n_tau == ref.n_tau == len(taus)
    for mode in ("all", "largest"):
        for t, (a, b) in enumerate(zip(lit.boxes[mode], ref.boxes[mode])):
            assert a.dtype == b.dtype == np.int32 and np.array_equal(a, b), (mode, t, a.tolist(), b.tolist())


@pytest.mark.parametrize("seed", range(3))
def test_per_threshold_loop_equals_cut_sharing(seed):
    rng = np.random.default_rng(100 + seed)
    assert_same_as_per_threshold(smooth_map(rng, 96, 80, sigma=[2, 5, 9][seed]), T1000)
    assert_same_as_per_threshold(cam_like(rng), T100)
    assert_same_as_per_threshold(np.zeros((5, 7), np.uint8), T100)  # no foreground at any τ
    assert_same_as_per_threshold(rings(60, [3, 4, 5], [250, 90, 200]), [0.0, 0.35, 0.5, 0.9, 0.999])


def test_per_threshold_is_registered():
    assert get_sweep("per-threshold") is sweep_per_threshold


def test_sweep_result_expands_per_tau():
    """``boxes[mode][t]`` is ``cut_boxes[mode][tau_cut[t]]``, the same object."""
    q = np.zeros((6, 6), np.uint8)
    q[1:3, 1:3] = 200
    q[4, 4] = 100
    res = sweep_reference(q, [0.0, 0.1, 0.6, 0.99])
    # cuts: floor(τ * 200) = 0, 20, 120, 198 -> all distinct here
    assert res.tau_cut.tolist() == [0, 1, 2, 3]
    res = sweep_reference(q, [0.6, 0.0, 0.6, 0.001])  # cuts 120, 0, 120, 0
    assert res.tau_cut.tolist() == [1, 0, 1, 0]
    assert res.boxes["all"][0] is res.boxes["all"][2] is res.cut_boxes["all"][1]
    # at cut 0 both blobs are foreground: two outer contours, the later-found (lower) one
    # first; boxes are [x, y, min(x + w, 5), min(y + h, 5)] (docs/protocol.md, Contours and boxes)
    assert res.boxes["all"][1].tolist() == [[4, 4, 5, 5], [1, 1, 3, 3]]
    assert res.boxes["largest"][1].tolist() == [[1, 1, 3, 3]]  # polygon area 1 beats 0
    assert res.boxes["all"][0].tolist() == [[1, 1, 3, 3]]


def test_best_iou_per_cut_hand_computed():
    """Max IoU over boxes x GT per τ, and the first box reaching it, from per-cut arrays."""
    a = np.array([[0, 0, 9, 9], [20, 20, 29, 29]], np.int32)   # two boxes at cut 0
    b = np.array([[0, 0, 4, 9]], np.int32)                        # one box at cut 1
    c = np.array([[20, 20, 29, 29], [0, 0, 9, 9]], np.int32)    # tie: both reach IoU 1
    res = SweepResult.from_lists({"all": [a, b, c], "largest": [a[:1], b, c[:1]]}, np.array([1, 0, 2, 2, 1]))
    gt = np.array([[0, 0, 9, 9], [20, 20, 29, 29]])
    iou, box = best_iou_per_cut(res, "all", gt)
    # box b: 5x10 = 50 px inside the 10x10 GT -> IoU 50/100
    assert iou.tolist() == [0.5, 1.0, 1.0, 1.0, 0.5]
    assert box.tolist() == [[0, 0, 4, 9], [0, 0, 9, 9], [20, 20, 29, 29], [20, 20, 29, 29], [0, 0, 4, 9]]
    iou, box = best_iou_per_cut(res, "largest", np.array([[20, 20, 29, 29]]))
    assert iou.tolist() == [0.0, 0.0, 1.0, 1.0, 0.0]
    assert box[2].tolist() == [20, 20, 29, 29]


def test_best_iou_per_cut_equals_per_tau_loop():
    """Against a plain loop over τ and boxes (random maps, GT, many boxes per cut)."""
    rng = np.random.default_rng(3)
    for _ in range(5):
        q = smooth_map(rng, 60, 60, sigma=2)
        res = sweep_reference(q, T100)
        gt = np.sort(rng.integers(0, 60, (3, 2, 2)), axis=1).transpose(0, 2, 1).reshape(3, 4)[:, [0, 2, 1, 3]]
        for mode in ("all", "largest"):
            iou, box = best_iou_per_cut(res, mode, gt)
            for t, boxes in enumerate(res.boxes[mode]):
                scores = [max(iou_single(bx, g) for g in gt) for bx in boxes]
                k = int(np.argmax(scores))
                assert iou[t] == scores[k] and box[t].tolist() == boxes[k].tolist()


def iou_single(a, b) -> float:
    """IoU with inclusive coordinates, written out (docs/protocol.md, IoU)."""
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    inter = max(0, iw) * max(0, ih)
    union = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter
    return inter / union if union > 0 else 0.0


def test_best_iou_per_cut_fast_equals_reference():
    """The fast path packs cuts out of order (low cuts, then the rest, then cuts with holes);
    scoring from its packing gives the reference's IoUs and boxes."""
    rng = np.random.default_rng(8)
    for q in [cam_like(rng), smooth_map(rng, 224, 224, 4), rings(80, [3, 3, 4], [250, 40, 180])]:
        h, w = q.shape
        gt = np.array([[10, 12, w // 2, h // 2], [w // 3, h // 4, w - 5, h - 3]])
        fast, ref = sweep_fast(q, T1000), sweep_reference(q, T1000)
        for mode in ("all", "largest"):
            fi, fb = best_iou_per_cut(fast, mode, gt)
            ri, rb = best_iou_per_cut(ref, mode, gt)
            assert np.array_equal(fi, ri) and np.array_equal(fb, rb)


def test_best_iou_of_segments_equals_iou_matrix():
    """The compiled per-cut scorer == numpy's iou_matrix, bit for bit, on random and degenerate
    boxes (inverted GT boxes give non-positive unions, hence IoU 0)."""
    from wsol.localize.iou import best_iou_of_segments, iou_matrix

    rng = np.random.default_rng(21)
    for _ in range(50):
        counts = rng.integers(1, 6, rng.integers(1, 30))
        end = np.cumsum(counts)
        start = end - counts
        perm = rng.permutation(len(counts))  # segments stored out of order, like the fast path
        flat = rng.integers(-3, 240, (int(counts.sum()), 4)).astype(np.int32)
        gt = rng.integers(-3, 240, (int(rng.integers(1, 4)), 4))
        iou, box = best_iou_of_segments(flat, start[perm], end[perm], gt)
        for k, i in enumerate(perm):
            seg = flat[start[i]:end[i]]
            per_box = iou_matrix(seg, gt).max(axis=1)
            j = int(np.argmax(per_box))
            assert iou[k] == per_box[j] and box[k].tolist() == seg[j].tolist()
