"""The CAM paper's released MATLAB/C++ box generator (zhoubolei/CAM: ``generate_bbox.m``,
``ILSVRC_evaluate_bbox.m``, ``bboxgenerator/dt_box.cpp``), protocol ``cam2016_code``
(``docs/protocol.md``, "The cam2016 protocols").

Per image and class map:

1. the raw map is upsampled (bicubic) to the original W x H and divided by its max;
2. it is saved as an 8-bit image: ``round(255 * clip(m, 0, 1))``, halves up (negatives clip to 0);
3. for each gray level t in (20, 100, 110): foreground ``gray > t``; a Euclidean distance
   transform gives each foreground pixel its distance d to the nearest background pixel;
   d is scaled so that the largest distance maps to 255 and rounded, and the pixels whose
   scaled value is > 10 are kept (an erosion relative to the largest distance);
4. the bounding rectangle of every contour of what is kept (OpenCV ``RETR_CCOMP``: outer
   boundaries and holes) is clamped as the C++ code does (``x <= W-5``, ``w <= W-x-5``,
   same for y, h), all rectangles of the three levels are ranked by area (w x h), and the
   largest is the box, reported as ``[x, y, x + w, y + h]`` and compared with the GT boxes by
   the inclusive IoU.

Not reproduced: the 10-crop averaging of the heatmap (wsol evaluates one resized input),
MATLAB's bicubic kernel (OpenCV's is used), the JPEG compression of the saved heatmap, and
the devkit blacklist (pass a dataset without those images to exclude them).
"""
from __future__ import annotations

from typing import List, Tuple

import cv2
import numpy as np
from scipy import ndimage

from wsol.localize.image import ImageLocalization
from wsol.localize.iou import iou_matrix

GRAY_LEVELS = (20, 100, 110)
DT_KEEP = 10  # scaled-distance gray level above which a pixel survives the erosion


def heatmap_8bit(raw_cam: np.ndarray, width: int, height: int) -> np.ndarray:
    """Upsample to W x H, divide by the max, quantize to uint8 (negatives -> 0)."""
    up = cv2.resize(np.ascontiguousarray(raw_cam, dtype=np.float32), (int(width), int(height)),
                    interpolation=cv2.INTER_CUBIC).astype(np.float64)
    peak = up.max()
    if not np.isfinite(peak) or peak <= 0:
        return np.zeros(up.shape, np.uint8)
    return np.floor(255.0 * np.clip(up / peak, 0.0, 1.0) + 0.5).astype(np.uint8)  # MATLAB im2uint8 rounding


def eroded_mask(gray: np.ndarray, level: int) -> np.ndarray:
    """``gray > level``, then keep pixels whose distance to the background, scaled so that the
    largest is 255 and rounded half up, exceeds ``DT_KEEP`` (``dt_binary`` + threshold 10)."""
    fg = gray > level
    if not fg.any() or fg.all():  # the C++ code leaves a constant image as it is
        return fg
    d = ndimage.distance_transform_edt(fg)
    scaled = np.minimum(np.floor(d * (255.0 / d.max()) + 0.5), 255)
    return scaled > DT_KEEP


def _rects(mask: np.ndarray) -> List[Tuple[int, int, int, int]]:
    h_img, w_img = mask.shape
    contours, _ = cv2.findContours(mask.astype(np.uint8) * 255, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for c in contours:
        x, y, w, h = cv2.boundingRect(c)
        cx = min(max(x, 0), w_img - 5)
        cy = min(max(y, 0), h_img - 5)
        cw = min(max(w, 0), w_img - x - 5)
        ch = min(max(h, 0), h_img - y - 5)
        out.append((cx, cy, max(cw, 0), max(ch, 0)))
    return out


def cam2016_code_boxes(raw_cam: np.ndarray, width: int, height: int) -> np.ndarray:
    """Every rectangle of the three gray levels as ``[x, y, x+w, y+h]``, largest area first
    (stable among equal areas: level order, then contour order); [[0,0,0,0]] when none."""
    gray = heatmap_8bit(raw_cam, width, height)
    rects = [r for t in GRAY_LEVELS for r in _rects(eroded_mask(gray, t))]
    if not rects:
        return np.zeros((1, 4), dtype=np.int64)
    order = sorted(range(len(rects)), key=lambda i: -rects[i][2] * rects[i][3])
    return np.array([[rects[i][0], rects[i][1], rects[i][0] + rects[i][2], rects[i][1] + rects[i][3]]
                     for i in order], dtype=np.int64)


def localize_cam2016_code(raw_cam: np.ndarray, gt_boxes: np.ndarray, width: int, height: int) -> ImageLocalization:
    """IoU of the released code's box (the largest rectangle) against the original GT boxes;
    both modes ('all', 'largest') report that one box, at the single 'threshold'."""
    gt = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    box = cam2016_code_boxes(raw_cam, width, height)[:1]
    iou = float(iou_matrix(box, gt).max())
    boxes = np.zeros((2, 1, 4), dtype=np.int32)
    boxes[:, 0] = box[0]
    return ImageLocalization(np.array([[iou], [iou]]), boxes)
