"""``wsol make-synthetic``: write the procedural CUB-layout dataset to a folder."""
from __future__ import annotations

import argparse
import time

from wsol.datasets.synthetic import DEFAULTS, IMAGE_SIDE, SIZE_JITTER, make_synthetic, param_options
from wsol.errors import WsolError
from wsol.utils.options import parser_of


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "make-synthetic", help="generate the procedural CUB-layout dataset",
        description=(
            "Write a procedurally drawn WSOL dataset in the exact CUB-200-2011 layout "
            "(images/NNN.Class_Name/*.jpg, images.txt, image_class_labels.txt, classes.txt, "
            "train_test_split.txt, bounding_boxes.txt). Each class is a colour + texture + "
            "shape combination (e.g. Red_Striped_Star); each image holds one object at a "
            "random position and scale (box 5-40% of the image) on a cluttered background, "
            "with 1-3 small distractor shapes. The same arguments give byte-identical files. "
            "Any folder made this way can be read with '--dataset cub' or '--dataset synthetic'."),
        epilog="example: wsol make-synthetic --out data/synthetic --classes 8 --seed 0")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder to write (created; an earlier synthetic set there is replaced)")
    for name, opt in param_options().items():  # the generator's own declarations
        p.add_argument(opt.flag_name(), dest=name, type=parser_of(opt), default=opt.default, metavar=opt.metavar,
                       help=f"{opt.help} ({opt.rule()}; default {opt.default})")
    p.add_argument("--image-size", type=parser_of(IMAGE_SIDE), nargs=2, default=list(DEFAULTS["image_size"]),
                   metavar=("W", "H"),
                   help=f"nominal image width and height ({IMAGE_SIDE.rule()}); each image varies within "
                        f"+-{int(SIZE_JITTER * 100)}%% (default %(default)s)")
    # also after the command name; SUPPRESS keeps a global -q from being reset to False
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="no progress bar or summary line")
    p.set_defaults(func=cmd_make_synthetic)


def cmd_make_synthetic(args) -> int:
    t0 = time.perf_counter()
    try:
        make_synthetic(args.out, n_classes=args.n_classes, n_train_per_class=args.n_train_per_class,
                       n_test_per_class=args.n_test_per_class, image_size=tuple(args.image_size), seed=args.seed,
                       progress=not args.quiet)
    except (ValueError, OSError) as e:
        raise WsolError(f"{args.out}: {e}") from None
    if not args.quiet:
        n = args.n_classes * (args.n_train_per_class + args.n_test_per_class)
        print(f"wrote {n} images in {args.n_classes} classes to {args.out} ({time.perf_counter() - t0:.1f} s)")
    return 0
