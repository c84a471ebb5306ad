"""wsolevaluation metadata (read, write, round trip) and the folder+CSV adapter."""
from __future__ import annotations

import os

import numpy as np
import pytest

import imagenet_fixtures as F
from imagenet_fixtures import raises_at
from wsol.datasets.base import Sample, WsolDataset, build_dataset
from wsol.datasets.wsoleval import write_wsoleval_metadata
from wsol.errors import DataError


def key(ds):
    return [(s.image_id, s.path, s.label, s.boxes.tolist(), s.width, s.height) for s in ds.samples]


def write(dirpath, **files):
    os.makedirs(dirpath, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(dirpath, name + ".txt"), "w") as f:
            f.write(text)
    return dirpath


META = dict(
    image_ids="a/1.jpg\nb/2.jpg\n",
    class_labels="a/1.jpg,3\nb/2.jpg,0\n",
    image_sizes="a/1.jpg,40,30\nb/2.jpg,20,50\n",
    localization="a/1.jpg,1,2,30,20\nb/2.jpg,0,0,19,49\na/1.jpg,5.5,6,7,8\n",
)


# ----------------------------------------------------------------------------- wsoleval

def test_read_wsoleval(tmp_path):
    d = write(os.path.join(str(tmp_path), "test"), **META)
    ds = build_dataset("wsoleval", d, split="test")
    assert [s.image_id for s in ds] == ["a/1.jpg", "b/2.jpg"]
    assert [s.label for s in ds] == [3, 0]
    assert ds.samples[0].boxes.tolist() == [[1, 2, 30, 20], [5.5, 6, 7, 8]]
    assert (ds.samples[1].width, ds.samples[1].height) == (20, 50)
    assert all(s.path == "" for s in ds) and ds.image_root == ""
    # the parent folder plus the split name works too, and images= sets paths
    ds2 = build_dataset("wsoleval", str(tmp_path), split="test", images="/imgs")
    assert [s.path for s in ds2] == ["/imgs/a/1.jpg", "/imgs/b/2.jpg"]


def test_wsoleval_train_split_without_boxes_or_sizes(tmp_path):
    d = write(str(tmp_path), image_ids=META["image_ids"], class_labels=META["class_labels"])
    ds = build_dataset("wsoleval", d, split="train")
    assert [len(s.boxes) for s in ds] == [0, 0] and ds.samples[0].width == 0
    assert [i.kind for i in ds.issues] == ["no_boxes"]


@pytest.mark.parametrize("name,old,new,line,match", [
    ("localization", "b/2.jpg,0,0,19,49", "b/2.jpg,0,0,19", 2, "expected 5 fields"),
    ("localization", "a/1.jpg,5.5,6,7,8", "a/1.jpg,5.5,6,4,8", 3, "inverted box"),
    ("localization", "b/2.jpg,0,0,19,49", "c/3.jpg,0,0,19,49", 2, "not in image_ids.txt"),
    ("class_labels", "b/2.jpg,0", "b/2.jpg,zero", 2, "not an integer"),
    ("class_labels", "b/2.jpg,0", "a/1.jpg,0", 2, "second label"),
    ("image_sizes", "b/2.jpg,20,50", "b/2.jpg,20", 2, "expected 3 fields"),
    ("image_ids", "b/2.jpg", "a/1.jpg", 2, "duplicate image id"),
])
def test_wsoleval_faults_name_file_and_line(tmp_path, name, old, new, line, match):
    meta = dict(META)
    meta[name] = meta[name].replace(old, new)
    d = write(str(tmp_path), **meta)
    raises_at(lambda: build_dataset("wsoleval", d), os.path.join(d, name + ".txt"), line, match)


def test_wsoleval_image_without_label_or_box(tmp_path):
    d = write(str(tmp_path), **dict(META, class_labels="a/1.jpg,3\n"))
    raises_at(lambda: build_dataset("wsoleval", d), os.path.join(d, "class_labels.txt"),
              match="no label for image b/2.jpg")
    d = write(str(tmp_path), **dict(META, localization="a/1.jpg,1,2,30,20\n"))
    raises_at(lambda: build_dataset("wsoleval", d), os.path.join(d, "localization.txt"),
              match="no box for image b/2.jpg")


def test_wsoleval_box_outside_is_clipped(tmp_path):
    d = write(str(tmp_path), **dict(META, localization="a/1.jpg,-3,2,45,20\nb/2.jpg,0,0,19,49\n"))
    ds = build_dataset("wsoleval", d)
    assert ds.samples[0].boxes.tolist() == [[0, 2, 40, 20]]
    assert [(i.kind, i.line) for i in ds.issues] == [("box_clipped", 1)]


def test_missing_metadata_folder(tmp_path):
    raises_at(lambda: build_dataset("wsoleval", str(tmp_path)), str(tmp_path), match="image_ids.txt")


def test_round_trip_imagenet_fixture(tmp_path):
    root = F.make_kaggle(os.path.join(str(tmp_path), "in"))
    ds = build_dataset("imagenet", root, split="val")
    out = os.path.join(str(tmp_path), "meta", "test")
    write_wsoleval_metadata(ds, out, progress=False)
    back = build_dataset("wsoleval", out, split="test", images=ds.image_root)
    assert key(back) == key(ds)
    assert back.class_names == ds.class_names
    with open(os.path.join(out, "localization.txt")) as f:
        assert f.readline() == f"val/{F.stem(1)}.JPEG,3,4,30,25\n"


def test_round_trip_float_boxes_and_sizes_from_headers(tmp_path):
    F.write_jpeg(os.path.join(str(tmp_path), "img", "x.jpg"), (33, 21))
    F.write_jpeg(os.path.join(str(tmp_path), "img", "sub", "y.jpg"), (10, 12))
    samples = [Sample("x.jpg", os.path.join(str(tmp_path), "img", "x.jpg"), 1, [[0.1, 1 / 3, 20.25, 20], [1, 2, 3, 4]]),
               Sample("sub/y.jpg", os.path.join(str(tmp_path), "img", "sub", "y.jpg"), 0, [[0, 0, 9, 11]])]
    ds = WsolDataset("mine", "test", str(tmp_path), os.path.join(str(tmp_path), "img"), samples)
    out = os.path.join(str(tmp_path), "meta")
    write_wsoleval_metadata(ds, out, progress=False)
    back = build_dataset("wsoleval", out, images=ds.image_root)
    assert [(s.width, s.height) for s in back] == [(33, 21), (10, 12)]
    for a, b in zip(back.samples, ds.samples):
        assert (a.image_id, a.path, a.label) == (b.image_id, b.path, b.label)
        assert np.array_equal(a.boxes, b.boxes)  # exact, floats included
    assert not os.path.exists(os.path.join(out, "class_names.txt"))


def test_write_needs_a_size(tmp_path):
    ds = WsolDataset("mine", "test", "", "", [Sample("x.jpg", "", 0, [[0, 0, 1, 1]])])
    with pytest.raises(DataError, match="size of x.jpg unknown"):
        write_wsoleval_metadata(ds, str(tmp_path), progress=False)


# ----------------------------------------------------------------------------- folder + CSV

def make_folder(root, csv_text, name="boxes.csv", images=(("a.jpg", (40, 30)), ("sub/b.jpg", (20, 20)))):
    for rel, size in images:
        F.write_jpeg(os.path.join(root, rel), size)
    with open(os.path.join(root, name), "w") as f:
        f.write(csv_text)
    return root


def test_folder_without_header_int_labels(tmp_path):
    root = make_folder(str(tmp_path), "a.jpg,2,1,2,30,20\nsub/b.jpg,0,0,0,19,19\na.jpg,2,5,5,6,6\n")
    ds = build_dataset("folder", root)
    assert [(s.image_id, s.label, s.boxes.tolist()) for s in ds] == [
        ("a.jpg", 2, [[1, 2, 30, 20], [5, 5, 6, 6]]), ("sub/b.jpg", 0, [[0, 0, 19, 19]])]
    assert ds.samples[1].path == os.path.join(root, "sub/b.jpg") and ds.image_root == root
    assert ds.class_names == []


def test_folder_header_names_and_column_order(tmp_path):
    root = make_folder(str(tmp_path), "xmin,ymin,xmax,ymax,class,path\n1,2,30,20,dog,a.jpg\n0,0,19,19,cat,sub/b.jpg\n",
                       name="annotations.csv")
    ds = build_dataset("folder", root)
    assert ds.class_names == ["cat", "dog"]
    assert [(s.image_id, s.label) for s in ds] == [("a.jpg", 1), ("sub/b.jpg", 0)]


def test_folder_classes_file(tmp_path):
    root = make_folder(str(tmp_path), "image,label,x0,y0,x1,y1\na.jpg,dog,1,2,30,20\nsub/b.jpg,0,0,0,19,19\n")
    classes = os.path.join(root, "classes.txt")
    with open(classes, "w") as f:
        f.write("cat\ndog\nbird\n")
    ds = build_dataset("folder", root, csv=os.path.join(root, "boxes.csv"), classes=classes)
    assert ds.class_names == ["cat", "dog", "bird"]
    assert [s.label for s in ds] == [1, 0]
    csv = os.path.join(root, "boxes.csv")
    with open(csv, "a") as f:
        f.write("c.jpg,dgo,1,1,2,2\n")
    raises_at(lambda: build_dataset("folder", root, classes=classes), csv, 4, "did you mean: dog")


@pytest.mark.parametrize("bad,match", [
    ("sub/b.jpg,0,0,0,19\n", "expected 6 fields"),
    ("sub/b.jpg,0,0,0,19,1x\n", "not a number"),
    ("sub/b.jpg,0,10,0,9,19\n", "inverted box"),
    ("a.jpg,1,0,0,9,19\n", "differs from '2' on line 1"),
    ("sub/b.jpg,dog,0,0,9,19\n", "'dog' is a name but '2' on line 1 is a number"),
    ("../c.jpg,2,0,0,9,19\n", "outside the image folder"),
    ("sub/b.jpg,-1,0,0,9,19\n", "negative class index"),
])
def test_folder_bad_rows(tmp_path, bad, match):
    root = make_folder(str(tmp_path), "a.jpg,2,1,2,30,20\n" + bad)
    raises_at(lambda: build_dataset("folder", root), os.path.join(root, "boxes.csv"), 2, match)


def test_folder_bad_header(tmp_path):
    root = make_folder(str(tmp_path), "picture,label,x0,y0,x1,y1\na.jpg,2,1,2,30,20\n")
    raises_at(lambda: build_dataset("folder", root), os.path.join(root, "boxes.csv"), 1, "column image")


def test_folder_csv_choice(tmp_path):
    root = str(tmp_path)
    raises_at(lambda: build_dataset("folder", root), root, match="no box CSV")
    make_folder(root, "a.jpg,0,1,2,3,4\n")
    make_folder(root, "a.jpg,0,1,2,3,4\n", name="annotations.csv")
    raises_at(lambda: build_dataset("folder", root), root, match="pass csv=FILE")
    assert len(build_dataset("folder", root, csv="annotations.csv")) == 1


def test_folder_round_trip_through_wsoleval(tmp_path):
    root = make_folder(str(tmp_path), "a.jpg,1,1,2,30,20\nsub/b.jpg,0,0,0,19,19\n")
    ds = build_dataset("folder", root)
    out = os.path.join(str(tmp_path), "meta")
    write_wsoleval_metadata(ds, out, progress=False)
    back = build_dataset("wsoleval", out, images=root)
    assert [(s.width, s.height) for s in back] == [(40, 30), (20, 20)]
    assert [k[:4] for k in key(back)] == [k[:4] for k in key(ds)]
