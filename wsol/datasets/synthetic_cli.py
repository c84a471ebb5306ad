"""``wsol make-synthetic``: write the procedural CUB-layout dataset to a folder."""
from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional

from wsol.utils import cli_types as T
from wsol.datasets.synthetic import DEFAULTS, SIZE_JITTER, make_synthetic
from wsol.errors import WsolError


def build_parser(prog: str = "wsol make-synthetic") -> argparse.ArgumentParser:
    p = T.OneLineParser(
        prog=prog,
        description=(
            "Write a procedurally drawn WSOL dataset in the exact CUB-200-2011 layout "
            "(images/NNN.Class_Name/*.jpg, images.txt, image_class_labels.txt, classes.txt, "
            "train_test_split.txt, bounding_boxes.txt). Each class is a colour + texture + "
            "shape combination (e.g. Red_Striped_Star); each image holds one object at a "
            "random position and scale (box 5-40% of the image) on a cluttered background, "
            "with 1-3 small distractor shapes. The same arguments give byte-identical files. "
            "Any folder made this way can be read with '--dataset cub' or '--dataset synthetic'."),
        epilog="example: %(prog)s --out data/synthetic --classes 8 --seed 0",
    )
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder to write (created; an earlier synthetic set there is replaced)")
    p.add_argument("--classes", type=T.int_in(1, 256), default=DEFAULTS["n_classes"], metavar="N",
                   help="number of classes (default %(default)s, at most 256)")
    p.add_argument("--train-per-class", type=T.nonnegative_int, default=DEFAULTS["n_train_per_class"],
                   metavar="N", help="train images per class (default %(default)s)")
    p.add_argument("--test-per-class", type=T.nonnegative_int, default=DEFAULTS["n_test_per_class"],
                   metavar="N", help="test images per class (default %(default)s)")
    p.add_argument("--image-size", type=T.int_in(32, 4096), nargs=2, default=list(DEFAULTS["image_size"]),
                   metavar=("W", "H"),
                   help=f"nominal image width and height; each image varies within "
                        f"+-{int(SIZE_JITTER * 100)}%% (default %(default)s)")
    p.add_argument("--seed", type=T.nonnegative_int, default=DEFAULTS["seed"],
                   help="random seed (default %(default)s)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary line")
    return p


def main(argv: Optional[List[str]] = None, prog: str = "wsol make-synthetic") -> int:
    """Parse ``argv`` (sys.argv[1:] when None), write the dataset; return the exit code."""
    args = build_parser(prog).parse_args(argv)
    t0 = time.perf_counter()
    try:
        make_synthetic(args.out, n_classes=args.classes,
                       n_train_per_class=args.train_per_class,
                       n_test_per_class=args.test_per_class,
                       image_size=tuple(args.image_size), seed=args.seed,
                       progress=not args.quiet)
    except (WsolError, ValueError, OSError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    if not args.quiet:
        n = args.classes * (args.train_per_class + args.test_per_class)
        print(f"wrote {n} images in {args.classes} classes to {args.out} "
              f"({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
