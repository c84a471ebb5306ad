"""Declared metric state, after torchmetrics: every piece of state a scorer keeps is named
with how two shards of it combine, so merging never needs to know a class's internals.

Reductions:

- ``sum``: tensors or numbers that add (hit counts, IoU sums, image counts);
- ``cat``: per-image lists that concatenate (rows, per-image IoUs and boxes), in the order
  the shards are given;
- ``any``: flags that are set when any shard set them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Sequence

import torch

REDUCTIONS = ("sum", "cat", "any")


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
        out = values[0].clone() if isinstance(values[0], torch.Tensor) else values[0]
        for v in values[1:]:
            out = out + v
        return out
    if spec.reduce == "cat":
        merged: List[Any] = []
        for v in values:
            merged.extend(v)
        return merged
    return any(bool(v) for v in values)


def merge_states(specs: Sequence[StateSpec], states: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Merge whole state dicts (one per shard, in shard order) spec by spec."""
    return {s.name: reduce_values(s, [st[s.name] for st in states]) for s in specs}
