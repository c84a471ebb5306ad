"""``wsol train`` and ``wsol demo``: argparse front ends of :mod:`wsol.training.train` and
:mod:`wsol.apps.demo`."""
from __future__ import annotations

import argparse

from wsol.utils.options import add_arguments, parser_of, values_from_args

from wsol.training.recipe import TrainConfig

_TRAIN_EPILOG = """\
outputs in --out: last.pt and best.pt (load either with `wsol evaluate --weights FILE`),
train_log.csv (one row per epoch, with its learning rate), train_config.json, and with
--test-split the evaluation of the last (or --eval-checkpoint best) checkpoint in test/.

examples (docs/training.md, "Training like the paper"):
  wsol train --dataset wsoleval --root wsolevaluation/metadata/CUB --dataset-option images=dataset/CUB \\
      --backbone resnet50_s1 --wsol-method cam --lr 1.7e-4 --test-split test --device cuda --out runs/r50_cam
  wsol train --dataset synthetic --root data/synthetic --backbone efficientnet_lite0 \\
      --train-layers last:3 --epochs 2 --batch-size 16 --lr 0.01 --holdout 0 --out runs/lite0
  wsol evaluate --dataset cub --root CUB_200_2011 --backbone resnet50 --weights runs/r50/last.pt --out runs/r50/test
  wsol train --dataset cub --root CUB_200_2011 --backbone vgg16_gap --wsol-method has --has-grid-size 4 \
      --has-drop-rate 0.5 --device cuda --out runs/vgg_has
"""


def add_parsers(subparsers) -> None:
    """Add the ``train`` and ``demo`` subcommands."""
    p = subparsers.add_parser(
        "train", help="fine-tune a backbone with image labels only (Choe et al.'s recipe)",
        description="Fine-tune a classifier on a dataset split with image-level labels only, as Choe et\n"
                    "al. (CVPR 2020) train (--recipe reference, the default): resize 256x256 -> random crop\n"
                    "224 -> horizontal flip; SGD with Nesterov momentum 0.9 and weight decay 1e-4, the new\n"
                    "layers at 10x the rate; rate 0.01, batch 64, 40 epochs, the rate multiplied by 0.1\n"
                    "before every epoch e with e % --lr-decay-epochs == 0 (30); float32. A separate\n"
                    "selection split (train-fullsup: --selection-split) is scored every epoch; best.pt is\n"
                    "its best epoch, last.pt the last, which --test-split evaluates by default.",
        epilog=_TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_arguments(p)
    p.set_defaults(func=cmd_train)
    _add_demo_parser(subparsers)


def add_train_arguments(p) -> None:
    """Every option of ``wsol train`` (``wsol tune`` takes them too: its base run), declared
    once on :class:`TrainConfig`."""
    g = p.add_argument_group("data")
    add_arguments(g, TrainConfig, ["dataset", "root", "split"], required=("root",))
    g.add_argument("--dataset-option", action="append", metavar="KEY=VALUE",
                   help="adapter-specific option, repeatable (e.g. n_train_per_class=40 for synthetic)")
    add_arguments(g, TrainConfig, ["selection_split", "holdout", "select_by", "val_method", "test_split",
                                   "eval_checkpoint"])
    _add_method_options(p)
    g = p.add_argument_group("model")
    add_arguments(g, TrainConfig, ["backbone", "weights"])
    g.add_argument("--model-option", action="append", metavar="KEY=VALUE",
                   help="model option, repeatable (e.g. large_feature_map=true for Choe et al.'s architectures; "
                        "`wsol models` lists them); recorded in the checkpoints")
    add_arguments(g, TrainConfig, ["train_layers"])
    g = p.add_argument_group("schedule (defaults: --recipe reference, clovaai/wsolevaluation's trainer)")
    add_arguments(g, TrainConfig, ["recipe", "epochs", "lr", "lr_decay_epochs", "lr_schedule", "batch_size",
                                   "momentum"])
    g.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None,
                   help="Nesterov momentum, as wsolevaluation's trainer (default: on)")
    add_arguments(g, TrainConfig, ["weight_decay", "seed"])
    g = p.add_argument_group("run")
    add_arguments(g, TrainConfig, ["out"], required=("out",))
    add_arguments(g, TrainConfig, ["resume", "device", "amp", "data_workers", "val_batch_size"])


def _add_demo_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="end-to-end demo on synthetic data: generate, fine-tune, localize, score (CPU, minutes)",
        description="Generate the synthetic CUB-layout dataset (cached), fine-tune the offline pretrained "
                    "EfficientNet-Lite0 on it with image labels only (classifier + last 3 stages, 2 epochs "
                    "of batch 16), then evaluate CAM and the center_gaussian baseline on the test split "
                    "and print a table. Writes DIR/<method>/ run CSVs, DIR/summary.csv and, when the "
                    "report module is installed, HTML reports. About 3 minutes on 2 CPU cores "
                    "(results/demo.md); a rerun reuses the cached data and the finished training.",
        epilog="On a busy machine OMP_NUM_THREADS=1 wsol demo can be faster: OpenMP threads that wait "
               "for each other lose time when other processes hold the cores.")
    from wsol.apps.demo import DemoConfig

    add_arguments(p, DemoConfig, ["out", "data", "quick", "device", "seed"])
    p.set_defaults(func=cmd_demo)


def _add_method_options(p) -> None:
    """--wsol-method and one --<method>-<option> flag per hyperparameter of each method,
    derived from the methods' declarations (the same check as the API's and a suite's)."""
    from wsol.training.methods import list_train_methods
    from wsol.training.methods.base import method_options

    g = p.add_argument_group("WSOL training method (defaults: the reference's, clovaai/wsolevaluation)")
    add_arguments(g, TrainConfig, ["wsol_method"])
    for m in list_train_methods():
        for field, opt in method_options(m.name, m.Options).items():
            text = f"{m.name}: {opt.help} ({opt.rule()}; default {opt.default:g})"
            g.add_argument(opt.flag_name(), dest=f"mopt__{m.name}__{field}", type=parser_of(opt), default=None,
                           metavar=opt.kind.upper(), help=text.replace("%", "%%"))


def method_options_from(args) -> dict:
    """The hyperparameters given on the command line for ``args.wsol_method``; a flag of
    another method is a one-line error."""
    from wsol.training.methods import option_flag
    from wsol.errors import WsolError

    out = {}
    for k, v in vars(args).items():
        if not k.startswith("mopt__") or v is None:
            continue
        _, method, name = k.split("__")
        if method != args.wsol_method:
            raise WsolError(f"--{option_flag(method, name)} is an option of --wsol-method {method}, "
                            f"not of {args.wsol_method}")
        out[name] = v
    return out


def train_config_from(args) -> TrainConfig:
    """The TrainConfig of parsed ``wsol train`` (or ``wsol tune``) arguments."""
    from wsol.cli.options import parse_options

    return TrainConfig(**values_from_args(args, TrainConfig),  # nesterov too (--[no-]nesterov)
                       method_options=method_options_from(args),
                       model_options=parse_options(args.model_option, "--model-option"),
                       dataset_options=parse_options(args.dataset_option, "--dataset-option"),
                       progress=not args.quiet)


def cmd_train(args) -> int:
    from wsol.training.loop import method_architecture, train
    from wsol.training.methods import create_train_method

    cfg = train_config_from(args)
    df = train(cfg)
    if len(df):
        cols = [c for c in ("epoch", "train_loss", "train_top1", "val_top1", "val_maxboxacc_v2", "best") if c in df]
        print(df[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    arch, _ = method_architecture(create_train_method(cfg.wsol_method), cfg.backbone)
    print(f"wrote last.pt, best.pt, train_log.csv to {args.out}")
    if cfg.test_split:
        print(f"evaluated {cfg.eval_checkpoint}.pt on {cfg.test_split}: {args.out}/test/summary.csv")
    else:
        print(f"evaluate with: wsol evaluate --backbone {arch} --weights {args.out}/last.pt ...")
    return 0


def cmd_demo(args) -> int:
    from wsol.apps.demo import DemoConfig, format_table, run_demo

    res = run_demo(DemoConfig(**values_from_args(args, DemoConfig), progress=not args.quiet))
    print(format_table(res.table))
    print(f"wall time {res.seconds:.0f} s; wrote {args.out}/summary.csv and {args.out}/<method>/")
    return 0
