"""check-data (every planted fault is caught) and the archive preparation scripts."""
from __future__ import annotations

import importlib.util
import io
import os
import tarfile
import zipfile
from contextlib import redirect_stderr

import pytest

import imagenet_fixtures as F
from imagenet_fixtures import raises_at
from wsol.datasets.base import build_dataset
from wsol.datasets.check import check_dataset, format_report
from wsol.datasets.cub import read_cub
from wsol.datasets.prepare import prepare_cub, prepare_imagenet
from wsol.errors import DataError

from shared_data import REPO  # noqa: E402


def script(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "data_scripts", name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_main(name, argv):
    err = io.StringIO()
    with redirect_stderr(err):
        rc = script(name).main(list(argv) + ["--no-progress"])
    return rc, err.getvalue()


def truncate(path, fraction=None, at=None):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(at if at is not None else int(size * fraction))
    return path


# ----------------------------------------------------------------------------- check-data

def test_check_clean_dataset(tmp_path):
    root = F.make_kaggle(str(tmp_path))
    r = check_dataset("imagenet", root, "val", progress=False)
    assert r.ok and r.problems == []
    assert (r.n_images, r.n_boxes, r.n_classes, r.n_images_checked) == (6, F.N_BOXES, 5, 6)
    # class n05000005 has no image: a warning, not a problem
    assert r.n_classes_without_images == 1 and r.classes_without_images == ["4 n05000005"]
    text = format_report(r)
    assert text.endswith("OK") and "1 of 5 classes have no images" in text


def test_check_catches_every_planted_fault(tmp_path):
    root = F.make_kaggle(str(tmp_path))
    images = os.path.join(root, "ILSVRC", "Data", "CLS-LOC", "val")
    os.remove(os.path.join(images, F.stem(2) + ".JPEG"))                      # missing image
    with open(os.path.join(images, F.stem(3) + ".JPEG"), "wb") as f:         # unreadable file
        f.write(b"this is not a JPEG at all")
    F.write_jpeg(os.path.join(images, F.stem(4) + ".JPEG"), (50, 36))        # size differs from XML
    csv = os.path.join(root, "LOC_val_solution.csv")                         # box outside (x1 60 > 44)
    with open(csv) as f:
        text = f.read()
    with open(csv, "w") as f:
        f.write(text.replace("n02000004 15 8 43 27", "n02000004 15 8 60 27"))
    r = check_dataset("imagenet", root, "val", progress=False)
    assert not r.ok
    assert r.missing_images == [f"val/{F.stem(2)}.JPEG"]
    assert len(r.unreadable_images) == 1 and r.unreadable_images[0].startswith(f"val/{F.stem(3)}.JPEG")
    assert len(r.size_mismatches) == 1 and "annotated 36x36, image is 50x36" in r.size_mismatches[0]
    assert r.n_boxes_outside == 1 and r.n_boxes_clipped == 1 and "15,8,60,27" in r.boxes_outside[0]
    assert r.n_classes_without_images == 1
    text = format_report(r)
    for needle in ("1 missing images", "1 unreadable images", "size differs", "clipped on load",
                   "classes have no images", "FAILED (3 problems)"):
        assert needle in text, text


def test_check_folder_box_outside_and_empty_class(tmp_path):
    root = str(tmp_path)
    F.write_jpeg(os.path.join(root, "a.jpg"), (40, 30))
    F.write_jpeg(os.path.join(root, "b.jpg"), (20, 20))
    with open(os.path.join(root, "boxes.csv"), "w") as f:
        f.write("image,label,x0,y0,x1,y1\na.jpg,cat,1,2,30,20\nb.jpg,cat,-2,0,25,19\nc.jpg,dog,0,0,5,5\n")
    with open(os.path.join(root, "classes.txt"), "w") as f:
        f.write("cat\ndog\nbird\n")
    r = check_dataset("folder", root, "test", classes=os.path.join(root, "classes.txt"), progress=False)
    assert not r.ok
    assert r.missing_images == ["c.jpg"]
    assert r.n_boxes_outside == 1 and r.n_boxes_clipped == 0 and r.boxes_outside[0].startswith("b.jpg [-2,0,25,19]")
    assert r.classes_without_images == ["2 bird"]
    assert any("boxes outside their image" in p for p in r.problems)


def test_check_decode_catches_truncated_jpeg(tmp_path):
    root = F.make_tar(str(tmp_path), mapping=True)
    truncate(os.path.join(root, "val", F.stem(1) + ".JPEG"), 0.5)
    r = check_dataset("imagenet", root, "val", progress=False, decode=True)
    assert [u.split(" ")[0] for u in r.unreadable_images] == [f"val/{F.stem(1)}.JPEG"]
    assert r.problems and not r.ok


def test_check_reports_a_reading_error(tmp_path):
    root = F.make_kaggle(str(tmp_path))
    csv = os.path.join(root, "LOC_val_solution.csv")
    with open(csv, "a") as f:
        f.write("ILSVRC2012_val_00000009,n01000001 1 2 3\n")
    r = check_dataset("imagenet", root, "val", progress=False)
    assert not r.ok
    assert r.problems == [f"{csv}:8: PredictionString must hold groups of 5 (wnid x0 y0 x1 y1), got 4 values"]
    assert format_report(r).endswith("FAILED (1 problem)")


def test_check_wsoleval_without_images(tmp_path):
    root = F.make_kaggle(os.path.join(str(tmp_path), "in"))
    from wsol.datasets.wsoleval import write_wsoleval_metadata
    write_wsoleval_metadata(build_dataset("imagenet", root, "val"), os.path.join(str(tmp_path), "m"), progress=False)
    r = check_dataset("wsoleval", os.path.join(str(tmp_path), "m"), "test", progress=False)
    assert r.ok and r.n_images_checked == 0 and any("not at hand" in w for w in r.warnings)


# ----------------------------------------------------------------------------- CUB archive

def make_cub_tree(base):
    root = os.path.join(base, "CUB_200_2011")
    imgs = [("001.Albatross/Albatross_1.jpg", 1, 1, (30, 20)), ("001.Albatross/Albatross_2.jpg", 1, 0, (25, 25)),
            ("002.Auklet/Auklet_1.jpg", 2, 0, (20, 30))]
    for i, (rel, _c, _t, size) in enumerate(imgs, 1):
        F.write_jpeg(os.path.join(root, "images", rel), size, seed=i)
    with open(os.path.join(root, "images.txt"), "w") as f:
        f.writelines(f"{i} {rel}\n" for i, (rel, *_r) in enumerate(imgs, 1))
    with open(os.path.join(root, "image_class_labels.txt"), "w") as f:
        f.writelines(f"{i} {c}\n" for i, (_r, c, *_x) in enumerate(imgs, 1))
    with open(os.path.join(root, "train_test_split.txt"), "w") as f:
        f.writelines(f"{i} {t}\n" for i, (_r, _c, t, _s) in enumerate(imgs, 1))
    with open(os.path.join(root, "classes.txt"), "w") as f:
        f.write("1 001.Albatross\n2 002.Auklet\n")
    with open(os.path.join(root, "bounding_boxes.txt"), "w") as f:
        f.write("1 1.0 2.0 10.0 12.0\n2 0.0 0.0 20.0 20.0\n3 3.0 4.0 10.0 20.0\n")
    with open(os.path.join(base, "attributes.txt"), "w") as f:
        f.write("1 has_bill_shape::curved\n")
    return root


def make_tgz(path, base, names):
    with tarfile.open(path, "w:gz") as tf:
        for n in names:
            tf.add(os.path.join(base, n), arcname=n)
    return path


def test_prepare_cub(tmp_path):
    src = str(tmp_path / "src")
    make_cub_tree(src)
    arc = make_tgz(str(tmp_path / "CUB_200_2011.tgz"), src, ["CUB_200_2011", "attributes.txt"])
    out = str(tmp_path / "out")
    root = prepare_cub(arc, out, progress=False)
    assert root == os.path.join(out, "CUB_200_2011")
    assert len(read_cub(root, "test")) == 2 and len(build_dataset("cub", out, "train")) == 1
    assert not any(n.endswith(".part") for _d, _s, fs in os.walk(out) for n in fs)
    assert run_main("prepare_cub", [arc, str(tmp_path / "out2")]) == (0, "")


def test_prepare_cub_faults(tmp_path):
    src = str(tmp_path / "src")
    root = make_cub_tree(src)
    arc = make_tgz(str(tmp_path / "CUB_200_2011.tgz"), src, ["CUB_200_2011"])
    # truncated
    rc, err = run_main("prepare_cub", [truncate(arc, 0.6), str(tmp_path / "o1")])
    assert rc == 2 and err.count("\n") == 1 and err.startswith(f"error: {arc}: truncated archive"), err
    # not a tar at all
    with open(arc, "wb") as f:
        f.write(b"<html>404 Not Found</html>" * 50)
    rc, err = run_main("prepare_cub", [arc, str(tmp_path / "o2")])
    assert rc == 2 and "not a readable tar archive" in err
    # a tar of something else
    make_tgz(arc, src, ["attributes.txt"])
    raises_at(lambda: prepare_cub(arc, str(tmp_path / "o3"), progress=False), arc, match="not CUB_200_2011.tgz")
    # an image listed in images.txt is not in the archive
    os.remove(os.path.join(root, "images", "002.Auklet", "Auklet_1.jpg"))
    make_tgz(arc, src, ["CUB_200_2011"])
    raises_at(lambda: prepare_cub(arc, str(tmp_path / "o4"), progress=False), arc,
              match="1 of 3 images listed in images.txt are missing")
    raises_at(lambda: prepare_cub(str(tmp_path / "nope.tgz"), str(tmp_path / "o5")), str(tmp_path / "nope.tgz"),
              match="missing archive")


# ----------------------------------------------------------------------------- ImageNet archives

def official_archives(tmp_path):
    src = str(tmp_path / "src")
    F.write_images(os.path.join(src, "img"))
    F.write_xmls(os.path.join(src, "val"))
    F.write_devkit(src)
    val = str(tmp_path / "ILSVRC2012_img_val.tar")
    with tarfile.open(val, "w") as tf:  # flat, uncompressed, as image-net.org serves it
        for n, *_ in F.IMAGES:
            tf.add(os.path.join(src, "img", F.stem(n) + ".JPEG"), arcname=F.stem(n) + ".JPEG")
    bbox = make_tgz(str(tmp_path / "ILSVRC2012_bbox_val_v3.tgz"), src, ["val"])
    devkit = make_tgz(str(tmp_path / "ILSVRC2012_devkit_t12.tar.gz"), src, ["ILSVRC2012_devkit_t12"])
    return val, bbox, devkit


def test_prepare_imagenet_official(tmp_path):
    val, bbox, devkit = official_archives(tmp_path)
    out = str(tmp_path / "out")
    assert prepare_imagenet(out, val_tar=val, bbox_tar=bbox, devkit_tar=devkit, progress=False) == out
    ds = build_dataset("imagenet", out, "val")
    assert F.as_tuples(ds) == F.expected() and ds.class_names == F.CLASSES  # class list from the devkit
    assert os.path.isfile(os.path.join(out, "ILSVRC2012_devkit_t12", "data", "meta.mat"))
    assert run_main("prepare_imagenet", [str(tmp_path / "out2"), "--val-tar", val, "--bbox-tar", bbox]) == (0, "")


def test_prepare_imagenet_truncated_and_wrong(tmp_path):
    val, bbox, devkit = official_archives(tmp_path)
    good = open(val, "rb").read()
    # truncated inside a member
    truncate(val, 0.5)
    rc, err = run_main("prepare_imagenet", [str(tmp_path / "o1"), "--val-tar", val, "--bbox-tar", bbox])
    assert rc == 2 and err.startswith(f"error: {val}: truncated archive") and err.count("\n") == 1, err
    # truncated exactly between members: tar cannot tell, the cross-check with the XMLs does
    with open(val, "wb") as f:
        f.write(good)
    with tarfile.open(val) as tf:
        fourth = tf.getmembers()[3].offset
    truncate(val, at=fourth)
    raises_at(lambda: prepare_imagenet(str(tmp_path / "o2"), val_tar=val, bbox_tar=bbox, progress=False), val,
              match="3 of 6 annotated images are missing")
    # the boxes archive given as the images archive
    raises_at(lambda: prepare_imagenet(str(tmp_path / "o3"), val_tar=bbox, bbox_tar=bbox, progress=False), bbox,
              match="not ILSVRC2012_img_val.tar: no .JPEG members")
    # a truncated devkit
    with open(val, "wb") as f:
        f.write(good)
    rc, err = run_main("prepare_imagenet", [str(tmp_path / "o4"), "--val-tar", val, "--bbox-tar", bbox,
                                            "--devkit-tar", truncate(devkit, 0.5)])
    assert rc == 2 and f"{devkit}: truncated archive" in err


def test_prepare_imagenet_devkit_counts_images(tmp_path):
    val, bbox, devkit = official_archives(tmp_path)
    src = str(tmp_path / "src")
    with open(os.path.join(src, "ILSVRC2012_devkit_t12", "data", "ILSVRC2012_validation_ground_truth.txt"), "a") as f:
        f.write("1\n")  # the devkit lists a 7th image the archives lack
    make_tgz(devkit, src, ["ILSVRC2012_devkit_t12"])
    raises_at(lambda: prepare_imagenet(str(tmp_path / "o"), val, bbox, devkit, progress=False), val,
              match="6 val images unpacked but the devkit ground truth lists 7")


def make_kaggle_zip(tmp_path):
    src = F.make_kaggle(str(tmp_path / "ksrc"))
    F.write_jpeg(os.path.join(src, "ILSVRC", "Data", "CLS-LOC", "train", "n01000001", "x.JPEG"), (8, 8))
    with open(os.path.join(src, "LOC_train_solution.csv"), "w") as f:
        f.write("ImageId,PredictionString\n")
    arc = str(tmp_path / "imagenet-object-localization-challenge.zip")
    with zipfile.ZipFile(arc, "w", zipfile.ZIP_DEFLATED) as zf:
        for d, _s, files in os.walk(src):
            for n in sorted(files):
                p = os.path.join(d, n)
                zf.write(p, os.path.relpath(p, src))
    return arc


def test_prepare_kaggle_zip(tmp_path):
    arc = make_kaggle_zip(tmp_path)
    out = str(tmp_path / "out")
    rc, err = run_main("prepare_imagenet", [out, "--kaggle-zip", arc])
    assert (rc, err) == (0, "")
    ds = build_dataset("imagenet", out, "val")
    assert F.as_tuples(ds) == F.expected() and ds.class_names == F.CLASSES
    assert not os.path.exists(os.path.join(out, "ILSVRC", "Data", "CLS-LOC", "train"))  # val part only
    assert not os.path.exists(os.path.join(out, "LOC_train_solution.csv"))


def test_prepare_kaggle_zip_faults(tmp_path):
    arc = make_kaggle_zip(tmp_path)
    good = open(arc, "rb").read()
    rc, err = run_main("prepare_imagenet", [str(tmp_path / "o1"), "--kaggle-zip", truncate(arc, 0.7)])
    assert rc == 2 and err.startswith(f"error: {arc}: not a readable zip archive or corrupt"), err
    # a damaged member: CRC / inflate error
    with zipfile.ZipFile(io.BytesIO(good)) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith(".JPEG") and "/val/" in i.filename)
    bad = bytearray(good)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for k in range(start + 10, start + 60):
        bad[k] ^= 0xFF
    with open(arc, "wb") as f:
        f.write(bytes(bad))
    with pytest.raises(DataError, match=f"^{arc}: ") as ei:
        prepare_imagenet(str(tmp_path / "o2"), kaggle_zip=arc, progress=False)
    assert "corrupt" in str(ei.value)
    # a zip of something else
    with zipfile.ZipFile(arc, "w") as zf:
        zf.writestr("readme.txt", "hello")
    raises_at(lambda: prepare_imagenet(str(tmp_path / "o3"), kaggle_zip=arc, progress=False), arc,
              match="no LOC_val_solution.csv")
    raises_at(lambda: prepare_imagenet(str(tmp_path / "o4"), kaggle_zip=arc, val_tar=arc), arc, match="not both")
    with pytest.raises(DataError, match="nothing to prepare"):
        prepare_imagenet(str(tmp_path / "o5"))
