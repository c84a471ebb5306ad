"""A procedurally drawn WSOL dataset written in the exact CUB-200-2011 layout.

Each class is one combination of colour, texture and shape (``Red_Striped_Star``,
``Orange_Dotted_Disc`` ...). Every image holds exactly one object of its class, drawn at a
random scale and a uniformly random position over a cluttered background, plus 1-3 small
distractor shapes of another shape, texture and hue that match no class. The ground-truth
box is the tight box of the object's own pixels.

Layout written by :func:`make_synthetic` (space separated, ids from 1, as CUB)::

    images/001.Red_Striped_Star/Red_Striped_Star_0001.jpg
    images.txt               <id> <class folder>/<file>
    image_class_labels.txt   <id> <class 1..N>
    classes.txt              <k> <NNN.Name>
    train_test_split.txt     <id> <1 = train | 0 = test>
    bounding_boxes.txt       <id> <x> <y> <w> <h>   (floats, x + w = one past the last column)
    segmentations/001.Red_Striped_Star/Red_Striped_Star_0001.png
                             the object's exact pixels (255) on 0, as CUB's segmentation archive
    wsol_synthetic.json      generation parameters (the cache stamp)

Generation is deterministic: the same parameters give byte-identical files (image k of
class c draws from ``numpy.random.default_rng([seed, c, k])``; JPEG quality 95).
"""
from __future__ import annotations

import colorsys
import dataclasses
import json
import logging
import math
import os
import shutil
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from wsol.datasets.base import WsolDataset, register_dataset
from wsol.errors import DataError
from wsol.utils.io import write_bytes_atomic
from wsol.utils.options import Option, option, options_of
from wsol.utils.rules import MAX_SEED

log = logging.getLogger(__name__)

#: Bump when the drawing changes, so cached folders made by older code are regenerated.
GENERATOR_VERSION = 2  # 2: segmentations/ masks
STAMP_NAME = "wsol_synthetic.json"
JPEG_QUALITY = 95
#: Each image's width and height are drawn uniformly within +-SIZE_JITTER of image_size.
SIZE_JITTER = 0.18
#: Tight object box area as a share of the image area (asserted for every image).
MIN_AREA, MAX_AREA = 0.05, 0.40
#: A distractor's box is at most this share of the object's box area.
MAX_DISTRACTOR_AREA = 0.30

SHAPES = ("Star", "Disc", "Triangle", "Cross", "Ring", "Square", "Hexagon", "Crescent")
TEXTURES = ("Striped", "Dotted", "Solid", "Checkered")
HUES = (("Red", 0.0), ("Orange", 28.0), ("Yellow", 55.0), ("Green", 120.0),
        ("Cyan", 180.0), ("Blue", 225.0), ("Purple", 275.0), ("Pink", 320.0))

#: the most images the synthetic generator writes in one set
MAX_IMAGES = 100_000
#: the most classes: every (shape, texture, hue) combination
MAX_CLASSES = len(SHAPES) * len(TEXTURES) * len(HUES)


@dataclasses.dataclass
class SyntheticParams:
    """The generator's parameters, declared once: ``wsol make-synthetic``'s flags, the
    ``--dataset-option`` / suite ``options`` of ``--dataset synthetic`` and
    :func:`make_synthetic`'s arguments are all checked by these declarations."""

    n_classes: int = option(8, help="number of classes", min=1, max=MAX_CLASSES, flag="--classes", metavar="N")
    n_train_per_class: int = option(40, help="train images per class", min=0, max=MAX_IMAGES,
                                    flag="--train-per-class", metavar="N")
    n_test_per_class: int = option(15, help="test images per class", min=0, max=MAX_IMAGES,
                                   flag="--test-per-class", metavar="N")
    seed: int = option(0, help="random seed", min=0, max=MAX_SEED)


#: one side of the nominal image size (``image_size`` is W, H: two of these)
IMAGE_SIDE = dataclasses.replace(Option(help="nominal image side in pixels", kind="int", min=32, max=4096),
                                 name="synthetic image_size")


def param_options() -> Dict[str, Option]:
    """The declared generator parameters, each named ``synthetic <name>`` in its refusal."""
    return {k: dataclasses.replace(o, name=f"synthetic {k}", flag=o.flag_name())
            for k, o in options_of(SyntheticParams).items()}


#: the generator's defaults: the declared ones and the nominal image size (W, H)
DEFAULTS: Dict[str, Any] = {**{k: o.default for k, o in options_of(SyntheticParams).items()},
                            "image_size": (270, 230)}
_TXT_FILES = ("images.txt", "image_class_labels.txt", "classes.txt",
              "train_test_split.txt", "bounding_boxes.txt")

ClassSpec = Tuple[int, int, int]  # (shape, texture, hue) indices


# ----------------------------------------------------------------------------- classes
def class_specs(n_classes: int) -> List[ClassSpec]:
    """The (shape, texture, hue) indices of classes 0..n-1 (fixed, independent of seed).

    Picked greedily so that each new class differs as much as possible from all earlier
    ones (shape weighs most, then hue, then texture; ties go to the least used values):
    the default 8 classes have 8 different shapes, 8 different hues and each texture twice.
    """
    total = len(SHAPES) * len(TEXTURES) * len(HUES)
    if not 1 <= n_classes <= total:
        raise ValueError(f"n_classes must be in 1..{total}, got {n_classes}")
    cands = np.array([(s, t, h) for s in range(len(SHAPES)) for t in range(len(TEXTURES))
                      for h in range(len(HUES))])
    mind = np.full(len(cands), 1 << 20)  # min and sum of distances to the picked classes
    sumd = np.zeros(len(cands), np.int64)
    picked: List[ClassSpec] = []
    for _ in range(n_classes):
        i = int(np.argmax(mind * (1 << 20) + sumd))  # first best wins ties
        picked.append(tuple(int(v) for v in cands[i]))  # type: ignore[arg-type]
        d = 4 * (cands[:, 0] != cands[i, 0]) + (cands[:, 1] != cands[i, 1]) \
            + 2 * (cands[:, 2] != cands[i, 2])
        mind, sumd = np.minimum(mind, d), sumd + d
        mind[i] = -1  # never again
    return picked


def class_name(spec: ClassSpec) -> str:
    """``<Hue>_<Texture>_<Shape>``, e.g. ``Red_Striped_Star``."""
    s, t, h = spec
    return f"{HUES[h][0]}_{TEXTURES[t]}_{SHAPES[s]}"


def class_names(n_classes: int) -> List[str]:
    return [class_name(c) for c in class_specs(n_classes)]


# ----------------------------------------------------------------------------- drawing
def _rgb(hue_deg: float, sat: float, val: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb((hue_deg % 360.0) / 360.0, sat, val),
                    np.float32) * 255.0


def _shape_mask(rng: np.random.Generator, shape: int, w: int, h: int) -> np.ndarray:
    """A filled shape drawn into a (h, w) canvas (bool), roughly filling it."""
    m = np.zeros((h, w), np.uint8)
    cx, cy, rx, ry = (w - 1) / 2.0, (h - 1) / 2.0, (w - 1) / 2.0, (h - 1) / 2.0
    rot = rng.uniform(-math.pi, math.pi)
    name = SHAPES[shape]

    def poly(angles: np.ndarray, radii: np.ndarray, angle0: float) -> None:
        a = angles + angle0
        pts = np.stack([cx + rx * radii * np.cos(a), cy + ry * radii * np.sin(a)], 1)
        cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)

    if name == "Star":
        k = np.arange(10)
        poly(k * math.pi / 5, np.where(k % 2 == 0, 1.0, rng.uniform(0.5, 0.6)), rot)
    elif name == "Triangle":
        poly(np.arange(3) * 2 * math.pi / 3, np.ones(3), rot)
    elif name == "Hexagon":
        poly(np.arange(6) * math.pi / 3, np.ones(6), rng.uniform(-0.3, 0.3))
    elif name == "Square":  # small tilt only, so it stays a square and not a diamond
        t = rng.uniform(-0.25, 0.25)
        poly(np.arange(4) * math.pi / 2 + math.pi / 4,
             np.full(4, math.sqrt(2) / (math.cos(t) + abs(math.sin(t)))), t)
    elif name == "Cross":
        a = rng.uniform(0.32, 0.42)  # half-width of the bars, relative to the half-size
        rect = np.array([[-1, -a], [1, -a], [1, a], [-1, a]])
        t = rng.uniform(-0.3, 0.3)
        rotm = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
        for r in (rect, rect[:, ::-1]):
            p = (r / math.sqrt(1 + a * a)) @ rotm.T
            pts = np.stack([cx + rx * p[:, 0], cy + ry * p[:, 1]], 1)
            cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
    else:  # Disc, Ring, Crescent: ellipses
        c, ax = (int(round(cx)), int(round(cy))), (int(rx), int(ry))
        cv2.ellipse(m, c, ax, 0, 0, 360, 1, -1)
        if name == "Ring":
            f = rng.uniform(0.4, 0.5)
            cv2.ellipse(m, c, (int(rx * f), int(ry * f)), 0, 0, 360, 0, -1)
        elif name == "Crescent":
            d = rng.uniform(0.5, 0.65)
            off = (int(round(cx + rx * d * math.cos(rot))), int(round(cy + ry * d * math.sin(rot))))
            cv2.ellipse(m, off, (int(rx * 0.75), int(ry * 0.75)), 0, 0, 360, 0, -1)
    return m.astype(bool)


def _texture(rng: np.random.Generator, texture: int, hue_deg: float, h: int, w: int
             ) -> np.ndarray:
    """A (h, w, 3) float RGB fill of the given texture in the given hue, softly lit."""
    hue = hue_deg + rng.uniform(-6, 6)
    a = _rgb(hue, rng.uniform(0.75, 1.0), rng.uniform(0.8, 1.0))
    name = TEXTURES[texture]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = rng.uniform(0, math.pi)
    u, v = xx * math.cos(t) + yy * math.sin(t), -xx * math.sin(t) + yy * math.cos(t)
    size = max(h, w)
    if name == "Striped":
        b = _rgb(hue, rng.uniform(0.6, 0.9), rng.uniform(0.15, 0.3))
        period = max(6.0, size * rng.uniform(0.12, 0.2))
        sel = ((u / period + rng.uniform()) % 1.0) < 0.5
    elif name == "Dotted":
        b = _rgb(hue, rng.uniform(0.0, 0.15), 1.0)
        sp = max(7.0, size * rng.uniform(0.14, 0.2))
        du = (u / sp + rng.uniform()) % 1.0 - 0.5
        dv = (v / sp + rng.uniform()) % 1.0 - 0.5
        sel = du * du + dv * dv < rng.uniform(0.28, 0.36) ** 2
    elif name == "Checkered":
        b = _rgb(hue, rng.uniform(0.15, 0.3), 1.0)
        sp = max(6.0, size * rng.uniform(0.12, 0.18))
        sel = (np.floor(u / sp) + np.floor(v / sp)) % 2 == 1
    else:  # Solid
        b, sel = a, np.zeros((h, w), bool)
    img = np.where(sel[..., None], b, a)
    g = rng.uniform(0, 2 * math.pi)  # soft directional lighting
    ramp = (xx * math.cos(g) + yy * math.sin(g)) / max(size, 1)
    ramp = 0.8 + 0.25 * (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    return img * ramp[..., None]


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth muted colour noise with random lines and blurred blobs (float RGB)."""
    gh, gw = int(rng.integers(3, 7)), int(rng.integers(3, 7))
    grid = np.stack([_rgb(rng.uniform(0, 360), rng.uniform(0.05, 0.45), rng.uniform(0.3, 0.9))
                     for _ in range(gh * gw)]).reshape(gh, gw, 3)
    img = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(int(rng.integers(2, 7))):  # blobs
        c = tuple(float(x) for x in _rgb(rng.uniform(0, 360), rng.uniform(0.1, 0.5),
                                         rng.uniform(0.3, 0.9)))
        cen = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        ax = (int(rng.integers(w // 20 + 2, w // 5 + 3)), int(rng.integers(h // 20 + 2, h // 5 + 3)))
        cv2.ellipse(img, cen, ax, float(rng.uniform(0, 180)), 0, 360, c, -1)
    img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(2.0, 4.0)))
    for _ in range(int(rng.integers(4, 13))):  # lines
        c = tuple(float(x) for x in _rgb(rng.uniform(0, 360), rng.uniform(0.0, 0.6),
                                         rng.uniform(0.2, 1.0)))
        p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.line(img, p0, p1, c, int(rng.integers(1, 4)), cv2.LINE_AA)
    return img


def mask_box(mask: np.ndarray) -> Tuple[int, int, int, int]:
    """Tight box ``(x, y, w, h)`` of a bool mask: columns x..x+w-1, rows y..y+h-1."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        raise ValueError("empty mask")
    x0, y0 = int(xs.min()), int(ys.min())
    return x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1


def _cropped_shape(rng: np.random.Generator, shape: int, w: int, h: int
                   ) -> Optional[np.ndarray]:
    """A shape's mask cropped to its tight box (None if nothing was drawn: tiny sizes)."""
    m = _shape_mask(rng, shape, max(w, 3), max(h, 3))
    if not m.any():
        return None
    x, y, bw, bh = mask_box(m)
    return m[y:y + bh, x:x + bw]


def _paste(img: np.ndarray, m: np.ndarray, fill: np.ndarray, x: int, y: int) -> None:
    h, w = m.shape
    region = img[y:y + h, x:x + w]
    region[m] = fill[m]


def render_sample(rng: np.random.Generator, label: int, n_classes: int = DEFAULTS["n_classes"],
                  image_size: Sequence[int] = DEFAULTS["image_size"],
                  size: Optional[Tuple[int, int]] = None
                  ) -> Tuple[np.ndarray, np.ndarray, int]:
    """Draw one image of class ``label`` (0-based).

    Returns ``(image, mask, label)``: image is uint8 RGB (H, W, 3); mask is the bool
    (H, W) mask of the object's pixels, whose tight box is the ground truth. The size is
    ``size`` = (width, height) when given, else drawn within +-SIZE_JITTER of image_size.
    """
    specs = class_specs(n_classes)
    if not 0 <= label < n_classes:
        raise ValueError(f"label {label} not in 0..{n_classes - 1}")
    if size is None:
        W = int(round(image_size[0] * rng.uniform(1 - SIZE_JITTER, 1 + SIZE_JITTER)))
        H = int(round(image_size[1] * rng.uniform(1 - SIZE_JITTER, 1 + SIZE_JITTER)))
    else:
        W, H = int(size[0]), int(size[1])
    img = _background(rng, H, W)
    shape, texture, hue = specs[label]
    obj = _draw_object(rng, shape, W, H)
    oh, ow = obj.shape
    ox, oy = int(rng.integers(0, W - ow + 1)), int(rng.integers(0, H - oh + 1))
    # Distractors: drawn before (under) the object.
    for _ in range(int(rng.integers(1, 4))):
        _draw_distractor(rng, img, set(specs), specs[label], (ox, oy, ow, oh))
    _paste(img, obj, _texture(rng, texture, HUES[hue][1], oh, ow), ox, oy)
    img += rng.normal(0.0, 3.0, img.shape).astype(np.float32)  # sensor noise
    mask = np.zeros((H, W), bool)
    mask[oy:oy + oh, ox:ox + ow] = obj
    x, y, w, h = mask_box(mask)
    assert MIN_AREA <= w * h / (W * H) <= MAX_AREA, (w, h, W, H)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), mask, label


def _draw_object(rng: np.random.Generator, shape: int, W: int, H: int) -> np.ndarray:
    """The object's bool mask, cropped to its tight box: a shape resampled until the box's
    area is within MIN_AREA..MAX_AREA of the W x H image."""
    for _ in range(100):
        frac = math.exp(rng.uniform(math.log(0.06), math.log(0.32)))
        aspect = math.exp(rng.uniform(-0.3, 0.3))  # w / h
        bw = int(round(math.sqrt(frac * W * H * aspect)))
        bh = int(round(math.sqrt(frac * W * H / aspect)))
        if bw > W or bh > H:
            continue
        obj = _cropped_shape(rng, shape, bw, bh)
        if obj is None:
            continue
        oh, ow = obj.shape
        if MIN_AREA <= oh * ow / (W * H) <= MAX_AREA:
            return obj
    raise RuntimeError("could not draw an object of the required size")  # pragma: no cover


def _draw_distractor(rng: np.random.Generator, img: np.ndarray, taken: set, spec: Tuple[int, int, int],
                     box: Tuple[int, int, int, int]) -> None:
    """Paste one distractor into ``img``: another shape, texture and hue than the object's
    ``spec`` and no class's combination (``taken``), small, placed off the object's ``box``
    (x, y, w, h) where possible."""
    shape, texture, hue = spec
    ox, oy, ow, oh = box
    H, W = img.shape[:2]
    for _ in range(50):
        d = (int(rng.integers(len(SHAPES))), int(rng.integers(len(TEXTURES))), int(rng.integers(len(HUES))))
        if d[0] != shape and d[1] != texture and d[2] != hue and d not in taken:
            break
    else:  # every combination is a class: settle for another shape and texture
        d = ((shape + 1) % len(SHAPES), (texture + 1) % len(TEXTURES), d[2])
    f = rng.uniform(0.08, MAX_DISTRACTOR_AREA) * ow * oh
    a = math.exp(rng.uniform(-0.3, 0.3))
    dw = max(4, min(W, int(math.sqrt(f * a))))
    dh = max(4, min(H, int(math.sqrt(f / a))))
    dm = _cropped_shape(rng, d[0], dw, dh)
    if dm is None:
        return
    mh, mw = dm.shape
    for _ in range(20):
        dx, dy = int(rng.integers(0, W - mw + 1)), int(rng.integers(0, H - mh + 1))
        if dx + mw <= ox - 2 or dx >= ox + ow + 2 or dy + mh <= oy - 2 or dy >= oy + oh + 2:
            break
    _paste(img, dm, _texture(rng, d[1], HUES[d[2]][1], mh, mw), dx, dy)


# ----------------------------------------------------------------------------- writing
def _params(**params: Any) -> Dict[str, Any]:
    """The generator's parameters with the defaults filled in, each checked by its declaration
    (text from ``--dataset-option`` converted); -> a plain dict."""
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown synthetic parameter(s): {', '.join(sorted(unknown))}")
    p = {**DEFAULTS, **params}
    size = p["image_size"]
    if isinstance(size, str):  # from the command line: "W,H" or "WxH"
        size = size.replace("x", ",").split(",")
    elif isinstance(size, (int, float)):
        size = (size, size)
    if len(size) != 2:
        raise DataError(f"synthetic image_size takes W,H, not {params.get('image_size')!r}")
    p["image_size"] = [IMAGE_SIDE.coerce(v) for v in size]
    for k, opt in param_options().items():
        p[k] = opt.coerce(p[k])
    total = p["n_classes"] * (p["n_train_per_class"] + p["n_test_per_class"])
    if total > MAX_IMAGES:
        raise DataError(f"synthetic set of {total:,} images of {p['image_size'][0]}x{p['image_size'][1]} px: at most "
                        f"{MAX_IMAGES:,} images (a bigger set is hours of generation; use a real dataset)")
    return p


def _stamp(p: Dict[str, Any]) -> Dict[str, Any]:
    return {"generator": "wsol.datasets.synthetic", "version": GENERATOR_VERSION,
            "size_jitter": SIZE_JITTER, "jpeg_quality": JPEG_QUALITY, "params": p}


def _read_stamp(out_dir: str) -> Optional[Dict[str, Any]]:
    try:
        with open(os.path.join(out_dir, STAMP_NAME), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def synthetic_is_current(out_dir: str, **params: Any) -> bool:
    """True when ``out_dir`` holds a complete set made by this generator version with
    these parameters (defaults for any not given)."""
    stamp = _read_stamp(out_dir)
    if stamp is None or stamp != _stamp(_params(**params)):
        return False
    return all(os.path.isfile(os.path.join(out_dir, f)) for f in _TXT_FILES)


def _write_bytes(path: str, data: bytes) -> None:
    # Write-then-rename, so a reader (or a second process generating the same bytes)
    # never sees a half-written file.
    write_bytes_atomic(path, data)


def _write_lines(path: str, lines: List[str]) -> None:
    _write_bytes(path, ("\n".join(lines) + "\n").encode("utf-8"))


def make_synthetic(out_dir: str, n_classes: int = DEFAULTS["n_classes"],
                   n_train_per_class: int = DEFAULTS["n_train_per_class"],
                   n_test_per_class: int = DEFAULTS["n_test_per_class"],
                   image_size: Tuple[int, int] = DEFAULTS["image_size"],
                   seed: int = DEFAULTS["seed"], progress: bool = True) -> str:
    """Write the synthetic set into ``out_dir`` in the CUB-200-2011 layout; return out_dir.

    image_size is the nominal (width, height); each image varies within +-SIZE_JITTER.
    Per class, n_train_per_class randomly chosen images are train (flag 1), the rest test.
    Refuses (DataError) to write into a folder holding a CUB-like set it did not make.
    """
    p = _params(n_classes=n_classes, n_train_per_class=n_train_per_class,
                n_test_per_class=n_test_per_class, image_size=image_size, seed=seed)
    if p["n_train_per_class"] + p["n_test_per_class"] < 1:
        raise ValueError("need at least one image per class")
    names = class_names(p["n_classes"])  # validates n_classes before anything is touched
    stamp_path = os.path.join(out_dir, STAMP_NAME)
    img_root, seg_root = _clear_old_set(out_dir, stamp_path)
    n_per = p["n_train_per_class"] + p["n_test_per_class"]
    jobs = [(c, k) for c in range(p["n_classes"]) for k in range(1, n_per + 1)]
    it = jobs
    if progress:
        from tqdm import tqdm
        it = tqdm(jobs, desc="synthetic", unit="img", leave=False)
    lines: Dict[str, List[str]] = {f: [] for f in ("images.txt", "image_class_labels.txt",
                                                    "train_test_split.txt", "bounding_boxes.txt")}
    train_of: Dict[int, set] = {}
    for c, k in it:
        if c not in train_of:
            perm = np.random.default_rng([p["seed"], c, 0]).permutation(n_per) + 1
            train_of[c] = set(perm[:p["n_train_per_class"]].tolist())
            os.makedirs(os.path.join(img_root, f"{c + 1:03d}.{names[c]}"), exist_ok=True)
            os.makedirs(os.path.join(seg_root, f"{c + 1:03d}.{names[c]}"), exist_ok=True)
        rng = np.random.default_rng([p["seed"], c, k])
        img, mask, _ = render_sample(rng, c, p["n_classes"], p["image_size"])
        rel = f"{c + 1:03d}.{names[c]}/{names[c]}_{k:04d}.jpg"
        _write_sample(img, mask, img_root, seg_root, rel)
        i = len(lines["images.txt"]) + 1
        x, y, w, h = mask_box(mask)
        lines["images.txt"].append(f"{i} {rel}")
        lines["image_class_labels.txt"].append(f"{i} {c + 1}")
        lines["train_test_split.txt"].append(f"{i} {1 if k in train_of[c] else 0}")
        lines["bounding_boxes.txt"].append(f"{i} {x:.1f} {y:.1f} {w:.1f} {h:.1f}")
    for name in ("images.txt", "image_class_labels.txt"):
        _write_lines(os.path.join(out_dir, name), lines[name])
    _write_lines(os.path.join(out_dir, "classes.txt"), [f"{c + 1} {c + 1:03d}.{n}" for c, n in enumerate(names)])
    for name in ("train_test_split.txt", "bounding_boxes.txt"):
        _write_lines(os.path.join(out_dir, name), lines[name])
    _write_bytes(stamp_path, (json.dumps(_stamp(p), indent=1, sort_keys=True) + "\n").encode())
    return out_dir


def _clear_old_set(out_dir: str, stamp_path: str) -> Tuple[str, str]:
    """Make ``out_dir`` ready for a new set: a set of ours (it has our stamp) is removed, stamp
    first; any other CUB-like set is refused. Returns (images folder, segmentations folder)."""
    img_root = os.path.join(out_dir, "images")
    seg_root = os.path.join(out_dir, "segmentations")
    if os.path.exists(stamp_path):  # ours: drop the stamp first, then the old images
        os.remove(stamp_path)
        shutil.rmtree(img_root, ignore_errors=True)
        shutil.rmtree(seg_root, ignore_errors=True)
    elif os.path.exists(os.path.join(out_dir, "images.txt")) or os.path.isdir(img_root):
        raise DataError(f"holds a dataset not made by make_synthetic (no {STAMP_NAME}); "
                        "refusing to overwrite it", path=out_dir)
    os.makedirs(img_root, exist_ok=True)
    return img_root, seg_root


def _write_sample(img: np.ndarray, mask: np.ndarray, img_root: str, seg_root: str, rel: str) -> None:
    """The image as JPEG under ``img_root`` and its mask as 0/255 PNG under ``seg_root``."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover
        raise DataError("JPEG encoding failed", path=rel)
    _write_bytes(os.path.join(img_root, rel), buf.tobytes())
    ok, png = cv2.imencode(".png", mask.astype(np.uint8) * 255)
    if not ok:  # pragma: no cover
        raise DataError("PNG encoding failed", path=rel)
    _write_bytes(os.path.join(seg_root, rel[:-4] + ".png"), png.tobytes())


# ----------------------------------------------------------------------------- adapter
def write_example(folder: str) -> tuple:
    """The procedural set at its smallest: 2 classes, 1 train + 2 test images each, 64x48 px
    (generated into ``folder`` when the adapter first reads it)."""
    return folder, "test", {"n_classes": 2, "n_train_per_class": 1, "n_test_per_class": 2, "image_size": "64,48"}


@register_dataset("synthetic", "Procedural CUB-layout set (generated and cached under --root)", generates=True,
                  example=write_example, options={k: f"generator parameter (default {v!r})" for k, v in DEFAULTS.items()})
def build_synthetic(root: str, split: str, **opts: Any) -> WsolDataset:
    """Read split ``split`` of the synthetic set in ``root``, generating it there first
    when root has no stamp, a stale one, or one whose parameters differ from those given
    in ``opts`` (n_classes, n_train_per_class, n_test_per_class, image_size, seed)."""
    gen = {k: opts.pop(k) for k in list(opts) if k in DEFAULTS}
    if opts:
        raise DataError(f"synthetic dataset: unknown option(s) {', '.join(sorted(opts))} "
                        f"(valid: {', '.join(sorted(DEFAULTS))})")
    stamp = _read_stamp(root)
    if stamp is not None and stamp.get("version") == GENERATOR_VERSION \
            and isinstance(stamp.get("params"), dict):
        try:  # keep the cached parameters for anything not asked for explicitly
            gen = {**_params(**stamp["params"]), **gen}
        except TypeError:
            pass
    if not synthetic_is_current(root, **gen):
        log.info("generating the synthetic dataset in %s (%s)", root,
                 ", ".join(f"{k}={v}" for k, v in sorted(_params(**gen).items())))
        make_synthetic(root, **gen)
    from wsol.datasets.cub import read_cub

    ds = read_cub(root, split)
    ds.name = "synthetic"
    return ds
