"""Faithfulness through the real entry points (``wsol evaluate --faithfulness``, ``wsol.evaluate``):
the tables carry the metrics, their options and curves; the perturbed forwards are batched
(one pass per step over the batch); bad options are one-line errors."""
import numpy as np
import pandas as pd
import pytest
import torch

from cub_fixture import make_cub, tiny_eval_config

from wsol.cli import main
from wsol.engine.run import evaluate
from wsol.errors import WsolError
from wsol.evaluation.faithfulness import FaithfulnessOptions, FaithfulnessEvaluator


@pytest.fixture(scope="module")
def cub(tmp_path_factory):
    root = tmp_path_factory.mktemp("faith") / "cub"
    make_cub(str(root), n_per_class=2)
    return root


def _cfg(cub, **kw):
    return tiny_eval_config(cub, **kw)


def test_cli_writes_every_metric_with_its_options(cub, tmp_path):
    out = tmp_path / "run"
    rc = main(["-q", "evaluate", "--root", str(cub), "--backbone", "tiny_test_net", "--weights", "random",
               "--batch-size", "2", "--faithfulness", "deletion,insertion,avg_drop,road", "--faithfulness-steps", "4",
               "--faithfulness-patch", "8", "--report", "--out", str(out)])
    assert rc == 0
    html = (out / "report.html").read_text()
    assert "Faithfulness (does the map explain the classifier?)" in html and 'alt="faithfulness curves"' in html
    assert 'alt="BoxAcc vs tau"' in html  # the box curves still plot beside the new rows
    s = pd.read_csv(out / "summary.csv").iloc[0]
    for c in ("avg_drop", "increase_in_confidence", "deletion_auc", "insertion_auc", "road_morf", "road_lerf",
              "road_combined", "road_morf_acc"):
        assert np.isfinite(s[c]), c
    assert 0 <= s["avg_drop"] <= 100 and 0 <= s["deletion_auc"] <= 1 and 0 <= s["insertion_auc"] <= 1
    assert s["faithfulness_steps"] == 4 and s["faithfulness_patch"] == 8
    assert s["deletion_baseline"] == "zeros" and s["insertion_baseline"] == "blur"
    assert s["road_percentiles"] == "10 20 30 40 50 60 70 80 90" and s["road_noise"] == 0.01
    assert s["n_faithfulness"] == s["n_images"] == 3
    per = pd.read_csv(out / "per_image.csv")
    assert per["deletion_auc"].mean() == pytest.approx(s["deletion_auc"])
    assert per["road_combined"].mean() == pytest.approx(s["road_combined"])
    assert list(per.columns[-2:]) == ["status", "reason"]
    curves = pd.read_csv(out / "curves.csv")
    dele = curves[curves["mode"] == "deletion"]
    assert dele["fraction"].tolist() == [0, 0.25, 0.5, 0.75, 1.0]  # 224/8 = 28: 784 patches, step 196
    # the curve starts at the unperturbed score (the run's own forward)
    assert dele["score"].iloc[0] == pytest.approx(per["class_score"].mean())
    road = curves[curves["mode"] == "road_morf"]
    assert road["fraction"].tolist() == pytest.approx([p / 100 for p in range(10, 100, 10)])
    timings = pd.read_csv(out / "timings.csv")
    assert "faithfulness" in set(timings["stage"])


def test_api_run_without_faithfulness_has_no_columns(cub):
    res = evaluate(_cfg(cub))
    assert "deletion_auc" not in res.summary.columns and "class_score" not in res.per_image.columns


def test_same_numbers_for_any_batch_size(cub):
    a = evaluate(_cfg(cub, faithfulness="avg_drop,deletion,insertion", faithfulness_steps=3, batch_size=1))
    b = evaluate(_cfg(cub, faithfulness="avg_drop,deletion,insertion", faithfulness_steps=3, batch_size=3))
    for c in ("avg_drop", "deletion_auc", "insertion_auc"):
        assert a.summary[c].iloc[0] == pytest.approx(b.summary[c].iloc[0], abs=1e-5), c


def test_bad_options_are_one_line_errors(cub, capsys):
    with pytest.raises(WsolError, match="faithfulness must be a comma list of avg_drop, deletion, insertion, road"):
        evaluate(_cfg(cub, faithfulness="deleton"))
    with pytest.raises(WsolError, match="deletion_baseline must be one of zeros, blur, mean"):
        evaluate(_cfg(cub, faithfulness="deletion", deletion_baseline="black"))
    with pytest.raises(WsolError, match="patch size 5 must divide the input size 224x224"):
        evaluate(_cfg(cub, faithfulness="deletion", faithfulness_patch=5))
    with pytest.raises(SystemExit) as e:
        main(["-q", "evaluate", "--root", str(cub), "--out", "x", "--faithfulness-steps", "0"])
    assert e.value.code == 2
    assert "faithfulness_steps must be an integer in 1..1000, got 0" in capsys.readouterr().err


def _counting_score(calls):
    """A fake class score: the mean of each image (so removing pixels of a ones image lowers it)."""
    def score(batch):
        calls.append(len(batch))
        m = batch.double().mean(dim=(1, 2, 3)).numpy()
        return m, m > 0.5
    return score


def test_one_batched_pass_per_step_and_the_shared_baseline_point():
    images = torch.ones(3, 1, 4, 4)
    maps = torch.rand(3, 4, 4)
    calls = []
    f = FaithfulnessEvaluator(FaithfulnessOptions(("deletion", "insertion"), steps=4, deletion_baseline="zeros",
                                               insertion_baseline="zeros"))
    f.perturb(_counting_score(calls), images, maps, np.ones(3), [0, 1, 2])
    # deletion: 4 passes (points 1..4); insertion: 3 (its first point is deletion's last; its last the original)
    assert calls == [3] * 7
    # removing 4 of 16 pixels per step of a ones image: 1, .75, .5, .25, 0 -> area 0.5; insertion mirrors it
    assert f.curve_evs["deletion"].evaluate()["deletion_curve"] == pytest.approx([1, 0.75, 0.5, 0.25, 0])
    assert f.evaluate()["deletion_auc"] == pytest.approx(0.5)
    assert f.curve_evs["insertion"].evaluate()["insertion_curve"] == pytest.approx([0, 0.25, 0.5, 0.75, 1])
    calls.clear()
    g = FaithfulnessEvaluator(FaithfulnessOptions(("insertion",), steps=4, insertion_baseline="zeros"))
    g.perturb(_counting_score(calls), images, maps, np.ones(3), [0, 1, 2])
    assert calls == [3] * 4  # alone, insertion runs its all-baseline point itself


def test_avg_drop_on_the_map_multiplied_image_by_hand():
    images = torch.ones(1, 1, 2, 2)
    maps = torch.tensor([[[1.0, 0.5], [0.0, 0.5]]])  # masked image mean 0.5
    f = FaithfulnessEvaluator(FaithfulnessOptions(("avg_drop",)))
    f.perturb(_counting_score([]), images, maps, np.array([0.8]), [0])
    s = f.evaluate()
    assert s["avg_drop"] == pytest.approx(100 * (0.8 - 0.5) / 0.8)
    assert s["increase_in_confidence"] == 0.0
    assert f.per_image()["masked_score"].tolist() == [0.5]
