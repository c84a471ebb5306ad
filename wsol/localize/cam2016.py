"""The CAM paper's protocol as its text states it (Zhou et al., CVPR 2016), protocol
``cam2016`` (``docs/protocol.md``, "The cam2016 protocols").

One fixed threshold at 20% of the map's max value, the largest connected component,
measured at the original image resolution: the raw map is upsampled (bicubic) straight to
W x H; foreground is ``up > 0.2 * max(up)`` on the raw values (strict, as MATLAB ``im2bw``;
not 20% of a min-max normalized map, and nothing when the max is <= 0); components are
8-connected (``bwlabel``'s default) and the largest is the one with the most pixels; its box
is inclusive ``[min x, min y, max x, max y]`` in original pixels and is compared with the
unscaled GT boxes by inclusive IoU. The released code differs: see ``cam2016_code``.
"""
from __future__ import annotations

import cv2
import numpy as np

from wsol.localize.image import ImageLocalization
from wsol.localize.iou import iou_matrix

CAM2016_THRESHOLD = 0.2


def cam2016_mask(raw_cam: np.ndarray, width: int, height: int, threshold: float = CAM2016_THRESHOLD) -> np.ndarray:
    """Foreground of the upsampled raw map: ``up > threshold * max(up)``; empty when max <= 0."""
    up = cv2.resize(np.ascontiguousarray(raw_cam, dtype=np.float32), (int(width), int(height)),
                    interpolation=cv2.INTER_CUBIC).astype(np.float64)
    peak = up.max() if up.size else 0.0
    if not np.isfinite(peak) or peak <= 0:
        return np.zeros(up.shape, np.uint8)
    return (up > threshold * peak).astype(np.uint8)


def cam2016_boxes(raw_cam: np.ndarray, width: int, height: int, threshold: float = CAM2016_THRESHOLD):
    """(all component boxes [n,4], largest box [1,4]) at the original resolution."""
    mask = cam2016_mask(raw_cam, width, height, threshold)
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        zero = np.zeros((1, 4), dtype=np.int64)
        return zero, zero
    st = stats[1:]
    boxes = np.stack([st[:, 0], st[:, 1], st[:, 0] + st[:, 2] - 1, st[:, 1] + st[:, 3] - 1], axis=1).astype(np.int64)
    big = int(np.argmax(st[:, cv2.CC_STAT_AREA]))
    return boxes, boxes[big:big + 1]


def localize_cam2016(raw_cam: np.ndarray, gt_boxes: np.ndarray, width: int, height: int) -> ImageLocalization:
    """IoU (modes 'all', 'largest'; a single τ) of the CAM-paper box against original GT boxes."""
    gt = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    allb, big = cam2016_boxes(raw_cam, width, height)
    ious = np.array([[iou_matrix(allb, gt).max()], [iou_matrix(big, gt).max()]])
    boxes = np.zeros((2, 1, 4), dtype=np.int32)
    boxes[0, 0] = allb[int(np.argmax(iou_matrix(allb, gt).max(axis=1)))]
    boxes[1, 0] = big[0]
    return ImageLocalization(ious, boxes)
