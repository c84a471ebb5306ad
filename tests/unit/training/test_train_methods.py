"""WSOL training methods (wsol.training.methods): each method's mechanics against the
reference definitions (clovaai/wsolevaluation ``wsol/method/*.py``, ``main.py``) on tiny
inputs with hand-computed expectations, the registry and the ``wsol train`` options."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from wsol.training.methods import create_train_method, list_train_methods
from wsol.training.methods.cutmix import cutmix_batch, mixed_loss, rand_box
from wsol.training.methods.has import hide_patches
from wsol.training.methods.spg import attention_loss, masked_bce, spg_losses, spg_mask
from wsol.errors import UnknownNameError, WsolError


# ----------------------------------------------------------------------------- registry
def test_registry_lists_the_six_methods_with_reference_defaults():
    six = [m for m in list_train_methods()][:6]     # Choe et al.'s; the later families follow
    assert [m.name for m in six] == ["cam", "has", "acol", "spg", "adl", "cutmix"]
    defaults = {m.name: create_train_method(m.name).option_dict() for m in six}
    assert defaults == {
        "cam": {},
        "has": {"grid_size": 4, "drop_rate": 0.5},
        "acol": {"threshold": 0.7},
        "spg": {"threshold_1h": 0.7, "threshold_1l": 0.01, "threshold_2h": 0.5, "threshold_2l": 0.05,
                "threshold_3h": 0.7, "threshold_3l": 0.1},
        "adl": {"drop_rate": 0.75, "threshold": 0.9},
        "cutmix": {"beta": 1.0, "prob": 1.0},
    }
    archs = {m.name: m.architecture for m in six}
    assert archs == {"cam": "cam", "has": "cam", "acol": "acol", "spg": "spg", "adl": "adl", "cutmix": "cam"}
    assert create_train_method("has", {"grid_size": "8"}).options.grid_size == 8


def test_registry_rejects_bad_names_and_values():
    with pytest.raises(UnknownNameError, match="did you mean: cutmix"):
        create_train_method("cutmx")
    with pytest.raises(WsolError, match="no option 'beta'"):
        create_train_method("has", {"beta": 1.0})
    with pytest.raises(WsolError, match=r"^has_drop_rate must be a number in \[0, 1\], got 1.5$"):
        create_train_method("has", {"drop_rate": 1.5})
    with pytest.raises(WsolError, match="adl_threshold must be a number in"):
        create_train_method("adl", {"threshold": -0.1})
    with pytest.raises(WsolError, match="cutmix_prob must be a number in \\[0, 1\\], got 'often'"):
        create_train_method("cutmix", {"prob": "often"})


def _bad_value(opt):
    """A value the declaration refuses: past a bound, or NaN for an unbounded number."""
    if opt.max is not None:
        return opt.max + (1 if opt.kind == "int" else 0.5)
    if opt.min is not None:
        return opt.min - 1
    return float("nan")


@pytest.mark.parametrize("m", [c.name for c in list_train_methods()])
def test_every_method_option_is_refused_alike_by_the_cli_and_the_api(m):
    """One declaration per hyperparameter: the CLI flag's parser and the API give one line."""
    import argparse

    from wsol.cli.train import _add_method_options
    from wsol.training.methods.base import TRAIN_METHODS, method_options

    parser = argparse.ArgumentParser()
    _add_method_options(parser)
    for field, opt in method_options(m, TRAIN_METHODS.get(m).Options).items():
        bad = _bad_value(opt)
        with pytest.raises(WsolError) as api:
            create_train_method(m, {field: bad})
        action = next(a for a in parser._actions if a.dest == f"mopt__{m}__{field}")
        with pytest.raises(WsolError) as cli:
            action.type(str(bad))
        assert str(api.value) == str(cli.value).replace(f"'{bad}'", str(bad)), (m, field)
        assert str(api.value).startswith(f"{m}_{field} must be "), str(api.value)


# ----------------------------------------------------------------------------- HaS
def _cells_hidden(x: torch.Tensor, g: int) -> torch.Tensor:
    """[B, ceil(H/g), ceil(W/g)] bool: the cell is all zeros (every channel)."""
    b, c, h, w = x.shape
    out = torch.zeros(b, math.ceil(h / g), math.ceil(w / g), dtype=torch.bool)
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            out[:, i, j] = (x[:, :, i * g:(i + 1) * g, j * g:(j + 1) * g] == 0).flatten(1).all(1)
    return out


def test_has_hides_whole_grid_cells():
    torch.manual_seed(0)
    x = torch.rand(3, 2, 10, 9) + 0.5          # no zero before hiding
    y = hide_patches(x.clone(), 4, 0.5)
    hidden = _cells_hidden(y, 4)               # cells 4x4; last row (2 px) and column (1 px) partial
    assert hidden.shape == (3, 3, 3)
    # every pixel is either untouched or in a hidden cell: hiding is by whole cells only
    expect = hidden.repeat_interleave(4, 1).repeat_interleave(4, 2)[:, :10, :9].unsqueeze(1).expand_as(x)
    assert torch.equal(y, torch.where(expect, torch.zeros_like(x), x))
    assert 0 < int(hidden.sum()) < hidden.numel()
    # the draws: a cell is hidden iff its uniform draw (row-major per image) is <= the rate
    torch.manual_seed(0)
    torch.rand(3, 2, 10, 9)
    u = torch.rand(3, 3, 3)
    assert torch.equal(hidden, u <= 0.5)


def test_has_hides_cells_at_the_given_rate():
    torch.manual_seed(1)
    for rate in (0.0, 0.25, 0.5, 1.0):
        x = torch.ones(64, 3, 32, 32)
        hidden = _cells_hidden(hide_patches(x, 4, rate), 4).float().mean().item()
        assert abs(hidden - rate) < 0.02, (rate, hidden)   # 64 x 64 cells
    x = torch.rand(2, 3, 8, 8)
    assert torch.equal(hide_patches(x.clone(), 0, 1.0), x)      # grid 0: unchanged, as the reference


def test_has_sets_hidden_pixels_to_positive_zero():
    """The reference assigns 0 to a hidden cell; multiplying by a 0/1 mask would give -0.0
    where the normalized pixel was negative (same value, other sign bit)."""
    x = -torch.ones(1, 3, 4, 4)                  # every pixel negative
    y = hide_patches(x, 2, 1.0)                  # rate 1: every cell hidden
    assert torch.equal(y, torch.zeros_like(y))
    assert not torch.signbit(y).any()            # +0.0 everywhere, no -0.0
    x = torch.tensor([[[[-2.0, 3.0], [-4.0, 5.0]]]])
    assert torch.equal(hide_patches(x.clone(), 1, 0.0), x)   # rate 0: draws in [0, 1) are never <= 0


def test_has_training_loss_sees_hidden_images():
    seen = {}

    class Probe(nn.Module):
        def forward(self, x):
            seen["x"] = x.clone()
            return x, torch.zeros(x.shape[0], 3, requires_grad=True)

    m = create_train_method("has", {"grid_size": 2, "drop_rate": 1.0})
    loss, logits = m.loss(Probe(), torch.ones(2, 3, 4, 4), torch.tensor([0, 1]))
    assert float(seen["x"].abs().sum()) == 0.0             # every cell hidden at rate 1
    assert loss.item() == pytest.approx(math.log(3))       # CE of uniform logits over 3 classes


# ----------------------------------------------------------------------------- CutMix
def test_cutmix_box_follows_the_reference_formula():
    rng = np.random.RandomState(3)
    lam = 0.64                                            # sqrt(1 - lam) = 0.6
    y0, x0, y1, x1 = rand_box(20, 30, lam, rng)
    ref = np.random.RandomState(3)
    cy, cx = ref.randint(20), ref.randint(30)            # centre drawn over rows, then columns
    cut_h, cut_w = int(20 * 0.6), int(30 * 0.6)           # 12, 18
    assert (y0, y1) == (max(cy - 6, 0), min(cy + 6, 20))
    assert (x0, x1) == (max(cx - 9, 0), min(cx + 9, 30))
    assert cut_h == 12 and cut_w == 18


def test_cutmix_pasted_area_matches_lambda_and_labels():
    np.random.seed(0)
    torch.manual_seed(0)
    b, h, w = 4, 16, 12
    x = torch.arange(b, dtype=torch.float32).view(b, 1, 1, 1).expand(b, 3, h, w).clone()  # image i is all i
    y = torch.tensor([0, 1, 2, 3])
    for _ in range(20):
        mixed, ta, tb, lam = cutmix_batch(x.clone(), y, beta=1.0)
        assert torch.equal(ta, y)
        for i in range(b):
            pasted = (mixed[i, 0] != i)                   # pixels that came from another image
            if tb[i] == y[i]:
                assert not pasted.any()
                continue
            assert (mixed[i][:, pasted] == float(tb[i])).all()   # from the image that gave the label
            assert pasted.sum().item() == pytest.approx((1 - lam) * h * w)
            rows, cols = pasted.any(1).nonzero(), pasted.any(0).nonzero()
            assert pasted.sum().item() == len(rows) * len(cols)  # one rectangle, same for all images


def test_cutmix_loss_mixes_the_two_targets_by_lambda():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    ta, tb = torch.tensor([0, 1]), torch.tensor([2, 0])
    lam = 0.3
    lsm = torch.log_softmax(logits, 1)
    by_hand = -(lam * (lsm[0, 0] + lsm[1, 1]) / 2 + (1 - lam) * (lsm[0, 2] + lsm[1, 0]) / 2)
    assert mixed_loss(logits, ta, tb, lam).item() == pytest.approx(by_hand.item(), rel=1e-6)


def test_cutmix_method_mixes_with_probability_prob():
    class Fixed(nn.Module):
        def forward(self, x):
            return x, torch.tensor([[1.0, 0.0], [0.0, 1.0]]).requires_grad_()

    x, y = torch.rand(2, 3, 8, 8), torch.tensor([0, 1])
    np.random.seed(0)
    never = create_train_method("cutmix", {"prob": 0.0})
    loss, _ = never.loss(Fixed(), x.clone(), y)
    assert loss.item() == pytest.approx(nn.functional.cross_entropy(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), y).item())
    # prob 1: the reference's draws (rand for the probability, then beta, randperm, centre)
    np.random.seed(5)
    torch.manual_seed(5)
    xx = x.clone()
    loss, _ = create_train_method("cutmix").loss(Fixed(), xx, y)
    np.random.seed(5)
    torch.manual_seed(5)
    np.random.rand(1)
    _, ta, tb, lam = cutmix_batch(x.clone(), y, 1.0)
    assert loss.item() == pytest.approx(mixed_loss(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), ta, tb, lam).item())


# ----------------------------------------------------------------------------- SPG
def test_spg_mask_foreground_background_ignored():
    att = torch.zeros(1, 1, 10, 10)
    att[0, 0, :4, :10] = 0.9        # 40 pixels > 0.7: foreground
    att[0, 0, 4:6, :] = 0.3         # between the thresholds: ignored
    att[0, 0, 6:, :] = 0.005        # < 0.01: background
    m = spg_mask(att, 0.7, 0.01)
    assert (m[0, 0, :4] == 1).all() and (m[0, 0, 4:6] == 255).all() and (m[0, 0, 6:] == 0).all()


def test_spg_mask_falls_back_to_70_percent_of_max_below_30_pixels():
    att = torch.full((2, 1, 10, 10), 0.3)
    att[0, 0, 0, :5] = 0.6          # image 0: nothing > 0.7; > 0.7 * 0.6 = 0.42 are these 5 pixels
    att[1, 0, :3, :] = 0.8          # image 1: 30 pixels > 0.7 (not fewer than 30): no fallback
    att[1, 0, 3, 0] = 0.65          # > 0.7 * 0.8 but not > 0.7: stays ignored
    att[1, 0, 9, 9] = 0.0           # background
    m = spg_mask(att, 0.7, 0.01)
    assert int((m[0] == 1).sum()) == 5 and (m[0, 0, 0, :5] == 1).all()
    assert int((m[1] == 1).sum()) == 30 and m[1, 0, 3, 0] == 255 and m[1, 0, 9, 9] == 0
    assert int((m[0] == 0).sum()) == 0


def test_spg_masked_bce_ignores_255():
    logits = torch.tensor([0.0, 2.0, -1.0, 5.0])
    mask = torch.tensor([1.0, 0.0, 255.0, 255.0])
    by_hand = (math.log(2) + math.log(1 + math.exp(2.0))) / 2   # -log sigmoid(0), -log(1 - sigmoid(2))
    assert masked_bce(logits, mask).item() == pytest.approx(by_hand, rel=1e-6)


def test_spg_three_auxiliary_losses_by_hand():
    """Side outputs constant over a 2x2 map: upsampling keeps them constant, so each BCE is
    ``mean over kept pixels`` of a hand-computable value."""
    torch.manual_seed(0)
    size = 12
    att = torch.zeros(1, 1, size, size)
    att[..., :6, :] = 1.0                       # 72 fg pixels (> 0.7), 72 bg (< 0.01)
    fused = torch.full((1, 1, size, size), 0.4)  # all ignored except the fallback: > 0.7 * 0.4 -> all fg
    b1 = torch.full((1, 1, 2, 2), 1.0)
    b2 = torch.full((1, 1, 2, 2), -2.0)         # sigmoid(-2) = 0.119: all > 0.7 * max -> fg for b1
    c = torch.full((1, 1, 2, 2), 0.5)
    logits = torch.tensor([[1.0, 0.0]])
    out = {"logits": logits, "logits_b1": b1, "logits_b2": b2, "logits_c": c,
           "attention": att, "fused_attention": fused}
    l_cls, l_b2, l_b1, l_c = spg_losses(out, torch.tensor([0]), ((0.7, 0.01), (0.5, 0.05), (0.7, 0.1)))
    sp = lambda v: math.log1p(math.exp(v))      # softplus: BCE(z, 1) = sp(-z), BCE(z, 0) = sp(z)
    assert l_cls.item() == pytest.approx(sp(-1.0), rel=1e-6)
    assert l_b2.item() == pytest.approx((sp(2.0) + sp(-2.0)) / 2, rel=1e-5)     # half fg, half bg
    assert l_b1.item() == pytest.approx(sp(-1.0), rel=1e-5)                     # all fg by the fallback
    assert l_c.item() == pytest.approx(sp(-0.5), rel=1e-5)                      # all fg by the fallback
    total, _ = create_train_method("spg").loss(_DictModel(out), torch.zeros(1, 3, 4, 4), torch.tensor([0]))
    assert total.item() == pytest.approx((l_cls + l_b2 + l_b1 + l_c).item(), rel=1e-6)
    # thresholds are options: l1 = 0 leaves no background in the attention mask for b2
    l_b2_nobg = spg_losses(out, torch.tensor([0]), ((0.7, 0.0), (0.5, 0.05), (0.7, 0.1)))[1]
    assert l_b2_nobg.item() == pytest.approx(sp(2.0), rel=1e-5)


def test_spg_attention_loss_upsamples_bilinearly():
    side = torch.tensor([[[[0.0, 4.0]]]])        # 1x2 -> 1x4 bilinear (half-pixel centres): 0, 1, 3, 4
    guide = torch.tensor([[[[0.0, 0.0, 1.0, 1.0]]]])
    mask_thr = (0.7, 0.01)
    sp = lambda v: math.log1p(math.exp(v))
    # 2 fg pixels (< 30): fallback to > 0.7 max = the same 2 pixels
    expect = (sp(0.0) + sp(1.0) + sp(-3.0) + sp(-4.0)) / 4
    assert attention_loss(side, guide, *mask_thr).item() == pytest.approx(expect, rel=1e-5)


class _DictModel(nn.Module):
    def __init__(self, out):
        super().__init__()
        self.out = out

    def forward_train(self, x, labels=None):
        return self.out


# ----------------------------------------------------------------------------- ACoL loss
def test_acol_loss_sums_both_heads():
    out = {"logits": torch.tensor([[2.0, 0.0]]), "logit_b": torch.tensor([[0.0, 1.0]])}
    loss, logits = create_train_method("acol").loss(_DictModel(out), torch.zeros(1, 3, 4, 4), torch.tensor([0]))
    sp = lambda v: math.log1p(math.exp(v))
    assert loss.item() == pytest.approx(sp(-2.0) + sp(1.0), rel=1e-6)
    assert torch.equal(logits, out["logits"])


# ----------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    from wsol.datasets.synthetic import make_synthetic

    return make_synthetic(str(tmp_path_factory.mktemp("tm") / "syn"), progress=False,
                          n_classes=3, n_train_per_class=4, n_test_per_class=2, seed=0)


def _train_and_evaluate(tiny_set, tmp_path, capsys, method: str, backbone: str, *extra: str):
    """`wsol train --wsol-method METHOD` for 2 steps, then `wsol evaluate` of best.pt with the
    backbone name the trainer printed; returns (checkpoint dict, summary row)."""
    import json
    import os

    import pandas as pd

    from wsol.cli import main

    out = str(tmp_path / method)
    torch.manual_seed(0)
    rc = main(["-q", "train", "--dataset", "synthetic", "--root", tiny_set, "--backbone", backbone,
               "--weights", "random", "--wsol-method", method, *extra, "--epochs", "1", "--batch-size", "6",
               "--lr", "0.01", "--holdout", "0.25", "--seed", "1", "--out", out])
    assert rc == 0
    printed = capsys.readouterr().out
    line = [ln for ln in printed.splitlines() if ln.startswith("evaluate with:")][0]
    arch = line.split("--backbone ")[1].split()[0]
    ck = torch.load(os.path.join(out, "best.pt"), map_location="cpu", weights_only=True)
    assert ck["wsol_method"] == method and ck["backbone"] == arch and ck["base_backbone"] == backbone
    cfg = json.load(open(os.path.join(out, "train_config.json")))
    assert cfg["wsol_method"] == method and cfg["method_options"] == ck["method_options"]
    log = pd.read_csv(os.path.join(out, "train_log.csv"))
    assert len(log) == 1 and np.isfinite(log.train_loss[0]) and np.isfinite(log.val_maxboxacc_v2[0])
    ev = str(tmp_path / f"{method}-eval")
    assert main(["-q", "evaluate", "--dataset", "synthetic", "--root", tiny_set, "--backbone", arch,
                 "--weights", os.path.join(out, "best.pt"), "--out", ev]) == 0
    s = pd.read_csv(os.path.join(ev, "summary.csv")).iloc[0]
    assert s.n_images == 6 and 0 <= s.maxboxacc_v2 <= 100
    return ck, s


@pytest.mark.parametrize("method,extra", [("cam", ()), ("has", ("--has-grid-size", "16", "--has-drop-rate", "0.3")),
                                          ("cutmix", ("--cutmix-beta", "0.5"))])
def test_wsol_train_plain_architecture_methods(tiny_set, tmp_path, capsys, one_thread, method, extra):
    ck, _ = _train_and_evaluate(tiny_set, tmp_path, capsys, method, "test_byobnet", *extra)
    assert ck["backbone"] == "test_byobnet"
    if method == "has":
        assert ck["method_options"] == {"grid_size": 16, "drop_rate": 0.3}
    if method == "cutmix":
        assert ck["method_options"] == {"beta": 0.5, "prob": 1.0}


def test_wsol_train_rejects_options_of_another_method(tiny_set, tmp_path, capsys):
    import os

    from wsol.cli import main

    rc = main(["train", "--dataset", "synthetic", "--root", tiny_set, "--backbone", "test_byobnet",
               "--weights", "random", "--wsol-method", "cam", "--has-drop-rate", "0.3", "--out", str(tmp_path / "x")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--has-drop-rate is an option of --wsol-method has, not of cam" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as e:  # refused while parsing, by the declaration's own parser
        main(["train", "--dataset", "synthetic", "--root", tiny_set, "--backbone", "test_byobnet",
              "--weights", "random", "--wsol-method", "has", "--has-drop-rate", "2", "--out", str(tmp_path / "y")])
    assert e.value.code == 2 and "has_drop_rate must be a number in [0, 1], got 2.0" in capsys.readouterr().err
    rc = main(["train", "--dataset", "synthetic", "--root", str(tmp_path / "nodata"), "--backbone", "test_byobnet+spg",
               "--wsol-method", "acol", "--out", str(tmp_path / "z")])
    assert rc == 2 and "is an SPG architecture: train it with --wsol-method spg" in capsys.readouterr().err
    assert not os.path.exists(str(tmp_path / "nodata"))          # refused before reading any data


def test_wsol_methods_training_lists_methods_and_defaults(capsys):
    from wsol.cli import main

    assert main(["methods", "--training"]) == 0
    text = capsys.readouterr().out
    for m in ("cam", "has", "acol", "spg", "adl", "cutmix"):
        assert any(line.startswith(m + " ") for line in text.splitlines()), m
    for flag in ("--has-grid-size 4", "--has-drop-rate 0.5", "--acol-threshold 0.7", "--spg-threshold-1h 0.7",
                 "--spg-threshold-1l 0.01", "--spg-threshold-2h 0.5", "--spg-threshold-2l 0.05",
                 "--spg-threshold-3h 0.7", "--spg-threshold-3l 0.1", "--adl-drop-rate 0.75", "--adl-threshold 0.9",
                 "--cutmix-beta 1", "--cutmix-prob 1"):
        assert flag in text, flag


@pytest.mark.parametrize("method,extra,arch,options", [
    ("acol", ("--acol-threshold", "0.6"), "test_byobnet+acol", {"acol_drop_threshold": 0.6}),
    ("spg", ("--spg-threshold-1h", "0.8"), "test_byobnet+spg", {}),
    ("adl", ("--adl-drop-rate", "0.5"), "test_byobnet+adl", {"adl_drop_rate": 0.5, "adl_drop_threshold": 0.9}),
])
def test_wsol_train_method_architectures(tiny_set, tmp_path, capsys, one_thread, method, extra, arch, options):
    """ACoL/SPG/ADL train their variant of the backbone (generic heads on a timm net) and the
    checkpoint rebuilds it, with the method's model options, in `wsol evaluate`."""
    ck, s = _train_and_evaluate(tiny_set, tmp_path, capsys, method, "test_byobnet", *extra)
    assert ck["backbone"] == arch and ck["model_options"] == options


# ----------------------------------------------------------------------------- ADL (model layer)
def test_adl_drop_mask_and_importance_map():
    from wsol.models.adl import ADL

    x = torch.zeros(2, 2, 2, 2)
    x[0, :, 0, 0] = torch.tensor([4.0, 2.0])    # channel mean 3 = max of image 0
    x[0, :, 0, 1] = torch.tensor([3.0, 2.4])    # 2.7 = 0.9 x 3: dropped (>= threshold x max)
    x[0, :, 1, 0] = torch.tensor([2.0, 3.2])    # 2.6 < 2.7: kept
    x[1] = 1.0                                   # constant: every pixel = max, all dropped
    adl = ADL(drop_rate=1.0, drop_threshold=0.9).train()
    keep = torch.tensor([[[[0.0, 0.0], [1.0, 1.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])
    assert torch.equal(adl(x), x * keep)
    imp = ADL(drop_rate=0.0, drop_threshold=0.9).train()     # never the drop mask: sigmoid(mean)
    assert torch.allclose(imp(x), x * torch.sigmoid(x.mean(1, keepdim=True)))
    assert torch.equal(ADL().eval()(x), x)                    # inactive at evaluation
    # one draw per forward pass: the drop mask with probability drop_rate
    torch.manual_seed(0)
    adl = ADL(drop_rate=0.75, drop_threshold=0.9).train()
    drops = sum(bool(torch.equal(adl(x), x * keep)) for _ in range(400))
    assert abs(drops / 400 - 0.75) < 0.07
    assert (ADL().drop_rate, ADL().drop_threshold) == (0.75, 0.9)


def test_generic_adl_sits_in_the_last_two_stages_and_keeps_keys():
    from wsol.models.adl import ADL
    from wsol.models.registry import create_backbone

    plain = create_backbone("test_byobnet", "random", num_classes=3)
    torch.manual_seed(0)
    adl = create_backbone("test_byobnet+adl", "random", num_classes=3, options={"adl_drop_threshold": 0.8})
    assert set(adl.state_dict()) == set(plain.state_dict())
    stages = [m for m in adl.net.stages]
    places = [i for i, s in enumerate(stages) for m in getattr(s, "blocks", s).children() if isinstance(m, ADL)]
    assert places == [len(stages) - 2, len(stages) - 1]
    assert all(m.drop_threshold == 0.8 for m in adl.modules() if isinstance(m, ADL))
    adl.eval()
    plain.load_state_dict(adl.state_dict())
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(adl(x)[1], plain.eval()(x)[1])          # identity at evaluation


# ----------------------------------------------------------------------------- ACoL (model layer)
def test_acol_erases_attention_at_threshold_before_the_second_head():
    from wsol.models.heads import erase_attention
    from wsol.models.registry import create_backbone

    f = torch.ones(1, 2, 2, 2)
    att = torch.tensor([[[[0.7, 0.69], [1.0, 0.0]]]])
    assert torch.equal(erase_attention(f, att, 0.7), f * torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]]))

    bb = create_backbone("test_byobnet+acol", "random", num_classes=3, options={"acol_drop_threshold": 0.5})
    seen = {}
    head_b = bb.net.classifier_B
    bb.net.classifier_B = nn.Sequential()          # records its input instead
    bb.net.classifier_B.register_forward_hook(lambda m, i, o: seen.setdefault("b_in", i[0].detach()))
    feats = bb.forward_features(torch.randn(2, 3, 64, 64))
    labels = torch.tensor([2, 0])
    bb.acol_outputs(feats, labels)
    a = bb.net.classifier_A(feats)[torch.arange(2), labels].detach()
    lo, hi = a.flatten(1).min(1).values.view(-1, 1, 1), a.flatten(1).max(1).values.view(-1, 1, 1)
    erased = ((a - lo) / (hi - lo)) >= 0.5                   # head A's normalized class map >= threshold
    assert erased.any() and (~erased).any()
    assert torch.equal(seen["b_in"], feats * (~erased).unsqueeze(1).float())
    bb.net.classifier_B = head_b
    cm = bb.class_maps(feats, labels)                           # fused map: max of both normalized maps
    assert cm.shape == (2,) + feats.shape[-2:] and float(cm.max()) == 1.0


def test_method_architecture_maps_backbones_to_variants():
    from wsol.models.method_heads import variant_for

    assert variant_for("vgg16_gap", "acol", {"acol_drop_threshold": 0.6}) == ("vgg16_acol", {"acol_drop_threshold": 0.6})
    assert variant_for("resnet50_s1", "spg") == ("resnet50_spg", {})
    assert variant_for("inception_v3_gap", "adl", {"adl_drop_rate": 0.5}) == \
        ("inception_v3_gap", {"adl": True, "adl_drop_rate": 0.5})
    assert variant_for("vgg16_acol", "acol") == ("vgg16_acol", {})
    assert variant_for("efficientnet_lite0", "spg") == ("efficientnet_lite0+spg", {})
    assert variant_for("efficientnet_lite0", "cam") == ("efficientnet_lite0", {})
    with pytest.raises(WsolError, match="--wsol-method acol"):
        variant_for("efficientnet_lite0+acol", "cam")
    with pytest.raises(WsolError, match="--wsol-method spg"):
        variant_for("test_byobnet+spg", "acol")
    with pytest.raises(WsolError, match="--wsol-method acol"):
        variant_for("resnet50_acol", "cam")


# ----------------------------------------------------------------------------- optimizer, API
def test_reference_architectures_use_the_reference_lr_groups():
    """wsolevaluation's main.py: ResNet50 trains layer4 and fc at 10x, VGG16 all but features."""
    from wsol.training import train as tr
    from wsol.models.registry import create_backbone

    r = create_backbone("resnet50_s1", "random", num_classes=3)
    trainable, _, _ = tr.set_trainable(r, "all")
    opt = tr.make_optimizer(r, trainable, tr.TrainConfig(lr=0.01))
    fast = {id(p) for g in opt.param_groups if g["name"] == "new" for p in g["params"]}
    names = {n for n, p in r.net.named_parameters() if id(p) in fast}
    assert names == {n for n, _ in r.net.named_parameters() if n.startswith(("layer4.", "fc."))}
    assert all(g["nesterov"] for g in opt.param_groups)
    assert {g["name"]: g["lr"] for g in opt.param_groups} == pytest.approx({"pretrained": 0.01, "new": 0.1})


def test_python_api_trains_with_a_method(tiny_set, tmp_path, one_thread):
    import wsol

    log = wsol.train(dataset="synthetic", root=tiny_set, backbone="test_byobnet", weights="random",
                     wsol_method="cutmix", method_options={"prob": 0.5}, epochs=1, batch_size=6, lr=0.01,
                     holdout=0.0, select_by="last", out=str(tmp_path / "api"), progress=False)
    assert list(log.epoch) == [1]
    ck = torch.load(str(tmp_path / "api" / "best.pt"), map_location="cpu", weights_only=True)
    assert ck["wsol_method"] == "cutmix" and ck["method_options"] == {"beta": 1.0, "prob": 0.5}
    with pytest.raises(WsolError, match="did you mean 'wsol_method'"):
        wsol.train(wsol_methd="cam")


def test_resume_refuses_another_method_or_options(tiny_set, tmp_path, one_thread):
    from wsol.training import train as tr

    kw = dict(dataset="synthetic", root=tiny_set, backbone="test_byobnet", weights="random", epochs=1,
              batch_size=6, lr=0.01, holdout=0.0, select_by="last", out=str(tmp_path / "r"), progress=False)
    tr.train(tr.TrainConfig(wsol_method="has", **kw))
    with pytest.raises(WsolError, match="wsol_method='has'"):
        tr.train(tr.TrainConfig(wsol_method="cutmix", resume=True, **{**kw, "epochs": 2}))
    with pytest.raises(WsolError, match="method_options"):
        tr.train(tr.TrainConfig(wsol_method="has", method_options={"drop_rate": 0.2}, resume=True,
                                **{**kw, "epochs": 2}))
    log = tr.train(tr.TrainConfig(wsol_method="has", method_options={"grid_size": 4}, resume=True,
                                  **{**kw, "epochs": 2}))      # the defaults spelled out: same run
    assert list(log.epoch) == [1, 2]


@pytest.mark.slow
def test_adl_on_a_reference_architecture_trains_and_reloads(tiny_set, tmp_path, one_thread):
    """--wsol-method adl on resnet50_s1 trains the reference's ADL variant (adl=true, ADL
    layers active in training) and best.pt rebuilds it from the recorded model options."""
    from wsol.training import train as tr
    from wsol.models.adl import ADL
    from wsol.models.registry import create_backbone

    out = str(tmp_path / "r50adl")
    calls = []
    orig = ADL.forward

    def counting(self, x):
        calls.append(self.training)
        return orig(self, x)

    ADL.forward = counting
    try:
        tr.train(tr.TrainConfig(dataset="synthetic", root=tiny_set, backbone="resnet50_s1", weights="random",
                                wsol_method="adl", method_options={"threshold": 0.8}, epochs=1, batch_size=12,
                                lr=0.001, holdout=0.0, select_by="last", out=out, progress=False))
    finally:
        ADL.forward = orig
    assert calls and all(calls) and len(calls) == 3        # three ADL layers, one training step
    ck = torch.load(f"{out}/best.pt", map_location="cpu", weights_only=True)
    assert ck["backbone"] == "resnet50_s1" and ck["model_options"]["adl"] is True
    assert ck["model_options"]["adl_drop_threshold"] == 0.8 and "net.layer4.3.conv1.weight" in ck["state_dict"]  # shifted past ADL
    bb = create_backbone("resnet50_s1", f"{out}/best.pt")
    assert [m.drop_threshold for m in bb.modules() if isinstance(m, ADL)] == [0.8] * 3


def test_new_acol_heads_are_initialised_by_the_reference_rule():
    """ResNet50-ACoL on 7 classes: the new 1x1 convs follow the reference constructor's rule
    (He, fan-out: std sqrt(2 / (7 * 1 * 1))), VGG16-ACoL's Xavier-uniform (bound sqrt(6 / (1024 + 7)))."""
    from wsol.models.registry import create_backbone

    torch.manual_seed(0)
    r = create_backbone("resnet50_acol", "random", num_classes=1000)
    r.reset_classifier(7)
    w = r.net.classifier_A[4].weight
    assert w.shape == (7, 1024, 1, 1) and float(r.net.classifier_A[4].bias.abs().max()) == 0
    assert float(w.std()) == pytest.approx(math.sqrt(2 / 7), rel=0.05)
    v = create_backbone("vgg16_acol", "random", num_classes=1000)
    v.reset_classifier(7)
    w = v.net.classifier_B[4].weight
    bound = math.sqrt(6 / (1024 + 7))
    assert float(w.abs().max()) <= bound and float(w.std()) == pytest.approx(bound / math.sqrt(3), rel=0.05)
