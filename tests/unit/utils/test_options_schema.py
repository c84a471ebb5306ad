"""The option schema (wsol.utils.options): every declared option's rule is refused with the
same line from the CLI, the Python API and a suite file; the rules themselves by hand."""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Optional

import pytest

from wsol.apps.bench import BenchConfig, run_bench
from wsol.cli import main
from wsol.engine.config import EvalConfig, check_config
from wsol.errors import WsolError
from wsol.suite import GRID_FIELDS, load_suite
from wsol.training.train import TrainConfig, train
from wsol.utils.options import Option, OptionError, option, options_of, result_fields


def bad_values(opt: Option) -> list:
    """Values ``opt`` must refuse, derived from its declaration."""
    out: list = []
    names = opt.choice_names()
    if names is not None:
        out.append("no-such-" + opt.name)
    if opt.pattern:
        out.append("tpu")
    if opt.kind == "int":
        if opt.min is not None:
            out.append(int(opt.min) - 1)
        if opt.max is not None:
            out.append(int(opt.max) + 1)
    if opt.kind == "float":
        out.append(math.nan)
        if opt.min is not None:
            out.append(float(opt.min) if opt.min_open else float(opt.min) - 0.5)
        if opt.max is not None:
            out.append(float(opt.max) if opt.max_open else float(opt.max) + 1.0)
    return out


def ruled(cls) -> list:
    return [(n, v) for n, o in options_of(cls).items() if o.cli for v in bad_values(o)]


def cli_line(capsys, argv) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err.strip()


def yaml_value(v) -> str:
    return ".nan" if isinstance(v, float) and math.isnan(v) else (f"'{v}'" if isinstance(v, str) else repr(v))


EVAL_BAD = ruled(EvalConfig)


def test_the_walk_covers_every_kind_of_rule():
    names = {n for n, _ in EVAL_BAD}
    assert {"batch_size", "limit", "cam_step", "fixed_tau", "pointing_tolerance", "workers", "data_workers",
            "seed", "device", "sweep", "protocol", "on_error", "dtype", "decode"} <= names


@pytest.mark.parametrize("name,value", EVAL_BAD, ids=[f"{n}={v}" for n, v in EVAL_BAD])
def test_cli_api_and_suite_refuse_with_the_same_line(tmp_path, capsys, monkeypatch, name, value):
    opt = options_of(EvalConfig)[name]
    expected = str(opt.fail(value))
    monkeypatch.chdir(tmp_path)
    # CLI
    line = cli_line(capsys, ["evaluate", "--root", "r", "--out", "o", opt.flag_name(), str(value)])
    assert line.startswith(f"wsol evaluate: error: argument {opt.flag_name()}: {expected} (see ")
    # API: wsol.evaluate checks before it reads anything
    import wsol

    with pytest.raises(WsolError) as e:
        wsol.evaluate(root=str(tmp_path / "none"), progress=False, **{name: value})
    assert str(e.value) == expected
    # suite (grid fields are the grid's, not options)
    if name in GRID_FIELDS:
        return
    y = tmp_path / "s.yaml"
    y.write_text("datasets: [{name: cub, root: r}]\nbackbones: [resnet18]\n"
                 f"options:\n  {name}: {yaml_value(value)}\n")
    with pytest.raises(WsolError) as e:
        load_suite(str(y))
    assert str(e.value) == f"{y}:4: {expected}"
    assert os.listdir(tmp_path) == ["s.yaml"]  # nothing started


def test_pointing_tolerance_nan_is_one_line_everywhere(tmp_path, capsys):
    """The issue's example, with the line written out by hand."""
    line = "pointing_tolerance must be a number >= 0, got nan"
    assert line in cli_line(capsys, ["evaluate", "--root", "r", "--out", str(tmp_path / "o"),
                                     "--pointing-tolerance", "nan"])
    import wsol

    with pytest.raises(WsolError, match=f"^{line}$"):
        wsol.evaluate(root=str(tmp_path), pointing_tolerance=float("nan"))
    with pytest.raises(WsolError, match=f"^{line}$"):  # -5 used to be scored as 0 and recorded as -5
        check_config(EvalConfig(pointing_tolerance=float("nan")))
    with pytest.raises(WsolError, match="pointing_tolerance must be a number >= 0, got -5$"):
        check_config(EvalConfig(pointing_tolerance=-5))
    y = tmp_path / "s.yaml"
    y.write_text("datasets: [{name: cub, root: r}]\nbackbones: [resnet18]\noptions: {pointing_tolerance: .nan}\n")
    with pytest.raises(WsolError, match=f"s.yaml:3: {line}$"):
        load_suite(str(y))


TRAIN_BAD = ruled(TrainConfig)


@pytest.mark.parametrize("name,value", TRAIN_BAD, ids=[f"{n}={v}" for n, v in TRAIN_BAD])
def test_train_cli_and_api_refuse_with_the_same_line(tmp_path, capsys, name, value):
    opt = options_of(TrainConfig)[name]
    expected = str(opt.fail(value))
    line = cli_line(capsys, ["train", "--root", "r", "--out", str(tmp_path / "o"), opt.flag_name(), str(value)])
    assert f"argument {opt.flag_name()}: {expected} (see " in line
    import wsol

    with pytest.raises(WsolError) as e:
        wsol.train(root="r", out=str(tmp_path / "o"), **{name: value})
    assert str(e.value) == expected
    assert not (tmp_path / "o").exists()


BENCH_BAD = ruled(BenchConfig)


@pytest.mark.parametrize("name,value", BENCH_BAD, ids=[f"{n}={v}" for n, v in BENCH_BAD])
def test_bench_cli_and_api_refuse_with_the_same_line(tmp_path, capsys, name, value):
    opt = options_of(BenchConfig)[name]
    expected = str(opt.fail(value))
    line = cli_line(capsys, ["bench", opt.flag_name(), str(value), "--cache-dir", str(tmp_path)])
    assert f"argument {opt.flag_name()}: {expected} (see " in line
    with pytest.raises(WsolError) as e:
        run_bench(BenchConfig.create(cache_dir=str(tmp_path), **{name: value}))
    assert str(e.value) == expected
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------- the rules by hand
@dataclasses.dataclass
class Demo:
    n: int = option(2, min=1, max=5, help="n")
    x: float = option(0.5, min=0, max=1, min_open=True, help="x")
    y: float = option(0.0, help="y", result=False)
    mode: str = option("a", choices=("a", "b"), help="mode")
    k: Optional[int] = option(None, min=0, help="k")
    flag: bool = option(False, help="flag")


def test_rules_read_and_apply_as_declared():
    o = options_of(Demo)
    assert o["n"].rule() == "an integer in 1..5" and o["x"].rule() == "a number in (0, 1]"
    assert o["y"].rule() == "a number (finite)" and o["mode"].rule() == "one of a, b"
    assert o["k"].optional and o["k"].check(None) is None and o["k"].parse("none") is None
    assert o["n"].parse("5") == 5 and o["x"].parse("1") == 1.0 and o["flag"].parse("yes") is True
    for opt, bad in ((o["n"], 0), (o["n"], 6), (o["n"], True), (o["n"], 2.0), (o["x"], 0.0), (o["x"], "0.5"),
                     (o["y"], math.inf), (o["mode"], "c"), (o["k"], -1), (o["flag"], 1)):
        with pytest.raises(OptionError):
            opt.check(bad)
    assert str(o["n"].fail(0)) == "n must be an integer in 1..5, got 0"
    assert str(o["mode"].fail("c")) == "mode must be one of a, b, got 'c'"
    # YAML values: integral floats are ints, ints are floats, strings are parsed, null is False for a flag
    assert o["n"].coerce(3.0) == 3 and o["x"].coerce(1) == 1.0 and o["n"].coerce("4") == 4
    assert o["flag"].coerce(None) is False
    with pytest.raises(OptionError, match="n must be an integer in 1..5, got 2.5"):
        o["n"].coerce(2.5)
    assert result_fields(Demo) == ["n", "x", "mode", "k", "flag"]
