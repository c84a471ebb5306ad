"""Declared scorer state (docs/architecture.md, Package contracts): the streaming evaluator,
fed in any batches or merged from any shards, agrees with its functional twins on whole
arrays; reductions do what they declare; the box evaluator's per-image state merges back into
dataset order."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wsol.localize.boxes import MODES
from wsol.localize.image import ImageLocalization
from wsol.metrics.box_accuracy import (BoxAccEvaluator, box_accuracy, loc_accuracy, max_box_acc,
                                       max_box_acc_v2)
from wsol.metrics.state import StateSpec, merge_states

# IoUs that hit the thresholds exactly as well as values in between
iou_values = st.one_of(st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0, 0.29999999999999999, 0.49999]),
                       st.floats(0, 1, allow_nan=False))


@st.composite
def runs(draw):
    n = draw(st.integers(1, 25))
    n_tau = draw(st.integers(1, 12))
    ious = np.array(draw(st.lists(iou_values, min_size=n * 2 * n_tau, max_size=n * 2 * n_tau))).reshape(n, 2, n_tau)
    t5 = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    t1 = t5 & np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    cuts = sorted(set(draw(st.lists(st.integers(0, n), max_size=4))))
    return ious, t1, t5, cuts


@settings(max_examples=150, deadline=None)
@given(runs(), st.booleans())
def test_streaming_and_merged_equal_the_functional_twins(run, as_shards):
    ious, t1, t5, cuts = run
    n_tau = ious.shape[2]
    taus = np.arange(n_tau) / n_tau
    bounds = [0, *cuts, len(ious)]
    if as_shards:  # one evaluator per shard, merged
        ev = BoxAccEvaluator(taus)
        for a, b in zip(bounds, bounds[1:]):
            part = BoxAccEvaluator(taus)
            part.process(ious[a:b], t1[a:b], t5[a:b])
            ev.merge(part.state)
    else:  # one evaluator, several batches
        ev = BoxAccEvaluator(taus)
        for a, b in zip(bounds, bounds[1:]):
            ev.process(ious[a:b], t1[a:b], t5[a:b])
    s = ev.evaluate()
    all_, big = ious[:, MODES.index("all")], ious[:, MODES.index("largest")]
    assert s.maxboxacc_v2 == max_box_acc_v2(all_)
    assert s.maxboxacc == max_box_acc(big, 50)
    assert [s.maxboxacc_iou30, s.maxboxacc_iou50, s.maxboxacc_iou70] == [max_box_acc(all_, t) for t in (30, 50, 70)]
    li = int(np.argmax(box_accuracy(big, [50])[0]))
    assert s.loc_tau == taus[li]
    assert s.gt_known_loc == loc_accuracy(big, np.ones(len(big), bool), li)
    assert s.top1_loc == loc_accuracy(big, t1, li) and s.top5_loc == loc_accuracy(big, t5, li)
    np.testing.assert_array_equal(ev.curves()["all"], box_accuracy(all_))
    assert s.n_images == len(ious) and s.top1_cls == t1.sum() * 100.0 / len(ious)


def test_reductions():
    specs = [StateSpec("a", "sum"), StateSpec("b", "cat"), StateSpec("c", "any")]
    merged = merge_states(specs, [{"a": torch.tensor([1, 2]), "b": [1], "c": False},
                                  {"a": torch.tensor([10, 20]), "b": [2, 3], "c": True}])
    assert merged["a"].tolist() == [11, 22] and merged["b"] == [1, 2, 3] and merged["c"] is True
    with pytest.raises(ValueError, match="reduction must be one of"):
        StateSpec("d", "mean")


def _loc(v: float, n_tau: int = 3) -> ImageLocalization:
    return ImageLocalization(np.full((len(MODES), n_tau), v), np.zeros((len(MODES), n_tau, 4), np.int32))


def test_box_evaluator_shards_merge_into_dataset_order():
    """Two shards scored separately (the second shard first, a skipped image in the middle)
    merge into the same per_image table and summary as one evaluator over all images."""
    from wsol.evaluation.box_evaluator import BoxEvaluator
    from wsol.evaluation.records import ScoredBatch

    def batch(lo, hi):
        return ScoredBatch(ids[lo:hi], np.zeros(hi - lo, np.int64) + (lo > 3), list(range(lo, hi)),
                           [_loc(v) for v in vals[lo:hi]], top5[lo:hi])

    def skipped():
        return ScoredBatch(["im3"], np.array([1]), [3], reasons=["missing"])

    taus = np.array([0.0, 0.5, 0.9])
    ids, vals = [f"im{i}" for i in range(5)], [0.9, 0.2, 0.6, 0.0, 0.55]
    top5 = np.array([[0, 1], [1, 0], [0, 1], [1, 0], [1, 0]])
    whole = BoxEvaluator(taus)
    for b in (batch(0, 3), skipped(), batch(4, 5)):
        whole.process(b)
    b, a = BoxEvaluator(taus), BoxEvaluator(taus)
    b.process(skipped())
    b.process(batch(4, 5))
    a.process(batch(0, 3))
    merged = BoxEvaluator(taus)
    merged.merge(b.state_dict(), a.state_dict())
    assert list(merged.per_image().image_id) == ids
    assert merged.per_image().equals(whole.per_image())
    assert merged.evaluate() == whole.evaluate() and merged.n_skipped == 1
