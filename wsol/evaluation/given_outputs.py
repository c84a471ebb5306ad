"""Outputs computed anywhere, read for scoring (``wsol score --boxes/--predictions``,
``wsol evaluate --predictions``; docs/protocol.md, Bring your own outputs).

- class predictions: a CSV with header ``image_id,top1[,top2,...,top5]``, each cell a class
  index or a class name of the dataset;
- boxes: a CSV with header ``image_id,x0,y0,x1,y1[,score]`` in original-image pixels
  (inclusive corners, floats allowed), several rows per image allowed.

Every bad row is a one-line :class:`DataError` naming the file and line. Rows naming an
image that is not in the split are counted (``n_unknown``) and reported, not scored.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from wsol.errors import DataError

BOX_COLUMNS = ("image_id", "x0", "y0", "x1", "y1")
BOX_RULES = ("top", "all")  # the highest-scored box of an image, or all of them (max IoU)
MAX_K = 5


@dataclass
class Predictions:
    """Class predictions per image: ``top[image_id]`` int [k], best first; ``k`` the number
    of columns the file gave; ``n_unknown`` rows naming images outside the split."""

    path: str
    k: int
    top: Dict[str, np.ndarray] = field(default_factory=dict)
    n_unknown: int = 0

    def lookup(self, image_ids: Sequence[str]) -> Tuple[np.ndarray, int]:
        """(int [B, 5] classes, best first, -1 where absent; how many images had no row)."""
        out = np.full((len(image_ids), MAX_K), -1, dtype=np.int64)
        missing = 0
        for i, iid in enumerate(image_ids):
            row = self.top.get(iid)
            if row is None:
                missing += 1
            else:
                out[i, :len(row)] = row
        return out, missing


@dataclass
class GivenBoxes:
    """Boxes per image in original pixels: ``boxes[image_id]`` float [n, 4] (rows in file
    order) and ``scores[image_id]`` float [n] (None without a score column)."""

    path: str
    has_score: bool
    boxes: Dict[str, np.ndarray] = field(default_factory=dict)
    scores: Dict[str, np.ndarray] = field(default_factory=dict)
    lines: Dict[str, List[int]] = field(default_factory=dict)
    n_unknown: int = 0

    def select(self, image_id: str, rule: str) -> Optional[np.ndarray]:
        """The boxes of ``image_id`` that count under ``rule`` ([n, 4]), None without a row:
        'top' the highest-scored one (the first on ties), 'all' every row."""
        b = self.boxes.get(image_id)
        if b is None:
            return None
        if rule == "all" or len(b) == 1:
            return b
        if not self.has_score:
            raise DataError(f"{len(b)} boxes for {image_id} (lines {', '.join(map(str, self.lines[image_id]))}) and "
                            "no score column: add a score column or pass --box-rule all", path=self.path)
        return b[int(np.argmax(self.scores[image_id]))][None]


def _rows(path: str) -> Iterator[Tuple[int, List[str]]]:
    """(line number, cells) of a CSV's data rows; blank lines skipped."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for i, row in enumerate(csv.reader(f), start=1):
                if row and any(c.strip() for c in row):
                    yield i, [c.strip() for c in row]
    except FileNotFoundError:
        raise DataError("file not found", path=path) from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"unreadable CSV ({type(e).__name__}: {e})", path=path) from None


def _header(rows: Iterator[Tuple[int, List[str]]], path: str, need: Sequence[str]) -> Tuple[int, List[str]]:
    try:
        line, head = next(rows)
    except StopIteration:
        raise DataError(f"empty file: needs a header {','.join(need)}", path=path) from None
    head = [h.lower() for h in head]
    if list(head[:len(need)]) != list(need):
        raise DataError(f"header must start with {','.join(need)}, got {','.join(head)}", path=path, line=line)
    return line, head


def _class_index(cell: str, names: Dict[str, int], num_classes: int, path: str, line: int) -> int:
    if cell in names:
        return names[cell]
    try:
        c = int(cell)
    except ValueError:
        raise DataError(f"{cell!r} is neither a class index nor a class name of the dataset", path=path,
                        line=line) from None
    if not 0 <= c < num_classes:
        raise DataError(f"class index {c} out of range [0, {num_classes})", path=path, line=line)
    return c


def read_predictions(path: str, class_names: Sequence[str], num_classes: int,
                     known_ids: Sequence[str]) -> Predictions:
    """Read a class-prediction CSV (module docstring); ``known_ids`` the split's image ids."""
    rows = _rows(path)
    _, head = _header(rows, path, ("image_id", "top1"))
    k = len(head) - 1
    want = ["image_id"] + [f"top{j}" for j in range(1, k + 1)]
    if head != want or k > MAX_K:
        raise DataError(f"header must be image_id,top1[,top2,...,top5], got {','.join(head)}", path=path, line=1)
    names = {n: i for i, n in enumerate(class_names)}
    known = set(known_ids)
    out = Predictions(path, k)
    for line, cells in rows:
        if len(cells) != k + 1:
            raise DataError(f"expected {k + 1} cells, got {len(cells)}", path=path, line=line)
        iid = cells[0]
        if not iid:
            raise DataError("empty image_id", path=path, line=line)
        classes = [_class_index(c, names, num_classes, path, line) for c in cells[1:]]
        if len(set(classes)) != len(classes):
            raise DataError(f"the same class twice among the top-{k}: {cells[1:]}", path=path, line=line)
        if iid in out.top:
            raise DataError(f"second row for {iid}", path=path, line=line)
        if iid not in known:
            out.n_unknown += 1
        out.top[iid] = np.asarray(classes, dtype=np.int64)
    return out


def _number(cell: str, name: str, path: str, line: int) -> float:
    try:
        v = float(cell)
    except ValueError:
        raise DataError(f"{name} must be a number, got {cell!r}", path=path, line=line) from None
    if not math.isfinite(v):
        raise DataError(f"{name} must be finite, got {cell!r}", path=path, line=line)
    return v


def read_boxes(path: str, known_ids: Sequence[str]) -> GivenBoxes:
    """Read a boxes CSV (module docstring); ``known_ids`` the split's image ids."""
    rows = _rows(path)
    _, head = _header(rows, path, BOX_COLUMNS)
    if head not in (list(BOX_COLUMNS), list(BOX_COLUMNS) + ["score"]):
        raise DataError(f"header must be image_id,x0,y0,x1,y1[,score], got {','.join(head)}", path=path, line=1)
    has_score = len(head) == 6
    known = set(known_ids)
    boxes: Dict[str, List[List[float]]] = {}
    scores: Dict[str, List[float]] = {}
    out = GivenBoxes(path, has_score)
    for line, cells in rows:
        if len(cells) != len(head):
            raise DataError(f"expected {len(head)} cells ({','.join(head)}), got {len(cells)}", path=path, line=line)
        iid = cells[0]
        if not iid:
            raise DataError("empty image_id", path=path, line=line)
        x0, y0, x1, y1 = (_number(c, n, path, line) for c, n in zip(cells[1:5], BOX_COLUMNS[1:]))
        if x1 < x0 or y1 < y0:
            raise DataError(f"box corners out of order: x0={x0:g} x1={x1:g} y0={y0:g} y1={y1:g} "
                            "(need x0 <= x1, y0 <= y1)", path=path, line=line)
        if iid not in known:
            out.n_unknown += 1
            continue
        boxes.setdefault(iid, []).append([x0, y0, x1, y1])
        out.lines.setdefault(iid, []).append(line)
        if has_score:
            scores.setdefault(iid, []).append(_number(cells[5], "score", path, line))
    out.boxes = {k: np.asarray(v, dtype=np.float64) for k, v in boxes.items()}
    out.scores = {k: np.asarray(v, dtype=np.float64) for k, v in scores.items()}
    return out
