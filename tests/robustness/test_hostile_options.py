"""Hostile input, round three: every option reaches the code through one validation, whatever
the door -- the Python API (``wsol.evaluate``, ``wsol.train``), a suite YAML, the CLI and its
``--model-option / --method-option / --dataset-option KEY=VALUE``. Types are strict (no truthy
strings), numbers finite, ranges bounded by what a run would allocate, unknown keys refused
with the valid ones listed. Ends with one hypothesis fuzz test per entry point over every
declared option (``FUZZ_EXAMPLES`` examples, default 30).
"""
import math
import os
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wsol
from cub_fixture import make_cub
from wsol.cli import main
from wsol.engine.config import EvalConfig
from wsol.utils.options import options_of
from wsol.errors import WsolError

N = int(os.environ.get("FUZZ_EXAMPLES", "30"))
SETTINGS = dict(deadline=None, database=None, suppress_health_check=list(HealthCheck))
TINY = dict(backbone="tiny_test_net", weights="random", progress=False)


@pytest.fixture(scope="module")
def cub(tmp_path_factory):
    root = tmp_path_factory.mktemp("opts") / "cub"
    make_cub(str(root), n_per_class=1)
    return str(root)


def _rc(argv) -> int:
    """``wsol ARGV``'s exit status, whether the parser refuses (SystemExit) or the command does."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("WARNING", "INFO"))]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ------------------------------------------------------------------ the cases, through the API
API_CASES = [
    (dict(pointing_tolerance=float("nan")), "pointing_tolerance must be a number in [0, 320]"),
    (dict(pointing_tolerance=float("inf")), "pointing_tolerance must be"),
    (dict(pointing_tolerance=1e300), "pointing_tolerance must be"),
    (dict(pointing_tolerance=-5.0), "pointing_tolerance must be"),
    (dict(distributed="bogus"), "distributed must be one of auto, off"),
    (dict(new_head="no"), "new_head must be true or false, got 'no'"),
    (dict(exclude_skipped="false"), "exclude_skipped must be true or false, got 'false'"),
    (dict(channels_last=1), "channels_last must be true or false"),
    (dict(seed=2 ** 80), "seed must be an integer in 0..4294967295"),
    (dict(seed=float("nan")), "seed must be an integer"),
    (dict(cam_step=1e-7), "cam_step must be a number in [0.0001, 1) (at most 10,000 thresholds)"),
    (dict(batch_size=True), "batch_size must be an integer"),
    (dict(limit="3"), "limit must be an integer"),
    (dict(method="random", method_options={"seed": float("nan")}), "random option seed must be an integer"),
    (dict(method="gradcam", method_options={"rleu": True}), "method 'gradcam' has no option 'rleu'; did you mean 'relu'? (valid: relu)"),
    (dict(method="gradcam", method_options={"relu": "maybe"}), "gradcam option relu must be true or false"),
    (dict(method="center_gaussian", method_options={"sigma": -1}), "center_gaussian option sigma must be a number in (0, 10]"),
    (dict(method="scorecam", method_options={"method_batch": 10 ** 9}), "method_batch must be an integer in 1..65536"),
    (dict(backbone="vgg16_gap", model_options={"adl_drop_rate": float("nan")}),
     "model option adl_drop_rate of 'vgg16_gap' must be a number in [0, 1], got nan"),
    (dict(backbone="vgg16_gap", model_options={"adl_drop_rate": 1.5}), "model option adl_drop_rate of 'vgg16_gap' must be a number in [0, 1], got 1.5"),
    (dict(backbone="vgg16_gap", model_options={"adl": "nope"}), "model option adl of 'vgg16_gap' must be true or false"),
    (dict(backbone="vgg16_gap", model_options={"adl_rate": 0.5}), "has no model option 'adl_rate'"),
    (dict(dataset_options={"num_classes": 10 ** 9}), "num_classes takes an integer in 1..100000"),
    (dict(dataset_options={"seg_threshold": float("nan")}), "seg_threshold must be a gray level in [0, 255)"),
    (dict(dataset_options={"segmentation": "off"}), "has no option 'segmentation'"),
]


@pytest.mark.parametrize("kw,msg", API_CASES, ids=[str(k) for k, _ in API_CASES])
def test_the_api_refuses_what_the_cli_refuses(cub, tmp_path, kw, msg):
    """Before: NaN/inf tolerances crashed mid-run, truthy strings were accepted, seed=2**80
    overflowed, a misspelt method option was ignored, adl_drop_rate=nan was accepted."""
    kw = {**TINY, **kw}
    with pytest.raises(WsolError) as e:
        wsol.evaluate(dataset="cub", root=cub, out=str(tmp_path / "o"), **kw)
    assert msg in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "o").exists()


def test_the_synthetic_set_refuses_a_127_hour_size(tmp_path):
    with pytest.raises(WsolError, match=r"synthetic n_train_per_class must be an integer in 0\.\.100000"):
        wsol.evaluate(dataset="synthetic", root=str(tmp_path / "syn"), dataset_options={"n_train_per_class": 10 ** 7},
                      **TINY)
    with pytest.raises(WsolError, match="at most 100,000 images"):
        wsol.evaluate(dataset="synthetic", root=str(tmp_path / "syn"),
                      dataset_options={"n_classes": 200, "n_train_per_class": 1000}, **TINY)
    assert not (tmp_path / "syn").exists()


@pytest.mark.parametrize("kw,msg", [(dict(momentum=-1.0), "momentum must be a number in [0, 1)"),
                                    (dict(lr=float("nan")), "lr must be a number in (0, 10]"),
                                    (dict(nesterov="false"), "nesterov must be true or false"),
                                    (dict(epochs=10 ** 9), "epochs must be an integer in 1..10000"),
                                    (dict(seed=2 ** 80), "seed must be an integer in 0..4294967295"),
                                    (dict(wsol_method="has", method_options={"grid_size": "nan"}), "has_grid_size must be an integer"),
                                    (dict(wsol_method="adl", method_options={"drop_rate": float("nan")}),
                                     "adl_drop_rate must be a number in [0, 1], got nan")])
def test_wsol_train_refuses_before_any_work(cub, tmp_path, kw, msg):
    """Before: momentum=-1 was a torch traceback, 'false' a truthy nesterov."""
    with pytest.raises(WsolError) as e:
        wsol.train(dataset="cub", root=cub, split="train", out=str(tmp_path / "t"), epochs=kw.pop("epochs", 1),
                   **{**TINY, **kw})
    assert msg in str(e.value)
    assert not (tmp_path / "t").exists()


# ------------------------------------------------------------------ the CLI and its KEY=VALUE options
CLI_CASES = [
    (["--cam-step", "1e-7"], "cam_step must be a number in [0.0001, 1)"),
    (["--pointing-tolerance", "1e300"], "pointing_tolerance must be"),
    (["--method", "gradcam", "--method-option", "rleu=1"], "method 'gradcam' has no option 'rleu'"),
    (["--method", "random", "--method-option", "seed=nan"], "random option seed must be an integer"),
    (["--method", "random", "--method-option", "seed=1_0"], "random option seed must be an integer"),
    (["--backbone", "vgg16_gap", "--model-option", "adl_drop_rate=nan"], "model option adl_drop_rate of 'vgg16_gap' must be a number in [0, 1], got nan"),
    (["--dataset-option", "seg_threshold=-1"], "seg_threshold must be a gray level in [0, 255)"),
    (["--dataset-option", "num_classes=1000000000"], "num_classes takes an integer in 1..100000"),
]


@pytest.mark.parametrize("args,msg", CLI_CASES, ids=[" ".join(a) for a, _ in CLI_CASES])
def test_the_cli_refuses_in_one_line(cub, tmp_path, capsys, args, msg):
    """Before: --cam-step 1e-7 allocated ten million thresholds (a traceback)."""
    base = ["-q", "evaluate", "--root", cub, "--backbone", "tiny_test_net", "--weights", "random",
            "--out", str(tmp_path / "o")]
    if "--backbone" in args:
        base = base[:5] + base[7:]
    assert _rc(base + args) == 2
    assert msg in _one_line(capsys)
    assert not (tmp_path / "o").exists()


def test_wsol_train_cli_refuses_a_huge_seed(cub, tmp_path, capsys):
    assert _rc(["-q", "train", "--root", cub, "--backbone", "tiny_test_net", "--weights", "random",
                "--seed", str(2 ** 80), "--out", str(tmp_path / "t")]) == 2
    assert "seed must be an integer in 0..4294967295" in _one_line(capsys) and not (tmp_path / "t").exists()


# ------------------------------------------------------------------ suite YAML
def _suite(tmp_path, cub, options="", method="cam", method_options="{}", backbone_options="{}"):
    p = tmp_path / "s.yaml"
    p.write_text(textwrap.dedent(f"""\
        name: s
        datasets:
          - {{name: cub, root: {cub}}}
        backbones:
          - {{name: tiny_test_net, weights: random, options: {backbone_options}}}
        methods:
          - {{name: {method}, options: {method_options}}}
        options: {{{options}}}
        """))
    return str(p)


@pytest.mark.parametrize("options,msg", [("pointing_tolerance: .nan", "pointing_tolerance must be"),
                                         ("seed: 1208925819614629174706176", "seed must be an integer in 0..4294967295"),
                                         ("exclude_skipped: maybe", "exclude_skipped must be true or false"),
                                         ("new_head: 'no way'", "new_head must be true or false"),
                                         ("distributed: bogus", "distributed must be one of auto, off"),
                                         ("cam_step: 1.0e-7", "cam_step must be a number in [0.0001, 1)")])
def test_suite_options_are_refused_with_file_and_line(cub, tmp_path, capsys, options, msg):
    path = _suite(tmp_path, cub, options)
    assert main(["-q", "suite", path, "--dry-run"]) == 2
    line = _one_line(capsys)
    assert f"{path}:8:" in line and msg in line


def test_suite_method_and_model_options_fail_the_run_with_the_reason(cub, tmp_path, capsys):
    """A method or backbone option is checked where the method/backbone is built: the run fails
    with the one-line reason in summary.csv (the suite's other runs go on)."""
    import pandas as pd

    path = _suite(tmp_path, cub, method="gradcam", method_options="{rleu: 1}")
    assert main(["-q", "suite", path, "--out", str(tmp_path / "o")]) == 1
    s = pd.read_csv(tmp_path / "o" / "summary.csv")
    assert s.status[0] == "failed" and "method 'gradcam' has no option 'rleu'" in s.reason[0]


# ------------------------------------------------------------------ fuzz: every declared option, every door
HOSTILE = [float("nan"), float("inf"), -float("inf"), -1, 0, 1, 2, 0.5, 1e-7, 1e300, 2 ** 40, 2 ** 80, -0.0, True,
           False, "true", "false", "no", "", "1_0", "nan", "cpu", "fail", "auto", None, [], {}, "cuda:0", 3.0]
OPTIONS = options_of(EvalConfig)
#: free strings (paths, names looked up later: predictions files, registries) are checked where
#: they are used, not by their rule; every other declared option is fuzzed
OPTION_NAMES = [n for n in OPTIONS if not (OPTIONS[n].kind == "str" and OPTIONS[n].choice_names() is None) and n not in ("dataset", "root", "out", "save_cams", "backbone", "weights",
                                                      "method", "split", "device", "progress")]


def _accepts(name, value) -> bool:
    try:
        OPTIONS[name].check(value)
        return True
    except WsolError:
        return False


class Stop(Exception):
    """Raised where the run would start building: validation is over."""


@settings(max_examples=N, **SETTINGS)
@given(name=st.sampled_from(OPTION_NAMES), value=st.sampled_from(HOSTILE))
def test_fuzz_api_every_option(cub, tmp_path_factory, monkeypatch_module, name, value):
    """wsol.evaluate(**{name: value}): a one-line WsolError exactly when the rule refuses the
    value, else the run gets past validation (it is stopped where the build starts)."""
    out = str(tmp_path_factory.mktemp("fz") / "o")
    try:
        wsol.evaluate(dataset="cub", root=cub, out=out, **{**TINY, name: value})
        raised = None
    except Stop:
        raised = None
    except WsolError as e:
        raised = str(e)
    if not _accepts(name, value):          # the option's own rule refuses it: so does the API
        assert raised is not None, (name, value)
    if raised is not None:                   # the rule, or a rule across options (tau_holdout needs a
        assert "\n" not in raised            # holdout tau_policy): one line naming the option
        assert name in raised or name.replace("_", "-") in raised, (name, value, raised)


@settings(max_examples=N, **SETTINGS)
@given(name=st.sampled_from(OPTION_NAMES), value=st.sampled_from(HOSTILE))
def test_fuzz_suite_every_option(cub, tmp_path_factory, name, value):
    """A suite YAML's ``options: {name: value}``: refused in one line naming file:line, or the
    value that reaches EvalConfig obeys the option's rule (the API's check)."""
    import yaml

    from wsol.suite import GRID_FIELDS, load_suite

    d = tmp_path_factory.mktemp("fs")
    text = yaml.safe_dump({"name": "s", "datasets": [{"name": "cub", "root": cub}],
                           "backbones": [{"name": "tiny_test_net", "weights": "random"}],
                           "options": {name: value}})
    path = d / "s.yaml"
    path.write_text(text)
    try:
        runs = load_suite(str(path)).runs()
    except WsolError as e:
        assert str(e).startswith(str(path)) and "\n" not in str(e), str(e)
        return
    assert name not in GRID_FIELDS
    cfg = runs[0].config
    OPTIONS[name].check(getattr(cfg, name))   # what got through obeys the rule


@settings(max_examples=N, **SETTINGS)
@given(method=st.sampled_from(["cam", "gradcam", "random", "center_gaussian", "center_box", "scorecam", "pc1"]),
       key=st.sampled_from(["relu", "seed", "cell", "sigma", "fraction", "method_batch", "target", "weighted",
                            "rleu", "topk"]),
       value=st.sampled_from(HOSTILE + ["label", "predicted", "7"]))
def test_fuzz_method_options(method, key, value):
    """create_method with any option: one-line WsolError, or a method whose option obeys its rule."""
    from wsol.cams.base import METHODS, create_method, method_option_rules

    rules = method_option_rules(METHODS.get(method))
    try:
        create_method(method, **{key: value})
    except WsolError as e:
        assert "\n" not in str(e)
        return
    assert key in rules
    if rules[key] is not None and rules[key].kind == "float":
        assert not isinstance(value, float) or math.isfinite(value)


@pytest.fixture(scope="module")
def monkeypatch_module():
    """Stop every API run right after its validation (the build is where work starts)."""
    from wsol.engine import run as engine_run

    mp = pytest.MonkeyPatch()

    def stop(*a, **k):
        raise Stop()
    mp.setattr(engine_run, "build", stop)
    mp.setattr(engine_run, "load_split", stop)
    yield mp
    mp.undo()
