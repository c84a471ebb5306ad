"""The box rules of the ViT WSOL families, each as its paper's evaluation code applies it
(``docs/protocol.md``, "The family protocols"):

- ``tscam`` (TS-CAM, Gao et al. 2021): raw map -> bilinear resize to 224 in float32 -> min-max
  (no epsilon) -> ``uint8(255 m)`` (truncation) -> keep pixels ``> int(thr * max)``
  (``THRESH_TOZERO``) -> OpenCV contours (``RETR_TREE``) -> the largest by contour area ->
  ``[x, y, x + w, y + h]``; no contour: ``[0, 0, 1, 1]``. One threshold: 0.1 on CUB, 0.12
  on ImageNet.
- ``scm`` (SCM, Bai et al. 2022): bilinear resize in float64, min-max, then the
  wsolevaluation contour rule (largest contour, ``[x, y, min(x + w, 223), min(y + h, 223)]``,
  no contour ``[0, 0, 0, 0]``) at every τ of ``arange(0, 1, 0.01)``; Loc at the best τ.
- ``sat`` (SAT, Wu et al. 2023; BAS uses the same rule): ``(m - min) / (max - min + 1e-5)``
  on the raw map, bilinear resize to 224, pixels ``> thr``, 8-connected components
  (scikit-image), the one with the most pixels (the first met in a row-major scan on a tie),
  its ``[min x, min y, max x + 1, max y + 1]``; nothing above the threshold:
  ``[0, 0, 224, 224]``. One threshold: 0.4 on CUB, 0.3 on ImageNet.

Ground truth is put on the 224 grid as in ``wsoleval`` and IoU counts pixels inclusively
(the references' ``+1`` convention). The ``cub`` adapter or a dataset of 200 classes takes
the CUB threshold, any other the ImageNet one. Every run under these protocols also scores the same raw maps
under ``wsoleval`` (``fair``), so MaxBoxAccV2 stands in the same summary row.
"""
from __future__ import annotations

import copy
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from wsol.localize.boxes import MODES
from wsol.localize.image import ImageLocalization, localize_batch
from wsol.localize.iou import iou_matrix
from wsol.localize.maps import MAP_SIZE
from wsol.localize.protocols import Protocol

CUB_CLASSES = 200
TSCAM_THRESHOLDS = {"cub": 0.1, "imagenet": 0.12}   # val_cub.sh / val_ilsvrc.sh MODEL.CAM_THR
SAT_THRESHOLDS = {"cub": 0.4, "imagenet": 0.3}      # evaluator.py / evaluator_ImageNet.py --threshold
SCM_STEP = 0.01                                      # test_cam.py cam_curve_interval


# ---------------------------------------------------------------- TS-CAM
def tscam_normalize(raw: np.ndarray, size: int = MAP_SIZE) -> np.ndarray:
    """TS-CAM's ``resize_cam``: float32 bilinear resize, then min-max with no epsilon (a
    constant map gives NaN there; here all zeros)."""
    up = cv2.resize(np.ascontiguousarray(raw, dtype=np.float32), (size, size))
    lo, hi = up.min(), up.max()
    if not np.isfinite(up).all() or hi == lo:
        return np.zeros_like(up)
    return (up - lo) / (hi - lo)


def tscam_box(norm_map: np.ndarray, threshold: float) -> np.ndarray:
    """TS-CAM's ``get_bboxes`` on a normalized map -> int64 [4] (x1, y1 exclusive)."""
    q = (norm_map * 255.0).astype(np.uint8)
    _, kept = cv2.threshold(q, int(threshold * np.max(q)), 255, cv2.THRESH_TOZERO)
    contours = cv2.findContours(kept, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[-2]
    if not contours:
        return np.array([0, 0, 1, 1], np.int64)
    x, y, w, h = cv2.boundingRect(max(contours, key=cv2.contourArea))
    return np.array([x, y, x + w, y + h], np.int64)


# ---------------------------------------------------------------- SAT
def sat_normalize(raw: np.ndarray, size: int = MAP_SIZE) -> np.ndarray:
    """SAT's ``normalize_map``: ``(m - min) / (max - min + 1e-5)`` in float32, then bilinear resize."""
    m = np.ascontiguousarray(raw, dtype=np.float32)
    if not np.isfinite(m).all():
        m = np.zeros_like(m)
    norm = ((m - m.min()) / np.float32(m.max() - m.min() + 1e-5)).astype(np.float32)
    return cv2.resize(norm, (size, size))


def largest_component(mask: np.ndarray) -> Optional[np.ndarray]:
    """The 8-connected component with the most pixels (first in a row-major scan on a tie)
    as a boolean mask, or None when ``mask`` is empty."""
    from skimage import measure

    labels = measure.label(mask.astype(np.uint8), connectivity=2)
    if labels.max() == 0:
        return None
    counts = np.bincount(labels.ravel())[1:]
    return labels == 1 + int(np.argmax(counts))  # labels are numbered in scan order


def sat_box(norm_map: np.ndarray, threshold: float) -> np.ndarray:
    """SAT's box at ``threshold`` -> int64 [4] (x1, y1 exclusive); empty: the whole image."""
    comp = largest_component(norm_map > threshold)
    h, w = norm_map.shape
    if comp is None:
        return np.array([0, 0, w, h], np.int64)
    ys, xs = np.nonzero(comp)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.int64)


# ---------------------------------------------------------------- SCM
def scm_normalize(raw: np.ndarray, size: int = MAP_SIZE) -> np.ndarray:
    """SCM's ``resizeNorm``: float64 bilinear resize, then min-max with no epsilon (a
    constant or non-finite map: all zeros)."""
    up = cv2.resize(np.ascontiguousarray(raw, dtype=np.float64), (size, size))
    lo, hi = up.min(), up.max()
    if not np.isfinite(up).all() or hi == lo:
        return np.zeros_like(up)
    up = up - lo
    return up / up.max()


# ---------------------------------------------------------------- protocols
def one_box_localization(box: np.ndarray, gt: np.ndarray) -> ImageLocalization:
    """One predicted box (both modes) against GT boxes -> ImageLocalization at one τ."""
    iou = float(iou_matrix(box[None], np.asarray(gt).reshape(-1, 4)).max())
    return ImageLocalization(np.full((len(MODES), 1), iou), np.tile(box.astype(np.int32), (len(MODES), 1, 1)))


class FamilyProtocol:
    """Mixin of the family protocols: a per-dataset threshold (``configure``) and the
    wsoleval scoring of the same maps (``fair_taus``)."""

    thresholds_by_dataset: dict = {}
    threshold: Optional[float] = None
    fair_taus: Optional[np.ndarray] = None
    map_resolution = "224"  # protocol fingerprint: maps and ground truth on the 224 grid

    def configure(self, num_classes: int, cam_step: float, dataset: str = ""):
        """A copy with the dataset's threshold (CUB: the ``cub`` adapter or 200 classes; any
        other: ImageNet's) and the wsoleval τ grid."""
        from wsol.localize.maps import thresholds

        out = copy.copy(self)
        if self.thresholds_by_dataset and out.threshold is None:
            cub = dataset == "cub" or num_classes == CUB_CLASSES
            out.threshold = self.thresholds_by_dataset["cub" if cub else "imagenet"]
        out.fair_taus = thresholds(cam_step)
        return out

    def thresholds(self, cam_step: float) -> np.ndarray:
        return np.array([self.threshold if self.threshold is not None else self.thresholds_by_dataset["imagenet"]])

    def gt_boxes(self, boxes: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
        from wsol.localize.boxes import scale_gt_boxes

        return scale_gt_boxes(boxes, size[0], size[1], MAP_SIZE)

    def with_fair(self, cams: np.ndarray, gts: Sequence[np.ndarray], locs: List[ImageLocalization],
                  sweep: str) -> List[ImageLocalization]:
        """Attach the wsoleval localization of the same raw maps (``loc.fair``)."""
        if self.fair_taus is None:
            return locs
        from wsol.localize.maps import postprocess_batch

        for loc, fair in zip(locs, localize_batch(postprocess_batch(cams), gts, self.fair_taus, sweep)):
            loc.fair = fair
        return locs

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.threshold == getattr(other, "threshold", None)

    def __hash__(self) -> int:
        return hash((type(self), self.threshold))


def _single_threshold_localize(protocol, normalize, box_rule, cams, gts, taus, sweep, keep_maps):
    maps = [normalize(c) for c in cams]
    locs = [one_box_localization(box_rule(m, float(taus[0])), g) for m, g in zip(maps, gts)]
    return protocol.with_fair(cams, gts, locs, sweep), (np.stack(maps).astype(np.float64) if keep_maps and maps
                                                         else None)


class TscamProtocol(FamilyProtocol, Protocol):
    """TS-CAM's rule at one threshold (module docstring)."""

    name = "tscam"
    description = ("TS-CAM (Gao 2021): 8-bit map, one threshold (CUB 0.1, ImageNet 0.12), largest contour; "
                   "MaxBoxAccV2 from wsoleval")
    box_dtype = np.int16
    thresholds_by_dataset = TSCAM_THRESHOLDS
    box_rules = {"largest": "tscam_largest_contour_8bit", "all": "tscam_largest_contour_8bit"}

    def localize(self, cams, gts, sizes, taus, sweep, keep_maps=False):
        return _single_threshold_localize(self, tscam_normalize, tscam_box, cams, gts, taus, sweep, keep_maps)

class SatProtocol(FamilyProtocol, Protocol):
    """SAT's (and BAS's) rule at one threshold: the largest connected component."""

    name = "sat"
    description = ("SAT (Wu 2023) / BAS: one threshold (CUB 0.4, ImageNet 0.3), largest connected component; "
                   "MaxBoxAccV2 from wsoleval")
    box_dtype = np.int16
    thresholds_by_dataset = SAT_THRESHOLDS
    box_rules = {"largest": "sat_largest_component", "all": "sat_largest_component"}

    def localize(self, cams, gts, sizes, taus, sweep, keep_maps=False):
        return _single_threshold_localize(self, sat_normalize, sat_box, cams, gts, taus, sweep, keep_maps)

class ScmProtocol(FamilyProtocol, Protocol):
    """SCM's evaluator: bilinear float64 maps, the wsolevaluation sweep at step 0.01."""

    name = "scm"
    description = ("SCM (Bai 2022): bilinear float64 maps, wsolevaluation's largest contour at every tau of "
                   "arange(0, 1, 0.01); MaxBoxAccV2 from wsoleval")
    box_dtype = np.uint8
    box_rules = {"largest": "largest_contour", "all": "largest_contour"}

    def thresholds(self, cam_step: float) -> np.ndarray:
        from wsol.localize.maps import thresholds

        return thresholds(SCM_STEP)

    def localize(self, cams, gts, sizes, taus, sweep, keep_maps=False):
        maps = np.stack([scm_normalize(c) for c in cams]) if len(cams) else np.zeros((0, MAP_SIZE, MAP_SIZE))
        locs = self.with_fair(cams, gts, localize_batch(maps, gts, taus, sweep), sweep)
        return locs, (maps if keep_maps else None)



def register() -> None:
    from wsol.localize.protocols import PROTOCOLS

    for cls in (TscamProtocol, SatProtocol, ScmProtocol):
        PROTOCOLS.add(cls.name, cls())


register()
