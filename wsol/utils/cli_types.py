"""Argument types for every ``wsol`` command: numbers and names checked at parse time.

Each helper is an argparse ``type=``: it converts the string or raises
``argparse.ArgumentTypeError`` with one line stating the valid range, which
:class:`OneLineParser` prints as ``wsol CMD: error: argument --x: ...`` and exit status 2.
It depends on nothing else in wsol (bottom layer), so every command module may use it.
"""
from __future__ import annotations

import argparse
import math
import re
from typing import Callable, NoReturn, Optional

DEVICE_HELP = "cpu, cuda, cuda:N or mps"
_DEVICE = re.compile(r"^(cpu|mps|cuda)(:\d+)?$")


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block): ``PROG: error: MSG``.

    Subparsers made with ``add_subparsers`` inherit the class.
    """

    def error(self, message: str) -> NoReturn:
        first = message.splitlines()[0] if message else "bad arguments"
        self.exit(2, f"{self.prog}: error: {first} (see {self.prog} --help)\n")


def _number(value: str, kind: type, rng: str) -> float:
    """``value`` as ``kind``; any failure (not a number, NaN, inf) states the valid range."""
    what = "an integer" if kind is int else "a number"
    try:
        v = kind(value)
    except (TypeError, ValueError):
        v = None
    if v is None or (kind is float and not math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be {what} {rng}, got {value!r}".replace("  ", " "))
    return v


def int_in(lo: Optional[int] = None, hi: Optional[int] = None) -> Callable[[str], int]:
    """An integer with ``lo <= v <= hi`` (either bound may be None)."""

    if hi is None:
        rng = f">= {lo}" if lo is not None else ""
    elif lo is None:
        rng = f"<= {hi}"
    else:
        rng = f"in {lo}..{hi}"

    def parse(value: str) -> int:
        v = int(_number(value, int, rng))
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"must be an integer {rng}, got {value}")
        return v

    parse.__name__ = f"int_in({lo}, {hi})"
    return parse


def float_in(lo: Optional[float] = None, hi: Optional[float] = None, lo_open: bool = False,
             hi_open: bool = False) -> Callable[[str], float]:
    """A finite float in the interval from ``lo`` to ``hi`` (open ends when ``*_open``)."""

    if hi is None:
        rng = f"{'>' if lo_open else '>='} {lo:g}" if lo is not None else "(finite)"
    elif lo is None:
        rng = f"{'<' if hi_open else '<='} {hi:g}"
    else:
        rng = f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"

    def parse(value: str) -> float:
        v = float(_number(value, float, rng))
        bad = (lo is not None and (v < lo or (lo_open and v == lo))) or \
              (hi is not None and (v > hi or (hi_open and v == hi)))
        if bad:
            raise argparse.ArgumentTypeError(f"must be a number {rng}, got {value}")
        return v

    parse.__name__ = f"float_in({lo}, {hi})"
    return parse


positive_int = int_in(1)
nonnegative_int = int_in(0)
finite_float = float_in()
positive_float = float_in(0.0, lo_open=True)
nonnegative_float = float_in(0.0)
#: a threshold on a normalized map, on the grid numpy.arange(0, 1, step): 0 <= tau < 1
threshold = float_in(0.0, 1.0, hi_open=True)
#: a fraction strictly between 0 and 1 (e.g. --cam-step: numpy.arange(0, 1, step))
open_fraction = float_in(0.0, 1.0, lo_open=True, hi_open=True)
#: a share that may be 0 but not 1 (e.g. --holdout)
fraction_below_one = float_in(0.0, 1.0, hi_open=True)


def device(value: str) -> str:
    """A torch device name: cpu, cuda, cuda:N or mps (existence is checked when it is used)."""
    v = value.strip()
    if not _DEVICE.match(v):
        raise argparse.ArgumentTypeError(f"must be {DEVICE_HELP}, got {value!r}")
    return v
