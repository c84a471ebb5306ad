"""``wsol bench``: forward-only vs end-to-end throughput (options: EvalConfig's and BenchConfig's
declarations, wsol.utils.options)."""
from __future__ import annotations

from wsol.cli.options import add_fast_path_args, parse_options

from wsol.utils.options import add_arguments, values_from_args


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "bench", help="throughput: forward-only vs end-to-end images/s and per-stage times, appended to a CSV",
        description="Measure (a) forward-only images/s (pre-decoded batch on the device, synchronized, after "
                    "warm-up; median over repeats) and (b) end-to-end images/s of the full evaluation protocol "
                    "(decode, resize, transfer, forward, CAM, threshold sweep, metrics), print per-stage times, "
                    "and append one row to --out-csv (default <cache-dir>/throughput/<device>.csv). Without "
                    "--dataset it generates "
                    "ImageNet-like JPEGs (about 500x375, quality 90) once in the cache folder.")
    from wsol.apps.bench import BENCH_RUN_DEFAULTS, BenchConfig
    from wsol.engine.config import EvalConfig

    g = p.add_argument_group("model")
    add_arguments(g, EvalConfig, ["backbone", "weights", "method"], defaults=BENCH_RUN_DEFAULTS)
    g.add_argument("--method-option", action="append", metavar="KEY=VALUE", help="method option, repeatable")
    add_arguments(g, EvalConfig, ["batch_size", "device"])
    add_fast_path_args(p)
    g = p.add_argument_group("pipeline")
    add_arguments(g, EvalConfig, ["workers", "data_workers", "sweep", "cam_step"], defaults=BENCH_RUN_DEFAULTS,
                  helps={"workers": "sweep worker processes (default: the CPUs left after the loader workers "
                                    "and the main process)",
                         "data_workers": "DataLoader workers (default: CPUs/2 up to 8 for --decode cpu, CPUs/4 "
                                         "up to 4 for gpu)"})
    g = p.add_argument_group("data")
    add_arguments(g, BenchConfig, ["images", "unique_images"])
    add_arguments(g, EvalConfig, ["dataset", "root", "split"], defaults=BENCH_RUN_DEFAULTS,
                  helps={"dataset": "use a real dataset adapter instead of generated images",
                         "root": "its folder",
                         "split": "its split (default: test, or the adapter's only split, e.g. val)"})
    g.add_argument("--dataset-option", action="append", metavar="KEY=VALUE", help="adapter option, repeatable")
    add_arguments(g, BenchConfig, ["cache_dir"])
    g = p.add_argument_group("measurement")
    add_arguments(g, BenchConfig, ["repeats", "warmup"])
    add_arguments(g, EvalConfig, ["seed"], helps={"seed": "seed of weights and generated images"})
    add_arguments(g, BenchConfig, ["out_csv"])
    p.set_defaults(func=cmd_bench)


def cmd_bench(args) -> int:
    from wsol.apps.bench import BenchConfig, run_bench
    from wsol.engine.config import EvalConfig

    cfg = BenchConfig.create(
        **values_from_args(args, EvalConfig), **values_from_args(args, BenchConfig),
        method_options=parse_options(args.method_option, "--method-option"),
        dataset_options=parse_options(args.dataset_option, "--dataset-option"), progress=not args.quiet)
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
