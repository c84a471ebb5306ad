"""``adl``: Attention-based Dropout Layer (Choe & Shim 2019) as wsolevaluation trains it.

The model (an ADL variant of the architecture) holds parameter-free ADL layers where the
reference places them; in training mode each either drops the most-attended region (channel
mean >= ``threshold`` x its max, with probability ``drop_rate``) or multiplies by the
sigmoid importance map; at evaluation they are the identity. The loss is plain
cross-entropy; the hyperparameters are model options.
"""
from __future__ import annotations

import dataclasses

from torch import nn

from wsol.training.methods.base import TrainMethod, register_train_method, train_outputs
from wsol.utils.options import option


@dataclasses.dataclass
class AdlOptions:
    drop_rate: float = option(0.75, help="probability of the drop mask (else the importance map)", min=0.0, max=1.0)
    threshold: float = option(0.9, help="drop where the channel-mean attention >= this x its max", min=0.0, max=1.0)


@register_train_method
class Adl(TrainMethod):
    name = "adl"
    description = "ADL: drop the most-attended region or stress it, at random, inside the net (Choe & Shim 2019)"
    architecture = "adl"
    Options = AdlOptions

    def model_options(self):
        return {"adl_drop_rate": self.options.drop_rate, "adl_drop_threshold": self.options.threshold}

    def loss(self, model, images, labels):
        logits = train_outputs(model, images, labels)["logits"]
        return nn.functional.cross_entropy(logits.float(), labels), logits
