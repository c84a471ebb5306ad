"""The one registry helper (docs/architecture.md, Registries): lookups with close-match
errors, patterns, and plugin modules that fail to import are reported, not swallowed."""
import logging
import sys
import types

import pytest

from wsol.errors import UnknownNameError
from wsol.utils.registry import Registry


def test_lookup_patterns_and_close_matches():
    r = Registry("thing")
    r.add("gradcam", 1)

    @r.register("gradcampp")
    class _E:  # decorator form returns the entry unchanged
        pass

    assert r.get("gradcam") == 1 and r.get("gradcampp") is _E
    assert r.names() == ["gradcam", "gradcampp"] and r.names("*pp") == ["gradcampp"]
    assert "gradcam" in r and "cam" not in r and len(r) == 2
    with pytest.raises(UnknownNameError) as e:
        r.get("gradcamp")
    assert str(e.value).startswith("unknown thing 'gradcamp'; did you mean: gradcam")
    assert r.remove("gradcam") == 1 and r.names() == ["gradcampp"]


def test_broken_plugin_is_reported_not_swallowed(caplog, monkeypatch):
    good = types.ModuleType("wsol_test_plugin_good")
    monkeypatch.setitem(sys.modules, "wsol_test_plugin_good", good)
    r = Registry("widget", ["wsol_test_plugin_missing", "wsol_test_plugin_good"])
    with caplog.at_level(logging.WARNING, logger="wsol.utils.registry"):
        assert r.names() == []
    assert "wsol_test_plugin_missing" in caplog.text and "failed to import" in caplog.text
    assert list(r.failures()) == ["wsol_test_plugin_missing"]
    with pytest.raises(UnknownNameError, match="plugins that failed to import: wsol_test_plugin_missing"):
        r.get("anything")


def test_plugin_raising_any_error_is_reported(tmp_path, monkeypatch):
    (tmp_path / "wsol_test_plugin_bad.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    r = Registry("widget", ["wsol_test_plugin_bad"])
    assert r.failures() == {"wsol_test_plugin_bad": "RuntimeError: boom at import"}


def test_the_three_registries_share_the_helper():
    from wsol.cams.base import METHODS
    from wsol.datasets.base import DATASETS
    from wsol.models.registry import BACKBONES

    for reg, name in ((METHODS, "gradcam"), (DATASETS, "cub"), (BACKBONES, "resnet50")):
        assert isinstance(reg, Registry) and name in reg and reg.failures() == {}


def test_cli_unknown_method_names_close_match(tmp_path, capsys):
    """End to end: `wsol evaluate --method gradcamm` fails in one line with the close match."""
    from cub_fixture import make_cub

    from wsol.cli import main

    cub_root = tmp_path / "cub"
    make_cub(str(cub_root))

    rc = main(["-q", "evaluate", "--dataset", "cub", "--root", str(cub_root), "--backbone", "tiny_test_net",
               "--weights", "random", "--method", "gradcamm", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "unknown method 'gradcamm'; did you mean: gradcam" in err
