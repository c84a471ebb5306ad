"""PxAP / PIoU (wsol.metrics.mask_accuracy) and the pointing games (wsol.metrics.pointing):
hand-computed cases, streaming == one batch, and equality with a re-statement of
wsolevaluation's MaskEvaluator (tests/fixtures/wsoleval_mask_reference.py) on random and adversarial
maps and masks."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wsoleval_mask_reference as ref
from wsol.localize.maps import thresholds
from wsol.metrics.mask_accuracy import (PixelPREvaluator, bin_edges, pixel_pr_summary, pr_from_histograms,
                                        pxap_from_pr, score_histograms)
from wsol.metrics.pointing import (PointingAccumulator, boxes_region, energy_share, peak_point, pointing_hit,
                                   pointing_summary)

TAUS = thresholds(0.01)


def _wsol(maps, masks, taus=TAUS):
    return pixel_pr_summary(maps, masks, taus)


def _ref(maps, masks, taus=TAUS):
    ev = ref.MaskEvaluator(taus)
    for m, g in zip(maps, masks):
        ev.accumulate(m, g)
    return ev.compute(), ev.compute_piou()


# ----------------------------------------------------------------------------- hand-computed
def test_two_by_two_by_hand():
    # taus [0, 0.5]: bins [0,.5) [.5,1) [1,2) [2,3]. Object values 0.9, 0.4; background 0.4, 0.1.
    # From the top: TP 0,0,1,2; FP 0,0,0,2 -> precision -,-,1,1/2; recall 0,0,1/2,1.
    # PxAP = 1 * 1/2 + 1/2 * 1/2 = 75; pixel IoU 0,0,1/2,2/4 -> PIoU 50 (first at τ 0.5).
    m = np.array([[0.9, 0.4], [0.4, 0.1]])
    g = np.array([[1, 0], [1, 0]], np.uint8)
    s = _wsol([m], [g], [0.0, 0.5])
    assert s.pxap == pytest.approx(75.0, abs=1e-12)
    assert s.piou == pytest.approx(50.0, abs=1e-12)
    assert s.piou_tau == 0.5


def test_perfect_map_gives_100():
    rng = np.random.default_rng(0)
    g = (rng.random((224, 224)) < 0.3).astype(np.uint8)
    s = _wsol([g.astype(np.float32)], [g])
    assert s.pxap == 100.0 and s.piou == 100.0


@pytest.mark.parametrize("value", [0.0, 0.37, 1.0])
def test_constant_map_gives_the_foreground_share(value):
    g = np.zeros((224, 224), np.uint8)
    g[10:60, 20:100] = 1          # 4000 object pixels of 50176
    g[100:110, :] = 255            # ignored: in neither share
    share = 4000 / (224 * 224 - 2240)
    s = _wsol([np.full((224, 224), value, np.float32)], [g])
    assert s.pxap == pytest.approx(100 * share, abs=1e-9)
    assert s.piou == pytest.approx(100 * share, abs=1e-9)


def test_ignore_pixels_change_nothing():
    rng = np.random.default_rng(1)
    m = rng.random((224, 224)).astype(np.float32)
    g = (rng.random((224, 224)) < 0.2).astype(np.uint8)
    ign = rng.random((224, 224)) < 0.3
    g_ign = g.copy()
    g_ign[ign & (g == 0)] = 255
    base = _wsol([m[g_ign != 255]], [g[g_ign != 255]])   # the ignored pixels simply removed
    m2 = m.copy()
    m2[g_ign == 255] = rng.random(int((g_ign == 255).sum()))  # any value under the ignore region
    for mm in (m, m2):
        s = _wsol([mm], [g_ign])
        assert s.pxap == base.pxap and s.piou == base.piou


def test_no_background_pixel_is_nan_not_100():
    """A mask that is object and ignored pixels only would give any map precision 1 (PxAP 100)."""
    g = np.full((224, 224), 255, np.uint8)
    g[:50] = 1
    s = pixel_pr_summary([np.random.default_rng(0).random((224, 224))], [g], TAUS)
    assert np.isnan(s.pxap) and np.isnan(s.piou)


def test_no_object_pixel_is_nan_not_a_crash():
    s = _wsol([np.random.default_rng(0).random((8, 8))], [np.zeros((8, 8), np.uint8)])
    assert np.isnan(s.pxap) and np.isnan(s.piou)


def test_histogram_bins_follow_numpy_histogram_at_the_edges():
    edges = bin_edges(TAUS)
    v = np.concatenate([TAUS, TAUS.astype(np.float32), np.nextafter(TAUS, -1), [1.0, 0.0, 2.0, 3.0, -0.1, 3.5]])
    fg, bg = score_histograms(v, np.ones(len(v), np.uint8), edges)
    assert np.array_equal(fg, np.histogram(v, bins=edges)[0]) and not bg.any()


# ----------------------------------------------------------------------------- streaming
def test_streaming_equals_one_batch_and_merge():
    rng = np.random.default_rng(2)
    maps = [rng.random((224, 224)).astype(np.float32) ** 3 for _ in range(6)]
    masks = [rng.choice([0, 1, 255], size=(224, 224), p=[0.6, 0.3, 0.1]).astype(np.uint8) for _ in range(6)]
    one = _wsol([np.concatenate(maps)], [np.concatenate(masks)])
    ev = PixelPREvaluator(TAUS)
    for m, g in zip(maps, masks):
        ev.process(m, g)
    a, b = PixelPREvaluator(TAUS), PixelPREvaluator(TAUS)
    for m, g in zip(maps[:2], masks[:2]):
        a.process(m, g)
    for m, g in zip(maps[2:], masks[2:]):
        b.process(m, g)
    a.merge(b.state)
    for s in (ev.evaluate(), a.evaluate()):
        assert s.pxap == one.pxap and s.piou == one.piou
    assert ev.evaluate().n_mask_images == 6
    # state is flat in the number of images
    assert {k: tuple(v.shape) for k, v in ev.state.items()} == {"fg_hist": (102,), "bg_hist": (102,), "n": ()}


# ----------------------------------------------------------------------------- vs the reference
def _adversarial_maps(rng, n):
    """Maps whose values sit exactly on (and next to) the bin edges, at 0 and 1, constant, one-hot."""
    out = []
    for k in range(n):
        kind = k % 6
        if kind == 0:
            m = rng.choice(TAUS, size=(224, 224))                      # exactly on float64 edges
        elif kind == 1:
            m = rng.choice(TAUS, size=(224, 224)).astype(np.float32)   # float32-rounded edges
        elif kind == 2:
            m = np.nextafter(rng.choice(TAUS[1:], size=(224, 224)), 0)  # just below an edge
        elif kind == 3:
            m = np.full((224, 224), rng.choice([0.0, 1.0, 0.5]), np.float32)
        elif kind == 4:
            m = np.zeros((224, 224), np.float32)
            m[rng.integers(224), rng.integers(224)] = 1.0
        else:
            m = np.floor(rng.random((224, 224)) * 255) / 255
        out.append(m)
    return out


def _masks(rng, n):
    out = []
    for k in range(n):
        kind = k % 4
        if kind == 0:
            g = rng.choice([0, 1, 255], size=(224, 224), p=[0.5, 0.3, 0.2])
        elif kind == 1:
            g = np.zeros((224, 224))
            g[rng.integers(224), rng.integers(224)] = 1                 # one object pixel
        elif kind == 2:
            g = np.ones((224, 224))                                      # all object
        else:
            g = np.full((224, 224), 255)                                 # all ignored
            g[:3] = 1
        out.append(g.astype(np.uint8))
    return out


@pytest.mark.parametrize("step", [0.01, 0.001, 0.05])
def test_equals_reference_on_random_maps(step):
    taus = thresholds(step)
    rng = np.random.default_rng(int(step * 1000))
    maps = [rng.random((224, 224)).astype(np.float32) ** rng.uniform(0.3, 4) for _ in range(8)]
    masks = _masks(rng, 8)
    s = _wsol(maps, masks, taus)
    pxap, piou = _ref(maps, masks, taus)
    assert abs(s.pxap - pxap) <= 1e-9 and abs(s.piou - piou) <= 1e-9


@pytest.mark.parametrize("step", [0.01, 0.001])
def test_equals_reference_on_adversarial_maps(step):
    taus = thresholds(step)
    rng = np.random.default_rng(7)
    maps = _adversarial_maps(rng, 12)
    masks = _masks(rng, 12)
    s = _wsol(maps, masks, taus)
    pxap, piou = _ref(maps, masks, taus)
    assert abs(s.pxap - pxap) <= 1e-9 and abs(s.piou - piou) <= 1e-9
    for m, g in zip(maps, masks):  # and image by image
        if (g == 1).any():
            one = _wsol([m], [g], taus)
            p, i = _ref([m], [g], taus)
            if (g == 0).any():
                assert abs(one.pxap - p) <= 1e-9 and abs(one.piou - i) <= 1e-9
            else:  # no background pixel: the reference's precision is 1 everywhere (PxAP 100), ours NaN
                assert p == 100 and np.isnan(one.pxap) and np.isnan(one.piou)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 31), h=st.integers(1, 12), w=st.integers(1, 12),
       step=st.sampled_from([0.01, 0.1, 0.25, 0.001]), levels=st.integers(1, 6))
def test_equals_reference_property(seed, h, w, step, levels):
    taus = thresholds(step)
    rng = np.random.default_rng(seed)
    maps = [rng.integers(0, levels + 1, size=(h, w)) / levels for _ in range(3)]  # many ties, 0 and 1
    masks = [rng.choice([0, 1, 255], size=(h, w)).astype(np.uint8) for _ in range(3)]
    masks[0].flat[0] = 1
    masks[0].flat[-1] = 0 if masks[0].size > 1 else 1
    s = _wsol(maps, masks, taus)
    pxap, piou = _ref(maps, masks, taus)
    if any((g == 0).any() for g in masks):
        assert abs(s.pxap - pxap) <= 1e-9 and abs(s.piou - piou) <= 1e-9
    else:  # no background pixel anywhere: the reference says 100, we say undefined
        assert pxap == 100 and np.isnan(s.pxap) and np.isnan(s.piou)


def test_pr_curve_ends():
    rng = np.random.default_rng(3)
    m, g = rng.random((50, 50)), (rng.random((50, 50)) < 0.4).astype(np.uint8)
    edges = bin_edges(TAUS)
    pr = pr_from_histograms(*score_histograms(m, g, edges), edges)
    assert pr.thresholds[0] == 2.0 and pr.thresholds[-1] == 0.0
    assert pr.recall[-1] == 1.0 and pr.recall[0] == 0.0
    assert pr.precision[-1] == pytest.approx((g == 1).mean())
    assert 0 < pxap_from_pr(pr) < 100


# ----------------------------------------------------------------------------- pointing games
def test_peak_point_first_in_row_major_order():
    m = np.zeros((5, 6))
    m[3, 1] = m[2, 4] = 1.0
    assert peak_point(m) == (4, 2)          # (x, y) of the first maximum in row-major order


def test_pointing_hit_in_boxes_and_with_tolerance():
    region = boxes_region(np.array([[2, 1, 4, 3]]), (10, 10))   # inclusive: columns 2..4, rows 1..3
    assert region.sum() == 9
    assert pointing_hit((4, 3), region) and not pointing_hit((5, 3), region)
    # (7, 3) is 3 px right of column 4: a miss at tolerance 2.9, a hit at 3
    assert not pointing_hit((7, 3), region, 2.9) and pointing_hit((7, 3), region, 3.0)
    # diagonal: (6, 6) to (4, 3) is sqrt(4 + 9) = 3.606
    assert not pointing_hit((6, 6), region, 3.6) and pointing_hit((6, 6), region, 3.61)


def test_energy_share_by_hand():
    m = np.zeros((4, 4))
    m[0, 0], m[3, 3], m[1, 1] = 2.0, 1.0, 1.0
    region = boxes_region(np.array([[0, 0, 1, 1]]), (4, 4))
    assert energy_share(m, region) == pytest.approx(3 / 4)
    assert energy_share(np.zeros((4, 4)), region) == 0.0


def test_pointing_summary_overall_and_class_average():
    # class 0: 3 of 4 hits; class 1: 0 of 1 -> overall 60, class average (75 + 0) / 2 = 37.5
    s = pointing_summary([1, 1, 1, 0, 0], [0, 0, 0, 0, 1], [0.5, 0.5, 0.5, 0.5, 0.0])
    assert s.pointing_game == pytest.approx(60.0)
    assert s.pointing_game_class_avg == pytest.approx(37.5)
    assert s.energy_pointing_game == pytest.approx(40.0)
    assert np.isnan(PointingAccumulator().summary().pointing_game)
