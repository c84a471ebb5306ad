"""OpenImages30k in wsolevaluation's metadata layout: masks as ground truth.

A split folder holds ``image_ids.txt``, ``class_labels.txt`` (``path,label``),
``image_sizes.txt`` (``path,w,h``, optional) and ``localization.txt`` with rows
``image,mask,ignore``: one row per object instance, several rows for an image with several
instances; the ignore mask (the region to leave out of PxAP) may be empty, and only the
first row of an image may name one (wsolevaluation's rule; later rows must leave it empty).

Mask paths resolve against ``masks=DIR``, by default against the image root (``images=``),
where wsolevaluation's download script puts them.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from wsol.datasets.base import MaskRef, Sample, WsolDataset, check_image_id, register_dataset, require_file
from wsol.datasets.textfiles import read_rows
from wsol.datasets.wsoleval import _split_dir, read_split_metadata
from wsol.errors import DataError


def read_mask_rows(path: str, known: Dict[str, int]) -> Dict[str, Tuple[List[str], str]]:
    """``localization.txt`` rows ``image,mask,ignore`` -> {image_id: ([mask, ...], ignore)}."""
    out: Dict[str, Tuple[List[str], str]] = {}
    first: Dict[str, int] = {}
    for ln, fields in read_rows(path, 3, sep=","):
        iid, mask, ignore = fields
        if iid not in known:
            raise DataError(f"image id {iid} is not in image_ids.txt", path=path, line=ln)
        if not mask:
            raise DataError(f"empty mask path for {iid}", path=path, line=ln)
        check_image_id(mask, path, ln)  # mask paths are joined under the mask root too
        if ignore:
            check_image_id(ignore, path, ln)
        if iid in out:
            if ignore:
                raise DataError(f"second ignore mask for {iid} (only its first row, line {first[iid]}, may "
                                "name one)", path=path, line=ln)
            out[iid][0].append(mask)
        else:
            first[iid] = ln
            out[iid] = ([mask], ignore)
    return out


def read_openimages(root: str, split: str = "test", images: Optional[str] = None,
                    masks: Optional[str] = None) -> WsolDataset:
    """Read an OpenImages30k metadata split folder (``root`` or ``root/split``).

    images: the image root the ids are relative to ('' paths without it: enough for
    ``wsol score``); masks: the folder the mask paths are relative to (default: images).
    """
    d = _split_dir(root, split)
    meta = read_split_metadata(d)
    order, where, labels, labels_path, sizes = meta.order, meta.where, meta.labels, meta.labels_path, meta.sizes
    loc_path = require_file(os.path.join(d, "localization.txt"),
                            "localization.txt (rows image,mask,ignore)")
    rows = read_mask_rows(loc_path, where)
    mask_root = masks if masks is not None else images
    if not mask_root:
        raise DataError("mask paths need a root: pass --dataset-option masks=DIR (or --images DIR, "
                        "where wsolevaluation's download puts the masks)", path=loc_path)
    if not os.path.isdir(mask_root):
        raise DataError("mask folder not found", path=mask_root)
    samples = []
    for iid in order:
        if iid not in labels:
            raise DataError(f"no label for image {iid} (image_ids.txt line {where[iid]})", path=labels_path)
        if iid not in rows:
            raise DataError(f"no mask for image {iid} (image_ids.txt line {where[iid]})", path=loc_path)
        paths, ignore = rows[iid]
        ref = MaskRef(tuple(os.path.join(mask_root, p) for p in paths),
                      os.path.join(mask_root, ignore) if ignore else "")
        w, h = sizes.get(iid, (0, 0))
        samples.append(Sample(iid, os.path.join(images, iid) if images else "", labels[iid],
                              np.zeros((0, 4)), w, h, mask=ref))
    return WsolDataset("openimages", split, root, images or "", samples)


def write_example(folder: str) -> tuple:
    """Tiny OpenImages30k-layout data: metadata/test for 3 classes x 2 drawn images under
    OpenImages/test, each with its object's mask beside it; the first image also gets an ignore
    mask and a second instance row."""
    import cv2

    from wsol.datasets.examples import example_images, save_image, write_lines

    imgs = example_images(n_per_class=2, seed=3)
    root = os.path.join(folder, "OpenImages")
    ids, loc = [], []
    for k, im in enumerate(imgs):
        iid = f"test/{im.name}"
        ids.append(iid)
        save_image(os.path.join(root, iid), im.pixels)
        mask = np.zeros(im.pixels.shape[:2], np.uint8)
        x0, y0, x1, y1 = im.box
        mask[y0:y1 + 1, x0:x1 + 1] = 255
        name = f"test/{im.name[:-4]}_mask.png"
        cv2.imwrite(os.path.join(root, name), mask)
        ignore = ""
        if k == 0:
            ignore = f"test/{im.name[:-4]}_ignore.png"
            cv2.imwrite(os.path.join(root, ignore), 255 - mask)
        loc.append(f"{iid},{name},{ignore}")
        if k == 0:
            loc.append(f"{iid},{name},")
    meta = os.path.join(folder, "metadata", "OpenImages", "test")
    write_lines(os.path.join(meta, "image_ids.txt"), ids)
    write_lines(os.path.join(meta, "class_labels.txt"), [f"{i},{im.label}" for i, im in zip(ids, imgs)])
    write_lines(os.path.join(meta, "image_sizes.txt"), [f"{i},{im.size[0]},{im.size[1]}" for i, im in zip(ids, imgs)])
    write_lines(os.path.join(meta, "localization.txt"), loc)
    return meta, "test", {"images": root}


@register_dataset("openimages", "OpenImages30k, wsolevaluation metadata with masks (localization.txt rows "
                  "image,mask,ignore); images= image root, masks= mask root (default: images)",
                  splits=("train", "val", "test"),
                  options={"images": "the image root the ids are relative to (also --images)",
                           "masks": "the folder the mask paths are relative to (default: the image root)"},
                  example=write_example)
def _build(root: str, split: str = "test", images: Optional[str] = None, masks: Optional[str] = None) -> WsolDataset:
    return read_openimages(root, split, images=images, masks=masks)
