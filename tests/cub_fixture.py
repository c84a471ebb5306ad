"""A tiny CUB-200-2011-layout folder written by the tests (multi-word class names, float boxes)."""
from __future__ import annotations

import os
from typing import List, Tuple

import numpy as np
from PIL import Image

CLASSES = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"]


def make_cub(root: str, n_per_class: int = 2, seed: int = 0) -> List[Tuple[str, int, List[float], int]]:
    """Write a CUB-layout folder; returns (relpath, label0, [x, y, w, h], is_train) per image."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    recs = []
    for c, cname in enumerate(CLASSES):
        os.makedirs(os.path.join(root, "images", cname), exist_ok=True)
        for k in range(n_per_class):
            w, h = int(rng.integers(120, 200)), int(rng.integers(100, 180))
            img = (rng.random((h, w, 3)) * 60).astype(np.uint8)
            bx, by = float(rng.integers(0, w // 2)) + 0.5, float(rng.integers(0, h // 2))
            bw, bh = float(w // 3), float(h // 3) + 0.25
            img[int(by):int(by + bh), int(bx):int(bx + bw)] = (200, 50 + 60 * c, 40)
            rel = f"{cname}/{cname.split('.', 1)[1]}_{k:04d}_{c}.jpg"
            Image.fromarray(img).save(os.path.join(root, "images", rel), quality=95)
            recs.append((rel, c, [bx, by, bw, bh], k % 2))
    with open(os.path.join(root, "images.txt"), "w") as f:
        f.writelines(f"{i} {r[0]}\n" for i, r in enumerate(recs, 1))
    with open(os.path.join(root, "image_class_labels.txt"), "w") as f:
        f.writelines(f"{i} {r[1] + 1}\n" for i, r in enumerate(recs, 1))
    with open(os.path.join(root, "classes.txt"), "w") as f:
        f.writelines(f"{i} {c}\n" for i, c in enumerate(CLASSES, 1))
    with open(os.path.join(root, "train_test_split.txt"), "w") as f:
        f.writelines(f"{i} {r[3]}\n" for i, r in enumerate(recs, 1))
    with open(os.path.join(root, "bounding_boxes.txt"), "w") as f:
        f.writelines(f"{i} {r[2][0]} {r[2][1]} {r[2][2]} {r[2][3]}\n" for i, r in enumerate(recs, 1))
    return recs
