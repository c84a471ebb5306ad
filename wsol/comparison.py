"""``wsol compare``: measured suite results next to the published numbers they reproduce.

``benchmarks/paper_numbers.csv`` holds one published number per row, keyed by dataset,
split, backbone, method, protocol and metric (a summary.csv column, or ``<column>_err``
for an error given as 100 - accuracy, e.g. ``top1_loc_err`` = 100 - ``top1_loc``), and by
``training``, how the model was trained (cam, has, acol, spg, adl, cutmix; none for the
centre baseline; absent means cam). Suite runs carry ``training`` from their backbone entry.
A ``best_wsol`` row (the best of the six methods) is measured as the largest of the six
methods' measured values for its dataset, split, paper architecture, protocol and metric.

A published row may carry a protocol fingerprint (columns :data:`FP_COLUMNS`, the metric
being the sixth field; docs/protocol.md, Protocol fingerprints). A measured number is set
next to it only when the run's fingerprint for that metric (derived from its protocol, τ
policy, classifier and fixed τ) agrees on every field; otherwise the row's status is
``fingerprint differs`` and its note names the differing fields.
"""
from __future__ import annotations

import math
import os
from typing import List, Optional, Tuple

import pandas as pd

from wsol.errors import WsolError
from wsol.localize.protocols import PROTOCOLS
from wsol.metrics.fingerprint import FIELDS, Fingerprint, from_mapping, measured_fingerprint


KEYS = ["dataset", "split", "backbone", "method", "protocol", "metric"]
PAPER_COLUMNS = ["source"] + KEYS + ["value"]
TRAININGS = ("cam", "has", "acol", "spg", "adl", "cutmix")
FP_COLUMNS = [f for f in FIELDS if f != "metric"]
COMPARISON_COLUMNS = ["dataset", "split", "backbone", "training", "method", "protocol", "metric", "measured",
                      "published", "delta", "status", "run_id", "n_images", "source", "note", "paper_backbone",
                      "fingerprint"]
REFUSED = "fingerprint differs"


def default_paper_file() -> str:
    """The shipped ``benchmarks/paper_numbers.csv`` (this checkout's, or the wheel's copy)."""
    from wsol.paths import shipped_file

    return shipped_file("paper_numbers.csv")


def read_paper_numbers(path: Optional[str] = None) -> pd.DataFrame:
    """Read and check a published-numbers CSV (columns :data:`PAPER_COLUMNS`, optional note)."""
    path = path or default_paper_file()
    if not os.path.isfile(path):
        raise WsolError(f"{path}: published numbers file not found (pass --paper FILE)")
    try:
        df = pd.read_csv(path, dtype={k: str for k in KEYS}, keep_default_na=False, na_values={"value": [""]})
    except Exception as e:
        raise WsolError(f"{path}: unreadable CSV ({type(e).__name__}: {e})") from None
    missing = [c for c in PAPER_COLUMNS if c not in df.columns]
    if missing:
        raise WsolError(f"{path}: missing column(s) {', '.join(missing)} (need {', '.join(PAPER_COLUMNS)})")
    bad = pd.to_numeric(df["value"], errors="coerce").isna()
    if bad.any():
        raise WsolError(f"{path}:{int(bad.idxmax()) + 2}: value must be a number, got {df['value'][bad.idxmax()]!r}")
    df["value"] = df["value"].astype(float)
    if "note" not in df.columns:
        df["note"] = ""
    if "training" not in df.columns:
        df["training"] = "cam"
    df["training"] = df["training"].replace("", "cam")
    for c in FP_COLUMNS:
        if c not in df.columns:
            df[c] = ""
    df["fingerprint"] = [_text(from_mapping(r)) for r in df.to_dict("records")]
    return df


def _text(fp: Optional[Fingerprint]) -> str:
    return fp.text() if fp is not None else ""


def run_fingerprint(run: pd.Series, metric: str) -> Optional[Fingerprint]:
    """The fingerprint of ``metric`` as the run in ``run`` (a summary.csv row) measured it; None
    when the metric has no boxes or the run's protocol is not one wsol knows."""
    def cell(name: str, default):
        v = run.get(name, default)
        return default if v is None or (isinstance(v, float) and math.isnan(v)) or v == "" else v

    name = str(cell("protocol", "wsoleval"))
    if name not in PROTOCOLS.names(sort=False):
        return None
    taus = [float(cell("loc_tau", "nan"))] if str(cell("n_thresholds", "")) == "1" else None
    return measured_fingerprint(metric, PROTOCOLS.get(name), str(cell("tau_policy", "test_best")),
                                str(cell("classifier", "same")), float(cell("fixed_tau", 0.2)), taus)


def fingerprint_note(measured: Fingerprint, published: Fingerprint) -> str:
    """One line naming each field where the two fingerprints differ."""
    diffs = measured.differences(published)
    return "fingerprint differs in " + "; ".join(f"{f} (measured {a}, published {b})" for f, a, b in diffs)


def measured_value(row: pd.Series, metric: str) -> float:
    """``row[metric]``, or 100 - ``row[base]`` for ``<base>_err``; NaN when absent."""
    def num(x) -> float:
        try:
            return float(x)
        except (TypeError, ValueError):
            return float("nan")

    if metric in row.index:
        return num(row[metric])
    if metric.endswith("_err") and metric[:-4] in row.index:
        return 100.0 - num(row[metric[:-4]])
    return float("nan")


def _read_runs(run_dir: str) -> pd.DataFrame:
    """``run_dir/summary.csv`` with the key columns checked (one line naming the file if not)."""
    path = os.path.join(run_dir, "summary.csv")
    if not os.path.isfile(path):
        raise WsolError(f"{path}: no summary.csv (run `wsol suite` or `wsol evaluate --out` first)")
    try:
        runs = pd.read_csv(path, keep_default_na=True)
    except Exception as e:
        raise WsolError(f"{path}: unreadable CSV ({type(e).__name__}: {e})") from None
    need = [k for k in KEYS[:-1] if k not in runs.columns]
    if need:
        raise WsolError(f"{path}: missing column(s) {', '.join(need)}")
    return runs


def _run_datasets(r: pd.Series) -> set:
    """The names a run answers to: its adapter and, in a suite, its dataset's own name."""
    return {str(r["dataset"]), str(r.get("dataset_name", r["dataset"]))}


def _run_training(r: pd.Series) -> str:
    """The run's training method ('cam' when the column is absent or empty)."""
    t = r.get("training", "cam")
    return "cam" if t is None or (isinstance(t, float) and math.isnan(t)) or str(t) == "" else str(t)


def _published_base(p: pd.Series) -> dict:
    """The columns every comparison row of published number ``p`` carries."""
    base = {k: p[k] for k in KEYS}
    base["training"] = p["training"]
    base["paper_backbone"] = p.get("paper_backbone", p["backbone"]) or p["backbone"]
    base.update(published=p["value"], source=p["source"], note=p["note"], fingerprint=p["fingerprint"])
    return base


def _matched_row(p: pd.Series, r: pd.Series, base: dict) -> Optional[dict]:
    """The comparison row of published number ``p`` against run ``r``: failed, refused (the
    fingerprints differ) or measured; None when the run has no value for the metric."""
    if ("status" in r.index and str(r.get("status", "ok"))) == "failed":
        return {**base, "measured": float("nan"), "delta": float("nan"), "status": "failed",
                "run_id": r.get("run_id", ""), "n_images": float("nan"), "note": str(r.get("reason", "") or "")}
    v = measured_value(r, p["metric"])
    if math.isnan(v):
        return None
    row = {**base, "run_id": r.get("run_id", ""), "n_images": r.get("n_images", float("nan"))}
    published_fp, measured_fp = from_mapping(p), run_fingerprint(r, p["metric"])
    if published_fp is not None and measured_fp is not None and measured_fp.differences(published_fp):
        return {**row, "measured": float("nan"), "delta": float("nan"), "status": REFUSED,
                "note": fingerprint_note(measured_fp, published_fp)}
    return {**row, "measured": v, "delta": v - p["value"], "status": "measured"}


def _rows_for(p: pd.Series, runs: pd.DataFrame) -> List[dict]:
    """Every comparison row of published number ``p`` ('not run' when no run gives one)."""
    base = _published_base(p)
    match = [r for _, r in runs.iterrows()
             if p["dataset"] in _run_datasets(r) and all(str(r[k]) == p[k] for k in KEYS[1:-1])
             and _run_training(r) == p["training"]]
    rows = [row for row in (_matched_row(p, r, base) for r in match) if row is not None]
    return rows or [{**base, "measured": float("nan"), "delta": float("nan"), "status": "not run",
                     "run_id": "", "n_images": float("nan")}]


def compare(run_dir: str, paper: Optional[str] = None, write: bool = True) -> pd.DataFrame:
    """Join ``run_dir/summary.csv`` with the published numbers; write comparison.csv/.md.

    A run matches a published number on dataset (the adapter, or the suite's dataset name),
    split, backbone, method and protocol. Every published number
    gets at least one row: ``measured`` (with delta = measured - published), ``failed``
    (the run failed; reason in note) or ``not run``.
    """
    runs = _read_runs(run_dir)
    pub = read_paper_numbers(paper)
    out = [row for _, p in pub.iterrows() for row in _rows_for(p, runs)]
    df = pd.DataFrame(out, columns=COMPARISON_COLUMNS)
    _best_of_six(df)
    if write:
        from wsol.report.csv import write_csv_atomic
        from wsol.suite import _write_text_atomic

        write_csv_atomic(df, os.path.join(run_dir, "comparison.csv"))
        _write_text_atomic(os.path.join(run_dir, "comparison.md"), to_markdown(df))
    return df


def _best_of_six(df: pd.DataFrame) -> None:
    """Fill ``best_wsol`` rows in place: the max of the six methods' measured values (all six
    needed), else left 'not run' with a note saying how many were measured."""
    for i in df.index[df.training == "best_wsol"]:
        rows = df[(df.dataset == df.at[i, "dataset"]) & (df.split == df.at[i, "split"])
                  & (df.protocol == df.at[i, "protocol"]) & (df.metric == df.at[i, "metric"])
                  & (df.paper_backbone == df.at[i, "paper_backbone"]) & df.training.isin(TRAININGS)
                  & (df.status == "measured")]
        got = set(rows.training)
        if got == set(TRAININGS):
            best = rows.loc[rows.measured.idxmax()]
            df.loc[i, ["measured", "status", "run_id", "n_images"]] = [best.measured, "measured", best.run_id,
                                                                      best.n_images]
            df.at[i, "delta"] = best.measured - df.at[i, "published"]
        else:
            df.at[i, "note"] = f"best of the six methods: {len(got)} of 6 measured"


def _fmt(x) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    return "" if math.isnan(v) else f"{v:.2f}"


def to_markdown(df: pd.DataFrame) -> str:
    """The comparison as a Markdown table (measured 'not run' / 'failed' where absent)."""
    head = ["dataset", "split", "backbone", "training", "method", "protocol", "metric", "measured", "published",
            "delta", "images", "run", "source"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for _, r in df.iterrows():
        measured = _fmt(r["measured"]) if r["status"] == "measured" else r["status"]
        delta = f"{float(r['delta']):+.2f}" if r["status"] == "measured" else ""
        n = "" if pd.isna(r["n_images"]) else str(int(r["n_images"]))
        cells = [r["dataset"], r["split"], r["backbone"], r["training"], r["method"], r["protocol"], r["metric"], measured,
                 _fmt(r["published"]), delta, n, r["run_id"] or "", r["source"]]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    lines.append("delta = measured - published (percentage points); `_err` metrics are 100 - accuracy.")
    return "\n".join(lines) + "\n"


def render_published(out_dir: str, paper: Optional[str] = None) -> Tuple[str, str]:
    """Write ``out_dir/published.md`` and ``published.html``: the whole published table grouped
    by protocol fingerprint; returns both paths."""
    from wsol.report.published import to_html, to_markdown as published_markdown
    from wsol.suite import _write_text_atomic

    pub = read_paper_numbers(paper)
    os.makedirs(out_dir, exist_ok=True)
    md, page = os.path.join(out_dir, "published.md"), os.path.join(out_dir, "published.html")
    _write_text_atomic(md, published_markdown(pub))
    _write_text_atomic(page, to_html(pub))
    return md, page
