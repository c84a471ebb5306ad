"""The picture everyone looks at first: heatmap over the image, true boxes, predicted box.

Colours: jet heatmap blended at alpha 0.5, ground-truth boxes green, the predicted box red
with its IoU written beside it. Arrays are RGB uint8 throughout.
"""
from __future__ import annotations

import io
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from wsol.errors import WsolError
from wsol.utils.io import write_bytes_atomic
from wsol.localize.maps import MAP_SIZE

GT_COLOR = (0, 255, 0)
PRED_COLOR = (255, 0, 0)
HEATMAP_ALPHA = 0.5


def jet_rgb(heatmap: np.ndarray) -> np.ndarray:
    """A [0,1] float map -> RGB uint8 with the jet colormap (OpenCV's COLORMAP_JET)."""
    q = np.clip(np.nan_to_num(np.asarray(heatmap, dtype=np.float64)), 0.0, 1.0)
    q8 = np.floor(255.0 * q).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(q8, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def scale_pred_box(box: Sequence[float], width: int, height: int, size: int = MAP_SIZE) -> Tuple[int, int, int, int]:
    """A box on the ``size`` x ``size`` grid -> image pixels (per axis, rounded)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    sx, sy = width / float(size), height / float(size)
    return (int(round(x0 * sx)), int(round(y0 * sy)), int(round(x1 * sx)), int(round(y1 * sy)))


def line_thickness(width: int, height: int) -> int:
    """Box line width that stays visible at any image size (2 px at 300 px)."""
    return max(2, int(round(min(width, height) / 150)))


def _clip_box(b: Sequence[float], w: int, h: int) -> Tuple[int, int, int, int]:
    x0, y0, x1, y1 = (int(round(float(v))) for v in b)
    return (min(max(x0, 0), w - 1), min(max(y0, 0), h - 1), min(max(x1, 0), w - 1), min(max(y1, 0), h - 1))


Rect = Tuple[int, int, int, int]


def _text_rect(img: np.ndarray, text: str, org: Tuple[int, int], scale: float, thick: int,
               anchor_below: bool = False) -> Tuple[Rect, int]:
    """Where :func:`_text` would draw: (x0, y0, x1, y1) of the filled box, and the baseline y."""
    h, w = img.shape[:2]
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = max(2, thick)
    x, y = org
    x = min(max(0, x), max(0, w - tw - 2 * pad))
    if anchor_below:
        y = y + th + 2 * pad
    y = min(max(th + 2 * pad, y), h - base - 1)
    return (x, y - th - 2 * pad, x + tw + 2 * pad, y + base), y


def _text(img: np.ndarray, text: str, rect: Rect, baseline: int, color: Tuple[int, int, int], scale: float,
          thick: int, bg: Tuple[int, int, int] = (0, 0, 0)) -> None:
    """Text on a filled box (from :func:`_text_rect`) so it reads over any heatmap."""
    pad = max(2, thick)
    cv2.rectangle(img, rect[:2], rect[2:], bg, -1)
    cv2.putText(img, text, (rect[0] + pad, baseline - pad), cv2.FONT_HERSHEY_SIMPLEX, scale, color, thick,
                cv2.LINE_AA)


def _overlaps(a: Optional[Rect], b: Rect) -> bool:
    return a is not None and not (a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1])


def overlay_image(image_rgb: np.ndarray, heatmap: Optional[np.ndarray] = None,
                  gt_boxes: Optional[np.ndarray] = None, pred_box: Optional[Sequence[float]] = None,
                  iou: Optional[float] = None, label_text: str = "") -> np.ndarray:
    """Image + heatmap + boxes -> a new RGB uint8 array of the image's size.

    image_rgb: H x W x 3 uint8 at original size. heatmap: 224x224 (any square grid) in
    [0,1], resized to the image (bicubic) and blended as jet at alpha 0.5; None draws no
    heatmap. gt_boxes: [n, 4] x0,y0,x1,y1 in original pixels (green). pred_box: x0,y0,x1,y1
    on the heatmap's 224 grid, scaled back to the image (red), with ``IoU`` written next to
    it when ``iou`` is given. label_text: written at the top left.
    """
    img = np.asarray(image_rgb)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise WsolError(f"overlay_image wants an H x W x 3 uint8 RGB image, got {img.dtype} {img.shape}")
    h, w = img.shape[:2]
    out = img.astype(np.float32)
    grid = MAP_SIZE
    if heatmap is not None:
        hm = np.asarray(heatmap, dtype=np.float32)
        if hm.ndim != 2:
            raise WsolError(f"heatmap must be 2-D, got shape {hm.shape}")
        grid = hm.shape[1]
        hm = cv2.resize(hm, (w, h), interpolation=cv2.INTER_CUBIC)
        out = (1.0 - HEATMAP_ALPHA) * out + HEATMAP_ALPHA * jet_rgb(hm).astype(np.float32)
    out = np.ascontiguousarray(np.clip(np.round(out), 0, 255).astype(np.uint8))
    t = line_thickness(w, h)
    scale = max(0.35, min(w, h) / 500.0)
    tt = max(1, t // 2)
    if gt_boxes is not None:
        for b in np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4):
            x0, y0, x1, y1 = _clip_box(b, w, h)
            cv2.rectangle(out, (x0, y0), (x1, y1), GT_COLOR, t)
    label_rect: Optional[Rect] = None
    if label_text:
        label_rect, label_base = _text_rect(out, label_text, (0, 0), scale, tt, anchor_below=True)
    if pred_box is not None:
        x0, y0, x1, y1 = _clip_box(scale_pred_box(pred_box, w, h, grid), w, h)
        cv2.rectangle(out, (x0, y0), (x1, y1), PRED_COLOR, t)
        if iou is not None and np.isfinite(iou):
            # above the box's top-left corner, else below it, else inside its top, else inside its bottom
            text = f"IoU {iou:.2f}"
            spots = [(x0, y0 - t, False), (x0, y1 + t, True), (x0 + t, y0 + t, True), (x0 + t, y1 - t, False)]
            for k, (x, y, below) in enumerate(spots):
                rect, base = _text_rect(out, text, (x, y), scale, tt, anchor_below=below)
                fits = (rect[3] <= y0 + t) if k == 0 else (rect[1] >= y1 - t) if k == 1 else True
                if k == len(spots) - 1 or (fits and not _overlaps(label_rect, rect)):
                    break
            _text(out, text, rect, base, (255, 255, 255), scale, tt, bg=PRED_COLOR)
    if label_text and label_rect is not None:
        _text(out, label_text, label_rect, label_base, (255, 255, 255), scale, tt)
    return out


def encode_png(img: np.ndarray) -> bytes:
    """RGB (or gray) uint8 array -> PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(img, dtype=np.uint8)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def save_png(path: str, img: np.ndarray) -> str:
    """Write an RGB uint8 array as PNG (parent folders created); returns the path."""
    return write_bytes_atomic(path, encode_png(img))
