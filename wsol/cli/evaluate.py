"""``wsol evaluate`` and ``wsol score``."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from wsol.cli.options import (add_data_args, add_fast_path_args, add_protocol_args, config_from_args,
                              print_summary)
from wsol.engine.config import EvalConfig
from wsol.utils.options import add_arguments, option


@dataclass
class EvaluateCommand:
    """``wsol evaluate``'s own options (the run's are :class:`~wsol.engine.config.EvalConfig`)."""

    method_batch: Optional[int] = option(None, min=1, help="masked forward passes per batch (scorecam)")
    report: bool = option(False, help="also write OUT/report.html (summary, BoxAcc curves, gallery; heatmaps "
                                      "from --save-cams)")


@dataclass
class ScoreCommand:
    """``wsol score``'s own options: what is scored (one of the two)."""

    cams: Optional[str] = option(None, metavar="DIR", help="folder holding <image_id>.npy heatmaps (224x224, no class)")
    boxes: Optional[str] = option(None, metavar="CSV", help="boxes CSV: image_id,x0,y0,x1,y1[,score] in original "
                                                            "pixels (several rows per image: see --box-rule)")


def add_parsers(sub) -> None:
    p = sub.add_parser("evaluate", help="run a backbone + CAM method over a split and write the metric CSVs",
                       description="Run a classifier and a CAM method over a dataset split, localize with the "
                                   "threshold sweep, and write summary.csv, per_image.csv, curves.csv and "
                                   "timings.csv into --out.")
    add_data_args(p)
    g = p.add_argument_group("model")
    add_arguments(g, EvalConfig, ["backbone", "weights"])
    g.add_argument("--model-option", action="append", metavar="KEY=VALUE",
                   help="model option, repeatable (see `wsol models`), e.g. large_feature_map=true for a "
                        "wsolevaluation checkpoint trained with --large_feature_map")
    add_arguments(g, EvalConfig, ["new_head", "method"])
    g.add_argument("--method-option", action="append", metavar="KEY=VALUE", help="method option, repeatable")
    add_arguments(g, EvaluateCommand, ["method_batch"])
    add_arguments(g, EvalConfig, ["device", "data_workers", "workers", "save_cams", "save_boxes", "save_predictions",
                                  "seed"])
    add_arguments(g, EvaluateCommand, ["report"])
    add_fast_path_args(p)
    add_protocol_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("score", help="score heatmaps or boxes computed elsewhere (no model needed)",
                       description="Score a folder of heatmaps (<image_id>.npy, 224x224 float in [0,1], no class) "
                                   "or a CSV of boxes (image_id,x0,y0,x1,y1[,score], original pixels) against a "
                                   "dataset's boxes with the same protocol and CSVs as `wsol evaluate`; class "
                                   "predictions of any classifier with --predictions.")
    add_arguments(p.add_mutually_exclusive_group(required=True), ScoreCommand, ["cams", "boxes"])
    add_arguments(p, EvalConfig, ["box_rule"])
    add_data_args(p)
    add_protocol_args(p)
    p.set_defaults(func=cmd_score)



def cmd_evaluate(args) -> int:
    from wsol.engine.run import evaluate

    res = evaluate(config_from_args(args))
    if os.environ.get("RANK", "0") == "0":  # under torchrun every rank holds the result; rank 0 reports
        print_summary(res, args.out)
        if args.report:
            from wsol.report.html import write_report

            print(f"wrote {write_report(args.out, cams_dir=args.save_cams)}")
    return 0


def cmd_score(args) -> int:
    from wsol.engine.run import score, score_boxes

    cfg = config_from_args(args, backbone="", weights="", method="heatmaps" if args.cams else "boxes")
    res = score(args.cams, cfg) if args.cams else score_boxes(args.boxes, cfg)
    print_summary(res, args.out)
    return 0
