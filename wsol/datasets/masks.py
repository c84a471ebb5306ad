"""Ground-truth masks on the protocol's 224x224 grid (docs/protocol.md, "Masks").

A mask is a uint8 array: 1 = object (union of the instance masks), 0 = background,
255 = ignored (the ignore region minus the object). Each file is read as 8-bit grayscale,
resized straight to 224x224 with nearest-neighbour interpolation (OpenCV, as
wsolevaluation), and binarized with ``gray > MaskRef.fg_above``.
"""
from __future__ import annotations

import os

import cv2
import numpy as np

from wsol.datasets.base import MaskRef
from wsol.errors import DataError

FOREGROUND, BACKGROUND, IGNORE = 1, 0, 255
MASK_SIZE = 224


def read_mask_file(path: str, size: int = MASK_SIZE) -> np.ndarray:
    """One grayscale mask image -> float32 [size, size] gray values (nearest-neighbour resize)."""
    if not os.path.isfile(path):
        raise DataError("missing mask file", path=path)
    gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise DataError("unreadable mask file (not an image OpenCV can read)", path=path)
    return cv2.resize(np.float32(gray), (size, size), interpolation=cv2.INTER_NEAREST)


def load_gt_mask(ref: MaskRef, size: int = MASK_SIZE) -> np.ndarray:
    """The uint8 [size, size] ground truth of one image: 1 object, 0 background, 255 ignore."""
    if not ref.paths:
        raise DataError("mask reference without instance masks")
    fg = np.zeros((size, size), bool)
    for p in ref.paths:
        fg |= read_mask_file(p, size) > ref.fg_above
    out = fg.astype(np.uint8)
    if ref.ignore:
        ignore = (read_mask_file(ref.ignore, size) > ref.fg_above) & ~fg
        out[ignore] = IGNORE
    return out

