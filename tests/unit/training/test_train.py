"""Fine-tuning (wsol.training.train), `wsol train` and `wsol demo`.

Fast tests use timm's tiny ``test_byobnet`` (0.2M parameters, GAP + linear head) from
random weights on a 3-class x 4-image synthetic set; the slow ones need the offline
pretrained ``efficientnet_lite0`` and are skipped when it is not available.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch

from wsol.cli import main
from wsol.datasets.base import build_dataset
from wsol.datasets.synthetic import make_synthetic
from wsol.training import train as tr
from wsol.models import training as mt
from wsol.errors import WsolError
from wsol.models.checkpoint import save_checkpoint
from wsol.models.registry import create_backbone
from wsol.transforms.image import ImageFolderView
from wsol.transforms.image import test_transform as eval_transform

TINY = dict(n_classes=3, n_train_per_class=4, n_test_per_class=2, seed=0)
NET = "test_byobnet"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from more threads, and on a shared CPU OpenMP's spinning
    threads make them several times slower: one thread for this module."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> str:
    return make_synthetic(str(tmp_path_factory.mktemp("tiny") / "syn"), progress=False, **TINY)


@pytest.fixture(scope="module")
def start_ckpt(tmp_path_factory) -> str:
    """A random test_resnet with a 3-way head, saved as the common starting point."""
    torch.manual_seed(0)
    bb = create_backbone(NET, "random", num_classes=3)
    path = str(tmp_path_factory.mktemp("start") / "start.pt")
    save_checkpoint(bb, path)
    return path


def _cfg(root: str, out: str, start: str, **kw) -> tr.TrainConfig:
    base = dict(dataset="synthetic", root=root, backbone=NET, weights=start, epochs=2, lr=0.02,
                batch_size=4, lr_decay_epochs=2, holdout=0.0, select_by="last", out=out, progress=False)
    base.update(kw)
    return tr.TrainConfig(**base)


def _state(path: str) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def _fixed_batch(root: str, bb) -> tuple:
    ds = build_dataset("synthetic", root, "train")
    view = ImageFolderView(ds.samples, eval_transform(bb.mean, bb.std))
    items = [view[i] for i in range(len(view))]
    return torch.stack([it[0] for it in items]), torch.tensor([it[1] for it in items])


# ----------------------------------------------------------------------------- the step
def test_steps_reduce_loss_on_fixed_batch(tiny_root, start_ckpt):
    bb = create_backbone(NET, start_ckpt)
    x, y = _fixed_batch(tiny_root, bb)
    trainable, frozen, _ = mt.set_trainable(bb, "all")
    opt = tr.make_optimizer(bb, trainable, _cfg(tiny_root, "", start_ckpt, lr=0.01))
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    bb.train()
    losses = [float(tr.train_step(bb, opt, scaler, x, y)[0]) for _ in range(8)]
    assert losses[-1] < 0.8 * losses[0], losses


def test_new_parameters_get_ten_times_the_lr(start_ckpt):
    bb = create_backbone(NET, start_ckpt)
    trainable, _, _ = mt.set_trainable(bb, "all")
    cfg = tr.TrainConfig(lr=0.003, lr_decay_epochs=2)
    opt = tr.make_optimizer(bb, trainable, cfg)
    groups = {g["name"]: g for g in opt.param_groups}
    new_ids = {id(p) for p in bb.new_parameters()}
    assert new_ids == {id(p) for p in bb.classifier().parameters()}
    assert {id(p) for p in groups["new"]["params"]} == new_ids
    assert not new_ids & {id(p) for p in groups["pretrained"]["params"]}
    assert len(groups["new"]["params"]) + len(groups["pretrained"]["params"]) == len(list(bb.parameters()))
    assert groups["pretrained"]["lr"] == pytest.approx(0.003) and groups["new"]["lr"] == pytest.approx(0.03)
    for g in opt.param_groups:  # the reference recipe: Nesterov, decay on every parameter
        assert g["momentum"] == 0.9 and g["weight_decay"] == pytest.approx(1e-4) and g["nesterov"]
    assert tr.set_epoch_lr(opt, 1, tr.fill_recipe(cfg)) == pytest.approx({"lr": 0.003, "lr_new": 0.03})
    # the reference decays before epoch 2 (2 % 2 == 0), both groups
    assert tr.set_epoch_lr(opt, 2, tr.fill_recipe(cfg)) == pytest.approx({"lr": 0.0003, "lr_new": 0.003})
    assert groups["pretrained"]["lr"] == pytest.approx(0.0003) and groups["new"]["lr"] == pytest.approx(0.003)


def test_train_layers_units_and_freezing():
    bb = create_backbone("resnet18", "random", num_classes=4)
    assert [u for u, _ in mt.feature_units(bb)] == ["conv1+bn1", "layer1", "layer2", "layer3", "layer4"]
    trainable, frozen, names = mt.set_trainable(bb, "last:1")
    assert names == ["head", "layer4"]
    on = {n for n, p in bb.named_parameters() if p.requires_grad}
    assert on == {n for n, _ in bb.named_parameters() if n.startswith(("net.layer4.", "net.fc."))}
    assert bb.net.layer3 in frozen and bb.net.layer4 not in frozen
    mt.set_trainable(bb, "head")
    assert {n for n, p in bb.named_parameters() if p.requires_grad} == {"net.fc.weight", "net.fc.bias"}
    mt.set_trainable(bb, "all")
    assert all(p.requires_grad for p in bb.parameters())
    # new layers (not from the ImageNet checkpoint) always train: vgg16_gap's conv6
    gap = create_backbone("vgg16_gap", "random", num_classes=4)
    _, _, names = mt.set_trainable(gap, "head")
    assert names == ["head", "conv6"]
    assert {id(p) for p in gap.parameters() if p.requires_grad} == {id(p) for p in gap.new_parameters()}
    for bad in ("last", "last:x", "tail:2", "last:-1"):
        with pytest.raises(WsolError):
            mt.parse_train_layers(bad)


def test_holdout_split_is_per_class_and_seeded(tiny_root):
    ds = build_dataset("synthetic", tiny_root, "train")
    a_train, a_held = tr.split_holdout(ds.samples, 0.25, seed=3)
    b_train, b_held = tr.split_holdout(ds.samples, 0.25, seed=3)
    assert [s.image_id for s in a_held] == [s.image_id for s in b_held]
    assert sorted(s.label for s in a_held) == [0, 1, 2]
    assert len(a_train) + len(a_held) == len(ds)
    assert not {s.image_id for s in a_train} & {s.image_id for s in a_held}


# ----------------------------------------------------------------------------- train()
def test_head_only_leaves_the_backbone_unchanged(tiny_root, start_ckpt, tmp_path):
    out = str(tmp_path / "head")
    log = tr.train(_cfg(tiny_root, out, start_ckpt, epochs=1, train_layers="head"))
    assert list(log.epoch) == [1]
    before, after = _state(start_ckpt), _state(os.path.join(out, "best.pt"))
    bb = create_backbone(NET, start_ckpt)
    fc = bb.classifier()
    head = {n for n, p in bb.named_parameters() if p is fc.weight or p is fc.bias}
    assert len(head) == 2 and set(before) == set(after)
    for k in before:
        if k in head:
            assert not torch.equal(before[k], after[k]), k
        else:  # weights and BatchNorm statistics alike
            assert torch.equal(before[k], after[k]), k


def test_resume_matches_an_uninterrupted_run(tiny_root, start_ckpt, tmp_path):
    kw = dict(holdout=0.25, select_by="maxboxacc_v2", seed=5)
    full = tr.train(_cfg(tiny_root, str(tmp_path / "full"), start_ckpt, **kw))
    part_dir = str(tmp_path / "part")
    first = tr.train(_cfg(tiny_root, part_dir, start_ckpt, epochs=1, **kw))
    assert list(first.epoch) == [1]
    with pytest.raises(WsolError, match="--resume"):  # never overwrites a run silently
        tr.train(_cfg(tiny_root, part_dir, start_ckpt, **kw))
    with pytest.raises(WsolError, match="other options"):
        tr.train(_cfg(tiny_root, part_dir, start_ckpt, resume=True, **{**kw, "seed": 6}))
    resumed = tr.train(_cfg(tiny_root, part_dir, start_ckpt, resume=True, **kw))
    assert list(resumed.epoch) == [1, 2]
    cols = ["epoch", "lr", "lr_new", "train_loss", "train_top1", "val_top1", "val_maxboxacc_v2", "best"]
    pd.testing.assert_frame_equal(full[cols], resumed[cols])
    assert resumed.lr.tolist() == pytest.approx([0.02, 0.002])
    a, b = _state(str(tmp_path / "full" / "last.pt")), _state(os.path.join(part_dir, "last.pt"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], v) for k, v in _state(start_ckpt).items())
    st = torch.load(os.path.join(part_dir, "last.pt"), map_location="cpu", weights_only=True)["train_state"]
    assert st["epoch"] == 2 and st["optimizer"]["state"]  # momentum buffers travel
    logged = pd.read_csv(os.path.join(part_dir, "train_log.csv"))
    assert list(logged.epoch) == [1, 2] and logged.best.sum() >= 1
    # already done: a rerun with --resume returns the log without training
    again = tr.train(_cfg(tiny_root, part_dir, start_ckpt, resume=True, **kw))
    assert list(again.epoch) == [1, 2]


def test_validation_scores_the_live_model_without_a_disk_round_trip(tiny_root, start_ckpt, tmp_path, monkeypatch):
    """Each epoch's held-out validation evaluates the model in memory (no model is built from
    a checkpoint), and gives what evaluating the saved best.pt gives."""
    import wsol.engine.build as build
    from wsol.engine.run import EvalConfig, evaluate

    start_state = _state(start_ckpt)

    def no_rebuilding(*a, **k):
        raise AssertionError("validation rebuilt the model (from a checkpoint on disk)")

    monkeypatch.setattr(build, "backbone_for_dataset", no_rebuilding)
    out = str(tmp_path / "live")
    log = tr.train(_cfg(tiny_root, out, start_ckpt, epochs=1, holdout=0.5, select_by="top1"))
    monkeypatch.undo()
    assert "val_top1" in log.columns and log.best.iloc[0]
    assert not all(torch.equal(v, start_state[k]) for k, v in _state(os.path.join(out, "best.pt")).items())
    holdout = tr.split_holdout(build_dataset("synthetic", tiny_root, "train").samples, 0.5, 0)[1]
    ds = build_dataset("synthetic", tiny_root, "train")
    ds = type(ds)(ds.name, "train-holdout", ds.root, ds.image_root, holdout, ds.class_names)
    s = evaluate(EvalConfig(dataset="synthetic", root=tiny_root, backbone=NET, weights=os.path.join(out, "best.pt"),
                            progress=False), dataset=ds).summary.iloc[0]
    assert s.top1_cls == log.val_top1.iloc[0] and s.maxboxacc_v2 == log.val_maxboxacc_v2.iloc[0]


def test_cli_train_then_evaluate_loads_the_checkpoint(tiny_root, start_ckpt, tmp_path):
    out = str(tmp_path / "cli")
    rc = main(["-q", "train", "--dataset", "synthetic", "--root", tiny_root, "--backbone", NET,
               "--weights", start_ckpt, "--epochs", "1", "--batch-size", "6", "--lr", "0.01",
               "--train-layers", "last:1", "--holdout", "0.25", "--out", out])
    assert rc == 0
    for name in ("best.pt", "last.pt", "train_log.csv", "train_config.json"):
        assert os.path.isfile(os.path.join(out, name)), name
    for ck in ("best.pt", "last.pt"):
        ev = str(tmp_path / f"ev-{ck}")
        rc = main(["-q", "evaluate", "--dataset", "synthetic", "--root", tiny_root, "--backbone", NET,
                   "--weights", os.path.join(out, ck), "--out", ev])
        assert rc == 0
        s = pd.read_csv(os.path.join(ev, "summary.csv")).iloc[0]
        assert s.n_images == 6 and 0 <= s.maxboxacc_v2 <= 100


def test_cli_help_and_user_errors(tiny_root, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--epochs", "--lr", "--batch-size", "--lr-decay-epochs", "--train-layers", "--holdout",
                "--select-by", "--device", "--out", "--resume", "--data-workers", "--seed", "--amp", "--weights"):
        assert opt in text, opt
    rc = main(["train", "--dataset", "synthetic", "--root", tiny_root, "--backbone", NET, "--weights", "random",
               "--train-layers", "middle", "--out", str(tmp_path / "x")])
    assert rc == 2
    assert "--train-layers" in capsys.readouterr().err
    # checkpoint choice by CAM on a backbone where CAM is not exact: refused before training
    rc = main(["train", "--dataset", "synthetic", "--root", tiny_root, "--backbone", "mobilenet_v3_small",
               "--weights", "random", "--holdout", "0.25", "--out", str(tmp_path / "y")])
    assert rc == 2
    assert "--select-by top1" in capsys.readouterr().err
    assert not os.path.exists(str(tmp_path / "y" / "last.pt"))
    with pytest.raises(SystemExit) as e:
        main(["demo", "--help"])
    assert e.value.code == 0


# ----------------------------------------------------------------------------- slow
def _lite_available() -> bool:
    try:
        create_backbone("efficientnet_lite0", "pretrained", num_classes=2, new_head=True)
        return True
    except Exception:
        return False


@pytest.fixture()
def center_gaussian():
    """The center_gaussian baseline: the real one when installed, else a local stand-in."""
    from wsol.cams import base

    if "center_gaussian" in base.METHODS:
        yield
        return

    class CenterGaussian(base.CamMethod):
        name = "center_gaussian"
        description = "test stand-in: a Gaussian at the centre of the map"

        def __call__(self, backbone, images, feats, logits, targets):
            b, _, h, w = feats.shape
            ys = torch.arange(h, dtype=torch.float32) - (h - 1) / 2
            xs = torch.arange(w, dtype=torch.float32) - (w - 1) / 2
            g = torch.exp(-(ys[:, None] / (0.25 * h)) ** 2 / 2 - (xs[None] / (0.25 * w)) ** 2 / 2)
            return g.expand(b, h, w).to(feats.device)

    base.register_method(CenterGaussian)
    yield
    base.METHODS.remove("center_gaussian")


@pytest.mark.slow
def test_training_improves_localization(tmp_path):
    """Fine-tuning EfficientNet-Lite0 (image labels only) localizes better than its start."""
    if not _lite_available():
        pytest.skip("efficientnet_lite0 with offline weights not available")
    from wsol.engine.run import EvalConfig, evaluate

    root = make_synthetic(str(tmp_path / "syn"), n_classes=3, n_train_per_class=10, n_test_per_class=6,
                          seed=1, progress=False)
    torch.manual_seed(0)
    start = str(tmp_path / "start.pt")
    save_checkpoint(create_backbone("efficientnet_lite0", "pretrained", num_classes=3, new_head=True), start)
    out = str(tmp_path / "run")
    tr.train(tr.TrainConfig(dataset="synthetic", root=root, backbone="efficientnet_lite0", weights=start,
                            epochs=3, lr=0.01, lr_decay_epochs=3, batch_size=10, train_layers="last:3",
                            holdout=0.0, select_by="last", out=out, progress=False))

    def summary(weights: str, method: str = "cam"):
        ecfg = EvalConfig(dataset="synthetic", root=root, split="test", backbone="efficientnet_lite0",
                          weights=weights, method=method, progress=False)
        return evaluate(ecfg).summary.iloc[0]

    trained = summary(os.path.join(out, "best.pt"))
    before, after = float(summary(start)["maxboxacc_v2"]), float(trained["maxboxacc_v2"])
    print(f"MaxBoxAccV2 before {before:.1f}, after {after:.1f}")
    assert after >= before + 10, (before, after)
    # the synthetic set's masks: the fine-tuned CAM is clearly above the centre baseline in PxAP
    centre = summary(os.path.join(out, "best.pt"), "center_gaussian")
    print(f"PxAP cam {trained.pxap:.1f}, center_gaussian {centre.pxap:.1f}")
    assert trained.pxap >= centre.pxap + 10, (trained.pxap, centre.pxap)


@pytest.mark.slow
def test_demo_quick(tmp_path, center_gaussian, capsys):
    if not _lite_available():
        pytest.skip("efficientnet_lite0 with offline weights not available")
    out = str(tmp_path / "demo")
    assert main(["-q", "demo", "--quick", "--out", out]) == 0
    printed = capsys.readouterr().out
    assert "maxboxacc_v2" in printed and "center_gaussian" in printed
    summary = pd.read_csv(os.path.join(out, "summary.csv"))
    assert list(summary.run_id) == ["cam", "center_gaussian"]
    for m in ("cam", "center_gaussian"):
        for f in ("summary.csv", "per_image.csv", "curves.csv", "timings.csv"):
            assert os.path.isfile(os.path.join(out, m, f)), (m, f)
    # the synthetic set is cached: a second run reuses it and the finished training
    stamp = os.path.join(out, "wsol_data", "synthetic-quick", "wsol_synthetic.json")
    mtime = os.path.getmtime(stamp)
    assert main(["-q", "demo", "--quick", "--out", out]) == 0
    assert os.path.getmtime(stamp) == mtime
