"""The tables of one run, in memory (from ``wsol.evaluate``) or read back from its folder."""
from __future__ import annotations

from typing import Any, Dict, Iterator, Mapping, Optional

import pandas as pd

TABLE_NAMES = ("summary", "per_image", "curves", "timings")


class RunTables(Mapping):
    """``.summary``, ``.per_image``, ``.curves``, ``.timings`` (missing optional tables are
    None), plus ``.config`` (the run's config object, when in memory), ``.run_dir`` and
    ``.run_info`` (run.json, when read from a folder). Also a mapping: ``tables["per_image"]``.

    It lives in ``summary.attrs["tables"]``. Unlike a DataFrame it compares by identity and
    is not copied by pandas' attrs propagation, so ``pd.concat`` of several summaries and
    every derived frame stay cheap and work (DataFrames in attrs make concat raise).
    """

    def __init__(self, summary: pd.DataFrame, per_image: Optional[pd.DataFrame] = None,
                 curves: Optional[pd.DataFrame] = None, timings: Optional[pd.DataFrame] = None,
                 config: Any = None, run_dir: str = "", run_info: Optional[Dict[str, Any]] = None):
        self.summary = summary
        self.per_image = per_image
        self.curves = curves
        self.timings = timings
        self.config = config
        self.run_dir = run_dir
        self.run_info: Dict[str, Any] = dict(run_info or {})

    @classmethod
    def from_result(cls, result, config: Any = None) -> "RunTables":
        """From an object with the four tables as attributes (an evaluation result)."""
        return cls(result.summary, result.per_image, result.curves, result.timings, config=config)

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in TABLE_NAMES:
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(TABLE_NAMES)

    def __len__(self) -> int:
        return len(TABLE_NAMES)

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__

    def __deepcopy__(self, memo: dict) -> "RunTables":
        return self

    def __repr__(self) -> str:
        n = 0 if self.per_image is None else len(self.per_image)
        c = self.config
        if c is not None:
            return f"RunTables({c.backbone}/{c.method} on {c.dataset}:{c.split}, {n} images)"
        return f"RunTables({self.run_dir or 'in memory'}, {n} images)"
