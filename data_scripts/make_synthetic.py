#!/usr/bin/env python
"""Write the procedural CUB-layout dataset (same as ``wsol make-synthetic``; see --help)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from wsol.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["make-synthetic", *sys.argv[1:]]))
