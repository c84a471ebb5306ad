"""Hostile input, round three: annotation files that Python reads too kindly.

Python's ``float('1_0263')`` is 10263 and ``int('٣')`` is 3, so a typo in a box coordinate
used to become a silently wrong number; a path listed twice in CUB's images.txt was counted
twice; an ``.npz`` saved under a ``.npy`` name was an AttributeError traceback. Every case runs
the real command (``wsol check-data`` / ``wsol score`` through ``wsol.cli.main``).
"""
import os

import numpy as np
import pytest

from wsol.cli import main
from wsol.datasets.base import build_dataset, dataset_info
from wsol.utils.numbers import parse_number


# ------------------------------------------------------------------ unit: the number grammar
@pytest.mark.parametrize("text,kind,want", [("12", int, 12), ("-3", int, -3), (" 7 ", int, 7), ("+4", int, 4),
                                            ("1.5", float, 1.5), ("-.5", float, -0.5), ("3.", float, 3.0),
                                            ("1e3", float, 1000.0), ("2E-2", float, 0.02), ("10", float, 10.0)])
def test_plain_numbers_parse(text, kind, want):
    assert parse_number(text, kind) == want and type(parse_number(text, kind)) is kind


@pytest.mark.parametrize("text,kind", [("1_0263", float), ("1_0", int), ("٣", int), ("١٢.5", float),
                                       ("0x10", int), ("1.5", int), ("", float), ("1e", float), ("1 2", float),
                                       ("½", float), ("1\u00a0", float), ("e5", float), (".", float)])
def test_python_only_spellings_are_refused(text, kind):
    with pytest.raises(ValueError):
        parse_number(text, kind)


def test_nonfinite_spellings_reach_the_caller():
    """nan/inf parse (as Python's float does) so that to_number can say 'must be finite'."""
    assert np.isnan(parse_number("nan")) and parse_number("-inf") == float("-inf")


# ------------------------------------------------------------------ every annotation file, through check-data
#: (dataset, file under the example's folder, line, field index, separator) of a number to corrupt
NUMBERS = [
    ("cub", "bounding_boxes.txt", 2, 1, " "),
    ("cub", "bounding_boxes.txt", 3, 4, " "),
    ("cub", "image_class_labels.txt", 2, 1, " "),
    ("cub", "train_test_split.txt", 1, 1, " "),
    ("cub", "images.txt", 2, 0, " "),
    ("cub", "classes.txt", 2, 0, " "),
    ("folder", "boxes.csv", 2, 2, ","),
    ("folder", "boxes.csv", 3, 5, ","),
    ("wsoleval", "metadata/test/localization.txt", 1, 1, ","),
    ("wsoleval", "metadata/test/image_sizes.txt", 2, 2, ","),
    ("wsoleval", "metadata/test/class_labels.txt", 2, 1, ","),
    ("openimages", "metadata/OpenImages/test/image_sizes.txt", 1, 1, ","),
    ("imagenet", "LOC_val_solution.csv", 2, 2, " "),
]


def _corrupt(path, line, field, sep, how):
    lines = open(path, encoding="utf-8").read().split("\n")
    parts = lines[line - 1].split(sep)
    v = parts[field]
    if how == "underscore":   # 22 -> 2_2 (Python: 22), 7 -> 7_0 (Python: 70)
        parts[field] = v[0] + "_" + v[1:] if len(v) > 1 else v + "_0"
    else:                     # the last digit as an Arabic-Indic digit (Python reads the same number)
        parts[field] = v[:-1] + chr(0x0660 + int(v[-1]))
    lines[line - 1] = sep.join(parts)
    open(path, "w", encoding="utf-8").write("\n".join(lines))
    return parts[field]


@pytest.mark.parametrize("how", ["underscore", "arabic-indic digit"])
@pytest.mark.parametrize("name,rel,line,field,sep", NUMBERS)
def test_every_numeric_field_refuses_python_only_spellings(tmp_path, capsys, name, rel, line, field, sep, how):
    root, split, opts = dataset_info(name).example(str(tmp_path / name))
    path = str(tmp_path / name / rel)
    token = _corrupt(path, line, field, sep, how)
    args = ["check-data", "--dataset", name, "--root", root, "--split", split]
    for k, v in opts.items():
        args += ["--dataset-option", f"{k}={v}"]
    rc = main(args)
    out = capsys.readouterr().out
    assert rc == 1 and f"{path}:{line}:" in out and repr(token) in out, out


# ------------------------------------------------------------------ CUB: an image listed twice
@pytest.mark.parametrize("spelling", ["{p}", "./{p}", "{d}//{f}"])
def test_cub_image_listed_twice_is_refused(tmp_path, capsys, spelling):
    root, _split, _ = dataset_info("cub").example(str(tmp_path / "cub"))
    images = os.path.join(root, "images.txt")
    lines = open(images).read().split("\n")
    first = lines[0].split(" ", 1)[1]
    d, f = first.split("/")
    lines[3] = lines[3].split(" ")[0] + " " + spelling.format(p=first, d=d, f=f)
    open(images, "w").write("\n".join(lines))
    rc = main(["-q", "score", "--dataset", "cub", "--root", root, "--cams", str(tmp_path), "--out",
               str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert f"{images}:4:" in err and "listed twice" in err and "line 1" in err


# ------------------------------------------------------------------ heatmaps: .npz under a .npy name
def test_npz_saved_as_npy_is_one_line(tmp_path, capsys):
    root, split, opts = dataset_info("wsoleval").example(str(tmp_path / "w"))
    ds = build_dataset("wsoleval", root, split)
    cams = tmp_path / "cams"
    for s in ds.samples:
        p = cams / (s.image_id + ".npy")
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, np.zeros((224, 224), np.float32))
    bad = cams / (ds.samples[1].image_id + ".npy")
    with open(bad, "wb") as f:          # np.savez to an open file keeps the name
        np.savez(f, cam=np.zeros((224, 224), np.float32))
    rc = main(["-q", "score", "--dataset", "wsoleval", "--root", root, "--cams", str(cams),
               "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(bad) in err and ".npz archive (cam)" in err
    rc = main(["-q", "score", "--dataset", "wsoleval", "--root", root, "--cams", str(cams),
               "--out", str(tmp_path / "skip"), "--on-error", "skip"])
    assert rc == 0
