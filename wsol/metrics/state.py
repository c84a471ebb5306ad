"""Declared metric state, after torchmetrics: every piece of state a metric or evaluator keeps
is named with how two shards of it combine, so merging never needs to know a class's internals.

Reductions:

- ``sum``: tensors or numbers that add (hit counts, IoU sums, image counts); dicts of them
  add key by key (a missing key counts as 0); None (a state not kept) stays None;
- ``cat``: per-image lists that concatenate (rows, per-image IoUs and boxes), in the order
  the shards are given;
- ``any``: flags that are set when any shard set them;
- ``union``: sets that unite.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Sequence

import torch

REDUCTIONS = ("sum", "cat", "any", "union")


@dataclass(frozen=True)
class StateSpec:
    """One declared state: its name, its reduction, and what it holds (array axes named)."""

    name: str
    reduce: str
    doc: str = ""

    def __post_init__(self) -> None:
        if self.reduce not in REDUCTIONS:
            raise ValueError(f"state {self.name}: reduction must be one of {REDUCTIONS}, not {self.reduce!r}")


def reduce_values(spec: StateSpec, values: Sequence[Any]) -> Any:
    """Combine one state's values from several shards according to its reduction."""
    if spec.reduce == "sum":
        return _add(values)
    if spec.reduce == "union":
        return set().union(*values)
    if spec.reduce == "cat":
        merged: List[Any] = []
        for v in values:
            merged.extend(v)
        return merged
    return any(bool(v) for v in values)


def _add(values: Sequence[Any]) -> Any:
    if all(v is None for v in values):
        return None
    values = [v for v in values if v is not None]
    if isinstance(values[0], dict):
        keys = list(dict.fromkeys(k for v in values for k in v))
        return {k: _add([v[k] for v in values if k in v]) for k in keys}
    out = values[0].clone() if isinstance(values[0], torch.Tensor) else values[0]
    for v in values[1:]:
        out = out + v
    return out


def merge_states(specs: Sequence[StateSpec], states: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Merge whole state dicts (one per shard, in shard order) spec by spec."""
    return {s.name: reduce_values(s, [st[s.name] for st in states]) for s in specs}
