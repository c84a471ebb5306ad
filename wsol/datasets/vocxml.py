"""PASCAL VOC annotation XML (the ILSVRC bbox archives use it), read with line numbers.

Only what WSOL needs: ``size/width,height`` and, per ``object``, its ``name`` and ``bndbox``.
Every fault is a :class:`~wsol.errors.DataError` naming the file and the line.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple
from xml.parsers import expat

from wsol.datasets.textfiles import to_number
from wsol.errors import DataError

_COORDS = ("xmin", "ymin", "xmax", "ymax")


@dataclass
class VocObject:
    """One ``<object>``: its class name and box ``x0, y0, x1, y1`` (as written)."""

    name: str
    box: Tuple[float, float, float, float]
    line: int  # line of <bndbox> (of <object> when the box is missing)
    name_line: int


@dataclass
class VocAnnotation:
    path: str
    width: int
    height: int
    objects: List[VocObject] = field(default_factory=list)


def _number(text: str, what: str, path: str, line: int) -> float:
    return to_number(text.strip(), float, path, line, what)


def read_voc_xml(path: str) -> VocAnnotation:
    """Parse one VOC XML file.

    Raises DataError (file:line) for malformed XML, a missing ``size`` or ``bndbox`` field,
    a non-numeric value, or an inverted box (x1 < x0 or y1 < y0).
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise DataError("missing annotation XML", path=path) from None
    except OSError as e:
        raise DataError(f"cannot read ({e.strerror})", path=path) from None
    found = _VocFields()
    found.parse(data, path)
    w, h = _image_size(found, path)
    out = VocAnnotation(path, w, h)
    out.objects.extend(_voc_object(o, path) for o in found.objects)
    return out


class _VocFields:
    """The raw fields of a VOC file as expat streams them, each with its line: the size's
    width and height and, per object, its name and bndbox coordinates."""

    def __init__(self) -> None:
        self.stack: List[str] = []
        self.text: List[List[str]] = []
        self.size: Dict[str, Tuple[str, int]] = {}
        self.size_line: List[int] = []
        self.objects: List[dict] = []
        self.parser = expat.ParserCreate()
        self.parser.StartElementHandler = self.start
        self.parser.EndElementHandler = self.end
        self.parser.CharacterDataHandler = self.chars

    def parse(self, data: bytes, path: str) -> None:
        try:
            self.parser.Parse(data, True)
        except expat.ExpatError as e:
            raise DataError(f"malformed XML ({expat.ErrorString(e.code)})", path=path, line=e.lineno) from None

    def start(self, name: str, _attrs) -> None:
        self.stack.append(name)
        self.text.append([])
        line = self.parser.CurrentLineNumber
        rel = tuple(self.stack[1:])
        if rel == ("object",):
            self.objects.append({"line": line, "coords": {}, "box_line": None, "name": None, "name_line": line})
        elif rel == ("size",):
            self.size_line.append(line)
        elif rel == ("object", "bndbox") and self.objects:
            self.objects[-1]["box_line"] = line

    def end(self, name: str) -> None:
        value = "".join(self.text.pop())
        rel = tuple(self.stack[1:])
        line = self.parser.CurrentLineNumber
        self.stack.pop()
        if len(rel) == 2 and rel[0] == "size" and rel[1] in ("width", "height"):
            self.size[rel[1]] = (value, line)
        elif rel == ("object", "name") and self.objects:
            self.objects[-1]["name"] = value.strip()
            self.objects[-1]["name_line"] = line
        elif len(rel) == 3 and rel[:2] == ("object", "bndbox") and rel[2] in _COORDS and self.objects:
            self.objects[-1]["coords"][rel[2]] = (value, line)

    def chars(self, data_: str) -> None:
        if self.text:
            self.text[-1].append(data_)


def _image_size(found: _VocFields, path: str) -> Tuple[int, int]:
    """The checked ``<size>``: positive whole width and height."""
    size = found.size
    if "width" not in size or "height" not in size:
        raise DataError("no <size> with <width> and <height>", path=path,
                        line=found.size_line[0] if found.size_line else None)
    w = _number(size["width"][0], "size/width", path, size["width"][1])
    h = _number(size["height"][0], "size/height", path, size["height"][1])
    if w <= 0 or h <= 0 or w != int(w) or h != int(h):
        raise DataError(f"invalid image size {size['width'][0].strip()}x{size['height'][0].strip()}",
                        path=path, line=size["width"][1])
    return int(w), int(h)


def _voc_object(o: dict, path: str) -> VocObject:
    """One ``<object>``'s checked name and box."""
    if not o["name"]:
        raise DataError("object without <name>", path=path, line=o["line"])
    line = o["box_line"] or o["line"]
    missing = [c for c in _COORDS if c not in o["coords"]]
    if missing:
        raise DataError(f"object {o['name']} has no bndbox/{', '.join(missing)}", path=path, line=line)
    x0, y0, x1, y1 = (_number(o["coords"][c][0], f"bndbox/{c}", path, o["coords"][c][1]) for c in _COORDS)
    if x1 < x0 or y1 < y0:
        raise DataError(f"inverted box x0,y0,x1,y1 = {x0:g},{y0:g},{x1:g},{y1:g} (x1 < x0 or y1 < y0)",
                        path=path, line=line)
    return VocObject(o["name"], (x0, y0, x1, y1), line, o["name_line"])


def clip_box(box, width: float, height: float) -> Optional[Tuple[float, float, float, float]]:
    """The box clipped to ``[0, width] x [0, height]``, or None when it is already inside.

    A box edge may sit on the border (``x1 == width``): VOC/ILSVRC boxes do, and wsoleval keeps
    them as they are.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    if x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height:
        return None
    cx0, cx1 = min(max(x0, 0.0), width), min(max(x1, 0.0), width)
    cy0, cy1 = min(max(y0, 0.0), height), min(max(y1, 0.0), height)
    return cx0, cy0, cx1, cy1
