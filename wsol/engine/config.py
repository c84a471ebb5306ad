"""The configuration of one evaluation run: one schema for the ``wsol evaluate`` options,
the suite YAML ``options`` keys and the ``wsol.evaluate`` keywords (the same names).

Each field says whether it can change a run's results (``result`` metadata): the suite's
cache key hashes only those (:func:`result_fields`), so changing how fast a run goes
(``batch_size``, ``workers``, ``data_workers``, ``sweep``), where it writes (``out``) or what
it prints (``progress``) does not rerun finished runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Dict, List, Optional

from wsol.localize.protocols import PROTOCOLS

if TYPE_CHECKING:
    from wsol.utils.rules import Rule


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


SWEEPS = ("fast", "reference", "per-threshold")


#: pixels on the 224 grid beyond which every point hits (its diagonal is 316.8)
MAX_POINTING_TOLERANCE = 320.0
#: the finest threshold step: 10,000 thresholds (1e-7 would allocate ten million of them per image)
MIN_CAM_STEP = 1e-4


def eval_rules() -> Dict[str, "Rule"]:
    """The rule of every EvalConfig field (wsol.utils.rules): what check_config enforces for the
    API, the suite YAML and the CLI alike."""
    from wsol.utils.rules import MAX_SEED, Rule

    text = Rule("str")
    flag = Rule("bool")
    return {
        "dataset": text, "root": text, "split": text, "backbone": text, "weights": text, "method": text,
        "batch_size": Rule("int", 1, 65536), "device": text,
        "cam_step": Rule("float", MIN_CAM_STEP, 1, max_open=True, note="at most 10,000 thresholds"),
        "fixed_tau": Rule("float", 0, 1, max_open=True),
        "limit": Rule("int", 1, optional=True),
        "data_workers": Rule("int", 0, 512), "workers": Rule("int", 0, 512),
        "sweep": Rule("str", choices=SWEEPS), "save_cams": Rule("str", optional=True),
        "out": Rule("str", optional=True), "protocol": Rule("str", choices=tuple(PROTOCOLS.names(sort=False))),
        "dataset_options": Rule("dict"), "method_options": Rule("dict"), "model_options": Rule("dict"),
        "progress": flag, "seed": Rule("int", 0, MAX_SEED),
        "on_error": Rule("str", choices=("fail", "skip")),
        "pointing_tolerance": Rule("float", 0, MAX_POINTING_TOLERANCE,
                                   note="pixels on the 224 grid; beyond its diagonal everything hits"),
        "exclude_skipped": flag, "dtype": Rule("str", choices=("fp32", "bf16", "fp16")),
        "channels_last": flag, "compile": flag, "decode": Rule("str", choices=("cpu", "gpu")),
        "distributed": Rule("str", choices=("auto", "off")), "new_head": flag,
    }


def check_config(cfg: EvalConfig) -> None:
    """Every field's rule (:func:`eval_rules`: types -- no truthy strings --, finite numbers,
    ranges with upper bounds from what a run allocates, choices), for runs started from the
    CLI, Python (``wsol.evaluate(...)``) or a suite: a one-line WsolError naming the option."""
    rules = eval_rules()
    for f in fields(cfg):
        if f.name in rules:
            rules[f.name].check(f.name, getattr(cfg, f.name))


def result_fields() -> List[str]:
    """The EvalConfig fields that can change a run's outputs (the suite hashes these)."""
    return [f.name for f in fields(EvalConfig) if f.metadata.get("result", True)]
