"""One object per evaluation protocol (docs/protocol.md): its τ grid, how ground truth is
put on the map's grid, how a batch of raw maps becomes per-image IoUs, and the dtype its
boxes need. The engine holds a :class:`Protocol` and never branches on a protocol's name.

Protocols are looked up by name in :data:`PROTOCOLS` (``wsoleval``, ``cam2016``,
``cam2016_code``, and the method families' own rules, :class:`FamilyProtocol`: ``bas``). They
are plain picklable objects, so a worker pool can run :meth:`Protocol.localize` directly.
"""
from __future__ import annotations

import copy
from typing import List, Optional, Sequence, Tuple

import numpy as np

from wsol.localize.boxes import scale_gt_boxes
from wsol.localize.cam2016 import CAM2016_THRESHOLD, localize_cam2016
from wsol.localize.image import ImageLocalization, localize_batch
from wsol.localize.iou import iou_matrix
from wsol.localize.maps import MAP_SIZE, postprocess_batch, thresholds
from wsol.utils.registry import Registry

Size = Tuple[int, int]  # (width, height) of the original image


class Protocol:
    """Base class: the rules of one protocol.

    name: registry name; description: one line for listings.
    box_dtype: the integer type that holds its predicted boxes (per_image.csv).
    scores_heatmaps: whether exported 224x224 heatmaps can be scored under it (``wsol score``).
    region_metrics: whether the whole-map scores (PxAP/PIoU on masks, pointing games) apply.
    """

    name: str = ""
    description: str = ""
    box_dtype: type = np.int32
    scores_heatmaps: bool = False
    region_metrics: bool = False
    #: a family protocol's own threshold (set by :meth:`for_run`); None: no own rule
    own_threshold: Optional[float] = None
    own_rule: str = ""

    def for_run(self, backbone, num_classes: int) -> "Protocol":
        """The protocol as one run uses it, given its backbone and head size (a family
        protocol picks its paper's threshold for the dataset and architecture); itself here."""
        return self

    def thresholds(self, cam_step: float) -> np.ndarray:
        """The τ grid."""
        raise NotImplementedError

    def gt_boxes(self, boxes: np.ndarray, size: Size) -> np.ndarray:
        """Ground-truth boxes (original pixels, [n, 4]) as this protocol compares them."""
        raise NotImplementedError

    def localize(self, cams: np.ndarray, gts: Sequence[np.ndarray], sizes: Sequence[Size], taus: np.ndarray,
                 sweep: str, keep_maps: bool = False) -> Tuple[List[ImageLocalization], Optional[np.ndarray]]:
        """Raw maps [B, h, w] + :meth:`gt_boxes` of each image -> (localizations, the
        normalized 224x224 maps when ``keep_maps`` else None)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


class WsolEvalProtocol(Protocol):
    """Choe et al. 2020: maps and ground truth on the 224 grid, τ = arange(0, 1, step),
    both box modes at every τ (docs/protocol.md)."""

    name = "wsoleval"
    description = "Choe et al. 2020 (default): 224x224 maps, every tau of arange(0, 1, step), MaxBoxAccV2"
    box_dtype = np.uint8  # 224-grid boxes fit in a byte
    scores_heatmaps = True
    region_metrics = True

    def thresholds(self, cam_step: float) -> np.ndarray:
        return thresholds(cam_step)

    def gt_boxes(self, boxes: np.ndarray, size: Size) -> np.ndarray:
        return scale_gt_boxes(boxes, size[0], size[1], MAP_SIZE)

    def localize(self, cams, gts, sizes, taus, sweep, keep_maps=False):
        maps = postprocess_batch(cams)
        return localize_batch(maps, gts, taus, sweep), (maps if keep_maps else None)

    def localize_maps(self, maps: Sequence[np.ndarray], gts: Sequence[np.ndarray], taus: np.ndarray,
                      sweep: str) -> List[ImageLocalization]:
        """Already normalized 224x224 maps (exported heatmaps) -> localizations."""
        return localize_batch(maps, gts, taus, sweep)


class Cam2016Protocol(Protocol):
    """The CAM paper's text: one threshold at 20% of the max, largest component by pixel
    count, at the original resolution against unscaled ground truth (docs/protocol.md,
    The cam2016 protocol)."""

    name = "cam2016"
    description = ("CAM paper (Zhou et al. 2016): one threshold at 20% of the max, largest component, "
                   "original resolution")
    box_dtype = np.int32  # boxes in original pixels

    def thresholds(self, cam_step: float) -> np.ndarray:
        return np.array([CAM2016_THRESHOLD])

    def gt_boxes(self, boxes: np.ndarray, size: Size) -> np.ndarray:
        return np.asarray(boxes)

    def localize(self, cams, gts, sizes, taus, sweep, keep_maps=False):
        locs = [localize_cam2016(c, g, w, h) for c, g, (w, h) in zip(cams, gts, sizes)]
        return locs, (postprocess_batch(cams) if keep_maps else None)


class Cam2016CodeProtocol(Cam2016Protocol):
    """The CAM paper's released box generator: 8-bit max-divided map, gray levels 20/100/110
    with a distance-transform erosion, the largest clamped rectangle (docs/protocol.md,
    The cam2016 protocols). Its one 'threshold' only labels the single box."""

    name = "cam2016_code"
    description = "CAM paper's released code: gray levels 20/100/110, distance-transform erosion, largest box"

    def localize(self, cams, gts, sizes, taus, sweep, keep_maps=False):
        from wsol.localize.cam2016_code import localize_cam2016_code

        locs = [localize_cam2016_code(c, g, w, h) for c, g, (w, h) in zip(cams, gts, sizes)]
        return locs, (postprocess_batch(cams) if keep_maps else None)


class FamilyProtocol(WsolEvalProtocol):
    """A method family's own box rule at one threshold, beside the 2020 protocol on the same
    maps (docs/protocol.md, "Family protocols"). The sweep of :class:`WsolEvalProtocol` runs
    as usual (every τ, both box modes: MaxBoxAccV2, curves, PxAP), and each image also gets
    the family's box at ``own_threshold`` (``ImageLocalization.own_iou`` / ``own_box``),
    from which the run reports Top-1 / Top-5 / GT-known Loc. Subclasses implement
    :meth:`own_box` and :meth:`for_run` (which sets ``own_threshold`` and ``own_rule``)."""

    scores_heatmaps = False

    def own_box(self, raw_map: np.ndarray) -> np.ndarray:
        """The family's box [x0, y0, x1, y1] on the 224 grid of one raw map at ``own_threshold``."""
        raise NotImplementedError

    def localize(self, cams, gts, sizes, taus, sweep, keep_maps=False):
        if self.own_threshold is None:
            raise ValueError(f"protocol {self.name}: for_run() sets its threshold before localize()")
        maps = postprocess_batch(cams)
        locs = localize_batch(maps, gts, taus, sweep)
        for loc, cam, gt in zip(locs, cams, gts):
            box = np.asarray(self.own_box(cam), dtype=np.int64)
            loc.own_box = box
            loc.own_iou = float(iou_matrix(box[None], np.asarray(gt).reshape(-1, 4)).max())
        return locs, (maps if keep_maps else None)

    def with_threshold(self, threshold: float, rule: str) -> "FamilyProtocol":
        """A copy of this protocol at ``threshold``, described by ``rule``."""
        out = copy.copy(self)
        out.own_threshold, out.own_rule = float(threshold), rule
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(own_threshold={self.own_threshold})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.own_threshold == getattr(other, "own_threshold", None)

    def __hash__(self) -> int:
        return hash((type(self), self.own_threshold))


PROTOCOLS: Registry[Protocol] = Registry("protocol", ["wsol.localize.bas_protocol"])
for _p in (WsolEvalProtocol(), Cam2016Protocol(), Cam2016CodeProtocol()):
    PROTOCOLS.add(_p.name, _p)


def get_protocol(name: str) -> Protocol:
    """The protocol registered as ``name`` (an unknown name lists the closest ones)."""
    return PROTOCOLS.get(name)
