"""What the four BAS nets share (Background Activation Suppression, Wu et al., CVPR 2022;
``docs/training.md``, "BAS"): a trunk to a 28x28 map ``x_loc``, a tail to the last map,
``classifier_cls`` (3x3 conv to 1024 + ReLU, 3x3 conv 1024 + ReLU, 1x1 conv to the classes)
on the tail's output with GAP = the logits (``score_1``), and ``classifier_loc`` (3x3 conv to
the classes + sigmoid) on ``x_loc``: the per-class foreground maps ``M`` [B, C, 28, 28].

The foreground map ``M_fg`` of an image is the mean of ``M`` over a set of classes: the
label's alone with ``topk == 1``, else the ``topk`` highest-scoring classes (the reference
uses 1 on ILSVRC; on CUB 200 for ResNet50/InceptionV3 and 80 for VGG16/MobileNetV1).

Training (``forward_train``) reproduces the reference model's training forward; what a
trainer does with it is in :meth:`BasNet.forward_train`'s docstring.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

#: the reference's topk (classes averaged into M_fg) per architecture, on CUB (200 classes)
CUB_TOPK = {"resnet50": 200, "inception_v3": 200, "vgg16": 80, "mobilenet_v1": 80}


def cls_head(in_channels: int, num_classes: int) -> nn.Sequential:
    """``classifier_cls``: 3x3 conv to 1024 + ReLU, 3x3 conv 1024 + ReLU, 1x1 conv to the classes."""
    return nn.Sequential(nn.Conv2d(in_channels, 1024, kernel_size=3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(1024, 1024, kernel_size=3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(1024, num_classes, kernel_size=1, padding=0))


def loc_head(in_channels: int, num_classes: int) -> nn.Sequential:
    """``classifier_loc``: 3x3 conv to the classes + sigmoid."""
    return nn.Sequential(nn.Conv2d(in_channels, num_classes, kernel_size=3, padding=1), nn.Sigmoid())


def xavier_init(modules) -> None:
    """The reference's init: convs Xavier-uniform with zero bias, batch norms (1, 0)."""
    for m in modules:
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def foreground_classes(scores: torch.Tensor, labels: Optional[torch.Tensor], topk: int) -> torch.Tensor:
    """[B, k] class indices averaged into M_fg: ``labels`` when ``topk == 1`` (the argmax of
    ``scores`` without labels), else the ``topk`` highest ``scores``, best first."""
    if topk == 1:
        return (scores.argmax(dim=1) if labels is None else labels).reshape(-1, 1)
    return scores.topk(min(int(topk), scores.shape[1]), dim=1, largest=True, sorted=True).indices


def foreground_map(loc_maps: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """M_fg [B, 1, h, w]: the mean of ``loc_maps`` [B, C, h, w] over each image's ``classes`` [B, k]."""
    idx = classes[:, :, None, None].expand(-1, -1, *loc_maps.shape[-2:])
    return loc_maps.gather(1, idx).mean(dim=1, keepdim=True)


def gap(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(2, 3))


class _Path(nn.Module):
    """The modules of a forward path, held (not copied) so that :func:`run_frozen` can swap
    their state; ``run`` computes the path with them."""

    def __init__(self, modules: Dict[str, nn.Module], run: Callable[[torch.Tensor, Dict[str, nn.Module]], torch.Tensor]):
        super().__init__()
        self.mods = nn.ModuleDict(modules)
        self._run = run

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, dict(self.mods.items()))


def run_frozen(modules: Dict[str, nn.Module], run: Callable[[torch.Tensor, Dict[str, nn.Module]], torch.Tensor],
               x: torch.Tensor) -> torch.Tensor:
    """``run(x, modules)`` as on throw-away copies of ``modules``, without copying them: the
    parameters enter detached (the result's gradient reaches ``x`` only, and no weight
    gradient is computed) and the buffers as clones (batch norms update the clones' running
    statistics, which are dropped). The numbers are those of ``copy.deepcopy`` copies (BAS's
    erase branch); the cost is the forward and the input gradient, without the copies' weight
    gradients."""
    path = _Path(modules, run)
    state = {n: p.detach() for n, p in path.named_parameters()}
    state.update({n: b.clone() for n, b in path.named_buffers()})
    return torch.func.functional_call(path, state, (x,))


def head_foreground(loc_head: nn.Sequential, x_loc: torch.Tensor, scores: torch.Tensor,
                    labels: Optional[torch.Tensor], topk: int) -> torch.Tensor:
    """M_fg [B, 1, h, w] of ``loc_head`` (``classifier_loc``: conv + sigmoid) for the ``topk``
    classes (:func:`foreground_classes`). With fewer classes than the head has, only their
    filters run: one grouped convolution over the batch (image b's input with its own
    classes' filters), the same sums as the full head's at a k/C share of its cost."""
    classes = foreground_classes(scores, labels, topk)
    b, k = classes.shape
    conv = loc_head[0]
    if k >= conv.out_channels:
        return foreground_map(loc_head(x_loc), classes)
    flat = classes.reshape(-1)
    h, w = x_loc.shape[-2:]
    out = F.conv2d(x_loc.reshape(1, -1, h, w), conv.weight[flat], conv.bias[flat], padding=conv.padding, groups=b)
    return torch.sigmoid(out.view(b, k, h, w)).mean(dim=1, keepdim=True)


def pool_to(m: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``m`` average-pooled onto ``like``'s grid: the reference's ``avg_pool2d(m, 2)`` from
    28x28 to 14x14; unchanged on the same grid; adaptive pooling otherwise."""
    h, w = like.shape[-2:]
    if m.shape[-2:] == (h, w):
        return m
    k = m.shape[-1] // w
    if k > 1 and m.shape[-2:] == (h * k, w * k):
        return F.avg_pool2d(m, k)
    return F.adaptive_avg_pool2d(m, (h, w))


def bas_train_outputs(x_loc: torch.Tensor, path: Callable[[torch.Tensor, Dict[str, nn.Module]], torch.Tensor],
                      mods: Dict[str, nn.Module], loc_head: nn.Sequential, labels: torch.Tensor, topk: int = 1,
                      clamp: float = 1.0) -> Dict[str, torch.Tensor]:
    """BAS's training forward from ``x_loc`` (the map ``loc_head`` reads), per image b:

    - ``logits`` = ``score_1`` [B, C]: GAP of ``F = path(x_loc, mods)`` (the tail, if any,
      then ``classifier_cls``);
    - ``m_fg`` [B, 1, h, w]: the foreground map of ``loc_head`` for the ``topk`` classes (1: the label);
    - ``logits_fg`` = ``score_2`` [B, C]: GAP of ``F`` times ``m_fg`` pooled onto F's grid
      (:func:`pool_to`: the reference's ``avg_pool2d(m_fg, 2)``);
    - ``s`` [B]: ``score_1[b, label]``, detached; ``s_bg`` [B]: the label's logit of the
      erase branch: ``path`` on frozen copies of ``mods`` (the reference deep-copies them at
      each call: its gradient reaches ``m_fg``, i.e. ``loc_head`` and, through its input,
      the trunk, but not ``mods``; their batch norms update only the copies; :func:`run_frozen` gives the same numbers without copying and
      without the copies' weight gradients) on ``x_loc.detach() * (1 - m_fg)``, then GAP;
    - ``bas`` [B] = ``relu(s_bg) / (relu(s) + 1e-8)``, set to ``clamp`` (1; VGG16's
      reference: 0) where ``relu(s_bg) > relu(s)``;
    - ``area`` [B]: the spatial mean of ``m_fg``.
    """
    fmap = path(x_loc, mods)
    logits = gap(fmap)
    m_fg = foreground_map(loc_head(x_loc), foreground_classes(logits, labels, topk))
    rows = torch.arange(x_loc.shape[0], device=x_loc.device)
    s = logits[rows, labels].detach()
    s_bg = gap(run_frozen(mods, path, x_loc.detach() * (1 - m_fg)))[rows, labels]
    s_pos, s_bg_pos = F.relu(s), F.relu(s_bg)
    bas = s_bg_pos / (s_pos + 1e-8)
    bas = torch.where(s_bg_pos > s_pos, torch.full_like(bas, clamp), bas)
    logits_fg = gap(fmap * pool_to(m_fg, fmap))
    return {"logits": logits, "logits_fg": logits_fg, "m_fg": m_fg, "s": s, "s_bg": s_bg, "bas": bas,
            "area": m_fg.flatten(1).mean(dim=1)}


class BasNet(nn.Module):
    """Base of the BAS nets. Subclasses build the trunk, ``classifier_cls`` and
    ``classifier_loc`` and implement :meth:`trunk`, :meth:`tail_modules` and :meth:`tail`."""

    arch: str = ""
    #: the reference's ``bas`` value where the erased score beats the full one (VGG16: 0)
    bas_clamp: float = 1.0

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """Input -> ``x_loc``, the 28x28 map ``classifier_loc`` reads."""
        raise NotImplementedError

    def tail_modules(self) -> Dict[str, nn.Module]:
        """The modules between ``x_loc`` and ``classifier_cls`` (frozen copies in the erase branch)."""
        raise NotImplementedError

    def tail(self, x: torch.Tensor, mods: Dict[str, nn.Module]) -> torch.Tensor:
        """``x_loc`` -> the last feature map, through ``mods`` (:meth:`tail_modules` or copies)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ inference
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def class_scores_map(self, x_loc: torch.Tensor) -> torch.Tensor:
        """``classifier_cls`` output [B, C, h, w] (GAP of it = the logits)."""
        return self.classifier_cls(self.tail(x_loc, self.tail_modules()))

    def forward_logits(self, x_loc: torch.Tensor) -> torch.Tensor:
        return gap(self.class_scores_map(x_loc))

    def loc_maps(self, x_loc: torch.Tensor) -> torch.Tensor:
        """M [B, C, 28, 28]: ``classifier_loc``'s sigmoid map of every class."""
        return self.classifier_loc(x_loc)

    def foreground(self, x_loc: torch.Tensor, scores: torch.Tensor, labels: Optional[torch.Tensor],
                   topk: int) -> torch.Tensor:
        """M_fg [B, 1, h, w] of the ``topk`` classes (:func:`head_foreground`)."""
        return head_foreground(self.classifier_loc, x_loc, scores, labels, topk)

    def classifier_layer(self) -> nn.Module:
        return self.classifier_cls[4]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_logits(self.forward_features(x))

    # ------------------------------------------------------------------ training
    def _path(self, x: torch.Tensor, mods: Dict[str, nn.Module]) -> torch.Tensor:
        """The tail and ``classifier_cls`` through ``mods`` (the live modules or frozen copies)."""
        return mods["classifier_cls"](self.tail(x, mods))

    def forward_train(self, x: torch.Tensor, labels: torch.Tensor, topk: int = 1) -> Dict[str, torch.Tensor]:
        """The reference model's training forward (``model(x, label, topk)``):
        :func:`bas_train_outputs` from the trunk's ``x_loc`` through the tail and
        ``classifier_cls`` (F on the 14x14 grid, ``m_fg`` on 28x28) with ``bas_clamp``.

        The reference trainer's loss: ``CE(logits) + alpha * CE(logits_fg) + mean(bas) +
        beta * mean(area)`` (alpha, beta per dataset and architecture: CUB ResNet50 0.5, 1.5);
        SGD with Nesterov momentum 0.9, weight decay 5e-4 on every group, groups by name:
        trunk weights 1x lr, trunk biases 2x, ``classifier`` weights 10x, biases 20x.
        """
        mods = {**self.tail_modules(), "classifier_cls": self.classifier_cls}
        return bas_train_outputs(self.trunk(x), self._path, mods, self.classifier_loc, labels, topk, self.bas_clamp)
