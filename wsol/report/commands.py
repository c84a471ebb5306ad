"""``wsol report`` (HTML report of a run or suite folder) and ``wsol overlay`` (one image:
top-5 classes, CAM, box, PNG)."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from wsol.datasets.class_names import imagenet_class_names, imagenet_wnids, read_class_names
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

def resolve_class(spec: str, names: Sequence[str], num_classes: int, wnids: Sequence[str] = ()) -> int:
    """``--class`` value -> class index: an integer, a WNID (``n01440764``, with ``wnids``
    in class order), or a (case-insensitive) class name."""
    try:
        k = int(spec)
    except ValueError:
        if wnids and spec.strip() in wnids:
            return list(wnids).index(spec.strip())
        hits = [i for i, n in enumerate(names) if n.lower() == spec.strip().lower()]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise WsolError(f"--class '{spec}' names classes {hits}: give the index") from None
        from wsol.errors import closest

        close = closest(spec, names)
        hint = f"; did you mean: {', '.join(close)}" if close else ""
        raise WsolError(f"--class '{spec}' is not a class index or name{hint}") from None
    if not 0 <= k < num_classes:
        raise WsolError(f"--class {k} outside the classifier head (0..{num_classes - 1})")
    return k


def check_gt_boxes(boxes: np.ndarray) -> None:
    """``--gt-box`` values: finite, x0 <= x1 and y0 <= y1 (an inverted box would score IoU 0)."""
    for b in boxes:
        text = " ".join(f"{v:g}" for v in b)
        if not np.isfinite(b).all():
            raise WsolError(f"--gt-box {text}: coordinates must be finite numbers")
        if b[2] < b[0] or b[3] < b[1]:
            raise WsolError(f"--gt-box {text}: inverted box (X1 < X0 or Y1 < Y0); give X0 Y0 X1 Y1 "
                            "with X0 <= X1 and Y0 <= Y1")


@dataclass
class SingleImageResult:
    """What ``wsol overlay`` computes for one image."""

    top5: List[Tuple[int, float, str]]   # (class, probability, name)
    target: int
    target_name: str
    heatmap: np.ndarray                  # 224x224 in [0,1]
    box: np.ndarray                      # x0,y0,x1,y1 on the 224 grid
    box_image: Tuple[int, int, int, int]  # the box in image pixels
    iou: Optional[float]
    picture: np.ndarray                  # RGB uint8 at the image's size


def explain_image(image_path: str, backbone: str, weights: str = "pretrained", cls: Optional[str] = None,
                  method: str = "cam", tau: float = 0.2, gt_boxes: Optional[np.ndarray] = None,
                  class_names: Optional[Sequence[str]] = None, device: str = "cpu") -> SingleImageResult:
    """Classify one image, CAM of ``cls`` (default top-1), largest-component box at ``tau``."""
    import torch

    from wsol.cams.base import create_method
    from wsol.localize.boxes import scale_gt_boxes, sweep_reference
    from wsol.localize.iou import iou_matrix
    from wsol.localize.maps import MAP_SIZE, postprocess, quantize
    from wsol.models.registry import create_backbone
    from wsol.report.overlay import overlay_image, scale_pred_box
    from wsol.transforms.image import load_rgb, test_transform

    if not 0.0 <= tau < 1.0:
        raise WsolError(f"--tau must be in [0, 1), got {tau}")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise WsolError("--device cuda asked for, but torch sees no CUDA device (use --device cpu)")
    im = load_rgb(image_path)
    cam_method = create_method(method)
    torch.manual_seed(0)
    bb = create_backbone(backbone, weights, num_classes=None, device=dev)
    for p in bb.parameters():
        p.requires_grad_(False)
    names = list(class_names) if class_names else (imagenet_class_names() if bb.num_classes == 1000 else [])
    if names and len(names) != bb.num_classes:
        raise WsolError(f"{len(names)} class names for a {bb.num_classes}-class head")
    x = test_transform(bb.mean, bb.std)(im).unsqueeze(0).to(dev)
    with torch.no_grad():  # gradient methods differentiate the head themselves
        feats, logits = bb(x)
        probs = torch.softmax(logits.detach().float(), dim=1)[0]
        k = min(5, bb.num_classes)
        pv, pi = probs.topk(k)
        top5 = [(int(c), float(v), names[int(c)] if names else str(int(c))) for v, c in zip(pv.tolist(), pi.tolist())]
        wnids = imagenet_wnids() if bb.num_classes == 1000 and not class_names else []
        target = resolve_class(cls, names, bb.num_classes, wnids) if cls is not None else top5[0][0]
        cams = cam_method(bb, x, feats, logits, torch.tensor([target], device=dev))
    heatmap = postprocess(cams.detach().float().cpu().numpy()[0])
    box = sweep_reference(quantize(heatmap), [tau]).boxes["largest"][0][0].astype(int)
    gt = None if gt_boxes is None or len(gt_boxes) == 0 else np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    if gt is not None:
        check_gt_boxes(gt)
    iou = None
    if gt is not None:
        iou = float(iou_matrix(box[None], scale_gt_boxes(gt, im.width, im.height, MAP_SIZE)).max())
    name = names[target] if names else str(target)
    label = f"{name} (p={float(probs[target]):.2f})"
    picture = overlay_image(np.asarray(im, dtype=np.uint8), heatmap, gt, box, iou, label)
    return SingleImageResult(top5, target, name, heatmap, box, scale_pred_box(box, im.width, im.height), iou, picture)


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
