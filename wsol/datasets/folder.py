"""Any image folder plus one CSV of boxes: ``image,label,x0,y0,x1,y1``.

One row per box (several rows for an image with several boxes). The header is optional;
with one, the columns may come in any order (names: image/path/file, label/class,
x0/xmin, y0/ymin, x1/xmax, y1/ymax). ``image`` is relative to the folder; ``label`` is a
class index or a class name. Class names come from ``classes=FILE`` (one per line, line i =
class i), else, when the labels are names, from their sorted set.

Optional columns (header needed): ``mask`` (a grayscale mask image of the object, relative
to the folder; the masks named on an image's rows are united) and ``ignore`` (a region to
leave out of the pixel metrics). A pixel is object where the gray value is above 0.5.
"""
from __future__ import annotations

import csv as _csv
import io
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from wsol.datasets.base import MaskRef, Sample, WsolDataset, check_image_id, register_dataset, require_file
from wsol.datasets.textfiles import to_number
from wsol.utils.numbers import parse_number
from wsol.errors import DataError, closest
from wsol.utils.io import read_text_file, text_lines

DEFAULT_CSVS = ("boxes.csv", "annotations.csv")
COLUMNS = ("image", "label", "x0", "y0", "x1", "y1")
ALIASES = {
    "image": ("image", "path", "file", "filename", "image_id", "img"),
    "label": ("label", "class", "class_name", "category", "class_id"),
    "x0": ("x0", "xmin", "x_min", "left"),
    "y0": ("y0", "ymin", "y_min", "top"),
    "x1": ("x1", "xmax", "x_max", "right"),
    "y1": ("y1", "ymax", "y_max", "bottom"),
}
OPTIONAL = {"mask": ("mask", "mask_path", "segmentation"), "ignore": ("ignore", "ignore_mask")}


def _is_number(v: str) -> bool:
    try:
        parse_number(v, float)
        return True
    except ValueError:
        return False


def _is_int(v: str) -> bool:
    try:
        parse_number(v, int)
        return True
    except ValueError:
        return False


def read_class_list(path: str) -> List[str]:
    """Class names, one per line (line i = class i); duplicates raise DataError (file:line)."""
    require_file(path, "class list file")
    names: List[str] = []
    seen: Dict[str, int] = {}
    for ln, line in enumerate(text_lines(read_text_file(path, "class list file")), 1):
        name = line.strip()
        if not name:
            continue
        if name in seen:
            raise DataError(f"duplicate class name {name!r} (first on line {seen[name]})", path=path, line=ln)
        seen[name] = ln
        names.append(name)
    if not names:
        raise DataError("empty class list", path=path)
    return names


def _find_csv(root: str, csv: Optional[str]) -> str:
    if csv is not None:
        if os.path.isfile(csv) or os.path.isabs(csv):
            return require_file(csv, "box CSV")
        return require_file(os.path.join(root, csv), "box CSV")
    found = [os.path.join(root, n) for n in DEFAULT_CSVS if os.path.isfile(os.path.join(root, n))]
    if len(found) > 1:
        raise DataError(f"both {' and '.join(DEFAULT_CSVS)} here; pass csv=FILE", path=root)
    if not found:
        raise DataError(f"no box CSV ({' or '.join(DEFAULT_CSVS)}; or pass csv=FILE with rows "
                        "image,label,x0,y0,x1,y1)", path=root)
    return found[0]


def _header(row: List[str], path: str) -> Optional[List[int]]:
    """Column order from a header row, or None when ``row`` is data."""
    if any(_is_number(v) for v in row[2:]):
        return None
    cols = [c.strip().lower() for c in row]
    order = []
    for key in COLUMNS:
        hit = [i for i, c in enumerate(cols) if c in ALIASES[key]]
        if len(hit) != 1:
            raise DataError(f"header {','.join(row)!r} needs exactly one column {key} "
                            f"(one of {'/'.join(ALIASES[key])}); columns: {','.join(COLUMNS)}", path=path, line=1)
        order.append(hit[0])
    return order


def _image_id(value: str, root: str, path: str, ln: int) -> str:
    v = value.strip()
    if not v:
        raise DataError("empty image path", path=path, line=ln)
    if os.path.isabs(v):
        rel = os.path.relpath(v, root)
        if rel.startswith(".."):
            raise DataError(f"image {v} is outside the image folder {root}", path=path, line=ln)
        v = rel
    v = os.path.normpath(v).replace(os.sep, "/")
    if v == ".." or v.startswith("../"):
        raise DataError(f"image {value} is outside the image folder {root}", path=path, line=ln)
    return check_image_id(v, path, ln)


def read_folder(root: str, split: str = "test", csv: Optional[str] = None,
                classes: Optional[str] = None) -> WsolDataset:
    """Read an image folder ``root`` and its box CSV (``csv=``, default boxes.csv/annotations.csv).

    Images keep the order of their first row; every row adds a box. Sizes are left 0 (read
    from the image when needed). Bad rows raise DataError naming file and line.
    """
    csv_path = _find_csv(root, csv)
    class_names = read_class_list(classes) if classes is not None else []
    rows, masks, opt_cols = _read_box_rows(csv_path, root)
    if not rows:
        raise DataError("no rows", path=csv_path)

    labels, class_names = _resolve_labels(rows, class_names, classes, csv_path)
    refs = _mask_refs(rows, masks, opt_cols, root, csv_path)
    samples = [Sample(image, os.path.join(root, image), labels[image], np.asarray(b, dtype=np.float64),
                      mask=refs[image])
               for image, (_, _lab, b) in rows.items()]
    return WsolDataset("folder", split, root, root, samples, class_names)


_Rows = Dict[str, Tuple[int, str, List[List[float]]]]


def _read_box_rows(csv_path: str, root: str) -> Tuple[_Rows, Dict[str, Tuple[List[str], List[str]]], Dict[str, int]]:
    """The box CSV -> (image -> (first line, label, boxes), image -> (mask files, ignore files),
    optional column -> index). Header optional; every row checked."""
    rows: _Rows = {}
    masks: Dict[str, Tuple[List[str], List[str]]] = {}
    opt_cols: Dict[str, int] = {}
    order: Optional[List[int]] = None
    n_fields, first = len(COLUMNS), True
    with io.StringIO(read_text_file(csv_path, "box CSV"), newline="") as f:
        reader = _csv.reader(f)
        for row in reader:
            ln = reader.line_num
            if not row or not "".join(row).strip():
                continue
            if first:
                first = False
                order = _header(row, csv_path)
                if order is not None:
                    n_fields = len(row)
                    cols = [c.strip().lower() for c in row]
                    opt_cols = {k: cols.index(a) for k, al in OPTIONAL.items() for a in al if a in cols}
                    continue
            if len(row) != n_fields:
                raise DataError(f"expected {n_fields} fields ({','.join(COLUMNS)}), got {len(row)}",
                                path=csv_path, line=ln)
            image, label, box = _parse_box_row([row[i] for i in order] if order is not None else row,
                                               root, csv_path, ln)
            if opt_cols:
                _add_mask_files(masks.setdefault(image, ([], [])), row, opt_cols)
            _add_box(rows, image, label, box, csv_path, ln)
    return rows, masks, opt_cols


def _parse_box_row(vals: List[str], root: str, csv_path: str, ln: int) -> Tuple[str, str, List[float]]:
    """One data row's (image id, label, [x0, y0, x1, y1]), checked."""
    image, label = _image_id(vals[0], root, csv_path, ln), vals[1].strip()
    box = [to_number(v.strip(), float, csv_path, ln, c) for v, c in zip(vals[2:], COLUMNS[2:])]
    if box[2] < box[0] or box[3] < box[1]:
        raise DataError(f"inverted box x0,y0,x1,y1 = {','.join(v.strip() for v in vals[2:])} "
                        "(x1 < x0 or y1 < y0)", path=csv_path, line=ln)
    if not label:
        raise DataError("empty label", path=csv_path, line=ln)
    return image, label, box


def _add_mask_files(mk: Tuple[List[str], List[str]], row: List[str], opt_cols: Dict[str, int]) -> None:
    """The row's mask and ignore files, each kept once per image."""
    for key, lst in (("mask", mk[0]), ("ignore", mk[1])):
        v = row[opt_cols[key]].strip() if key in opt_cols else ""
        if v and v not in lst:
            lst.append(v)


def _add_box(rows: _Rows, image: str, label: str, box: List[float], csv_path: str, ln: int) -> None:
    """Add a row's box to its image (the same label on every row of an image)."""
    if image in rows:
        if rows[image][1] != label:
            raise DataError(f"label {label!r} of {image} differs from {rows[image][1]!r} on line "
                            f"{rows[image][0]}", path=csv_path, line=ln)
        rows[image][2].append(box)
    else:
        rows[image] = (ln, label, [box])


def _resolve_labels(rows: Dict[str, Tuple[int, str, List[List[float]]]], class_names: List[str],
                    classes: Optional[str], csv_path: str) -> Tuple[Dict[str, int], List[str]]:
    """Each image's class index (by the class list, or indices, or sorted names) and the class names."""
    index = {n: i for i, n in enumerate(class_names)}
    labels: Dict[str, int] = {}
    if class_names:
        for image, (ln, lab, _) in rows.items():
            if lab in index:
                labels[image] = index[lab]
            elif _is_int(lab) and 0 <= int(lab) < len(class_names):
                labels[image] = int(lab)
            else:
                hint = closest(lab, class_names)
                raise DataError(f"label {lab!r} is neither a class of {classes} nor an index 0..{len(class_names) - 1}"
                                + (f"; did you mean: {', '.join(hint)}" if hint else ""), path=csv_path, line=ln)
    else:
        kinds = {image: _is_int(lab) for image, (_, lab, _b) in rows.items()}
        if all(kinds.values()):
            for image, (ln, lab, _) in rows.items():
                if int(lab) < 0:
                    raise DataError(f"negative class index {lab}", path=csv_path, line=ln)
                labels[image] = int(lab)
        else:
            if any(kinds.values()):
                first_image = next(iter(rows))
                image = next(i for i, k in kinds.items() if k != kinds[first_image])
                what = ("a number", "a name") if kinds[first_image] else ("a name", "a number")
                raise DataError(f"label {rows[image][1]!r} is {what[1]} but {rows[first_image][1]!r} on line "
                                f"{rows[first_image][0]} is {what[0]}; pass classes=FILE to say which is which",
                                path=csv_path, line=rows[image][0])
            class_names = sorted({lab for _, lab, _b in rows.values()})
            index = {n: i for i, n in enumerate(class_names)}
            labels = {image: index[lab] for image, (_, lab, _b) in rows.items()}
    return labels, class_names


def _mask_refs(rows: Dict[str, Tuple[int, str, List[List[float]]]], masks: Dict[str, Tuple[List[str], List[str]]],
               opt_cols: Dict[str, int], root: str, csv_path: str) -> Dict[str, Optional[MaskRef]]:
    """Each image's mask (and ignore mask) when the CSV has a mask column."""
    refs: Dict[str, Optional[MaskRef]] = {image: None for image in rows}
    if "mask" in opt_cols:
        for image, (ln, _lab, _b) in rows.items():
            paths, ignores = masks[image]
            if not paths:
                raise DataError(f"no mask for {image} (the CSV has a mask column)", path=csv_path, line=ln)
            if len(ignores) > 1:
                raise DataError(f"{image} has {len(ignores)} different ignore masks", path=csv_path, line=ln)
            refs[image] = MaskRef(tuple(os.path.join(root, p) for p in paths),
                                  os.path.join(root, ignores[0]) if ignores else "")
    return refs


def write_example(folder: str) -> tuple:
    """A tiny image folder: 3 classes x 2 drawn images, boxes.csv with class names as labels."""
    from wsol.datasets.examples import EXAMPLE_CLASSES, example_images, save_image, write_lines

    imgs = example_images(n_per_class=2, seed=1)
    for im in imgs:
        save_image(os.path.join(folder, "images", im.name), im.pixels)
    write_lines(os.path.join(folder, "boxes.csv"), ["image,label,x0,y0,x1,y1"] + [
        f"images/{im.name},{EXAMPLE_CLASSES[im.label]},{','.join(map(str, im.box))}" for im in imgs])
    return folder, "test", {}


@register_dataset("folder", "an image folder + a CSV image,label,x0,y0,x1,y1 (csv=FILE, classes=FILE)",
                  splits=("test",), example=write_example, options={"csv": "the annotation CSV (default: boxes.csv or annotations.csv in the root)",
                                             "classes": "class list file, one name per line (line i = class i)"})
def _build(root: str, split: str = "test", csv: Optional[str] = None, classes: Optional[str] = None) -> WsolDataset:
    return read_folder(root, split, csv=csv, classes=classes)
