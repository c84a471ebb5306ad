"""``wsol tune``: argparse front end of :mod:`wsol.training.tune`."""
from __future__ import annotations

import argparse

from wsol.utils import cli_types as T

_EPILOG = """\
outputs in --out: study.db (the Optuna study, unless --storage), trials.csv (one row per
trial), trials/<number>/ (each trial's `wsol train` run), and with --final: final/ (the
best configuration retrained, final/test/ its test evaluation) and summary.csv, which
`wsol compare --run DIR` sets beside the published number.

examples (docs/architecture.md, "Training like the paper"):
  wsol tune --dataset wsoleval --root wsolevaluation/metadata/CUB --dataset-option images=dataset/CUB \\
      --backbone resnet50_s1 --wsol-method has --trials 30 --test-split test --final --device cuda --out tune/r50_has
  # two processes (or machines) running one study:
  wsol tune ... --storage sqlite:////shared/tune.db --study r50_has --out tune/r50_has &
  wsol tune ... --storage sqlite:////shared/tune.db --study r50_has --out tune/r50_has
"""


def add_parsers(subparsers) -> None:
    """Add the ``tune`` subcommand."""
    from wsol.cli.train import add_train_arguments

    p = subparsers.add_parser(
        "tune", help="random hyperparameter search of a training method (Choe et al.'s protocol, Optuna)",
        description="Random search over the learning rate, weight decay, decay step and the method's own\n"
                    "hyperparameters (ranges: docs/architecture.md), each trial one `wsol train` scored on the\n"
                    "selection split (train-fullsup); the other options are the base run's. Resumable: rerun\n"
                    "the same command after a kill; several processes may share a study (--storage).",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_arguments(p)
    g = p.add_argument_group("search")
    g.add_argument("--trials", type=T.positive_int, default=30,
                   help="complete trials the study ends with, over all its processes (default 30, the paper's)")
    g.add_argument("--storage", default="", metavar="URL",
                   help="Optuna storage URL shared by the processes of one study (default: sqlite:///OUT/study.db)")
    g.add_argument("--study", default="", metavar="NAME", help="study name (default wsol-<method>)")
    g.add_argument("--search-seed", type=T.nonnegative_int, default=0,
                   help="seed of the draws: trial N's configuration depends on it and N only (default 0)")
    g.add_argument("--grace", type=T.positive_int, default=30, metavar="SECONDS",
                   help="a trial without heartbeat this long (its process died) is run again (default 30)")
    g.add_argument("--final", action="store_true",
                   help="then retrain the best configuration and evaluate it on --test-split (final/, summary.csv)")
    p.set_defaults(func=cmd_tune)


def cmd_tune(args) -> int:
    from wsol.cli.train import train_config_from
    from wsol.training.tune import TuneConfig, tune

    res = tune(TuneConfig(train=train_config_from(args), out=args.out, n_trials=args.trials, storage=args.storage,
                          study=args.study, seed=args.search_seed, grace=args.grace,
                          heartbeat=max(1, args.grace // 3), final=args.final))
    print(f"study {res['study']}: best trial #{res['best_trial']}, score {res['best_value']:.4g}, "
          f"{res['best_params']}")
    print(f"trials: {args.out}/trials.csv")
    if "final" in res:
        f = res["final"]
        print(f"final (best configuration retrained) on {f['split']}: MaxBoxAccV2 {f['maxboxacc_v2']:.2f}, "
              f"top-1 {f['top1_cls']:.2f} -> {args.out}/summary.csv")
    return 0
