"""``wsol bench``: forward-only vs end-to-end throughput (speed flags: wsol.cli.options).

Kept free of heavy imports: ``wsol --help`` builds every parser.
"""
from __future__ import annotations

from wsol.cli.options import add_fast_path_args, parse_options

from wsol.utils import cli_types as T


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "bench", help="throughput: forward-only vs end-to-end images/s and per-stage times, appended to a CSV",
        description="Measure (a) forward-only images/s (pre-decoded batch on the device, synchronized, after "
                    "warm-up; median over repeats) and (b) end-to-end images/s of the full evaluation protocol "
                    "(decode, resize, transfer, forward, CAM, threshold sweep, metrics), print per-stage times, "
                    "and append one row to --out-csv (default <cache-dir>/throughput/<device>.csv). Without "
                    "--dataset it generates "
                    "ImageNet-like JPEGs (about 500x375, quality 90) once in the cache folder.")
    g = p.add_argument_group("model")
    g.add_argument("--backbone", default="resnet50", help="backbone name (default resnet50)")
    g.add_argument("--weights", default="random", help="'random' (default), 'pretrained' or a checkpoint file")
    g.add_argument("--method", default="cam", help="CAM method (default cam)")
    g.add_argument("--method-option", action="append", metavar="KEY=VALUE", help="method option, repeatable")
    g.add_argument("--batch-size", type=T.positive_int, default=32, help="images per batch (default 32)")
    g.add_argument("--device", type=T.device, default="cpu", help=f"{T.DEVICE_HELP} (default cpu)")
    add_fast_path_args(p)
    g = p.add_argument_group("pipeline")
    g.add_argument("--workers", type=T.nonnegative_int, default=None,
                   help="sweep worker processes (default: the CPUs left after the loader workers and the main process)")
    g.add_argument("--data-workers", type=T.nonnegative_int, default=None,
                   help="DataLoader workers (default: CPUs/2 up to 8 for --decode cpu, CPUs/4 up to 4 for gpu)")
    g.add_argument("--sweep", default="fast", choices=["fast", "reference", "per-threshold"],
                   help="box extraction (default fast; see wsol evaluate --help)")
    g.add_argument("--cam-step", type=T.open_fraction, default=0.01, help="threshold step (default 0.01)")
    g = p.add_argument_group("data")
    g.add_argument("--images", type=T.positive_int, default=None,
                   help="images per run (default: max(256, 8 x batch) generated; with --dataset the whole split)")
    g.add_argument("--unique-images", type=T.positive_int, default=256,
                   help="distinct generated JPEGs, cycled to --images (default 256)")
    g.add_argument("--dataset", default=None, help="use a real dataset adapter instead of generated images")
    g.add_argument("--root", default=None, help="its folder")
    g.add_argument("--split", default=None, help="its split (default: test, or the adapter's only split, e.g. val)")
    g.add_argument("--dataset-option", action="append", metavar="KEY=VALUE", help="adapter option, repeatable")
    g.add_argument("--cache-dir", default=None, help="where generated images go (default $WSOL_CACHE or ~/.cache/wsol)")
    g = p.add_argument_group("measurement")
    g.add_argument("--repeats", type=T.positive_int, default=3, help="timed repeats of each measurement; medians (default 3)")
    g.add_argument("--warmup", type=T.nonnegative_int, default=3,
                   help="untimed forward passes first, then (unless 0) an untimed two-batch end-to-end run (default 3)")
    g.add_argument("--seed", type=T.nonnegative_int, default=0, help="seed of weights and generated images (default 0)")
    g.add_argument("--out-csv", default=None,
                   help="CSV to append to (default <cache-dir>/throughput/<device-slug>.csv; the repository's "
                        "measured figures live in results/throughput/)")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args) -> int:
    from wsol.apps.bench import BenchConfig, run_bench
    from wsol.errors import WsolError

    for flag in ("batch_size", "repeats", "images", "unique_images"):
        v = getattr(args, flag)
        if v is not None and v < 1:
            raise WsolError(f"--{flag.replace('_', '-')} must be at least 1, got {v}")
    for flag in ("workers", "data_workers", "warmup"):
        v = getattr(args, flag)
        if v is not None and v < 0:
            raise WsolError(f"--{flag.replace('_', '-')} must be 0 or more, got {v}")
    cfg = BenchConfig.create(
        backbone=args.backbone, weights=args.weights, method=args.method,
        method_options=parse_options(args.method_option, "--method-option"), batch_size=args.batch_size,
        device=args.device, dtype=args.dtype, channels_last=args.channels_last, compile=args.compile,
        decode=args.decode, workers=args.workers, data_workers=args.data_workers, images=args.images,
        unique_images=args.unique_images, dataset=args.dataset or "", root=args.root or "",
        split=args.split or "", dataset_options=parse_options(args.dataset_option, "--dataset-option"),
        repeats=args.repeats, warmup=args.warmup, sweep=args.sweep, cam_step=args.cam_step,
        out_csv=args.out_csv, cache_dir=args.cache_dir, seed=args.seed, progress=not args.quiet)
    res = run_bench(cfg)
    print(format_table(res.row))
    print(f"appended to {res.csv_path}")
    return 0


def format_table(row: dict) -> str:
    """The run's row as a short human table."""
    def f(v, spec=".1f"):
        return "-" if v != v else format(v, spec)  # NaN -> '-'

    lines = [
        f"device   {row['device']}  (torch {row['torch']}{', cuda ' + row['cuda'] if row['cuda'] else ''}, "
        f"{row['host_cpus']} CPUs)",
        f"run      {row['backbone']}/{row['method']}  batch {row['batch_size']}  {row['dtype']}  "
        f"channels_last={'yes' if row['channels_last'] else 'no'}  compile={'yes' if row['compile'] else 'no'}  "
        f"decode={row['decode']}  data_workers={row['data_workers']}  workers={row['workers']}  "
        f"{row['n_images']} images ({row['dataset']})",
        "",
        f"{'stage':10s} {'ms/image':>9s}",
    ]
    for s in ("data", "forward", "cam", "localize", "metrics", "total"):
        note = "  (CPU time in one sweep worker)" if s == "localize" else ""
        lines.append(f"{s:10s} {f(row[s + '_ms'], '9.2f')}{note}")
    lines += [
        "",
        f"forward-only   {f(row['forward_images_per_s'], '9.1f')} images/s",
        f"end-to-end     {f(row['e2e_images_per_s'], '9.1f')} images/s steady "
        f"({f(row['e2e_wall_images_per_s'])} over the whole run)",
        f"ratio          {f(row['ratio'], '9.3f')}",
        f"50k projected  {f(row['projected_50k_s'], '9.0f')} s",
    ]
    return "\n".join(lines)
