"""One image through a backbone and a CAM method: top-5 classes, the map of a chosen class,
its largest-component box at one threshold, and the overlay picture (``wsol overlay``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from wsol.datasets.class_names import imagenet_class_names, imagenet_wnids
from wsol.errors import WsolError


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
