"""``acol``: Adversarial Complementary Learning (Zhang et al. 2018) as wsolevaluation trains it.

The model (an ``*_acol`` architecture) has two classifier heads on the same feature map.
Head A's map of the ground-truth class is min-max normalized; wherever it is >=
``threshold`` the feature is erased before head B. The loss is the sum of both heads'
cross-entropies. At evaluation the CAM is the element-wise max of the two heads'
normalized maps (the model does that). The erasing threshold is a model option.
"""
from __future__ import annotations

import dataclasses

from torch import nn

from wsol.training.methods.base import TrainMethod, register_train_method, train_outputs
from wsol.utils.options import option


def acol_loss(outputs, labels):
    """``CE(logits, y) + CE(logit_b, y)``: head A's and head B's (erased) logits."""
    ce = nn.functional.cross_entropy
    return ce(outputs["logits"].float(), labels) + ce(outputs["logit_b"].float(), labels)


@dataclasses.dataclass
class AcolOptions:
    threshold: float = option(0.7, help="erase the feature where head A's normalized class map is >= this",
                              min=0.0, max=1.0)


@register_train_method
class Acol(TrainMethod):
    name = "acol"
    description = "ACoL: a second head learns from features erased where the first head fires (Zhang et al. 2018)"
    architecture = "acol"
    Options = AcolOptions

    def model_options(self):
        return {"acol_drop_threshold": self.options.threshold}

    def loss(self, model, images, labels):
        out = train_outputs(model, images, labels)
        return acol_loss(out, labels), out["logits"]
