"""Accumulate localized images into the evaluator and per-image records; build the tables."""
from __future__ import annotations

import datetime as _dt
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from wsol import __version__
from wsol.localize.boxes import MODES
from wsol.localize.image import ImageLocalization
from wsol.metrics.box_accuracy import IOU_THRESHOLDS, LOC_MODE, V2_MODE, BoxAccEvaluator, metrics_at_tau
from wsol.metrics.threshold_policy import RULES, ThresholdChoice, choose_tau
from wsol.metrics.state import StateSpec, merge_states

LOC_RULE = "argmax_tau BoxAcc(tau, IoU 0.5), largest box"
#: summary numbers taken from the wsoleval scoring of the same maps when the protocol is another
FAIR_COLUMNS = ("maxboxacc", "maxboxacc_v2", "maxboxacc_iou30", "maxboxacc_iou50", "maxboxacc_iou70",
                "tau_iou30", "tau_iou50", "tau_iou70")
FAIR_PREFIX = "fair_"

SUMMARY_COLUMNS = [
    "dataset", "split", "protocol", "backbone", "weights", "method", "n_images", "top1_cls",
    "top5_cls", "gt_known_loc", "top1_loc", "top5_loc", "loc_tau", "loc_mode", "loc_tau_rule",
    "fixed_tau", "gt_known_loc_fixed", "top1_loc_fixed", "top5_loc_fixed", "maxboxacc",
    "maxboxacc_v2", "tau_policy", "tau_policy_rule", "tau_policy_source", "tau_policy_n_images", "policy_tau",
    "policy_gt_known_loc", "policy_top1_loc", "policy_top5_loc", "policy_boxacc_v2", "policy_mean_iou",
    "classifier", "fingerprint_loc", "fingerprint_v2", "maxboxacc_iou30", "maxboxacc_iou50", "maxboxacc_iou70", "tau_iou30",
    "tau_iou50", "tau_iou70", "mean_iou", "pxap", "piou", "piou_tau", "pointing_game",
    "pointing_game_class_avg", "energy_pointing_game", "pointing_region", "pointing_tolerance", "cam_step", "n_thresholds", "n_skipped", "metric_denominator",
    "n_nonfinite", "n_size_mismatch", "n_missing_predictions", "n_missing_boxes", "n_unknown_rows", "images_per_s", "device", "wsol_version", "date",
]


class RunScorer:
    """Streaming evaluator plus the per-image arrays needed for per_image.csv.

    Its state is declared (:meth:`state_specs`, with each reduction): the evaluator's flat
    sums, and per-image lists that concatenate across shards: ``rows`` (dicts),
    ``iou_all`` / ``iou_largest`` (float32 [n_tau] per image), ``box`` (the largest-mode box
    per τ, [n_tau, 4] of ``box_dtype``) and ``index`` (the image's position in the dataset,
    by which merged shards are put back in order); ``n_skipped`` adds up and
    ``exclude_skipped`` is set when any shard set it.
    """

    PER_IMAGE = (
        StateSpec("rows", "cat", "per-image CSV fields (dicts)"),
        StateSpec("iou_all", "cat", "float32 [n_tau] per image: best IoU, all contours"),
        StateSpec("iou_largest", "cat", "float32 [n_tau] per image: best IoU, largest box"),
        StateSpec("box", "cat", "[n_tau, 4] per image: the largest-mode box"),
        StateSpec("index", "cat", "int per image: position in the dataset"),
        StateSpec("n_skipped", "sum", "images that could not be scored"),
        StateSpec("exclude_skipped", "any", "skipped images left out of the denominators"),
        StateSpec("n_missing_predictions", "sum", "images without a row in the class-prediction file"),
    )

    def __init__(self, taus: Sequence[float], fixed_tau: float = 0.2, has_predictions: bool = True,
                 box_dtype=np.uint8, region=None, fair_taus: Optional[Sequence[float]] = None,
                 predictions=None):
        self.taus = np.asarray(taus, dtype=np.float64)
        self.evaluator = BoxAccEvaluator(self.taus, IOU_THRESHOLDS, fixed_tau)
        # the wsoleval scoring of the same maps (each ImageLocalization's ``fair``) under
        # another protocol: its MaxBoxAcc / MaxBoxAccV2 columns replace the protocol's own
        self.fair = BoxAccEvaluator(np.asarray(fair_taus, np.float64), IOU_THRESHOLDS, fixed_tau) \
            if fair_taus is not None else None
        self.has_predictions = has_predictions
        self.box_dtype = box_dtype  # the protocol's box type (uint8 holds 224-grid boxes)
        self.rows: List[dict] = []
        self.iou: Dict[str, List[np.ndarray]] = {m: [] for m in MODES}
        self.box: List[np.ndarray] = []
        self.index: List[int] = []
        self.n_skipped = 0
        self.exclude_skipped = False
        # the whole-map scores (PxAP, pointing games: wsol.evaluation.region_scoring), fed the same images
        self.region = region
        # class predictions from a file (wsol.evaluation.given_outputs.Predictions) replace the model's
        self.predictions = predictions
        self.n_missing_predictions = 0

    # ------------------------------------------------------------ declared state
    def state_specs(self) -> Tuple[StateSpec, ...]:
        """Every state of the scorer with its reduction (the evaluator's first, the region
        scorer's last)."""
        fair = tuple(StateSpec(FAIR_PREFIX + sp.name, sp.reduce, "wsoleval scoring: " + sp.doc)
                     for sp in BoxAccEvaluator.STATE) if self.fair is not None else ()
        return tuple(BoxAccEvaluator.STATE) + self.PER_IMAGE + fair + (self.region.STATE if self.region else ())

    def state_dict(self) -> Dict[str, Any]:
        """The whole state, keyed as :meth:`state_specs`."""
        return {**self.evaluator.state, "rows": self.rows, "iou_all": self.iou["all"],
                "iou_largest": self.iou["largest"], "box": self.box, "index": self.index,
                "n_skipped": self.n_skipped, "exclude_skipped": self.exclude_skipped,
                "n_missing_predictions": self.n_missing_predictions,
                **({FAIR_PREFIX + k: v for k, v in self.fair.state.items()} if self.fair is not None else {}),
                **(self.region.state_dict() if self.region else {})}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Replace the state (e.g. by :func:`merge_states` of the shards' states); per-image
        entries are put in dataset order (stable, by ``index``)."""
        order = sorted(range(len(state["index"])), key=lambda k: state["index"][k])
        self.evaluator.state = {s.name: state[s.name] for s in BoxAccEvaluator.STATE}
        self.rows = [state["rows"][k] for k in order]
        self.iou = {"all": [state["iou_all"][k] for k in order], "largest": [state["iou_largest"][k] for k in order]}
        self.box = [state["box"][k] for k in order]
        self.index = [state["index"][k] for k in order]
        self.n_skipped = int(state["n_skipped"])
        self.exclude_skipped = bool(state["exclude_skipped"])
        self.n_missing_predictions = int(state.get("n_missing_predictions", 0))
        if self.fair is not None:
            self.fair.state = {s.name: state[FAIR_PREFIX + s.name] for s in BoxAccEvaluator.STATE}
        if self.region is not None:
            self.region.load_state_dict(state, order)

    def merge(self, *states: Dict[str, Any]) -> None:
        """Merge other scorers' states into this one by the declared reductions."""
        self.load_state_dict(merge_states(self.state_specs(), [self.state_dict(), *states]))

    def _next_index(self, index: Optional[int]) -> int:
        return len(self.index) if index is None else int(index)

    # ------------------------------------------------------------ update
    def add_skipped(self, image_id: str, label: int, reason: str, exclude: bool = False,
                    index: Optional[int] = None) -> None:
        """Record an image that could not be scored (``--on-error skip``).

        It counts as a miss at every τ (IoU 0, classification wrong) unless ``exclude``,
        in which case it is left out of every denominator. ``index``: its position in the
        dataset (default: the next position).
        """
        self.n_skipped += 1
        self.exclude_skipped = exclude
        n_t = len(self.taus)
        if not exclude:
            self.evaluator.process(np.zeros((1, len(MODES), n_t)), np.zeros(1, bool), np.zeros(1, bool))
            if self.fair is not None:
                self.fair.process(np.zeros((1, len(MODES), len(self.fair.taus))), np.zeros(1, bool), np.zeros(1, bool))
        if self.region is not None:
            self.region.add_skipped(int(label), exclude)
        row = {"image_id": image_id, "label": int(label)}
        if self.has_predictions:
            row.update({"pred_top1": -1, "pred_top5": "", "top1_correct": False, "top5_correct": False})
        self.index.append(self._next_index(index))
        self.rows.append({**row, "_status": "skipped", "_reason": reason})
        for m in MODES:
            self.iou[m].append(np.zeros(n_t, np.float32))
        self.box.append(np.zeros((n_t, 4), self.box_dtype))

    def add(self, image_ids: Sequence[str], labels: Sequence[int], locs: Sequence[ImageLocalization],
            top5: Optional[np.ndarray] = None, status: Optional[Sequence[str]] = None,
            indices: Optional[Sequence[int]] = None, samples=None, maps: Optional[np.ndarray] = None,
            gts: Optional[Sequence[np.ndarray]] = None) -> None:
        """Add a batch of localized images; ``top5`` int [B, k] predicted classes, best first;
        ``status`` per image ('ok', or why its map was replaced by zeros); ``indices`` their
        positions in the dataset (default: the next positions). With a region scorer also the
        ``samples``, their normalized ``maps`` and ``gts`` (GT boxes on the map grid)."""
        ious = np.stack([l.iou for l in locs]) if locs else np.zeros((0, len(MODES), len(self.taus)))
        labels = np.asarray(labels, dtype=np.int64)
        if self.predictions is not None:  # a separate classifier's predictions, looked up by image id
            top5, missing = self.predictions.lookup(list(image_ids))
            self.n_missing_predictions += missing
        if top5 is not None and len(top5):
            t1 = top5[:, 0] == labels
            t5 = (top5 == labels[:, None]).any(axis=1)
        else:
            t1 = t5 = np.zeros(len(labels), dtype=bool)
        self.evaluator.process(ious, t1, t5)
        if self.fair is not None and locs:
            self.fair.process(np.stack([l.fair.iou for l in locs]), t1, t5)
        for i, (iid, lab, loc) in enumerate(zip(image_ids, labels, locs)):
            row = {"image_id": iid, "label": int(lab)}
            if top5 is not None and len(top5):
                row["pred_top1"] = int(top5[i, 0])
                row["pred_top5"] = " ".join(str(int(c)) for c in top5[i] if c >= 0)
                row["top1_correct"] = bool(t1[i])
                row["top5_correct"] = bool(t5[i])
            row["_status"] = status[i] if status is not None else "ok"
            if self.predictions is not None and iid not in self.predictions.top:
                row["_status"] = "no_prediction" if row["_status"] == "ok" else row["_status"]
            row["_reason"] = ""
            self.index.append(self._next_index(None if indices is None else indices[i]))
            self.rows.append(row)
            for mi, m in enumerate(MODES):
                self.iou[m].append(loc.iou[mi].astype(np.float32))
            self.box.append(loc.boxes[MODES.index(LOC_MODE)].astype(self.box_dtype))
        if self.region is not None:
            self.region.add(samples, maps, gts)

    # ------------------------------------------------------------ compute
    def summary(self) -> dict:
        """The summary numbers (dict of floats; NaN for classification without predictions)."""
        s = self.evaluator.evaluate().__dict__.copy()
        if not self.has_predictions:
            for k in ("top1_cls", "top5_cls", "top1_loc", "top5_loc", "top1_loc_fixed", "top5_loc_fixed"):
                s[k] = float("nan")
        s["loc_mode"] = LOC_MODE
        s["loc_tau_rule"] = LOC_RULE
        if self.predictions is not None:
            if self.predictions.k < 5:  # top-5 needs five columns
                for k in ("top5_cls", "top5_loc", "top5_loc_fixed"):
                    s[k] = float("nan")
        if self.fair is not None:  # the fair numbers: the same maps under wsoleval
            fair = self.fair.evaluate().__dict__
            s.update({k: fair[k] for k in FAIR_COLUMNS})
            s["maxboxacc_rule"] = f"wsoleval (MaxBoxAccV2 over {len(self.fair.taus)} taus)"
        s["n_skipped"] = self.n_skipped
        s["metric_denominator"] = ("scored images only (skipped excluded)" if self.exclude_skipped
                                   else "all images (skipped count as misses)")
        return s

    def per_image(self) -> pd.DataFrame:
        """per_image.csv: predictions, IoU and predicted box at loc_tau (and at the fixed τ)."""
        li = self.evaluator.loc_tau_index() if self.rows else 0
        fi = self.evaluator.fixed_index
        df = pd.DataFrame(self.rows)
        if not self.rows:
            return df
        status, reason = df.pop("_status"), df.pop("_reason")
        iou_l = np.stack(self.iou[LOC_MODE])
        iou_a = np.stack(self.iou[V2_MODE])
        boxes = np.stack(self.box)
        df["loc_tau"] = self.taus[li]
        df["iou"] = iou_l[:, li].astype(np.float64)
        for j, c in enumerate(("box_x0", "box_y0", "box_x1", "box_y1")):
            df[c] = boxes[:, li, j].astype(int)
        df["gt_known_correct"] = df["iou"] >= 0.5
        if "top1_correct" in df:
            df["top1_loc_correct"] = df["gt_known_correct"] & df["top1_correct"]
            df["top5_loc_correct"] = df["gt_known_correct"] & df["top5_correct"]
        df["iou_all_contours"] = iou_a[:, li].astype(np.float64)
        df["iou_fixed_tau"] = iou_l[:, fi].astype(np.float64)
        best = iou_l.argmax(axis=1)
        df["best_iou"] = iou_l[np.arange(len(df)), best].astype(np.float64)
        df["best_tau"] = self.taus[best]
        df["status"] = status
        df["reason"] = reason
        return df

    def curves(self) -> pd.DataFrame:
        """curves.csv, long format: mode, iou_threshold, tau, box_acc."""
        parts = []
        for mode, acc in self.evaluator.curves().items():
            for k, t in enumerate(self.evaluator.iou_thresholds):
                parts.append(pd.DataFrame({"mode": mode, "iou_threshold": t / 100, "tau": self.taus,
                                           "box_acc": acc[k]}))
        return pd.concat(parts, ignore_index=True)


def policy_columns(scorer: RunScorer, choice: ThresholdChoice) -> dict:
    """summary.csv's threshold-policy columns: which policy chose τ, by which rule, on what
    (and how many images), the τ, and the Loc numbers of the test set at it."""
    at = metrics_at_tau(scorer.evaluator, choice.index)
    out = {"tau_policy": choice.policy, "tau_policy_rule": RULES[choice.policy], "tau_policy_source": choice.source,
           "tau_policy_n_images": choice.n_images, "policy_tau": choice.tau}
    out.update({f"policy_{k}": at[k] for k in ("gt_known_loc", "top1_loc", "top5_loc", "boxacc_v2", "mean_iou")})
    if not scorer.has_predictions or (scorer.predictions is not None and scorer.predictions.k < 5):
        out["policy_top5_loc"] = float("nan")
        if not scorer.has_predictions:
            out["policy_top1_loc"] = float("nan")
    return out


def policy_choice(scorer: RunScorer, policy: str, fixed_tau: float, selection: Optional[RunScorer] = None,
                source: str = "") -> ThresholdChoice:
    """The τ ``policy`` picks for the run in ``scorer`` (``selection``: the scorer of the
    selection set, for holdout and pseudo_boxes)."""
    i50 = scorer.evaluator.iou_thresholds.index(50)
    test_curve = scorer.evaluator.curves()[LOC_MODE][i50]
    sel_curve = None if selection is None else selection.evaluator.curves()[LOC_MODE][i50]
    n_sel = 0 if selection is None else int(selection.evaluator.state["n"])
    return choose_tau(policy, scorer.taus, test_curve, fixed_tau, sel_curve, source, n_sel,
                      int(scorer.evaluator.state["n"]))


def summary_frame(numbers: dict, meta: dict) -> pd.DataFrame:
    """One-row summary.csv with the columns of SUMMARY_COLUMNS first."""
    row = {**meta, **numbers}
    row.setdefault("wsol_version", __version__)
    row.setdefault("date", _dt.date.today().isoformat())
    cols = [c for c in SUMMARY_COLUMNS if c in row] + [c for c in row if c not in SUMMARY_COLUMNS]
    return pd.DataFrame([{c: row.get(c) for c in cols}])
