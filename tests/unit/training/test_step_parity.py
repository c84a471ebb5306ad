"""Step parity with wsolevaluation's trainer (``../shared/fixtures/wsoleval-train``).

Each case of the fixtures is run through wsol's own pieces: the model builder
(``create_backbone`` of the method's architecture with ``--weights`` the filled reference
checkpoint), the optimizer of the default (reference) recipe (``make_optimizer``) and the
training step with the method's loss (``train_step``). Two SGD steps on the fixtures' 4
images; then the losses and per-entry checksums are compared as the fixtures' README says.
A fast subset runs always; all 26 cases are ``slow``.
"""
from __future__ import annotations

import json
import math
import os
import random
import types
from typing import Dict, List

import numpy as np
import pytest
import torch

from shared_data import SHARED_FIXTURES
from wsoleval_fixtures import filled_state_dict

from wsol.models.registry import create_backbone
from wsol.training import train as tr
from wsol.training.methods import create_train_method
from wsol.training.methods import has as has_module

TRAIN = os.path.join(SHARED_FIXTURES, "wsoleval-train")
MODELS = os.path.join(SHARED_FIXTURES, "wsoleval-models")
CASES = sorted(f[:-5] for f in os.listdir(TRAIN) if f.endswith(".json") and f != "schedule.json") \
    if os.path.isdir(TRAIN) else []
FAST = ("resnet50_has",)  # Nesterov, the 10x groups and HaS's injected draws; ~1 min on 2 cores
# the step-1 update norm: float noise stays below 1e-2, a wrong optimizer or loss gives ~0.5
TOL_UPDATE_1 = 2e-2
# Cases whose method makes the batch constant: HaS at drop rate 1 hides every cell, so the 4
# images are all zero. A train-mode batch norm after a convolution of a constant input has
# zero batch variance; its backward subtracts the mean gradient and scales by 1/sqrt(eps)
# (~316), so the exact gradient of the layers feeding it (ResNet50's conv1 -> bn1 -> layer1.0
# 1x1 convs) is zero and their float32 gradient is rounding noise x 316, which differs with
# the thread count and the CPU's kernels (1 vs 2 threads here: 0.49 vs 0.56 on one entry).
# The fixture recorded that noise too; those entries are found with a float64 gradient and
# left out of the per-entry comparison (see docs/training.md, "Step parity").
CONSTANT_BATCH = ("resnet50_has_p1",)
#: an entry's exact gradient is zero when its float64 gradient is below this x the largest one
ZERO_GRAD_REL = 1e-6


def _need_fixtures() -> None:
    if not os.path.isdir(TRAIN) or not os.path.isdir(MODELS):
        pytest.skip("../shared/fixtures/wsoleval-train not present")


@pytest.fixture(scope="module", autouse=True)
def two_threads():
    """The fixtures' observed levels were measured with 2 threads."""
    n = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(n)


def method_options(fx: dict) -> Dict[str, object]:
    """wsol's --<method>-<option> values for the case's reference hyperparameters."""
    h, m = fx["hyper"], fx["method"]
    if m == "has":
        return {"grid_size": h["has_grid_size"], "drop_rate": h["has_drop_rate"]}
    if m == "cutmix":
        return {"beta": h["cutmix_beta"], "prob": h["cutmix_prob"]}
    if m == "adl":
        return {"drop_rate": h["adl_drop_rate"], "threshold": h["adl_threshold"]}
    if m == "acol":
        return {"threshold": h["acol_threshold"]}
    if m == "spg":
        names = ("threshold_1h", "threshold_1l", "threshold_2h", "threshold_2l", "threshold_3h", "threshold_3l")
        return dict(zip(names, [v for pair in h["spg_thresholds"] for v in pair]))
    return {}


class PythonRandomTorch(types.SimpleNamespace):
    """``torch`` for HaS's module with ``torch.rand`` drawing python ``random.random()`` in
    C order (image, cell row, cell column), the reference's draws."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def rand(shape, generator=None, device=None):
        n = math.prod(shape)
        return torch.tensor([random.random() for _ in range(n)], dtype=torch.float32).reshape(shape)


def checksums(sd: Dict[str, torch.Tensor], filled: Dict[str, torch.Tensor], names: List[str]) -> np.ndarray:
    """[entry] -> (sum, l2, l2 of the change since the fill), float64."""
    out = []
    for k in names:
        v, f = sd[k].double(), filled[k].double()
        out.append((float(v.sum()), float(v.norm()), float((v - f).norm())))
    return np.array(out)


def load_case(case: str, tmp_path):
    """(fixture, filled state dict, checkpoint path, method, backbone, images, labels)."""
    with open(os.path.join(TRAIN, f"{case}.json")) as f:
        fx = json.load(f)
    h = fx["hyper"]
    filled = filled_state_dict([(k, list(s)) for k, s in fx["keys"]])
    weights = str(tmp_path / f"{case}.pt")
    torch.save({"architecture": fx["arch"], "epoch": 0, "state_dict": filled}, weights)
    method = create_train_method(fx["method"], method_options(fx))
    arch, model_opts = tr.method_architecture(method, fx["wsol_backbone"])
    bb = create_backbone(arch, weights, num_classes=h["num_classes"], options=model_opts)
    images = torch.from_numpy(np.load(os.path.join(MODELS, "inputs.npy")))
    with open(os.path.join(MODELS, "labels.json")) as f:
        labels = torch.tensor(json.load(f)["labels"], dtype=torch.int64)
    return fx, filled, method, bb, images, labels


def zero_gradient_entries(case: str, tmp_path) -> List[str]:
    """Parameters whose step-1 gradient is zero in exact arithmetic: their float64 gradient
    (same model, batch and loss in float64) is below ``ZERO_GRAD_REL`` x the largest."""
    _, _, method, bb, images, labels = load_case(case, tmp_path)
    bb.double().train()
    torch.manual_seed(0)
    loss, _ = method.loss(bb, images.double(), labels)
    loss.backward()
    norms = {n: float(p.grad.norm()) for n, p in bb.net.named_parameters() if p.grad is not None}
    top = max(norms.values())
    return sorted(n for n, v in norms.items() if v < ZERO_GRAD_REL * top)


def run_case(case: str, tmp_path, monkeypatch) -> dict:
    """Two reference steps through wsol; returns what the comparison needs."""
    fx, filled, method, bb, images, labels = load_case(case, tmp_path)
    h = fx["hyper"]
    keys = [(k, list(s)) for k, s in fx["keys"]]
    trainable, _, _ = tr.set_trainable(bb, "all")
    opt = tr.make_optimizer(bb, trainable, tr.TrainConfig(lr=h["lr"], weight_decay=h["weight_decay"],
                                                          momentum=h["momentum"], new_lr_mult=h["lr_classifier_ratio"]))
    names = {id(p): n for n, p in bb.net.named_parameters()}
    groups = [sorted(names[id(p)] for p in g["params"]) for g in opt.param_groups]
    if fx["method"] == "has":
        monkeypatch.setattr(has_module, "torch", PythonRandomTorch())
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    bb.train()
    random.seed(h["seed"])
    np.random.seed(h["seed"])
    torch.manual_seed(h["seed"])
    sums, losses = [], []
    order = [k for k, _ in keys]
    sums.append(checksums(bb.net.state_dict(), filled, order))
    for _ in range(h["steps"]):
        loss, _ = tr.train_step(bb, opt, scaler, images.clone(), labels, None, method)
        losses.append(float(loss))
        sums.append(checksums(bb.net.state_dict(), filled, order))
    return {"fx": fx, "groups": groups, "losses": losses, "sums": sums, "excluded": []}


def differences(got: np.ndarray, ref: np.ndarray, keep: np.ndarray | None = None):
    """(max checksum difference, max update-norm difference) over the entries (README),
    or over those where ``keep`` is true."""
    l2 = np.where(ref[:, 1] > 0, ref[:, 1], 1.0)
    chk = np.maximum(np.abs(got[:, 0] - ref[:, 0]), np.abs(got[:, 1] - ref[:, 1])) / l2
    ch = np.where(ref[:, 2] > 0, ref[:, 2], 1.0)
    upd = np.abs(got[:, 2] - ref[:, 2]) / ch
    if keep is not None:
        chk, upd = chk[keep], upd[keep]
    return float(chk.max()), float(upd.max())


def check_case(res: dict) -> None:
    """The README's comparison: the same 10x group, the same filled weights, then the losses
    and checksums; the step-1 update norm is the sharp test (float noise < 1e-2, a wrong
    optimizer or loss ~0.5). Step 2 follows one large step on randomly filled nets and
    amplifies rounding noise (the README saw 3e-4 on loss 2 from the thread count alone),
    so it gets looser bounds that still catch a real difference (7-17 % on loss 2).
    ``res["excluded"]`` (constant-batch cases) names entries whose exact gradient is zero:
    their recorded update is rounding noise, so they leave the per-entry comparison, and
    step 2, which starts from that noise, is judged on its loss only."""
    fx = res["fx"]
    ref_groups = [sorted(g["params"]) for g in fx["param_groups"]]
    assert res["groups"] == ref_groups, "the 10x group differs"
    ref = [np.array(s) for s in fx["checksums"]]
    assert np.allclose(res["sums"][0], ref[0], rtol=1e-6, atol=1e-6), "the filled weights differ"
    excluded = set(res["excluded"])
    keep = np.array([k not in excluded for k, _ in fx["keys"]])
    l1, l2 = fx["losses"]
    chk1, upd1 = differences(res["sums"][1], ref[1], keep)
    chk2, upd2 = differences(res["sums"][2], ref[2], keep)
    got = (f"loss 1 {res['losses'][0]:.7g} vs {l1:.7g}, loss 2 {res['losses'][1]:.7g} vs {l2:.7g}, "
           f"step 1 checksum {chk1:.3g} update {upd1:.3g}, step 2 checksum {chk2:.3g} update {upd2:.3g}"
           f"{f', without {len(excluded)} zero-gradient entries' if excluded else ''}")
    assert res["losses"][0] == pytest.approx(l1, rel=1e-5), got
    # the checksum follows the update (a 1e-2 update difference moves it by 1e-2 x update/l2);
    # in a constant batch the next layers' batch variance is tiny too (only the zero padding
    # differs), so layer1.0's biases move by 6 % of their norm with noise ~7e-3 (9.8e-4 here)
    assert upd1 < TOL_UPDATE_1 and chk1 < (5e-3 if excluded else 1e-3), got
    assert res["losses"][1] == pytest.approx(l2, rel=1e-2), got
    if not excluded:
        assert upd2 < 0.25 and chk2 < 5e-2, got


def parity_result(case: str, tmp_path, monkeypatch) -> dict:
    """:func:`run_case`, with the zero-gradient entries of a constant-batch case."""
    res = run_case(case, tmp_path, monkeypatch)
    if case in CONSTANT_BATCH:
        res["excluded"] = zero_gradient_entries(case, tmp_path)
        # a handful of early entries, never the bulk of the net (320 entries in ResNet50)
        assert 0 < len(res["excluded"]) <= 10, res["excluded"]
    return res


@pytest.mark.parametrize("case", [c for c in CASES if c in FAST] or ["resnet50_cam"])
def test_step_parity_fast(case, tmp_path, monkeypatch):
    _need_fixtures()
    check_case(parity_result(case, tmp_path, monkeypatch))


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES or ["none"])
def test_step_parity_all_cases(case, tmp_path, monkeypatch):
    _need_fixtures()
    check_case(parity_result(case, tmp_path, monkeypatch))


@pytest.mark.slow
def test_without_nesterov_the_first_update_is_off_by_half(tmp_path, monkeypatch):
    """The check can fail: the old default (no Nesterov) misses the step-1 update by ~0.47."""
    _need_fixtures()
    real = tr.make_optimizer
    monkeypatch.setattr(tr, "make_optimizer", lambda bb, t, cfg: real(bb, t, tr.fill_recipe(
        tr.TrainConfig(**{**cfg.__dict__, "recipe": "wsol", "nesterov": False}))))
    res = run_case("resnet50_cam", tmp_path, monkeypatch)
    _, upd1 = differences(res["sums"][1], np.array(res["fx"]["checksums"][1]))
    assert 0.4 < upd1 < 0.55


def test_schedule_matches_the_reference():
    """schedule.json: the rate of every epoch for three (epochs, decay frequency) pairs."""
    _need_fixtures()
    with open(os.path.join(TRAIN, "schedule.json")) as f:
        for s in json.load(f):
            got = [s["base_lr"] * tr.lr_factor(e, s["lr_decay_frequency"]) for e in range(1, s["epochs"] + 1)]
            assert got == s["lr_per_epoch"]
