"""CAM-like test maps for the sweep's tests and benchmark (no model needed; benchmarks import it from tests/)."""
from __future__ import annotations

import numpy as np

from wsol.localize.maps import postprocess, quantize


def cam_like_map(rng: np.random.Generator) -> np.ndarray:
    """A CAM-like map: a few anisotropic Gaussians plus low noise on a 7x7 grid, upsampled
    and normalized by the protocol's post-processing, then quantized -> uint8 [224, 224]."""
    y, x = np.mgrid[0:7, 0:7].astype(np.float64)
    cam = 0.05 * rng.standard_normal((7, 7))
    for _ in range(rng.integers(1, 5)):
        cy, cx = rng.uniform(-1, 8, 2)
        sy, sx = rng.uniform(0.6, 3.0, 2)
        th = rng.uniform(0, np.pi)
        dy, dx = y - cy, x - cx
        u, v = np.cos(th) * dx + np.sin(th) * dy, -np.sin(th) * dx + np.cos(th) * dy
        cam += rng.uniform(-0.4, 1.0) * np.exp(-(u ** 2 / (2 * sx ** 2) + v ** 2 / (2 * sy ** 2)))
    return quantize(postprocess(cam))
