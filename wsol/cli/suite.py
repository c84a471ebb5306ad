"""``wsol suite`` and ``wsol compare`` (added to the CLI by :func:`add_parsers`)."""
from __future__ import annotations

import argparse
import math
import os
import sys


def add_parsers(sub) -> None:
    """Register the ``suite`` and ``compare`` subcommands."""
    p = sub.add_parser(
        "suite", help="run a YAML grid of datasets x backbones x methods x protocols (resumable)",
        description="Expand a suite file into runs (datasets x backbones x methods x protocols), run each\n"
                    "into OUT/<run-id>/ (the CSVs of `wsol evaluate`) and keep OUT/summary.csv with one row\n"
                    "per run. Finished runs with the same config are skipped, so an interrupted suite\n"
                    "resumes. Exit status 1 when a run failed (the others still run).\n"
                    "Shipped suites: benchmarks/suites/*.yaml (a bare name such as `smoke` finds them);\n"
                    "the file format is described in wsol/suite.py.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  wsol suite benchmarks/suites/smoke.yaml --dry-run\n"
               "  CUB_ROOT=/data/CUB_200_2011 wsol suite wsoleval_cub --only 'cub__resnet50*'")
    p.add_argument("file", metavar="FILE.yaml", help="suite file (or the name of a shipped suite)")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default: runs/<suite name>)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and whether each would run or be skipped")
    p.add_argument("--only", action="append", metavar="PATTERN",
                   help="only runs whose id matches this fnmatch pattern (repeatable)")
    p.add_argument("--force", action="store_true", help="rerun runs that already finished")
    p.set_defaults(func=cmd_suite)

    p = sub.add_parser(
        "compare", help="compare a suite's results with the published numbers",
        description="Join DIR/summary.csv with the published numbers (benchmarks/paper_numbers.csv) and write "
                    "DIR/comparison.csv and DIR/comparison.md: measured, published, delta (measured - "
                    "published) and source; published numbers without a run are listed as 'not run'.")
    p.add_argument("dir", metavar="DIR", nargs="?", default=None,
                   help="a suite or run output folder (holding summary.csv)")
    p.add_argument("--paper", default=None, metavar="FILE",
                   help="published numbers CSV (default: benchmarks/paper_numbers.csv)")
    p.add_argument("--published", action="store_true",
                   help="also (or, without DIR, only) render the whole published table grouped by protocol "
                        "fingerprint: published.md and published.html in --out (default DIR)")
    p.add_argument("--out", default=None, metavar="OUT", help="folder for published.md/.html (default DIR)")
    p.set_defaults(func=cmd_compare)


def _num(x) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(v) else f"{v:.2f}"


def cmd_suite(args) -> int:
    from wsol.suite import default_out_dir, find_suite_file, load_suite, run_suite

    suite = load_suite(find_suite_file(args.file))
    out = args.out or default_out_dir(suite)
    quiet = bool(getattr(args, "quiet", False))
    df = run_suite(suite, out_dir=out, only=args.only, force=args.force, dry_run=args.dry_run,
                   progress=not quiet)
    width = max([len("run_id")] + [len(r) for r in df["run_id"]])
    if args.dry_run:
        print(f"suite {suite.name}: {len(df)} runs -> {out}")
        for _, r in df.iterrows():
            print(f"  {r['run_id']:{width}s}  {r['status']:10s}  {r['reason'] or ''}".rstrip())
        return 0
    print(f"{'run_id':{width}s}  {'status':8s}  {'maxboxacc_v2':>12s}  {'top1_loc':>8s}  reason")
    for _, r in df.iterrows():
        reason = r["reason"] if isinstance(r["reason"], str) else ""
        print(f"{r['run_id']:{width}s}  {r['status']:8s}  {_num(r.get('maxboxacc_v2')):>12s}  "
              f"{_num(r.get('top1_loc')):>8s}  {reason}".rstrip())
    counts = df["status"].value_counts().to_dict()
    print(f"{len(df)} runs: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in ("ok", "skipped", "failed"))
          + f"; wrote {os.path.join(out, 'summary.csv')}")
    failed = int(counts.get("failed", 0))
    if failed:
        print(f"wsol: {failed} run(s) failed: reasons in {os.path.join(out, 'summary.csv')} "
              f"(tracebacks of errors inside a run in {os.path.join(out, '<run-id>', 'error.txt')})", file=sys.stderr)
    return 1 if failed else 0


def cmd_compare(args) -> int:
    from wsol.comparison import REFUSED, compare, render_published, to_markdown
    from wsol.errors import WsolError

    if args.dir is None and not args.published:
        raise WsolError("wsol compare needs DIR (a run or suite folder) or --published")
    if args.published:
        out = args.out or args.dir
        if out is None:
            raise WsolError("wsol compare --published needs --out OUT (or DIR)")
        md, page = render_published(out, args.paper)
        print(f"wrote {md} and {page}")
    if args.dir is None:
        return 0
    df = compare(args.dir, args.paper)
    sys.stdout.write(to_markdown(df))
    for _, r in df[df["status"] == REFUSED].iterrows():
        print(f"refused: {r['dataset']}/{r['backbone']}/{r['method']}/{r['metric']} ({r['source'][:40]}): {r['note']}")
    n = int((df["status"] == "measured").sum())
    print(f"{n} of {len(df)} published numbers measured; wrote "
          f"{os.path.join(args.dir, 'comparison.csv')} and {os.path.join(args.dir, 'comparison.md')}")
    return 0

