"""Option helpers shared by the command modules (public inside ``wsol.cli``): KEY=VALUE
parsing, the data / protocol / speed option groups, args -> EvalConfig, the summary line."""
from __future__ import annotations

import argparse
from typing import List, Optional

from wsol.errors import WsolError
from wsol.utils import cli_types as T


def parse_options(pairs: Optional[List[str]], flag: str) -> dict:
    """``KEY=VALUE`` pairs -> dict (ints/floats parsed)."""
    out: dict = {}
    for p in pairs or []:
        if "=" not in p:
            raise WsolError(f"{flag} takes KEY=VALUE, got {p!r}")
        k, v = p.split("=", 1)
        for kind in (int, float):
            try:
                v = kind(v)  # type: ignore[assignment]
                break
            except ValueError:
                pass
        out[k.replace("-", "_")] = v
    return out


def parse_model_options(pairs: Optional[List[str]]) -> dict:
    """``--model-option KEY=VALUE`` pairs, values kept as text (the backbone's entry types them)."""
    out: dict = {}
    for p in pairs or []:
        if "=" not in p:
            raise WsolError(f"--model-option takes KEY=VALUE, got {p!r}")
        k, v = p.split("=", 1)
        out[k.strip().replace("-", "_")] = v.strip()
    return out


def add_data_args(p: argparse.ArgumentParser, need_images: bool = True) -> None:
    """``--dataset --root --split --limit --dataset-option`` (and ``--images``)."""
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="cub", help="dataset adapter (see `wsol datasets`; default: cub)")
    g.add_argument("--root", required=True, help="dataset folder (for cub: the CUB_200_2011 folder holding images/)")
    g.add_argument("--split", default=None, help="split to evaluate (default: test, or the adapter's only split, "
                                                 "e.g. val for imagenet)")
    g.add_argument("--limit", type=T.positive_int, default=None, help="only the first N images of the split")
    g.add_argument("--dataset-option", action="append", metavar="KEY=VALUE",
                   help="adapter-specific option, repeatable (e.g. images=DIR for wsoleval, csv=FILE for folder)")
    if need_images:
        g.add_argument("--images", default=None, help="image root for metadata-only adapters (wsoleval)")


def add_protocol_args(p: argparse.ArgumentParser) -> None:
    """The protocol and output options of ``evaluate`` and ``score``."""
    g = p.add_argument_group("protocol")
    g.add_argument("--cam-step", type=T.open_fraction, default=0.01,
                   help="threshold step: taus = numpy.arange(0, 1, step) (default 0.01 = 100 thresholds; 0.001 for 1000)")
    g.add_argument("--fixed-tau", type=T.threshold, default=0.2,
                   help="the fixed threshold at which Loc metrics are also reported (default 0.2)")
    g.add_argument("--pointing-tolerance", type=T.nonnegative_float, default=0.0, metavar="PX",
                   help="pointing game: a hit when the map's maximum is within PX pixels (224 grid) of the object "
                        "(default 0: on it; TorchRay uses 15)")
    from wsol.localize.protocols import PROTOCOLS

    names = PROTOCOLS.names(sort=False)
    g.add_argument("--protocol", default="wsoleval", choices=names,
                   help="; ".join(f"{n}: {PROTOCOLS.get(n).description}" for n in names).replace("%", "%%")
                   + ". The cam2016 protocols: evaluate only; a family's protocol (bas) reports its own Loc at its "
                     "threshold and MaxBoxAccV2 of the same maps in the same row")
    g.add_argument("--sweep", default="fast", choices=["fast", "reference", "per-threshold"],
                   help="box extraction: 'fast' (exact, default); 'reference' (OpenCV contours once per distinct "
                        "integer cut); 'per-threshold' (OpenCV contours at every tau, the published loop as is). "
                        "All three give the same boxes")
    g.add_argument("--out", required=True, help="output folder for summary.csv, per_image.csv, curves.csv, timings.csv")
    g.add_argument("--batch-size", type=T.positive_int, default=32, help="images per batch (default 32)")
    g.add_argument("--on-error", choices=["fail", "skip"], default="fail",
                   help="on a missing/corrupt image or heatmap: 'fail' (one line naming the file, exit 2; default) "
                        "or 'skip' (recorded in per_image.csv with status and reason, counted in n_skipped)")
    g.add_argument("--exclude-skipped", action="store_true",
                   help="leave skipped images out of the metric denominators (default: they count as misses)")


def add_fast_path_args(p: argparse.ArgumentParser) -> None:
    """``--dtype``, ``--channels-last``, ``--compile``, ``--decode`` (see wsol.evaluation.fastpath)."""
    g = p.add_argument_group("speed (defaults = the protocol's reference path)")
    g.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"],
                   help="autocast dtype of the forward pass and CAM (default fp32; bf16/fp16 are faster "
                        "on GPUs and can change boxes slightly)")
    g.add_argument("--channels-last", action="store_true", help="channels_last memory format for model and inputs")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile the backbone (slow first batch; needs a C++ compiler on CPU, Triton on CUDA)")
    g.add_argument("--decode", default="cpu", choices=["cpu", "gpu"],
                   help="JPEG decode + resize: 'cpu' = PIL (the protocol, default), 'gpu' = nvjpeg + antialiased "
                        "resize on the device (--device cuda only; faster, pixels differ slightly from PIL's)")


def dataset_options(args) -> dict:
    """``--dataset-option`` pairs (and ``--images``) as adapter keywords."""
    opts = parse_options(getattr(args, "dataset_option", None), "--dataset-option")
    if getattr(args, "images", None):
        opts["images"] = args.images
    return opts


def config_from_args(args, **over):
    """The EvalConfig of parsed ``evaluate``/``score`` arguments (``over`` wins)."""
    from wsol.engine.run import EvalConfig

    method_options = parse_options(getattr(args, "method_option", None), "--method-option")
    if getattr(args, "method_batch", None):
        method_options["method_batch"] = args.method_batch
    from wsol.datasets.base import default_split

    split = args.split or default_split(args.dataset)
    kw = dict(dataset=args.dataset, root=args.root, split=split, limit=args.limit, protocol=args.protocol,
              cam_step=args.cam_step, fixed_tau=args.fixed_tau, sweep=args.sweep, out=args.out,
              batch_size=args.batch_size, dataset_options=dataset_options(args),
              method_options=method_options, progress=not args.quiet,
              model_options=parse_model_options(getattr(args, "model_option", None)), on_error=args.on_error,
              exclude_skipped=args.exclude_skipped,
              pointing_tolerance=getattr(args, "pointing_tolerance", 0.0))
    for k in ("backbone", "weights", "method", "device", "data_workers", "workers", "save_cams", "new_head"):
        if hasattr(args, k):
            kw[k] = getattr(args, k)
    for k in ("dtype", "channels_last", "compile", "decode"):  # speed options (wsol.evaluation.fastpath)
        if hasattr(args, k):
            kw[k] = getattr(args, k)
    kw.update(over)
    return EvalConfig(**kw)


def print_summary(res, out: str) -> None:
    """The one-line summary of a finished run and where its files are."""
    s = res.summary.iloc[0]
    cols = ["n_images", "top1_cls", "gt_known_loc", "top1_loc", "maxboxacc", "maxboxacc_v2", "loc_tau", "pxap",
            "piou", "pointing_game"]
    # box columns are NaN on a dataset without boxes, pixel columns without masks: not shown
    cols = [c for c in cols if c in s and not (c not in ("top1_cls", "top1_loc") and isinstance(s[c], float)
                                               and s[c] != s[c])]

    def show(c):
        v = s[c]
        if isinstance(v, float) and v != v and c in ("top1_cls", "top1_loc"):
            return f"{c}=n/a"  # heatmaps scored without a classifier: no predictions
        return f"{c}={v:.4g}" if isinstance(v, float) else f"{c}={v}"

    line = "  ".join(show(c) for c in cols if c in s)
    if any(show(c).endswith("=n/a") for c in cols if c in s):
        line += "  (n/a: no class predictions with heatmaps alone)"
    print(line)
    print(f"wrote {', '.join(n for n in res.tables())} to {out}")
