"""The training recipe (defaults, schedule) and model selection on a split of its own:
hand-computed rules, and ``wsol train --dataset wsoleval`` end to end on train / val / test
metadata laid out as wsolevaluation ships them."""
from __future__ import annotations

import json
import os

import pandas as pd
import pytest
import torch

from shared_data import SHARED_FIXTURES

from wsol.cli import main
from wsol.datasets.base import WsolDataset, build_dataset
from wsol.datasets.synthetic import make_synthetic
from wsol.datasets.wsoleval import write_wsoleval_metadata
from wsol.errors import WsolError
from wsol.training import train as tr
from wsol.training.selection import split_holdout

NET = "test_byobnet"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ----------------------------------------------------------------------------- recipe
def test_decay_rules_hand_computed():
    ref = [tr.lr_factor(e, 3) for e in range(1, 11)]
    assert ref == pytest.approx([1, 1, .1, .1, .1, .01, .01, .01, .001, .001])  # decays before 3, 6, 9
    step = [tr.lr_factor(e, 3, "step") for e in range(1, 11)]
    assert step == pytest.approx([1, 1, 1, .1, .1, .1, .01, .01, .01, .001])    # after 3, 6, 9
    assert tr.lr_factor(3, 3) == 0.1 and tr.lr_factor(6, 3) == 0.1 * 0.1        # the reference's products
    assert [tr.lr_factor(e, 1) for e in (1, 2)] == pytest.approx([0.1, 0.01])    # f=1 decays before epoch 1
    with pytest.raises(ValueError):
        tr.lr_factor(0, 3)


def test_the_reference_recipe_is_the_default():
    cfg = tr.resolve(tr.TrainConfig(out="x"))
    assert (cfg.nesterov, cfg.lr, cfg.batch_size, cfg.epochs, cfg.lr_decay_epochs, cfg.lr_schedule, cfg.amp) == \
        (True, 0.01, 64, 40, 30, "reference", "off")
    assert (cfg.momentum, cfg.weight_decay, cfg.new_lr_mult, cfg.eval_checkpoint) == (0.9, 1e-4, 10.0, "last")
    old = tr.resolve(tr.TrainConfig(out="x", recipe="wsol", lr=0.5))
    assert (old.nesterov, old.lr, old.lr_schedule, old.amp) == (False, 0.5, "step", "auto")  # given values win
    with pytest.raises(WsolError, match="recipe must be one of reference, wsol"):
        tr.resolve(tr.TrainConfig(out="x", recipe="paper"))
    with pytest.raises(WsolError, match="eval_checkpoint"):
        tr.resolve(tr.TrainConfig(out="x", eval_checkpoint="first"))


# ----------------------------------------------------------------------------- wsoleval layout
@pytest.fixture(scope="module")
def wsoleval_root(tmp_path_factory) -> tuple:
    """metadata/{train,val,test} from a synthetic set: train without sizes or boxes (as the
    reference's train metadata), val = 2 images per class held out of the synthetic train."""
    base = tmp_path_factory.mktemp("we")
    syn = make_synthetic(str(base / "syn"), progress=False, n_classes=3, n_train_per_class=6,
                         n_test_per_class=2, seed=0)
    train = build_dataset("synthetic", syn, "train")
    rest, val = split_holdout(train.samples, 0.34, 0)
    meta = str(base / "metadata")
    for name, samples in (("train", rest), ("val", val), ("test", build_dataset("synthetic", syn, "test").samples)):
        write_wsoleval_metadata(WsolDataset("s", name, syn, train.image_root, samples), os.path.join(meta, name),
                                progress=False)
    for f in ("image_sizes.txt", "localization.txt"):
        os.remove(os.path.join(meta, "train", f))
    return meta, train.image_root


def test_selection_split_is_read_as_is_and_scored_every_epoch(wsoleval_root, tmp_path, capsys):
    """`wsol train --dataset wsoleval`: trains on all of train (no hold-out), scores val
    (train-fullsup) every epoch, and --test-split evaluates last.pt, which `wsol evaluate`
    of last.pt reproduces."""
    meta, images = wsoleval_root
    out = str(tmp_path / "run")
    rc = main(["-q", "train", "--dataset", "wsoleval", "--root", meta, "--dataset-option", f"images={images}",
               "--backbone", NET, "--weights", "random", "--epochs", "2", "--batch-size", "4", "--lr", "0.01",
               "--test-split", "test", "--out", out])
    assert rc == 0
    log = pd.read_csv(os.path.join(out, "train_log.csv"))
    assert list(log.n_train) == [12, 12] and log.val_maxboxacc_v2.notna().all() and log.val_top1.notna().all()
    assert json.load(open(os.path.join(out, "train_config.json")))["selection_split"] == "auto"
    test = pd.read_csv(os.path.join(out, "test", "summary.csv")).iloc[0]
    assert test.n_images == 6 and test.split == "test"
    ev = str(tmp_path / "ev")
    assert main(["-q", "evaluate", "--dataset", "wsoleval", "--root", meta, "--dataset-option", f"images={images}",
                 "--split", "test", "--backbone", NET, "--weights", os.path.join(out, "last.pt"), "--out", ev]) == 0
    again = pd.read_csv(os.path.join(ev, "summary.csv")).iloc[0]
    assert again.maxboxacc_v2 == test.maxboxacc_v2 and again.top1_cls == test.top1_cls


def test_selection_split_errors(wsoleval_root, tmp_path):
    meta, images = wsoleval_root
    kw = dict(dataset="wsoleval", root=meta, dataset_options={"images": images}, backbone=NET, weights="random",
              epochs=1, batch_size=4, progress=False)
    with pytest.raises(WsolError, match="shares 12 image"):
        tr.train(tr.TrainConfig(selection_split="train", out=str(tmp_path / "a"), **kw))
    with pytest.raises(WsolError, match="no wsolevaluation metadata"):
        tr.train(tr.TrainConfig(selection_split="nope", out=str(tmp_path / "b"), **kw))


def test_ten_epochs_with_decay_frequency_3_log_the_reference_schedule(tmp_path):
    """The schedule.json case (10 epochs, decay frequency 3) through a real run: train_log.csv
    records each epoch's rate, both groups."""
    sched = os.path.join(SHARED_FIXTURES, "wsoleval-train", "schedule.json")
    if os.path.isfile(sched):
        with open(sched) as f:
            want = next(s for s in json.load(f) if s["epochs"] == 10)["lr_per_epoch"]
    else:  # the rule written out: decays before epochs 3, 6, 9
        want = [1, 1, .1, .1, .1, .01, .01, .01, .001, .001]
    syn = make_synthetic(str(tmp_path / "syn"), progress=False, n_classes=2, n_train_per_class=2,
                         n_test_per_class=1, seed=0)
    log = tr.train(tr.TrainConfig(dataset="synthetic", root=syn, backbone=NET, weights="random", epochs=10,
                                  lr_decay_epochs=3, lr=1e-3, batch_size=4, train_layers="head",
                                  selection_split="none", out=str(tmp_path / "r"), progress=False))
    logged = pd.read_csv(str(tmp_path / "r" / "train_log.csv"))
    assert logged.lr.tolist() == pytest.approx([1e-3 * v for v in want], rel=1e-12)
    assert logged.lr_new.tolist() == pytest.approx([1e-2 * v for v in want], rel=1e-12)
    assert list(log.epoch) == list(range(1, 11))
