"""The CLI package: every command module imports, and one that fails is named on stderr and
in ``wsol --help`` instead of vanishing; only the CLI imports the CLI."""
import sys

import pytest

from wsol.cli import main


def test_every_command_module_imports():
    from wsol.cli.app import build_parser

    failures = {}
    build_parser(failures)
    assert failures == {}


def test_a_broken_command_module_is_reported(tmp_path, monkeypatch, capsys):
    import wsol.cli.app as cli_main

    (tmp_path / "wsol_test_broken_cmd.py").write_text("import not_a_module_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", cli_main.COMMAND_MODULES + ("wsol_test_broken_cmd",))
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr()
    assert "wsol_test_broken_cmd: ModuleNotFoundError" in out.out  # in the help text
    assert "command module wsol_test_broken_cmd failed to import" in out.err
    assert "evaluate" in out.out  # the others are still there
    sys.modules.pop("wsol_test_broken_cmd", None)


def test_make_synthetic_errors_like_every_command(tmp_path, capsys):
    (tmp_path / "file").write_text("in the way")
    rc = main(["-q", "make-synthetic", "--out", str(tmp_path / "file" / "s"), "--classes", "2"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("wsol: error: ") and len(err.strip().splitlines()) == 1
