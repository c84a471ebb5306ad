import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # test helpers (cub_fixture, references)

SHARED = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "imagenet-val-100"))


@pytest.fixture(scope="session")
def shared_imagenet():
    """Path of ../shared/data/imagenet-val-100, or skip when it is absent."""
    if not os.path.isdir(SHARED):
        pytest.skip("../shared/data/imagenet-val-100 not present")
    return SHARED
