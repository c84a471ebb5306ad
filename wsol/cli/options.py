"""Option helpers shared by the command modules (public inside ``wsol.cli``): KEY=VALUE
parsing, the data / protocol / speed option groups, args -> EvalConfig, the summary line."""
from __future__ import annotations

import argparse
from typing import List, Optional

from wsol.errors import WsolError
from wsol.utils.options import add_arguments, values_from_args


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


def _eval_config():
    from wsol.engine.config import EvalConfig

    return EvalConfig


def add_data_args(p: argparse.ArgumentParser, need_images: bool = True, defaults: Optional[dict] = None,
                  required: tuple = ("root",)) -> None:
    """``--dataset --root --split --limit --dataset-option`` (and ``--images``)."""
    g = p.add_argument_group("data")
    add_arguments(g, _eval_config(), ["dataset", "root", "split", "limit"], required=required,
                  defaults={"split": None, **(defaults or {})})
    g.add_argument("--dataset-option", action="append", metavar="KEY=VALUE",
                   help="adapter-specific option, repeatable (e.g. images=DIR for wsoleval, csv=FILE for folder)")
    if need_images:
        g.add_argument("--images", default=None, help="image root for metadata-only adapters (wsoleval)")


def add_protocol_args(p: argparse.ArgumentParser) -> None:
    """The protocol and output options of ``evaluate`` and ``score`` (declared in EvalConfig)."""
    g = p.add_argument_group("protocol")
    add_arguments(g, _eval_config(), ["cam_step", "fixed_tau", "pointing_tolerance", "protocol", "sweep", "out",
                                      "batch_size", "on_error", "exclude_skipped"], required=("out",))
    g = p.add_argument_group("threshold policy and given classes (docs/protocol.md)")
    add_arguments(g, _eval_config(), ["tau_policy", "tau_source", "tau_holdout", "predictions"])


def add_fast_path_args(p: argparse.ArgumentParser) -> None:
    """``--dtype``, ``--channels-last``, ``--compile``, ``--decode`` (see wsol.evaluation.fastpath)."""
    g = p.add_argument_group("speed (defaults = the protocol's reference path)")
    add_arguments(g, _eval_config(), ["dtype", "channels_last", "compile", "decode"])


def dataset_options(args) -> dict:
    """``--dataset-option`` pairs (and ``--images``) as adapter keywords."""
    opts = parse_options(getattr(args, "dataset_option", None), "--dataset-option")
    if getattr(args, "images", None):
        opts["images"] = args.images
    return opts


def config_from_args(args, **over):
    """The EvalConfig of parsed ``evaluate``/``score`` arguments (``over`` wins)."""
    from wsol.datasets.base import default_split

    EvalConfig = _eval_config()
    method_options = parse_options(getattr(args, "method_option", None), "--method-option")
    if getattr(args, "method_batch", None):
        method_options["method_batch"] = args.method_batch
    kw = values_from_args(args, EvalConfig)
    kw.update(split=args.split or default_split(args.dataset), dataset_options=dataset_options(args),
              method_options=method_options, progress=not args.quiet,
              model_options=parse_model_options(getattr(args, "model_option", None)))
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
