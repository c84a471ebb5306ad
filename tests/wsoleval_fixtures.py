"""The wsolevaluation model fixtures in ``../shared/fixtures/wsoleval-models``: checkpoints
rebuilt from their key lists by the fixtures' fill rule and saved the way the reference
trainer saves them (``{'architecture', 'epoch', 'state_dict', 'optimizer'}``)."""
from __future__ import annotations

import json
import math
import os
import zlib
from typing import Dict, List, Tuple

import torch

FIXTURES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "fixtures",
                                        "wsoleval-models"))
ARCHS = ("vgg16", "inception_v3", "resnet50")
METHODS = ("cam", "has", "cutmix", "acol", "spg", "adl")
# (architecture, method) -> the wsol backbone its checkpoint loads into
BACKBONE = {("vgg16", "acol"): "vgg16_acol", ("resnet50", "acol"): "resnet50_acol",
            ("inception_v3", "acol"): "inception_v3_acol", ("vgg16", "spg"): "vgg16_spg",
            ("resnet50", "spg"): "resnet50_spg", ("inception_v3", "spg"): "inception_v3_spg"}
for _a, _b in (("vgg16", "vgg16_gap"), ("resnet50", "resnet50_s1"), ("inception_v3", "inception_v3_gap")):
    for _m in ("cam", "has", "cutmix", "adl"):
        BACKBONE[(_a, _m)] = _b


def key_list(arch: str, method: str) -> List[Tuple[str, List[int]]]:
    with open(os.path.join(FIXTURES, f"{arch}_{method}.json")) as f:
        return [(k, list(s)) for k, s in json.load(f)["keys"]]


def filled_state_dict(keys: List[Tuple[str, List[int]]]) -> Dict[str, torch.Tensor]:
    """The fixtures' fill rule, one generator per entry seeded with crc32(name)."""
    names = {k for k, _ in keys}
    out: Dict[str, torch.Tensor] = {}
    for name, shape in keys:
        g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
        stem = name.rsplit(".", 1)[0]
        if name.endswith(".num_batches_tracked"):
            out[name] = torch.zeros(shape, dtype=torch.int64)
        elif name.endswith(".running_mean"):
            out[name] = 0.1 * torch.randn(shape, generator=g)
        elif name.endswith(".running_var"):
            out[name] = 0.5 + torch.rand(shape, generator=g)
        elif name.endswith(".weight") and f"{stem}.running_mean" in names:
            out[name] = 0.5 + torch.rand(shape, generator=g)
        elif len(shape) == 1:
            out[name] = 0.05 * torch.randn(shape, generator=g)
        else:
            out[name] = torch.randn(shape, generator=g) * math.sqrt(2.0 / math.prod(shape[1:]))
    return out


def write_reference_checkpoint(arch: str, method: str, path: str) -> None:
    """Save the filled checkpoint as wsolevaluation's trainer does (no ``module.`` prefix)."""
    sd = filled_state_dict(key_list(arch, method))
    torch.save({"architecture": arch, "epoch": 10, "state_dict": sd, "optimizer": {"state": {}, "param_groups": []}},
               path)
