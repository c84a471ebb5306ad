"""Imports flow downstream only (docs/architecture.md, Import layers).

Every module's imports are read from its source (also those inside functions, and
``importlib.import_module("wsol....")`` with a literal name) and each must name a layer at or
below the importing module's own layer. A package may import itself freely. The one
exception is stated here: the package root ``wsol/__init__.py`` reaches the notebook entry
points (:data:`LAZY_ENTRY_POINTS`), inside functions only (imported on first call). No module
may import, at module level, a module that imports it back (directly or around a cycle), and
the two known function-level cycles stay gone.
"""
from __future__ import annotations

import ast
import os
from typing import Dict, Iterator, List, Set, Tuple

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
#: what ``wsol/__init__.py`` may import, and only inside functions (wsol.evaluate, ...)
LAZY_ENTRY_POINTS = ("api", "suite", "comparison")


def layer_of(module: str) -> str:
    """'wsol.engine.run' -> 'engine'; 'wsol' -> '__init__'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: str) -> str:
    rel = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
    return rel[:-len(".__init__")] if rel.endswith(".__init__") else rel


def _nodes(tree: ast.AST, module_level: bool) -> Iterator[ast.AST]:
    """Every node (``module_level``: not those inside function bodies, which run later)."""
    if not module_level:
        yield from ast.walk(tree)
        return
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))


def imports_of(path: str, module_level: bool = False, names: bool = False) -> Iterator[Tuple[int, str]]:
    """(line, absolute module name) of every wsol import in a source file (``module_level``:
    only those run when the module is imported; ``names``: also ``module.name`` of each name a
    ``from`` import takes, which may be a submodule)."""
    mod = module_name(path)
    package = mod if path.endswith("__init__.py") else mod.rsplit(".", 1)[0]
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in _nodes(tree, module_level):
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
            if names:
                for a in node.names:
                    yield node.lineno, f"{name}.{a.name}"
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
        lazy = {n for _, n in imports_of(path)} - {n for _, n in imports_of(path, module_level=True)}
        for line, name in imports_of(path):
            if here == "__init__" and module_name(path) == "wsol" and name in lazy \
                    and layer_of(name) in LAZY_ENTRY_POINTS:
                continue  # the entry points, imported on first call
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


# ---------------------------------------------------------------------- cycles
def import_graph(module_level: bool) -> Dict[str, Set[str]]:
    """wsol module -> the wsol modules it imports (a name that is a package: its __init__)."""
    files = {module_name(p): p for p in source_files()}
    graph: Dict[str, Set[str]] = {}
    for mod, path in files.items():
        out = set()
        for _, name in imports_of(path, module_level, names=True):
            while name and name not in files:  # 'wsol.x.y.attr' -> 'wsol.x.y'
                name = name.rpartition(".")[0]
            if name and name != mod:
                out.add(name)
        graph[mod] = out
    return graph


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    out: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_module_level_import_cycles():
    found = cycles(import_graph(module_level=True))
    assert not found, "module-level import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize("pair", [("wsol.localize.boxes", "wsol.localize.fast_sweep"),
                                  ("wsol.models.registry", "wsol.models.method_heads")])
def test_the_removed_cycles_stay_gone_also_inside_functions(pair):
    """boxes <-> fast_sweep and registry <-> method_heads were function-level cycles."""
    for comp in cycles(import_graph(module_level=False)):
        assert not set(pair) <= set(comp), comp


def test_the_cycle_finder_finds_a_cycle_and_ignores_a_lazy_import(tmp_path, monkeypatch):
    pkg = tmp_path / "wsol" / "localize"
    pkg.mkdir(parents=True)
    (pkg / "a.py").write_text("from wsol.localize.b import x\n")
    (pkg / "b.py").write_text("from wsol.localize import c\nx = 1\n")
    (pkg / "c.py").write_text("import wsol.localize.a\ndef f():\n    from wsol.localize import d\n")
    (pkg / "d.py").write_text("from wsol.localize.c import f\n")
    monkeypatch.setitem(globals(), "REPO", str(tmp_path))
    monkeypatch.setitem(globals(), "PKG", str(tmp_path / "wsol"))
    assert cycles(import_graph(module_level=True)) == [["wsol.localize.a", "wsol.localize.b", "wsol.localize.c"]]
    assert cycles(import_graph(module_level=False)) == [["wsol.localize.a", "wsol.localize.b", "wsol.localize.c",
                                                        "wsol.localize.d"]]


def test_the_root_package_reaches_the_api_only_lazily(tmp_path, monkeypatch):
    """wsol/__init__.py's entry points are seen, and allowed only inside functions."""
    root = tmp_path / "wsol"
    root.mkdir()
    (root / "__init__.py").write_text("def evaluate(**kw):\n    from wsol.api import evaluate\n")
    monkeypatch.setitem(globals(), "REPO", str(tmp_path))
    monkeypatch.setitem(globals(), "PKG", str(root))
    assert [n for _, n in imports_of(str(root / "__init__.py"))] == ["wsol.api"]
    assert upward_imports() == []
    (root / "__init__.py").write_text("from wsol.api import evaluate\n")
    assert len(upward_imports()) == 1
    (root / "__init__.py").write_text("def f():\n    from wsol.engine import run\n")
    assert len(upward_imports()) == 1
