"""The evaluator contract (docs/architecture.md, "Evaluation"): state declared once gives
reset, state_dict, load_state_dict and merge; the composite merges its evaluators' columns and
refuses one given twice; heatmap files run through the same loop as the model."""
import numpy as np
import pandas as pd
import pytest

from cub_fixture import make_cub
from wsol.errors import WsolError
from wsol.evaluation.evaluator import DatasetEvaluator, DatasetEvaluators
from wsol.evaluation.records import ScoredBatch
from wsol.evaluation.run_evaluators import run_evaluators
from wsol.localize.boxes import MODES
from wsol.localize.image import ImageLocalization
from wsol.metrics.pointing import PointingAccumulator


class _Counter(DatasetEvaluator):
    """A small evaluator with one state of each reduction and a metric object's state."""

    name = "counter"

    def __init__(self):
        super().__init__()
        self.add_state("total", 0, "sum", "sum of the labels")
        self.add_state("labels", set(), "union", "labels seen")
        self.add_state("any_zero", False, "any", "a label 0 was seen")
        self.add_state("ids", [], "cat", "image ids", per_image=True)
        self.add_state("index", [], "cat", "dataset positions", per_image=True)
        self.pointing = self.add_metric(PointingAccumulator())

    def process(self, batch):
        self.total += int(batch.labels.sum())
        self.labels |= set(batch.labels.tolist())
        self.any_zero = self.any_zero or bool((batch.labels == 0).any())
        self.ids.extend(batch.image_ids)
        self.index.extend(batch.indices)
        for lab in batch.labels:
            self.pointing.add(bool(lab % 2), int(lab), 0.5)

    def evaluate(self):
        return {"total": self.total, "labels": sorted(self.labels), "any_zero": self.any_zero,
                "pointing_game": self.pointing.summary().pointing_game}


def _batch(ids, labels, positions):
    return ScoredBatch(list(ids), np.asarray(labels, np.int64), list(positions))


def test_state_is_derived_from_the_declarations():
    ev = _Counter()
    assert [(s.name, s.reduce) for s in ev.state_specs()] == [
        ("total", "sum"), ("labels", "union"), ("any_zero", "any"), ("ids", "cat"), ("index", "cat"),
        ("pointing_hits", "sum"), ("pointing_count", "sum"), ("energy_sum", "sum")]
    assert list(ev.state_dict()) == [s.name for s in ev.state_specs()]
    ev.process(_batch(["a", "b"], [3, 0], [0, 1]))
    assert ev.evaluate() == {"total": 3, "labels": [0, 3], "any_zero": True, "pointing_game": 50.0}
    ev.reset()
    assert ev.state_dict() == {"total": 0, "labels": set(), "any_zero": False, "ids": [], "index": [],
                               "pointing_hits": {}, "pointing_count": {}, "energy_sum": 0.0}
    ev.process(_batch(["c"], [7], [0]))  # the defaults are copies: a second run starts from nothing
    ev.reset()
    assert ev.ids == [] and ev.labels == set() and _Counter().labels == set()
    with pytest.raises(ValueError, match="declared twice"):
        ev.add_state("total", 0, "sum")
    with pytest.raises(ValueError, match="per-image state concatenates"):
        ev.add_state("rows", [], "sum", per_image=True)


def test_two_shards_merged_equal_one_run_over_all_images():
    """Labels 2, 0, 5 at positions 0..2 and 1, 1 at 3..4: total 9, labels {0, 1, 2, 5}, a zero
    seen, pointing hits on the odd labels 5, 1, 1 (3 of 5 = 60 %); the ids come back in dataset
    order although the second shard is merged first."""
    whole = _Counter()
    whole.process(_batch(["i0", "i1", "i2"], [2, 0, 5], [0, 1, 2]))
    whole.process(_batch(["i3", "i4"], [1, 1], [3, 4]))
    first, second = _Counter(), _Counter()
    first.process(_batch(["i0", "i1", "i2"], [2, 0, 5], [0, 1, 2]))
    second.process(_batch(["i3", "i4"], [1, 1], [3, 4]))
    merged = _Counter()
    merged.merge(second.state_dict(), first.state_dict())
    assert merged.evaluate() == whole.evaluate() == {"total": 9, "labels": [0, 1, 2, 5], "any_zero": True,
                                                     "pointing_game": 60.0}
    assert merged.ids == ["i0", "i1", "i2", "i3", "i4"] and merged.index == [0, 1, 2, 3, 4]
    assert merged.pointing.count == {2: 1, 0: 1, 5: 1, 1: 2} and merged.pointing.energy_sum == 2.5


class _Columns(DatasetEvaluator):
    """Constant summary and per-image columns."""

    def __init__(self, name, summary=(), per_image=()):
        super().__init__()
        self.name, self.summary_cols, self.per_image_cols = name, summary, per_image
        self.add_state("index", [], "cat", per_image=True)

    def process(self, batch):
        self.index.extend(batch.indices)

    def evaluate(self):
        return dict.fromkeys(self.summary_cols, 1.0)

    def per_image(self):
        return pd.DataFrame({c: [1.0] * len(self.index) for c in self.per_image_cols}, index=pd.Index(self.index))


def test_composite_refuses_a_column_given_twice(capsys):
    both = DatasetEvaluators([_Columns("boxes", ("maxboxacc", "pxap")), _Columns("masks", ("pxap",))])
    with pytest.raises(WsolError) as e:
        both.evaluate()
    assert str(e.value) == "summary column 'pxap' is given by two evaluators: 'boxes' and 'masks'"
    per = DatasetEvaluators([_Columns("a", per_image=("iou", "status")), _Columns("b", per_image=("iou",))])
    per.process(_batch(["x"], [0], [0]))
    with pytest.raises(WsolError, match="^per_image column 'iou' is given by two evaluators: 'a' and 'b'$"):
        per.per_image()
    with pytest.raises(WsolError, match="^two evaluators are named 'a'$"):
        DatasetEvaluators([_Columns("a"), _Columns("a")])


def test_composite_merges_columns_in_order_with_status_last():
    """The first evaluator's row order; the others' rows follow it by dataset position."""
    first = _Columns("a", ("x",), ("iou", "status"))
    second = _Columns("b", ("y",), ("point_x",))
    comp = DatasetEvaluators([first, second], blanks={"z": float("nan"), "x": 0.0})
    first.index, second.index = [2, 0, 1], [0, 1, 2]
    second.per_image = lambda: pd.DataFrame({"point_x": [10, 11, 12]}, index=pd.Index([0, 1, 2]))
    per = comp.per_image()
    assert list(per.columns) == ["iou", "point_x", "status"] and per.point_x.tolist() == [12, 10, 11]
    s = comp.evaluate()
    assert list(s) == ["x", "y", "z"] and s["x"] == 1.0 and np.isnan(s["z"])  # a blank never hides a value


def _loc(v: float, n_tau: int = 2) -> ImageLocalization:
    return ImageLocalization(np.full((len(MODES), n_tau), v), np.zeros((len(MODES), n_tau, 4), np.int32))


def _spike(x: int, y: int) -> np.ndarray:
    m = np.zeros((224, 224))
    m[y, x] = 1.0
    return m


def test_run_evaluators_shards_merge_like_one_run():
    """Boxes + pointing on three images: a peak inside the box (hit, all energy in it), one
    outside (miss, none), one skipped (a miss): pointing game 1 of 3, and the same tables from
    two shards merged in the other order."""
    from wsol.datasets.base import Sample

    taus, gt = [0.0, 0.5], np.array([[0, 0, 20, 20]])
    samples = [Sample(f"im{i}", "", 0, np.array([[0, 0, 20, 20]])) for i in range(3)]

    def scored(rows):
        return ScoredBatch([samples[i].image_id for i in rows], np.zeros(len(rows), np.int64), list(rows),
                           [_loc(0.8), _loc(0.2)][:len(rows)], np.array([[0, 1]] * len(rows)), ["ok"] * len(rows),
                           [samples[i] for i in rows], [_spike(10, 10), _spike(100, 100)][:len(rows)], [gt] * len(rows))

    def skipped():
        return ScoredBatch.skipped_images([samples[2]], [2], ["unreadable"], exclude=False)

    def fresh():
        return run_evaluators(taus, 0.2, box_dtype=np.int32)

    whole = fresh()
    whole.process(scored([0, 1]))
    whole.process(skipped())
    a, b = fresh(), fresh()
    a.process(scored([0, 1]))
    b.process(skipped())
    merged = fresh()
    merged.merge(b.state_dict(), a.state_dict())
    s = whole.evaluate()
    assert s["pointing_game"] == pytest.approx(100 / 3) and s["energy_pointing_game"] == pytest.approx(100 / 3)
    assert s["gt_known_loc"] == pytest.approx(100 / 3) and s["n_skipped"] == 1 and np.isnan(s["pxap"])
    per = whole.per_image()
    assert per.point_x.tolist() == [10, 100, -1] and per.pointing_hit.tolist() == [True, False, False]
    assert list(per.columns[-2:]) == ["status", "reason"] and per.status.tolist() == ["ok", "ok", "skipped"]
    pd.testing.assert_frame_equal(merged.per_image(), per)
    pd.testing.assert_frame_equal(pd.DataFrame([merged.evaluate()]), pd.DataFrame([s]))
    pd.testing.assert_frame_equal(merged.curves(), whole.curves())


def test_score_runs_heatmaps_through_the_inference_loop(tmp_path, monkeypatch):
    """``score`` hands the heatmap runner to the very loop ``evaluate`` uses, and the whole-map
    and box numbers of the saved maps equal the run's."""
    from wsol.engine import run as run_module
    from wsol.engine.run import EvalConfig, evaluate, score
    from wsol.evaluation.runners import HeatmapRunner, ModelRunner

    make_cub(str(tmp_path / "cub"), n_per_class=2)
    runners = []
    real = run_module.inference_on_dataset

    def spy(runner, *a, **k):
        runners.append(type(runner))
        return real(runner, *a, **k)
    monkeypatch.setattr(run_module, "inference_on_dataset", spy)
    cfg = EvalConfig(dataset="cub", root=str(tmp_path / "cub"), split="test", backbone="tiny_test_net",
                     weights="random", batch_size=2, progress=False, save_cams=str(tmp_path / "cams"))
    ev = evaluate(cfg).summary.iloc[0]
    sc = score(str(tmp_path / "cams"), cfg.__class__(**{**cfg.__dict__, "save_cams": None})).summary.iloc[0]
    assert runners == [ModelRunner, HeatmapRunner]
    for c in ("n_images", "gt_known_loc", "maxboxacc", "maxboxacc_v2", "mean_iou", "pointing_game",
              "energy_pointing_game"):
        assert ev[c] == sc[c], c
    assert np.isnan(sc.top1_cls) and not np.isnan(ev.top1_cls)


def _faith_rank(rank: int, store: str, out: str) -> None:
    """One gloo rank: rank 0 perturbs three images, rank 1 has none; both merge."""
    import pickle

    import torch
    import torch.distributed as dist

    from wsol.evaluation.faithfulness import FaithfulnessEvaluator, FaithfulnessOptions
    from wsol.evaluation.sharding import gather_state

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        ev = FaithfulnessEvaluator(FaithfulnessOptions(("deletion",), steps=4, deletion_baseline="zeros"))
        if rank == 0:
            maps = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(0))
            ev.perturb(_mean_score, torch.ones(3, 1, 4, 4), maps, np.ones(3), [0, 1, 2])
        gather_state(ev, "cpu")
        with open(f"{out}.{rank}", "wb") as f:
            pickle.dump((ev.evaluate(), ev.curves(), ev.index), f)
    finally:
        dist.destroy_process_group()


def _mean_score(batch):
    m = batch.double().mean(dim=(1, 2, 3)).numpy()
    return m, m > 0.5


def test_gather_state_with_a_rank_that_has_no_images(tmp_path):
    """A rank without images has no curve yet (None): the ranks still agree on each state's
    collective, and both end with the merged numbers (deletion of a ones image in 4 steps of
    4 pixels: 1, .75, .5, .25, 0 -> area 0.5)."""
    import pickle

    import torch.multiprocessing as mp

    mp.start_processes(_faith_rank, args=(str(tmp_path / "store"), str(tmp_path / "out")), nprocs=2, join=True,
                       start_method="fork")
    (s0, c0, i0), (s1, c1, i1) = (pickle.load(open(tmp_path / f"out.{r}", "rb")) for r in (0, 1))
    assert s0["deletion_auc"] == pytest.approx(0.5) and s1["deletion_auc"] == s0["deletion_auc"]
    assert s0["n_faithfulness"] == s1["n_faithfulness"] == 3 and i0 == i1 == [0, 1, 2]
    pd.testing.assert_frame_equal(c0, c1)
    assert c1.score.tolist() == pytest.approx([1, 0.75, 0.5, 0.25, 0])
