import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "fixtures"))  # test helpers (cub_fixture, references)

from shared_data import imagenet_val_100  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def numba_warm():
    """Compile (or load from numba's cache) the sweep kernels once per test run, up front."""
    from wsol.localize.image import warm_up

    warm_up()


@pytest.fixture(scope="session")
def shared_imagenet():
    """Path of ../shared/data/imagenet-val-100, or skip when it is absent."""
    return imagenet_val_100()


def _register_tiny():
    """A tiny GAP + linear conv net registered as backbone 'tiny_test_net' (fast CPU tests)."""
    import torch
    from torch import nn

    from wsol.models.backbone import BackboneInfo, NetBackbone
    from wsol.models.registry import BACKBONES, register_backbone

    if "tiny_test_net" in BACKBONES:
        return

    class Tiny(nn.Module):
        def __init__(self, num_classes):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4, padding=1), nn.ReLU(),
                                          nn.Conv2d(8, 16, 3, stride=4, padding=1), nn.ReLU(),
                                          nn.Conv2d(16, 16, 3, stride=2, padding=1))
            self.fc = nn.Linear(16, num_classes)

    def build(pretrained, num_classes):
        info = BackboneInfo("tiny_test_net", "wsol", "features", 32, True, "test-only net")
        return NetBackbone(Tiny(num_classes), info, lambda net, x: net.features(x), "fc")

    register_backbone(BackboneInfo("tiny_test_net", "wsol", "features", 32, True, "test-only net"), build, default_classes=3)


_register_tiny()


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op torch thread for a module (restored after): tiny inputs gain little from a
    second thread, and on a loaded shared CPU OpenMP's barriers made 2-thread runs 3-4x slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
