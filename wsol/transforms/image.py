"""Image loading and the protocol's test transform (docs/protocol.md, Input)."""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

from wsol.errors import DataError, first_line

INPUT_SIZE = 224


def too_large(e: Exception) -> str:
    """PIL's decompression-bomb message, shortened: the pixel count and the limit."""
    import re

    nums = re.findall(r"\d+", str(e))
    return f"{nums[0]} pixels > limit {nums[1]}" if len(nums) >= 2 else type(e).__name__


def load_rgb(path: str) -> Image.Image:
    """Open an image as 8-bit RGB (grayscale, CMYK, 16-bit, alpha, palette all converted)."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                hi = 65535.0 if arr.max() > 255 else 255.0
                im = Image.fromarray(np.clip(arr / hi * 255.0, 0, 255).astype(np.uint8), "L")
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im)
            rgb = im.convert("RGB")
    except FileNotFoundError:
        raise DataError("missing image", path=path) from None
    except Image.DecompressionBombError as e:
        raise DataError(f"image too large to decode safely ({too_large(e)})", path=path) from None
    except (OSError, SyntaxError, ValueError, MemoryError) as e:
        raise DataError(f"unreadable image ({first_line(e, 100)})", path=path) from None
    if rgb.width == 0 or rgb.height == 0:
        raise DataError("zero-size image", path=path)
    return rgb


def test_transform(mean: Sequence[float], std: Sequence[float], size: int = INPUT_SIZE) -> T.Compose:
    """Resize straight to size x size (aspect not kept, no crop), to tensor, normalize."""
    return T.Compose([T.Resize((size, size)), T.ToTensor(), T.Normalize(mean, std)])


def train_transform(mean: Sequence[float], std: Sequence[float], size: int = INPUT_SIZE,
                    resize: int = 256) -> T.Compose:
    """Choe et al.'s training transform: resize to resize x resize, random crop, flip."""
    return T.Compose([T.Resize((resize, resize)), T.RandomCrop(size), T.RandomHorizontalFlip(),
                      T.ToTensor(), T.Normalize(mean, std)])


class ImageFolderView(torch.utils.data.Dataset):
    """Torch view of a WsolDataset: (image tensor, label, index, (width, height), error).

    A file that cannot be read does not raise inside the loader worker (where the message
    would be lost in a traceback): it yields a zero image and ``error`` = the one-line
    reason, and the engine decides (``--on-error fail|skip``).
    """

    def __init__(self, samples, transform, size: int = INPUT_SIZE):
        self.samples = samples
        self.transform = transform
        self.size = size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Tuple[torch.Tensor, int, int, Tuple[int, int], str]:
        s = self.samples[i]
        try:
            im = load_rgb(s.path)
        except DataError as e:
            return torch.zeros(3, self.size, self.size), s.label, i, (0, 0), str(e)
        return self.transform(im), s.label, i, (im.width, im.height), ""
