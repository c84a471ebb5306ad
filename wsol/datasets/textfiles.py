"""Line readers that name the file and line at fault."""
from __future__ import annotations

from typing import Iterator, List, Tuple

from wsol.errors import DataError


def read_rows(path: str, n_fields: int, sep: str | None = None, what: str = "",
              at_least: bool = False) -> Iterator[Tuple[int, List[str]]]:
    """Yield ``(line_number, fields)`` of a text file, skipping blank lines.

    ``sep=None`` splits on whitespace but keeps the tail in the last field (CUB paths have no
    spaces, class names may). Wrong field counts raise DataError naming file and line.
    """
    try:
        f = open(path, encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"missing {what or 'file'}", path=path) from None
    except OSError as e:
        raise DataError(f"cannot read ({e.strerror})", path=path) from None
    with f:
        for i, line in enumerate(f, 1):
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


def to_number(value: str, kind, path: str, line: int, name: str):
    """Parse ``value`` as ``kind`` (int/float) or raise DataError naming file and line."""
    try:
        return kind(value)
    except ValueError:
        raise DataError(f"{name} is not a{'n integer' if kind is int else ' number'}: {value!r}",
                        path=path, line=line) from None
