"""Exactness: float64 heatmaps stay float64 through quantization, the resize + min-max
normalization is the reference's float64 arithmetic bit for bit, and CSV numbers read back
as the exact floats."""
import os

import numpy as np
import pandas as pd
import pytest

from wsol.cli import main
from wsol.localize.maps import postprocess, quantize
from wsoleval_reference import ReferenceBoxEvaluator, upsample_normalize

GT = [60, 60, 160, 160]
K = 100  # the box region sits just below K/255


def _adversarial_maps():
    """Float64 heatmaps in [0, 1]: a box region at the largest float below k/255 (q = k - 1
    in float64; float32 rounds it up to k), a single pixel at the map's max elsewhere."""
    maps = []
    for j, k in enumerate((K, 37, 200, 255)):
        m = np.zeros((224, 224), np.float64)
        v = np.nextafter(k / 255, 0)
        if j == 0:
            v = (K - 1e-7) / 255  # well inside float32's rounding-up window
        m[GT[1]:GT[3] + 1, GT[0]:GT[2] + 1] = v
        m[5, 200] = 1.0 if j != 3 else v
        maps.append(m)
    return maps


def _write_meta(folder, n):
    os.makedirs(folder, exist_ok=True)
    ids = [f"img{i}.png" for i in range(n)]
    with open(os.path.join(folder, "image_ids.txt"), "w") as f:
        f.writelines(f"{i}\n" for i in ids)
    with open(os.path.join(folder, "class_labels.txt"), "w") as f:
        f.writelines(f"{i},0\n" for i in ids)
    with open(os.path.join(folder, "image_sizes.txt"), "w") as f:
        f.writelines(f"{i},224,224\n" for i in ids)
    with open(os.path.join(folder, "localization.txt"), "w") as f:
        f.writelines(f"{i},{','.join(map(str, GT))}\n" for i in ids)
    return ids


def test_float64_maps_are_quantized_in_float64():
    m = _adversarial_maps()[0]
    assert quantize(m)[100, 100] == K - 1
    assert int(np.floor(255 * m.astype(np.float32)[100, 100])) == K  # what a float32 cast would give


def test_score_keeps_float64_heatmaps_exact(tmp_path, capsys):
    """`wsol score` on float64 .npy maps gives the literal reference's BoxAcc at every tau,
    and the maps are built so that a float32 cast changes some of them."""
    maps = _adversarial_maps()
    ids = _write_meta(tmp_path / "meta", len(maps))
    (tmp_path / "cams").mkdir()
    for i, m in zip(ids, maps):
        np.save(tmp_path / "cams" / f"{i}.npy", m)
    rc = main(["-q", "score", "--cams", str(tmp_path / "cams"), "--dataset", "wsoleval", "--root",
               str(tmp_path / "meta"), "--out", str(tmp_path / "o")])
    assert rc == 0, capsys.readouterr().err
    curves = pd.read_csv(tmp_path / "o" / "curves.csv")
    ref, ref32 = ReferenceBoxEvaluator(), ReferenceBoxEvaluator()
    for m in maps:
        ref.accumulate(m, [GT])
        ref32.accumulate(m.astype(np.float32), [GT])
    for t in (30, 50, 70):
        got = curves[(curves["mode"] == "all") & (curves.iou_threshold == t / 100)].box_acc.to_numpy()
        np.testing.assert_array_equal(got, ref.num_correct[t] * 100.0 / ref.cnt)
        if t == 50:  # the test can fail: float32 rounding moves the box region up one level
            assert (ref32.num_correct[t] != ref.num_correct[t]).any()
    # hand-computed at tau 0.39 (cut floor(0.39 * max q) = 99 for all four maps): the box
    # regions have q = 99 (map 0, not above the cut: only the max pixel is foreground, IoU
    # 1/10201, a miss; float32 would give q = 100 and a hit), 36 (a miss), 199 and 254 (hits)
    tau = curves[(curves["mode"] == "all") & (curves.iou_threshold == 0.5)].reset_index(drop=True)
    row = tau.iloc[39]
    assert row.tau == pytest.approx(0.39)
    assert row.box_acc == 50.0


@pytest.mark.parametrize("seed", range(4))
def test_postprocess_is_the_reference_float64_arithmetic_bit_for_bit(seed):
    """Raw float32 maps (as the network gives them), including ones whose normalized values
    land on k/255 boundaries: wsol's resize + normalize equals the reference's to the bit,
    and so do the 8-bit levels."""
    rng = np.random.default_rng(seed)
    raws = [rng.normal(size=(7, 7)).astype(np.float32),
            (rng.integers(0, 256, (14, 14)) / 255).astype(np.float32),   # values at k/255
            np.kron(rng.integers(0, 4, (7, 7)), np.ones((2, 2))).astype(np.float32) * 85 / 255,
            rng.normal(size=(28, 28)).astype(np.float32) ** 3]
    for raw in raws:
        got, ref = postprocess(raw), upsample_normalize(raw)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, ref)
        np.testing.assert_array_equal(quantize(got), np.floor(ref * 255).astype(np.uint8))


def test_csvs_read_back_as_the_exact_floats(tmp_path):
    from wsol.report.csv import write_run

    df = pd.DataFrame({"x": [80 / 3, 0.1 + 0.2, 1 / 3 * 100, np.float32(0.7)], "s": list("abcd")})
    write_run(str(tmp_path), {"summary.csv": df})
    back = pd.read_csv(tmp_path / "summary.csv")
    assert (back.x.to_numpy() == df.x.to_numpy(dtype=np.float64)).all()
    assert "26.666666666666668" in (tmp_path / "summary.csv").read_text()
