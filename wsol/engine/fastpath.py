"""Speed options of the evaluation loop: ``--dtype``, ``--channels-last``, ``--compile``,
``--decode``. Their defaults change nothing: fp32, contiguous, eager, PIL decode.

What stays exact, and why. Only the raw low-resolution maps (e.g. ``[B, 7, 7]`` float32,
196 bytes an image; less than an 8-bit 224x224 map) and the top-k predictions leave the
device. The protocol's bicubic upsample (OpenCV ``INTER_CUBIC``), min-max normalization,
8-bit quantization and threshold sweep then run on the CPU, in the ``--workers`` process
pool, overlapped with the next batch's forward pass. We do not upsample on the GPU on
purpose: torch's bicubic (``align_corners=False``, A=-0.75) is not bit-identical to OpenCV's
``INTER_CUBIC`` (different border handling and float evaluation order), and the
truncating quantization ``floor(255 * m)`` turns a 1-ulp difference into a different level
at some pixels, hence different masks and boxes at some thresholds.

What is not exact. ``--dtype bf16|fp16`` runs the forward pass and the CAM under autocast:
the raw maps differ from fp32 in the low bits, so boxes can differ. ``--decode gpu`` decodes
JPEGs with nvjpeg and resizes with torch's antialiased bilinear: pixels are close to, not
bit-identical with, PIL's decode + resize (the protocol's default). Both are speed options
whose numbers can differ slightly; published numbers use the defaults.
``--channels-last`` and ``--compile`` compute the same function in a different order
(float rounding only).
"""
from __future__ import annotations

import contextlib
import io
import logging
import weakref
from collections import defaultdict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from wsol.errors import DataError, WsolError
from wsol.transforms.image import INPUT_SIZE, load_rgb

log = logging.getLogger(__name__)

DTYPES: Dict[str, Optional[torch.dtype]] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
DECODES = ("cpu", "gpu")

# One compiled wrapper per backbone object, so repeated runs (bench repeats) reuse
# dynamo's cache instead of recompiling (and hitting its recompile limit).
_COMPILED: "weakref.WeakKeyDictionary[torch.nn.Module, Callable]" = weakref.WeakKeyDictionary()


def check_options(dtype: str, decode: str, device: torch.device) -> None:
    """Refuse unknown or unusable fast-path options with a one-line WsolError."""
    if dtype not in DTYPES:
        raise WsolError(f"--dtype takes {', '.join(DTYPES)}, not {dtype!r}")
    if decode not in DECODES:
        raise WsolError(f"--decode takes {' or '.join(DECODES)}, not {decode!r}")
    if decode == "gpu" and device.type != "cuda":
        raise WsolError("--decode gpu decodes JPEGs on the GPU (nvjpeg) and needs --device cuda; "
                        "use --decode cpu on this device")


class FastPath:
    """The loop's hooks for the speed options (all no-ops with the defaults).

    ``FastPath(cfg, device)`` validates; ``prepare(backbone)`` converts the model
    (channels_last, compile); then ``view``/``collate`` pick the loader's input format,
    ``to_device`` moves (and for ``decode='gpu'`` decodes) a batch, ``forward`` runs the
    (possibly compiled) backbone, and ``autocast()`` wraps forward and CAM.
    """

    def __init__(self, cfg, device: torch.device):
        self.dtype_name = getattr(cfg, "dtype", "fp32")
        self.decode = getattr(cfg, "decode", "cpu")
        self.channels_last = bool(getattr(cfg, "channels_last", False))
        self.compile = bool(getattr(cfg, "compile", False))
        self.device = torch.device(device)
        check_options(self.dtype_name, self.decode, self.device)
        self.amp_dtype = DTYPES[self.dtype_name]
        self.backbone: Optional[torch.nn.Module] = None
        self._forward: Optional[Callable] = None
        self.mean: Sequence[float] = (0.0, 0.0, 0.0)
        self.std: Sequence[float] = (1.0, 1.0, 1.0)

    @property
    def is_default(self) -> bool:
        return self.amp_dtype is None and not self.channels_last and not self.compile and self.decode == "cpu"

    def prepare(self, backbone) -> None:
        """Convert ``backbone`` in place (channels_last) and set up the forward callable."""
        self.backbone = backbone
        self.mean, self.std = backbone.mean, backbone.std
        if self.channels_last:
            backbone.to(memory_format=torch.channels_last)
        self._forward = backbone
        if self.compile:
            fn = _COMPILED.get(backbone)
            if fn is None:
                fn = torch.compile(backbone)
                _COMPILED[backbone] = fn
            self._forward = fn

    # ------------------------------------------------------------------ input
    def view(self, default_view):
        """The loader's dataset: the PIL view, or file bytes for ``decode='gpu'``."""
        if self.decode == "gpu":
            return JpegBytesView(default_view.samples)
        return default_view

    def collate(self, default: Callable) -> Callable:
        return collate_payloads if self.decode == "gpu" else default

    def to_device(self, images) -> torch.Tensor:
        """A collated batch -> normalized float images on the device (non-blocking copy)."""
        fmt = torch.channels_last if self.channels_last else torch.preserve_format
        if self.decode != "gpu":
            return images.to(self.device, non_blocking=True, memory_format=fmt)
        out = decode_resize_normalize(images, self.device, self.mean, self.std)
        if self.channels_last:
            out = out.contiguous(memory_format=torch.channels_last)
        if self.device.type == "cuda":  # decode is asynchronous: charge it to the data stage
            torch.cuda.synchronize(self.device)
        return out

    # ------------------------------------------------------------------ model
    def autocast(self):
        """Autocast context for forward + CAM (a no-op for fp32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(features, logits) from the prepared (maybe compiled) backbone."""
        if self._forward is None:
            raise RuntimeError("FastPath.prepare(backbone) was not called")
        if not self.compile:
            return self._forward(images)
        try:
            return self._forward(images)
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as e:  # inductor needs a C++ compiler (CPU) or Triton (CUDA)
            if "dynamo" not in type(e).__module__ and "inductor" not in type(e).__module__:
                raise
            msg = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
            raise WsolError(f"torch.compile failed ({type(e).__name__}: {msg}); run without --compile") from None


# ---------------------------------------------------------------------- GPU decode
class JpegBytesView(torch.utils.data.Dataset):
    """Loader view for ``decode='gpu'``: (payload, label, index, (width, height), error).

    payload is the file's bytes as a uint8 1-D tensor for baseline/progressive RGB or
    grayscale JPEGs (decoded later on the GPU), or, for anything else (PNG, CMYK JPEG ...),
    the image decoded here by PIL as uint8 [3, H, W]. Size comes from the header (PIL opens
    lazily, without decoding). Unreadable files yield an empty payload and the error line,
    as ImageFolderView does.
    """

    def __init__(self, samples):
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        from PIL import Image

        s = self.samples[i]
        empty = torch.zeros(0, dtype=torch.uint8)
        try:
            with open(s.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return empty, s.label, i, (0, 0), str(DataError("missing image", path=s.path))
        except OSError as e:
            return empty, s.label, i, (0, 0), str(DataError(f"unreadable image ({e.strerror or e})", path=s.path))
        try:
            with Image.open(io.BytesIO(data)) as im:
                fmt, mode, size = im.format, im.mode, im.size
        except (OSError, SyntaxError, ValueError) as e:
            msg = str(e).splitlines()[0][:100] if str(e) else type(e).__name__
            return empty, s.label, i, (0, 0), str(DataError(f"unreadable image ({msg})", path=s.path))
        if fmt == "JPEG" and mode in ("RGB", "L") and size[0] > 0 and size[1] > 0:
            return torch.frombuffer(bytearray(data), dtype=torch.uint8), s.label, i, size, ""
        try:
            im = load_rgb(s.path)
        except DataError as e:
            return empty, s.label, i, (0, 0), str(e)
        arr = torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()
        return arr, s.label, i, (im.width, im.height), ""


def collate_payloads(batch):
    """Like the engine's collate, but images stay a list (variable-size payloads)."""
    payloads = [b[0] for b in batch]
    labels = torch.tensor([b[1] for b in batch], dtype=torch.int64)
    return payloads, labels, [b[2] for b in batch], [b[3] for b in batch], [b[4] for b in batch]


def decode_resize_normalize(payloads: List[torch.Tensor], device: torch.device, mean: Sequence[float],
                            std: Sequence[float], size: int = INPUT_SIZE) -> torch.Tensor:
    """JPEG bytes (or decoded uint8 [3,H,W]) -> normalized float [B, 3, size, size] on ``device``.

    JPEGs are decoded by ``torchvision.io.decode_jpeg`` in one batched call on ``device``
    (nvjpeg on CUDA; libjpeg on CPU, used by the tests); images of equal size are resized
    together with antialiased bilinear interpolation, rounded to integers like PIL's 8-bit
    output, then scaled to [0, 1] and normalized. Close to, not bit-identical with, the
    protocol's PIL path. Empty payloads (unreadable files) give zero images.
    """
    from torchvision.io import ImageReadMode, decode_jpeg

    device = torch.device(device)
    imgs: List[Optional[torch.Tensor]] = [None] * len(payloads)
    jpeg = [i for i, p in enumerate(payloads) if p.ndim == 1 and p.numel() > 0]
    if jpeg:
        try:
            dec = decode_jpeg([payloads[i] for i in jpeg], mode=ImageReadMode.RGB, device=device)
        except RuntimeError:
            dec = [_decode_one(payloads[i], device) for i in jpeg]
        for i, d in zip(jpeg, dec):
            imgs[i] = d
    for i, p in enumerate(payloads):
        if p.ndim == 3:
            imgs[i] = p.to(device, non_blocking=True)
    out = torch.zeros(len(payloads), 3, size, size, device=device, dtype=torch.float32)
    groups: Dict[Tuple[int, int], List[int]] = defaultdict(list)
    for i, im in enumerate(imgs):
        if im is not None:
            groups[tuple(im.shape[-2:])].append(i)
    for (h, w), idx in groups.items():
        x = torch.stack([imgs[i] for i in idx]).float()
        if (h, w) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            x = x.round_().clamp_(0, 255)
        out[torch.as_tensor(idx, device=device)] = x
    m = torch.tensor(mean, device=device, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, device=device, dtype=torch.float32).view(1, 3, 1, 1)
    ok = torch.tensor([im is not None for im in imgs], device=device).view(-1, 1, 1, 1)
    return torch.where(ok, (out / 255.0 - m) / s, torch.zeros((), device=device))


def _decode_one(payload: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Decode one JPEG on ``device``; on failure fall back to the CPU decoder, else raise."""
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        return decode_jpeg(payload, mode=ImageReadMode.RGB, device=device)
    except RuntimeError:
        pass
    try:
        return decode_jpeg(payload, mode=ImageReadMode.RGB).to(device)
    except RuntimeError as e:
        raise WsolError(f"JPEG decode failed ({str(e).splitlines()[0][:100]}); rerun with --decode cpu "
                        "(PIL) to find the file, and --on-error skip to skip unreadable files") from None
