"""``wsol tune``: the search space, the per-trial draws, the score of a trial, and (slow)
two processes sharing one study through a kill, on the synthetic set."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

optuna = pytest.importorskip("optuna")

from shared_data import REPO  # noqa: E402

from wsol.errors import WsolError  # noqa: E402
from wsol.training import search_space as ss  # noqa: E402
from wsol.training import tune as tu  # noqa: E402
from wsol.training.recipe import TrainConfig, resolve  # noqa: E402


def _study(seed: int = 0):
    return optuna.create_study(direction="maximize", sampler=tu.make_sampler(seed))


def test_space_ranges_and_sources():
    common = {p.name: p for p in ss.common_space(50)}
    assert (common["lr"].low, common["lr"].high, common["lr"].kind) == (1e-5, 1.0, "log")
    assert (common["lr_decay_epochs"].low, common["lr_decay_epochs"].high) == (5, 45)  # WACV'25's CUB range
    assert (common["weight_decay"].low, common["weight_decay"].high) == (1e-5, 1.0)
    assert {p.source for p in ss.space("spg", 50)} == {"choe2020", "wacv2025"}
    assert [p.name for p in ss.space("cam", 10)] == ["lr", "weight_decay", "lr_decay_epochs"]
    with pytest.raises(WsolError, match="no search space for --wsol-method nope"):
        ss.space("nope", 10)


def test_draws_depend_on_the_trial_number_only_and_stay_in_range():
    """Two studies with one seed draw the same configuration for trial N (so processes
    sharing a study never repeat one); SPG's low thresholds stay below the high ones."""
    a, b = _study(), _study()
    drawn = []
    for _ in range(5):
        ta, tb = a.ask(), b.ask()
        ca, oa = ss.suggest(ta, "spg", 10)
        cb, ob = ss.suggest(tb, "spg", 10)
        assert (ca, oa) == (cb, ob)
        assert 1e-5 <= ca["lr"] <= 1 and 1 <= ca["lr_decay_epochs"] <= 9
        assert all(oa[f"threshold_{i}l"] <= oa[f"threshold_{i}h"] for i in (1, 2, 3))
        drawn.append(ca["lr"])
    assert len(set(drawn)) == 5
    assert ss.suggest(_study(seed=1).ask(), "spg", 10)[0]["lr"] != drawn[0]


def test_trial_config_and_score_rules():
    base = resolve(TrainConfig(out="o", wsol_method="has", epochs=3, method_options={"grid_size": 8}))
    cfg = tu.TuneConfig(train=base, out="o")
    t = tu.trial_config(cfg, {"lr": 0.5, "weight_decay": 0.01, "lr_decay_epochs": 2, "drop_rate": 0.3}, "o/t")
    assert (t.lr, t.weight_decay, t.lr_decay_epochs, t.out, t.test_split) == (0.5, 0.01, 2, "o/t", "")
    assert t.method_options == {"grid_size": 8, "drop_rate": 0.3}   # given options kept, drawn ones added
    log = pd.DataFrame({"val_maxboxacc_v2": [40.0, 70.0, 55.0], "val_top1": [10.0, 20.0, 30.0]})
    assert tu.score_of(log, base) == 55.0                             # the last checkpoint (the paper's)
    from dataclasses import replace
    assert tu.score_of(log, replace(base, eval_checkpoint="best")) == 70.0
    assert tu.score_of(log, replace(base, select_by="top1")) == 30.0
    with pytest.raises(WsolError, match="selection split"):
        tu.score_of(pd.DataFrame({"train_loss": [1.0]}), base)


@pytest.mark.slow
def test_two_processes_share_one_study_through_a_kill(tmp_path):
    """6 trials in two processes sharing an SQLite study; one is killed after the first
    trial completes and started again. The study ends with 6 complete trials, a killed
    trial is run again with its configuration, and trials.csv names the same best trial."""
    from wsol.datasets.synthetic import make_synthetic

    root = make_synthetic(str(tmp_path / "syn"), progress=False, n_classes=3, n_train_per_class=6,
                          n_test_per_class=2, seed=0)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    out = str(tmp_path / "tune")
    cmd = [sys.executable, "-m", "wsol", "-q", "tune", "--dataset", "synthetic", "--root", root,
           "--backbone", "test_byobnet", "--weights", "random", "--epochs", "1", "--batch-size", "6",
           "--holdout", "0.34", "--trials", "6", "--grace", "6", "--storage", url, "--study", "s", "--out", out]
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    a = subprocess.Popen(cmd, env=env)
    b = subprocess.Popen(cmd, env=env)
    deadline = time.time() + 900
    try:
        while time.time() < deadline:
            try:
                states = [t.state.name for t in optuna.load_study(study_name="s", storage=url).trials]
            except Exception:
                states = []
            if "COMPLETE" in states and "RUNNING" in states:
                break
            time.sleep(0.5)
        b.send_signal(signal.SIGKILL)
        b.wait()
        b = subprocess.Popen(cmd, env=env)
        assert a.wait(timeout=max(1, deadline - time.time())) == 0
        assert b.wait(timeout=max(1, deadline - time.time())) == 0
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
    study = optuna.load_study(study_name="s", storage=url)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 6
    for t in study.trials:
        if t.state.name == "FAIL":  # killed: run again with the same configuration
            assert any(d.params == t.params for d in done)
    csv = pd.read_csv(os.path.join(out, "trials.csv"))
    ok = csv[csv.state == "COMPLETE"]
    assert len(ok) == 6
    assert int(ok.loc[ok.value.idxmax(), "number"]) == study.best_trial.number
    assert float(ok.value.max()) == study.best_value


def test_dataset_name_for_compare():
    assert tu.dataset_name(TrainConfig(dataset="wsoleval", root="/x/metadata/CUB/")) == "cub"
    assert tu.dataset_name(TrainConfig(dataset="wsoleval", root="metadata/ILSVRC")) == "imagenet"
    assert tu.dataset_name(TrainConfig(dataset="wsoleval", root="my/meta")) == "wsoleval"
    assert tu.dataset_name(TrainConfig(dataset="synthetic", root="x")) == "synthetic"


def test_cli_refuses_a_search_without_selection(tmp_path, capsys):
    from wsol.cli import main

    rc = main(["tune", "--dataset", "synthetic", "--root", str(tmp_path / "syn"), "--holdout", "0",
               "--trials", "2", "--out", str(tmp_path / "t")])
    assert rc != 0 and "scores trials on a selection split" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "t")
