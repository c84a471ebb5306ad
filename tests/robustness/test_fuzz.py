"""Fuzz tests, one per input format wsol reads: hypothesis mutates a valid file (truncation,
wrong field counts, wrong types, NaN/inf, huge numbers, non-UTF-8 bytes, path-escaping ids,
duplicates) and runs the real command on it (``wsol.cli.main``, in-process).

Each run must either succeed with the right numbers (MaxBoxAcc at IoU 0.3/0.5/0.7 equal to
the literal wsolevaluation re-statement in ``wsoleval_reference.py`` on the samples the
adapter read) or exit 2 with exactly one ``wsol: error:`` line naming a file of the input;
never another exception, and never a file written outside the output folder.

Sized for CI (all of them well under a minute): ``FUZZ_EXAMPLES`` sets the examples per
test (default 30; checkpoints take a third of that).
"""
import contextlib
import io
import itertools
import os
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from wsol.cli import main
from wsoleval_reference import ReferenceBoxEvaluator, resize_bbox

N = int(os.environ.get("FUZZ_EXAMPLES", "30"))
SETTINGS = dict(deadline=None, database=None, suppress_health_check=list(HealthCheck))

HOSTILE = ["nan", "NaN", "inf", "-inf", "1e308", "-1e308", "1e400", "-1", "0", "99999999999999999999", "abc", "",
           " ", "1.5", "0x10", "../../escape.jpg", "/abs/olute.jpg", "..\\x.jpg", "a,b", "é", "\t", "7"]
BAD_BYTES = [b"\xff\xfe", b"\x00", b"\xef\xbb\xbf", b"\x80abc", b"\r", b"\n\n", b"\xc3\x28"]
_counter = itertools.count()


# ------------------------------------------------------------------ mutation strategies
@st.composite
def mutations(draw, n_files):
    """A list of (op, file index, params) edits, applied in order by :func:`mutate`."""
    ops = []
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["field", "field", "field", "truncate", "drop_line", "dup_line", "bytes",
                                   "add_field", "drop_field", "swap"]))
        ops.append((op, draw(st.integers(0, n_files - 1)), draw(st.integers(0, 10 ** 6)),
                    draw(st.integers(0, 10 ** 6)), draw(st.sampled_from(HOSTILE)), draw(st.sampled_from(BAD_BYTES))))
    return ops


SEP = re.compile(r"([ ,\t<>])")


def mutate(data: bytes, op) -> bytes:
    kind, _, a, b, token, bad = op
    if kind == "truncate":
        return data[:a % (len(data) + 1)]
    if kind == "bytes":
        k = a % (len(data) + 1)
        return data[:k] + bad + data[k:]
    lines = data.split(b"\n")
    i = a % len(lines)
    if kind == "drop_line":
        del lines[i]
    elif kind == "dup_line":
        lines.insert(i, lines[i])
    elif kind == "swap":
        j = b % len(lines)
        lines[i], lines[j] = lines[j], lines[i]
    else:
        parts = SEP.split(lines[i].decode("utf-8", "replace"))
        fields = list(range(0, len(parts), 2))
        f = fields[b % len(fields)]
        if kind == "field":
            parts[f] = token
        elif kind == "add_field":
            parts.insert(f + 1, "," if "," in lines[i].decode("utf-8", "replace") else " ")
            parts.insert(f + 2, token)
        elif kind == "drop_field" and len(fields) > 1:
            del parts[f:f + 2]
        lines[i] = "".join(parts).encode("utf-8")
    return b"\n".join(lines)


def apply(paths, ops):
    for op in ops:
        p = paths[op[1]]
        with open(p, "rb") as f:
            data = f.read()
        with open(p, "wb") as f:
            f.write(mutate(data, op))


# ------------------------------------------------------------------ the harness
def _listing(folder):
    return {os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs}


def run_cli(base, args):
    """``wsol -q ARGS`` in-process; returns (rc, error line or ''). Asserts the contract."""
    out = os.path.join(base, "out")
    watch = os.path.dirname(base)
    before = _listing(watch)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["-q", *args])
    new = {p for p in _listing(watch) - before if not p.startswith(out + os.sep)}
    assert not new, f"written outside the output folder: {sorted(new)[:3]}"
    lines = [ln for ln in err.getvalue().splitlines() if ln.startswith("wsol")]
    assert "Traceback" not in err.getvalue()
    assert rc in (0, 2), err.getvalue()
    if rc == 2:
        assert len(lines) == 1 and lines[0].startswith("wsol: error: "), err.getvalue()
        assert os.path.join(base, "in") in lines[0], lines[0]  # names the input file at fault
        return rc, lines[0]
    return rc, ""


def new_case(root) -> str:
    base = os.path.join(str(root), f"case{next(_counter)}")
    os.makedirs(os.path.join(base, "in"))
    return base


def heatmap(seed: int) -> np.ndarray:
    """A normalized 224x224 map of two smooth blobs (min 0, max 1): a few contours per τ, so
    the per-threshold reference stays fast."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:224, 0:224]
    m = np.zeros((224, 224))
    for _ in range(2):
        cx, cy, s = rng.uniform(40, 184), rng.uniform(40, 184), rng.uniform(15, 50)
        m += rng.uniform(0.5, 1) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
    m = (m - m.min()) / (m.max() - m.min())
    return m.astype(np.float32)


def write_cams(folder, ids):
    for k, iid in enumerate(ids):
        p = os.path.join(folder, iid + ".npy")
        os.makedirs(os.path.dirname(p), exist_ok=True)
        np.save(p, heatmap(k))


def check_numbers(base, dataset, root, cams, extra_opts=()):
    """The run's MaxBoxAcc(0.3/0.5/0.7) equal the reference on the samples the adapter read."""
    from wsol.datasets.base import build_dataset
    from wsol.datasets.wsoleval import image_size

    opts = dict(o.split("=", 1) for o in extra_opts)
    ds = build_dataset(dataset, root, "val" if dataset == "imagenet" else "test", **opts)
    per = pd.read_csv(os.path.join(base, "out", "per_image.csv"), dtype={"image_id": str},
                      keep_default_na=False).set_index("image_id")  # an image called 'nan' stays a name
    ref = ReferenceBoxEvaluator(step=0.01)
    for s in ds.samples:
        if per.loc[s.image_id, "status"] == "skipped":
            ref.cnt += 1
            continue
        m = np.load(os.path.join(cams, s.image_id + ".npy"))
        w, h = image_size(s)
        ref.accumulate(m, [resize_bbox(b, (w, h)) for b in s.boxes])
    got = pd.read_csv(os.path.join(base, "out", "summary.csv")).iloc[0]
    want = ref.compute()
    assert [got.maxboxacc_iou30, got.maxboxacc_iou50, got.maxboxacc_iou70] == pytest.approx(want, abs=1e-6)


def score_and_check(base, dataset, root, cams, split=None, skip=True):
    """``wsol score`` on a (possibly mutated) case; when it succeeds, its numbers must equal the
    reference evaluator's (a failure must already have been one line naming a file: run_cli)."""
    args = ["score", "--dataset", dataset, "--root", root] + (["--split", split] if split else [])
    args += ["--cams", cams, "--out", os.path.join(base, "out")] + (["--on-error", "skip"] if skip else [])
    rc, _ = run_cli(base, args)
    if rc == 0:
        check_numbers(base, dataset, root, cams)


def write_files(folder, files):
    """Write ``{name: text}`` into ``folder``; return the paths in order."""
    paths = [os.path.join(folder, n) for n in files]
    for path, text in zip(paths, files.values()):
        with open(path, "w") as f:
            f.write(text)
    return paths


def tiny_image(path, w, h, seed):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(path)


# ------------------------------------------------------------------ wsolevaluation metadata
def make_wsoleval(base):
    d = os.path.join(base, "in", "meta")
    os.makedirs(d)
    ids = ["val/a.JPEG", "val/b.JPEG", "val/c.JPEG"]
    files = {"image_ids.txt": "".join(f"{i}\n" for i in ids),
             "class_labels.txt": "".join(f"{i},{k % 2}\n" for k, i in enumerate(ids)),
             "image_sizes.txt": "".join(f"{i},{100 + 10 * k},{80 + 5 * k}\n" for k, i in enumerate(ids)),
             "localization.txt": "val/a.JPEG,10,10,60,50\nval/a.JPEG,5,5,30,30\nval/b.JPEG,0,0,109,84\n"
                                 "val/c.JPEG,20.5,10,70,60\n"}
    paths = write_files(d, files)
    cams = os.path.join(base, "in", "cams")
    write_cams(cams, ids)
    return d, cams, paths


@settings(max_examples=N, **SETTINGS)
@given(ops=mutations(4))
@example(ops=[])  # unmodified: the success path and its numbers, every run
def test_fuzz_wsoleval_metadata(tmp_path_factory, ops):
    base = new_case(tmp_path_factory.getbasetemp() / "fuzz_wsoleval")
    d, cams, paths = make_wsoleval(base)
    apply(paths, ops)
    score_and_check(base, "wsoleval", d, cams)


# ------------------------------------------------------------------ CUB text files
def make_cub_case(base):
    root = os.path.join(base, "in", "cub")
    rels = ["001.A/a_1.png", "001.A/a_2.png", "002.B/b_1.png", "002.B/b_2.png"]
    for k, r in enumerate(rels):
        tiny_image(os.path.join(root, "images", r), 40 + 4 * k, 30 + 2 * k, k)
    files = {"images.txt": "".join(f"{k + 1} {r}\n" for k, r in enumerate(rels)),
             "image_class_labels.txt": "1 1\n2 1\n3 2\n4 2\n",
             "classes.txt": "1 001.A\n2 002.B\n",
             "train_test_split.txt": "1 1\n2 0\n3 1\n4 0\n",
             "bounding_boxes.txt": "1 2.0 3.0 20.0 10.0\n2 0 0 40 30\n3 5.5 5.5 10 10\n4 1 1 30 20\n"}
    paths = write_files(root, files)
    cams = os.path.join(base, "in", "cams")
    write_cams(cams, rels)
    return root, cams, paths


@settings(max_examples=N, **SETTINGS)
@given(ops=mutations(5))
@example(ops=[])  # unmodified: the success path and its numbers, every run
def test_fuzz_cub_text_files(tmp_path_factory, ops):
    base = new_case(tmp_path_factory.getbasetemp() / "fuzz_cub")
    root, cams, paths = make_cub_case(base)
    apply(paths, ops)
    score_and_check(base, "cub", root, cams)


# ------------------------------------------------------------------ folder CSV
def make_folder_case(base):
    root = os.path.join(base, "in", "folder")
    rels = ["x/a.png", "x/b.png", "c.png"]
    for k, r in enumerate(rels):
        tiny_image(os.path.join(root, r), 50 + 5 * k, 40, k)
    with open(os.path.join(root, "boxes.csv"), "w") as f:
        f.write("image,label,x0,y0,x1,y1\nx/a.png,cat,1,2,30,20\nx/a.png,cat,10,10,40,30\n"
                "x/b.png,dog,0,0,54,39\nc.png,cat,5.5,6,20,25\n")
    cams = os.path.join(base, "in", "cams")
    write_cams(cams, rels)
    return root, cams, [os.path.join(root, "boxes.csv")]


@settings(max_examples=N, **SETTINGS)
@given(ops=mutations(1))
@example(ops=[])  # unmodified: the success path and its numbers, every run
def test_fuzz_folder_csv(tmp_path_factory, ops):
    base = new_case(tmp_path_factory.getbasetemp() / "fuzz_folder")
    root, cams, paths = make_folder_case(base)
    apply(paths, ops)
    score_and_check(base, "folder", root, cams)


# ------------------------------------------------------------------ ImageNet CSV and XML
XML = ("<annotation><folder>val</folder><filename>{stem}</filename><size><width>{w}</width>"
       "<height>{h}</height><depth>3</depth></size>\n<object><name>{wnid}</name><bndbox><xmin>{x0}</xmin>"
       "<ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>\n</annotation>\n")


def make_imagenet_case(base):
    root = os.path.join(base, "in", "inet")
    img_dir = os.path.join(root, "ILSVRC", "Data", "CLS-LOC", "val")
    xml_dir = os.path.join(root, "ILSVRC", "Annotations", "CLS-LOC", "val")
    os.makedirs(xml_dir)
    recs = [("ILSVRC2012_val_00000001", "n01", 60, 50, (5, 5, 40, 30)),
            ("ILSVRC2012_val_00000002", "n02", 48, 64, (0, 10, 47, 63)),
            ("ILSVRC2012_val_00000003", "n01", 70, 40, (10, 2, 30, 20))]
    rows = ["ImageId,PredictionString"]
    for k, (stem, wnid, w, h, b) in enumerate(recs):
        tiny_image(os.path.join(img_dir, stem + ".JPEG"), w, h, k)
        with open(os.path.join(xml_dir, stem + ".xml"), "w") as f:
            f.write(XML.format(stem=stem, w=w, h=h, wnid=wnid, x0=b[0], y0=b[1], x1=b[2], y1=b[3]))
        rows.append(f"{stem},{wnid} {' '.join(map(str, b))}")
    with open(os.path.join(root, "LOC_val_solution.csv"), "w") as f:
        f.write("\n".join(rows) + "\n")
    with open(os.path.join(root, "LOC_synset_mapping.txt"), "w") as f:
        f.write("n01 first thing\nn02 second thing\n")
    cams = os.path.join(base, "in", "cams")
    write_cams(cams, [f"val/{r[0]}.JPEG" for r in recs])
    return root, cams, xml_dir, [r[0] for r in recs]


@settings(max_examples=N, **SETTINGS)
@given(ops=mutations(2))
@example(ops=[])  # unmodified: the success path and its numbers, every run
def test_fuzz_imagenet_csv(tmp_path_factory, ops):
    base = new_case(tmp_path_factory.getbasetemp() / "fuzz_inet_csv")
    root, cams, _, _ = make_imagenet_case(base)
    apply([os.path.join(root, "LOC_val_solution.csv"), os.path.join(root, "LOC_synset_mapping.txt")], ops)
    score_and_check(base, "imagenet", root, cams, split="val")


@settings(max_examples=N, **SETTINGS)
@given(ops=mutations(3))
@example(ops=[])  # unmodified: the success path and its numbers, every run
def test_fuzz_imagenet_xml(tmp_path_factory, ops):
    base = new_case(tmp_path_factory.getbasetemp() / "fuzz_inet_xml")
    root, cams, xml_dir, stems = make_imagenet_case(base)
    apply([os.path.join(xml_dir, s + ".xml") for s in stems], ops)
    score_and_check(base, "imagenet", root, cams, split="val")


# ------------------------------------------------------------------ heatmap .npy
ARRAYS = st.sampled_from([
    np.zeros((224, 224), np.float32), np.full((224, 224), np.nan, np.float32), np.ones((224, 224), np.float64),
    np.full((224, 224), 2.0, np.float32), -np.ones((224, 224), np.float32), np.zeros((224, 223), np.float32),
    np.zeros((224, 224, 1), np.float32), np.zeros((), np.float32), np.zeros((224, 224), np.int64),
    np.zeros((224, 224), np.float16), np.array(["x"] * 4), np.full((224, 224), np.inf, np.float32),
    np.zeros((224, 224), bool), np.linspace(0, 1, 224 * 224).reshape(224, 224)])


@settings(max_examples=N, **SETTINGS)
@given(which=st.integers(0, 2), replace=st.one_of(st.none(), ARRAYS), ops=mutations(1),
       skip=st.booleans())
@example(which=0, replace=None, ops=[], skip=False)  # unmodified: the success path, every run
def test_fuzz_heatmap_npy(tmp_path_factory, which, replace, ops, skip):
    base = new_case(tmp_path_factory.getbasetemp() / "fuzz_npy")
    d, cams, _ = make_wsoleval(base)
    target = os.path.join(cams, ["val/a.JPEG", "val/b.JPEG", "val/c.JPEG"][which] + ".npy")
    if replace is not None:
        np.save(target, replace)
    else:
        apply([target], [op if op[0] in ("truncate", "bytes") else ("truncate",) + op[1:] for op in ops])
    score_and_check(base, "wsoleval", d, cams, skip=skip)


# ------------------------------------------------------------------ suite YAML
SUITE = """name: fuzz
description: a suite
datasets:
  - name: wsoleval
    root: {meta}
    split: test
    options: {{images: {meta}}}
backbones:
  - {{name: tiny_test_net, weights: random}}
methods: [cam, center_gaussian]
protocols: [wsoleval]
options:
  batch_size: 4
  cam_step: 0.01
"""


@settings(max_examples=N, **SETTINGS)
@given(ops=mutations(1))
@example(ops=[])  # unmodified: the success path and its numbers, every run
def test_fuzz_suite_yaml(tmp_path_factory, ops):
    base = new_case(tmp_path_factory.getbasetemp() / "fuzz_suite")
    d, _, _ = make_wsoleval(base)
    path = os.path.join(base, "in", "s.yaml")
    with open(path, "w") as f:
        f.write(SUITE.format(meta=d))
    apply([path], ops)
    rc, _ = run_cli(base, ["suite", path, "--dry-run", "--out", os.path.join(base, "out")])
    assert not os.path.exists(os.path.join(base, "out", "summary.csv"))  # a dry run writes nothing


# ------------------------------------------------------------------ checkpoints
@pytest.fixture(scope="module")
def ckpt_bytes(tmp_path_factory):
    import torch

    from wsol.models.checkpoint import save_checkpoint
    from wsol.models.registry import create_backbone

    torch.manual_seed(0)
    bb = create_backbone("tiny_test_net", "random", num_classes=2)
    p = tmp_path_factory.mktemp("ckpt") / "w.pt"
    save_checkpoint(bb, str(p))
    return str(p)


CKPT_EDITS = st.sampled_from(["bytes", "truncate", "nan_weights", "drop_key", "extra_key", "bad_shape",
                              "not_a_dict", "wrong_backbone", "huge_classes", "plain_state_dict"])


_NO_OP = [("field", 0, 0, 0, "7", b"\x00")]


@settings(max_examples=max(5, N // 3), **SETTINGS)
@given(edit=CKPT_EDITS, ops=mutations(1))
@example(edit="nan_weights", ops=_NO_OP)        # the success paths, whatever hypothesis draws
@example(edit="plain_state_dict", ops=_NO_OP)
def test_fuzz_checkpoint(tmp_path_factory, ckpt_bytes, edit, ops):
    import torch

    base = new_case(tmp_path_factory.getbasetemp() / "fuzz_ckpt")
    d, _, _ = make_wsoleval(base)
    img_root = os.path.join(base, "in", "images")
    for k, (iid, w, h) in enumerate([("val/a.JPEG", 100, 80), ("val/b.JPEG", 110, 85), ("val/c.JPEG", 120, 90)]):
        tiny_image(os.path.join(img_root, iid), w, h, k)
    path = os.path.join(base, "in", "w.pt")
    with open(ckpt_bytes, "rb") as f:
        raw = f.read()
    sd = torch.load(ckpt_bytes, weights_only=True)["state_dict"]
    payload = {"backbone": "tiny_test_net", "num_classes": 2, "state_dict": dict(sd), "wsol_checkpoint": 1}
    if edit in ("bytes", "truncate"):
        op = ops[0]
        data = mutate(raw, (edit,) + op[1:])
        with open(path, "wb") as f:
            f.write(data)
    else:
        first = next(iter(sd))
        if edit == "nan_weights":
            payload["state_dict"] = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                                     for k, v in sd.items()}
        elif edit == "drop_key":
            payload["state_dict"].pop(first)
        elif edit == "extra_key":
            payload["state_dict"]["net.extra.weight"] = torch.zeros(3)
        elif edit == "bad_shape":
            payload["state_dict"][first] = torch.zeros(1, 2, 3)
        elif edit == "not_a_dict":
            payload = [1, 2, 3]
        elif edit == "wrong_backbone":
            payload["backbone"] = "resnet50"
        elif edit == "huge_classes":
            payload["num_classes"] = 10 ** 9
        elif edit == "plain_state_dict":
            payload = dict(sd)
        torch.save(payload, path)
    rc, _ = run_cli(base, ["evaluate", "--dataset", "wsoleval", "--root", d, "--images", img_root,
                           "--backbone", "tiny_test_net", "--weights", path, "--batch-size", "3",
                           "--out", os.path.join(base, "out")])
    if rc == 0:
        s = pd.read_csv(os.path.join(base, "out", "summary.csv")).iloc[0]
        for c in ("maxboxacc_v2", "top1_cls", "gt_known_loc"):
            assert 0 <= s[c] <= 100
        assert s.n_images == 3
        assert s.n_nonfinite == (3 if edit == "nan_weights" else 0)
    else:
        assert edit not in ("nan_weights", "plain_state_dict")
