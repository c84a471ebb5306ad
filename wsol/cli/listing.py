"""``wsol datasets``, ``wsol models``, ``wsol methods``: what is available (and plugin
modules that failed to import, so nothing vanishes without a word)."""
from __future__ import annotations

import sys


def add_parsers(sub) -> None:
    p = sub.add_parser("datasets", help="list dataset adapters")
    p.set_defaults(func=cmd_datasets)
    p = sub.add_parser("models", help="list backbones: name, source, feature layer, stride, CAM exactness")
    p.add_argument("pattern", nargs="?", default="*",
                   help="fnmatch pattern, or a bare word matched as a substring (default: all)")
    p.add_argument("--timm", action="store_true", help="also list timm model names matching the pattern")
    p.set_defaults(func=cmd_models)
    p = sub.add_parser("methods", help="list CAM methods (--training: the WSOL training methods of `wsol train`)")
    p.add_argument("--training", action="store_true",
                   help="list the training methods (`wsol train --wsol-method`) with their options and defaults")
    p.set_defaults(func=cmd_methods)



def report_failures(registry) -> None:
    """Name the plugin modules of ``registry`` that failed to import (on stderr)."""
    for mod, reason in registry.failures().items():
        print(f"wsol: warning: {registry.kind} plugin {mod} failed to import ({reason})", file=sys.stderr)


def cmd_datasets(args) -> int:
    from wsol.datasets.base import DATASETS, list_datasets

    report_failures(DATASETS)
    for d in list_datasets():
        print(f"{d.name:10s} {d.description}")
        print(f"{'':10s} --dataset-option keys: {', '.join(d.valid_options())}")
    return 0


def cmd_models(args) -> int:
    from wsol.models.registry import BACKBONES, list_models, model_options, weights_offline

    report_failures(BACKBONES)
    rows = list_models(args.pattern, include_timm=args.timm)
    if not rows:
        print(f"no backbone matches {args.pattern!r} (wsol models lists them all; --timm adds timm's)")
        return 0
    print(f"{'name':24s} {'source':12s} {'feature layer':22s} {'stride':>6s}  cam_exact  {'weights':9s}  note")
    offline = {True: "offline", False: "download", None: "?"}
    for r in rows:
        stride = str(r.stride) if r.stride else "?"
        w = offline[weights_offline(r.name)]
        opts = model_options(r.name) if r.source != "timm" else {}
        extra = ("  [--model-option " + ", ".join(f"{k}={str(v).lower()}" for k, v in opts.items()) + "]") if opts else ""
        print(f"{r.name:24s} {r.source:12s} {r.feature_layer:22s} {stride:>6s}  {'yes' if r.cam_exact else 'no':9s}  "
              f"{w:9s}  {r.note}{extra}")
    print("weights: 'offline' = pretrained weights on this machine now; 'download' = fetched on first use "
          "(needs internet, or put the file in the hub cache); '?' = unknown")
    return 0


def cmd_methods(args) -> int:
    if getattr(args, "training", False):
        import dataclasses

        from wsol.training.methods import list_train_methods, option_flag
        from wsol.training.methods.base import TRAIN_METHODS

        report_failures(TRAIN_METHODS)
        for m in list_train_methods():
            opts = " ".join(f"--{option_flag(m.name, f.name)} {f.default:g}" for f in dataclasses.fields(m.Options))
            print(f"{m.name:8s} {m.description}" + (f"\n{'':8s} options: {opts}" if opts else ""))
            if m.recipe:   # the reference trainer's schedule, used where --lr ... are not given
                sched = " ".join(f"--{k.replace('_', '-')} {v:g}" for k, v in m.recipe.items())
                print(f"{'':8s} schedule defaults: {sched}")
        return 0
    from wsol.cams.base import METHODS, list_methods

    report_failures(METHODS)
    for m in list_methods():
        print(f"{m.name:16s} {'(gradients) ' if m.needs_grad else ''}{m.description}")
    return 0
