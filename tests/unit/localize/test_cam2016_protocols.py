"""The two CAM-paper protocols with hand-computed expectations: ``cam2016`` (the paper's
text: 20% of the raw map's max, largest 8-connected component) and ``cam2016_code`` (the
released generator: max division, 8-bit heatmap, gray levels 20/100/110, distance-transform
erosion, clamped rectangles, largest box); then both through ``wsol evaluate``."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from wsol.localize.cam2016 import cam2016_boxes, localize_cam2016
from wsol.localize.cam2016_code import (cam2016_code_boxes, eroded_mask, heatmap_8bit,
                                        localize_cam2016_code)


def test_cam2016_thresholds_the_raw_max_not_the_min_max_range():
    # max 10 -> foreground raw > 2: columns 2, 3 and 5 (2.0 is not > 2); min-max normalizing
    # first (min + 0.2 (max - min) = -6) would take columns 1-5 instead
    raw = np.array([[-10, 1, 2.5, 10, 2.0, 3]] * 3, dtype=np.float32)
    allb, big = cam2016_boxes(raw, 6, 3)  # same size: the resize keeps the values
    assert big.tolist() == [[2, 0, 3, 2]]
    assert sorted(allb.tolist()) == [[2, 0, 3, 2], [5, 0, 5, 2]]
    loc = localize_cam2016(raw, np.array([[2, 0, 3, 2]]), 6, 3)
    assert loc.iou.tolist() == [[1.0], [1.0]]


def test_cam2016_largest_component_is_by_pixel_count_and_8_connected():
    raw = np.zeros((5, 7), np.float32)
    raw[0, 0] = raw[1, 1] = raw[2, 2] = 1.0   # a diagonal: one 8-connected component of 3 pixels
    raw[0, 4:7] = raw[1, 4:6] = 0.5           # 5 pixels: the largest
    _, big = cam2016_boxes(raw, 7, 5)
    assert big.tolist() == [[4, 0, 6, 1]]


def test_cam2016_map_without_positive_values_has_no_box():
    _, big = cam2016_boxes(-np.ones((4, 4), np.float32), 4, 4)
    assert big.tolist() == [[0, 0, 0, 0]]


def test_cam2016_code_heatmap_is_max_divided_and_8_bit():
    raw = np.array([[-4.0, 0.0, 1.0, 2.0]], np.float32)
    # / max 2 -> [-2, 0, 0.5, 1] -> clip -> 255 x [0, 0, 0.5, 1] rounded half up
    assert heatmap_8bit(raw, 4, 1).tolist() == [[0, 0, 128, 255]]


def test_cam2016_code_erosion_drops_the_ring_within_4_percent_of_the_deepest_pixel():
    gray = np.zeros((100, 100), np.uint8)
    gray[20:81, 20:81] = 200   # 61 x 61: the deepest pixel is 31 from the background
    m = eroded_mask(gray, 20)
    # kept iff round(d * 255 / 31) > 10, i.e. d >= 1.28: the outer ring (d = 1) goes
    assert m[21:80, 21:80].all() and m.sum() == 59 * 59
    small = np.zeros((30, 30), np.uint8)
    small[10:21, 10:21] = 200  # 11 x 11: deepest 6, threshold d >= 0.25: nothing dropped
    assert eroded_mask(small, 100).sum() == 121


def test_cam2016_code_box_is_the_largest_clamped_rectangle():
    raw = np.zeros((100, 100), np.float32)
    raw[20:81, 20:81] = 1.0
    # every gray level gives the eroded square 21..79: boundingRect x=21, w=59 -> [21, 21, 80, 80]
    assert cam2016_code_boxes(raw, 100, 100)[0].tolist() == [21, 21, 80, 80]
    edge = np.zeros((100, 100), np.float32)
    edge[40:60, 90:100] = 1.0
    # x = 90, w = 10 clamped to W - x - 5 = 5 -> [90, 40, 95, 60]
    assert cam2016_code_boxes(edge, 100, 100)[0].tolist() == [90, 40, 95, 60]
    loc = localize_cam2016_code(edge, np.array([[90, 40, 95, 60], [0, 0, 5, 5]]), 100, 100)
    assert loc.iou.tolist() == [[1.0], [1.0]] and loc.boxes[1, 0].tolist() == [90, 40, 95, 60]


def test_cam2016_code_levels_rank_together():
    raw = np.zeros((60, 60), np.float32)
    raw[5:50, 5:50] = 0.3    # gray round(76.5) = 77: above level 20 only
    raw[20:30, 20:30] = 1.0  # gray 255: above all three
    # level 20: the 45 x 45 square, deepest pixel 23 -> keep d >= 0.95: all of it, [5, 5, 50, 50];
    # levels 100 and 110: the inner 10 x 10, [20, 20, 30, 30] twice; the largest comes first
    boxes = cam2016_code_boxes(raw, 60, 60)
    assert boxes.tolist() == [[5, 5, 50, 50], [20, 20, 30, 30], [20, 20, 30, 30]]


def test_cam2016_code_empty_map():
    assert cam2016_code_boxes(np.zeros((7, 7), np.float32), 50, 40).tolist() == [[0, 0, 0, 0]]


@pytest.mark.parametrize("protocol,fn", [("cam2016", localize_cam2016), ("cam2016_code", localize_cam2016_code)])
def test_protocols_through_wsol_evaluate(protocol, fn, shared_imagenet, tmp_path):
    from wsol.cli import main
    from wsol.datasets.base import build_dataset
    from wsoleval_fixtures import FIXTURES, write_reference_checkpoint

    if not os.path.isdir(FIXTURES):
        pytest.skip("../shared/fixtures/wsoleval-models not present")
    ckpt = str(tmp_path / "vgg16_cam.pth.tar")
    write_reference_checkpoint("vgg16", "cam", ckpt)
    root = os.path.join(shared_imagenet, "wsoleval", "test")
    images = os.path.join(shared_imagenet, "ILSVRC", "Data", "CLS-LOC")
    out = tmp_path / protocol
    assert main(["-q", "evaluate", "--dataset", "wsoleval", "--root", root, "--dataset-option", f"images={images}",
                 "--limit", "4", "--backbone", "vgg16_gap", "--weights", ckpt, "--protocol", protocol,
                 "--batch-size", "4", "--out", str(out)]) == 0
    per = pd.read_csv(out / "per_image.csv").set_index("image_id")
    ds = {s.image_id: s for s in build_dataset("wsoleval", root).samples}
    with open(os.path.join(FIXTURES, "labels.json")) as f:
        ids = json.load(f)["image_ids"]
    ref = np.load(os.path.join(FIXTURES, "vgg16_cam.npy"))  # the reference model's own maps
    for iid, raw in zip(ids, ref):
        s = ds[iid]
        want = fn(raw, s.boxes, s.width, s.height).iou[1, 0]
        assert per.loc[iid, "iou"] == pytest.approx(want, abs=1e-6)
    assert json.loads((out / "run.json").read_text())["protocol"] == protocol
