"""TS-CAM, SAT and BAS training (wsol.training.methods.tscam/sat/bas): their loss terms,
optimizer groups, schedules and recipe defaults against hand-computed values (the rules of
the references' trainers as docs/architecture.md "Training methods" states them)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from wsol.errors import WsolError
from wsol.training import train as tr
from wsol.training.methods import create_train_method, list_train_methods
from wsol.training.methods.bas import bas_loss_terms, bas_ratio
from wsol.training.methods.param_groups import bas_groups, decay_groups, is_no_decay, reference_named_parameters
from wsol.training.methods.sat import sat_blur_kernel, sat_loss_terms
from wsol.training.methods.tscam import TSCAM_NO_DECAY, StepsAtMultiples


# ----------------------------------------------------------------------------- registry
def test_registry_lists_the_later_methods_with_reference_defaults():
    names = [m.name for m in list_train_methods()]
    assert names[-3:] == ["tscam", "sat", "bas"]
    assert create_train_method("tscam").option_dict() == {"drop_path": 0.1}
    assert create_train_method("sat").option_dict() == {"area_thr": 0.25, "drop_path": 0.1}
    assert create_train_method("bas").option_dict() == {"alpha": 0.5, "beta": 1.5}
    with pytest.raises(WsolError, match=r"sat_area_thr must be a number in \[0, 1\], got 1.5"):
        create_train_method("sat", {"area_thr": 1.5})


def test_recipe_fills_only_the_unset_schedule_fields():
    """TS-CAM: AdamW lr 5e-4, wd 0.05, 60 epochs of 128, decay every 30 (the CUB config);
    SAT: lr 1e-4, wd 0.05, 30 epochs of 256; BAS: lr 1e-3, wd 5e-4, 120 epochs of 32,
    decay at 80; cam keeps Choe et al.'s. A value the user gives is kept."""
    def resolved(method, **kw):
        c = tr.resolve_schedule(tr.TrainConfig(wsol_method=method, **kw), create_train_method(method))
        return c.lr, c.weight_decay, c.epochs, c.batch_size, c.lr_decay_epochs

    assert resolved("tscam") == (5e-4, 0.05, 60, 128, 30)
    assert resolved("sat") == (1e-4, 0.05, 30, 256, 30)     # decay frequency: the reference recipe's
    assert resolved("bas") == (1e-3, 5e-4, 120, 32, 80)
    assert resolved("cam") == (0.01, 1e-4, 40, 64, 30)      # Choe et al.'s trainer (--recipe reference)
    assert resolved("tscam", lr=0.01, epochs=2) == (0.01, 0.05, 2, 128, 30)


# ----------------------------------------------------------------------------- parameter groups
class _ToyVit(nn.Module):
    def __init__(self):
        super().__init__()
        self.cls_token = nn.Parameter(torch.ones(1, 1, 2))
        self.pos_embed = nn.Parameter(torch.ones(1, 3, 2))
        self.patch_embed = nn.Conv2d(1, 2, 1)          # .weight 4-d, .bias
        self.norm = nn.LayerNorm(2)                    # 1-d weight and bias
        self.qkv = nn.Linear(2, 2, bias=False)         # 2-d
        self.weight = nn.Parameter(torch.ones(1, 1, 3, 3), requires_grad=False)   # SAT's kernel


class _Wrapped(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net


def _names(groups):
    return [(g["name"], g["param_names"], g["weight_decay"]) for g in groups]


def test_tscam_groups_exempt_tokens_norms_and_biases_no_decay_first():
    named = reference_named_parameters(_Wrapped(_ToyVit()))   # names of .net, frozen kernel left out
    groups = decay_groups(named, 0.05, lambda n, p: is_no_decay(n, p, TSCAM_NO_DECAY), no_decay_first=True)
    assert _names(groups) == [
        ("no_decay", ["cls_token", "pos_embed", "patch_embed.bias", "norm.weight", "norm.bias"], 0.0),
        ("decay", ["patch_embed.weight", "qkv.weight"], 0.05)]


def test_sat_groups_decay_the_tokens_and_follow_first_appearance():
    named = reference_named_parameters(_ToyVit())
    groups = decay_groups(named, 0.05, is_no_decay, no_decay_first=False)
    assert _names(groups) == [
        ("decay", ["cls_token", "pos_embed", "patch_embed.weight", "qkv.weight"], 0.05),
        ("no_decay", ["patch_embed.bias", "norm.weight", "norm.bias"], 0.0)]


def test_bas_groups_split_by_name_at_1_2_10_20_times_lr():
    net = nn.Module()
    net.conv1 = nn.Conv2d(1, 1, 1, bias=False)
    net.bn1 = nn.BatchNorm2d(1)
    net.classifier_cls = nn.Sequential(nn.Conv2d(1, 2, 1))
    net.classifier_loc = nn.Sequential(nn.Conv2d(1, 2, 1))
    net.other = nn.Parameter(torch.zeros(1))      # neither 'weight' nor 'bias': the reference drops it
    groups = bas_groups(reference_named_parameters(net), 0.001)
    assert [(g["name"], g["param_names"], g["lr"]) for g in groups] == [
        ("weight", ["conv1.weight", "bn1.weight"], 0.001),
        ("bias", ["bn1.bias"], 0.002),
        ("classifier_weight", ["classifier_cls.0.weight", "classifier_loc.0.weight"], 0.01),
        ("classifier_bias", ["classifier_cls.0.bias", "classifier_loc.0.bias"], 0.02)]


def test_groups_keep_only_trainable_parameters():
    net = _ToyVit()
    named = reference_named_parameters(net, trainable=[net.qkv.weight, net.norm.bias])
    assert [n for n, _ in named] == ["norm.bias", "qkv.weight"]
    with pytest.raises(WsolError, match="no parameter to train"):
        decay_groups([], 0.05, is_no_decay, True)


def test_tscam_optimizer_step_is_decoupled_adamw_by_hand():
    """One AdamW step from p = 1 with gradient g: p <- p (1 - lr wd) - lr g / (|g| + eps),
    wd 0.05 only in the decay group (bias-corrected first step: m^ = g, v^ = g^2)."""
    net = _Wrapped(_ToyVit())
    m = create_train_method("tscam")
    cfg = tr.TrainConfig(wsol_method="tscam", lr=0.01)
    opt, sched = tr.make_optimizer(net, list(net.parameters()), cfg, m)
    assert isinstance(opt, torch.optim.AdamW)
    assert [(g["lr"], g["weight_decay"], g["betas"], g["eps"], g["amsgrad"]) for g in opt.param_groups] == \
        [(0.01, 0.0, (0.9, 0.999), 1e-8, False), (0.01, 0.05, (0.9, 0.999), 1e-8, False)]
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(1.0)
    for p in net.parameters():
        p.grad = torch.full_like(p, 2.0) if p.requires_grad else None
    opt.step()
    step = 0.01 * 2.0 / (2.0 + 1e-8)
    assert net.net.cls_token.flatten()[0].item() == pytest.approx(1.0 - step, abs=1e-7)          # no decay
    assert net.net.qkv.weight.flatten()[0].item() == pytest.approx(1.0 * (1 - 0.01 * 0.05) - step, abs=1e-7)
    assert net.net.weight.flatten()[0].item() == 1.0                                              # frozen kernel


def test_tscam_lr_decays_before_epochs_that_are_multiples_of_the_step():
    """The reference multiplies the lr by 0.1 before 1-based epochs 30, 60: 0-based epochs
    0..28 at 1, 29..58 at 0.1, 59 at 0.01."""
    f = StepsAtMultiples(30)
    assert [f(i) for i in (0, 28, 29, 58)] == [1.0, 1.0, 0.1, 0.1]
    assert f(59) == pytest.approx(0.01)
    net = _Wrapped(_ToyVit())
    opt, sched = tr.make_optimizer(net, list(net.parameters()), tr.TrainConfig(lr=1.0, lr_decay_epochs=2),
                                   create_train_method("tscam"))
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    assert lrs == pytest.approx([1.0, 0.1, 0.1, 0.01])
    state = sched.state_dict()          # resumable: the factor object's state is saved
    assert state["lr_lambdas"][0] == {"step": 2}


def test_sat_and_bas_schedules():
    net = _Wrapped(_ToyVit())
    opt, sched = tr.make_optimizer(net, list(net.parameters()), tr.TrainConfig(lr=1.0), create_train_method("sat"))
    for _ in range(40):
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == [1.0, 1.0] and opt.param_groups[0]["lr_scale"] == 1.0
    net = _Wrapped(nn.Sequential(nn.Conv2d(1, 1, 1)))
    opt, sched = tr.make_optimizer(net, list(net.parameters()), tr.TrainConfig(lr=1.0, lr_decay_epochs=2),
                                   create_train_method("bas"))
    assert isinstance(opt, torch.optim.SGD)
    g = opt.param_groups[0]
    assert (g["momentum"], g["nesterov"], g["dampening"], g["weight_decay"]) == (0.9, True, 0.0, 5e-4)
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    assert lrs == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01])     # reference: x0.1 when epoch % 80 == 0, epoch > 0


# ----------------------------------------------------------------------------- SAT loss
def test_sat_blur_kernel_by_hand_and_as_recorded():
    """Points -8.1667, -2.7222, 2.7222, 8.1667; k = [Phi(-2.7222), 1 - 2 Phi(-2.7222),
    Phi(-2.7222)] = [0.0032434, 0.9935132, 0.0032434]; sqrt(outer) / sum: corner k0 /
    1.2335284, edge sqrt(k0 k1) / 1.2335284, centre k1 / 1.2335284; the training fixture
    records corners 0.0026285, edges 0.0460116, centre 0.8054397."""
    k = sat_blur_kernel()
    assert k.shape == (1, 1, 3, 3)
    phi = 0.5 * (1 + math.erf(-2.7222222222 / math.sqrt(2)))
    k0, k1 = phi, 1 - 2 * phi
    total = 4 * k0 + 4 * math.sqrt(k0 * k1) + k1
    assert k[0, 0, 0, 0].item() == pytest.approx(k0 / total, rel=1e-6)
    assert k[0, 0, 0, 1].item() == pytest.approx(math.sqrt(k0 * k1) / total, rel=1e-6)
    assert k[0, 0, 1, 1].item() == pytest.approx(k1 / total, rel=1e-6)
    assert [k[0, 0, 0, 0].item(), k[0, 0, 1, 0].item(), k[0, 0, 1, 1].item()] == \
        pytest.approx([0.0026285, 0.0460116, 0.8054397], abs=1e-7)
    assert k.sum().item() == pytest.approx(1.0)


def test_sat_loss_terms_by_hand():
    """Identity kernel (blur = M). Image 0: M = [[0, 1], [.5, .5]] (mean .5, (1-M)M mean
    .125); image 1: M = 0. Batch mean .25, so area = |.25 - .25| = 0 (a per-image |mean -
    .25| would give .25); norm = (.125 + 0) / 2; cls = ln 3 on zero logits."""
    m = torch.tensor([[[[0.0, 1.0], [0.5, 0.5]]], [[[0.0, 0.0], [0.0, 0.0]]]])
    ident = torch.zeros(1, 1, 3, 3)
    ident[0, 0, 1, 1] = 1.0
    t = sat_loss_terms(torch.zeros(2, 3), torch.tensor([0, 2]), m, ident, 0.25)
    assert t["ba_mean"].item() == pytest.approx(0.25)
    assert t["area"].item() == pytest.approx(0.0)
    assert t["norm"].item() == pytest.approx(0.0625)
    assert t["cls"].item() == pytest.approx(math.log(3))
    assert t["total"].item() == pytest.approx(math.log(3) + 0.0625)
    t = sat_loss_terms(torch.zeros(2, 3), torch.tensor([0, 2]), m, ident, 0.1)
    assert t["area"].item() == pytest.approx(0.15)


def test_sat_norm_term_blurs_with_zero_padding():
    """A 1x1 map of 0.9 sees only the kernel's centre: B = 0.9 x 0.8054397, norm = (1 - B) B."""
    t = sat_loss_terms(torch.zeros(1, 2), torch.tensor([1]), torch.full((1, 1, 1, 1), 0.9), sat_blur_kernel(), 0.25)
    b = 0.9 * 0.8054397
    assert t["norm"].item() == pytest.approx((1 - b) * b, rel=1e-6)
    assert t["area"].item() == pytest.approx(0.65)


# ----------------------------------------------------------------------------- BAS loss
def test_bas_ratio_clamps_to_one_and_guards_zero_by_hand():
    """relu(S) = [2, 2, 0, 0], relu(S_bg) = [1, 3, .5, 0]: ratios [.5, 1 (bg > S), 1 (bg > S),
    0 / 1e-8 = 0]; gradient reaches S_bg of image 0 only (1 / 2), never S."""
    s = torch.tensor([2.0, 2.0, -1.0, 0.0], requires_grad=True)
    s_bg = torch.tensor([1.0, 3.0, 0.5, 0.0], requires_grad=True)
    r = bas_ratio(s, s_bg)
    assert r.tolist() == pytest.approx([0.5, 1.0, 1.0, 0.0])
    r.sum().backward()
    assert s.grad is None
    assert s_bg.grad.tolist() == pytest.approx([0.5, 0.0, 0.0, 0.0])
    assert bas_ratio(torch.tensor([1e-9]), torch.tensor([1e-9])).item() == pytest.approx(1e-9 / (1e-9 + 1e-8))


def test_bas_loss_terms_by_hand():
    """Two images, two classes. score_1 = [[2, 0], [0, 0]], labels [0, 1]: S = [2, 0];
    cls = (log(1 + e^-2) + log 2) / 2; score_2 = 0: cls_fg = log 2; S_bg = [1, 0]: bas =
    (1/2 + 0) / 2; M_fg means .5 and .25: area .375; total = cls + .5 cls_fg + bas + 1.5 area."""
    score_1 = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    fg = torch.stack([torch.full((1, 2, 2), 0.5), torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])])
    t = bas_loss_terms(score_1, torch.zeros(2, 2), torch.tensor([1.0, 0.0]), fg, torch.tensor([0, 1]), 0.5, 1.5)
    cls = (math.log(1 + math.exp(-2)) + math.log(2)) / 2
    assert t["cls"].item() == pytest.approx(cls)
    assert t["cls_fg"].item() == pytest.approx(math.log(2))
    assert t["bas"].item() == pytest.approx(0.25)
    assert t["area"].item() == pytest.approx(0.375)
    assert t["total"].item() == pytest.approx(cls + 0.5 * math.log(2) + 0.25 + 1.5 * 0.375)


def test_sat_and_bas_refuse_a_model_without_their_outputs():
    class Plain(nn.Module):
        def forward_train(self, x, labels=None):
            return {"logits": torch.zeros(x.shape[0], 2)}

    x, y = torch.zeros(2, 3, 4, 4), torch.tensor([0, 1])
    with pytest.raises(WsolError, match="needs a SAT model"):
        create_train_method("sat").loss(Plain(), x, y)
    with pytest.raises(WsolError, match="needs a BAS model"):
        create_train_method("bas").loss(Plain(), x, y)


def test_method_architectures_refuse_other_backbones():
    with pytest.raises(WsolError, match="--wsol-method tscam trains a TS-CAM model"):
        tr.method_architecture(create_train_method("tscam"), "resnet50")
    with pytest.raises(WsolError, match="--wsol-method bas trains a BAS model"):
        tr.method_architecture(create_train_method("bas"), "deit_small_patch16_224")


# ----------------------------------------------------------------------------- CLI end to end
@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    from wsol.datasets.synthetic import make_synthetic

    return make_synthetic(str(tmp_path_factory.mktemp("lm") / "syn"), progress=False,
                          n_classes=3, n_train_per_class=4, n_test_per_class=2, seed=0)


def test_wsol_methods_training_lists_the_schedule_defaults(capsys):
    from wsol.cli import main

    assert main(["methods", "--training"]) == 0
    text = capsys.readouterr().out
    for line in ("--tscam-drop-path 0.1", "--sat-area-thr 0.25", "--bas-alpha 0.5 --bas-beta 1.5",
                 "schedule defaults: --lr 0.0005 --weight-decay 0.05 --epochs 60 --batch-size 128 "
                 "--lr-decay-epochs 30"):
        assert line in text, line


def test_wsol_train_refuses_a_backbone_of_another_family_before_reading_data(tmp_path, capsys):
    import os

    from wsol.cli import main

    rc = main(["train", "--dataset", "synthetic", "--root", str(tmp_path / "nodata"), "--backbone", "resnet50",
               "--wsol-method", "sat", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "--wsol-method sat trains a SAT model: --backbone takes" in err
    assert "deit_sat_small_patch16_224" in err and "Traceback" not in err
    assert not os.path.exists(str(tmp_path / "nodata"))


def _cli_train_evaluate(tiny_set, tmp_path, capsys, method, backbone, *extra):
    """`wsol train` (2 steps of batch 6, the method's recipe otherwise) then `wsol evaluate`
    of best.pt with the architecture the trainer printed; -> (checkpoint, config, summary)."""
    import json
    import os

    import pandas as pd

    from wsol.cli import main

    out = str(tmp_path / method)
    rc = main(["-q", "train", "--dataset", "synthetic", "--root", tiny_set, "--backbone", backbone,
               "--weights", "random", "--wsol-method", method, *extra, "--epochs", "1", "--batch-size", "6",
               "--holdout", "0", "--select-by", "last", "--seed", "1", "--out", out])
    assert rc == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("evaluate with:")][0]
    arch = line.split("--backbone ")[1].split()[0]
    ck = torch.load(os.path.join(out, "best.pt"), map_location="cpu", weights_only=True)
    cfg = json.load(open(os.path.join(out, "train_config.json")))
    log = pd.read_csv(os.path.join(out, "train_log.csv"))
    assert len(log) == 1 and log.n_train[0] == 12 and math.isfinite(log.train_loss[0])
    ev = str(tmp_path / f"{method}-eval")
    assert main(["-q", "evaluate", "--dataset", "synthetic", "--root", tiny_set, "--backbone", arch,
                 "--weights", os.path.join(out, "best.pt"), "--out", ev]) == 0
    s = pd.read_csv(os.path.join(ev, "summary.csv")).iloc[0]
    assert s.n_images == 6 and 0 <= s.maxboxacc_v2 <= 100
    return ck, cfg, arch


@pytest.mark.slow
@pytest.mark.parametrize("method,backbone,arch,options", [
    ("tscam", "deit_tiny_patch16_224", "deit_tscam_tiny_patch16_224", {"drop_path": 0.1}),
    ("sat", "deit_sat_tiny_patch16_224", "deit_sat_tiny_patch16_224", {"area_thr": 0.3, "drop_path": 0.1}),
])
def test_wsol_train_vit_families_end_to_end(tiny_set, tmp_path, capsys, one_thread, method, backbone, arch, options):
    extra = ("--sat-area-thr", "0.3") if method == "sat" else ()
    ck, cfg, printed = _cli_train_evaluate(tiny_set, tmp_path, capsys, method, backbone, *extra)
    assert printed == arch and ck["backbone"] == arch and ck["wsol_method"] == method
    assert ck["method_options"] == options and ck["model_options"] == {"drop_path_rate": 0.1}
    lr, wd = {"tscam": (5e-4, 0.05), "sat": (1e-4, 0.05)}[method]
    assert (cfg["lr"], cfg["weight_decay"], cfg["epochs"], cfg["batch_size"]) == (lr, wd, 1, 6)


@pytest.mark.slow
def test_wsol_train_bas_end_to_end(tiny_set, tmp_path, capsys, one_thread):
    ck, cfg, arch = _cli_train_evaluate(tiny_set, tmp_path, capsys, "bas", "mobilenet_v1", "--bas-beta", "1.9")
    assert arch == "bas_mobilenet_v1" and ck["method_options"] == {"alpha": 0.5, "beta": 1.9}
    assert (cfg["lr"], cfg["weight_decay"], cfg["lr_decay_epochs"]) == (1e-3, 5e-4, 80)


@pytest.mark.slow
def test_wsol_train_bas_generic_variant_end_to_end(tiny_set, tmp_path, capsys, one_thread):
    """`wsol train --wsol-method bas` on the offline pretrained efficientnet_lite0 trains
    `efficientnet_lite0+bas` (classifier_loc on blocks.4, classifier_cls after the tail) with BAS's loss and
    optimizer; `wsol evaluate` of the checkpoint gives the foreground map (`--method bas`),
    which is not constant, and `--method cam` gives the same map (topk 1: classifier_loc's
    map of the target)."""
    import glob
    import json
    import os

    import numpy as np
    import pandas as pd

    from wsol.cli import main

    out = str(tmp_path / "bas")
    rc = main(["-q", "train", "--dataset", "synthetic", "--root", tiny_set, "--backbone", "efficientnet_lite0",
               "--weights", "pretrained", "--wsol-method", "bas", "--train-layers", "last:3", "--epochs", "1",
               "--batch-size", "6", "--lr", "0.01", "--holdout", "0", "--select-by", "last", "--seed", "1",
               "--out", out])
    assert rc == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("evaluate with:")][0]
    assert "--backbone efficientnet_lite0+bas " in line + " "
    ck = torch.load(os.path.join(out, "best.pt"), map_location="cpu", weights_only=True)
    assert (ck["backbone"], ck["wsol_method"], ck["base_backbone"]) == ("efficientnet_lite0+bas", "bas",
                                                                       "efficientnet_lite0")
    cfg = json.load(open(os.path.join(out, "train_config.json")))
    assert (cfg["lr"], cfg["weight_decay"]) == (0.01, 5e-4)           # --lr given; BAS's weight decay
    log = pd.read_csv(os.path.join(out, "train_log.csv"))
    assert len(log) == 1 and log.n_train[0] == 12 and math.isfinite(log.train_loss[0])
    maps = {}
    for method in ("bas", "cam"):
        ev = str(tmp_path / f"eval-{method}")
        assert main(["-q", "evaluate", "--dataset", "synthetic", "--root", tiny_set,
                     "--backbone", "efficientnet_lite0+bas", "--weights", os.path.join(out, "best.pt"),
                     "--method", method, "--out", ev, "--save-cams", os.path.join(ev, "cams")]) == 0
        s = pd.read_csv(os.path.join(ev, "summary.csv")).iloc[0]
        assert s.n_images == 6 and 0 <= s.maxboxacc_v2 <= 100
        files = sorted(glob.glob(os.path.join(ev, "cams", "**", "*.npy"), recursive=True))
        maps[method] = [np.load(f) for f in files]
    assert len(maps["bas"]) == 6
    assert all(float(m.max()) > float(m.min()) for m in maps["bas"])   # a foreground map, not constant
    assert all(np.array_equal(a, b) for a, b in zip(maps["bas"], maps["cam"]))
