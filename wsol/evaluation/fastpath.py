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
import logging
import weakref
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch

from wsol.errors import WsolError
from wsol.transforms.gpu_decode import JpegBytesView, collate_payloads, decode_resize_normalize

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
            return JpegBytesView(default_view.samples, default_view.positions)
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
