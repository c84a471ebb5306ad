import os

import numpy as np
import pytest

from cub_fixture import CLASSES, make_cub
from wsol.datasets.base import build_dataset, list_datasets
from wsol.errors import DataError, UnknownNameError


def test_cub_reads_splits_boxes_and_names(tmp_path):
    recs = make_cub(str(tmp_path), n_per_class=2)
    test = build_dataset("cub", str(tmp_path), "test")
    train = build_dataset("cub", str(tmp_path), "train")
    assert len(test) + len(train) == len(recs)
    assert test.class_names == CLASSES and test.num_classes == 3
    want = [r for r in recs if r[3] == 0]
    for s, r in zip(test.samples, want):
        x, y, w, h = r[2]
        assert s.image_id == r[0] and s.label == r[1]
        np.testing.assert_array_equal(s.boxes, [[x, y, x + w, y + h]])  # float boxes kept as floats
        assert os.path.isfile(s.path)
    # the docs/datasets.md example (Dataset layouts): x y w h = 60 27 325 304 -> 60, 27, 385, 331
    (tmp_path / "bounding_boxes.txt").write_text(
        "".join(f"{i} 60.0 27.0 325.0 304.0\n" for i in range(1, len(recs) + 1)))
    assert build_dataset("cub", str(tmp_path), "test").samples[0].boxes.tolist() == [[60, 27, 385, 331]]


def test_cub_accepts_parent_folder(tmp_path):
    make_cub(str(tmp_path / "CUB_200_2011"))
    assert len(build_dataset("cub", str(tmp_path), "test")) == 3


@pytest.mark.parametrize("fname", ["images.txt", "bounding_boxes.txt", "classes.txt"])
def test_cub_missing_file_names_it(tmp_path, fname):
    make_cub(str(tmp_path))
    os.remove(tmp_path / fname)
    with pytest.raises(DataError, match=fname):
        build_dataset("cub", str(tmp_path), "test")


def test_cub_bad_line_names_file_and_line(tmp_path):
    make_cub(str(tmp_path))
    p = tmp_path / "bounding_boxes.txt"
    lines = p.read_text().splitlines()
    lines[2] = "3 1.0 2.0 x 4.0"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"bounding_boxes.txt:3: box coordinate"):
        build_dataset("cub", str(tmp_path), "test")


def test_missing_root_and_unknown_dataset(tmp_path):
    with pytest.raises(DataError, match="nope"):
        build_dataset("cub", str(tmp_path / "nope"), "test")
    with pytest.raises(UnknownNameError, match="did you mean: cub"):
        build_dataset("cubb", str(tmp_path), "test")
    assert "cub" in [d.name for d in list_datasets()]
