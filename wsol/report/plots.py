"""Report figures (matplotlib, Agg backend): BoxAcc vs τ, per-class accuracy, suite bars.

Every function returns PNG bytes; :func:`write_png` puts them in a file.
"""
from __future__ import annotations

import io
import math
import re
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from wsol.errors import WsolError
from wsol.utils.io import write_bytes_atomic

IOU_COLORS = {0.3: "#1f77b4", 0.5: "#d62728", 0.7: "#2ca02c"}
MODE_TITLES = {"all": "all contours (MaxBoxAccV2)", "largest": "largest component (MaxBoxAcc, V1 at IoU 0.5)"}
MAX_CLASS_BARS = 40


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _to_png(fig, dpi: int = 100) -> bytes:
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def write_png(path: str, png: bytes) -> str:
    """Write PNG bytes to ``path`` (parent folders created)."""
    return write_bytes_atomic(path, png)


def pretty_class_name(name: str) -> str:
    """'001.Black_footed_Albatross' -> 'Black footed Albatross' (other names unchanged but '_')."""
    return re.sub(r"^\d+\.", "", str(name)).replace("_", " ")


def plot_boxacc_curves(curves: pd.DataFrame, title: str = "") -> bytes:
    """BoxAcc(τ) for IoU 0.3/0.5/0.7, one panel per mode (curves.csv: mode, iou_threshold,
    tau, box_acc in %); the maximum of each curve is marked and labelled."""
    need = {"mode", "iou_threshold", "tau", "box_acc"}
    if not need <= set(curves.columns):
        raise WsolError(f"curves table lacks columns {sorted(need - set(curves.columns))}")
    plt = _plt()
    modes = [m for m in ("all", "largest") if m in set(curves["mode"])] or sorted(set(curves["mode"]))
    fig, axes = plt.subplots(1, len(modes), figsize=(5.2 * len(modes), 3.8), squeeze=False, sharey=True)
    for ax, mode in zip(axes[0], modes):
        sub = curves[curves["mode"] == mode]
        for thr in sorted(set(sub["iou_threshold"])):
            c = sub[sub["iou_threshold"] == thr].sort_values("tau")
            color = IOU_COLORS.get(round(float(thr), 2))
            label = f"IoU ≥ {thr:g}"
            if len(c) and c["box_acc"].notna().any():
                k = int(np.nanargmax(c["box_acc"].to_numpy()))
                t, v = float(c["tau"].iloc[k]), float(c["box_acc"].iloc[k])
                ax.plot([t], [v], "o", color=color, ms=5)
                label += f": max {v:.1f} at τ={t:.2f}"
            ax.plot(c["tau"], c["box_acc"], color=color, lw=1.8, label=label)
        ax.set_title(MODE_TITLES.get(mode, mode), fontsize=10)
        ax.set_xlabel("CAM threshold τ")
        ax.set_xlim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
    axes[0][0].set_ylabel("BoxAcc (%)")
    axes[0][0].set_ylim(0, 105)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _to_png(fig)


def plot_pixel_pr(curves: pd.DataFrame, pxap: Optional[float] = None, title: str = "") -> bytes:
    """The pixel precision-recall curve (curves.csv rows of mode 'pixel': tau, precision,
    recall, pixel_iou) and pixel IoU vs τ, with PxAP and the peak IoU marked."""
    sub = curves[curves["mode"] == "pixel"] if "mode" in curves.columns else curves
    need = {"tau", "precision", "recall", "pixel_iou"}
    if not need <= set(sub.columns) or not len(sub):
        raise WsolError("curves table has no pixel precision-recall rows (mode 'pixel')")
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10.4, 3.8))
    c = sub.sort_values("tau", ascending=False)
    ok = c["precision"].notna()
    label = "PR curve" + (f": PxAP {pxap:.1f}" if pxap is not None and np.isfinite(pxap) else "")
    a.step(c["recall"][ok], c["precision"][ok] * 100, where="pre", color="#d62728", lw=1.8, label=label)
    a.set_xlabel("recall (object pixels)")
    a.set_ylabel("precision (%)")
    a.set_xlim(0, 1)
    a.set_ylim(0, 105)
    a.grid(alpha=0.3)
    a.legend(fontsize=8, loc="upper right")
    a.set_title("pixel precision-recall (PxAP = area)", fontsize=10)
    iou = c["pixel_iou"].to_numpy(dtype=float) * 100
    b.plot(c["tau"], iou, color="#1f77b4", lw=1.8)
    if np.isfinite(iou).any():
        k = int(np.nanargmax(iou))
        b.plot([c["tau"].iloc[k]], [iou[k]], "o", color="#1f77b4", ms=5)
        b.annotate(f"PIoU {iou[k]:.1f} at τ={c['tau'].iloc[k]:.2f}", (c["tau"].iloc[k], iou[k]),
                   textcoords="offset points", xytext=(6, 6), fontsize=8)
    b.set_xlabel("CAM threshold τ (score ≥ τ)")
    b.set_ylabel("pixel IoU (%)")
    b.set_xlim(0, 1)
    b.set_ylim(0, 105)
    b.grid(alpha=0.3)
    b.set_title("pixel IoU vs τ (PIoU = peak)", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _to_png(fig)


#: curves.csv modes of the faithfulness metrics (wsol.evaluation.faithfulness)
FAITHFULNESS_MODES = ("deletion", "insertion", "road_morf", "road_lerf")
_FAITH_STYLE = {"deletion": ("#d62728", "deletion"), "insertion": ("#2ca02c", "insertion"),
                "road_morf": ("#d62728", "MoRF (most relevant first)"), "road_lerf": ("#2ca02c", "LeRF (least relevant first)")}


def plot_faithfulness(curves: pd.DataFrame, summary: Optional[dict] = None, title: str = "") -> bytes:
    """Deletion / insertion curves (class score vs fraction perturbed, AUC in the legend) and
    ROAD's MoRF / LeRF scores vs fraction removed (curves.csv rows of those modes: fraction, score)."""
    summary = summary or {}
    sub = curves[curves["mode"].isin(FAITHFULNESS_MODES)] if "mode" in curves.columns else curves.iloc[:0]
    if not len(sub) or not {"fraction", "score"} <= set(sub.columns):
        raise WsolError("curves table has no faithfulness rows (modes deletion, insertion, road_morf, road_lerf)")
    panels = [(("deletion", "insertion"), "deletion / insertion (RISE)", "fraction of the map's positions"),
              (("road_morf", "road_lerf"), "ROAD (noisy linear imputation)", "fraction of pixels removed")]
    panels = [p for p in panels if sub["mode"].isin(p[0]).any()]
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    for ax, (modes, head, xlabel) in zip(axes[0], panels):
        for mode in modes:
            c = sub[sub["mode"] == mode].sort_values("fraction")
            if not len(c):
                continue
            color, label = _FAITH_STYLE[mode]
            key = f"{mode}_auc" if mode in ("deletion", "insertion") else mode
            v = summary.get(key)
            if v is not None and np.isfinite(float(v)):
                label += f": {'AUC' if mode in ('deletion', 'insertion') else 'mean'} {float(v):.3f}"
            ax.plot(c["fraction"], c["score"], "o-", color=color, lw=1.8, ms=3, label=label)
        ax.set_title(head, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, None)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
    axes[0][0].set_ylabel("class softmax score (mean)")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _to_png(fig)


def per_class_accuracy(per_image: pd.DataFrame, class_names: Optional[Sequence[str]] = None,
                       column: str = "gt_known_correct") -> pd.DataFrame:
    """Per-class share (%) of images with ``column`` true -> label, name, n_images, accuracy,
    sorted by label."""
    if column not in per_image.columns or "label" not in per_image.columns:
        raise WsolError(f"per_image table lacks columns 'label' and '{column}'")
    ok = per_image[column].astype(str).str.lower().isin(["true", "1", "1.0"])
    g = pd.DataFrame({"label": per_image["label"].astype(int), "ok": ok}).groupby("label")["ok"]
    df = pd.DataFrame({"n_images": g.size(), "accuracy": g.mean() * 100.0}).reset_index()
    names = list(class_names or [])
    df["name"] = [pretty_class_name(names[i]) if 0 <= i < len(names) else str(i) for i in df["label"]]
    return df[["label", "name", "n_images", "accuracy"]]


def plot_per_class(per_class: pd.DataFrame, title: str = "GT-known localization per class") -> bytes:
    """Horizontal bars of per-class accuracy (from :func:`per_class_accuracy`). With more
    than 40 classes only the 20 worst and 20 best are drawn (the title says of how many)."""
    plt = _plt()
    df = per_class.sort_values(["accuracy", "label"], ascending=[True, True]).reset_index(drop=True)
    n = len(df)
    if n > MAX_CLASS_BARS:
        half = MAX_CLASS_BARS // 2
        df = pd.concat([df.head(half), df.tail(half)], ignore_index=True)
        title = f"{title}: {half} worst and {half} best of {n} classes"
    labels = [f"{nm} ({k})" for nm, k in zip(df["name"], df["n_images"])]
    fig, ax = plt.subplots(figsize=(7.5, max(1.6, 0.26 * len(df) + 0.9)))
    ypos = np.arange(len(df))
    vals = df["accuracy"].to_numpy(dtype=float)
    ax.barh(ypos, vals, color=plt.cm.RdYlGn(np.clip(vals / 100.0, 0, 1)), edgecolor="#444", lw=0.4)
    for y, v in zip(ypos, vals):
        ax.text(min(v + 1, 92), y, f"{v:.0f}", va="center", fontsize=7)
    if n > MAX_CLASS_BARS:
        ax.axhline(MAX_CLASS_BARS // 2 - 0.5, color="#888", ls="--", lw=0.8)
    ax.set_yticks(ypos)
    ax.set_yticklabels(labels, fontsize=7 if len(df) > 20 else 8)
    ax.set_xlim(0, 100)
    ax.set_xlabel("GT-known Loc (%) at loc_tau, IoU ≥ 0.5   (images per class in brackets)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _to_png(fig)


def plot_suite_bars(summary: pd.DataFrame, metric: str = "maxboxacc_v2") -> bytes:
    """Grouped bars of ``metric`` per backbone (x) and method (colour), one panel per dataset
    (suite summary.csv: backbone, method, dataset, metric; NaN rows are left out, repeated
    backbone/method rows averaged)."""
    need = {"backbone", "method", metric}
    if not need <= set(summary.columns):
        raise WsolError(f"suite summary lacks columns {sorted(need - set(summary.columns))}")
    plt = _plt()
    from matplotlib.patches import Patch

    df = summary.copy()
    if "dataset" not in df.columns:
        df["dataset"] = ""
    df[metric] = pd.to_numeric(df[metric], errors="coerce")
    df = df.dropna(subset=[metric])
    for c in ("dataset", "backbone", "method"):
        df[c] = df[c].fillna("").astype(str)
    datasets = sorted(set(df["dataset"])) or [""]
    methods = sorted(set(df["method"]))
    colors = {m: plt.get_cmap("tab10")(j % 10) for j, m in enumerate(methods)}
    n_bb = [max(1, df[df["dataset"] == d]["backbone"].nunique()) for d in datasets]
    group_w = 0.55 + 0.35 * len(methods)  # inches per backbone group
    fig, axes = plt.subplots(1, len(datasets), squeeze=False, sharey=True,
                             figsize=(max(4.5, 1.2 + group_w * sum(n_bb) + 0.6 * len(datasets)), 4.0),
                             gridspec_kw={"width_ratios": n_bb})
    top = max([0.0] + df[metric].tolist())
    width = 0.8 / max(1, len(methods))
    for ax, ds in zip(axes[0], datasets):
        sub = df[df["dataset"] == ds]
        backbones = sorted(set(sub["backbone"]))
        for j, m in enumerate(methods):
            for i, b in enumerate(backbones):
                v = sub[(sub["backbone"] == b) & (sub["method"] == m)][metric]
                if len(v):
                    x, val = i - 0.4 + width * (j + 0.5), float(v.mean())
                    ax.bar([x], [val], width, color=colors[m])
                    ax.text(x, val + top * 0.01 + 0.3, f"{val:.1f}", ha="center", fontsize=7)
        ax.set_xticks(range(len(backbones)))
        ax.set_xticklabels(backbones, rotation=20, ha="right", fontsize=8)
        ax.set_xlim(-0.6, max(1, len(backbones)) - 0.4)
        ax.set_title(ds or "suite", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylim(0, max(10.0, math.ceil(top * 1.15)))
    axes[0][0].set_ylabel(f"{metric} (%)")
    if methods:
        fig.legend(handles=[Patch(color=colors[m], label=m) for m in methods], title="method", fontsize=8,
                   title_fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 0.95))
    fig.tight_layout()
    return _to_png(fig)
