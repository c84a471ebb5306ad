"""The threshold sweeps by name (``--sweep``): 'fast' (the numba sweep, wsol.localize.fast_sweep),
'reference' and 'per-threshold' (OpenCV contours, wsol.localize.boxes). All three give the same
boxes. The fast sweep is imported on first use (it compiles or loads numba kernels)."""
from __future__ import annotations

from typing import Callable, Dict

from wsol.localize.boxes import sweep_per_threshold, sweep_reference

#: the sweep names, in the order ``--sweep`` lists them
SWEEP_NAMES = ("fast", "reference", "per-threshold")


def _fast() -> Callable:
    from wsol.localize.fast_sweep import sweep_fast

    return sweep_fast


_LOADERS: Dict[str, Callable[[], Callable]] = {"fast": _fast, "reference": lambda: sweep_reference,
                                               "per-threshold": lambda: sweep_per_threshold}


def get_sweep(name: str) -> Callable:
    """The sweep implementation called ``name``: 'fast', 'reference' or 'per-threshold'."""
    from wsol.errors import UnknownNameError

    if name not in _LOADERS:
        raise UnknownNameError("sweep", name, SWEEP_NAMES)
    return _LOADERS[name]()
