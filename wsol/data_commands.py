"""CLI: ``wsol check-data`` and ``wsol export-metadata``."""
from __future__ import annotations

import argparse

from wsol.utils import cli_types as T


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help="dataset adapter (see `wsol datasets`)")
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
    p.add_argument("--workers", type=T.nonnegative_int, default=None,
                   help="threads decoding images (default: one per CPU core; 0 = in the main thread)")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("export-metadata", help="write wsolevaluation metadata for any dataset wsol reads",
                       description="Write <out>/image_ids.txt, class_labels.txt, image_sizes.txt and "
                                   "localization.txt (the wsolevaluation format) for a dataset split.")
    _common(p)
    p.add_argument("--out", required=True, help="output folder (e.g. metadata/cub/test)")
    p.set_defaults(func=cmd_export)


def _opts(args) -> dict:
    from wsol.cli import _parse_options

    return _parse_options(args.dataset_option, "--dataset-option")


def _split(args) -> str:
    from wsol.datasets.base import default_split

    return args.split or default_split(args.dataset)


def cmd_check(args) -> int:
    from wsol.datasets.check import check_dataset, format_report

    if args.header_only and args.decode:
        from wsol.errors import WsolError

        raise WsolError("--header-only and --decode contradict each other: give one")
    rep = check_dataset(args.dataset, args.root, _split(args), verify_images=not args.no_verify,
                        decode=not args.header_only, workers=args.workers, progress=not args.quiet, **_opts(args))
    print(format_report(rep))
    return 0 if rep.ok else 1


def cmd_export(args) -> int:
    from wsol.datasets.base import build_dataset
    from wsol.datasets.wsoleval import write_wsoleval_metadata

    ds = build_dataset(args.dataset, args.root, _split(args), **_opts(args))
    write_wsoleval_metadata(ds, args.out, progress=not args.quiet)
    print(f"wrote wsolevaluation metadata for {len(ds)} images to {args.out}")
    return 0
