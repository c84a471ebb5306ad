#!/usr/bin/env python
"""Peak memory of one Grad-CAM batch: wsol's design vs autograd over the whole network.

Modes (run each in a fresh process, since ``ru_maxrss`` only grows):

- ``forward``: ``backbone(images)`` under ``torch.no_grad()``;
- ``wsol``: the same forward, then ``gradcam`` as the engine calls it (the method re-runs
  the head on a leaf copy of the feature maps and differentiates that);
- ``full``: the forward with autograd on over every parameter, then ``gradcam`` (what an
  engine that enables gradients on the whole network pays).

Prints the peak resident set size (CPU) and, on CUDA, ``torch.cuda.max_memory_allocated``.

    for m in forward wsol full; do python benchmarks/grad_memory.py $m --batch-size 50; done
"""
from __future__ import annotations

import argparse
import os
import resource
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from wsol.cams.base import create_method  # noqa: E402
from wsol.models.registry import create_backbone  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["forward", "wsol", "full"])
    p.add_argument("--backbone", default="efficientnet_lite0")
    p.add_argument("--weights", default="pretrained")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    dev = torch.device(args.device)
    torch.manual_seed(0)
    bb = create_backbone(args.backbone, args.weights, device=dev).eval()
    x = torch.randn(args.batch_size, 3, 224, 224, device=dev)
    t = torch.zeros(args.batch_size, dtype=torch.long, device=dev)
    method = create_method("gradcam")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    if args.mode == "full":
        with torch.enable_grad():
            feats, logits = bb(x)
            method(bb, x, feats, logits, t)
    else:
        for prm in bb.parameters():
            prm.requires_grad_(False)
        with torch.no_grad():
            feats, logits = bb(x)
            if args.mode == "wsol":
                method(bb, x, feats, logits, t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    line = (f"{args.backbone} {args.mode} batch {args.batch_size}: peak RSS {peak / 1024:.0f} MiB "
            f"(model built: {base / 1024:.0f} MiB)")
    if dev.type == "cuda":
        line += f"; CUDA peak allocated {torch.cuda.max_memory_allocated(dev) / 2**20:.0f} MiB"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
