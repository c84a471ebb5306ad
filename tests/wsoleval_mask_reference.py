"""Slow reference: a re-statement of wsolevaluation's MaskEvaluator and its mask reader
(Choe et al.), independent of wsol's code, used only by the tests.

Kept as published except two repairs users need: ``np.float`` (gone in NumPy >= 1.24) is
float64, and an empty ignore path means "no ignore region" instead of a crash.
"""
import os

import cv2
import numpy as np

SIZE = 224


def load_mask_image(path, size=(SIZE, SIZE)):
    gray = np.float32(cv2.imread(path, cv2.IMREAD_GRAYSCALE))
    return cv2.resize(gray, size, interpolation=cv2.INTER_NEAREST)


def get_mask(mask_root, mask_paths, ignore_path):
    """uint8 mask: 1 object (union of instances > 0.5), 255 ignore box minus object, 0 else."""
    instances = np.stack([load_mask_image(os.path.join(mask_root, p)) > 0.5 for p in mask_paths]).any(0)
    if ignore_path:
        ignore_box = load_mask_image(os.path.join(mask_root, ignore_path)) > 0.5
    else:
        ignore_box = np.zeros_like(instances)
    ignore = np.logical_and(ignore_box, np.logical_not(instances))
    assert not np.logical_and(ignore, instances).any()
    return instances.astype(np.uint8) + 255 * ignore.astype(np.uint8)


class MaskEvaluator:
    """accumulate(scoremap, gt_mask) per image, compute() -> PxAP (percent)."""

    def __init__(self, threshold_list):
        self.threshold_list = list(threshold_list)
        self.num_bins = len(self.threshold_list) + 2
        self.edges = np.append(self.threshold_list, [1.0, 2.0, 3.0])
        self.true_hist = np.zeros(self.num_bins, dtype=np.float64)
        self.false_hist = np.zeros(self.num_bins, dtype=np.float64)

    def accumulate(self, scoremap, gt_mask):
        true_hist, _ = np.histogram(scoremap[gt_mask == 1], bins=self.edges)
        self.true_hist += true_hist.astype(np.float64)
        false_hist, _ = np.histogram(scoremap[gt_mask == 0], bins=self.edges)
        self.false_hist += false_hist.astype(np.float64)

    def curve(self):
        num_true = self.true_hist.sum()
        tp = self.true_hist[::-1].cumsum()
        fn = num_true - tp
        num_false = self.false_hist.sum()
        fp = self.false_hist[::-1].cumsum()
        tn = num_false - fp
        return tp, fp, fn, tn

    def compute(self):
        tp, fp, fn, _ = self.curve()
        if ((tp + fn) <= 0).all():
            raise RuntimeError("No positive ground truth in the eval set.")
        if ((tp + fp) <= 0).all():
            raise RuntimeError("No positive prediction in the eval set.")
        non_zero = (tp + fp) != 0
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = tp / (tp + fp)
            recall = tp / (tp + fn)
        return (precision[1:] * np.diff(recall))[non_zero[1:]].sum() * 100

    def compute_piou(self):
        """Peak pixel IoU over the thresholds (TPAMI version), percent."""
        tp, fp, fn, _ = self.curve()
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = tp / (tp + fp + fn)
        return np.nanmax(iou) * 100
