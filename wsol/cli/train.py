"""``wsol train`` and ``wsol demo``: argparse front ends of :mod:`wsol.training.train` and
:mod:`wsol.apps.demo`."""
from __future__ import annotations

import argparse

from wsol.utils import cli_types as T

from wsol.training.recipe import AMP_MODES, EVAL_CHECKPOINTS, LR_SCHEDULES, RECIPES, SELECT_BY, TrainConfig

_TRAIN_EPILOG = """\
outputs in --out: last.pt and best.pt (load either with `wsol evaluate --weights FILE`),
train_log.csv (one row per epoch, with its learning rate), train_config.json, and with
--test-split the evaluation of the last (or --eval-checkpoint best) checkpoint in test/.

examples (docs/architecture.md, "Training like the paper"):
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
    """Every option of ``wsol train`` (``wsol tune`` takes them too: its base run)."""
    d = TrainConfig()
    _add_data_options(p, d)
    _add_method_options(p, d)
    _add_model_options(p, d)
    _add_schedule_and_run_options(p, d)


def _add_data_options(p, d: TrainConfig) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default=d.dataset, help=f"dataset adapter (see `wsol datasets`; default {d.dataset})")
    g.add_argument("--root", required=True, help="dataset folder (for cub: the CUB_200_2011 folder holding images/)")
    g.add_argument("--split", default=d.split, help=f"split to train on (default {d.split})")
    g.add_argument("--dataset-option", action="append", metavar="KEY=VALUE",
                   help="adapter-specific option, repeatable (e.g. n_train_per_class=40 for synthetic)")
    g.add_argument("--selection-split", default=d.selection_split, metavar="SPLIT|auto|none",
                   help="split whose boxes choose the checkpoint, scored every epoch (wsolevaluation's 'val' "
                        "= train-fullsup); 'auto': the adapter's 'val' split when it has one, else --holdout of "
                        "the training split; 'none': no selection (default auto)")
    g.add_argument("--holdout", type=T.fraction_below_one, default=d.holdout, metavar="FRACTION",
                   help=f"without a selection split: share of each class's train images held out (seeded) to "
                        f"choose the best epoch; 0 = no selection (default {d.holdout})")
    g.add_argument("--select-by", default=d.select_by, choices=SELECT_BY,
                   help=f"how best.pt is chosen on the selection images: MaxBoxAccV2 of --val-method CAMs, "
                        f"classification top-1, or simply the last epoch (default {d.select_by})")
    g.add_argument("--val-method", default=d.val_method,
                   help=f"CAM method scored on the selection and test images (default {d.val_method})")
    g.add_argument("--test-split", default=d.test_split, metavar="SPLIT",
                   help="after training, evaluate the --eval-checkpoint on this split into --out/test "
                        "(default: none)")
    g.add_argument("--eval-checkpoint", default=d.eval_checkpoint, choices=EVAL_CHECKPOINTS,
                   help="the checkpoint --test-split evaluates: the last epoch (the paper's) or best.pt "
                        f"(default {d.eval_checkpoint})")


def _add_model_options(p, d: TrainConfig) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--backbone", default=d.backbone, help=f"backbone name (see `wsol models`; default {d.backbone})")
    g.add_argument("--weights", default=d.weights,
                   help="starting weights: 'pretrained' (ImageNet; the head is replaced by one sized for the "
                        "dataset), 'random', or a checkpoint file (default pretrained)")
    g.add_argument("--model-option", action="append", metavar="KEY=VALUE",
                   help="model option, repeatable (e.g. large_feature_map=true for Choe et al.'s architectures; "
                        "`wsol models` lists them); recorded in the checkpoints")
    g.add_argument("--train-layers", default=d.train_layers, metavar="all|head|last:N",
                   help="what is trained: 'all' layers, only the classifier ('head'), or the classifier and "
                        "the last N blocks/stages of the feature stack ('last:N'; new layers such as "
                        "vgg16_gap's conv6 always train; e.g. ResNet layer4 = last:1, "
                        "EfficientNet conv_head+bn2 = last:1, + blocks.6 = last:2). Frozen layers keep their "
                        "BatchNorm statistics (default all)")


def _add_schedule_and_run_options(p, d: TrainConfig) -> None:
    """``train``'s schedule (epochs, lr, SGD, seed) and run (out, resume, device, workers) options."""
    ref = RECIPES["reference"]
    g = p.add_argument_group("schedule (defaults: --recipe reference, clovaai/wsolevaluation's trainer)")
    g.add_argument("--recipe", default=d.recipe, choices=list(RECIPES),
                   help="the defaults of the options below: 'reference' (Choe et al.'s trainer) or 'wsol' (no "
                        "Nesterov, decay after every --lr-decay-epochs epochs, AMP auto, lr 1e-3, batch 32, 50 "
                        "epochs, decay 15; wsol demo's) (default reference)")
    g.add_argument("--epochs", type=T.positive_int, default=None, help=f"training epochs (default {ref['epochs']})")
    g.add_argument("--lr", type=T.positive_float, default=None,
                   help=f"learning rate of the pretrained layers; the new ones get 10x (default {ref['lr']})")
    g.add_argument("--lr-decay-epochs", type=T.positive_int, default=None, metavar="N",
                   help=f"decay frequency: the rate is multiplied by 0.1 before every epoch e with e %% N == 0 "
                        f"(--lr-schedule reference), or after every N epochs (step) (default {ref['lr_decay_epochs']})")
    g.add_argument("--lr-schedule", default=None, choices=LR_SCHEDULES,
                   help="when the rate decays: 'reference' (wsolevaluation: N=3 runs epochs 1-2, 3-5, 6-8, 9-10 "
                        "at 1, 0.1, 0.01, 0.001) or 'step' (torch StepLR: 1-3, 4-6, ...) (default reference)")
    g.add_argument("--batch-size", type=T.positive_int, default=None,
                   help=f"images per step (default {ref['batch_size']})")
    g.add_argument("--momentum", type=T.fraction_below_one, default=d.momentum, help=f"SGD momentum (default {d.momentum})")
    g.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None,
                   help="Nesterov momentum, as wsolevaluation's trainer (default: on)")
    g.add_argument("--weight-decay", type=T.nonnegative_float, default=d.weight_decay, help=f"SGD weight decay (default {d.weight_decay})")
    g.add_argument("--seed", type=T.nonnegative_int, default=d.seed,
                   help="seed of everything: head initialisation, held-out split, shuffling, augmentation (default 0)")
    g = p.add_argument_group("run")
    g.add_argument("--out", required=True, metavar="DIR", help="output folder (checkpoints, train_log.csv)")
    g.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last.pt (model, optimizer, scheduler, epoch, RNG); "
                        "--epochs may be raised to train longer")
    g.add_argument("--device", type=T.device, default=d.device, help=f"{T.DEVICE_HELP} (default cpu)")
    g.add_argument("--amp", default=None, choices=AMP_MODES,
                   help="mixed precision on CUDA: bf16 or fp16 autocast (fp16 with a gradient scaler); 'auto' = "
                        "bf16 where supported, else fp16; ignored on CPU (default off: float32, as the reference)")
    g.add_argument("--data-workers", type=T.nonnegative_int, default=d.data_workers,
                   help="DataLoader worker processes for decoding and augmentation (default 0)")
    g.add_argument("--batch-size-eval", dest="val_batch_size", type=T.positive_int, default=d.val_batch_size,
                   help=f"images per batch when scoring the held-out images (default {d.val_batch_size})")


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
    p.add_argument("--out", default="wsol_demo", metavar="DIR", help="output folder (default wsol_demo)")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="where the synthetic set is generated and cached (default DIR/wsol_data/synthetic)")
    p.add_argument("--quick", action="store_true",
                   help="a tiny set and schedule, for smoke tests (seconds; the numbers mean nothing)")
    p.add_argument("--device", type=T.device, default="cpu", help=f"{T.DEVICE_HELP} (default cpu)")
    p.add_argument("--seed", type=T.nonnegative_int, default=0, help="seed of the training run (default 0)")
    p.set_defaults(func=cmd_demo)


def _add_method_options(p, d: TrainConfig) -> None:
    """--wsol-method and one --<method>-<option> flag per hyperparameter of each method."""
    import dataclasses

    from wsol.training.methods import list_train_methods, option_flag

    methods = list_train_methods()
    g = p.add_argument_group("WSOL training method (defaults: the reference's, clovaai/wsolevaluation)")
    g.add_argument("--wsol-method", default=d.wsol_method, choices=[m.name for m in methods],
                   help="how the classifier is trained for localization (`wsol methods --training` describes "
                        f"each; default {d.wsol_method}); the hyperparameters below apply to their method only")
    for m in methods:
        for f in dataclasses.fields(m.Options):
            g.add_argument(f"--{option_flag(m.name, f.name)}", dest=f"mopt__{m.name}__{f.name}",
                           type=type(f.default), default=None, metavar=type(f.default).__name__.upper(),
                           help=f"{m.name}: {f.metadata.get('help', f.name)} (default {f.default:g})")


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

    return TrainConfig(dataset=args.dataset, root=args.root, split=args.split, backbone=args.backbone,
                      weights=args.weights, wsol_method=args.wsol_method, method_options=method_options_from(args),
                      model_options=parse_options(args.model_option, "--model-option"), recipe=args.recipe,
                      epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, lr_decay_epochs=args.lr_decay_epochs,
                      lr_schedule=args.lr_schedule, momentum=args.momentum, nesterov=args.nesterov,
                      weight_decay=args.weight_decay, train_layers=args.train_layers,
                      selection_split=args.selection_split, holdout=args.holdout, select_by=args.select_by,
                      val_method=args.val_method, val_batch_size=args.val_batch_size, test_split=args.test_split,
                      eval_checkpoint=args.eval_checkpoint,
                      device=args.device, amp=args.amp, out=args.out, resume=args.resume, data_workers=args.data_workers,
                      seed=args.seed, dataset_options=parse_options(args.dataset_option, "--dataset-option"),
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

    res = run_demo(DemoConfig(out=args.out, data=args.data, quick=args.quick, device=args.device,
                              seed=args.seed, progress=not args.quiet))
    print(format_table(res.table))
    print(f"wall time {res.seconds:.0f} s; wrote {args.out}/summary.csv and {args.out}/<method>/")
    return 0
