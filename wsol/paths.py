"""Where the files shipped in ``benchmarks/`` (suites, published numbers) are found.

From a checkout (or an editable install) they are read in place; a wheel installs copies under
``<prefix>/share/wsol/`` (setup.cfg ``[options.data_files]``), found through ``sysconfig``.
"""
from __future__ import annotations

import os
import sysconfig
from typing import List

CHECKOUT_BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")


def _data_prefixes() -> List[str]:
    """The install prefixes where a wheel's data files may lie (the default and the user scheme)."""
    out = [sysconfig.get_path("data")]
    try:
        out.append(sysconfig.get_path("data", f"{os.name}_user"))
    except KeyError:
        pass
    return [p for p in out if p]


def shipped_file(*parts: str) -> str:
    """``benchmarks/<parts>`` of the checkout when wsol runs from one, else the wheel's copy in
    ``<prefix>/share/wsol/<parts>``; the checkout path (which does not exist) when neither does."""
    checkout = os.path.join(CHECKOUT_BENCHMARKS, *parts)
    if os.path.exists(checkout):
        return checkout
    for prefix in _data_prefixes():
        installed = os.path.join(prefix, "share", "wsol", *parts)
        if os.path.exists(installed):
            return installed
    return checkout
