"""Data-parallel evaluation's evaluation half: which images a rank scores, and the merge of
the ranks' evaluator states by their declared reductions (``wsol.metrics.state``). The
process group itself (launch, devices, errors) is :mod:`wsol.engine.distributed`'s."""
from __future__ import annotations

from typing import List, Tuple

import torch
import torch.distributed as dist

from wsol.metrics.state import merge_states


def shard_bounds(n: int, world_size: int, rank: int) -> Tuple[int, int]:
    """[start, stop) of rank's contiguous shard: sizes differ by at most one, union is 0..n."""
    return rank * n // world_size, (rank + 1) * n // world_size


def gather_state(evaluator, device: str) -> None:
    """Merge every rank's ``evaluator`` state into it, from its declarations alone: sums held
    as tensors on every rank are all-reduced (on ``device`` for CUDA), every other state (and a
    sum some rank has not started, None) is all-gathered in rank order and reduced by
    :func:`merge_states`; loading puts per-image states in dataset order."""
    specs, local = evaluator.state_specs(), evaluator.state_dict()
    tensors = [s.reduce == "sum" and isinstance(local[s.name], torch.Tensor) for s in specs]
    every: List[object] = [None] * dist.get_world_size()
    dist.all_gather_object(every, tensors)  # the ranks agree on which collective each state takes
    merged = {}
    for k, spec in enumerate(specs):
        v = local[spec.name]
        if all(flags[k] for flags in every):
            t = v.to(device) if device.startswith("cuda") else v.clone()
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
            merged[spec.name] = t.cpu()
        else:
            parts: List[object] = [None] * dist.get_world_size()
            dist.all_gather_object(parts, v)
            merged[spec.name] = merge_states([spec], [{spec.name: p} for p in parts])[spec.name]
    evaluator.load_state_dict(merged)
