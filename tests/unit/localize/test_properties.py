"""Property-based tests (hypothesis) for the localization core."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from wsol.localize.boxes import MODES, sweep_reference
from wsol.localize.sweeps import get_sweep
from wsol.localize.iou import iou_matrix
from wsol.localize.maps import normalize, quantize
from wsol.metrics.box_accuracy import box_accuracy

coord = st.integers(0, 223)


@st.composite
def boxes(draw, n=st.integers(1, 6)):
    k = draw(n)
    out = []
    for _ in range(k):
        x0, x1 = sorted((draw(coord), draw(coord)))
        y0, y1 = sorted((draw(coord), draw(coord)))
        out.append([x0, y0, x1, y1])
    return np.array(out)


@given(boxes(), boxes())
def test_iou_symmetric_and_in_unit_interval(a, b):
    m = iou_matrix(a, b)
    np.testing.assert_allclose(m, iou_matrix(b, a).T)
    assert ((m >= 0) & (m <= 1)).all()
    np.testing.assert_allclose(np.diag(iou_matrix(a, a)), 1.0)


small_maps = arrays(np.uint8, st.tuples(st.integers(1, 24), st.integers(1, 24)),
                    elements=st.integers(0, 255))


@settings(max_examples=150, deadline=None)
@given(small_maps, st.sampled_from([0.01, 0.05, 0.1]))
def test_boxes_inside_the_map(q, step):
    h, w = q.shape
    res = sweep_reference(q, np.arange(0, 1, step))
    for mode in MODES:
        for b in res.boxes[mode]:
            assert ((b[:, 0] >= 0) & (b[:, 2] <= w - 1) & (b[:, 1] >= 0) & (b[:, 3] <= h - 1)).all()
            assert ((b[:, 0] <= b[:, 2]) & (b[:, 1] <= b[:, 3])).all()


@given(arrays(np.float64, st.tuples(st.integers(1, 30), st.integers(1, 12)), elements=st.floats(0, 1)))
def test_box_acc_non_increasing_in_iou_threshold(ious):
    acc = box_accuracy(ious, (10, 30, 50, 70, 90))
    assert (np.diff(acc, axis=0) <= 0).all()


@settings(max_examples=200, deadline=None)
@given(small_maps)
def test_fast_sweep_equals_reference(q):
    taus = np.arange(0, 1, 0.01)
    fast, ref = get_sweep("fast")(q, taus), sweep_reference(q, taus)
    for t in range(len(taus)):
        assert fast.boxes["largest"][t].tolist() == ref.boxes["largest"][t].tolist()
        assert sorted(fast.boxes["all"][t].tolist()) == sorted(ref.boxes["all"][t].tolist())


@given(arrays(np.float32, (5, 5), elements=st.floats(-1e6, 1e6, width=32)))
def test_normalized_maps_quantize_into_range(m):
    n = normalize(m)
    assert n.min() >= 0 and n.max() <= 1
    q = quantize(n)
    assert q.dtype == np.uint8 and (q.max() == 255 or q.max() == 0)
