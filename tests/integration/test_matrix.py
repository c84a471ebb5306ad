"""The end-to-end matrix: every registered CAM method, every dataset adapter and every
subcommand through the real entry point (``wsol.cli.main``, what the ``wsol`` script runs),
on tiny drawn images and a tiny fixed backbone (``matrix_colour_net``, below).

The registries are enumerated when the tests are collected, so a method, adapter or
subcommand added later is covered without editing this file: an adapter must provide its
``example`` hook (``register_dataset(..., example=writer)``, a tiny dataset in its own
layout), and a new subcommand fails here until it gets an invocation in ``INVOCATIONS``.
"""
import argparse
import json
import os

import numpy as np
import pandas as pd
import pytest

from wsol.cams.base import list_methods
from wsol.cli import build_parser, main
from wsol.datasets.base import build_dataset, list_datasets
from wsol.localize.protocols import PROTOCOLS

def _register_colour_net():
    """'matrix_colour_net': a fixed, non-random backbone whose CAMs mean something on the
    example images (coloured rectangles): channel c of the 28x28 feature map detects colour
    c (1x1 conv on 8x8 average-pooled pixels, ReLU), the head is GAP + linear with 4 * I, so
    every method's map of the true class lights up the drawn object."""
    import torch
    from torch import nn

    from wsol.models.backbone import BackboneInfo, NetBackbone
    from wsol.models.registry import BACKBONES, register_backbone

    info = BackboneInfo("matrix_colour_net", "wsol", "features", 8, True, "test-only fixed colour detector")
    if "matrix_colour_net" in BACKBONES:
        return

    def build(pretrained, num_classes):
        net = nn.Module()
        net.features = nn.Sequential(nn.AvgPool2d(8), nn.Conv2d(3, 3, 1), nn.ReLU())
        net.fc = nn.Linear(3, num_classes)
        with torch.no_grad():
            net.features[1].weight.copy_((3 * torch.eye(3) - 1).view(3, 3, 1, 1))
            net.features[1].bias.zero_()
            net.fc.weight.zero_()
            net.fc.bias.zero_()
            for c in range(min(3, num_classes)):
                net.fc.weight[c, c] = 4.0
        return NetBackbone(net, BackboneInfo(**vars(info)), lambda n, x: n.features(x), "fc")

    register_backbone(info, build, default_classes=3)


_register_colour_net()
METHODS = [m.name for m in list_methods()]
ADAPTERS = [d.name for d in list_datasets()]
PROTOCOL_NAMES = PROTOCOLS.names()
METRICS = ["n_images", "gt_known_loc", "maxboxacc", "maxboxacc_v2", "maxboxacc_iou30", "maxboxacc_iou50",
           "maxboxacc_iou70", "tau_iou30", "tau_iou50", "tau_iou70", "loc_tau", "mean_iou", "pxap", "piou",
           "pointing_game", "energy_pointing_game"]
TINY = ["--backbone", "matrix_colour_net", "--weights", "random", "--batch-size", "8"]


def _tiny_for(method):
    """TINY, or for a method that needs another kind of backbone (a ViT's attention) the one
    it names as its ``example_backbone``, random weights."""
    from wsol.cams.base import METHODS as REGISTRY

    example = REGISTRY.get(method).example_backbone
    return TINY if not example else ["--backbone", example, "--weights", "random", "--batch-size", "8"]


def _subcommands():
    ap = build_parser()
    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


SUBCOMMANDS = _subcommands()


def _run(capsys, *argv):
    rc = main(["-q", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _data_argv(name, example):
    root, split, options = example
    argv = ["--dataset", name, "--root", root, "--split", split]
    for k, v in options.items():
        argv += ["--dataset-option", f"{k}={v}"]
    return argv


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    """Each adapter's own tiny example: name -> (root, split, options)."""
    base = tmp_path_factory.mktemp("examples")
    return {d.name: d.example(str(base / d.name)) for d in list_datasets() if d.example is not None}


@pytest.fixture(scope="module")
def method_runs(examples, tmp_path_factory):
    """`wsol evaluate --method M --save-cams` for every registered method, on the CUB example."""
    base = tmp_path_factory.mktemp("methods")
    rcs = {}
    for m in METHODS:
        rcs[m] = main(["-q", "evaluate", *_data_argv("cub", examples["cub"]), *_tiny_for(m), "--method", m,
                       "--out", str(base / m), "--save-cams", str(base / m / "cams")])
    return base, rcs


def _maps(folder):
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs if f.endswith(".npy"))
    return [np.load(f) for f in files]


# ---------------------------------------------------------------- methods
@pytest.mark.parametrize("method", METHODS)
def test_every_method_through_evaluate(method_runs, method):
    base, rcs = method_runs
    assert rcs[method] == 0, f"wsol evaluate --method {method} failed"
    summary = pd.read_csv(base / method / "summary.csv")
    assert summary.method[0] == method and summary.n_images[0] == 3
    maps, centre = _maps(base / method / "cams"), _maps(base / "center_gaussian" / "cams")
    assert len(maps) == 3
    assert any(m.max() > m.min() for m in maps), f"{method}: every map is constant"
    if method != "center_gaussian":
        assert any(not np.array_equal(a, b) for a, b in zip(maps, centre)), f"{method} = centre baseline"


@pytest.mark.parametrize("method", METHODS)
def test_every_methods_maps_through_score_and_report(examples, method_runs, method, tmp_path, capsys):
    """The heatmaps each method's evaluate run saved re-score to the same numbers, and its run
    folder renders as a report."""
    base, rcs = method_runs
    assert rcs[method] == 0
    run = base / method
    rc, _, err = _run(capsys, "score", "--cams", run / "cams", *_data_argv("cub", examples["cub"]),
                      "--out", tmp_path / "sc")
    assert rc == 0, err
    a, b = pd.read_csv(run / "summary.csv").iloc[0], pd.read_csv(tmp_path / "sc" / "summary.csv").iloc[0]
    assert a.maxboxacc_v2 == b.maxboxacc_v2 and a.gt_known_loc == b.gt_known_loc
    rc, _, err = _run(capsys, "report", run, "--cams", run / "cams", "--out", tmp_path / "r.html")
    assert rc == 0, err
    assert "<html" in (tmp_path / "r.html").read_text()[:500].lower()


@pytest.mark.parametrize("protocol", PROTOCOL_NAMES)
def test_every_protocol_through_evaluate(examples, protocol, tmp_path, capsys):
    """Every protocol runs through `wsol evaluate`, and its summary row carries MaxBoxAccV2."""
    out = tmp_path / protocol
    rc, _, err = _run(capsys, "evaluate", *_data_argv("cub", examples["cub"]), *TINY, "--protocol", protocol,
                      "--out", out)
    assert rc == 0, err
    row = pd.read_csv(out / "summary.csv").iloc[0]
    assert row.protocol == protocol and row.n_images == 3
    assert 0 <= row.maxboxacc_v2 <= 100 and 0 <= row.gt_known_loc <= 100
    per = pd.read_csv(out / "per_image.csv")
    assert len(per) == 3 and (per.loc_tau == row.loc_tau).all()


# ---------------------------------------------------------------- adapters
def test_every_adapter_has_an_example_hook():
    missing = [d.name for d in list_datasets() if d.example is None]
    assert not missing, f"adapters without an example hook (register_dataset(..., example=...)): {missing}"


@pytest.mark.parametrize("name", ADAPTERS)
def test_every_adapter_through_evaluate_score_check_export(name, examples, tmp_path, capsys):
    data = _data_argv(name, examples[name])
    rc, _, err = _run(capsys, "evaluate", *data, *TINY, "--out", tmp_path / "ev", "--save-cams", tmp_path / "cams")
    assert rc == 0, err
    ev = pd.read_csv(tmp_path / "ev" / "summary.csv").iloc[0]
    root, split, options = examples[name]
    ds = build_dataset(name, root, split, **options)
    assert ev.n_images == len(ds) > 0 and ev.dataset == name
    rc, _, err = _run(capsys, "score", "--cams", tmp_path / "cams", *data, "--out", tmp_path / "sc")
    assert rc == 0, err
    sc = pd.read_csv(tmp_path / "sc" / "summary.csv").iloc[0]
    np.testing.assert_equal([sc[c] for c in METRICS], [ev[c] for c in METRICS])  # NaN == NaN here
    rc, out, err = _run(capsys, "check-data", *data)
    assert rc == 0, out + err
    rc, _, err = _run(capsys, "export-metadata", *data, "--out", tmp_path / "meta")
    assert rc == 0, err
    back = build_dataset("wsoleval", str(tmp_path / "meta"), "test")
    assert [(s.image_id, s.label) for s in back.samples] == [(s.image_id, s.label) for s in ds.samples]
    for a, b in zip(back.samples, ds.samples):
        np.testing.assert_array_equal(a.boxes, b.boxes)


# ---------------------------------------------------------------- subcommands
@pytest.mark.parametrize("cmd", SUBCOMMANDS)
def test_every_subcommand_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and cmd in out.splitlines()[0]


def _suite(ctx):
    cub_root, split, _ = ctx.examples["cub"]
    path = ctx.tmp / "tiny.yaml"
    path.write_text(json.dumps({
        "name": "tiny", "datasets": [{"name": "ex", "adapter": "cub", "root": cub_root, "split": split}],
        "backbones": [{"name": "matrix_colour_net", "weights": "random"}], "methods": ["cam", "gradcam"],
        "protocols": ["wsoleval"], "options": {"batch_size": 8}}))
    return path


def inv_suite(ctx):
    path = _suite(ctx)
    rc, out, err = ctx.run("suite", path, "--out", ctx.tmp / "suite", "--dry-run")
    assert rc == 0, err
    assert "gradcam" in out and not (ctx.tmp / "suite" / "summary.csv").exists()
    rc, _, err = ctx.run("suite", path, "--out", ctx.tmp / "suite")
    assert rc == 0, err
    assert set(pd.read_csv(ctx.tmp / "suite" / "summary.csv").status) == {"ok"}


def inv_compare(ctx):
    inv_suite(ctx)
    rc, _, err = ctx.run("compare", ctx.tmp / "suite")
    assert rc == 0, err
    assert (ctx.tmp / "suite" / "comparison.csv").exists()


def inv_report(ctx):
    run = ctx.method_runs[0] / "gradcam"
    rc, _, err = ctx.run("report", run, "--cams", run / "cams", "--out", ctx.tmp / "r.html")
    assert rc == 0, err
    assert "<html" in (ctx.tmp / "r.html").read_text()[:500].lower()


def inv_overlay(ctx):
    root, split, options = ctx.examples["cub"]
    image = build_dataset("cub", root, split, **options).samples[0].path
    for method in ("cam", "gradcam", "pc1", "bas"):  # bas: on its example backbone
        rc, out, err = ctx.run("overlay", "--image", image, *_tiny_for(method)[:4],
                               "--method", method, "--out", ctx.tmp / f"{method}.png")
        assert rc == 0, err
        assert (ctx.tmp / f"{method}.png").stat().st_size > 0 and "top-" in out


def inv_models(ctx):
    rc, out, _ = ctx.run("models", "resnet")  # a bare word matches as a substring
    assert rc == 0 and "resnet50" in out and "resnet50_s1" in out and "efficientnet" not in out
    assert "weights" in out.splitlines()[0]


def inv_methods(ctx):
    rc, out, _ = ctx.run("methods")
    assert rc == 0 and all(m in out for m in METHODS)


def inv_datasets(ctx):
    rc, out, _ = ctx.run("datasets")
    assert rc == 0 and all(d in out for d in ADAPTERS)


def inv_make_synthetic(ctx):
    rc, _, err = ctx.run("make-synthetic", "--out", ctx.tmp / "syn", "--classes", "2", "--train-per-class", "1",
                         "--test-per-class", "1", "--image-size", "64", "48")
    assert rc == 0, err
    assert len(build_dataset("cub", str(ctx.tmp / "syn"), "test")) == 2


def inv_bench(ctx):
    rc, out, err = ctx.run("bench", "--backbone", "matrix_colour_net", "--weights", "random", "--method", "gradcam",
                           "--images", "4", "--unique-images", "4", "--batch-size", "2", "--repeats", "1",
                           "--warmup", "0", "--cache-dir", ctx.tmp / "cache")
    assert rc == 0, err
    (csv,) = (ctx.tmp / "cache" / "throughput").glob("*.csv")  # the default: the cache, not the working tree
    assert len(pd.read_csv(csv)) == 1 and "forward-only" in out


def inv_train(ctx):
    root, _, _ = ctx.examples["cub"]
    rc, _, err = ctx.run("train", "--dataset", "cub", "--root", root, "--backbone", "matrix_colour_net",
                         "--weights", "random", "--epochs", "1", "--batch-size", "4", "--out", ctx.tmp / "train")
    assert rc == 0, err
    assert (ctx.tmp / "train" / "last.pt").exists() and len(pd.read_csv(ctx.tmp / "train" / "train_log.csv")) == 1


def _covered_by_adapter_matrix(ctx):
    """evaluate, score, check-data, export-metadata: run for every adapter above."""


INVOCATIONS = {
    "evaluate": _covered_by_adapter_matrix, "score": _covered_by_adapter_matrix,
    "check-data": _covered_by_adapter_matrix, "export-metadata": _covered_by_adapter_matrix,
    "suite": inv_suite, "compare": inv_compare, "report": inv_report, "overlay": inv_overlay,
    "models": inv_models, "methods": inv_methods, "datasets": inv_datasets,
    "make-synthetic": inv_make_synthetic, "bench": inv_bench, "train": inv_train,
}
#: Subcommands not run here, with the reason.
NOT_RUN = {"demo": "fine-tunes efficientnet_lite0 (minutes): tests/unit/training/test_train.py::test_demo_quick runs it (slow)",
           "tune": "runs whole wsol train trials (minutes): tests/unit/training/test_tune.py runs it, two processes and a kill (slow)"}


class _Ctx:
    def __init__(self, tmp, examples, method_runs, capsys):
        self.tmp, self.examples, self.method_runs, self._capsys = tmp, examples, method_runs, capsys

    def run(self, *argv):
        return _run(self._capsys, *argv)


@pytest.mark.parametrize("cmd", SUBCOMMANDS)
def test_every_subcommand_runs_for_real(cmd, examples, method_runs, tmp_path, capsys, monkeypatch):
    if cmd in NOT_RUN:
        pytest.skip(NOT_RUN[cmd])
    assert cmd in INVOCATIONS, f"new subcommand {cmd!r}: add a real invocation to INVOCATIONS in {__file__}"
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # outputs go where the options say, never into the working directory
    INVOCATIONS[cmd](_Ctx(tmp_path, examples, method_runs, capsys))
    assert os.listdir(work) == [], f"wsol {cmd} wrote into the working directory: {os.listdir(work)}"


# ---------------------------------------------------------------- API == CLI
def test_api_and_cli_give_identical_csvs(examples, tmp_path, capsys):
    import wsol

    root, split, options = examples["wsoleval"]
    wsol.evaluate(dataset="wsoleval", root=root, split=split, dataset_options=dict(options),
                  backbone="matrix_colour_net", weights="random", method="gradcampp", batch_size=8,
                  out=str(tmp_path / "api"), progress=False)
    rc, _, err = _run(capsys, "evaluate", *_data_argv("wsoleval", examples["wsoleval"]), *TINY,
                      "--method", "gradcampp", "--out", tmp_path / "cli")
    assert rc == 0, err
    for f in ("per_image.csv", "curves.csv"):
        assert (tmp_path / "api" / f).read_bytes() == (tmp_path / "cli" / f).read_bytes(), f
    a = pd.read_csv(tmp_path / "api" / "summary.csv").drop(columns=["images_per_s", "date"])
    b = pd.read_csv(tmp_path / "cli" / "summary.csv").drop(columns=["images_per_s", "date"])
    pd.testing.assert_frame_equal(a, b)
