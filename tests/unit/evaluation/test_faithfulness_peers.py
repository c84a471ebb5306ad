"""wsol's faithfulness numbers against the peers' on the same model, images and maps
(docs/protocol.md, "Faithfulness", "Against other implementations"): equal where the formulas
agree, and each deviation pinned. Peers: torchcam, pytorch-grad-cam, Quantus (the ``test``
extra; Quantus is installed without its opencv-python requirement, see the docs)."""
from contextlib import contextmanager
from functools import partial

import numpy as np
import pytest
import torch

from wsol.evaluation.faithfulness import FaithfulnessOptions, FaithfulnessEvaluator, class_scorer

SIDE = 24  # 576 pixels: divisible by 3 and by the step counts used below


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, padding=1),
                                torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(8, 5)).eval()
    images = torch.randn(3, 3, SIDE, SIDE)
    maps = torch.rand(3, SIDE, SIDE)  # continuous: no ties, so every implementation orders pixels alike
    labels = torch.tensor([1, 3, 4])
    with torch.no_grad():
        original = torch.softmax(model(images), 1).gather(1, labels.view(-1, 1)).squeeze(1).double().numpy()
    return model, images, maps, labels, original


def _wsol(setup, metrics, one=None, **opts):
    model, images, maps, labels, original = setup
    sl = slice(None) if one is None else slice(one, one + 1)
    f = FaithfulnessEvaluator(FaithfulnessOptions(metrics, **opts))
    f.perturb(class_scorer(model, labels[sl]), images[sl], maps[sl], original[sl], list(range(len(images)))[sl])
    return f


class _GivenMaps:
    """torchcam's extractor protocol, handing out the given maps (already at the input size)."""

    def __init__(self, model, maps):
        self.model, self.maps = model, maps

    def __call__(self, class_idx=None, scores=None, normalized=True, **kw):
        return [self.maps]

    def fuse_cams(self, cams):
        return cams[0]

    @contextmanager
    def _hooks_off(self):
        yield


def test_torchcam_average_drop_and_increase(setup):
    ClassificationMetric = pytest.importorskip("torchcam.metrics").ClassificationMetric

    model, images, maps, labels, original = setup
    tc = ClassificationMetric(_GivenMaps(model, maps), partial(torch.softmax, dim=-1))
    tc.update(images, class_idx=labels.tolist())
    theirs = tc.summary()
    ours = _wsol(setup, ("avg_drop",))
    s, per = ours.evaluate(), ours.per_image()
    assert theirs["conf_increase"] * 100 == pytest.approx(s["increase_in_confidence"], abs=1e-9)
    # torchcam divides by Y + 1e-7: the same drop up to that epsilon
    drop = per["conf_drop"].to_numpy() / 100
    assert theirs["avg_drop"] == pytest.approx(np.mean(drop * original / (original + 1e-7)), rel=1e-5)
    assert theirs["avg_drop"] * 100 == pytest.approx(s["avg_drop"], rel=1e-5)


def test_torchcam_deletion_and_insertion(setup):
    DeletionInsertionMetric = pytest.importorskip("torchcam.metrics").DeletionInsertionMetric

    model, images, maps, labels, _ = setup
    for steps in (8, 7):  # 7 does not divide 576: the last step is shorter in both
        tc = DeletionInsertionMetric(_GivenMaps(model, maps), partial(torch.softmax, dim=-1), steps=steps)
        tc.update(images, class_idx=labels.tolist())
        theirs = tc.summary()
        s = _wsol(setup, ("deletion", "insertion"), steps=steps, deletion_baseline="zeros",
                  insertion_baseline="zeros").evaluate()
        assert s["deletion_auc"] == pytest.approx(theirs["deletion_auc"], abs=1e-6)
        assert s["insertion_auc"] == pytest.approx(theirs["insertion_auc"], abs=1e-6)


def test_pytorch_grad_cam_confidence_drop_is_not_divided(setup):
    pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.metrics.cam_mult_image import DropInConfidence, IncreaseInConfidence
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    model, images, maps, labels, original = setup
    targets = [ClassifierOutputSoftmaxTarget(int(c)) for c in labels]
    drop = DropInConfidence()(images, maps.numpy(), targets, model)
    inc = IncreaseInConfidence()(images, maps.numpy(), targets, model)
    per = _wsol(setup, ("avg_drop",)).per_image()
    # pytorch-grad-cam: max(0, Y - O); the paper (and wsol): max(0, Y - O) / Y
    assert drop == pytest.approx(per["conf_drop"].to_numpy() / 100 * original, abs=1e-6)
    assert inc.tolist() == per["conf_increase"].astype(float).tolist()


def test_pytorch_grad_cam_road_without_noise(setup):
    pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.metrics.perturbation_confidence import (PerturbationConfidenceMetric,
                                                                  RemoveLeastRelevantFirst, RemoveMostRelevantFirst)
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    model, images, maps, labels, _ = setup
    targets = [ClassifierOutputSoftmaxTarget(int(c)) for c in labels]
    pcts = (10, 50, 90)  # at 576 pixels both remove the same number of pixels at these (see the docs)
    theirs = {}
    for name, cls in (("morf", RemoveMostRelevantFirst), ("lerf", RemoveLeastRelevantFirst)):
        # pytorch-grad-cam's percentile is the share kept: removing p % is percentile 100 - p
        theirs[name] = np.array([PerturbationConfidenceMetric(cls(100 - p, NoisyLinearImputer(noise=0.0)))(
            images, maps.numpy(), targets, model, return_diff=False) for p in pcts])  # [P, B]
    ours = _wsol(setup, ("road",), road_percentiles=pcts, road_noise=0.0)
    r = ours.road.evaluate()
    assert r["road_morf_curve"] == pytest.approx(theirs["morf"].mean(axis=1), abs=1e-6)
    assert r["road_lerf_curve"] == pytest.approx(theirs["lerf"].mean(axis=1), abs=1e-6)
    # ROADCombined's formula, (LeRF - MoRF) / 2 averaged over the percentiles
    assert r["road_combined"] == pytest.approx(((theirs["lerf"] - theirs["morf"]) / 2).mean(), abs=1e-6)


def test_quantus_pixel_flipping_is_deletion_without_the_first_point(setup):
    quantus = pytest.importorskip("quantus")

    model, images, maps, labels, _ = setup
    steps = 12  # 48 pixels a step; Quantus counts a pixel's three channel values as three features
    kw = dict(model=model, x_batch=images.numpy(), y_batch=labels.numpy(), a_batch=maps[:, None].numpy(),
              device="cpu", softmax=True, channel_first=True)
    common = dict(features_in_step=3 * SIDE * SIDE // steps, perturb_baseline=0.0, normalise=False,
                  disable_warnings=True)
    curves = np.array(quantus.PixelFlipping(**common)(**kw))
    if hasattr(np, "trapz"):
        aucs = np.array(quantus.PixelFlipping(return_auc_per_sample=True, **common)(**kw))
    else:  # Quantus 0.6.0 integrates with numpy.trapz, which NumPy 2.4 removed
        with pytest.raises(AttributeError, match="trapz"):
            quantus.PixelFlipping(return_auc_per_sample=True, **common)(**kw)
        aucs = None
    for i in range(len(images)):
        ours = _wsol(setup, ("deletion",), one=i, steps=steps, deletion_baseline="zeros")
        curve = ours.curve_evs["deletion"].evaluate()["deletion_curve"]
        assert curves[i] == pytest.approx(curve[1:], abs=1e-6)  # Quantus has no unperturbed point
        # and integrates with dx = 1 over the steps, not on the fraction axis
        assert aucs is None or aucs[i] == pytest.approx(np.trapezoid(curve[1:], dx=1), abs=1e-5)


def test_quantus_road_fails_on_a_one_channel_map(setup):
    quantus = pytest.importorskip("quantus")

    model, images, maps, labels, _ = setup
    road = quantus.ROAD(percentages=[10, 50], noise=0.0, disable_warnings=True)
    # the map is broadcast to the channels and its channel-value indices index a per-pixel mask
    with pytest.raises(IndexError):
        road(model=model, x_batch=images.numpy(), y_batch=labels.numpy(), a_batch=maps[:, None].numpy(),
             device="cpu", softmax=True, channel_first=True)
