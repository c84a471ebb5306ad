"""ViT backbones and the token-attention methods through the real entry points: evaluate,
score (of the saved heatmaps), suite (with a family protocol), report and overlay, on the
drawn CUB example, random DeiT-tiny weights. And the fair number: under a family protocol
MaxBoxAccV2 in summary.csv equals the wsoleval run's of the same maps."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from wsol.cli import main
from wsol.datasets.base import build_dataset, list_datasets

VIT = ["--backbone", "deit_tiny_patch16_224", "--weights", "random", "--batch-size", "8"]
FAIR = ["maxboxacc", "maxboxacc_v2", "maxboxacc_iou30", "maxboxacc_iou50", "maxboxacc_iou70"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    """One intra-op thread for this module (see conftest.one_thread)."""


@pytest.fixture(scope="module")
def cub(tmp_path_factory):
    example = next(d for d in list_datasets() if d.name == "cub").example
    root, split, _ = example(str(tmp_path_factory.mktemp("cub") / "cub"))
    return root, split


def _data(cub):
    return ["--dataset", "cub", "--root", cub[0], "--split", cub[1]]


def _run(capsys, *argv):
    rc = main(["-q", *map(str, argv)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    return out.out


@pytest.mark.parametrize("method", ["cam", "gradcam", "rollout", "tscam"])
def test_vit_evaluate_then_score_the_saved_heatmaps(method, cub, tmp_path, capsys):
    _run(capsys, "evaluate", *_data(cub), *VIT, "--method", method, "--out", tmp_path / "ev",
         "--save-cams", tmp_path / "cams")
    _run(capsys, "score", "--cams", tmp_path / "cams", *_data(cub), "--out", tmp_path / "sc")
    ev = pd.read_csv(tmp_path / "ev" / "summary.csv").iloc[0]
    sc = pd.read_csv(tmp_path / "sc" / "summary.csv").iloc[0]
    assert ev.backbone == "deit_tiny_patch16_224" and ev.method == method and ev.n_images == 3
    for c in FAIR + ["gt_known_loc", "mean_iou"]:
        assert ev[c] == sc[c], c


@pytest.mark.parametrize("protocol", ["tscam", "sat", "scm", "cam2016"])
def test_a_family_protocol_keeps_the_wsoleval_maxboxacc_in_its_row(protocol, cub, tmp_path, capsys):
    _run(capsys, "evaluate", *_data(cub), *VIT, "--method", "cls_attention", "--out", tmp_path / "w")
    _run(capsys, "evaluate", *_data(cub), *VIT, "--method", "cls_attention", "--protocol", protocol,
         "--out", tmp_path / "p")
    w = pd.read_csv(tmp_path / "w" / "summary.csv").iloc[0]
    p = pd.read_csv(tmp_path / "p" / "summary.csv").iloc[0]
    assert p.protocol == protocol and p.maxboxacc_rule.startswith("wsoleval")
    assert [p[c] for c in FAIR] == [w[c] for c in FAIR]
    if protocol in ("tscam", "sat"):  # one threshold: the CUB example has 200 classes
        assert p.n_thresholds == 1 and p.loc_tau == {"tscam": 0.1, "sat": 0.4}[protocol]
        per = pd.read_csv(tmp_path / "p" / "per_image.csv")
        assert (per.gt_known_correct == (per.iou >= 0.5)).all()


def test_suite_report_and_overlay_with_a_vit(cub, tmp_path, capsys):
    path = tmp_path / "vit.yaml"
    path.write_text(json.dumps({
        "name": "vit", "datasets": [{"name": "ex", "adapter": "cub", "root": cub[0], "split": cub[1]}],
        "backbones": [{"name": "deit_tiny_patch16_224", "weights": "random"}],
        "methods": ["cls_attention", "tscam"], "protocols": ["wsoleval", "tscam"], "options": {"batch_size": 8}}))
    _run(capsys, "suite", path, "--out", tmp_path / "suite")
    table = pd.read_csv(tmp_path / "suite" / "summary.csv")
    assert set(table.status) == {"ok"} and len(table) == 4
    assert set(table.protocol) == {"wsoleval", "tscam"}
    run = next(p for p in (tmp_path / "suite").iterdir() if p.is_dir() and (p / "summary.csv").exists())
    _run(capsys, "report", run, "--out", tmp_path / "r.html")
    assert "<html" in (tmp_path / "r.html").read_text()[:500].lower()
    image = build_dataset("cub", cub[0], cub[1]).samples[0].path
    for method in ("rollout", "gradcam"):
        out = _run(capsys, "overlay", "--image", image, *VIT[:4], "--method", method, "--out", tmp_path / f"{method}.png")
        assert (tmp_path / f"{method}.png").stat().st_size > 0 and "top-" in out


def test_an_attention_method_on_a_cnn_is_a_one_line_error(cub, tmp_path, capsys):
    rc = main(["-q", "evaluate", *_data(cub), "--backbone", "tiny_test_net", "--weights", "random",
               "--method", "rollout", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc != 0 and "needs a ViT backbone" in err and "Traceback" not in err
