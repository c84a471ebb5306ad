"""Which adapter reads a dataset folder, from the files in it (``wsol check-data --root DIR``
without ``--dataset``)."""
from __future__ import annotations

import os
from typing import List, Optional

from wsol.errors import WsolError

#: what each adapter's folder holds, for the message when nothing matches
LAYOUTS = ("cub: images.txt + bounding_boxes.txt; wsoleval: image_ids.txt + localization.txt with boxes; "
           "openimages: image_ids.txt + localization.txt with mask paths; folder: boxes.csv or annotations.csv; "
           "imagenet: LOC_val_solution.csv or val/*.JPEG")


def _first_row(path: str) -> List[str]:
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            for line in f:
                if line.strip():
                    return [x.strip() for x in line.split(",")]
    except OSError:
        pass
    return []


def _metadata_kind(d: str) -> Optional[str]:
    """'wsoleval' or 'openimages' for a split folder holding image_ids.txt, else None."""
    if not os.path.isfile(os.path.join(d, "image_ids.txt")):
        return None
    row = _first_row(os.path.join(d, "localization.txt"))
    if len(row) >= 2 and row[1].lower().endswith((".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")):
        return "openimages"
    return "wsoleval"


def candidates(root: str, split: Optional[str] = None) -> List[str]:
    """The adapters whose layout ``root`` has (in a fixed order; usually one)."""
    def has(*names: str) -> bool:
        return all(os.path.exists(os.path.join(root, n)) for n in names)

    found: List[str] = []
    if has("images.txt", "bounding_boxes.txt") or has("CUB_200_2011/images.txt", "CUB_200_2011/bounding_boxes.txt"):
        found.append("cub")
    meta = _metadata_kind(root) or (_metadata_kind(os.path.join(root, split or "test")))
    if meta:
        found.append(meta)
    if has("boxes.csv") or has("annotations.csv"):
        found.append("folder")
    if has("LOC_val_solution.csv") or has("ILSVRC/Data/CLS-LOC") or has("val/ILSVRC2012_val_00000001.JPEG"):
        found.append("imagenet")
    return found


def guess_dataset(root: str, split: Optional[str] = None) -> str:
    """The one adapter that reads ``root``, or a one-line WsolError saying to pass --dataset."""
    if not os.path.isdir(root):
        raise WsolError(f"{root}: dataset folder not found")
    found = candidates(root, split)
    if len(found) == 1:
        return found[0]
    if found:
        raise WsolError(f"{root}: holds the layouts of several adapters ({', '.join(found)}); pass --dataset")
    raise WsolError(f"{root}: no dataset layout recognised; pass --dataset (see `wsol datasets`). {LAYOUTS}")
