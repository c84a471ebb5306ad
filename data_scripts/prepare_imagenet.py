#!/usr/bin/env python
"""Unpack and verify the ILSVRC2012 validation archives into the layout wsol reads.

Official archives (image-net.org):
    python data_scripts/prepare_imagenet.py data/imagenet --val-tar ILSVRC2012_img_val.tar \
        --bbox-tar ILSVRC2012_bbox_val_v3.tgz [--devkit-tar ILSVRC2012_devkit_t12.tar.gz]
Kaggle (only the val part is unpacked):
    python data_scripts/prepare_imagenet.py data/imagenet --kaggle-zip imagenet-object-localization-challenge.zip

The output folder is the imagenet dataset root. Exit status 0 when ready, 2 (with a
one-line message) for a wrong or truncated archive.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

# Run from a clone: use the wsol package next to this script (an installed one otherwise).
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.isfile(os.path.join(_REPO, "wsol", "__init__.py")) and _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from wsol.datasets.prepare import prepare_imagenet  # noqa: E402
from wsol.errors import WsolError  # noqa: E402


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description="Unpack and verify ILSVRC2012 val archives for wsol.")
    p.add_argument("out_dir", help="folder to unpack into (the imagenet dataset root)")
    p.add_argument("--val-tar", help="ILSVRC2012_img_val.tar (the 50,000 val images)")
    p.add_argument("--bbox-tar", help="ILSVRC2012_bbox_val_v3.tgz (PASCAL VOC XML boxes)")
    p.add_argument("--devkit-tar", help="ILSVRC2012_devkit_t12.tar.gz (optional: labels cross-check)")
    p.add_argument("--kaggle-zip", help="imagenet-object-localization-challenge.zip (instead of the tars)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if not (args.val_tar or args.bbox_tar or args.devkit_tar or args.kaggle_zip):
        p.error("give --val-tar and --bbox-tar (+ --devkit-tar), or --kaggle-zip")
    try:
        root = prepare_imagenet(args.out_dir, val_tar=args.val_tar, bbox_tar=args.bbox_tar,
                                devkit_tar=args.devkit_tar, kaggle_zip=args.kaggle_zip,
                                progress=not args.no_progress)
    except WsolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"ImageNet val ready; dataset root: {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
