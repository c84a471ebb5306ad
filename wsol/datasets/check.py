"""check-data: validate a dataset folder and say what is wrong with it, all at once.

``check_dataset`` reads the split with its adapter, then checks every image (exists, opens,
size agrees with the annotation), every box (inside the image, not inverted) and every
class (has images). Problems make ``ok`` False; warnings (boxes the adapter clipped,
classes without images, other adapter notes) do not.
"""
from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Tuple

from tqdm import tqdm

from wsol.datasets.base import WsolDataset, build_dataset
from wsol.errors import DataError


@dataclass
class CheckReport:
    """What check-data found. Lists of examples hold at most ``max_examples`` entries, except
    ``missing_images`` and ``unreadable_images`` which are complete."""

    dataset: str = ""
    root: str = ""
    split: str = ""
    n_images: int = 0
    n_boxes: int = 0
    n_classes: int = 0
    n_classes_without_images: int = 0
    classes_without_images: List[str] = field(default_factory=list)
    n_images_checked: int = 0
    decoded: bool = True  # images fully decoded (else only their headers read)
    missing_images: List[str] = field(default_factory=list)
    unreadable_images: List[str] = field(default_factory=list)
    n_boxes_outside: int = 0  # found now plus clipped by the adapter on load
    n_boxes_clipped: int = 0  # of those, clipped by the adapter
    boxes_outside: List[str] = field(default_factory=list)
    n_inverted_boxes: int = 0
    inverted_boxes: List[str] = field(default_factory=list)
    size_mismatches: List[str] = field(default_factory=list)
    n_masks: int = 0  # images with a ground-truth mask
    missing_mask_files: List[str] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    ok: bool = False


def _examples(items: List[str], k: int = 3) -> str:
    return ", ".join(items[:k]) + (" ..." if len(items) > k else "")


def _open_image(path: str, decode: bool) -> Tuple[Optional[Tuple[int, int]], str]:
    """``(size, '')`` of a readable image, or ``(None, reason)``."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            size = im.size
            if decode:
                im.load()
            else:
                im.verify()
    except Image.DecompressionBombError:
        return None, "too large to decode safely (PIL's decompression-bomb limit)"
    except Exception as e:  # PIL raises many types on bad files
        return None, (str(e).splitlines() or [type(e).__name__])[0][:100]
    if size[0] == 0 or size[1] == 0:
        return None, "zero-size image"
    return size, ""


def check_loaded(dataset: WsolDataset, verify_images: bool = True, decode: bool = True,
                 progress: bool = True, max_examples: int = 10, workers: Optional[int] = None) -> CheckReport:
    """Check an already read dataset (see :func:`check_dataset`)."""
    r = CheckReport(dataset.name, dataset.root, dataset.split, decoded=decode)
    samples = dataset.samples
    r.n_images = len(samples)
    r.n_boxes = int(sum(len(s.boxes) for s in samples))
    # without class names only the labels in use are known: no "classes without images" then
    r.n_classes = len(dataset.class_names) if dataset.class_names else len({s.label for s in samples})

    # images: exist, open, size as annotated
    no_path = 0
    sizes = {}
    to_open = []
    for s in samples:
        if not s.path:
            no_path += 1
        elif not os.path.isfile(s.path):
            r.missing_images.append(s.image_id)
        elif verify_images:
            to_open.append(s)
    n_threads = (os.cpu_count() or 1) if workers is None else workers
    # decoding is mostly C code that releases the GIL: threads keep every core busy
    pool = ThreadPoolExecutor(n_threads) if n_threads > 0 and len(to_open) > 1 else None
    try:
        opened = pool.map(_open_image, [s.path for s in to_open], [decode] * len(to_open)) if pool else \
            (_open_image(s.path, decode) for s in to_open)
        for s, (size, reason) in tqdm(zip(to_open, opened), total=len(to_open), desc="checking images",
                                      unit="img", disable=not progress):
            r.n_images_checked += 1
            if size is None:
                r.unreadable_images.append(f"{s.image_id} ({reason})")
                continue
            sizes[s.image_id] = size
            if s.width and s.height and size != (s.width, s.height):
                r.size_mismatches.append(f"{s.image_id}: annotated {s.width}x{s.height}, image is "
                                         f"{size[0]}x{size[1]}")
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)

    # boxes: inverted, outside the image
    for s in samples:
        w, h = (s.width, s.height) if s.width and s.height else sizes.get(s.image_id, (0, 0))
        for b in s.boxes:
            x0, y0, x1, y1 = (float(v) for v in b)
            desc = f"{s.image_id} [{x0:g},{y0:g},{x1:g},{y1:g}]"
            if x1 < x0 or y1 < y0:
                r.n_inverted_boxes += 1
                if len(r.inverted_boxes) < max_examples:
                    r.inverted_boxes.append(desc)
            if w and h and (x0 < 0 or y0 < 0 or x1 > w or y1 > h):
                r.n_boxes_outside += 1
                if len(r.boxes_outside) < max_examples:
                    r.boxes_outside.append(f"{desc} outside {w}x{h}")
    n_outside_now = r.n_boxes_outside

    by_kind = defaultdict(list)
    for issue in dataset.issues:
        by_kind[issue.kind].append(issue)
    clipped = by_kind.pop("box_clipped", [])
    r.n_boxes_clipped = len(clipped)
    r.n_boxes_outside += len(clipped)
    for issue in clipped:
        if len(r.boxes_outside) < max_examples:
            r.boxes_outside.append(str(issue))

    # classes and labels
    labels = Counter(s.label for s in samples)
    bad_labels = [s.image_id for s in samples if s.label < 0 or (dataset.class_names and s.label >= r.n_classes)]
    empty = [c for c in range(r.n_classes) if c not in labels] if dataset.class_names else []
    r.n_classes_without_images = len(empty)
    names = dataset.class_names
    r.classes_without_images = [f"{c} {names[c]}" if names else str(c) for c in empty[:max_examples]]
    dup = [k for k, v in Counter(s.image_id for s in samples).items() if v > 1]
    boxless = [s.image_id for s in samples if len(s.boxes) == 0 and s.mask is None]
    # masks: every instance and ignore file exists
    seen_files = set()
    for s in samples:
        if s.mask is None:
            continue
        r.n_masks += 1
        for f in (*s.mask.paths, *([s.mask.ignore] if s.mask.ignore else [])):
            if f not in seen_files:
                seen_files.add(f)
                if not os.path.isfile(f):
                    r.missing_mask_files.append(f)

    p = r.problems
    if r.missing_images:
        p.append(f"{len(r.missing_images)} missing images (e.g. {_examples(r.missing_images)})")
    if r.unreadable_images:
        p.append(f"{len(r.unreadable_images)} unreadable images (e.g. {_examples(r.unreadable_images)})")
    if r.size_mismatches:
        p.append(f"{len(r.size_mismatches)} images whose size differs from the annotation "
                 f"(e.g. {_examples(r.size_mismatches, 2)})")
    if n_outside_now:
        p.append(f"{n_outside_now} boxes outside their image (e.g. {_examples(r.boxes_outside[:n_outside_now], 2)})")
    if r.n_inverted_boxes:
        p.append(f"{r.n_inverted_boxes} inverted boxes (x1 < x0 or y1 < y0; e.g. {_examples(r.inverted_boxes, 2)})")
    if r.missing_mask_files:
        p.append(f"{len(r.missing_mask_files)} missing mask files (e.g. {_examples(r.missing_mask_files)})")
    if bad_labels:
        p.append(f"{len(bad_labels)} images with a label outside 0..{r.n_classes - 1} (e.g. {_examples(bad_labels)})")
    if dup:
        p.append(f"{len(dup)} duplicate image ids (e.g. {_examples(dup)})")
    if not samples:
        p.append("no images in this split")

    wn = r.warnings
    if clipped:
        wn.append(f"{len(clipped)} boxes outside their image were clipped on load (e.g. {clipped[0]})")
    if empty:
        wn.append(f"{len(empty)} of {r.n_classes} classes have no images (e.g. {_examples(r.classes_without_images)})")
    if boxless:
        wn.append(f"{len(boxless)} images have no box (e.g. {_examples(boxless)})")
    if no_path:
        wn.append(f"{no_path} images not at hand (no image root given): files not checked")
    for kind, items in by_kind.items():
        wn.append(f"{kind}: {items[0]}" if len(items) == 1 else f"{kind}: {len(items)} times (e.g. {items[0]})")
    r.ok = not p
    return r


def check_dataset(name: str, root: str, split: str = "test", *, verify_images: bool = True,
                  decode: bool = True, progress: bool = True, max_examples: int = 10,
                  workers: Optional[int] = None, **opts) -> CheckReport:
    """Read split ``split`` of adapter ``name`` at ``root`` (``opts`` go to the adapter) and check it.

    verify_images: open each image with PIL (else only check it exists);
    decode: fully decode each image (default; catches truncated or corrupt JPEG data), else
    only read its header and ``verify()`` it (faster; a truncated JPEG passes);
    workers: threads opening images (None: one per CPU core; 0: in this thread).
    A DataError while reading becomes the report's only problem (``ok`` False).
    """
    try:
        ds = build_dataset(name, root, split, **opts)
    except DataError as e:
        return CheckReport(name, str(root), split, problems=[str(e)], ok=False)
    return check_loaded(ds, verify_images=verify_images, decode=decode, progress=progress,
                        max_examples=max_examples, workers=workers)


def format_report(report: CheckReport) -> str:
    """A short human-readable summary, ending with OK or FAILED."""
    r = report
    lines = [f"{r.dataset} ({r.split}) at {r.root}: {r.n_images} images, {r.n_boxes} boxes, "
             f"{r.n_classes} classes ({r.n_classes_without_images} without images)"]
    if r.n_images:
        lines.append(f"images: {r.n_images_checked} {'decoded' if r.decoded else 'opened (headers only)'}, {len(r.missing_images)} missing, "
                     f"{len(r.unreadable_images)} unreadable, {len(r.size_mismatches)} with another size")
        lines.append(f"boxes: {r.n_boxes_outside} outside the image ({r.n_boxes_clipped} clipped on load), "
                     f"{r.n_inverted_boxes} inverted")
        if r.n_masks:
            lines.append(f"masks: {r.n_masks} images with masks, {len(r.missing_mask_files)} mask files missing")
    if r.warnings:
        lines.append("warnings:")
        lines += [f"  - {w}" for w in r.warnings]
    if r.problems:
        lines.append("problems:")
        lines += [f"  - {p}" for p in r.problems]
    lines.append("OK" if r.ok else f"FAILED ({len(r.problems)} problem{'s' if len(r.problems) != 1 else ''})")
    return "\n".join(lines)
