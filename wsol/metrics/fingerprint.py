"""Protocol fingerprints: how a localization number was made (docs/protocol.md, Protocol
fingerprints).

A fingerprint has six fields; two numbers may be set side by side only when all six agree:

- threshold_policy: how τ was chosen (``test_best``, ``test_best_per_iou`` for MaxBoxAccV2,
  ``fixed:<τ>``, ``holdout``, ``pseudo_boxes``, ``none`` for methods that output boxes);
- box_rule: how a map (or a network) becomes a box (``largest_contour``, ``all_contours``, ...);
- map_resolution: the grid maps are normalized and boxes compared on (``224``, ``original``);
- test_crop: how a test image becomes the input (``resize224``, ``resize256_crop224``, ...);
- classifier: where the class predictions of Top-1/Top-5 Loc come from (``same`` network,
  ``separate`` network, ``ten_crop``);
- metric: the number as the paper prints it (a summary.csv column or ``<column>_err``).

``unstated`` is a value like any other: a field a paper leaves open matches nothing measured.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

FIELDS = ("threshold_policy", "box_rule", "map_resolution", "test_crop", "classifier", "metric")
UNSTATED = "unstated"

# metrics read at the τ each box mode's rule picks (summary.csv columns, without _err)
_V2 = {"maxboxacc_v2", "maxboxacc_iou30", "maxboxacc_iou50", "maxboxacc_iou70"}
_TEST_BEST = {"maxboxacc", "gt_known_loc", "top1_loc", "top5_loc", "mean_iou"}
_FIXED = {"gt_known_loc_fixed", "top1_loc_fixed", "top5_loc_fixed"}
_POLICY = {"policy_gt_known_loc", "policy_top1_loc", "policy_top5_loc", "policy_boxacc_v2", "policy_mean_iou"}
_PIXEL = {"pxap": "all_tau", "piou": "test_best"}  # mask metrics: no boxes; PxAP integrates over every τ
CLASS_METRICS = {"top1_loc", "top5_loc", "top1_loc_fixed", "top5_loc_fixed", "policy_top1_loc", "policy_top5_loc"}


@dataclass(frozen=True)
class Fingerprint:
    """The six fields (strings); see the module docstring."""

    threshold_policy: str
    box_rule: str
    map_resolution: str
    test_crop: str
    classifier: str
    metric: str

    def as_dict(self) -> Dict[str, str]:
        return asdict(self)

    def text(self) -> str:
        """``field=value;...`` in :data:`FIELDS` order (a summary.csv / table cell)."""
        return ";".join(f"{k}={v}" for k, v in self.as_dict().items())

    def differences(self, other: "Fingerprint", ignore: Tuple[str, ...] = ()) -> List[Tuple[str, str, str]]:
        """(field, mine, theirs) for every field that differs, in :data:`FIELDS` order."""
        a, b = self.as_dict(), other.as_dict()
        return [(f, a[f], b[f]) for f in FIELDS if f not in ignore and a[f] != b[f]]


def from_mapping(row: Mapping[str, object]) -> Optional[Fingerprint]:
    """The fingerprint stored in a row (columns named as :data:`FIELDS`, ``metric`` the row's
    metric); None when the row carries none (every field empty)."""
    vals = {f: str(row.get(f, "") or "").strip() for f in FIELDS}
    if not any(vals[f] for f in FIELDS if f != "metric"):
        return None
    return Fingerprint(**{f: vals[f] or UNSTATED for f in FIELDS})


def base_metric(metric: str) -> str:
    """``top1_loc_err`` -> ``top1_loc``; other names unchanged."""
    return metric[:-4] if metric.endswith("_err") else metric


def measured_fingerprint(metric: str, protocol, tau_policy: str = "test_best", classifier: str = "same",
                         fixed_tau: float = 0.2, taus: Optional[Sequence[float]] = None) -> Optional[Fingerprint]:
    """The fingerprint of one wsol summary.csv number: ``metric`` (as the published row names
    it), the run's :class:`~wsol.localize.protocols.Protocol`, its τ policy, where its
    classes came from, its fixed τ and its τ grid (``taus``, default the protocol's own). PxAP / PIoU get box rule ``pixel_mask``; None for a
    metric with neither boxes nor masks (classification, pointing games)."""
    m = base_metric(metric)
    if m in _PIXEL:
        fields = protocol.fingerprint_fields("all")
        return Fingerprint(_PIXEL[m], "pixel_mask", fields["map_resolution"], fields["test_crop"], "n/a", metric)
    if m in _V2:
        policy, mode = "test_best_per_iou", "all"
    elif m in _TEST_BEST:
        policy, mode = "test_best", "largest"
    elif m in _FIXED:
        policy, mode = f"fixed:{fixed_tau:g}", "largest"
    elif m in _POLICY:
        policy, mode = tau_policy, ("all" if m == "policy_boxacc_v2" else "largest")
        if tau_policy == "fixed":
            policy = f"fixed:{fixed_tau:g}"
    else:
        return None
    if (m in _V2 or m == "maxboxacc") and hasattr(protocol, "with_fair"):  # a protocol scored with its fair twin
        from wsol.localize.protocols import get_protocol

        protocol, taus = get_protocol("wsoleval"), None  # these columns: the wsoleval scoring of the same maps
    grid = np.asarray(taus if taus is not None else protocol.thresholds(0.5), dtype=np.float64).ravel()
    if grid.size == 1 and policy.startswith("test_best"):
        policy = f"fixed:{float(grid[0]):g}"  # a one-τ protocol has nothing to choose
    fields = protocol.fingerprint_fields(mode)
    if tau_policy == "given_boxes":
        policy, fields = "none", {**fields, "box_rule": "given_boxes"}
    cls = classifier if m in CLASS_METRICS else "n/a"
    return Fingerprint(policy, fields["box_rule"], fields["map_resolution"], fields["test_crop"], cls, metric)


def run_fingerprints(metrics: List[str], protocol, tau_policy: str, classifier: str,
                     fixed_tau: float, taus: Optional[Sequence[float]] = None) -> Dict[str, Dict[str, str]]:
    """{metric: fingerprint dict} for run.json (metrics without boxes left out)."""
    out = {}
    for m in metrics:
        fp = measured_fingerprint(m, protocol, tau_policy, classifier, fixed_tau, taus)
        if fp is not None:
            out[m] = fp.as_dict()
    return out
