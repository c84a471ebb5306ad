"""Line readers that name the file and line at fault."""
from __future__ import annotations

import math
from typing import Iterator, List, Tuple

from wsol.errors import DataError
from wsol.utils.io import read_text_file, text_lines
from wsol.utils.numbers import parse_number


def read_rows(path: str, n_fields: int, sep: str | None = None, what: str = "",
              at_least: bool = False) -> Iterator[Tuple[int, List[str]]]:
    """Yield ``(line_number, fields)`` of a text file, skipping blank lines.

    ``sep=None`` splits on whitespace but keeps the tail in the last field (CUB paths have no
    spaces, class names may). Wrong field counts raise DataError naming file and line.
    """
    text = read_text_file(path, what or "file")
    for i, line in enumerate(text_lines(text), 1):
        line = line.strip()
        if not line:
            continue
        if sep is None:
            fields = line.split(None, n_fields - 1) if not at_least else line.split()
        else:
            fields = [x.strip() for x in line.split(sep)]
        if (len(fields) < n_fields) if at_least else (len(fields) != n_fields):
            raise DataError(f"expected {n_fields} fields, got {len(fields)}: {line[:80]!r}", path=path, line=i)
        yield i, fields


#: the largest magnitude a number in an annotation may have: far beyond any real image
#: (PIL refuses images over ~179 million pixels), small enough that scaling stays exact
MAX_ANNOTATION_VALUE = 10 ** 7


def to_number(value: str, kind, path: str, line: int, name: str):
    """Parse ``value`` as ``kind`` (int/float) or raise DataError naming file and line.

    NaN, infinities and magnitudes over MAX_ANNOTATION_VALUE are refused too: they would
    turn into IoUs of 1e-17 or integer overflows further down, never into an error.
    """
    try:
        v = parse_number(value, kind)  # no '1_0263' (Python's float reads 10263) or non-ASCII digits
    except (ValueError, OverflowError):
        raise DataError(f"{name} is not a{'n integer' if kind is int else ' number'}: {value!r}",
                        path=path, line=line) from None
    if kind is float and not math.isfinite(v):
        raise DataError(f"{name} must be a finite number, got {value!r}", path=path, line=line)
    if abs(v) > MAX_ANNOTATION_VALUE:
        raise DataError(f"{name} {value} is out of range (at most {MAX_ANNOTATION_VALUE:.0e} in magnitude)",
                        path=path, line=line)
    return v
