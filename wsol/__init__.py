"""wsol: a weakly-supervised object localization benchmark.

Notebook entry points, each importing its module on first call so ``import wsol`` stays light
(the imports are inside the functions, where the layering test sees them):
``wsol.evaluate(**EvalConfig fields) -> DataFrame``, ``wsol.train(**TrainConfig fields) -> DataFrame``,
``wsol.run_suite(path, **opts) -> DataFrame``, ``wsol.load_suite(path)`` and
``wsol.compare(dir) -> DataFrame``.
"""
from typing import Any

__version__ = "0.1.0"


def evaluate(**options: Any) -> Any:
    """Run ``wsol evaluate`` from Python; see :func:`wsol.api.evaluate`."""
    from wsol.api import evaluate as _evaluate

    return _evaluate(**options)


def train(**options: Any) -> Any:
    """Run ``wsol train`` from Python; see :func:`wsol.api.train`."""
    from wsol.api import train as _train

    return _train(**options)


def run_suite(path: Any, **options: Any) -> Any:
    """Run a suite file; see :func:`wsol.api.run_suite`."""
    from wsol.api import run_suite as _run_suite

    return _run_suite(path, **options)


def load_suite(path: str) -> Any:
    """Read and check a suite file; see :func:`wsol.suite.load_suite`."""
    from wsol.suite import load_suite as _load_suite

    return _load_suite(path)


def compare(run_dir: str, *args: Any, **kwargs: Any) -> Any:
    """Measured vs published numbers; see :func:`wsol.comparison.compare`."""
    from wsol.comparison import compare as _compare

    return _compare(run_dir, *args, **kwargs)
