"""``wsol report`` (HTML report of a run or suite folder) and ``wsol overlay`` (one image:
top-5 classes, CAM, box, PNG)."""
from __future__ import annotations

import logging
import os

import numpy as np

from wsol.datasets.class_names import read_class_names
from wsol.apps.explain import explain_image
from wsol.utils import cli_types as T
from wsol.utils.outdirs import claim_output_file
from wsol.errors import WsolError

log = logging.getLogger(__name__)


def add_parsers(subparsers) -> None:
    """Add the ``report`` and ``overlay`` subcommands."""
    p = subparsers.add_parser(
        "report", help="write one self-contained report.html for a run folder or a suite folder",
        description="Write a single-file HTML report (images embedded) for the output folder of "
                    "`wsol evaluate` (summary, BoxAcc-vs-threshold plot, per-class accuracy, timings, "
                    "gallery of best/worst/random images with heatmap and boxes), or for a suite folder "
                    "(MaxBoxAccV2 per backbone/method, table of runs, links to each run's report).",
        epilog="example: wsol evaluate ... --out runs/r18 --save-cams runs/r18/cams && wsol report runs/r18")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a `wsol evaluate --out` folder, or a suite folder")
    p.add_argument("--root", default=None,
                   help="dataset root for the gallery images (default: the root recorded in RUN_DIR/run.json)")
    p.add_argument("--cams", default=None, metavar="DIR",
                   help="heatmaps <image_id>.npy (default RUN_DIR/cams when present)")
    p.add_argument("--out", default=None, metavar="FILE", help="HTML file to write (default RUN_DIR/report.html)")
    p.add_argument("--gallery", type=T.nonnegative_int, default=8, metavar="N",
                   help="images per gallery group: N best, N worst, N random (default 8; 0 = no gallery)")
    p.set_defaults(func=cmd_report)

    p = subparsers.add_parser(
        "overlay", help="one image: top-5 classes, the CAM, its box, written as a PNG",
        description="Classify one image, compute the CAM of a class (default: the top-1 class), box its "
                    "largest connected component at threshold --tau, and write a PNG of the image with "
                    "the heatmap (jet, alpha 0.5) and the box (red; true boxes from --gt-box in green).",
        epilog="example: wsol overlay --image dog.jpg --backbone resnet50 --out dog_cam.png")
    p.add_argument("--image", required=True, help="image file")
    p.add_argument("--backbone", default="efficientnet_lite0", help="backbone name (default efficientnet_lite0)")
    p.add_argument("--weights", default="pretrained", help="'pretrained', 'random', or a checkpoint file")
    p.add_argument("--class", dest="cls", default=None, metavar="C",
                   help="class whose CAM to draw: index, ImageNet WNID (e.g. n01440764, for 1000-class heads) or class name "
                        "(default: the top-1 prediction)")
    p.add_argument("--class-names", default=None, metavar="FILE",
                   help="one class name per line (default: ImageNet names when the head has 1000 classes)")
    p.add_argument("--method", default="cam", help="CAM method (default cam)")
    p.add_argument("--tau", type=T.threshold, default=0.2, help="threshold on the normalized map (default 0.2)")
    p.add_argument("--gt-box", type=T.finite_float, nargs=4, action="append", metavar=("X0", "Y0", "X1", "Y1"),
                   help="a true box in image pixels, repeatable: drawn in green, and the IoU is printed")
    p.add_argument("--out", default=None, metavar="PNG", help="output PNG (default ./<image name>_<method>.png)")
    p.add_argument("--device", type=T.device, default="cpu", help=f"{T.DEVICE_HELP} (default cpu)")
    p.set_defaults(func=cmd_overlay)


# ---------------------------------------------------------------------------------------------
# report

def cmd_report(args) -> int:
    from wsol.report.html import is_suite_dir, write_report, write_suite_report

    folder = args.run_dir
    if not os.path.isdir(folder):
        raise WsolError(f"{folder}: no such folder")
    if not os.path.isfile(os.path.join(folder, "summary.csv")):
        raise WsolError(f"{folder}: no summary.csv here (expected a `wsol evaluate --out` folder or a suite folder)")
    if args.gallery < 0:
        raise WsolError("--gallery must be >= 0")
    if is_suite_dir(folder):
        path = write_suite_report(folder, out_html=args.out and claim_output_file(args.out, (".html", ".htm")))
    else:
        out = args.out and claim_output_file(args.out, (".html", ".htm"))
        path = write_report(folder, cams_dir=args.cams, out_html=out, n_gallery=args.gallery, root=args.root)
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB)")
    return 0


# ---------------------------------------------------------------------------------------------
# overlay

def cmd_overlay(args) -> int:
    from wsol.report.overlay import save_png

    out = claim_output_file(args.out or f"{os.path.splitext(os.path.basename(args.image))[0]}_{args.method}.png",
                            (".png",))  # checked before the model runs
    names = read_class_names(args.class_names) if args.class_names else None
    res = explain_image(args.image, args.backbone, args.weights, args.cls, args.method, args.tau,
                        np.asarray(args.gt_box) if args.gt_box else None, names, args.device)
    print(f"top-{len(res.top5)} ({args.backbone}, weights {args.weights}):")
    for rank, (c, p, n) in enumerate(res.top5, 1):
        print(f"  {rank}. {p:6.2%}  {c:4d}  {n}")
    print(f"{args.method} of class {res.target} ({res.target_name}); box at tau={args.tau:g}, largest component: "
          f"{' '.join(map(str, res.box.tolist()))} on the 224 grid, "
          f"{' '.join(map(str, res.box_image))} in image pixels"
          + (f"; IoU {res.iou:.3f}" if res.iou is not None else ""))
    save_png(out, res.picture)
    print(f"wrote {out}")
    return 0
