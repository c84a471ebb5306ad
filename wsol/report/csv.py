"""CSV outputs of a run, written atomically (temporary file + rename)."""
from __future__ import annotations

import os
from typing import Dict, Optional

import pandas as pd

from wsol.utils.io import atomic_write

RUN_FILES = ("summary.csv", "per_image.csv", "curves.csv", "timings.csv")


def write_csv_atomic(df: pd.DataFrame, path: str, float_format: Optional[str] = None) -> None:
    """Write ``df`` to ``path`` atomically (:func:`wsol.utils.io.atomic_write`).

    Floats are written as Python's shortest repr (``float_format=None``), so reading the
    CSV back gives the exact same float (``80/3`` -> ``26.666666666666668``).
    """
    with atomic_write(path, "w", newline="") as f:
        df.to_csv(f, index=False, float_format=float_format, lineterminator="\n")


def write_run(out_dir: str, tables: Dict[str, pd.DataFrame]) -> None:
    """Write a run's tables; summary.csv last, so its presence means the run completed."""
    for name in [n for n in tables if n != "summary.csv"] + (["summary.csv"] if "summary.csv" in tables else []):
        write_csv_atomic(tables[name], os.path.join(out_dir, name))
