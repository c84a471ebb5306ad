"""How much the CAM paper's two box rules and the earlier min-max rule disagree on real images.

For each image of a dataset (default: the 100 real ILSVRC2012 val images next to the
checkout), the CAM of the ground-truth class of a backbone (default: the offline
``efficientnet_lite0``) is boxed three ways at the original resolution
(docs/protocol.md, The cam2016 protocols):

- ``minmax``: the earlier rule, ``m > 0.2`` on the min-max normalized upsampled map;
- ``text``: protocol ``cam2016``, ``up > 0.2 * max(up)`` on the raw upsampled map;
- ``code``: protocol ``cam2016_code``, the released box generator.

    python benchmarks/cam2016_protocols.py [--root DIR] [--backbone NAME] [--weights W]

Writes results/cam2016_protocols.csv (one row per image: the three boxes and IoUs) and
prints how often the boxes agree and the share of images with IoU >= 0.5 under each rule.
"""
from __future__ import annotations

import argparse
import datetime
import logging
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from wsol.cams.base import create_method  # noqa: E402
from wsol.datasets.base import build_dataset  # noqa: E402
from wsol.localize.cam2016 import cam2016_boxes  # noqa: E402
from wsol.localize.cam2016_code import cam2016_code_boxes  # noqa: E402
from wsol.localize.iou import iou_matrix  # noqa: E402
from wsol.localize.maps import normalize  # noqa: E402
from wsol.models.registry import create_backbone  # noqa: E402
from wsol.transforms.image import load_rgb, test_transform  # noqa: E402

DEFAULT_ROOT = REPO.parent / "shared" / "data" / "imagenet-val-100"
DEFAULT_OUT = REPO / "results" / "cam2016_protocols.csv"


def minmax_box(raw: np.ndarray, width: int, height: int) -> np.ndarray:
    """The earlier rule: 20% of the min-max normalized map, largest component by pixels."""
    m = normalize(cv2.resize(np.ascontiguousarray(raw, dtype=np.float32), (width, height),
                             interpolation=cv2.INTER_CUBIC))
    mask = (m > 0.2 * m.max()).astype(np.uint8) if m.max() > 0 else np.zeros(m.shape, np.uint8)
    n, _, st, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return np.zeros(4, np.int64)
    s = st[1:][int(np.argmax(st[1:, cv2.CC_STAT_AREA]))]
    return np.array([s[0], s[1], s[0] + s[2] - 1, s[1] + s[3] - 1], np.int64)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(DEFAULT_ROOT))
    ap.add_argument("--dataset", default="imagenet")
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--weights", default="pretrained")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ds = build_dataset(args.dataset, args.root, "val" if args.dataset == "imagenet" else "test")
    bb = create_backbone(args.backbone, args.weights).eval()
    tf = test_transform(bb.mean, bb.std)
    cam = create_method("cam")
    rows = []
    for s in ds.samples:
        x = tf(load_rgb(s.path)).unsqueeze(0)
        with torch.no_grad():
            f, logits = bb(x)
            raw = cam(bb, x, f, logits, torch.tensor([s.label]))[0].double().numpy()
        w, h = s.width, s.height
        gt = np.asarray(s.boxes, np.float64).reshape(-1, 4)
        boxes = {"minmax": minmax_box(raw, w, h), "text": cam2016_boxes(raw, w, h)[1][0],
                 "code": cam2016_code_boxes(raw, w, h)[0]}
        row = {"image_id": s.image_id, "label": s.label, "top1_correct": int(logits.argmax()) == s.label,
               "raw_min": float(raw.min()), "raw_max": float(raw.max())}
        for k, b in boxes.items():
            row[f"box_{k}"] = " ".join(str(int(v)) for v in b)
            row[f"iou_{k}"] = float(iou_matrix(b[None], gt).max())
        rows.append(row)
    df = pd.DataFrame(rows)
    same_mt = int((df.box_minmax == df.box_text).sum())
    same_tc = int((df.box_text == df.box_code).sum())
    n = len(df)
    lines = [f"{args.backbone} ({args.weights}) on {n} images of {args.root}, {datetime.date.today()}",
             f"box equal: minmax vs text {same_mt}/{n}, text vs code {same_tc}/{n}"]
    for k in ("minmax", "text", "code"):
        ok = df[f"iou_{k}"] >= 0.5
        lines.append(f"{k:6s}: GT-known Loc (IoU >= 0.5) {100 * ok.mean():.1f}%, "
                     f"top-1 Loc {100 * (ok & df.top1_correct).mean():.1f}%, mean IoU {df[f'iou_{k}'].mean():.3f}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    df.to_csv(args.out, index=False)
    print("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
