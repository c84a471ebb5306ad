"""The ``wsol`` command line: a thin argparse layer over the engine.

Every failure the user can fix prints one line ``wsol: error: ...`` and exits 2; ``--debug``
shows the traceback instead. Each command group lives in its own module of this package
(:data:`COMMAND_MODULES`); a module that fails to import is named on stderr and in
``wsol --help`` instead of vanishing.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Dict, List, Optional

from wsol import __version__
from wsol.utils import cli_types as T

log = logging.getLogger("wsol")

# Each defines ``add_parsers(subparsers)`` and sets ``func`` on its parsers (a function
# taking the parsed args and returning an exit code).
COMMAND_MODULES = (
    "wsol.cli.evaluate",    # evaluate, score
    "wsol.cli.synthetic",   # make-synthetic
    "wsol.cli.listing",     # datasets, models, methods
    "wsol.cli.data",        # check-data, export-metadata
    "wsol.cli.report",      # report, overlay
    "wsol.cli.train",       # train, demo
    "wsol.cli.tune",        # tune
    "wsol.cli.bench",       # bench
    "wsol.cli.suite",       # suite, compare
)


def build_parser(failures: Optional[Dict[str, str]] = None) -> argparse.ArgumentParser:
    """The whole parser; command modules that fail to import are left out and reported in
    ``failures`` (module -> reason) and in the help text."""
    failures = {} if failures is None else failures
    ap = T.OneLineParser(
        prog="wsol",
        description="Weakly-supervised object localization benchmark: class activation maps of image "
                    "classifiers, thresholded into boxes and masks, scored with Top-1/GT-known Loc, MaxBoxAcc, "
                    "MaxBoxAccV2 and PxAP exactly as Choe et al. (CVPR 2020) define them.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=f"wsol {__version__}")
    ap.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    for mod in COMMAND_MODULES:
        try:
            importlib.import_module(mod).add_parsers(sub)
        except Exception as e:  # a broken command module must not take the others down
            failures[mod] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")
    if failures:
        ap.epilog = "commands unavailable (their module failed to import):\n" + "\n".join(
            f"  {m}: {r}" for m, r in failures.items())
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``wsol`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    failures: Dict[str, str] = {}
    parser = build_parser(failures)
    for mod, reason in failures.items():
        print(f"wsol: warning: command module {mod} failed to import ({reason}); its commands are unavailable",
              file=sys.stderr)
    try:
        args = parser.parse_args(argv)
    except SystemExit:  # --help, --version or a usage error: flush here so a closed pipe is quiet
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            return _closed_stdout()
        raise
    except BrokenPipeError:
        return _closed_stdout()
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    # the hub client logs every retry twice (its own print and a warning); one line at the end is ours
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from wsol.errors import WsolError

    try:
        rc = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit flush
        return rc
    except WsolError as e:
        if args.debug:
            raise
        print(f"wsol: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `wsol models | head`: the reader left; say nothing more
        return _closed_stdout()
    except OSError as e:  # a write outside the atomic writers (disk full, read-only): one line
        if args.debug:
            raise
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"wsol: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        what = str(e) or ("no summary.csv was written for the unfinished run; rerun the same command to redo "
                          "it (suites skip the runs already finished)")
        print(f"wsol: interrupted; {what}", file=sys.stderr)
        return 130


def _closed_stdout() -> int:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again; the exit
    status is a pipe's (128 + SIGPIPE)."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout replaced (tests) or already closed
        pass
    return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
