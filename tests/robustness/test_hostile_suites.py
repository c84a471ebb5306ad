"""Hostile input, round three: suite files. An empty list is an error, identical entries are an
error (they used to share one run id and one folder), a grid is counted before it is expanded and
a huge one refused with its size, YAML aliases are bounded, and a suite asking for CUDA on a
machine without it says so in ``--dry-run``. Through ``wsol suite`` (``wsol.cli.main``) and
``wsol.run_suite``.
"""
import textwrap
import time

import pytest

import wsol
from wsol.cli import main
from wsol.errors import WsolError
from wsol.suite import MAX_RUNS, MAX_YAML_NODES, load_suite


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return str(path)


def suite_text(methods="[cam]", backbones="[{name: tiny_test_net, weights: random}]", protocols="[wsoleval]",
               extra=""):
    return f"""\
        name: s
        datasets:
          - {{name: syn, adapter: synthetic, root: gen}}
        backbones: {backbones}
        methods: {methods}
        protocols: {protocols}
        options: {{device: cpu}}
        {extra}
        """


def _cli_error(capsys, path, *extra):
    rc = main(["-q", "suite", path, "--dry-run", *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# ------------------------------------------------------------------ empty lists
@pytest.mark.parametrize("key,value,line", [("methods", "[]", 5), ("protocols", "[]", 6), ("backbones", "[]", 4)])
def test_an_empty_list_is_an_error_not_the_default(tmp_path, capsys, key, value, line):
    """Before: `methods: []` silently became [cam]."""
    path = write(tmp_path / "s.yaml", suite_text(**{key: value}))
    err = _cli_error(capsys, path)
    assert f"{path}:{line}:" in err and f"'{key}' must be a non-empty list" in err
    with pytest.raises(WsolError, match=f"'{key}' must be a non-empty list"):
        wsol.run_suite(path, dry_run=True)


def test_an_empty_backbone_method_list_is_an_error(tmp_path, capsys):
    path = write(tmp_path / "s.yaml", suite_text(backbones="[{name: tiny_test_net, weights: random, methods: []}]"))
    assert "backbones[0].methods must be a non-empty list" in _cli_error(capsys, path)


# ------------------------------------------------------------------ identical entries
@pytest.mark.parametrize("kw,key,first_line", [
    (dict(backbones="\n          - {name: tiny_test_net, weights: random}\n          - {name: tiny_test_net, weights: random}"),
     "backbones[1] repeats backbones[0] (line 5)", 6),
    (dict(backbones="[tiny_test_net, {name: tiny_test_net}]"), "backbones[1] repeats backbones[0]", 4),
    (dict(methods="[cam, gradcam, cam]"), "methods[2] repeats methods[0]", 5),
    (dict(protocols="[wsoleval, wsoleval]"), "protocols[1] repeats protocols[0]", 6),
])
def test_identical_entries_are_an_error(tmp_path, capsys, kw, key, first_line):
    """Before: two identical backbone entries got one run id and wrote into one folder."""
    path = write(tmp_path / "s.yaml", suite_text(**kw))
    err = _cli_error(capsys, path)
    assert f"{path}:{first_line}:" in err and key in err and "remove one" in err


def test_entries_differing_in_id_are_two_runs(tmp_path):
    path = write(tmp_path / "s.yaml", suite_text(methods="[cam, {name: cam, id: cam_again}]"))
    df = wsol.run_suite(path, dry_run=True, out_dir=str(tmp_path / "o"))
    assert list(df.run_id) == ["syn__tiny_test_net__cam__wsoleval", "syn__tiny_test_net__cam_again__wsoleval"]


def test_a_suite_built_in_python_with_twin_entries_is_refused(tmp_path):
    from wsol.suite import MethodSpec

    suite = load_suite(write(tmp_path / "s.yaml", suite_text()))
    suite.methods.append(MethodSpec("cam"))
    with pytest.raises(WsolError, match="two identical entries make run 'syn__tiny_test_net__cam__wsoleval' twice"):
        wsol.run_suite(suite, dry_run=True)


# ------------------------------------------------------------------ grid size
def test_a_huge_grid_is_refused_with_its_size_before_expanding(tmp_path, capsys):
    """Before: a 100 x 100 x 100 grid hung in --dry-run."""
    names = ", ".join(f"{{name: d{i}, adapter: synthetic, root: gen}}" for i in range(100))
    bbs = ", ".join(f"{{name: tiny_test_net, id: b{i}}}" for i in range(100))
    ms = ", ".join(f"{{name: cam, id: m{i}}}" for i in range(100))
    path = write(tmp_path / "s.yaml", f"name: big\ndatasets: [{names}]\nbackbones: [{bbs}]\nmethods: [{ms}]\n")
    t0 = time.perf_counter()
    err = _cli_error(capsys, path)
    assert "the grid has 1,000,000 runs (100 datasets x 100 backbones x 100 methods x 1 protocols)" in err
    assert f"more than the {MAX_RUNS:,}" in err and time.perf_counter() - t0 < 30
    with pytest.raises(WsolError, match="1,000,000 runs"):
        wsol.run_suite(path, dry_run=True)


def test_grid_size_counts_per_backbone_method_lists(tmp_path):
    path = write(tmp_path / "s.yaml", suite_text(
        methods="[cam, gradcam, scorecam]", protocols="[wsoleval, cam2016]",
        backbones="[{name: tiny_test_net, methods: [cam]}, tiny_test_net_b]".replace("tiny_test_net_b",
                                                                                   "{name: tiny_test_net, id: t2}")))
    s = load_suite(path)
    assert s.size() == 1 * (1 + 3) * 2 == len(s.runs())


# ------------------------------------------------------------------ YAML aliases
def test_a_yaml_alias_bomb_is_bounded(tmp_path, capsys):
    """Nine levels of ten aliases each: 10^9 values once copied out. Refused from the text alone."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for k in range(1, 10):
        lines.append(f"a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 10) + "]")
    lines.append("name: *a9")
    path = write(tmp_path / "bomb.yaml", "\n".join(lines) + "\n")
    t0 = time.perf_counter()
    err = _cli_error(capsys, path)
    assert path in err and f"more than {MAX_YAML_NODES:,} YAML values" in err and time.perf_counter() - t0 < 30


def test_a_self_containing_alias_is_refused(tmp_path, capsys):
    path = write(tmp_path / "loop.yaml", "name: s\ndescription: &d [1, *d]\n")
    err = _cli_error(capsys, path)
    assert f"{path}:2:" in err and "contains itself" in err


def test_ordinary_aliases_still_work(tmp_path):
    path = write(tmp_path / "s.yaml", """\
        name: s
        datasets:
          - {name: syn, adapter: synthetic, root: gen, options: &o {n_classes: 2}}
          - {name: syn2, adapter: synthetic, root: gen, options: *o}
        backbones: [tiny_test_net]
        """)
    s = load_suite(path)
    assert s.datasets[1].options == {"n_classes": 2} and s.size() == 2


# ------------------------------------------------------------------ CUDA asked for, none here
def test_dry_run_says_a_cuda_suite_cannot_run_here(tmp_path, capsys, monkeypatch):
    """Before: the imagenet_backbones suite failed every run on a CPU machine and --dry-run said
    'would-run'. Now each run is would-fail with what to change."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("IMAGENET_ROOT", str(tmp_path))
    monkeypatch.delenv("WSOL_DEVICE", raising=False)
    assert main(["-q", "suite", "imagenet_backbones", "--dry-run", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if "__" in ln]
    assert rows and all("would-fail" in r and "CUDA is not available on this machine" in r and "WSOL_DEVICE=cpu" in r
                        for r in rows)
    monkeypatch.setenv("WSOL_DEVICE", "cpu")
    assert main(["-q", "suite", "imagenet_backbones", "--dry-run", "--out", str(tmp_path / "o")]) == 0
    assert "CUDA" not in capsys.readouterr().out
