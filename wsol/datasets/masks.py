"""Ground-truth masks on the protocol's 224x224 grid (docs/protocol.md, "Masks").

A mask is a uint8 array: 1 = object (union of the instance masks), 0 = background,
255 = ignored (the ignore region minus the object). Each file is read as 8-bit grayscale,
resized straight to 224x224 with nearest-neighbour interpolation (OpenCV, as
wsolevaluation), and binarized with ``gray > MaskRef.fg_above``.

Masks as people store them are read as the object they mean (:func:`mask_gray`): a 0/1
label mask (8- or 16-bit) as 0/255, a 16-bit mask scaled to 0-255, a palette mask by its
indices (0 = background), a mask whose alpha channel is not fully opaque by its alpha.
"""
from __future__ import annotations

import os
import warnings
from typing import Optional

import cv2
import numpy as np

from wsol.datasets.base import MaskRef
from wsol.errors import DataError

FOREGROUND, BACKGROUND, IGNORE = 1, 0, 255
MASK_SIZE = 224

_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA = ("RGBA", "LA", "PA", "RGBa", "La")


def _pil_mode(path: str) -> Optional[str]:
    """The PIL mode of an image file from its header (None when PIL cannot open it)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                return im.mode
    except Exception:
        return None


def _pil_array(path: str, channel: Optional[str] = None) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.getchannel(channel) if channel else im)


def mask_gray(path: str) -> np.ndarray:
    """One mask file -> float32 gray values 0-255 at its own size, read as its author meant:

    - alpha channel with any pixel not fully opaque: the alpha channel (a cut-out);
    - palette image: 255 where the palette index is not 0, else 0;
    - 16-bit: values up to 255 as they are, larger ones scaled by 255/65535;
    - anything else: OpenCV's 8-bit grayscale (wsolevaluation's reading);
    - then a mask whose only values are 0 and 1 (a label mask) becomes 0/255.
    """
    mode = _pil_mode(path)
    gray = None
    try:
        if mode in _ALPHA:
            alpha = _pil_array(path, "A")
            if alpha.min() < 255:
                gray = alpha.astype(np.float32)
        if gray is None and mode in ("P", "PA"):
            idx = _pil_array(path)
            idx = idx[..., 0] if idx.ndim == 3 else idx
            gray = np.where(idx != 0, 255, 0).astype(np.float32)
        if gray is None and mode in _SIXTEEN_BIT:
            v = _pil_array(path).astype(np.float64)
            gray = np.float32(v if v.max() <= 255 else v * (255.0 / 65535.0))
    except Exception:  # a file PIL reads the header of but not the pixels: OpenCV says why below
        gray = None
    if gray is None:
        g8 = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if g8 is None:
            raise DataError("unreadable mask file (not an image OpenCV can read)", path=path)
        gray = np.float32(g8)
    if gray.size and gray.max() == 1 and np.isin(gray, (0.0, 1.0)).all():
        gray = gray * 255
    return gray


def read_mask_file(path: str, size: int = MASK_SIZE) -> np.ndarray:
    """One mask image -> float32 [size, size] gray values 0-255 (nearest-neighbour resize)."""
    if not os.path.isfile(path):
        raise DataError("missing mask file", path=path)
    return cv2.resize(mask_gray(path), (size, size), interpolation=cv2.INTER_NEAREST)


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


#: what an ambiguous mask is called in warnings and summary.csv (n_masks_<kind>)
AMBIGUOUS = {"empty": "no object pixel", "all_ignored": "every pixel ignored",
             "no_background": "no background pixel (the ignore region covers it)"}


def ambiguity(mask: np.ndarray) -> Optional[str]:
    """Which kind of ambiguous mask ``mask`` (1/0/255) is, or None for an ordinary one."""
    has_fg, has_bg = bool((mask == FOREGROUND).any()), bool((mask == BACKGROUND).any())
    if not has_fg:
        return "empty" if has_bg else "all_ignored"
    return None if has_bg else "no_background"
