"""ILSVRC2012 val adapter: every layout, the devkit, every planted fault, and the real 100 images."""
from __future__ import annotations

import os

import numpy as np
import pytest

import imagenet_fixtures as F
from imagenet_fixtures import raises_at
from wsol.datasets.base import build_dataset
from wsol.datasets.imagenet import read_devkit_meta
from wsol.errors import DataError



def build(root, **kw):
    return build_dataset("imagenet", str(root), split="val", **kw)


# ----------------------------------------------------------------------------- layouts

def test_kaggle_layout(tmp_path):
    F.make_kaggle(str(tmp_path))
    ds = build(tmp_path)
    assert F.as_tuples(ds) == F.expected()
    assert ds.class_names == F.CLASSES
    assert ds.image_root == os.path.join(str(tmp_path), "ILSVRC", "Data", "CLS-LOC")
    assert all(os.path.isfile(s.path) and s.path == os.path.join(ds.image_root, s.image_id) for s in ds.samples)
    assert ds.samples[1].boxes.shape == (3, 4) and ds.samples[1].boxes.dtype == np.float64
    assert ds.issues == []


def test_kaggle_layout_without_xml_has_unknown_sizes(tmp_path):
    F.make_kaggle(str(tmp_path), xml=False)
    ds = build(tmp_path)
    assert [t[:3] for t in F.as_tuples(ds)] == [t[:3] for t in F.expected()]
    assert all(s.width == 0 and s.height == 0 for s in ds.samples)
    assert [i.kind for i in ds.issues] == ["no_sizes"]


def test_kaggle_layout_without_csv_reads_the_xmls(tmp_path):
    F.make_kaggle(str(tmp_path))
    os.remove(os.path.join(str(tmp_path), "LOC_val_solution.csv"))
    ds = build(tmp_path)
    assert F.as_tuples(ds) == F.expected()
    assert ds.image_root == os.path.join(str(tmp_path), "ILSVRC", "Data", "CLS-LOC")
    assert all(os.path.isfile(s.path) for s in ds.samples)


@pytest.mark.parametrize("xml_dir", ["val", "val_bbox", os.path.join("bbox", "val")])
def test_tar_layout_with_mapping(tmp_path, xml_dir):
    F.make_tar(str(tmp_path), xml_dir=xml_dir, mapping=True)
    ds = build(tmp_path)
    assert F.as_tuples(ds) == F.expected()
    assert ds.image_root == str(tmp_path)
    assert all(s.path == os.path.join(str(tmp_path), s.image_id) and os.path.isfile(s.path) for s in ds.samples)
    assert ds.issues == []


def test_tar_layout_with_devkit_uses_sorted_wnid_order(tmp_path):
    F.make_tar(str(tmp_path), xml_dir="val_bbox")
    F.write_devkit(str(tmp_path))
    ds = build(tmp_path)
    assert F.as_tuples(ds) == F.expected()
    assert ds.class_names == F.CLASSES  # leaves only (non-leaf n00001740 sorts first but is no class)
    # image 1 is ILSVRC2012_ID 1 (n04000003) but class index 3 in sorted-WNID order
    assert ds.samples[0].label == 3 and F.ID_OF[F.CLASSES[3]] == 1


def test_devkit_meta_reads_leaves_by_id(tmp_path):
    p = os.path.join(str(tmp_path), "meta.mat")
    F.write_meta_mat(p)
    assert read_devkit_meta(p) == F.LEAF_IDS


def test_class_list_from_annotations_warns(tmp_path):
    F.make_tar(str(tmp_path))
    ds = build(tmp_path)
    seen = sorted({w for _n, w, _wh, _b in F.IMAGES})  # n05000005 has no image
    assert ds.class_names == seen
    assert [i.kind for i in ds.issues] == ["class_list"]
    assert [s.label for s in ds.samples] == [seen.index(w) for _n, w, _wh, _b in F.IMAGES]


def test_wnids_option_file_and_list(tmp_path):
    F.make_tar(str(tmp_path))
    lst = os.path.join(str(tmp_path), "wnids.txt")
    with open(lst, "w") as f:
        f.write("\n".join(F.CLASSES) + "\n")
    assert F.as_tuples(build(tmp_path, wnids=lst)) == F.expected()
    assert F.as_tuples(build(tmp_path, wnids=F.CLASSES)) == F.expected()


def test_kaggle_with_devkit_agrees(tmp_path):
    F.make_kaggle(str(tmp_path))
    F.write_devkit(str(tmp_path))
    assert F.as_tuples(build(tmp_path)) == F.expected()


def test_split_test_is_an_alias_and_train_is_refused(tmp_path):
    F.make_kaggle(str(tmp_path))
    assert len(build_dataset("imagenet", str(tmp_path))) == 6  # default split 'test'
    with pytest.raises(DataError, match="unknown ImageNet split"):
        build_dataset("imagenet", str(tmp_path), split="train")


# ----------------------------------------------------------------------------- detection

def test_ambiguous_layout(tmp_path):
    F.make_kaggle(str(tmp_path))
    F.make_tar(str(tmp_path))
    msg = raises_at(lambda: build(tmp_path), str(tmp_path), match="ambiguous")
    assert "kaggle" in msg and "tar" in msg and "layout=" in msg
    assert len(build(tmp_path, layout="tar", wnids=F.CLASSES)) == 6
    assert len(build(tmp_path, layout="kaggle")) == 6


def test_unrecognised_layout_lists_found_and_needed(tmp_path):
    os.makedirs(os.path.join(str(tmp_path), "images"))
    open(os.path.join(str(tmp_path), "notes.txt"), "w").close()
    msg = raises_at(lambda: build(tmp_path), str(tmp_path), match="no ImageNet val layout")
    assert "found: images, notes.txt" in msg
    assert "LOC_val_solution.csv" in msg and "val/*.JPEG" in msg and "bbox" in msg


def test_tar_layout_without_xml(tmp_path):
    F.write_images(os.path.join(str(tmp_path), "val"))
    raises_at(lambda: build(tmp_path), str(tmp_path), match="no PASCAL VOC XMLs")


def test_two_xml_folders_are_ambiguous(tmp_path):
    F.make_tar(str(tmp_path), xml_dir="val")
    F.write_xmls(os.path.join(str(tmp_path), "val_bbox"))
    raises_at(lambda: build(tmp_path), str(tmp_path), match="bbox=DIR")
    assert len(build(tmp_path, bbox="val_bbox", wnids=F.CLASSES)) == 6


# ----------------------------------------------------------------------------- planted faults

def _edit(path, old, new, count=1):
    with open(path) as f:
        s = f.read()
    assert old in s
    with open(path, "w") as f:
        f.write(s.replace(old, new, count))


def _line_of(path, needle, nth=1):
    with open(path) as f:
        hits = [i for i, l in enumerate(f, 1) if needle in l]
    return hits[nth - 1]


def test_csv_row_with_wrong_field_count(tmp_path):
    root = F.make_kaggle(str(tmp_path))
    csv = os.path.join(root, "LOC_val_solution.csv")
    _edit(csv, "ILSVRC2012_val_00000003,", "ILSVRC2012_val_00000003,extra,")
    raises_at(lambda: build(root), csv, _line_of(csv, "_00000003"), "expected 2 fields")


def test_csv_prediction_string_not_in_groups_of_five(tmp_path):
    root = F.make_kaggle(str(tmp_path))
    csv = os.path.join(root, "LOC_val_solution.csv")
    _edit(csv, "n03000002 5 6 20 40", "n03000002 5 6 20")
    raises_at(lambda: build(root), csv, _line_of(csv, "_00000003"), "groups of 5")


def test_csv_wnid_not_in_class_list(tmp_path):
    root = F.make_kaggle(str(tmp_path))
    csv = os.path.join(root, "LOC_val_solution.csv")
    _edit(csv, "n03000002 5 6 20 40", "n09999999 5 6 20 40")
    raises_at(lambda: build(root), csv, _line_of(csv, "_00000003"), "WNID n09999999 is not in the class list")


def test_csv_inverted_box_and_bad_number(tmp_path):
    root = F.make_kaggle(str(tmp_path))
    csv = os.path.join(root, "LOC_val_solution.csv")
    _edit(csv, "n03000002 5 6 20 40", "n03000002 25 6 20 40")
    raises_at(lambda: build(root), csv, _line_of(csv, "_00000003"), "inverted box")
    _edit(csv, "n03000002 25 6 20 40", "n03000002 5 6 2O 40")
    raises_at(lambda: build(root), csv, _line_of(csv, "_00000003"), "not a number")


def test_xml_wnid_not_in_class_list(tmp_path):
    root = F.make_tar(str(tmp_path))
    xml = os.path.join(root, "val", F.stem(4) + ".xml")
    _edit(xml, "n01000001", "n09999999")
    raises_at(lambda: build(root, wnids=F.CLASSES), xml, _line_of(xml, "<name>"), "WNID n09999999 is not in")


def test_xml_without_size(tmp_path):
    root = F.make_tar(str(tmp_path), mapping=True)
    xml = os.path.join(root, "val", F.stem(3) + ".xml")
    with open(xml, "w") as f:
        f.write(F.voc_xml(F.stem(3), None, [("n03000002", (5, 6, 20, 40))]))
    raises_at(lambda: build(root), xml, match="no <size>")


def test_xml_inverted_box(tmp_path):
    root = F.make_tar(str(tmp_path), mapping=True)
    xml = os.path.join(root, "val", F.stem(2) + ".xml")
    _edit(xml, "<ymax>31</ymax>", "<ymax>2</ymax>")  # second object: y 5..2
    raises_at(lambda: build(root), xml, _line_of(xml, "<bndbox>", 2), "inverted box")


def test_xml_malformed(tmp_path):
    root = F.make_tar(str(tmp_path), mapping=True)
    xml = os.path.join(root, "val", F.stem(5) + ".xml")
    _edit(xml, "</segmented>", "</segmentd>")
    raises_at(lambda: build(root), xml, _line_of(xml, "segmentd"), "malformed XML")


def test_xml_objects_of_two_classes(tmp_path):
    root = F.make_tar(str(tmp_path), mapping=True)
    xml = os.path.join(root, "val", F.stem(5) + ".xml")
    with open(xml, "w") as f:
        f.write(F.voc_xml(F.stem(5), (44, 28), [("n02000004", (2, 3, 10, 12)), ("n01000001", (15, 8, 43, 27))]))
    raises_at(lambda: build(root), xml, _line_of(xml, "<name>", 2), "different classes")


def test_devkit_disagreeing_with_xml(tmp_path):
    root = F.make_tar(str(tmp_path), xml_dir="val_bbox")
    F.write_devkit(root, override={3: "n05000005"})
    xml = os.path.join(root, "val_bbox", F.stem(3) + ".xml")
    msg = raises_at(lambda: build(root), xml, _line_of(xml, "<name>"), "disagrees with the devkit")
    assert "ILSVRC2012_validation_ground_truth.txt:3" in msg and "n05000005" in msg


def test_devkit_ground_truth_without_meta(tmp_path):
    root = F.make_tar(str(tmp_path))
    data = F.write_devkit(root)
    os.remove(os.path.join(data, "meta.mat"))
    raises_at(lambda: build(root), os.path.join(data, "meta.mat"), match="missing devkit meta.mat")


def test_devkit_bad_ground_truth_line(tmp_path):
    root = F.make_tar(str(tmp_path))
    data = F.write_devkit(root)
    gt = os.path.join(data, "ILSVRC2012_validation_ground_truth.txt")
    with open(gt) as f:
        lines = f.readlines()
    lines[3] = "77\n"
    with open(gt, "w") as f:
        f.writelines(lines)
    raises_at(lambda: build(root), gt, 4, "ILSVRC2012_ID 77 is not a leaf synset")


def test_box_outside_is_clipped_and_recorded(tmp_path):
    root = F.make_tar(str(tmp_path), mapping=True)
    xml = os.path.join(root, "val", F.stem(1) + ".xml")
    _edit(xml, "<xmax>30</xmax>", "<xmax>45</xmax>")  # image is 40 wide
    ds = build(root)
    assert ds.samples[0].boxes.tolist() == [[3, 4, 40, 25]]
    (issue,) = ds.issues
    assert issue.kind == "box_clipped" and issue.path == xml and issue.line == _line_of(xml, "<bndbox>")
    assert issue.image_id == f"val/{F.stem(1)}.JPEG"
    # a box edge on the border (x1 == width) is inside, as in wsoleval
    _edit(xml, "<xmax>45</xmax>", "<xmax>40</xmax>")
    assert build(root).issues == []


def test_duplicate_csv_image(tmp_path):
    root = F.make_kaggle(str(tmp_path))
    csv = os.path.join(root, "LOC_val_solution.csv")
    with open(csv, "a") as f:
        f.write("ILSVRC2012_val_00000001,n04000003 1 1 2 2\n")
    raises_at(lambda: build(root), csv, 8, "duplicate ImageId")


def test_images_without_xml_are_left_out_and_reported(tmp_path):
    root = F.make_tar(str(tmp_path), mapping=True)
    os.remove(os.path.join(root, "val", F.stem(6) + ".xml"))
    ds = build(root)
    assert len(ds) == 5
    assert [i.kind for i in ds.issues] == ["unannotated_image"]


# ----------------------------------------------------------------------------- real data

@pytest.mark.realdata
def test_real_data_layouts_agree(tmp_path, shared_imagenet):
    SHARED = shared_imagenet
    kaggle = build(SHARED)
    # tar layout assembled from the same files: val/*.JPEG + val/*.xml
    val = os.path.join(str(tmp_path), "val")
    os.makedirs(val)
    for sub in (("ILSVRC", "Data", "CLS-LOC", "val"), ("ILSVRC", "Annotations", "CLS-LOC", "val")):
        d = os.path.join(SHARED, *sub)
        for name in os.listdir(d):
            os.symlink(os.path.join(d, name), os.path.join(val, name))
    tar = build(tmp_path, wnids=os.path.join(SHARED, "LOC_synset_mapping.txt"))
    wse = build_dataset("wsoleval", os.path.join(SHARED, "wsoleval", "test"), split="test",
                        images=os.path.join(SHARED, "ILSVRC", "Data", "CLS-LOC"))

    def key(ds):
        return [(s.image_id, s.label, s.boxes.tolist(), s.width, s.height) for s in ds.samples]

    assert key(kaggle) == key(tar) == key(wse)
    assert len(kaggle) == 100
    assert sum(len(s.boxes) for s in kaggle.samples) == 185
    assert len({s.label for s in kaggle.samples}) == 86
    assert kaggle.num_classes == 1000 and kaggle.class_names == sorted(kaggle.class_names)
    assert [s.path for s in kaggle.samples] == [s.path for s in wse.samples]
    assert all(os.path.isfile(s.path) for s in tar.samples)
    assert kaggle.issues == [] and tar.issues == []
