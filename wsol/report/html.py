"""One-file HTML reports of a run (or of a suite), with every image embedded as a data URI.

A run folder holds the CSVs of ``wsol evaluate`` (summary.csv, per_image.csv, curves.csv,
timings.csv), optionally ``run.json`` (dataset, root, split, dataset_options, backbone,
weights, method) and ``cams/<image_id>.npy`` heatmaps. A suite folder holds a
``summary.csv`` with one row per run (run_id, dataset, backbone, method, maxboxacc_v2, ...).
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import logging
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from wsol.datasets.class_names import imagenet_class_names
from wsol.errors import DataError, WsolError, first_line
from wsol.report import plots
from wsol.report.overlay import encode_png, overlay_image
from wsol.report.tables import RunTables
from wsol.utils.io import load_npy, write_text_atomic

log = logging.getLogger(__name__)

RUN_JSON = "run.json"
REPORT_HTML = "report.html"
RUN_JSON_KEYS = ("dataset", "root", "split", "dataset_options", "backbone", "weights", "method")
THUMB_MAX_SIDE = 304
GALLERY_SEED = 0

# (column, label, what it is) of the headline numbers, in display order
KEY_METRICS = (
    ("maxboxacc_v2", "MaxBoxAccV2", "mean over IoU 0.3/0.5/0.7 of max-over-τ BoxAcc, all contours"),
    ("maxboxacc", "MaxBoxAcc", "max-over-τ BoxAcc at IoU 0.5, largest component (V1)"),
    ("gt_known_loc", "GT-known Loc", "IoU ≥ 0.5 with the GT-class map, at loc_tau"),
    ("top1_loc", "Top-1 Loc", "GT-known and top-1 class right, at loc_tau"),
    ("pxap", "PxAP", "pixel average precision against the masks"),
    ("piou", "PIoU", "peak pixel IoU over τ"),
    ("pointing_game", "Pointing game", "the map's maximum on the object"),
    ("top1_cls", "Top-1 Cls", "classification accuracy"),
    ("mean_iou", "mean IoU", "x100, at loc_tau, largest component"),
    ("images_per_s", "images/s", "end-to-end throughput"),
)
CONFIG_KEYS = ("dataset", "split", "protocol", "backbone", "weights", "method", "n_images", "cam_step",
               "n_thresholds", "fixed_tau", "loc_tau_rule", "device", "wsol_version", "date")
TAU_COLUMNS = ("loc_tau", "fixed_tau", "tau_iou30", "tau_iou50", "tau_iou70", "cam_step")
INT_COLUMNS = ("n_images", "n_thresholds")
PERCENT_COLUMNS = ("top1_cls", "top5_cls", "gt_known_loc", "top1_loc", "top5_loc", "gt_known_loc_fixed",
                   "top1_loc_fixed", "top5_loc_fixed", "maxboxacc", "maxboxacc_v2", "maxboxacc_iou30",
                   "maxboxacc_iou50", "maxboxacc_iou70", "mean_iou", "accuracy")

CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px auto;max-width:1340px;
 color:#222;padding:0 16px;line-height:1.4}
h1{font-size:1.6em;margin-bottom:4px}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:4px;
 margin-top:32px}
.sub{color:#666;margin-top:0}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;flex:1 1 0;min-width:110px;background:#fafafa}
.card .v{font-size:1.6em;font-weight:600}.card .k{font-size:12px;color:#555}
.card .d{font-size:11px;color:#888}
.cols{display:flex;flex-wrap:wrap;gap:32px;align-items:flex-start}.cols h2{margin-top:16px}
.note{background:#fff6d8;border:1px solid #e8d48a;border-radius:4px;padding:6px 10px;font-size:13px}
img.plot{max-width:100%;border:1px solid #eee}
.gallery{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;width:312px;border:1px solid #ddd;border-radius:4px;padding:4px;background:#fafafa}
figure img{max-width:304px;display:block;margin:auto}
figcaption{font-size:12px;word-break:break-all;margin-top:4px}
.ok{color:#1a7f37}.bad{color:#c62828}
.legend span{display:inline-block;margin-right:16px;font-size:13px}
.sw{display:inline-block;width:14px;height:10px;margin-right:4px;vertical-align:middle}
details{margin:8px 0}
"""


def _read_csv(path: str) -> Optional[pd.DataFrame]:
    """A CSV wsol wrote, or None when absent. wsol ends every CSV with a newline, so one that
    does not was cut short (a copy that stopped, a full disk): refused rather than drawn."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 1))
            last = f.read(1)
        if size and last != b"\n":
            raise WsolError(f"{path}: truncated (the last line is incomplete); rerun the command that wrote it")
        return pd.read_csv(path)
    except WsolError:
        raise
    except Exception as e:  # pandas raises several types for bad CSV
        raise WsolError(f"{path}: unreadable CSV ({type(e).__name__}: {first_line(e)})") from None


def check_per_image_rows(summary: pd.DataFrame, per_image: Optional[pd.DataFrame], path: str) -> None:
    """per_image.csv must hold one row per image summary.csv counts (skipped ones included)."""
    if per_image is None or "n_images" not in summary.columns or len(summary) != 1:
        return
    n = summary["n_images"].iloc[0]
    skipped = summary["n_skipped"].iloc[0] if "n_skipped" in summary.columns else 0
    if pd.isna(n):
        return
    lo, hi = int(n), int(n) + (0 if pd.isna(skipped) else int(skipped))
    if not lo <= len(per_image) <= hi:
        want = str(lo) if lo == hi else f"{lo}-{hi}"
        raise WsolError(f"{path}: {len(per_image)} rows, but summary.csv counts {want} images: truncated or "
                        "from another run; rerun the evaluation")


def read_run_json(run_dir: str) -> Dict[str, Any]:
    """``RUN_DIR/run.json`` as a dict ({} when absent; a warning when unreadable)."""
    path = os.path.join(run_dir, RUN_JSON)
    if not os.path.isfile(path):
        return {}
    try:
        with open(path) as f:
            info = json.load(f)
    except (OSError, ValueError) as e:
        log.warning("%s: ignored (%s)", path, e)
        return {}
    if not isinstance(info, dict):
        log.warning("%s: ignored (not a JSON object)", path)
        return {}
    return info


def _require_summary(folder: str) -> pd.DataFrame:
    if not os.path.isdir(folder):
        raise WsolError(f"{folder}: no such folder")
    path = os.path.join(folder, "summary.csv")
    df = _read_csv(path)
    if df is None:
        raise WsolError(f"{folder}: no summary.csv here (expected a `wsol evaluate --out` folder or a suite folder)")
    if len(df) == 0:
        raise WsolError(f"{path}: empty")
    return df


def load_run(run_dir: str) -> RunTables:
    """Read a run folder's tables (summary.csv required) and its run.json."""
    summary = _require_summary(run_dir)
    per_image_path = os.path.join(run_dir, "per_image.csv")
    per_image = _read_csv(per_image_path)
    check_per_image_rows(summary, per_image, per_image_path)
    return RunTables(summary, per_image,
                     _read_csv(os.path.join(run_dir, "curves.csv")), _read_csv(os.path.join(run_dir, "timings.csv")),
                     run_dir=run_dir, run_info=read_run_json(run_dir))


def is_suite_dir(folder: str) -> bool:
    """A suite folder: its summary.csv has a run_id column, or it has several rows and no
    per_image.csv beside it."""
    df = _read_csv(os.path.join(folder, "summary.csv"))
    if df is None:
        return False
    return "run_id" in df.columns or (len(df) > 1 and not os.path.isfile(os.path.join(folder, "per_image.csv")))


# ---------------------------------------------------------------------------------------------
# formatting helpers

def _esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _is_nan(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def format_value(col: str, v: Any) -> str:
    """A summary value as shown: percentages and rates with 2 (1) decimals, τ with 2-3."""
    if _is_nan(v):
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if col in PERCENT_COLUMNS and isinstance(v, (int, float, np.integer, np.floating)):
        return f"{float(v):.2f}"
    if isinstance(v, (int, np.integer)) or (col in INT_COLUMNS and isinstance(v, float) and float(v).is_integer()):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        if col in TAU_COLUMNS:
            return f"{v:.3f}".rstrip("0").rstrip(".") if v != 0 else "0"
        if col in ("images_per_s",):
            return f"{v:.1f}"
        return f"{v:.2f}"
    return str(v)


def data_uri(png: bytes) -> str:
    """PNG bytes -> ``data:image/png;base64,...``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _img(png: bytes, cls: str, alt: str) -> str:
    return f'<img class="{cls}" alt="{_esc(alt)}" src="{data_uri(png)}">'


def _table(df: pd.DataFrame, num_cols: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in df.columns)
    rows = []
    for _, r in df.iterrows():
        cells = []
        for c in df.columns:
            v = r[c]
            cls = ' class="num"' if c in num_cols else ""
            cells.append(f"<td{cls}>{v if isinstance(v, _Raw) else _esc(format_value(c, v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


class _Raw(str):
    """A table cell that is already HTML."""


def _page(title: str, body: str) -> str:
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>\n{body}\n"
            f"<p class=\"sub\" style=\"margin-top:32px\">generated by wsol report, {stamp}</p>"
            f"</body></html>\n")


def _write_text(path: str, text: str) -> str:
    return write_text_atomic(path, text, newline=None)


# ---------------------------------------------------------------------------------------------
# gallery

def select_gallery(per_image: pd.DataFrame, n: int, seed: int = GALLERY_SEED) -> pd.DataFrame:
    """The ``n`` best and ``n`` worst images by IoU at loc_tau, and ``n`` others drawn at
    random with a fixed seed; no image twice. Adds a ``group`` column (best|worst|random)."""
    if n <= 0 or per_image is None or len(per_image) == 0:
        return pd.DataFrame(columns=list(per_image.columns if per_image is not None else []) + ["group"])
    df = per_image.copy()
    if "status" in df.columns:
        df = df[df["status"].fillna("ok").astype(str) == "ok"]
    df = df.assign(_iou=pd.to_numeric(df.get("iou", pd.Series(np.nan, index=df.index)), errors="coerce").fillna(-1.0))
    order = df.sort_values(["_iou", "image_id"], ascending=[False, True], kind="mergesort")
    best = order.head(n)
    rest = order.drop(best.index)
    worst = rest.sort_values(["_iou", "image_id"], ascending=[True, True], kind="mergesort").head(n)
    rest = rest.drop(worst.index).sort_values("image_id", kind="mergesort")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(rest), size=min(n, len(rest)), replace=False) if len(rest) else np.array([], int)
    rand = rest.iloc[np.sort(pick)]
    parts = [best.assign(group="best"), worst.assign(group="worst"), rand.assign(group="random")]
    return pd.concat(parts).drop(columns="_iou")


def _thumbnail(path: str, max_side: int = THUMB_MAX_SIDE) -> Tuple[np.ndarray, float, float]:
    """Image as RGB uint8 at most ``max_side`` on its long side, and the x/y scale applied."""
    from PIL import Image

    from wsol.transforms.image import load_rgb

    im = load_rgb(path)
    w, h = im.size
    s = min(1.0, max_side / float(max(w, h)))
    if s < 1.0:
        im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BILINEAR)
    return np.asarray(im, dtype=np.uint8), im.width / float(w), im.height / float(h)


def _load_map(path: str) -> Optional[np.ndarray]:
    if not os.path.isfile(path):
        return None
    try:
        m = load_npy(path, "heatmap")
    except DataError as e:
        log.warning("%s", e)
        return None
    if m.ndim != 2 or not np.isfinite(m).all():
        log.warning("%s: not a finite 2-D heatmap, skipped", path)
        return None
    return np.clip(m.astype(np.float32), 0.0, 1.0)


def _class_name(names: Sequence[str], i: Any) -> str:
    try:
        k = int(i)
    except (TypeError, ValueError):
        return "?"
    return plots.pretty_class_name(names[k]) if 0 <= k < len(names) else str(k)


def _bool(v: Any) -> Optional[bool]:
    if _is_nan(v):
        return None
    return str(v).strip().lower() in ("true", "1", "1.0")


def _gallery_html(sel: pd.DataFrame, dataset, cams_dir: Optional[str], class_names: Sequence[str]) -> Tuple[str, int, int]:
    """Figures for the selected rows -> (html, n_images_drawn, n_with_heatmap)."""
    by_id = {s.image_id: s for s in dataset.samples}
    blocks, drawn, with_map = [], 0, 0
    for group in ("best", "worst", "random"):
        rows = sel[sel["group"] == group]
        if len(rows) == 0:
            continue
        figs = []
        for _, r in rows.iterrows():
            iid = str(r["image_id"])
            s = by_id.get(iid)
            if s is None or not s.path or not os.path.isfile(s.path):
                log.warning("gallery: image %s not found in the dataset, skipped", iid)
                continue
            try:
                img, sx, sy = _thumbnail(s.path)
            except WsolError as e:
                log.warning("gallery: %s", e)
                continue
            gt = np.asarray(s.boxes, dtype=np.float64).reshape(-1, 4) * np.array([sx, sy, sx, sy])
            hm = _load_map(os.path.join(cams_dir, f"{iid}.npy")) if cams_dir else None
            with_map += hm is not None
            box = None
            if all(c in r and not _is_nan(r[c]) for c in ("box_x0", "box_y0", "box_x1", "box_y1")):
                box = [r["box_x0"], r["box_y0"], r["box_x1"], r["box_y1"]]
            iou = None if _is_nan(r.get("iou")) else float(r["iou"])
            gt_name = _class_name(class_names, r.get("label"))
            pic = overlay_image(img, hm, gt, box, iou, gt_name[:32])
            cap = [f"<b>{_esc(iid)}</b>", f"true: {_esc(gt_name)}"]
            if "pred_top1" in r and not _is_nan(r["pred_top1"]):
                ok = _bool(r.get("top1_correct"))
                mark = "" if ok is None else (' <span class="ok">✓</span>' if ok else ' <span class="bad">✗</span>')
                cap.append(f"predicted: {_esc(_class_name(class_names, r['pred_top1']))}{mark}")
            if iou is not None:
                loc_ok = iou >= 0.5
                tau = format_value("loc_tau", r.get("loc_tau"))
                cap.append(f'IoU <span class="{"ok" if loc_ok else "bad"}">{iou:.3f}</span> at τ={_esc(tau)}')
            figs.append(f"<figure>{_img(encode_png(pic), 'gallery', iid)}<figcaption>{'<br>'.join(cap)}"
                        f"</figcaption></figure>")
            drawn += 1
        title = {"best": "Best (highest IoU)", "worst": "Worst (lowest IoU)",
                 "random": f"Random (seed {GALLERY_SEED})"}[group]
        blocks.append(f"<h3>{title}</h3><div class=\"gallery\">{''.join(figs)}</div>")
    return "".join(blocks), drawn, with_map


def _resolve_dataset(tables: RunTables, dataset, root: Optional[str]) -> Tuple[Any, str]:
    """The run's dataset (given, or rebuilt from summary.csv + root / run.json) and, when it
    cannot be had, the reason."""
    if dataset is not None:
        return dataset, ""
    s = tables.summary.iloc[0]
    info = tables.run_info
    name = info.get("dataset") or s.get("dataset")
    split = info.get("split") or s.get("split") or "test"
    root = root or info.get("root")
    if _is_nan(name) or not name:
        return None, "the run records no dataset name"
    if not root:
        return None, (f"the dataset root is not known: pass --root (or write \"root\" into "
                      f"{os.path.join(tables.run_dir, RUN_JSON)})")
    opts = info.get("dataset_options") or {}
    if not isinstance(opts, dict):
        opts = {}
    from wsol.datasets.base import build_dataset

    try:
        return build_dataset(str(name), str(root), str(split), **opts), ""
    except WsolError as e:
        return None, f"cannot read dataset {name} at {root}: {e}"
    except TypeError as e:
        return None, f"cannot read dataset {name} at {root} with options {opts}: {e}"


def _class_names_for(dataset, summary_row: pd.Series) -> List[str]:
    names = list(getattr(dataset, "class_names", None) or [])
    wnid_like = names and all(len(n) == 9 and n[0] == "n" and n[1:].isdigit() for n in names)
    if (not names or wnid_like) and str(summary_row.get("dataset", "")).startswith("imagenet"):
        inet = imagenet_class_names()
        if len(inet) == 1000 and (not names or len(names) == 1000):
            return inet
    return names


# ---------------------------------------------------------------------------------------------
# run report

def write_report(run_dir: str, dataset=None, cams_dir: Optional[str] = None, out_html: Optional[str] = None,
                 n_gallery: int = 8, root: Optional[str] = None) -> str:
    """Write a self-contained HTML report of a run; returns its path (default RUN_DIR/report.html).

    dataset: a WsolDataset of the run's split (rebuilt from summary.csv's dataset/split and
    ``root`` or run.json's root when None). cams_dir: heatmaps ``<image_id>.npy`` (default
    RUN_DIR/cams when present). n_gallery: images per gallery group (best, worst, random).
    """
    t = load_run(run_dir)
    s = t.summary.iloc[0]
    out_html = out_html or os.path.join(run_dir, REPORT_HTML)
    if cams_dir is None and os.path.isdir(os.path.join(run_dir, "cams")):
        cams_dir = os.path.join(run_dir, "cams")
    notes: List[str] = []
    if cams_dir is not None and not os.path.isdir(cams_dir):
        notes.append(f"heatmap folder {cams_dir} not found")
        cams_dir = None

    ds, why = (None, "")
    if n_gallery > 0 and t.per_image is not None and len(t.per_image):
        ds, why = _resolve_dataset(t, dataset, root)
    elif dataset is not None:
        ds = dataset
    class_names = _class_names_for(ds, s)

    def txt(k: str) -> str:
        v = s.get(k)
        return "—" if _is_nan(v) or v == "" else str(v)

    title = f"{txt('backbone')} + {txt('method')} on {txt('dataset')} / {txt('split')}"
    parts = [f"<h1>wsol report: {_esc(title)}</h1>",
             f"<p class=\"sub\">{_esc(os.path.abspath(run_dir))}</p>"]

    parts += _cards_html(s)
    parts += _summary_html(t, s)
    parts += _curves_html(t, s)
    parts += _per_class_html(t, class_names)
    parts += _timings_html(t, s)
    parts += _gallery_section(t, ds, why, cams_dir, class_names, n_gallery, notes)
    page = _page(f"wsol report: {title}", "\n".join(parts))
    _write_text(out_html, page)
    log.debug("wrote %s (%.1f MB)", out_html, len(page) / 1e6)
    return out_html


def _cards_html(s: pd.Series) -> List[str]:
    """The headline metric cards."""
    parts: List[str] = []
    cards = []
    for col, label, what in KEY_METRICS:
        if col in s.index and not _is_nan(s[col]):
            unit = "" if col in ("images_per_s", "mean_iou") else "%"
            cards.append(f'<div class="card"><div class="k">{_esc(label)}</div>'
                         f'<div class="v" data-metric="{col}">{_esc(format_value(col, s[col]))}{unit}</div>'
                         f'<div class="d">{_esc(what)}</div></div>')
    parts.append(f"<div class=\"cards\">{''.join(cards)}</div>")
    return parts


def _summary_html(t: RunTables, s: pd.Series) -> List[str]:
    """The run configuration beside every column of summary.csv."""
    parts: List[str] = []
    cfg_rows = [(k, format_value(k, s[k])) for k in CONFIG_KEYS if k in s.index and not _is_nan(s[k])]
    for k in ("root", "dataset_options"):
        if t.run_info.get(k):
            v = t.run_info[k]
            cfg_rows.append((k, json.dumps(v) if isinstance(v, dict) else str(v)))
    cfg_html = "<div><h2>Run configuration</h2>" + _table(pd.DataFrame(cfg_rows, columns=["setting", "value"])) + "</div>"

    # summary table: every column of summary.csv
    metric_cols = [c for c in t.summary.columns if c not in CONFIG_KEYS]
    srows = [(c, format_value(c, s[c])) for c in metric_cols]
    half = (len(srows) + 1) // 2
    stables = "".join(_table(pd.DataFrame(rows, columns=["metric", "value"]), num_cols=["value"])
                      for rows in (srows[:half], srows[half:]) if rows)
    parts.append(f"<div class=\"cols\">{cfg_html}<div><h2>Summary (summary.csv)</h2>"
                 "<p class=\"sub\">Accuracies in %; Loc metrics at "
                 f"loc_tau = {_esc(format_value('loc_tau', s.get('loc_tau')))} "
                 f"({_esc(s.get('loc_tau_rule', ''))})<br>and at the fixed τ.</p>"
                 f"<div class=\"cols\" style=\"gap:12px\">{stables}</div></div></div>")
    return parts


def _curves_html(t: RunTables, s: pd.Series) -> List[str]:
    """BoxAcc-vs-τ plot, and the pixel precision-recall plot with masks."""
    parts: List[str] = []
    has_pixel = t.curves is not None and "mode" in t.curves.columns and (t.curves["mode"] == "pixel").any()
    box_curves = t.curves[~t.curves["mode"].isin(("pixel",) + plots.FAITHFULNESS_MODES)] \
        if t.curves is not None and "mode" in t.curves.columns else t.curves
    if not (has_pixel and _is_nan(s.get("maxboxacc_v2"))):  # a mask-only dataset has no box curves
        parts.append("<h2>BoxAcc vs threshold τ</h2>")
        if box_curves is not None and len(box_curves):
            parts.append(_img(plots.plot_boxacc_curves(box_curves), "plot", "BoxAcc vs tau"))
        else:
            parts.append('<p class="note">No curves.csv in this run.</p>')
    if has_pixel:
        parts.append("<h2>Pixel precision-recall (masks)</h2>")
        pxap = s.get("pxap")
        parts.append(_img(plots.plot_pixel_pr(t.curves, None if _is_nan(pxap) else float(pxap)), "plot",
                          "pixel precision-recall"))
    if t.curves is not None and "mode" in t.curves.columns and t.curves["mode"].isin(plots.FAITHFULNESS_MODES).any():
        parts.append("<h2>Faithfulness (does the map explain the classifier?)</h2>")
        parts.append(_img(plots.plot_faithfulness(t.curves, s.to_dict()), "plot", "faithfulness curves"))
    return parts


def _per_class_html(t: RunTables, class_names: Sequence[str]) -> List[str]:
    """Per-class GT-known localization (plot and table)."""
    parts: List[str] = []
    parts.append("<h2>Per-class GT-known localization</h2>")
    if t.per_image is not None and "gt_known_correct" in t.per_image.columns and len(t.per_image):
        pc = plots.per_class_accuracy(t.per_image, class_names)
        parts.append(_img(plots.plot_per_class(pc), "plot", "per-class accuracy"))
        parts.append(f"<details><summary>table of all {len(pc)} classes</summary>"
                     + _table(pc, num_cols=["label", "n_images", "accuracy"]) + "</details>")
    else:
        parts.append('<p class="note">No per_image.csv in this run.</p>')
    return parts


def _timings_html(t: RunTables, s: pd.Series) -> List[str]:
    """The stage timings table."""
    parts: List[str] = []
    parts.append("<h2>Timings</h2>")
    if t.timings is not None and len(t.timings):
        cols = [c for c in ("stage", "seconds", "images", "images_per_s", "median_batch_ms", "batches",
                            "warmup_batches") if c in t.timings.columns]
        parts.append(_table(t.timings[cols], num_cols=cols[1:]))
        parts.append(f"<p class=\"sub\">device: {_esc(s.get('device', '?'))}</p>")
    else:
        parts.append('<p class="note">No timings.csv in this run.</p>')
    return parts


def _gallery_section(t: RunTables, ds, why: str, cams_dir: Optional[str], class_names: Sequence[str],
                     n_gallery: int, notes: List[str]) -> List[str]:
    """The gallery of best, worst and random images (with the notes about what is missing)."""
    parts: List[str] = []
    parts.append("<h2>Gallery</h2>")
    legend = ('<p class="legend"><span><i class="sw" style="background:#00ff00"></i>true box</span>'
              '<span><i class="sw" style="background:#ff0000"></i>predicted box (largest component at '
              'loc_tau) with its IoU</span><span>heatmap: jet colormap, alpha 0.5</span></p>')
    if n_gallery <= 0:
        parts.append('<p class="note">Gallery turned off.</p>')
    elif t.per_image is None or len(t.per_image) == 0:
        parts.append('<p class="note">No per_image.csv: no gallery.</p>')
    elif ds is None:
        parts.append(f'<p class="note">No gallery: images not available ({_esc(why)}).</p>')
        log.warning("report gallery skipped: %s", why)
    else:
        sel = select_gallery(t.per_image, n_gallery)
        body, drawn, with_map = _gallery_html(sel, ds, cams_dir, class_names)
        if cams_dir is None:
            notes.append("heatmaps absent (run `wsol evaluate` with --save-cams DIR, or pass --cams DIR): "
                         "the gallery shows boxes only")
        elif with_map < drawn:
            notes.append(f"{drawn - with_map} of {drawn} gallery images have no heatmap in {cams_dir}")
        if drawn < len(sel):
            notes.append(f"{len(sel) - drawn} selected images could not be read")
        parts.extend(f'<p class="note">{_esc(n)}</p>' for n in notes)
        parts.append(legend + body)
    return parts


# ---------------------------------------------------------------------------------------------
# suite report

def find_run_dir(suite_dir: str, row: pd.Series) -> Optional[str]:
    """A suite row's run folder: its run_dir/out/path column, else SUITE/<run_id> or
    SUITE/runs/<run_id>; None when none exists."""
    cands = []
    for col in ("run_dir", "out", "path"):
        v = row.get(col)
        if isinstance(v, str) and v:
            cands.append(v if os.path.isabs(v) else os.path.join(suite_dir, v))
    rid = row.get("run_id")
    if isinstance(rid, str) and rid or isinstance(rid, (int, np.integer)):
        cands += [os.path.join(suite_dir, str(rid)), os.path.join(suite_dir, "runs", str(rid))]
    return next((c for c in cands if os.path.isdir(c)), None)


def write_suite_report(suite_dir: str, out_html: Optional[str] = None) -> str:
    """Write SUITE_DIR/report.html comparing the runs of a suite's summary.csv: MaxBoxAccV2
    bars per backbone/method and dataset, a table of every run, links to each run's
    report.html where present. Returns the path."""
    df = _require_summary(suite_dir)
    out_html = out_html or os.path.join(suite_dir, REPORT_HTML)
    out_dir = os.path.dirname(os.path.abspath(out_html))
    parts = [f"<h1>wsol suite report</h1><p class=\"sub\">{_esc(os.path.abspath(suite_dir))}: "
             f"{len(df)} runs</p>"]
    if "status" in df.columns:
        n_ok = int((df["status"].fillna("").astype(str) == "ok").sum())
        if n_ok < len(df):
            parts.append(f'<p class="note">{len(df) - n_ok} of {len(df)} runs are not ok (see status).</p>')
    parts.append("<h2>MaxBoxAccV2 per backbone and method</h2>")
    if {"backbone", "method", "maxboxacc_v2"} <= set(df.columns) and \
            pd.to_numeric(df["maxboxacc_v2"], errors="coerce").notna().any():
        parts.append(_img(plots.plot_suite_bars(df), "plot", "MaxBoxAccV2 per backbone and method"))
    else:
        parts.append('<p class="note">No MaxBoxAccV2 values to plot.</p>')
    cols = [c for c in ("run_id", "dataset", "split", "backbone", "weights", "method", "maxboxacc_v2",
                        "maxboxacc", "gt_known_loc", "top1_loc", "top1_cls", "images_per_s", "n_images",
                        "status") if c in df.columns]
    table = df[cols].copy()
    links = []
    for _, r in df.iterrows():
        rd = find_run_dir(suite_dir, r)
        rep = os.path.join(rd, REPORT_HTML) if rd else None
        if rep and os.path.isfile(rep):
            rel = os.path.relpath(rep, out_dir).replace(os.sep, "/")
            links.append(_Raw(f'<a href="{_esc(rel)}">report</a>'))
        elif rd:
            links.append(_Raw(f'<span class="sub">no report (run <code>wsol report '
                              f'{_esc(os.path.relpath(rd, out_dir))}</code>)</span>'))
        else:
            links.append(_Raw('<span class="sub">—</span>'))
    table["report"] = links
    num = [c for c in cols if c not in ("run_id", "dataset", "split", "backbone", "weights", "method", "status")]
    parts.append("<h2>Runs</h2>" + _table(table, num_cols=num))
    page = _page("wsol suite report", "\n".join(parts))
    _write_text(out_html, page)
    log.debug("wrote %s", out_html)
    return out_html
