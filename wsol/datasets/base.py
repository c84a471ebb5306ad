"""Dataset records and the adapter registry.

Every adapter turns a folder on disk into a list of :class:`Sample` records. Boxes are
``x0, y0, x1, y1`` in original image pixels (floats as read); the protocol scales them to
224x224 later (``wsol.localize.boxes.scale_gt_boxes``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, List, Optional

import numpy as np

from wsol.errors import DataError
from wsol.utils.registry import Registry


@dataclass
class Sample:
    """One image of a split.

    image_id: path relative to the dataset's image root (keeps its extension); it names
        the image in every CSV and the exported heatmap ``<image_id>.npy``.
    path: absolute path of the image file ('' when the images are not at hand).
    label: class index (0-based).
    boxes: float array [n, 4] of x0, y0, x1, y1 in original pixels.
    width, height: original image size (0 when unknown until the image is read).
    """

    image_id: str
    path: str
    label: int
    boxes: np.ndarray
    width: int = 0
    height: int = 0

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)


@dataclass
class DataIssue:
    """Something an adapter fixed or noticed while reading (not fatal), e.g. a clipped box.

    kind: a short tag ('box_clipped', 'class_list', 'unannotated_image', ...) that
        check-data counts by; message: one line; path/line: where (when known).
    """

    kind: str
    message: str
    path: str = ""
    line: Optional[int] = None
    image_id: str = ""

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}: " if self.path and self.line else (f"{self.path}: " if self.path else "")
        return f"{where}{self.message}"


@dataclass
class WsolDataset:
    """A split of a dataset: its samples, class names and where the images live.

    issues: non-fatal findings of the adapter (clipped boxes, guessed class list ...).
    """

    name: str
    split: str
    root: str
    image_root: str
    samples: List[Sample]
    class_names: List[str] = field(default_factory=list)
    issues: List[DataIssue] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Sample:
        return self.samples[i]

    @property
    def num_classes(self) -> int:
        if self.class_names:
            return len(self.class_names)
        return (max(s.label for s in self.samples) + 1) if self.samples else 0

    def limit(self, n: Optional[int]) -> "WsolDataset":
        """The first ``n`` samples (all when n is None)."""
        if n is None:
            return self
        return WsolDataset(self.name, self.split, self.root, self.image_root,
                           self.samples[:n], self.class_names, self.issues)


DatasetBuilder = Callable[..., WsolDataset]


@dataclass
class DatasetInfo:
    name: str
    builder: DatasetBuilder
    description: str
    splits: tuple
    generates: bool = False  # the adapter creates its root (synthetic data)


DATASETS: Registry[DatasetInfo] = Registry("dataset", [f"wsol.datasets.{m}" for m in
                                                       ("cub", "imagenet", "wsoleval", "folder", "synthetic")])


def register_dataset(name: str, description: str, splits: tuple = ("train", "test"), generates: bool = False):
    """Decorator: register ``builder(root, split, **options) -> WsolDataset`` under ``name``."""

    def deco(fn: DatasetBuilder) -> DatasetBuilder:
        DATASETS.add(name, DatasetInfo(name, fn, description, splits, generates))
        return fn

    return deco


def list_datasets() -> List[DatasetInfo]:
    """Registered dataset adapters, sorted by name."""
    return [info for _, info in DATASETS.items()]


def build_dataset(name: str, root: str, split: str = "test", **options) -> WsolDataset:
    """Read split ``split`` of dataset adapter ``name`` from ``root``."""
    info = DATASETS.get(name)
    if not root or (not os.path.isdir(root) and not info.generates):
        raise DataError("dataset root not found (pass --root DIR)", path=str(root))
    return info.builder(root, split, **options)


def check_image_id(image_id: str, path: str, line: Optional[int] = None) -> str:
    """Return ``image_id`` if it is a safe relative path, else raise DataError (file:line).

    Image ids are joined under the image root (to read) and under output folders
    (``--save-cams``); an empty id, an absolute path (``/x``, ``C:\\x``, ``\\\\host``), a
    ``..`` component or a control character could reach outside them, so it is refused.
    """
    if not image_id:
        raise DataError("empty image id", path=path, line=line)
    if any(ord(c) < 32 for c in image_id):
        raise DataError(f"image id {image_id!r} has a control character", path=path, line=line)
    parts = image_id.replace("\\", "/").split("/")
    if image_id.startswith(("/", "\\")) or (image_id[:1].isalpha() and image_id[1:2] == ":") or os.path.isabs(image_id):
        raise DataError(f"image id {image_id!r} is an absolute path; ids must be relative to the image root",
                        path=path, line=line)
    if ".." in parts:
        raise DataError(f"image id {image_id!r} leaves the image root ('..'); refused", path=path, line=line)
    return image_id


def require_file(path: str, what: str = "") -> str:
    """Return ``path`` or raise a one-line DataError naming it."""
    if not os.path.isfile(path):
        raise DataError(f"missing {what or 'file'}", path=path)
    return path
