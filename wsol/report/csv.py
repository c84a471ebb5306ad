"""CSV outputs of a run, written atomically (temporary file + rename)."""
from __future__ import annotations

import os
import tempfile
from typing import Dict, Optional

import pandas as pd

from wsol.errors import WsolError

RUN_FILES = ("summary.csv", "per_image.csv", "curves.csv", "timings.csv")


def write_csv_atomic(df: pd.DataFrame, path: str, float_format: Optional[str] = None) -> None:
    """Write ``df`` to ``path`` via a temporary file in the same folder and ``os.replace``.

    Floats are written as Python's shortest repr (``float_format=None``), so reading the
    CSV back gives the exact same float (``80/3`` -> ``26.666666666666668``).
    """
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".csv", dir=folder)
        try:
            with os.fdopen(fd, "w", newline="") as f:
                df.to_csv(f, index=False, float_format=float_format, lineterminator="\n")
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except OSError as e:
        raise WsolError(f"{path}: cannot write ({e.strerror or e})") from None


def write_run(out_dir: str, tables: Dict[str, pd.DataFrame]) -> None:
    """Write a run's tables; summary.csv last, so its presence means the run completed."""
    for name in [n for n in tables if n != "summary.csv"] + (["summary.csv"] if "summary.csv" in tables else []):
        write_csv_atomic(tables[name], os.path.join(out_dir, name))
