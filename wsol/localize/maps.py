"""Map post-processing (docs/protocol.md, Map post-processing, Quantization and foreground): bicubic upsample, min-max normalize, 8-bit quantize."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

MAP_SIZE = 224


def thresholds(step: float = 0.01) -> np.ndarray:
    """The τ grid ``numpy.arange(0, 1, step)`` (not linspace: the exact floats decide pixels)."""
    if not (0 < step < 1):
        raise ValueError(f"cam step must be in (0, 1), got {step}")
    return np.arange(0, 1, step)


def upsample(cam: np.ndarray, size: int = MAP_SIZE) -> np.ndarray:
    """Resize a raw [h, w] map to ``size`` x ``size`` with OpenCV INTER_CUBIC, in float64.

    float64 as the reference: wsolevaluation's tensor-to-NumPy helper casts the raw map to
    float64 before ``cv2.resize``, and a float32 resize rounds differently at some pixels,
    which the truncating quantization can turn into a different level (``docs/protocol.md``,
    "Precision").
    """
    cam = np.ascontiguousarray(cam, dtype=np.float64)
    return cv2.resize(cam, (size, size), interpolation=cv2.INTER_CUBIC)


def normalize(cam: np.ndarray) -> np.ndarray:
    """Min-max normalize to [0, 1] in float64, with wsolevaluation's operations in its order
    (``cam -= min; cam /= max``).

    A map that is constant or holds a NaN (or ±Inf) becomes all zeros.
    """
    cam = np.array(cam, dtype=np.float64, copy=True)
    if not np.isfinite(cam).all():
        return np.zeros_like(cam)
    lo, hi = cam.min(), cam.max()
    if lo == hi:
        return np.zeros_like(cam)
    cam -= lo
    cam /= cam.max()
    return cam


def postprocess(cam: np.ndarray, size: int = MAP_SIZE) -> np.ndarray:
    """Raw map -> normalized ``size`` x ``size`` float64 map. Order: resize, then normalize."""
    return normalize(upsample(cam, size))


def postprocess_batch(cams: np.ndarray, size: int = MAP_SIZE) -> np.ndarray:
    """:func:`postprocess` over a [B, h, w] batch -> [B, size, size] float64."""
    return np.stack([postprocess(c, size) for c in cams]) if len(cams) else np.zeros((0, size, size), np.float64)


def quantize(norm_map: np.ndarray) -> np.ndarray:
    """``q = floor(255 * m)`` computed in float64, as uint8.

    float64 on purpose: float32 ``255 * m`` rounds up to the next integer at some pixels,
    and a heatmap scored from its ``.npy`` elsewhere must give the very same masks. A
    float64 map is used as it is (never rounded to float32 first); a float32 map converts
    to float64 exactly, and its product with 255 is exact in float64.
    """
    q = np.floor(255.0 * np.asarray(norm_map, dtype=np.float64))
    return np.clip(q, 0, 255).astype(np.uint8)


def level_thresholds(q_max: int, taus: Sequence[float]) -> np.ndarray:
    """Integer cut per τ: a pixel is foreground iff ``q > floor(τ * max(q))``."""
    return np.floor(np.asarray(taus, dtype=np.float64) * float(q_max)).astype(np.int64)
