"""wsol: a weakly-supervised object localization benchmark.

Notebook entry points, imported on first use so ``import wsol`` stays light:
``wsol.evaluate(**EvalConfig fields) -> DataFrame``, ``wsol.train(**TrainConfig fields) -> DataFrame``,
``wsol.run_suite(path, **opts) -> DataFrame``, ``wsol.load_suite(path)`` and
``wsol.compare(dir) -> DataFrame``.
"""
__version__ = "0.1.0"

_LAZY = {"evaluate": "wsol.api", "train": "wsol.api", "run_suite": "wsol.api", "load_suite": "wsol.suite",
         "compare": "wsol.comparison"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'wsol' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
