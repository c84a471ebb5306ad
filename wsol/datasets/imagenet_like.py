"""ImageNet-like generated JPEGs (a ``folder`` dataset) for throughput runs without data.

About 500x375 pictures at JPEG quality 90: a smooth colour field with texture and noise,
1-2 striped elliptical objects with their boxes, labels drawn from 1000 classes. Written
once into a folder and reused (``wsol bench`` caches them).
"""
from __future__ import annotations

import csv
import os
from typing import List, Tuple

import numpy as np

from wsol.errors import WsolError

SYNTH_VERSION = 1   # bump when the pictures change (names the cache folder)
SYNTH_CLASSES = 1000

_SIZES = ((500, 375), (500, 375), (500, 375), (375, 500), (500, 333), (500, 400), (333, 500), (640, 480))


def _render(rng: np.random.Generator) -> Tuple[np.ndarray, List[List[int]]]:
    """One ImageNet-like picture: smooth colour field + texture + 1-2 textured blobs."""
    import cv2

    w, h = _SIZES[int(rng.integers(len(_SIZES)))]
    lo = rng.uniform(20, 235, (int(rng.integers(3, 8)), int(rng.integers(3, 8)), 3)).astype(np.float32)
    img = cv2.resize(lo, (w, h), interpolation=cv2.INTER_CUBIC)
    tex = rng.normal(0, 1, (h // 4 + 1, w // 4 + 1, 3)).astype(np.float32)
    img += cv2.resize(tex, (w, h), interpolation=cv2.INTER_LINEAR) * 22
    boxes = []
    for _ in range(int(rng.integers(1, 3))):
        bw, bh = int(w * rng.uniform(0.25, 0.8)), int(h * rng.uniform(0.25, 0.8))
        x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
        mask = np.zeros((h, w), np.uint8)
        cv2.ellipse(mask, (x0 + bw // 2, y0 + bh // 2), (bw // 2, bh // 2), 0, 0, 360, 1, -1)
        col = rng.uniform(0, 255, 3).astype(np.float32)
        stripes = np.sin(np.arange(w, dtype=np.float32)[None, :] * rng.uniform(0.05, 0.4)
                         + np.arange(h, dtype=np.float32)[:, None] * rng.uniform(0.05, 0.4))[..., None] * 30
        obj = col[None, None, :] + stripes
        m = mask.astype(bool)
        img[m] = obj[m]
        boxes.append([x0, y0, x0 + bw - 1, y0 + bh - 1])
    img += rng.normal(0, 9, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8), boxes


def make_imagenet_like(folder: str, n: int, seed: int = 0) -> str:
    """Write ``n`` generated JPEGs as a ``folder`` dataset (images/, boxes.csv, classes.txt) at
    ``folder`` unless it is already there; returns ``folder``. Written in a temporary folder
    and renamed, so a present folder is complete."""
    from PIL import Image

    if os.path.isfile(os.path.join(folder, "boxes.csv")):
        return folder
    tmp = f"{folder}.tmp-{os.getpid()}"
    os.makedirs(os.path.join(tmp, "images"), exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, SYNTH_CLASSES, n)
    with open(os.path.join(tmp, "boxes.csv"), "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["image", "label", "x0", "y0", "x1", "y1"])
        for i in range(n):
            img, boxes = _render(np.random.default_rng([seed, i]))
            rel = f"images/{i:06d}.jpg"
            Image.fromarray(img).save(os.path.join(tmp, rel), quality=90)
            for b in boxes:
                wr.writerow([rel, int(labels[i]), *b])
    with open(os.path.join(tmp, "classes.txt"), "w") as f:
        f.writelines(f"class_{c:03d}\n" for c in range(SYNTH_CLASSES))
    try:
        os.rename(tmp, folder)
    except OSError:  # another process finished first
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        if not os.path.isfile(os.path.join(folder, "boxes.csv")):
            raise WsolError(f"{folder}: cannot create the generated images") from None
    return folder
