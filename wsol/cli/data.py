"""CLI: ``wsol check-data`` and ``wsol export-metadata``."""
from __future__ import annotations

import argparse

from wsol.utils import cli_types as T


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default=None,
                   help="dataset adapter (see `wsol datasets`; default: the one whose layout --root has)")
    p.add_argument("--root", required=True, help="dataset folder")
    p.add_argument("--split", default=None, help="split (default: test, or the adapter's only split, e.g. val)")
    p.add_argument("--dataset-option", action="append", metavar="KEY=VALUE",
                   help="adapter option, repeatable (e.g. wnids=FILE, csv=FILE, images=DIR)")


def add_parsers(sub) -> None:
    p = sub.add_parser("check-data", help="validate a dataset folder (missing/unreadable images, bad boxes)",
                       description="Count images, boxes and classes of a split and report missing images (and mask files), "
                                   "unreadable files (every image is decoded, in parallel; --header-only reads headers only), "
                                   "boxes outside the image and classes without images. "
                                   "Exits 1 when problems are found.")
    _common(p)
    p.add_argument("--header-only", action="store_true",
                   help="only read each image's header (size, format) instead of decoding it: faster, but a "
                        "truncated or corrupt JPEG body passes")
    p.add_argument("--decode", action="store_true", help="decode every image fully (the default; kept for old scripts)")
    p.add_argument("--no-verify", action="store_true", help="do not open the images, only check the annotations")
    p.add_argument("--data-workers", type=T.nonnegative_int, default=None,
                   help="threads decoding images (default: one per CPU core; 0 = in the main thread)")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("export-metadata", help="write wsolevaluation metadata for any dataset wsol reads",
                       description="Write <out>/image_ids.txt, class_labels.txt, image_sizes.txt and "
                                   "localization.txt (the wsolevaluation format) for a dataset split.")
    _common(p)
    p.add_argument("--out", required=True, help="output folder (e.g. metadata/cub/test)")
    p.set_defaults(func=cmd_export)


def _resolve_dataset(args) -> None:
    """Fill in ``args.dataset`` from the layout of ``--root`` when it is not given."""
    if args.dataset is None:
        import logging

        from wsol.datasets.detect import guess_dataset

        args.dataset = guess_dataset(args.root, args.split)
        logging.getLogger("wsol").info("%s: read as --dataset %s (from its files)", args.root, args.dataset)


def _opts(args) -> dict:
    from wsol.cli.options import parse_options

    return parse_options(args.dataset_option, "--dataset-option")


def _split(args) -> str:
    from wsol.datasets.base import default_split

    _resolve_dataset(args)
    return args.split or default_split(args.dataset)


def cmd_check(args) -> int:
    from wsol.datasets.check import check_dataset, format_report

    if args.header_only and args.decode:
        from wsol.errors import WsolError

        raise WsolError("--header-only and --decode contradict each other: give one")
    split = _split(args)
    rep = check_dataset(args.dataset, args.root, split, verify_images=not args.no_verify,
                        decode=not args.header_only, workers=args.data_workers, progress=not args.quiet, **_opts(args))
    print(format_report(rep))
    return 0 if rep.ok else 1


def cmd_export(args) -> int:
    from wsol.datasets.base import build_dataset
    from wsol.datasets.wsoleval import write_wsoleval_metadata

    split = _split(args)
    ds = build_dataset(args.dataset, args.root, split, **_opts(args))
    write_wsoleval_metadata(ds, args.out, progress=not args.quiet)
    print(f"wrote wsolevaluation metadata for {len(ds)} images to {args.out}")
    return 0
