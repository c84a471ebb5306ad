"""Tiny example datasets for the adapters' ``example`` hooks (``DatasetInfo.example``).

Each adapter can write a few small drawn images with known boxes in its own layout, so that
tests (the end-to-end matrix) and demos run every registered adapter without real data.
This module draws the images; the adapters write the files around them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np
from PIL import Image

from wsol.utils.io import write_text_atomic

#: Class names of the examples (3 classes; some adapters use them as folder or class names).
EXAMPLE_CLASSES = ("red_square", "green_square", "blue_square")
_COLOURS = ((220, 40, 40), (40, 200, 60), (50, 80, 230))


@dataclass
class ExampleImage:
    """One drawn image: ``name`` (file name, .jpg), ``label`` (0-based), ``pixels`` (uint8
    H x W x 3) and ``box`` (x0, y0, x1, y1 in pixels) of the drawn object."""

    name: str
    label: int
    pixels: np.ndarray
    box: Tuple[int, int, int, int]

    @property
    def size(self) -> Tuple[int, int]:
        """(width, height)."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])


def example_images(n_per_class: int = 2, seed: int = 0) -> List[ExampleImage]:
    """``n_per_class`` images of each of the 3 example classes: a coloured rectangle (25-60%
    of each side) on dark noise, images 56-88 px wide and 48-72 px high."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_per_class):
        for c, colour in enumerate(_COLOURS):
            w, h = int(rng.integers(56, 89)), int(rng.integers(48, 73))
            img = rng.integers(0, 50, (h, w, 3)).astype(np.uint8)
            bw, bh = int(w * rng.uniform(0.25, 0.6)), int(h * rng.uniform(0.25, 0.6))
            x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
            img[y0:y0 + bh, x0:x0 + bw] = colour
            out.append(ExampleImage(f"{EXAMPLE_CLASSES[c]}_{k:02d}.jpg", c, img, (x0, y0, x0 + bw - 1, y0 + bh - 1)))
    return out


def save_image(path: str, pixels: np.ndarray) -> None:
    """Write ``pixels`` as a JPEG (quality 95), creating the folder."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    Image.fromarray(pixels).save(path, quality=95)


def write_lines(path: str, lines: List[str]) -> None:
    """Write ``lines`` (newline-terminated) to ``path``, creating the folder."""
    write_text_atomic(path, "".join(f"{line}\n" for line in lines))
