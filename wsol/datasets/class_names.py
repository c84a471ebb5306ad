"""Class-name lists: a one-name-per-line file, and the 1000 ImageNet-1k names shipped with wsol."""
from __future__ import annotations

import logging
import os
from typing import List

from wsol.errors import WsolError
from wsol.utils.io import read_text_file, text_lines

log = logging.getLogger(__name__)

IMAGENET_CLASSES_FILE = os.path.join(os.path.dirname(__file__), "imagenet_classes.txt")
IMAGENET_WNIDS_FILE = os.path.join(os.path.dirname(__file__), "imagenet_wnids.txt")


def read_class_names(path: str) -> List[str]:
    """One class name per line (blank lines dropped)."""
    return [ln.strip() for ln in text_lines(read_text_file(path, "class names file")) if ln.strip()]


def imagenet_class_names() -> List[str]:
    """The 1000 ImageNet-1k class names in class-index (sorted WNID) order; [] with a warning
    when the list is not installed or unreadable."""
    try:
        names = read_class_names(IMAGENET_CLASSES_FILE)
    except WsolError as e:
        log.warning("%s: classes shown as indices", e)
        return []
    if len(names) != 1000:
        log.warning("%s: %d names instead of 1000; classes shown as indices", IMAGENET_CLASSES_FILE, len(names))
        return []
    return names


def imagenet_wnids() -> List[str]:
    """The 1000 ImageNet-1k WNIDs in class-index order (sorted); [] with a warning when the
    list is not installed or unreadable."""
    try:
        wnids = read_class_names(IMAGENET_WNIDS_FILE)
    except WsolError as e:
        log.warning("%s: WNIDs not available", e)
        return []
    if len(wnids) != 1000 or wnids != sorted(wnids):
        log.warning("%s: not 1000 sorted WNIDs; WNIDs not available", IMAGENET_WNIDS_FILE)
        return []
    return wnids
