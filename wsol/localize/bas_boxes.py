"""BAS's box rule (Wu et al., CVPR 2022; ``docs/protocol.md``, "The bas protocol"), the box
part of protocol ``bas``:

1. the raw map is min-max normalized with a small guard, ``(m - min) / (max - min + 1e-5)``,
   then resized bilinearly to 224x224 (OpenCV, float32 as the map comes);
2. foreground = values strictly greater than the threshold;
3. 8-connected components; the one with the most pixels is kept (on a tie the one met
   first in a row-major scan);
4. its bounding box ``[min x, min y, max x + 1, max y + 1]`` (the end is exclusive, so it
   may be 224); no foreground pixel gives the whole image ``[0, 0, 224, 224]``.

The box is compared with the ground truth by the inclusive (+1) IoU, the same formula as
the 2020 protocol's (:func:`wsol.localize.iou.iou_matrix`). Thresholds: CUB 0.1 for every
architecture; ILSVRC VGG16 0.45, ResNet50 0.25, InceptionV3 0.25, MobileNetV1 0.5.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np
from skimage.measure import label as label_components

MAP_SIZE = 224
#: (dataset kind, architecture) -> BAS's threshold (its ``get_hyperparameters``)
BAS_THRESHOLDS = {("cub", "vgg16"): 0.1, ("cub", "resnet50"): 0.1, ("cub", "inception_v3"): 0.1,
                  ("cub", "mobilenet_v1"): 0.1, ("imagenet", "vgg16"): 0.45, ("imagenet", "resnet50"): 0.25,
                  ("imagenet", "inception_v3"): 0.25, ("imagenet", "mobilenet_v1"): 0.5}


def bas_normalize(raw_map: np.ndarray, size: int = MAP_SIZE) -> np.ndarray:
    """``(m - min) / (max - min + 1e-5)``, then bilinear resize to ``size`` x ``size`` (float32)."""
    m = np.asarray(raw_map, dtype=np.float32)
    lo, hi = m.min(), m.max()
    norm = (m - lo) / (hi - lo + np.float32(1e-5))
    return cv2.resize(norm, (size, size))


def largest_component_box(mask: np.ndarray) -> np.ndarray:
    """Box ``[x0, y0, x1, y1]`` (x1, y1 exclusive) of the 8-connected component of ``mask``
    with the most pixels (first met in a row-major scan on ties); the whole grid when empty."""
    h, w = mask.shape
    labels = label_components(mask, connectivity=2)  # numbered in row-major order of first pixel
    n = int(labels.max())
    if n == 0:
        return np.array([0, 0, w, h], dtype=np.int64)
    big = int(np.argmax(np.bincount(labels.ravel())[1:])) + 1  # argmax: the lowest label on ties
    ys, xs = np.nonzero(labels == big)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.int64)


def bas_box(raw_map: np.ndarray, threshold: float, size: int = MAP_SIZE,
            normalized: Optional[np.ndarray] = None) -> np.ndarray:
    """BAS's box of one raw map at ``threshold`` (``normalized``: :func:`bas_normalize` of it)."""
    norm = bas_normalize(raw_map, size) if normalized is None else normalized
    return largest_component_box(norm > threshold)


def bas_threshold(dataset_kind: str, arch: str) -> float:
    """BAS's threshold for ``dataset_kind`` ('cub' or 'imagenet') and ``arch`` (unknown
    architectures: ResNet50's)."""
    return BAS_THRESHOLDS.get((dataset_kind, arch), BAS_THRESHOLDS[(dataset_kind, "resnet50")])
