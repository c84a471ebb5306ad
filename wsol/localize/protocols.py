"""One object per evaluation protocol (docs/protocol.md): its τ grid, how ground truth is
put on the map's grid, how a batch of raw maps becomes per-image IoUs, and the dtype its
boxes need. The engine holds a :class:`Protocol` and never branches on a protocol's name.

Protocols are looked up by name in :data:`PROTOCOLS` (``wsoleval``, ``cam2016``). They are
plain picklable objects, so a worker pool can run :meth:`Protocol.localize` directly.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from wsol.errors import WsolError
from wsol.localize.boxes import scale_gt_boxes
from wsol.localize.cam2016 import CAM2016_THRESHOLD, localize_cam2016
from wsol.localize.image import ImageLocalization, localize_batch
from wsol.localize.maps import MAP_SIZE, postprocess_batch, thresholds
from wsol.utils.registry import Registry

Size = Tuple[int, int]  # (width, height) of the original image


class Protocol:
    """Base class: the rules of one protocol.

    name: registry name; description: one line for listings.
    box_dtype: the integer type that holds its predicted boxes (per_image.csv).
    scores_heatmaps: whether exported 224x224 heatmaps can be scored under it (``wsol score``).
    region_metrics: whether the whole-map scores (PxAP/PIoU on masks, pointing games) apply.

    Protocol fingerprint fields (docs/protocol.md, Protocol fingerprints), read by
    :meth:`fingerprint_fields`: box_rules: the box rule of each box mode ('largest', 'all');
    map_resolution: the grid maps are normalized and boxes compared on; test_crop: how a
    test image becomes the network input.
    """

    name: str = ""
    description: str = ""
    box_dtype: type = np.int32
    scores_heatmaps: bool = False
    region_metrics: bool = False
    box_rules: Dict[str, str] = {}
    map_resolution: str = ""
    test_crop: str = "resize224"

    def fingerprint_fields(self, mode: str) -> Dict[str, str]:
        """The protocol's part of a metric's fingerprint for box ``mode``: box_rule,
        map_resolution and test_crop (a rule not declared reads '<name>:<mode>')."""
        return {"box_rule": self.box_rules.get(mode, f"{self.name}:{mode}"),
                "map_resolution": self.map_resolution or f"{self.name}:unstated", "test_crop": self.test_crop}

    def boxes_to_original(self, boxes: np.ndarray, size: Size) -> np.ndarray:
        """Predicted boxes as this protocol holds them -> original-image pixels, such that
        :meth:`gt_boxes` maps them back to the very same boxes (``--save-boxes``)."""
        raise WsolError(f"protocol {self.name!r} cannot export its boxes in original pixels")
    #: the wsoleval τ grid the same maps are also scored on (MaxBoxAccV2 in the same row), or None
    fair_taus: Optional[np.ndarray] = None

    def configure(self, num_classes: int, cam_step: float, dataset: str = "") -> "Protocol":
        """The protocol as a run on ``dataset`` (adapter name) of ``num_classes`` classes uses
        it (protocols whose threshold depends on the dataset, or that also score under
        wsoleval, return a configured copy)."""
        return self

    def for_backbone(self, backbone_name: str) -> "Protocol":
        """The protocol for a run of backbone ``backbone_name`` (a family whose threshold
        depends on the architecture, such as ``bas``, returns a copy); itself here."""
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
    box_rules = {"largest": "largest_contour", "all": "all_contours"}
    map_resolution = "224"

    def boxes_to_original(self, boxes, size):
        """Each 224-grid coordinate -> the centre of its cell in original pixels,
        ``(x + 0.5) * W / 224``: ``int(that * 224 / W)`` is ``x`` again, whatever W."""
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        sx, sy = float(size[0]) / MAP_SIZE, float(size[1]) / MAP_SIZE
        return (b + 0.5) * np.array([sx, sy, sx, sy])

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
    box_rules = {"largest": "largest_component_20pct_of_max", "all": "largest_component_20pct_of_max"}
    map_resolution = "original"

    def boxes_to_original(self, boxes, size):
        return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)

    def thresholds(self, cam_step: float) -> np.ndarray:
        return np.array([CAM2016_THRESHOLD])

    def gt_boxes(self, boxes: np.ndarray, size: Size) -> np.ndarray:
        return np.asarray(boxes)

    def configure(self, num_classes: int, cam_step: float, dataset: str = "") -> "Protocol":
        import copy

        out = copy.copy(self)
        out.fair_taus = thresholds(cam_step)
        return out

    def with_fair(self, cams, gts, sizes, locs, sweep):
        """Attach the wsoleval localization of the same raw maps (GT put on the 224 grid)."""
        if self.fair_taus is not None:
            scaled = [scale_gt_boxes(g, w, h, MAP_SIZE) for g, (w, h) in zip(gts, sizes)]
            for loc, fair in zip(locs, localize_batch(postprocess_batch(cams), scaled, self.fair_taus, sweep)):
                loc.fair = fair
        return locs

    def localize(self, cams, gts, sizes, taus, sweep, keep_maps=False):
        locs = [localize_cam2016(c, g, w, h) for c, g, (w, h) in zip(cams, gts, sizes)]
        return self.with_fair(cams, gts, sizes, locs, sweep), (postprocess_batch(cams) if keep_maps else None)


class Cam2016CodeProtocol(Cam2016Protocol):
    """The CAM paper's released box generator: 8-bit max-divided map, gray levels 20/100/110
    with a distance-transform erosion, the largest clamped rectangle (docs/protocol.md,
    The cam2016 protocols). Its one 'threshold' only labels the single box."""

    name = "cam2016_code"
    description = "CAM paper's released code: gray levels 20/100/110, distance-transform erosion, largest box"
    box_rules = {"largest": "cam2016_code_levels_20_100_110", "all": "cam2016_code_levels_20_100_110"}

    def localize(self, cams, gts, sizes, taus, sweep, keep_maps=False):
        from wsol.localize.cam2016_code import localize_cam2016_code

        locs = [localize_cam2016_code(c, g, w, h) for c, g, (w, h) in zip(cams, gts, sizes)]
        return self.with_fair(cams, gts, sizes, locs, sweep), (postprocess_batch(cams) if keep_maps else None)


#: the built-in protocols, and plugin modules that register more (the ViT families' box rules)
PROTOCOLS: Registry[Protocol] = Registry("protocol", ["wsol.localize.family_protocols", "wsol.localize.bas_protocol"])
for _p in (WsolEvalProtocol(), Cam2016Protocol(), Cam2016CodeProtocol()):
    PROTOCOLS.add(_p.name, _p)


def get_protocol(name: str) -> Protocol:
    """The protocol registered as ``name`` (an unknown name lists the closest ones)."""
    return PROTOCOLS.get(name)
