"""Top-1/top-5 of the offline EfficientNet-Lite weights per padding mode and normalization.

The weights are TensorFlow ports; which padding ('same' vs symmetric) and which input
normalization they expect is decided by classifying real ILSVRC2012 val images
(README.md, Offline EfficientNet-Lite). Input protocol (docs/protocol.md, Input): RGB image resized straight to the input
size with PIL bilinear (no crop, aspect not kept), scaled to [0, 1], then normalized.

    python benchmarks/lite_top1.py                 # all variants, 224 and native resolution
    python benchmarks/lite_top1.py --variants efficientnet_lite0 --no-native

Writes results/efficientnet_lite_top1.csv (one row per variant x padding x normalization x size).
"""
from __future__ import annotations

import argparse
import csv
import datetime
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from wsol.models.efficientnet_lite import LITE_CONFIG, build_efficientnet_lite  # noqa: E402

logger = logging.getLogger("lite_top1")

DEFAULT_DATA = REPO.parent / "shared" / "data" / "imagenet-val-100"
DEFAULT_OUT = REPO / "results" / "efficientnet_lite_top1.csv"

#: Candidate input normalizations (mean, std in 0-1 pixel units).
NORMS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # torchvision
    "half": ((0.5,) * 3, (0.5,) * 3),  # (x - 127.5) / 127.5
    "tf127": ((127.0 / 255,) * 3, (128.0 / 255,) * 3),  # TF Lite builder: (x - 127) / 128
}
PADDINGS = ("same", "symmetric")
COLUMNS = ["variant", "padding", "norm", "mean", "std", "input_size", "top1", "top5", "nll", "n_images", "date", "command"]


def read_kaggle_val(root: Path) -> list[tuple[Path, int]]:
    """(image path, class index) pairs of a Kaggle-layout ILSVRC val folder.

    Class index = line number of the WNID in ``LOC_synset_mapping.txt`` (sorted WNIDs).
    """
    wnids = [line.split()[0] for line in (root / "LOC_synset_mapping.txt").read_text().splitlines() if line.strip()]
    if wnids != sorted(wnids):
        raise ValueError(f"{root / 'LOC_synset_mapping.txt'}: WNIDs are not in sorted order")
    index = {w: i for i, w in enumerate(wnids)}
    image_dir = root / "ILSVRC" / "Data" / "CLS-LOC" / "val"
    samples = []
    with open(root / "LOC_val_solution.csv", newline="") as f:
        for row in csv.DictReader(f):
            wnid = row["PredictionString"].split()[0]
            samples.append((image_dir / f"{row['ImageId']}.JPEG", index[wnid]))
    samples.sort()
    return samples


def load_images(paths: Sequence[Path], size: int) -> np.ndarray:
    """uint8 [N, size, size, 3]: RGB, resized straight to size x size with PIL bilinear."""
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for i, p in enumerate(paths):
        with Image.open(p) as im:
            out[i] = np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR))
    return out


def to_tensor(images: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Normalize uint8 NHWC images to a float NCHW tensor: (x / 255 - mean) / std."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - m) / s


@torch.no_grad()
def topk_accuracy(
    model: torch.nn.Module, images: np.ndarray, labels: Sequence[int],
    mean: Sequence[float], std: Sequence[float], batch_size: int = 25,
) -> tuple[float, float, float]:
    """(top-1 %, top-5 %, mean NLL of the true class) of ``model`` on uint8 NHWC ``images``.

    The NLL is a continuous tie-breaker when two settings classify the same images right.
    """
    model.eval()
    y = torch.as_tensor(labels)
    hit1 = hit5 = 0
    nll = 0.0
    for start in range(0, len(images), batch_size):
        logits = model(to_tensor(images[start:start + batch_size], mean, std))
        top5 = logits.topk(5, dim=1).indices
        t = y[start:start + batch_size].view(-1, 1)
        hit1 += int((top5[:, :1] == t).sum())
        hit5 += int((top5 == t).any(dim=1).sum())
        nll += float(torch.nn.functional.cross_entropy(logits, t.view(-1), reduction="sum"))
    n = len(images)
    return 100.0 * hit1 / n, 100.0 * hit5 / n, nll / n


def _fmt(values: Sequence[float]) -> str:
    return " ".join(f"{v:.6g}" for v in values)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Kaggle-layout ILSVRC val folder (default: %(default)s)")
    ap.add_argument("--variants", nargs="+", default=list(LITE_CONFIG), choices=list(LITE_CONFIG))
    ap.add_argument("--paddings", nargs="+", default=list(PADDINGS), choices=PADDINGS)
    ap.add_argument("--norms", nargs="+", default=list(NORMS), choices=list(NORMS))
    ap.add_argument("--no-native", action="store_true", help="only 224x224, skip each variant's native resolution")
    ap.add_argument("--batch-size", type=int, default=25)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="CSV to write (default: %(default)s)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    samples = read_kaggle_val(args.data)
    paths, labels = [p for p, _ in samples], [c for _, c in samples]
    cache: dict[int, np.ndarray] = {}
    command = shlex.join(["python", os.path.relpath(__file__, REPO), *(sys.argv[1:] if argv is None else argv)])
    date = datetime.date.today().isoformat()
    rows = []
    for variant in args.variants:
        sizes = [224] + ([] if args.no_native or LITE_CONFIG[variant]["input_size"] == 224 else [LITE_CONFIG[variant]["input_size"]])
        for padding in args.paddings:
            model = build_efficientnet_lite(variant, padding=padding).eval()
            for size in sizes:
                if size not in cache:
                    cache[size] = load_images(paths, size)
                for norm in args.norms:
                    mean, std = NORMS[norm]
                    top1, top5, nll = topk_accuracy(model, cache[size], labels, mean, std, args.batch_size)
                    logger.info("%-18s %-9s %-8s %3d  top1 %5.1f  top5 %5.1f  nll %.4f",
                                variant, padding, norm, size, top1, top5, nll)
                    rows.append(dict(variant=variant, padding=padding, norm=norm, mean=_fmt(mean), std=_fmt(std),
                                     input_size=size, top1=f"{top1:.1f}", top5=f"{top5:.1f}", nll=f"{nll:.4f}", n_images=len(paths),
                                     date=date, command=command))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    logger.info("wrote %s (%d rows)", args.out, len(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
