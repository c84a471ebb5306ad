"""ILSVRC2012 validation set in any of its usual layouts (docs/datasets.md, Dataset layouts).

Layouts (``ROOT`` is the folder passed as root):

- ``kaggle``: ``ROOT/ILSVRC/Data/CLS-LOC/val/*.JPEG``, ``ROOT/LOC_val_solution.csv``
  (``ImageId,PredictionString``, repeated ``wnid x0 y0 x1 y1`` groups), optional
  ``ROOT/ILSVRC/Annotations/CLS-LOC/val/*.xml`` (image sizes) and ``ROOT/LOC_synset_mapping.txt``.
  Image root ``ROOT/ILSVRC/Data/CLS-LOC``.
- ``tar`` (the official archives unpacked): ``ROOT/val/*.JPEG`` and the PASCAL VOC XMLs of
  ``ILSVRC2012_bbox_val_v3.tgz`` in ``ROOT/val/`` or a folder of their own (``val_bbox/``,
  ``bbox/val/`` ... or ``bbox=DIR``). Image root ``ROOT``.

Either way image ids are ``val/<file>.JPEG`` and, when the devkit (``meta.mat`` and
``ILSVRC2012_validation_ground_truth.txt``) is found, its labels are checked against the
annotations. Class index = position of the WNID in sorted order (torchvision/timm): the class
list comes from ``wnids=`` (file or list), else ``LOC_synset_mapping.txt``, else the devkit's
1000 leaf synsets, else the WNIDs seen in the annotations (with a warning issue).
"""
from __future__ import annotations

import csv
import io
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from tqdm import tqdm

from wsol.datasets.base import DataIssue, Sample, WsolDataset, check_image_id, register_dataset, require_file
from wsol.datasets.textfiles import to_number
from wsol.datasets.vocxml import VocAnnotation, clip_box, read_voc_xml
from wsol.errors import DataError, first_line
from wsol.utils.io import read_text_file, text_lines

KAGGLE_IMAGES = os.path.join("ILSVRC", "Data", "CLS-LOC", "val")
KAGGLE_XMLS = os.path.join("ILSVRC", "Annotations", "CLS-LOC", "val")
KAGGLE_CSV = "LOC_val_solution.csv"
SYNSET_MAPPING = "LOC_synset_mapping.txt"
XML_DIRS = ("val", "val_bbox", os.path.join("bbox", "val"), "bbox", os.path.join("Annotations", "val"),
            os.path.join("ILSVRC2012_bbox_val_v3", "val"))
DEVKIT_DIRS = (os.path.join("ILSVRC2012_devkit_t12", "data"), os.path.join("devkit", "data"),
               "ILSVRC2012_devkit_t12", "devkit", "data", "")
DEVKIT_GT = "ILSVRC2012_validation_ground_truth.txt"
DEVKIT_META = "meta.mat"
IMAGE_EXTS = (".jpeg", ".jpg", ".png")
VAL_NAME = re.compile(r"ILSVRC2012_val_(\d{8})$")

LAYOUT_NEEDS = (
    "kaggle layout needs ILSVRC/Data/CLS-LOC/val/*.JPEG and LOC_val_solution.csv "
    "(+ ILSVRC/Annotations/CLS-LOC/val/*.xml for image sizes, LOC_synset_mapping.txt); "
    "tar layout needs val/*.JPEG (ILSVRC2012_img_val.tar) and the PASCAL VOC XMLs of "
    "ILSVRC2012_bbox_val_v3.tgz in val/, val_bbox/ or bbox/val/ "
    "(+ LOC_synset_mapping.txt, wnids=FILE or the devkit for the 1000-class list)")


# ----------------------------------------------------------------------------- class lists

def read_wnid_list(path: str) -> List[str]:
    """WNIDs of a class-list file, one per line (first token; ``LOC_synset_mapping.txt`` works).

    Line order is class order. Duplicates raise DataError naming file and line.
    """
    require_file(path, "WNID list file")
    out: List[str] = []
    seen: Dict[str, int] = {}
    for ln, line in enumerate(text_lines(read_text_file(path, "WNID list file")), 1):
        tok = line.split(None, 1)
        if not tok:
            continue
        wnid = tok[0]
        if wnid in seen:
            raise DataError(f"duplicate WNID {wnid} (first on line {seen[wnid]})", path=path, line=ln)
        seen[wnid] = ln
        out.append(wnid)
    if not out:
        raise DataError("empty WNID list", path=path)
    return out


class Devkit:
    """ILSVRC2012 devkit: ``meta.mat`` (synsets) and the validation ground truth."""

    def __init__(self, data_dir: str):
        self.dir = data_dir
        self.meta_path = require_file(os.path.join(data_dir, DEVKIT_META), "devkit meta.mat")
        self.gt_path = os.path.join(data_dir, DEVKIT_GT)
        self.id_to_wnid = read_devkit_meta(self.meta_path)
        self._gt: Optional[List[Tuple[int, int]]] = None

    @property
    def wnids(self) -> List[str]:
        """The leaf WNIDs (ILSVRC2012_ID 1..1000) in sorted order: the class list."""
        return sorted(self.id_to_wnid.values())

    @property
    def has_ground_truth(self) -> bool:
        return os.path.isfile(self.gt_path)

    def ground_truth(self) -> List[Tuple[int, int]]:
        """``(ILSVRC2012_ID, line)`` for val image 1, 2, ... (line i = image i)."""
        if self._gt is None:
            gt: List[Tuple[int, int]] = []
            text = read_text_file(require_file(self.gt_path, "devkit validation ground truth"), "ground-truth file")
            for ln, line in enumerate(text_lines(text), 1):
                if not line.strip():
                    continue
                idx = to_number(line.strip(), int, self.gt_path, ln, "ILSVRC2012_ID")
                if idx not in self.id_to_wnid:
                    raise DataError(f"ILSVRC2012_ID {idx} is not a leaf synset of {self.meta_path}",
                                    path=self.gt_path, line=ln)
                gt.append((idx, ln))
            self._gt = gt
        return self._gt

    def label_of(self, image_number: int) -> Tuple[str, int]:
        """``(WNID, ground-truth line)`` of val image number ``image_number`` (1-based)."""
        gt = self.ground_truth()
        if not 1 <= image_number <= len(gt):
            raise DataError(f"no ground truth for val image {image_number} (file lists {len(gt)})",
                            path=self.gt_path)
        idx, ln = gt[image_number - 1]
        return self.id_to_wnid[idx], ln


def read_devkit_meta(path: str) -> Dict[int, str]:
    """ILSVRC2012_ID -> WNID of the leaf synsets (IDs 1..1000) of a devkit ``meta.mat``."""
    import scipy.io

    try:
        meta = scipy.io.loadmat(path, squeeze_me=False)
    except Exception as e:  # scipy raises ValueError/TypeError/MatReadError on junk
        raise DataError(f"unreadable meta.mat ({first_line(e, 100)})", path=path) from None
    if "synsets" not in meta:
        raise DataError("no 'synsets' array in meta.mat", path=path)
    syn = meta["synsets"]
    names = syn.dtype.names or ()
    if "ILSVRC2012_ID" not in names or "WNID" not in names:
        raise DataError(f"synsets lack ILSVRC2012_ID/WNID fields (has {', '.join(names)})", path=path)
    out: Dict[int, str] = {}
    for s in syn.ravel():
        idx = int(np.asarray(s["ILSVRC2012_ID"]).ravel()[0])
        wnid = str(np.asarray(s["WNID"]).ravel()[0])
        if 1 <= idx <= 1000:
            out[idx] = wnid
    if not out:
        raise DataError("no leaf synsets (ILSVRC2012_ID 1..1000) in meta.mat", path=path)
    return out


def find_devkit(root: str, devkit: Optional[str] = None) -> Optional[Devkit]:
    """The devkit under ``root`` (or at ``devkit``), or None when there is none."""
    if devkit is not None:
        for d in (os.path.join(devkit, "data"), devkit):
            if os.path.isfile(os.path.join(d, DEVKIT_META)):
                return Devkit(d)
        raise DataError(f"no devkit {DEVKIT_META} here (nor in data/)", path=devkit)
    for sub in DEVKIT_DIRS:
        d = os.path.join(root, sub)
        if os.path.isfile(os.path.join(d, DEVKIT_META)):
            return Devkit(d)
        if os.path.isfile(os.path.join(d, DEVKIT_GT)):
            require_file(os.path.join(d, DEVKIT_META), f"devkit meta.mat (next to {DEVKIT_GT})")
    return None


def _class_list(root: str, wnids, devkit: Optional[Devkit], seen: Sequence[str],
                issues: List[DataIssue]) -> Tuple[List[str], str]:
    if wnids is not None:
        if isinstance(wnids, (str, os.PathLike)):
            lst, src = read_wnid_list(str(wnids)), str(wnids)
        else:
            lst, src = [str(w) for w in wnids], "wnids="
            if len(set(lst)) != len(lst):
                raise DataError("duplicate WNIDs in the wnids= list")
    elif os.path.isfile(os.path.join(root, SYNSET_MAPPING)):
        src = os.path.join(root, SYNSET_MAPPING)
        lst = read_wnid_list(src)
    elif devkit is not None:
        lst, src = devkit.wnids, devkit.meta_path
    else:
        lst, src = sorted(set(seen)), "annotations"
        issues.append(DataIssue(
            "class_list", f"class list guessed from the {len(lst)} WNIDs in the annotations; labels are "
            "ImageNet-1k indices only if all 1000 classes occur (give wnids=LOC_synset_mapping.txt)", root))
    if lst != sorted(lst):
        issues.append(DataIssue("class_order", "WNID list is not in sorted order; class index = its line order",
                                src if src != "wnids=" else ""))
    return lst, src


# ----------------------------------------------------------------------------- layouts

def _has_images(d: str) -> bool:
    try:
        with os.scandir(d) as it:
            return any(e.name.lower().endswith(IMAGE_EXTS) for e in it)
    except OSError:
        return False


def _has_xml(d: str) -> bool:
    try:
        with os.scandir(d) as it:
            return any(e.name.lower().endswith(".xml") for e in it)
    except OSError:
        return False


def detect_layout(root: str) -> str:
    """'kaggle' or 'tar', or a one-line DataError saying what was found and what each needs."""
    kaggle = [p for p in (KAGGLE_IMAGES, KAGGLE_CSV) if os.path.exists(os.path.join(root, p))]
    tar = _has_images(os.path.join(root, "val"))
    if kaggle and tar:
        raise DataError(f"ambiguous ImageNet layout: found both kaggle ({', '.join(kaggle)}) and tar "
                        "(val/*.JPEG) files; pass layout='kaggle' or layout='tar'", path=root)
    if kaggle:
        return "kaggle"
    if tar:
        return "tar"
    try:
        found = sorted(os.listdir(root))
    except OSError:
        found = []
    listing = ", ".join(found[:12]) + (" ..." if len(found) > 12 else "") if found else "nothing"
    raise DataError(f"no ImageNet val layout recognised (found: {listing}); {LAYOUT_NEEDS}", path=root)


def _clip(sample_boxes: List[List[float]], w: int, h: int, image_id: str, path: str,
          lines: Sequence[Optional[int]], issues: List[DataIssue]) -> List[List[float]]:
    out = []
    for box, ln in zip(sample_boxes, lines):
        c = clip_box(box, w, h)
        if c is not None:
            issues.append(DataIssue("box_clipped", f"box {_fmt(box)} of {image_id} is outside the {w}x{h} "
                                    f"image; clipped to {_fmt(c)}", path, ln, image_id))
            box = list(c)
        out.append(list(box))
    return out


def _fmt(box) -> str:
    return ",".join(f"{v:g}" for v in box)


def _check_devkit_label(devkit: Optional[Devkit], stem: str, ann: Optional[VocAnnotation],
                        wnid: str, path: str, line: Optional[int]) -> str:
    """The devkit's WNID for image ``stem`` (or ``wnid`` when no devkit); DataError on disagreement."""
    if devkit is None or not devkit.has_ground_truth:
        return wnid
    m = VAL_NAME.search(stem)
    if m is None:
        raise DataError(f"cannot match {stem!r} to the devkit ground truth (expected ILSVRC2012_val_NNNNNNNN)",
                        path=path, line=line)
    gt_wnid, gt_line = devkit.label_of(int(m.group(1)))
    if ann is not None:
        for o in ann.objects:
            if o.name != gt_wnid:
                raise DataError(f"object class {o.name} disagrees with the devkit ground truth "
                                f"({devkit.gt_path}:{gt_line} gives {gt_wnid})", path=ann.path, line=o.name_line)
    if wnid != gt_wnid:
        raise DataError(f"class {wnid} disagrees with the devkit ground truth "
                        f"({devkit.gt_path}:{gt_line} gives {gt_wnid})", path=path, line=line)
    return gt_wnid


def _image_label(ann: VocAnnotation) -> str:
    if not ann.objects:
        raise DataError("no <object> (image without a box)", path=ann.path)
    first = ann.objects[0].name
    for o in ann.objects[1:]:
        if o.name != first:
            raise DataError(f"objects of different classes ({first} and {o.name}) in one image",
                            path=ann.path, line=o.name_line)
    return first


def _read_kaggle(root: str, wnids, devkit: Optional[Devkit], issues: List[DataIssue]):
    """The Kaggle layout: LOC_val_solution.csv (+ the per-image XMLs for sizes, when present)."""
    csv_path = require_file(os.path.join(root, KAGGLE_CSV), "kaggle LOC_val_solution.csv")
    image_dir = os.path.join(root, KAGGLE_IMAGES)
    xml_dir = os.path.join(root, KAGGLE_XMLS)
    have_xml = os.path.isdir(xml_dir)
    if not have_xml:
        issues.append(DataIssue("no_sizes", f"no {KAGGLE_XMLS}: image sizes unknown until the images are read, "
                                "boxes not clipped", root))
    rows = _read_kaggle_csv(csv_path)
    classes, src = _class_list(root, wnids, devkit, [r[1] for r in rows.values()], issues)
    index = {w: i for i, w in enumerate(classes)}
    samples = []
    for iid in tqdm(sorted(rows), desc="reading annotations", unit="img", leave=False,
                    disable=len(rows) < 5000 or not have_xml):
        ln, wnid, boxes = rows[iid]
        if wnid not in index:
            raise DataError(f"WNID {wnid} is not in the class list ({src})", path=csv_path, line=ln)
        image_id = f"val/{iid}.JPEG"
        ann = _kaggle_xml(xml_dir, iid, wnid, boxes, csv_path, ln, issues) if have_xml else None
        w, h = (ann.width, ann.height) if ann is not None else (0, 0)
        _check_devkit_label(devkit, iid, ann, wnid, csv_path, ln)
        if w and h:
            boxes = _clip(boxes, w, h, image_id, csv_path, [ln] * len(boxes), issues)
        samples.append(Sample(image_id, os.path.join(image_dir, iid + ".JPEG"), index[wnid],
                              np.asarray(boxes, dtype=np.float64), w, h))
    return os.path.join(root, "ILSVRC", "Data", "CLS-LOC"), samples, classes


def _read_kaggle_csv(csv_path: str) -> Dict[str, Tuple[int, str, List[List[float]]]]:
    """LOC_val_solution.csv -> image id -> (line, wnid, boxes), every row checked."""
    rows: Dict[str, Tuple[int, str, List[List[float]]]] = {}
    with io.StringIO(read_text_file(csv_path, "CSV"), newline="") as f:
        reader = csv.reader(f)
        for row in reader:
            ln = reader.line_num
            if not row or not "".join(row).strip():
                continue
            if ln == 1 and row[0].strip() == "ImageId":
                continue
            if len(row) != 2:
                raise DataError(f"expected 2 fields (ImageId,PredictionString), got {len(row)}", path=csv_path, line=ln)
            iid = check_image_id(row[0].strip(), csv_path, ln)
            if iid in rows:
                raise DataError(f"duplicate ImageId {iid} (first on line {rows[iid][0]})", path=csv_path, line=ln)
            wnid, boxes = _prediction_string(row[1].split(), iid, csv_path, ln)
            rows[iid] = (ln, wnid, boxes)
    if not rows:
        raise DataError("no images listed", path=csv_path)
    return rows


def _prediction_string(toks: List[str], iid: str, csv_path: str, ln: int) -> Tuple[str, List[List[float]]]:
    """A PredictionString's groups of ``wnid x0 y0 x1 y1`` -> (wnid, boxes); one class per image."""
    if not toks or len(toks) % 5:
        raise DataError(f"PredictionString must hold groups of 5 (wnid x0 y0 x1 y1), got {len(toks)} values",
                        path=csv_path, line=ln)
    wnid, boxes = toks[0], []
    for k in range(0, len(toks), 5):
        if toks[k] != wnid:
            raise DataError(f"boxes of different classes ({wnid} and {toks[k]}) for {iid}", path=csv_path, line=ln)
        b = [to_number(v, float, csv_path, ln, "box coordinate") for v in toks[k + 1:k + 5]]
        if b[2] < b[0] or b[3] < b[1]:
            raise DataError(f"inverted box x0,y0,x1,y1 = {_fmt(b)} (x1 < x0 or y1 < y0)", path=csv_path, line=ln)
        boxes.append(b)
    return wnid, boxes


def _kaggle_xml(xml_dir: str, iid: str, wnid: str, boxes: List[List[float]], csv_path: str, ln: int,
                issues: List[DataIssue]):
    """The image's annotation XML (its size), checked against the CSV row; None (and an issue
    recorded) when it is missing."""
    image_id = f"val/{iid}.JPEG"
    xml_path = os.path.join(xml_dir, iid + ".xml")
    if not os.path.isfile(xml_path):
        issues.append(DataIssue("missing_xml", f"no annotation XML for {iid}: size unknown", xml_path, None, image_id))
        return None
    ann = read_voc_xml(xml_path)
    for o in ann.objects:
        if o.name != wnid:
            raise DataError(f"object class {o.name} disagrees with {csv_path}:{ln} ({wnid})",
                            path=xml_path, line=o.name_line)
    if sorted(tuple(o.box) for o in ann.objects) != sorted(tuple(b) for b in boxes):
        issues.append(DataIssue("csv_xml_mismatch", f"boxes of {iid} differ from {xml_path}; using the CSV",
                                csv_path, ln, image_id))
    return ann


def _find_xml_dir(root: str, bbox: Optional[str]) -> str:
    if bbox is not None:
        d = bbox if os.path.isabs(bbox) or os.path.isdir(bbox) else os.path.join(root, bbox)
        if not _has_xml(d):
            raise DataError("no *.xml annotations in the bbox= folder", path=d)
        return d
    found = [os.path.join(root, d) for d in XML_DIRS if _has_xml(os.path.join(root, d))]
    if not found:
        raise DataError("tar layout: val/*.JPEG found but no PASCAL VOC XMLs (looked in "
                        f"{', '.join(d + '/' for d in XML_DIRS)}); unpack ILSVRC2012_bbox_val_v3.tgz into "
                        "the root or pass bbox=DIR", path=root)
    if len(found) > 1:
        raise DataError(f"ambiguous: XML annotations in {' and '.join(found)}; pass bbox=DIR", path=root)
    return found[0]


def _read_xml_dir(root: str, image_dir: str, xml_dir: str, wnids, devkit: Optional[Devkit],
                  issues: List[DataIssue]) -> Tuple[List[Sample], List[str]]:
    """Samples from a folder of VOC XMLs (one per image) and the folder of their images."""
    images: Dict[str, str] = {}
    if os.path.isdir(image_dir):
        with os.scandir(image_dir) as it:
            for e in it:
                stem, ext = os.path.splitext(e.name)
                if ext.lower() in IMAGE_EXTS:
                    images[stem] = e.name
    xmls = sorted(n for n in os.listdir(xml_dir) if n.lower().endswith(".xml"))
    anns: List[VocAnnotation] = [read_voc_xml(os.path.join(xml_dir, n))
                                 for n in tqdm(xmls, desc="reading XMLs", unit="file", leave=False,
                                               disable=len(xmls) < 5000)]
    labels = [_image_label(a) for a in anns]
    classes, src = _class_list(root, wnids, devkit, labels, issues)
    index = {w: i for i, w in enumerate(classes)}
    samples = []
    stems = set()
    for name, ann, wnid in zip(xmls, anns, labels):
        stem = os.path.splitext(name)[0]
        stems.add(stem)
        bad = next((o for o in ann.objects if o.name not in index), None)
        if bad is not None:
            raise DataError(f"WNID {bad.name} is not in the class list ({src})", path=ann.path, line=bad.name_line)
        wnid = _check_devkit_label(devkit, stem, ann, wnid, ann.path, ann.objects[0].name_line)
        file = images.get(stem, stem + ".JPEG")
        image_id = f"val/{file}"
        boxes = _clip([list(o.box) for o in ann.objects], ann.width, ann.height, image_id, ann.path,
                      [o.line for o in ann.objects], issues)
        samples.append(Sample(image_id, os.path.join(image_dir, file), index[wnid],
                              np.asarray(boxes, dtype=np.float64), ann.width, ann.height))
    for stem in sorted(set(images) - stems):
        issues.append(DataIssue("unannotated_image", f"image {images[stem]} has no annotation XML in {xml_dir}; "
                                "left out", os.path.join(image_dir, images[stem]), None, f"val/{images[stem]}"))
    samples.sort(key=lambda s: s.image_id)
    return samples, classes


def read_imagenet(root: str, split: str = "val", wnids: Union[str, Sequence[str], None] = None,
                  layout: Optional[str] = None, bbox: Optional[str] = None,
                  devkit: Optional[str] = None) -> WsolDataset:
    """Read the ILSVRC2012 validation set under ``root`` (layout detected unless given).

    wnids: class-list file (one WNID per line, first token; line order = class order) or a
        list of WNIDs. layout: 'kaggle' or 'tar' when both are present. bbox: folder of the
        XMLs for the tar layout. devkit: devkit folder (found under root when not given).
    Samples are sorted by image id; every box of an image is kept (clipped to the image,
    each clip recorded in ``dataset.issues``).
    """
    if split not in ("val", "test"):
        raise DataError(f"unknown ImageNet split {split!r} (val; 'test' means the same images)", path=root)
    if layout is None:
        layout = detect_layout(root)
    elif layout not in ("kaggle", "tar"):
        raise DataError(f"unknown ImageNet layout {layout!r} (kaggle or tar)", path=root)
    elif layout == "tar" and not _has_images(os.path.join(root, "val")):
        raise DataError(f"layout='tar' but no val/*.JPEG; {LAYOUT_NEEDS}", path=root)
    elif layout == "kaggle" and not os.path.isdir(os.path.join(root, KAGGLE_IMAGES)) \
            and not os.path.isfile(os.path.join(root, KAGGLE_CSV)):
        raise DataError(f"layout='kaggle' but no {KAGGLE_IMAGES} or {KAGGLE_CSV}; {LAYOUT_NEEDS}", path=root)
    issues: List[DataIssue] = []
    dk = find_devkit(root, devkit)
    kaggle_csv = os.path.isfile(os.path.join(root, KAGGLE_CSV))
    if layout == "kaggle" and (kaggle_csv or not _has_xml(os.path.join(root, KAGGLE_XMLS))):
        image_root, samples, classes = _read_kaggle(root, wnids, dk, issues)
    elif layout == "kaggle":  # no LOC_val_solution.csv: the XMLs alone
        image_root = os.path.join(root, "ILSVRC", "Data", "CLS-LOC")
        samples, classes = _read_xml_dir(root, os.path.join(root, KAGGLE_IMAGES), os.path.join(root, KAGGLE_XMLS),
                                         wnids, dk, issues)
    else:
        image_root = root
        samples, classes = _read_xml_dir(root, os.path.join(root, "val"), _find_xml_dir(root, bbox), wnids, dk, issues)
    return WsolDataset("imagenet", split, root, image_root, samples, classes, issues)


def write_example(folder: str) -> tuple:
    """A tiny Kaggle-layout ILSVRC val folder: 3 classes (WNIDs n00000001..3) x 2 drawn images,
    LOC_val_solution.csv and LOC_synset_mapping.txt."""
    from wsol.datasets.examples import EXAMPLE_CLASSES, example_images, save_image, write_lines

    imgs = example_images(n_per_class=2, seed=3)
    wnids = [f"n{c + 1:08d}" for c in range(len(EXAMPLE_CLASSES))]
    rows = ["ImageId,PredictionString"]
    for i, im in enumerate(imgs, 1):
        stem = f"ILSVRC2012_val_{i:08d}"
        save_image(os.path.join(folder, KAGGLE_IMAGES, f"{stem}.JPEG"), im.pixels)
        rows.append(f"{stem},{wnids[im.label]} {' '.join(map(str, im.box))} ")
    write_lines(os.path.join(folder, KAGGLE_CSV), rows)
    write_lines(os.path.join(folder, SYNSET_MAPPING), [f"{w} {n.replace('_', ' ')}" for w, n in zip(wnids, EXAMPLE_CLASSES)])
    return folder, "val", {}


@register_dataset("imagenet", "ILSVRC2012 val: kaggle layout, official tars (+ bbox XMLs, devkit)",
                  splits=("val",),
                  options={"wnids": "class list file of WNIDs (line i = class i; default: the sorted WNIDs)",
                           "layout": "kaggle or tar, when both are present (default: detected)",
                           "bbox": "folder of the bbox archive's val/*.xml (official-tar layout)",
                           "devkit": "folder holding ILSVRC2012_validation_ground_truth.txt and meta.mat"},
                  example=write_example)
def _build(root: str, split: str = "val", wnids=None, layout: Optional[str] = None,
           bbox: Optional[str] = None, devkit: Optional[str] = None) -> WsolDataset:
    return read_imagenet(root, split, wnids=wnids, layout=layout, bbox=bbox, devkit=devkit)
