"""``wsol tune``: argparse front end of :mod:`wsol.training.tune`."""
from __future__ import annotations

import argparse

from wsol.utils.options import add_arguments, values_from_args

_EPILOG = """\
outputs in --out: study.db (the Optuna study, unless --storage), trials.csv (one row per
trial), trials/<number>/ (each trial's `wsol train` run), and with --final: final/ (the
best configuration retrained, final/test/ its test evaluation) and summary.csv, which
`wsol compare OUT` sets beside the published number.

examples (docs/training.md, "Training like the paper"):
  wsol tune --dataset wsoleval --root wsolevaluation/metadata/CUB --dataset-option images=dataset/CUB \\
      --backbone resnet50_s1 --wsol-method has --trials 30 --test-split test --final --device cuda --out tune/r50_has
  # two processes (or machines) running one study:
  wsol tune ... --storage sqlite:////shared/tune.db --study r50_has --out tune/r50_has &
  wsol tune ... --storage sqlite:////shared/tune.db --study r50_has --out tune/r50_has
"""


def add_parsers(subparsers) -> None:
    """Add the ``tune`` subcommand."""
    from wsol.cli.train import add_train_arguments
    from wsol.training.tune import TuneConfig

    p = subparsers.add_parser(
        "tune", help="random hyperparameter search of a training method (Choe et al.'s protocol, Optuna)",
        description="Random search over the learning rate, weight decay, decay step and the method's own\n"
                    "hyperparameters (ranges: docs/training.md), each trial one `wsol train` scored on the\n"
                    "selection split (train-fullsup); the other options are the base run's. Resumable: rerun\n"
                    "the same command after a kill; several processes may share a study (--storage).",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_arguments(p)
    g = p.add_argument_group("search")
    add_arguments(g, TuneConfig, ["n_trials", "storage", "study", "search_seed", "grace", "final"])
    p.set_defaults(func=cmd_tune)


def cmd_tune(args) -> int:
    from wsol.cli.train import train_config_from
    from wsol.training.tune import TuneConfig, tune

    res = tune(TuneConfig(train=train_config_from(args), out=args.out, heartbeat=max(1, args.grace // 3),
                          **values_from_args(args, TuneConfig)))
    print(f"study {res['study']}: best trial #{res['best_trial']}, score {res['best_value']:.4g}, "
          f"{res['best_params']}")
    print(f"trials: {args.out}/trials.csv")
    if "final" in res:
        f = res["final"]
        print(f"final (best configuration retrained) on {f['split']}: MaxBoxAccV2 {f['maxboxacc_v2']:.2f}, "
              f"top-1 {f['top1_cls']:.2f} -> {args.out}/summary.csv")
    return 0
