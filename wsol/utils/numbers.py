"""Numbers as annotation files write them: plain ASCII decimals, nothing Python-specific.

Python's ``int``/``float`` also accept ``1_0263`` (digit-group underscores), non-ASCII digits
(``١٢``) and surrounding whitespace, so a typo in a box coordinate would become a silently
wrong number. :func:`parse_number` accepts only ``[+-]digits`` for integers and the usual
decimal/exponent notation for floats (plus ``nan``/``inf`` spelled out, left for the caller
to refuse with its own message); anything else is a ValueError.
"""
from __future__ import annotations

import re
from typing import Union

_INT = re.compile(r"[+-]?[0-9]+\Z")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_NONFINITE = re.compile(r"[+-]?(?:nan|inf|infinity)\Z", re.IGNORECASE)


def parse_number(text: str, kind: type = float) -> Union[int, float]:
    """``text`` (surrounding ASCII spaces allowed) as ``kind`` (int or float), or ValueError."""
    t = str(text).strip(" \t\r\n")
    if kind is int:
        if not _INT.match(t):
            raise ValueError(f"not an integer: {text!r}")
        return int(t)
    if not (_FLOAT.match(t) or _NONFINITE.match(t)):
        raise ValueError(f"not a number: {text!r}")
    return float(t)
