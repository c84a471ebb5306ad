"""Faithfulness metrics (docs/protocol.md, "Faithfulness"): every rule against numbers worked out
by hand, the streaming evaluators against their functional twins, and shard merging."""
import numpy as np
import pytest

from wsol.metrics.faithfulness import (ConfidenceEvaluator, CurveEvaluator, RoadEvaluator, average_drop,
                                       confidence_change, curve_auc, deletion_insertion_auc, perturbation_counts,
                                       removal_count, road_combined, road_scores)
from wsol.metrics.state import merge_states


def test_confidence_change_by_hand():
    # Y = 0.8 -> O = 0.4: drop (0.8 - 0.4) / 0.8 = 0.5; Y = 0.5 -> O = 0.6: drop 0, increase;
    # Y = 0.2 -> O = 0.2: neither
    drop, inc = confidence_change([0.8, 0.5, 0.2], [0.4, 0.6, 0.2])
    assert drop.tolist() == [0.5, 0.0, 0.0]
    assert inc.tolist() == [False, True, False]
    out = average_drop([0.8, 0.5, 0.2], [0.4, 0.6, 0.2])
    assert out["avg_drop"] == pytest.approx(100 * 0.5 / 3)
    assert out["increase_in_confidence"] == pytest.approx(100 / 3)


def test_zero_original_score_drops_nothing():
    drop, inc = confidence_change([0.0], [0.3])
    assert drop.tolist() == [0.0] and inc.tolist() == [True]


def test_perturbation_counts_follow_the_fixed_step():
    assert perturbation_counts(10, 4).tolist() == [0, 3, 6, 9, 10]  # step ceil(10/4) = 3, last step 1
    assert perturbation_counts(8, 4).tolist() == [0, 2, 4, 6, 8]
    assert perturbation_counts(10, 6).tolist() == [0, 2, 4, 6, 8, 10]  # ceil(10/6) = 2: only 5 steps
    assert perturbation_counts(224 * 224, 20)[1] == 2509 and len(perturbation_counts(224 * 224, 20)) == 21
    with pytest.raises(ValueError):
        perturbation_counts(0, 3)


def test_curve_auc_is_the_trapezoid_on_the_fraction_axis():
    assert curve_auc([0, 0.5, 1], [[1, 0.5, 0]]).tolist() == [0.5]
    # 0.3 * (1 + 1) / 2 + 0.3 * (1 + 0) / 2 + 0 + 0 = 0.45
    assert curve_auc([0, 0.3, 0.6, 0.9, 1.0], [[1, 1, 0, 0, 0]])[0] == pytest.approx(0.45)
    # unequal last step: 0.9 * (0.2 + 0.2) / 2 + 0.1 * (0.2 + 1.0) / 2 = 0.18 + 0.06
    assert curve_auc([0, 0.9, 1.0], [[0.2, 0.2, 1.0]])[0] == pytest.approx(0.24)


def test_road_combined_by_hand():
    # ((0.8 - 0.2) / 2 + (0.7 - 0.1) / 2) / 2 = 0.3
    assert road_combined([[0.2, 0.1]], [[0.8, 0.7]])[0] == pytest.approx(0.3)
    out = road_scores([[0.2, 0.1], [0.4, 0.3]], [[0.8, 0.7], [0.4, 0.5]], [[1, 0], [0, 0]], [[1, 1], [0, 1]],
                      percentiles=(10, 50))
    assert out["road_morf"] == pytest.approx((0.2 + 0.1 + 0.4 + 0.3) / 4)
    assert out["road_lerf"] == pytest.approx((0.8 + 0.7 + 0.4 + 0.5) / 4)
    assert out["road_combined"] == pytest.approx((out["road_lerf"] - out["road_morf"]) / 2)
    assert out["road_morf_acc"] == pytest.approx(25.0) and out["road_lerf_acc"] == pytest.approx(75.0)
    assert out["road_morf_curve"].tolist() == pytest.approx([0.3, 0.2])


def test_removal_count_rounds():
    assert removal_count(224 * 224, 10) == 5018  # 5017.6
    assert removal_count(400, 30) == 120


def test_streaming_equals_the_twin_and_shards_add_up():
    rng = np.random.default_rng(0)
    y, o = rng.random(7), rng.random(7)
    whole = average_drop(y, o)
    a, b = ConfidenceEvaluator(), ConfidenceEvaluator()
    a.process(y[:3], o[:3])
    b.process(y[3:], o[3:])
    merged = ConfidenceEvaluator()
    merged.state = merge_states(ConfidenceEvaluator.STATE, [a.state, b.state])
    assert merged.evaluate() == pytest.approx(whole)

    fr = [0, 0.25, 0.5, 0.75, 1.0]
    curves = rng.random((6, 5))
    twin = deletion_insertion_auc("deletion", fr, curves)
    ev = CurveEvaluator("deletion", fr)
    for part in (curves[:2], curves[2:]):
        ev.process(part)
    got = ev.evaluate()
    assert got["deletion_auc"] == pytest.approx(twin["deletion_auc"])
    assert got["deletion_curve"] == pytest.approx(curves.mean(axis=0))
    assert twin["deletion_auc"] == pytest.approx(np.mean([np.trapezoid(c, fr) for c in curves]))

    m, l = rng.random((5, 3)), rng.random((5, 3))
    r1, r2 = RoadEvaluator((10, 20, 30)), RoadEvaluator((10, 20, 30))
    r1.process(m[:2], l[:2], m[:2] > 0.5, l[:2] > 0.5)
    r2.process(m[2:], l[2:], m[2:] > 0.5, l[2:] > 0.5)
    r1.state = merge_states(RoadEvaluator.STATE, [r1.state, r2.state])
    got, twin = r1.evaluate(), road_scores(m, l, m > 0.5, l > 0.5, (10, 20, 30))
    assert {k: got[k] for k in ("road_morf", "road_combined", "road_lerf_acc")} == pytest.approx(
        {k: twin[k] for k in ("road_morf", "road_combined", "road_lerf_acc")})


def test_empty_evaluators_give_nan():
    assert np.isnan(ConfidenceEvaluator().evaluate()["avg_drop"])
    assert np.isnan(CurveEvaluator("insertion", [0, 1]).evaluate()["insertion_auc"])
    assert np.isnan(RoadEvaluator().evaluate()["road_combined"])
