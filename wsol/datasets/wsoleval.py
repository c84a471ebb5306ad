"""wsolevaluation metadata (Choe et al.): read it, and write it for any dataset (docs/datasets.md, Dataset layouts).

A split folder holds ``image_ids.txt`` (one image id per line), ``class_labels.txt``
(``path,label``), ``image_sizes.txt`` (``path,w,h``) and ``localization.txt``
(``path,x0,y0,x1,y1``, one line per box). wsol also writes ``class_names.txt`` (line i =
class i) when the dataset has class names; wsolevaluation ignores it.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
from tqdm import tqdm

from wsol.datasets.base import DataIssue, Sample, WsolDataset, check_image_id, register_dataset, require_file
from wsol.datasets.textfiles import read_rows, to_number
from wsol.datasets.vocxml import clip_box
from wsol.errors import DataError, first_line
from wsol.utils.io import atomic_write, read_text_file, text_lines, write_text_atomic
from wsol.utils.outdirs import claim_output_dir

FILES = ("image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt")
CLASS_NAMES = "class_names.txt"


def _split_dir(root: str, split: str) -> str:
    if os.path.isfile(os.path.join(root, "image_ids.txt")):
        return root
    if split and os.path.isfile(os.path.join(root, split, "image_ids.txt")):
        return os.path.join(root, split)
    raise DataError(f"no wsolevaluation metadata here: needs image_ids.txt, class_labels.txt "
                    f"(+ image_sizes.txt, localization.txt) in the folder or in its {split!r} subfolder",
                    path=root)


@dataclass
class SplitMetadata:
    """What every wsolevaluation-style split folder shares: image ids (in file order, with
    their line numbers), class labels and, where image_sizes.txt exists, image sizes."""

    order: List[str]
    where: Dict[str, int]
    labels: Dict[str, int]
    labels_path: str
    sizes: Dict[str, Tuple[int, int]]

    def known(self, iid: str, path: str, ln: int) -> None:
        """One-line error (file:line) unless ``iid`` is listed in image_ids.txt."""
        if iid not in self.where:
            raise DataError(f"image id {iid} is not in image_ids.txt", path=path, line=ln)


def read_split_metadata(d: str) -> SplitMetadata:
    """Read ``image_ids.txt``, ``class_labels.txt`` and (optional) ``image_sizes.txt`` of the
    split folder ``d``: ids checked against escaping the root and duplicates, labels and sizes
    against unknown ids, duplicates and invalid values (one-line errors naming file:line)."""
    ids_path = os.path.join(d, "image_ids.txt")
    order: List[str] = []
    where: Dict[str, int] = {}
    for ln, (iid,) in read_rows(ids_path, 1, sep="\t"):
        check_image_id(iid, ids_path, ln)
        if iid in where:
            raise DataError(f"duplicate image id {iid} (first on line {where[iid]})", path=ids_path, line=ln)
        where[iid] = ln
        order.append(iid)
    if not order:
        raise DataError("no image ids", path=ids_path)
    meta = SplitMetadata(order, where, {}, require_file(os.path.join(d, "class_labels.txt"),
                                                        "wsolevaluation class_labels.txt"), {})
    for ln, (iid, lab) in read_rows(meta.labels_path, 2, sep=","):
        meta.known(iid, meta.labels_path, ln)
        if iid in meta.labels:
            raise DataError(f"second label for {iid}", path=meta.labels_path, line=ln)
        meta.labels[iid] = to_number(lab, int, meta.labels_path, ln, "class label")
        if meta.labels[iid] < 0:
            raise DataError(f"negative class label {meta.labels[iid]}", path=meta.labels_path, line=ln)
    sizes_path = os.path.join(d, "image_sizes.txt")
    if os.path.isfile(sizes_path):
        for ln, (iid, w, h) in read_rows(sizes_path, 3, sep=","):
            meta.known(iid, sizes_path, ln)
            wh = (to_number(w, int, sizes_path, ln, "width"), to_number(h, int, sizes_path, ln, "height"))
            if wh[0] <= 0 or wh[1] <= 0:
                raise DataError(f"invalid image size {w}x{h}", path=sizes_path, line=ln)
            meta.sizes[iid] = wh
    return meta


def _fmt(v: float) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() else repr(v)


def read_wsoleval(root: str, split: str = "test", images: Optional[str] = None) -> WsolDataset:
    """Read a wsolevaluation metadata split folder (``root`` or ``root/split``).

    images: the image root the ids are relative to; without it ``Sample.path`` is '' (enough
    to score heatmaps: sizes come from image_sizes.txt). image_sizes.txt and localization.txt
    may be absent (sizes 0 / no boxes: e.g. wsolevaluation's train splits).
    """
    d = _split_dir(root, split)
    meta = read_split_metadata(d)
    order, where, labels, labels_path, sizes, known = (meta.order, meta.where, meta.labels, meta.labels_path,
                                                       meta.sizes, meta.known)

    loc_path = os.path.join(d, "localization.txt")
    has_loc = os.path.isfile(loc_path)
    boxes, issues = _read_boxes(d, loc_path, sizes, known)
    class_names: List[str] = []
    names_path = os.path.join(d, CLASS_NAMES)
    if os.path.isfile(names_path):
        class_names = [line for line in text_lines(read_text_file(names_path, "class names file")) if line.strip()]
    samples = []
    for iid in order:
        if iid not in labels:
            raise DataError(f"no label for image {iid} (image_ids.txt line {where[iid]})", path=labels_path)
        if has_loc and iid not in boxes:
            raise DataError(f"no box for image {iid} (image_ids.txt line {where[iid]})", path=loc_path)
        if class_names and labels[iid] >= len(class_names):
            raise DataError(f"label {labels[iid]} of {iid} is outside the {len(class_names)} classes of "
                            f"{names_path}", path=labels_path)
        w, h = sizes.get(iid, (0, 0))
        samples.append(Sample(iid, os.path.join(images, iid) if images else "", labels[iid],
                              np.asarray(boxes.get(iid, []), dtype=np.float64).reshape(-1, 4), w, h))
    return WsolDataset("wsoleval", split, root, images or "", samples, class_names, issues)


def _read_boxes(d: str, loc_path: str, sizes: Dict[str, Tuple[int, int]], known) -> Tuple[Dict[str, List[List[float]]],
                                                                                         List[DataIssue]]:
    """localization.txt: boxes per image id (clipped to the annotated size, with an issue
    each), or no boxes and one issue when the file is absent."""
    issues: List[DataIssue] = []
    boxes: Dict[str, List[List[float]]] = {}
    if os.path.isfile(loc_path):
        for ln, (iid, *coords) in read_rows(loc_path, 5, sep=","):
            known(iid, loc_path, ln)
            b = [to_number(v, float, loc_path, ln, "box coordinate") for v in coords]
            if b[2] < b[0] or b[3] < b[1]:
                raise DataError(f"inverted box x0,y0,x1,y1 = {','.join(coords)} (x1 < x0 or y1 < y0)",
                                path=loc_path, line=ln)
            if iid in sizes:
                c = clip_box(b, *sizes[iid])
                if c is not None:
                    issues.append(DataIssue("box_clipped", f"box {','.join(coords)} of {iid} is outside the "
                                            f"{sizes[iid][0]}x{sizes[iid][1]} image; clipped to "
                                            f"{','.join(_fmt(v) for v in c)}", loc_path, ln, iid))
                    b = list(c)
            boxes.setdefault(iid, []).append(b)
    else:
        issues.append(DataIssue("no_boxes", "no localization.txt: samples have no boxes", d))

    return boxes, issues


def image_size(sample: Sample) -> Tuple[int, int]:
    """``(width, height)`` of a sample: its record, else the image header (nothing decoded)."""
    if sample.width > 0 and sample.height > 0:
        return sample.width, sample.height
    if not sample.path:
        raise DataError(f"size of {sample.image_id} unknown and no image path to read it from")
    from PIL import Image

    try:
        with Image.open(sample.path) as im:
            return im.size
    except FileNotFoundError:
        raise DataError("missing image", path=sample.path) from None
    except Image.DecompressionBombError:
        raise DataError("image too large to decode safely (PIL's decompression-bomb limit)", path=sample.path) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"unreadable image ({first_line(e, 100)})", path=sample.path) from None


def write_wsoleval_metadata(dataset: WsolDataset, out_dir: str, progress: bool = True) -> None:
    """Write ``dataset`` as a wsolevaluation split folder ``out_dir`` (created if needed).

    Sizes come from ``Sample.width/height``, else from the image header (PIL, not decoded).
    Coordinates are written as integers when integral, else as Python's shortest float repr,
    so reading the folder back gives the same samples.
    """
    claim_output_dir(out_dir, "metadata", FILES + (CLASS_NAMES,))
    seen = set()
    for s in dataset.samples:
        if "," in s.image_id or "\n" in s.image_id:
            raise DataError(f"image id {s.image_id!r} has a comma or newline: not writable as wsolevaluation "
                            "metadata")
        if s.image_id in seen:
            raise DataError(f"duplicate image id {s.image_id}")
        seen.add(s.image_id)
    n_boxless = sum(len(s.boxes) == 0 for s in dataset.samples)
    if 0 < n_boxless < len(dataset.samples):
        first = next(s for s in dataset.samples if len(s.boxes) == 0)
        raise DataError(f"{n_boxless} images have no box (e.g. {first.image_id}): localization.txt needs one "
                        "for every image")
    write_boxes = n_boxless == 0
    sizes = [image_size(s) for s in tqdm(dataset.samples, desc="image sizes", unit="img",
                                          disable=not progress or all(s.width and s.height for s in dataset.samples))]
    names = FILES if write_boxes else FILES[:3]
    loc_path = os.path.join(out_dir, "localization.txt")
    if not write_boxes and os.path.isfile(loc_path):
        os.remove(loc_path)
    with contextlib.ExitStack() as stack:  # all four files appear together, complete, or none
        files = {name: stack.enter_context(atomic_write(os.path.join(out_dir, name), newline="\n"))
                 for name in names}
        for s, (w, h) in zip(dataset.samples, sizes):
            files["image_ids.txt"].write(f"{s.image_id}\n")
            files["class_labels.txt"].write(f"{s.image_id},{int(s.label)}\n")
            files["image_sizes.txt"].write(f"{s.image_id},{int(w)},{int(h)}\n")
            for b in (s.boxes if write_boxes else ()):
                files["localization.txt"].write(f"{s.image_id},{','.join(_fmt(v) for v in b)}\n")
    names_path = os.path.join(out_dir, CLASS_NAMES)
    if dataset.class_names:
        write_text_atomic(names_path, "".join(f"{n}\n" for n in dataset.class_names))
    elif os.path.isfile(names_path):
        os.remove(names_path)


def write_example(folder: str) -> tuple:
    """Tiny wsolevaluation metadata (``metadata/test``, no class_names.txt, as wsolevaluation
    ships it) for 3 classes x 2 drawn images under ``images/val``."""
    from wsol.datasets.examples import example_images, save_image, write_lines

    imgs = example_images(n_per_class=2, seed=2)
    ids = [f"val/{im.name}" for im in imgs]
    for iid, im in zip(ids, imgs):
        save_image(os.path.join(folder, "images", iid), im.pixels)
    meta = os.path.join(folder, "metadata", "test")
    write_lines(os.path.join(meta, "image_ids.txt"), ids)
    write_lines(os.path.join(meta, "class_labels.txt"), [f"{i},{im.label}" for i, im in zip(ids, imgs)])
    write_lines(os.path.join(meta, "image_sizes.txt"), [f"{i},{im.size[0]},{im.size[1]}" for i, im in zip(ids, imgs)])
    write_lines(os.path.join(meta, "localization.txt"), [f"{i},{','.join(map(str, im.box))}" for i, im in zip(ids, imgs)])
    return os.path.join(folder, "metadata"), "test", {"images": os.path.join(folder, "images")}


@register_dataset("wsoleval", "wsolevaluation metadata folder (image_ids.txt, class_labels.txt, "
                  "image_sizes.txt, localization.txt); images= image root (optional)", splits=("train", "val", "test"),
                  options={"images": "the image root the ids are relative to (also --images)"}, example=write_example)
def _build(root: str, split: str = "test", images: Optional[str] = None) -> WsolDataset:
    return read_wsoleval(root, split, images=images)
