#!/usr/bin/env python
"""Unpack and verify CUB_200_2011.tgz into the layout wsol reads.

    python data_scripts/prepare_cub.py CUB_200_2011.tgz data/
    -> data/CUB_200_2011 (use it as the cub dataset root)

Exit status 0 when ready, 2 (with a one-line message) for a wrong or truncated archive.
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

from wsol.datasets.prepare import prepare_cub  # noqa: E402
from wsol.errors import WsolError  # noqa: E402


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description="Unpack and verify CUB_200_2011.tgz for wsol.")
    p.add_argument("archive", help="CUB_200_2011.tgz as downloaded")
    p.add_argument("out_dir", help="folder to unpack into (CUB_200_2011/ is created there)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    try:
        root = prepare_cub(args.archive, args.out_dir, progress=not args.no_progress)
    except WsolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"CUB-200-2011 ready; dataset root: {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
