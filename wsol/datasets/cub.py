"""CUB-200-2011 in its official layout (docs/datasets.md, Dataset layouts)."""
from __future__ import annotations

import os
from typing import Dict, List, Optional

import numpy as np

from wsol.datasets.base import MaskRef, Sample, WsolDataset, check_image_id, register_dataset, require_file
from wsol.datasets.textfiles import read_rows, to_number
from wsol.errors import DataError

#: CUB's segmentations are soft (the share of annotators marking the pixel, as gray 0-255):
#: a pixel is object iff its gray value is above this, i.e. a majority of annotators.
CUB_SEG_FG_ABOVE = 127.5

CUB_FILES = ("images.txt", "image_class_labels.txt", "classes.txt", "train_test_split.txt",
             "bounding_boxes.txt")


def _read_map(path: str, kind=int) -> Dict[int, object]:
    """``id value`` lines; ids must be unique, and so must image paths (``kind=str``): one image
    listed under two ids would be counted twice."""
    out: Dict[int, object] = {}
    seen: Dict[str, tuple] = {}
    for ln, (k, v) in read_rows(path, 2):
        key = to_number(k, int, path, ln, "image id")
        if key in out:
            raise DataError(f"duplicate id {key}", path=path, line=ln)
        if kind is str:
            out[key] = check_image_id(v, path, ln)
            norm = os.path.normpath(v)
            if norm in seen:
                raise DataError(f"image {v!r} is listed twice (also as id {seen[norm][0]} on line "
                                f"{seen[norm][1]}): it would be counted twice", path=path, line=ln)
            seen[norm] = (key, ln)
        else:
            out[key] = to_number(v, kind, path, ln, "value")
    return out


def check_seg_threshold(value) -> float:
    """seg_threshold as a float in [0, 255): below 0 every pixel would be object, from 255 none."""
    import math

    try:
        v = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        v = float("nan")
    if not math.isfinite(v) or not 0 <= v < 255:
        raise DataError(f"seg_threshold must be a gray level in [0, 255), got {value!r}")
    return v


def find_segmentations(root: str, segmentations: Optional[str]) -> Optional[str]:
    """The CUB segmentation folder: ``segmentations=DIR``, else ``segmentations/`` in the
    CUB folder or beside it (where the separate archive unpacks); ``off`` turns masks off."""
    if segmentations is not None:
        if str(segmentations).lower() in ("off", "none", "no", ""):
            return None
        if not os.path.isdir(segmentations):
            raise DataError("CUB segmentation folder not found (segmentations=DIR)", path=str(segmentations))
        return segmentations
    for cand in (os.path.join(root, "segmentations"),
                 os.path.join(os.path.dirname(os.path.abspath(root)), "segmentations")):
        if os.path.isdir(cand):
            return cand
    return None


def read_cub(root: str, split: str = "test", segmentations: Optional[str] = None,
             seg_threshold: float = CUB_SEG_FG_ABOVE) -> WsolDataset:
    """Read split 'train' or 'test' of a CUB-200-2011 folder (``root`` holds ``images/``).

    Boxes ``x y w h`` (floats) become ``x0, y0, x0 + w, y0 + h`` in original pixels; labels
    are 0-based (classes.txt numbers them from 1). With a segmentation folder
    (:func:`find_segmentations`) each sample's mask is ``<folder>/<class>/<image>.png``,
    object where the gray value is above ``seg_threshold``.
    """
    if split not in ("train", "test", "all"):
        raise DataError(f"unknown CUB split {split!r} (train, test or all)", path=root)
    # CUB archives unpack to CUB_200_2011/; accept the parent folder too.
    if not os.path.isfile(os.path.join(root, "images.txt")) and \
            os.path.isfile(os.path.join(root, "CUB_200_2011", "images.txt")):
        root = os.path.join(root, "CUB_200_2011")
    for f in CUB_FILES:
        require_file(os.path.join(root, f), f"CUB file {f} (is --root the CUB_200_2011 folder?)")
    image_root = os.path.join(root, "images")
    seg_dir = find_segmentations(root, segmentations)
    seg_thr = check_seg_threshold(seg_threshold)
    paths_file = os.path.join(root, "images.txt")
    paths = _read_map(paths_file, str)
    labels_file = os.path.join(root, "image_class_labels.txt")
    labels = _read_map(labels_file, int)
    split_file = os.path.join(root, "train_test_split.txt")
    is_train = _read_map(split_file, int)
    class_names = _read_cub_classes(os.path.join(root, "classes.txt"))
    boxes_file = os.path.join(root, "bounding_boxes.txt")
    boxes = _read_cub_boxes(boxes_file)
    samples: List[Sample] = []
    for iid in sorted(paths):
        label = _cub_label(iid, labels, labels_file, is_train, split_file, len(class_names))
        if split != "all" and is_train[iid] != (1 if split == "train" else 0):
            continue
        if iid not in boxes:
            raise DataError(f"image id {iid} has no box", path=boxes_file)
        rel = str(paths[iid])
        mask = None
        if seg_dir is not None:
            mask = MaskRef((os.path.join(seg_dir, os.path.splitext(rel)[0] + ".png"),), fg_above=seg_thr)
        samples.append(Sample(image_id=rel, path=os.path.join(image_root, rel), label=label,
                              boxes=np.asarray(boxes[iid], dtype=np.float64), mask=mask))
    return WsolDataset("cub", split, root, image_root, samples, class_names)


def _read_cub_classes(classes_file: str) -> List[str]:
    """classes.txt: ``id name`` rows, ids 1..N in order."""
    class_names: List[str] = []
    for ln, (k, name) in read_rows(classes_file, 2):
        idx = to_number(k, int, classes_file, ln, "class id")
        if idx != len(class_names) + 1:
            raise DataError(f"class ids must run 1..N in order, got {idx}", path=classes_file, line=ln)
        class_names.append(name)
    return class_names


def _read_cub_boxes(boxes_file: str) -> Dict[int, List[List[float]]]:
    """bounding_boxes.txt: ``id x y w h`` rows -> image id -> [[x0, y0, x1, y1], ...]."""
    boxes: Dict[int, List[List[float]]] = {}
    for ln, fields in read_rows(boxes_file, 5, at_least=True):
        if len(fields) != 5:
            raise DataError(f"expected 5 fields, got {len(fields)}", path=boxes_file, line=ln)
        iid = to_number(fields[0], int, boxes_file, ln, "image id")
        x, y, w, h = (to_number(v, float, boxes_file, ln, "box coordinate") for v in fields[1:])
        if w < 0 or h < 0:
            raise DataError(f"negative box width/height ({w}, {h})", path=boxes_file, line=ln)
        boxes.setdefault(iid, []).append([x, y, x + w, y + h])
    return boxes


def _cub_label(iid: int, labels: Dict[int, int], labels_file: str, is_train: Dict[int, int], split_file: str,
               n_classes: int) -> int:
    """Image ``iid``'s 0-based label, checked: it has a label and a split flag, in 1..N."""
    for name, table, f in (("label", labels, labels_file), ("split flag", is_train, split_file)):
        if iid not in table:
            raise DataError(f"image id {iid} has no {name}", path=f)
    label = int(labels[iid]) - 1
    if not 0 <= label < n_classes:
        line = next((ln for ln, (k, _) in read_rows(labels_file, 2) if k.strip() == str(iid)), None)
        raise DataError(f"class id {label + 1} of image {iid} outside 1..{n_classes} (classes.txt)",
                        path=labels_file, line=line)
    return label


def write_example(folder: str) -> tuple:
    """A tiny CUB-layout folder: 3 classes x 2 drawn images, one of each class per split."""
    from wsol.datasets.examples import EXAMPLE_CLASSES, example_images, save_image, write_lines

    imgs = example_images(n_per_class=2)
    rels = []
    for im in imgs:
        rels.append(f"{im.label + 1:03d}.{EXAMPLE_CLASSES[im.label]}/{im.name}")
        save_image(os.path.join(folder, "images", rels[-1]), im.pixels)
    ids = range(1, len(imgs) + 1)
    write_lines(os.path.join(folder, "images.txt"), [f"{i} {r}" for i, r in zip(ids, rels)])
    write_lines(os.path.join(folder, "image_class_labels.txt"), [f"{i} {im.label + 1}" for i, im in zip(ids, imgs)])
    write_lines(os.path.join(folder, "classes.txt"), [f"{c + 1} {c + 1:03d}.{n}" for c, n in enumerate(EXAMPLE_CLASSES)])
    write_lines(os.path.join(folder, "train_test_split.txt"), [f"{i} {int(i <= len(EXAMPLE_CLASSES))}" for i in ids])
    write_lines(os.path.join(folder, "bounding_boxes.txt"),  # x y w h, with x1 = x + w
                [f"{i} {im.box[0]} {im.box[1]} {im.box[2] - im.box[0]} {im.box[3] - im.box[1]}" for i, im in zip(ids, imgs)])
    return folder, "test", {}


@register_dataset("cub", "CUB-200-2011, official layout (images.txt, bounding_boxes.txt, ...)",
                  splits=("train", "test"),
                  options={"segmentations": "CUB segmentation folder (default: segmentations/ inside or beside "
                                            "the CUB folder; off = no masks)",
                           "seg_threshold": "gray level (0-255) above which a soft segmentation pixel is object "
                                            "(default 127.5: a majority of annotators)"},
                  example=write_example)
def _build(root: str, split: str = "test", segmentations: Optional[str] = None,
           seg_threshold: float = CUB_SEG_FG_ABOVE) -> WsolDataset:
    return read_cub(root, split, segmentations=segmentations, seg_threshold=seg_threshold)
