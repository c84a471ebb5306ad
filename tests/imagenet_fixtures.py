"""Tiny fake ILSVRC2012 val sets, written from code, in every layout wsol reads.

Six images of five leaf classes. The devkit numbers the classes (ILSVRC2012_ID) in an order
that is NOT the sorted-WNID order, so a reader that confuses the two gets other labels.
Image 2 has three boxes, image 5 two. Class n05000005 has no image.
"""
from __future__ import annotations

import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pytest
from PIL import Image

from wsol.errors import DataError

# devkit ILSVRC2012_ID -> WNID (leaves: IDs 1..1000); sorted order differs from ID order
LEAF_IDS: Dict[int, str] = {1: "n04000003", 2: "n01000001", 3: "n03000002", 4: "n02000004", 5: "n05000005"}
NON_LEAF_IDS: Dict[int, str] = {1001: "n00001740", 1002: "n00002684"}  # entity, object: not classes
CLASSES: List[str] = sorted(LEAF_IDS.values())  # class index = position here
WORDS = {w: f"thing {w[-1]}" for w in list(LEAF_IDS.values()) + list(NON_LEAF_IDS.values())}
ID_OF = {w: i for i, w in LEAF_IDS.items()}

Box = Tuple[int, int, int, int]
# (val image number, WNID, (width, height), boxes x0,y0,x1,y1)
IMAGES: List[Tuple[int, str, Tuple[int, int], List[Box]]] = [
    (1, "n04000003", (40, 30), [(3, 4, 30, 25)]),
    (2, "n01000001", (48, 32), [(0, 0, 10, 10), (12, 5, 40, 31), (20, 20, 47, 31)]),
    (3, "n03000002", (32, 48), [(5, 6, 20, 40)]),
    (4, "n01000001", (36, 36), [(1, 1, 35, 35)]),
    (5, "n02000004", (44, 28), [(2, 3, 10, 12), (15, 8, 43, 27)]),
    (6, "n04000003", (30, 40), [(10, 10, 20, 39)]),
]
N_BOXES = sum(len(b) for *_, b in IMAGES)


def stem(n: int) -> str:
    return f"ILSVRC2012_val_{n:08d}"


def expected() -> List[Tuple[str, int, List[Box], int, int]]:
    """``(image_id, label, boxes, width, height)`` per image, sorted by image id."""
    return [(f"val/{stem(n)}.JPEG", CLASSES.index(w), [tuple(b) for b in boxes], wh[0], wh[1])
            for n, w, wh, boxes in IMAGES]


def as_tuples(dataset) -> List[Tuple[str, int, List[Box], int, int]]:
    return [(s.image_id, s.label, [tuple(int(v) for v in b) for b in s.boxes], s.width, s.height)
            for s in dataset.samples]


def write_jpeg(path: str, size: Tuple[int, int], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(arr).save(path, format="JPEG", quality=80)


def voc_xml(name: str, size: Optional[Tuple[int, int]], objects: Sequence[Tuple[str, Box]]) -> str:
    """PASCAL VOC XML text as in ILSVRC2012_bbox_val_v3.tgz (``size=None`` leaves size out)."""
    out = ["<annotation>", "\t<folder>val</folder>", f"\t<filename>{name}</filename>",
           "\t<source>", "\t\t<database>ILSVRC_2012</database>", "\t</source>"]
    if size is not None:
        out += ["\t<size>", f"\t\t<width>{size[0]}</width>", f"\t\t<height>{size[1]}</height>",
                "\t\t<depth>3</depth>", "\t</size>"]
    out.append("\t<segmented>0</segmented>")
    for wnid, (x0, y0, x1, y1) in objects:
        out += ["\t<object>", f"\t\t<name>{wnid}</name>", "\t\t<pose>Unspecified</pose>",
                "\t\t<truncated>0</truncated>", "\t\t<difficult>0</difficult>", "\t\t<bndbox>",
                f"\t\t\t<xmin>{x0}</xmin>", f"\t\t\t<ymin>{y0}</ymin>", f"\t\t\t<xmax>{x1}</xmax>",
                f"\t\t\t<ymax>{y1}</ymax>", "\t\t</bndbox>", "\t</object>"]
    out.append("</annotation>")
    return "\n".join(out) + "\n"


def write_xmls(xml_dir: str, images=IMAGES) -> None:
    os.makedirs(xml_dir, exist_ok=True)
    for n, w, wh, boxes in images:
        with open(os.path.join(xml_dir, stem(n) + ".xml"), "w") as f:
            f.write(voc_xml(stem(n), wh, [(w, b) for b in boxes]))


def write_images(image_dir: str, images=IMAGES) -> None:
    for n, _w, wh, _b in images:
        write_jpeg(os.path.join(image_dir, stem(n) + ".JPEG"), wh, seed=n)


def write_synset_mapping(path: str, wnids: Sequence[str] = CLASSES) -> None:
    with open(path, "w") as f:
        f.writelines(f"{w} {WORDS.get(w, 'thing')}, {w}\n" for w in wnids)


def make_kaggle(root: str, images=IMAGES, xml: bool = True, mapping: bool = True) -> str:
    """Kaggle localization layout under ``root``."""
    write_images(os.path.join(root, "ILSVRC", "Data", "CLS-LOC", "val"), images)
    if xml:
        write_xmls(os.path.join(root, "ILSVRC", "Annotations", "CLS-LOC", "val"), images)
    with open(os.path.join(root, "LOC_val_solution.csv"), "w") as f:
        f.write("ImageId,PredictionString\n")
        for n, w, _wh, boxes in images[::-1]:  # not sorted, like the real file
            f.write(f"{stem(n)}," + "".join(f"{w} {x0} {y0} {x1} {y1} " for x0, y0, x1, y1 in boxes) + "\n")
    if mapping:
        write_synset_mapping(os.path.join(root, "LOC_synset_mapping.txt"))
    return root


def make_tar(root: str, images=IMAGES, xml_dir: str = "val", mapping: bool = False) -> str:
    """Official-tar layout: ``root/val/*.JPEG`` and the XMLs in ``root/<xml_dir>``."""
    write_images(os.path.join(root, "val"), images)
    write_xmls(os.path.join(root, xml_dir), images)
    if mapping:
        write_synset_mapping(os.path.join(root, "LOC_synset_mapping.txt"))
    return root


def write_meta_mat(path: str, leaves: Dict[int, str] = LEAF_IDS, non_leaves: Dict[int, str] = NON_LEAF_IDS) -> None:
    """A devkit ``meta.mat``: struct array ``synsets`` [N, 1] with the real file's fields."""
    import scipy.io

    fields = ["ILSVRC2012_ID", "WNID", "words", "gloss", "num_children", "children",
              "wordnet_height", "num_train_images"]
    entries = sorted(leaves.items()) + sorted(non_leaves.items())
    syn = np.zeros((len(entries), 1), dtype=[(k, object) for k in fields])
    for i, (idx, wnid) in enumerate(entries):
        leaf = idx <= 1000
        syn[i, 0]["ILSVRC2012_ID"] = np.array([[idx]], dtype=np.uint16 if idx > 255 else np.uint8)
        syn[i, 0]["WNID"] = np.array([wnid])
        syn[i, 0]["words"] = np.array([WORDS.get(wnid, "thing")])
        syn[i, 0]["gloss"] = np.array([f"gloss of {wnid}"])
        syn[i, 0]["num_children"] = np.array([[0 if leaf else 2]], dtype=np.uint8)
        syn[i, 0]["children"] = np.zeros((1, 0)) if leaf else np.array([[1.0, 2.0]])
        syn[i, 0]["wordnet_height"] = np.array([[0 if leaf else 3]], dtype=np.uint8)
        syn[i, 0]["num_train_images"] = np.array([[1300 if leaf else 0]], dtype=np.uint16)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    scipy.io.savemat(path, {"synsets": syn})


def write_devkit(root: str, images=IMAGES, override: Optional[Dict[int, str]] = None) -> str:
    """``root/ILSVRC2012_devkit_t12/data/{meta.mat, ILSVRC2012_validation_ground_truth.txt}``.

    override: image number -> WNID to plant a disagreement with the XMLs.
    """
    data = os.path.join(root, "ILSVRC2012_devkit_t12", "data")
    write_meta_mat(os.path.join(data, "meta.mat"))
    labels = {n: w for n, w, _wh, _b in images}
    labels.update(override or {})
    with open(os.path.join(data, "ILSVRC2012_validation_ground_truth.txt"), "w") as f:
        for n in range(1, max(labels) + 1):
            f.write(f"{ID_OF[labels.get(n, CLASSES[0])]}\n")
    return data


def raises_at(fn, path, line=None, match=""):
    """fn() raises DataError whose one-line message starts with ``path:line:``."""
    with pytest.raises(DataError) as ei:
        fn()
    msg = str(ei.value)
    assert "\n" not in msg
    prefix = f"{path}:{line}: " if line is not None else f"{path}"
    assert msg.startswith(prefix), msg
    assert re.search(match, msg), msg
    return msg
