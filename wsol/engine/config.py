"""The configuration of one evaluation run: one schema for the ``wsol evaluate`` options,
the suite YAML ``options`` keys and the ``wsol.evaluate`` keywords (the same names).

Each field says whether it can change a run's results (``result`` metadata): the suite's
cache key hashes only those (:func:`result_fields`), so changing how fast a run goes
(``batch_size``, ``workers``, ``data_workers``, ``sweep``), where it writes (``out``) or what
it prints (``progress``) does not rerun finished runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Dict, List, Optional

import numpy as np

from wsol.errors import WsolError
from wsol.localize.protocols import PROTOCOLS


def _speed(default, **kw):
    """A field that changes how a run goes, never its numbers."""
    return field(default=default, metadata={"result": False}, **kw)


@dataclass
class EvalConfig:
    """Everything one evaluation run depends on (its fields are the CLI options, the suite's
    ``options`` keys and the API's keywords)."""

    dataset: str = "cub"
    root: str = ""
    split: str = "test"
    backbone: str = "efficientnet_lite0"
    weights: str = "pretrained"
    method: str = "cam"
    batch_size: int = _speed(32)
    device: str = "cpu"
    cam_step: float = 0.01
    fixed_tau: float = 0.2
    limit: Optional[int] = None
    data_workers: int = _speed(0)
    workers: int = _speed(0)
    sweep: str = _speed("fast")
    save_cams: Optional[str] = None
    out: Optional[str] = _speed(None)
    protocol: str = "wsoleval"
    dataset_options: Dict[str, object] = field(default_factory=dict)
    method_options: Dict[str, object] = field(default_factory=dict)
    model_options: Dict[str, object] = field(default_factory=dict)  # backbone options (large_feature_map, adl, ...)
    progress: bool = _speed(True)
    seed: int = 0
    on_error: str = "fail"          # fail | skip
    pointing_tolerance: float = 0.0  # pointing game: hit within this many pixels of the object (TorchRay: 15)
    exclude_skipped: bool = False   # skipped images count as misses unless set
    # speed options (wsol.evaluation.fastpath); the defaults are the protocol's reference path
    dtype: str = "fp32"             # fp32 | bf16 | fp16: autocast for forward + CAM (bf16/fp16 not exact)
    channels_last: bool = False     # channels_last model and inputs
    compile: bool = False           # torch.compile the backbone forward
    decode: str = "cpu"             # cpu: PIL (protocol) | gpu: nvjpeg + antialiased resize (not bit-identical)
    distributed: str = _speed("auto")       # auto: data-parallel under torchrun (wsol.engine.distributed) | off
    new_head: bool = False          # replace a pretrained/checkpoint head that does not fit the dataset
    # faithfulness (docs/protocol.md, "Faithfulness"): comma list of avg_drop, deletion, insertion, road (or all)
    faithfulness: str = ""
    faithfulness_steps: int = 20        # deletion/insertion: curve steps (RISE's fixed step of ceil(n/steps))
    faithfulness_patch: int = 1         # deletion/insertion: square patch size in pixels (1 = pixels)
    deletion_baseline: str = "zeros"    # zeros | blur | mean
    insertion_baseline: str = "blur"    # zeros | blur | mean
    road_noise: float = 0.01            # ROAD: std of the noise added to the imputed pixels


SWEEPS = ("fast", "reference", "per-threshold")


def check_config(cfg: EvalConfig) -> None:
    """The option ranges the CLI checks at parse time, for runs started from Python
    (``wsol.evaluate(...)``, suites): a one-line WsolError naming the option."""
    import math

    def bad(name: str, value, rule: str) -> None:
        raise WsolError(f"{name} must be {rule}, got {value!r}")

    for name, value, lo in (("batch_size", cfg.batch_size, 1), ("data_workers", cfg.data_workers, 0),
                            ("workers", cfg.workers, 0), ("limit", cfg.limit, 1)):
        if value is None and name == "limit":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
            bad(name, value, f"an integer >= {lo}")
    for name, value, ok, rule in (("cam_step", cfg.cam_step, lambda v: 0 < v < 1, "a number in (0, 1)"),
                                  ("fixed_tau", cfg.fixed_tau, lambda v: 0 <= v < 1, "a number in [0, 1)")):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not ok(value):
            bad(name, value, rule)
    for name, value, allowed in (("on_error", cfg.on_error, ("fail", "skip")), ("sweep", cfg.sweep, SWEEPS),
                                 ("protocol", cfg.protocol, tuple(PROTOCOLS.names(sort=False)))):
        if value not in allowed:
            bad(name, value, "one of " + ", ".join(allowed))
    faithfulness_options(cfg)


def faithfulness_options(cfg: EvalConfig):
    """The run's :class:`FaithfulnessOptions`, or None without ``faithfulness`` (checks them)."""
    from wsol.evaluation.faithfulness import FaithfulnessOptions, parse_metrics

    metrics = parse_metrics(cfg.faithfulness)
    if not metrics:
        return None
    return FaithfulnessOptions(metrics, steps=cfg.faithfulness_steps, patch=cfg.faithfulness_patch,
                               deletion_baseline=cfg.deletion_baseline, insertion_baseline=cfg.insertion_baseline,
                               road_noise=cfg.road_noise, seed=cfg.seed)


def result_fields() -> List[str]:
    """The EvalConfig fields that can change a run's outputs (the suite hashes these)."""
    return [f.name for f in fields(EvalConfig) if f.metadata.get("result", True)]
