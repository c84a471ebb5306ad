"""Imports flow downstream only (docs/architecture.md, Import layers).

Every module's imports are read from its source (also those inside functions, and
``importlib.import_module("wsol....")`` with a literal name) and each must name a layer at or
below the importing module's own layer. A package may import itself freely.
"""
from __future__ import annotations

import ast
import os
from typing import Iterator, List, Tuple

import pytest

from shared_data import REPO  # noqa: E402
PKG = os.path.join(REPO, "wsol")

# top to bottom; a module may import only its own layer or those after it
LAYERS: List[Tuple[str, ...]] = [
    ("cli", "__main__"),
    ("api", "suite", "comparison"),
    ("apps",),
    ("training",),
    ("engine",),
    ("evaluation",),
    ("report",),
    ("metrics",),
    ("localize",),
    ("cams",),
    ("models",),
    ("transforms",),
    ("datasets",),
    ("utils", "errors", "paths", "__init__"),
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def layer_of(module: str) -> str:
    """'wsol.engine.run' -> 'engine'; 'wsol' -> '__init__'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: str) -> str:
    rel = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
    return rel[:-len(".__init__")] if rel.endswith(".__init__") else rel


def imports_of(path: str) -> Iterator[Tuple[int, str]]:
    """(line, absolute module name) of every wsol import in a source file."""
    mod = module_name(path)
    package = mod if path.endswith("__init__.py") else mod.rsplit(".", 1)[0]
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name == "wsol":  # from wsol import x: x may be a subpackage
                for a in node.names:
                    yield node.lineno, f"wsol.{a.name}" if a.name in RANK else "wsol"
            else:
                yield node.lineno, name
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            yield node.lineno, node.args[0].value


def source_files() -> List[str]:
    out = []
    for d, _, files in os.walk(PKG):
        out += [os.path.join(d, f) for f in files if f.endswith(".py")]
    return sorted(out)


def upward_imports() -> List[str]:
    bad = []
    for path in source_files():
        here = layer_of(module_name(path))
        if here not in RANK:
            continue  # reported by test_every_package_has_a_layer
        for line, name in imports_of(path):
            if name != "wsol" and not name.startswith("wsol."):
                continue
            there = layer_of(name)
            if there not in RANK:
                bad.append(f"{os.path.relpath(path, REPO)}:{line}: imports {name} (no layer assigned to '{there}')")
            elif RANK[there] < RANK[here]:
                bad.append(f"{os.path.relpath(path, REPO)}:{line}: {here} imports {name} ({there} is upstream)")
    return bad


def test_every_package_has_a_layer():
    tops = {layer_of(module_name(p)) for p in source_files()}
    assert tops <= set(RANK), sorted(tops - set(RANK))


def test_no_package_imports_upstream():
    bad = upward_imports()
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_the_checker_catches_an_upward_import(tmp_path, monkeypatch):
    """The checker itself can fail: a metrics module importing the engine is reported."""
    pkg = tmp_path / "wsol" / "metrics"
    pkg.mkdir(parents=True)
    (pkg / "bad.py").write_text("def f():\n    from wsol.engine.run import evaluate\n    from ..report import csv\n")
    (pkg / "good.py").write_text("from wsol.localize.maps import quantize\nfrom . import bad\n")
    monkeypatch.setitem(globals(), "REPO", str(tmp_path))
    monkeypatch.setitem(globals(), "PKG", str(tmp_path / "wsol"))
    bad = upward_imports()
    assert len(bad) == 2 and "metrics imports wsol.engine.run" in bad[0] and "wsol.report" in bad[1]


@pytest.mark.parametrize("src,expect", [("from .maps import x", "wsol.localize.maps"),
                                        ("from .. import errors", "wsol.errors"),
                                        ("import importlib\nimportlib.import_module('wsol.cli')", "wsol.cli")])
def test_relative_and_dynamic_imports_resolve(tmp_path, monkeypatch, src, expect):
    pkg = tmp_path / "wsol" / "localize"
    pkg.mkdir(parents=True)
    (pkg / "m.py").write_text(src + "\n")
    monkeypatch.setitem(globals(), "REPO", str(tmp_path))
    assert [n for _, n in imports_of(str(pkg / "m.py")) if n.startswith("wsol")] == [expect]
