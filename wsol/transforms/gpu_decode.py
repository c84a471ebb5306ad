"""Decoding on the device for ``--decode gpu``: JPEG bytes leave the loader undecoded and
are decoded (nvjpeg), resized (antialiased bilinear, rounded to 8 bits) and normalized on
the GPU. Close to, not bit-identical with, the protocol's PIL path (docs/protocol.md,
Input), so it is a speed option and never the default.
"""
from __future__ import annotations

import io
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from wsol.errors import DataError, WsolError, first_line
from wsol.transforms.image import INPUT_SIZE, load_rgb


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
            msg = first_line(e, 100) if str(e) else type(e).__name__
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
        raise WsolError(f"JPEG decode failed ({first_line(e, 100)}); rerun with --decode cpu "
                        "(PIL) to find the file, and --on-error skip to skip unreadable files") from None
