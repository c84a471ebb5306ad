"""The paper grid: suites cross backbone entries with their own methods and record how each
checkpoint was trained; ``wsol compare`` matches published rows on that training method and
derives "best of the six" rows; the wsoleval suites use the paper's threshold step."""
from __future__ import annotations

import os
import textwrap

import pandas as pd

from wsol.comparison import compare
from wsol.suite import load_suite

from shared_data import REPO  # noqa: E402


def test_backbone_entries_carry_training_options_and_their_methods(tmp_path):
    (tmp_path / "root").mkdir()
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: s
        datasets: [{{name: d, adapter: cub, root: {tmp_path / 'root'}}}]
        backbones:
          - {{name: resnet50_s1, weights: random, training: adl, id: r50_adl, options: {{adl: true}}, methods: [cam]}}
          - {{name: resnet50_s1, weights: random, training: none, id: r50_center, methods: [center]}}
        methods: [cam, {{name: center_gaussian, id: center}}]
        """))
    runs = load_suite(str(path)).runs()
    assert [r.run_id for r in runs] == ["d__r50_adl__cam__wsoleval", "d__r50_center__center__wsoleval"]
    assert [r.backbone.training for r in runs] == ["adl", "none"]
    assert runs[0].config.model_options == {"adl": True} and runs[1].config.model_options == {}


def test_wsoleval_suites_cover_six_methods_three_archs_at_step_0001(tmp_path, monkeypatch):
    for name in ("wsoleval_imagenet", "wsoleval_cub", "wsoleval_openimages"):
        text = open(os.path.join(REPO, "benchmarks", "suites", f"{name}.yaml")).read()
        for var in set(__import__("re").findall(r"\$\{([A-Z_0-9]+)", text)) - {"WSOL_DEVICE"}:
            monkeypatch.setenv(var, str(tmp_path))  # paths; the device keeps its default (options are range-checked)
        runs = load_suite(os.path.join(REPO, "benchmarks", "suites", f"{name}.yaml")).runs()
        assert {r.config.cam_step for r in runs} == {0.001}
        got = {(r.config.backbone, r.backbone.training, r.config.method) for r in runs}
        assert len(runs) == len(got) == 21
        for arch, gap in (("vgg16", "vgg16_gap"), ("inception_v3", "inception_v3_gap"), ("resnet50", "resnet50_s1")):
            for t in ("cam", "has", "adl", "cutmix"):
                assert (gap, t, "cam") in got
            assert (f"{arch}_acol", "acol", "cam") in got and (f"{arch}_spg", "spg", "cam") in got
            assert (gap, "none", "center_gaussian") in got


def _summary(rows, d):
    base = {"status": "ok", "reason": "", "dataset_name": "cub", "dataset": "cub", "split": "test",
            "method": "cam", "protocol": "wsoleval", "n_images": 5794}
    pd.DataFrame([{**base, **r} for r in rows]).to_csv(d / "summary.csv", index=False)


def test_compare_matches_training_and_derives_best_of_six(tmp_path):
    d = tmp_path / "runs"
    d.mkdir()
    trainings = {"cam": ("vgg16_gap", 60.0), "has": ("vgg16_gap", 61.0), "acol": ("vgg16_acol", 58.0),
                 "spg": ("vgg16_spg", 57.0), "adl": ("vgg16_gap", 66.0), "cutmix": ("vgg16_gap", 62.0)}
    _summary([{"run_id": f"r_{t}", "training": t, "backbone": b, "maxboxacc_v2": v}
              for t, (b, v) in trainings.items()], d)
    cmp = compare(str(d), write=False)
    cub_vgg = cmp[(cmp.dataset == "cub") & (cmp.paper_backbone == "VGG16")]
    got = {r.training: (r.status, r.measured, r.published) for r in cub_vgg.itertuples()}
    assert got["cam"] == ("measured", 60.0, 63.7)
    assert got["has"] == ("measured", 61.0, 63.7)       # 63.7 + 0.0 as printed
    assert got["adl"] == ("measured", 66.0, 66.3)       # not set against the CAM row
    assert got["best_wsol"] == ("measured", 66.0, 66.3)  # max of the six
    assert got["none"][0] == "not run" and got["fsl"][0] == "not run"
    # five of six measured: the best row says so instead of guessing
    _summary([{"run_id": f"r_{t}", "training": t, "backbone": b, "maxboxacc_v2": v}
              for t, (b, v) in trainings.items() if t != "spg"], d)
    cmp = compare(str(d), write=False)
    best = cmp[(cmp.dataset == "cub") & (cmp.paper_backbone == "VGG16") & (cmp.training == "best_wsol")].iloc[0]
    assert best.status == "not run" and "5 of 6" in best.note


def test_runs_without_training_column_count_as_cam(tmp_path):
    d = tmp_path / "runs"
    d.mkdir()
    _summary([{"run_id": "r", "backbone": "resnet50_s1", "maxboxacc_v2": 64.0}], d)
    cmp = compare(str(d), write=False)
    measured = cmp[cmp.status == "measured"]
    assert list(measured.training) == ["cam"] and list(measured.published) == [63.0]
