"""The published-numbers table grouped by protocol fingerprint (``wsol compare --published``):
numbers in one group were made the same way and may be compared; numbers in different
groups may not (docs/protocol.md, Protocol fingerprints). Markdown and one self-contained
HTML page."""
from __future__ import annotations

import html
from typing import List, Tuple

import pandas as pd

GROUP_FIELDS = ("metric", "threshold_policy", "box_rule", "map_resolution", "test_crop", "classifier")
ROW_COLUMNS = ("dataset", "paper_method", "paper_backbone", "value", "source")


def groups(df: pd.DataFrame) -> List[Tuple[dict, pd.DataFrame]]:
    """(fingerprint fields, rows) per distinct fingerprint, largest groups first, then by
    metric; rows by dataset then value (highest first)."""
    df = df.copy()
    for c in GROUP_FIELDS:
        df[c] = df[c].fillna("").astype(str).replace("", "unstated") if c in df else "unstated"
    out = []
    for key, g in df.groupby(list(GROUP_FIELDS), sort=False):
        g = g.sort_values(["dataset", "value"], ascending=[True, False], kind="stable")
        out.append((dict(zip(GROUP_FIELDS, key)), g))
    out.sort(key=lambda kg: (-len(kg[1]), kg[0]["metric"], str(kg[0])))
    return out


def _cell(r: pd.Series, c: str) -> str:
    v = r.get(c, "")
    if c == "paper_method" and not v:
        v = r.get("method", "")
    if c == "paper_backbone" and not v:
        v = r.get("backbone", "")
    return f"{float(v):g}" if c == "value" else str(v)


def to_markdown(df: pd.DataFrame) -> str:
    """One section per fingerprint: its six fields, then a table of its numbers."""
    lines = ["# Published WSOL numbers, grouped by protocol fingerprint", "",
             f"{len(df)} numbers in {len(groups(df))} groups. Numbers may be compared only within a group; "
             "'unstated' means the source does not say (it matches nothing).", ""]
    for k, (fp, g) in enumerate(groups(df), 1):
        lines.append(f"## {k}. {fp['metric']} ({len(g)} numbers)")
        lines.append("")
        lines.append("; ".join(f"{f} = `{fp[f]}`" for f in GROUP_FIELDS[1:]))
        lines.append("")
        lines.append("| " + " | ".join(ROW_COLUMNS) + " |")
        lines.append("|" + "|".join("---" for _ in ROW_COLUMNS) + "|")
        for _, r in g.iterrows():
            lines.append("| " + " | ".join(_cell(r, c).replace("|", "\\|") for c in ROW_COLUMNS) + " |")
        lines.append("")
    return "\n".join(lines)


def to_html(df: pd.DataFrame) -> str:
    """The same content as :func:`to_markdown`, one self-contained page."""
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Published WSOL numbers by fingerprint</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
             "td,th{border:1px solid #ccc;padding:2px 8px}td.v{text-align:right}code{background:#eee}</style>",
             "</head><body><h1>Published WSOL numbers, grouped by protocol fingerprint</h1>",
             f"<p>{len(df)} numbers in {len(groups(df))} groups. Numbers may be compared only within a group; "
             "<code>unstated</code> means the source does not say (it matches nothing).</p>"]
    for k, (fp, g) in enumerate(groups(df), 1):
        parts.append(f"<h2>{k}. {e(fp['metric'])} ({len(g)} numbers)</h2><p>")
        parts.append("; ".join(f"{e(f)} = <code>{e(fp[f])}</code>" for f in GROUP_FIELDS[1:]) + "</p>")
        parts.append("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in ROW_COLUMNS) + "</tr>")
        for _, r in g.iterrows():
            parts.append("<tr>" + "".join(f"<td{' class=v' if c == 'value' else ''}>{e(_cell(r, c))}</td>"
                                          for c in ROW_COLUMNS) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
