"""Where the tests find the shared real data, defined once: ``../shared/data`` beside the
checkout. Users' clones do not have it, so every test using it skips cleanly without it."""
from __future__ import annotations

import os

import pytest

SHARED_DATA = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
IMAGENET_VAL_100 = os.path.join(SHARED_DATA, "imagenet-val-100")


def imagenet_val_100() -> str:
    """Path of the 100 real ILSVRC2012 val images (Kaggle layout), or skip the test."""
    if not os.path.isdir(IMAGENET_VAL_100):
        pytest.skip("../shared/data/imagenet-val-100 not present")
    return IMAGENET_VAL_100
