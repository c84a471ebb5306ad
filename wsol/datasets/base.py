"""Dataset records and the adapter registry.

Every adapter turns a folder on disk into a list of :class:`Sample` records. Boxes are
``x0, y0, x1, y1`` in original image pixels (floats as read); the protocol scales them to
224x224 later (``wsol.localize.boxes.scale_gt_boxes``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
import inspect
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from wsol.errors import DataError, WsolError
from wsol.utils.registry import Registry


@dataclass(frozen=True)
class MaskRef:
    """Where an image's ground-truth mask lives (read by ``wsol.datasets.masks``).

    paths: one grayscale image per object instance (their union is the foreground).
    ignore: a grayscale image of the region to leave out of pixel metrics ('' = none).
    fg_above: a pixel of an instance (or ignore) image is set iff its gray value (0-255)
        is strictly above this; 0.5 is wsolevaluation's rule (any non-zero value).
    """

    paths: Tuple[str, ...]
    ignore: str = ""
    fg_above: float = 0.5


@dataclass
class Sample:
    """One image of a split.

    image_id: path relative to the dataset's image root (keeps its extension); it names
        the image in every CSV and the exported heatmap ``<image_id>.npy``.
    path: absolute path of the image file ('' when the images are not at hand).
    label: class index (0-based).
    boxes: float array [n, 4] of x0, y0, x1, y1 in original pixels.
    width, height: original image size (0 when unknown until the image is read).
    mask: ground-truth mask files (None when the dataset has no masks).
    """

    image_id: str
    path: str
    label: int
    boxes: np.ndarray
    width: int = 0
    height: int = 0
    mask: Optional[MaskRef] = None

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
    declared_classes: the class count given by the user (``num_classes=N`` option), when
        the data has no class list.
    """

    name: str
    split: str
    root: str
    image_root: str
    samples: List[Sample]
    class_names: List[str] = field(default_factory=list)
    issues: List[DataIssue] = field(default_factory=list)
    declared_classes: Optional[int] = None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Sample:
        return self.samples[i]

    @property
    def has_masks(self) -> bool:
        """True when every sample has a ground-truth mask."""
        return bool(self.samples) and all(s.mask is not None for s in self.samples)

    @property
    def has_boxes(self) -> bool:
        """True when some sample has a ground-truth box."""
        return any(len(s.boxes) for s in self.samples)

    @property
    def num_classes(self) -> int:
        """The class count: declared, else the class list's length, else ``max(label) + 1``
        (only a lower bound then: see :attr:`classes_known`)."""
        if self.declared_classes:
            return int(self.declared_classes)
        if self.class_names:
            return len(self.class_names)
        return (max(s.label for s in self.samples) + 1) if self.samples else 0

    @property
    def classes_known(self) -> bool:
        """True when the class count comes from a class list or ``num_classes``; False when it
        is only inferred from the labels (e.g. wsolevaluation metadata, which has no class
        list: a split need not contain every class)."""
        return bool(self.declared_classes or self.class_names)

    def class_source(self) -> str:
        """Where :attr:`num_classes` comes from, in words (for error messages)."""
        if self.declared_classes:
            return "--dataset-option num_classes"
        if self.class_names:
            return "the dataset's class list"
        return "the largest label + 1"

    def limit(self, n: Optional[int]) -> "WsolDataset":
        """The first ``n`` samples (all when n is None)."""
        if n is None:
            return self
        return WsolDataset(self.name, self.split, self.root, self.image_root,
                           self.samples[:n], self.class_names, self.issues, self.declared_classes)


DatasetBuilder = Callable[..., WsolDataset]


#: Options every adapter takes (handled by :func:`build_dataset` itself).
COMMON_OPTIONS: Dict[str, str] = {
    "num_classes": "the class count when the data has no class list (labels must be below it)",
}

#: A tiny example of an adapter's own layout: ``write(folder) -> (root, split, options)``.
ExampleWriter = Callable[[str], tuple]


@dataclass
class DatasetInfo:
    """A registered adapter. ``options``: the ``--dataset-option`` keys the builder takes
    (besides :data:`COMMON_OPTIONS`), with a short help each. ``example``: writes a tiny
    dataset in the adapter's layout (for tests and demos; None when it cannot)."""

    name: str
    builder: DatasetBuilder
    description: str
    splits: tuple
    generates: bool = False  # the adapter creates its root (synthetic data)
    options: Dict[str, str] = field(default_factory=dict)
    example: Optional[ExampleWriter] = None

    def valid_options(self) -> List[str]:
        return sorted({**self.options, **COMMON_OPTIONS})

    @property
    def default_split(self) -> str:
        """'test' when the adapter has one, else its first split (imagenet: 'val')."""
        return "test" if "test" in self.splits else self.splits[0]


DATASETS: Registry[DatasetInfo] = Registry("dataset", [f"wsol.datasets.{m}" for m in
                                                       ("cub", "imagenet", "wsoleval", "openimages", "folder", "synthetic")])


def _keyword_options(fn: Callable) -> Dict[str, str]:
    """The builder's keyword parameters after ``root, split`` (no ``**kwargs``)."""
    params = list(inspect.signature(fn).parameters.values())[2:]
    return {p.name: "" for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def register_dataset(name: str, description: str, splits: tuple = ("train", "test"), generates: bool = False,
                     options: Optional[Dict[str, str]] = None, example: Optional[ExampleWriter] = None):
    """Decorator: register ``builder(root, split, **options) -> WsolDataset`` under ``name``.

    ``options``: the keys the builder accepts, with a help line each (default: the builder's
    keyword parameters); :func:`build_dataset` refuses any other key. ``example``: see
    :class:`DatasetInfo`.
    """

    def deco(fn: DatasetBuilder) -> DatasetBuilder:
        opts = dict(options) if options is not None else _keyword_options(fn)
        DATASETS.add(name, DatasetInfo(name, fn, description, splits, generates, opts, example))
        return fn

    return deco


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry of adapter ``name`` (unknown names list the closest ones)."""
    return DATASETS.get(name)


def default_split(name: str) -> str:
    """The split used when none is given: see :attr:`DatasetInfo.default_split`."""
    return dataset_info(name).default_split


def check_options(name: str, options: Dict[str, object]) -> None:
    """Refuse ``--dataset-option`` keys that adapter ``name`` does not take (one line
    listing the valid keys)."""
    info = dataset_info(name)
    valid = info.valid_options()
    bad = [k for k in options if k not in valid]
    if bad:
        raise WsolError(f"dataset '{name}' has no option {bad[0]!r} (valid --dataset-option keys: "
                        f"{', '.join(valid)})")


#: the most classes a dataset may declare (ImageNet-21k has 21,843; 10^9 would ask for terabytes of head)
MAX_NUM_CLASSES = 100_000


def _apply_num_classes(ds: WsolDataset, value: object) -> None:
    try:
        n = int(value)  # type: ignore[arg-type]
        if n != value and str(n) != str(value).strip():
            raise ValueError
    except (TypeError, ValueError):
        raise WsolError(f"--dataset-option num_classes takes a positive integer, not {value!r}") from None
    if n < 1 or n > MAX_NUM_CLASSES:
        raise WsolError(f"--dataset-option num_classes takes an integer in 1..{MAX_NUM_CLASSES} (more classes "
                        f"than any classification dataset has would only allocate a huge head), not {value!r}")
    if ds.class_names and len(ds.class_names) != n:
        raise DataError(f"num_classes={n} disagrees with the dataset's class list of {len(ds.class_names)} "
                        "classes (drop the option or fix the list)", path=ds.root)
    top = max((s.label for s in ds.samples), default=-1)
    if top >= n:
        bad = next(s for s in ds.samples if s.label == top)
        raise DataError(f"label {top} of {bad.image_id} is not below num_classes={n}", path=ds.root)
    ds.declared_classes = n


def list_datasets() -> List[DatasetInfo]:
    """Registered dataset adapters, sorted by name."""
    return [info for _, info in DATASETS.items()]


def build_dataset(name: str, root: str, split: str = "test", **options) -> WsolDataset:
    """Read split ``split`` of dataset adapter ``name`` from ``root``.

    ``options``: the adapter's own keys (``DatasetInfo.options``) and ``num_classes``;
    any other key is an error listing the valid ones.
    """
    info = dataset_info(name)
    check_options(name, options)
    if not root or (not os.path.isdir(root) and not info.generates):
        raise DataError("dataset root not found (pass --root DIR)", path=str(root))
    common = {k: options.pop(k) for k in list(options) if k in COMMON_OPTIONS and k not in info.options}
    ds = info.builder(root, split, **options)
    if common.get("num_classes") is not None:
        _apply_num_classes(ds, common["num_classes"])
    return ds


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
