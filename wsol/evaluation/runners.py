"""What turns a loader's batch into maps for the inference loop: the model
(:class:`ModelRunner`: forward pass and CAM method, through the speed options of
:class:`~wsol.evaluation.fastpath.FastPath`) or heatmap files saved by any tool
(:class:`HeatmapRunner`, ``wsol score``). Both have one small interface:

- ``normalized``: whether the maps come normalized on the 224 grid (heatmaps) or raw (the
  localizer then upsamples and normalizes them);
- ``device``; ``prepare()`` before the first batch; ``to_device(data)``;
- ``run(data, labels, timer, batch_size) -> RunOutput``: the maps, and the logits and top-5
  classes where the runner knows them (None: no predictions), and a status per image;
- ``logits_fn()``: ``batch -> logits`` for perturbed forward passes (None without a model).

The loaders they read from yield ``(data, labels, indices, sizes, errors)`` from a view with
``samples`` and ``positions`` (each sample's place in the whole dataset).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from wsol.datasets.base import Sample
from wsol.datasets.wsoleval import image_size
from wsol.errors import DataError, WsolError
from wsol.evaluation.fastpath import FastPath
from wsol.evaluation.timing import StageTimer
from wsol.localize.maps import MAP_SIZE
from wsol.utils.io import confined_path, load_npy


@dataclass
class RunOutput:
    """A batch's maps (raw [B, h, w] array, or a list of normalized maps) with what the runner
    knows of the classes."""

    maps: Sequence[np.ndarray]
    logits: Optional[np.ndarray]
    top5: Optional[np.ndarray]
    status: List[str]


def _statuses(cams: np.ndarray, logits: np.ndarray) -> List[str]:
    """'ok', or why an image's map will be all zeros (non-finite map or logits)."""
    out = []
    for c, l in zip(cams, logits):
        out.append("nonfinite_map" if not np.isfinite(c).all() else
                   "nonfinite_logits" if not np.isfinite(l).all() else "ok")
    return out


class ModelRunner:
    """The backbone and the CAM method: raw maps, logits and top-5 classes of a batch.

    ``fast``: the run's speed options (default: plain fp32 on the backbone's device). The
    caller holds the backbone in :func:`wsol.evaluation.loop.inference_context`."""

    normalized = False

    def __init__(self, backbone: torch.nn.Module, method, fast: Optional[FastPath] = None):
        self.backbone, self.method = backbone, method
        self.fast = fast if fast is not None else FastPath(None, next(backbone.parameters()).device)
        self.device = self.fast.device

    def prepare(self) -> None:
        self.fast.prepare(self.backbone)

    def to_device(self, data) -> torch.Tensor:
        return self.fast.to_device(data)

    def run(self, images: torch.Tensor, labels: torch.Tensor, timer: StageTimer, batch_size: int) -> RunOutput:
        """One batch through the model: raw maps, logits and top-k classes as numpy."""
        n = len(images)
        try:
            # The trunk never builds a graph; gradient methods differentiate the head alone
            # on a leaf copy of the features (wsol.cams.gradcam.head_gradients).
            with timer.stage("forward", n), torch.no_grad(), self.fast.autocast():
                feats, logits = self.fast.forward(images)
            with timer.stage("cam", n), torch.no_grad(), self.fast.autocast():
                cams = self.method(self.backbone, images, feats, logits, labels)
                # Only the raw low-res maps leave the device; the exact OpenCV upsample +
                # sweep run in the CPU pool (why not on the GPU: wsol.evaluation.fastpath).
                k = min(5, logits.shape[1])
                cams_np = cams.detach().float().cpu().numpy()
                logits_np = logits.detach().float().cpu().numpy()
                top = logits.detach().float().topk(k, dim=1).indices.cpu().numpy()
        except torch.cuda.OutOfMemoryError:
            raise WsolError(f"CUDA out of memory at --batch-size {batch_size}; "
                            f"try --batch-size {max(1, batch_size // 2)}") from None
        return RunOutput(cams_np, logits_np, top, _statuses(cams_np, logits_np))

    def logits_fn(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """``batch -> logits`` through the run's forward path (its autocast included)."""
        def logits(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad(), self.fast.autocast():
                return self.fast.forward(x)[1]
        return logits


def load_heatmap(path: str) -> np.ndarray:
    """Read one exported heatmap and check it is a finite 224x224 array in [0, 1]."""
    if not os.path.isfile(path):
        raise DataError("missing heatmap", path=path)
    m = load_npy(path, "heatmap")
    if m.shape != (MAP_SIZE, MAP_SIZE):
        raise DataError(f"heatmap must be {MAP_SIZE}x{MAP_SIZE}, got {m.shape}", path=path)
    if m.dtype.kind not in "fiu":
        raise DataError(f"heatmap must hold numbers, not {m.dtype}", path=path)
    if not np.isfinite(m).all() or m.min() < 0 or m.max() > 1:
        raise DataError("heatmap values must be finite and in [0, 1]", path=path)
    # kept in the precision it comes in: float64 stays float64 (quantize works in float64)
    return m if m.dtype.kind == "f" else m.astype(np.float64)


class HeatmapView(torch.utils.data.Dataset):
    """``<folder>/<image_id>.npy`` of each sample: (map or None, label, index, (width, height),
    error). The size is the annotated one (the boxes are scaled by it; an image without boxes
    needs none); a file that cannot be used gives None and the one-line reason."""

    def __init__(self, samples: Sequence[Sample], folder: str, positions: Optional[Sequence[int]] = None):
        self.samples, self.folder = list(samples), folder
        self.positions = list(range(len(self.samples))) if positions is None else list(positions)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Tuple[Optional[np.ndarray], int, int, Tuple[int, int], str]:
        s = self.samples[i]
        try:
            m = load_heatmap(confined_path(self.folder, s.image_id, ".npy"))
            size = image_size(s) if len(s.boxes) else (1, 1)
        except DataError as e:
            return None, s.label, i, (0, 0), str(e)
        return m, s.label, i, size, ""


def collate_heatmaps(batch):
    """(maps as a list: each kept in its own dtype, labels [B], indices, sizes, errors)."""
    return ([b[0] for b in batch], torch.tensor([b[1] for b in batch], dtype=torch.int64),
            [b[2] for b in batch], [b[3] for b in batch], [b[4] for b in batch])


def heatmap_loader(samples: Sequence[Sample], folder: str, batch_size: int) -> torch.utils.data.DataLoader:
    """The loader over the heatmaps of ``samples``, in order."""
    return torch.utils.data.DataLoader(HeatmapView(samples, folder), batch_size=max(int(batch_size), 1),
                                       shuffle=False, num_workers=0, collate_fn=collate_heatmaps)


class HeatmapRunner:
    """Heatmaps read from files: the maps as they are (already normalized), no predictions."""

    normalized = True
    device = torch.device("cpu")

    def prepare(self) -> None:
        pass

    def to_device(self, data):
        return data

    def run(self, maps: List[Optional[np.ndarray]], labels: torch.Tensor, timer: StageTimer,
            batch_size: int) -> RunOutput:
        return RunOutput(maps, None, None, ["ok"] * len(maps))

    def logits_fn(self) -> None:
        return None
