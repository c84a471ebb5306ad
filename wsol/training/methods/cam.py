"""``cam``: plain classification training (cross-entropy on the image labels)."""
from __future__ import annotations

from torch import nn

from wsol.training.methods.base import TrainMethod, register_train_method, train_outputs


@register_train_method
class Cam(TrainMethod):
    name = "cam"
    description = "plain CAM training: cross-entropy on the image labels (Zhou et al. 2016)"

    def loss(self, model, images, labels):
        logits = train_outputs(model, images, labels)["logits"]
        return nn.functional.cross_entropy(logits.float(), labels), logits
