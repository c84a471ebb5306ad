"""Suites (YAML grid -> runs, resume, failures), `wsol compare` and the notebook API."""
import glob
import json
import os
import re
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

import wsol
from wsol.cli import main
from wsol.comparison import compare, read_paper_numbers
from wsol.engine import run as engine
from wsol.engine.run import EvalResult
from wsol.evaluation.scoring import SUMMARY_COLUMNS, summary_frame
from wsol.errors import WsolError
from wsol.report.csv import write_run
from wsol.suite import SUITE_COLUMNS, find_suite_file, load_suite, run_suite

from shared_data import REPO  # noqa: E402
SYN_OPTS = "{n_classes: 3, n_train_per_class: 2, n_test_per_class: 4}"


def write(path, text: str) -> str:
    path = str(path)
    with open(path, "w") as f:
        f.write(textwrap.dedent(text))
    return path


@pytest.fixture(scope="module")
def syn_root(tmp_path_factory):
    """A tiny synthetic CUB-layout set (3 classes, 12 test images), generated once."""
    from wsol.datasets.base import build_dataset

    root = str(tmp_path_factory.mktemp("syn") / "syn")
    build_dataset("synthetic", root, "test", n_classes=3, n_train_per_class=2, n_test_per_class=4)
    return root


def grid_yaml(tmp_path, syn_root, protocols="[wsoleval, cam2016]", extra_dataset="", options="") -> str:
    return write(tmp_path / "suite.yaml", f"""\
        name: tiny
        datasets:
          - name: syn
            adapter: synthetic
            root: {syn_root}
            options: {SYN_OPTS}
        {extra_dataset}
        backbones:
          - {{name: resnet18, weights: random}}
        methods: [cam]
        protocols: {protocols}
        options:
          batch_size: 2
          limit: 2
          {options}
        """)


class FakeEngine:
    """Stands in for wsol.engine.run.evaluate: records configs, writes the run CSVs."""

    def __init__(self, fail_on=(), interrupt_on=None, on_call=None):
        self.calls = []
        self.fail_on, self.interrupt_on, self.on_call = set(fail_on), interrupt_on, on_call

    def __call__(self, cfg, dataset=None):
        self.calls.append(cfg)
        n = len(self.calls)
        if self.on_call:
            self.on_call(n, cfg)
        if n == self.interrupt_on:
            raise KeyboardInterrupt
        if n in self.fail_on:
            raise RuntimeError("boom inside the run")
        meta = {"dataset": cfg.dataset, "split": cfg.split, "protocol": cfg.protocol,
                "backbone": cfg.backbone, "weights": cfg.weights, "method": cfg.method}
        res = EvalResult(summary_frame({"n_images": 2, "maxboxacc_v2": 40.0 + n, "top1_loc": 30.0}, meta),
                         pd.DataFrame({"image_id": ["a", "b"]}), pd.DataFrame({"tau": [0.0]}),
                         pd.DataFrame({"stage": ["wall"]}))
        write_run(cfg.out, res.tables())
        return res

    @property
    def protocols(self):
        return [c.protocol for c in self.calls]


@pytest.fixture
def fake(monkeypatch):
    def install(**kw) -> FakeEngine:
        f = FakeEngine(**kw)
        monkeypatch.setattr(engine, "evaluate", f)
        return f
    return install


# ----------------------------------------------------------------------------- grid
def test_grid_expansion_ids_configs_and_env(tmp_path, monkeypatch):
    monkeypatch.setenv("WSOL_T_ROOT", str(tmp_path))
    monkeypatch.delenv("WSOL_T_UNSET", raising=False)
    path = write(tmp_path / "g.yaml", """\
        datasets:
          - {name: a, adapter: synthetic, root: "${WSOL_T_ROOT}/a", limit: 3, options: {n_classes: 2}}
          - {name: b, adapter: cub, root: "${WSOL_T_UNSET:-/nonexistent/cub}", split: train}
        backbones:
          - resnet18
          - {name: timm/resnet50, weights: random}
          - {name: timm/resnet50, weights: "${WSOL_T_UNSET}"}
        methods: [cam, {name: cam, id: cam2, options: {relu: 1}}]
        protocols: [wsoleval, cam2016]
        options: {batch_size: "8", cam_step: 0.001, device: cpu, limit: 5, save_cams: true}
        """)
    suite = load_suite(path)
    assert suite.name == "g"  # the file name
    runs = suite.runs()
    assert len(runs) == 2 * 3 * 2 * 2
    ids = [r.run_id for r in runs]
    assert len(set(ids)) == len(ids)
    assert ids[:4] == ["a__resnet18__cam__wsoleval", "a__resnet18__cam__cam2016",
                       "a__resnet18__cam2__wsoleval", "a__resnet18__cam2__cam2016"]
    # two entries named timm/resnet50 (different weights): readable id plus a short spec hash
    clash = [i for i in ids if i.startswith("a__timm-resnet50__cam__wsoleval")]
    assert len(clash) == 2 and all(re.fullmatch(r"a__timm-resnet50__cam__wsoleval-[0-9a-f]{6}", i) for i in clash)
    assert ids == [r.run_id for r in load_suite(path).runs()]  # stable
    a = runs[0].config
    assert (a.dataset, a.root, a.split, a.backbone, a.weights, a.method, a.protocol) == \
        ("synthetic", f"{tmp_path}/a", "test", "resnet18", "pretrained", "cam", "wsoleval")
    assert a.limit == 3 and a.batch_size == 8 and a.cam_step == 0.001 and a.dataset_options == {"n_classes": 2}
    assert runs[2].config.method_options == {"relu": 1}
    b = [r for r in runs if r.dataset.name == "b"][0]
    assert b.config.root == "/nonexistent/cub" and b.config.split == "train" and b.config.limit == 5
    assert "dataset root not found: /nonexistent/cub" in b.problem
    unset = [r for r in runs if r.backbone.raw_weights == "${WSOL_T_UNSET}"]
    assert unset and all("$WSOL_T_UNSET" in r.problem for r in unset)
    assert runs[0].problem is None
    # the hash follows the config, not the output folder
    assert runs[0].config_hash != runs[1].config_hash
    assert runs[0].config_hash == load_suite(path).runs()[0].config_hash


@pytest.mark.parametrize("text, key, closest", [
    ("datasets: []\nbackbone: [resnet18]\n", "backbone", "backbones"),
    ("datasets:\n  - {name: s, rooot: /x}\nbackbones: [resnet18]\n", "rooot", "root"),
    ("datasets:\n  - {name: s, root: /x}\nbackbones: [resnet18]\noptions:\n  batchsize: 4\n", "batchsize", "batch_size"),
    ("datasets:\n  - {name: s, root: /x}\nbackbones:\n  - {name: r, weight: random}\n", "weight", "weights"),
])
def test_unknown_key_names_file_key_and_closest(tmp_path, text, key, closest):
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(WsolError) as e:
        load_suite(path)
    msg = str(e.value)
    assert path in msg and f"'{key}'" in msg and f"did you mean '{closest}'" in msg
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if key + ":" in ln)
    assert msg.startswith(f"{path}:{line}:")


def test_bad_yaml_and_cli_error_is_one_line(tmp_path, capsys):
    path = write(tmp_path / "bad.yaml", "datasets: [\n")
    with pytest.raises(WsolError, match="invalid YAML"):
        load_suite(path)
    path = write(tmp_path / "bad2.yaml", "datasets:\n  - {name: s, root: /x}\nbackbones: [r]\noptions: {limt: 2}\n")
    assert main(["-q", "suite", path, "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'limt'" in err and "'limit'" in err


# ----------------------------------------------------------------------------- running
def test_real_runs_outputs_and_resume(tmp_path, syn_root, monkeypatch):
    """End to end with the real engine: per-run CSVs + config.json, suite summary, skip on rerun."""
    out = tmp_path / "out"
    df = run_suite(grid_yaml(tmp_path, syn_root), out_dir=str(out), progress=False)
    assert list(df.status) == ["ok", "ok"]
    assert list(df.columns[:len(SUITE_COLUMNS)]) == SUITE_COLUMNS
    assert all(c in df.columns for c in SUMMARY_COLUMNS)
    on_disk = pd.read_csv(out / "summary.csv")
    assert list(on_disk.run_id) == ["syn__resnet18__cam__wsoleval", "syn__resnet18__cam__cam2016"]
    for rid, proto in zip(on_disk.run_id, ["wsoleval", "cam2016"]):
        d = out / rid
        assert sorted(os.listdir(d)) == ["config.json", "curves.csv", "per_image.csv", "run.json", "summary.csv", "timings.csv"]
        run_summary = pd.read_csv(d / "summary.csv")
        row = on_disk[on_disk.run_id == rid].iloc[0]
        assert row.protocol == proto and row.n_images == 2 and row.dataset_name == "syn"
        assert row.maxboxacc_v2 == pytest.approx(run_summary.maxboxacc_v2[0])
        assert json.loads((d / "config.json").read_text())["config_hash"] == row.config_hash

    calls = []
    real = engine.evaluate
    monkeypatch.setattr(engine, "evaluate", lambda cfg, dataset=None: calls.append(cfg) or real(cfg, dataset))
    again = run_suite(grid_yaml(tmp_path, syn_root), out_dir=str(out), progress=False)
    assert calls == [] and list(again.status) == ["skipped", "skipped"]
    assert list(again.maxboxacc_v2) == pytest.approx(list(df.maxboxacc_v2))  # read back from the runs


def test_interrupted_suite_resumes_with_the_missing_runs(tmp_path, syn_root, fake):
    path = grid_yaml(tmp_path, syn_root, protocols="[wsoleval, cam2016, p3]")
    out = str(tmp_path / "out")
    seen = {}

    def on_call(n, cfg):  # summary.csv is written after every run
        if n == 2:
            seen["rows"] = list(pd.read_csv(os.path.join(out, "summary.csv")).run_id)

    f = fake(interrupt_on=2, on_call=on_call)
    with pytest.raises(KeyboardInterrupt):
        run_suite(path, out_dir=out, progress=False)
    assert seen["rows"] == ["syn__resnet18__cam__wsoleval"]
    assert not os.path.exists(os.path.join(out, "syn__resnet18__cam__cam2016", "summary.csv"))
    f = fake()
    df = run_suite(path, out_dir=out, progress=False)
    assert f.protocols == ["cam2016", "p3"]  # only the missing runs
    assert list(df.status) == ["skipped", "ok", "ok"]
    # a run whose outputs were deleted runs again, alone
    os.unlink(os.path.join(out, "syn__resnet18__cam__p3", "summary.csv"))
    f = fake()
    assert list(run_suite(path, out_dir=out, progress=False).status) == ["skipped", "skipped", "ok"]
    assert f.protocols == ["p3"]
    # --force reruns everything
    f = fake()
    assert list(run_suite(path, out_dir=out, force=True, progress=False).status) == ["ok"] * 3
    assert f.protocols == ["wsoleval", "cam2016", "p3"]


def test_changed_config_reruns_and_only_selects(tmp_path, syn_root, fake):
    out = str(tmp_path / "out")
    f = fake()
    run_suite(grid_yaml(tmp_path, syn_root), out_dir=out, progress=False)
    assert len(f.calls) == 2
    # a changed config interrupted mid-run must not leave the old outputs looking finished
    fake(interrupt_on=1)
    with pytest.raises(KeyboardInterrupt):
        run_suite(grid_yaml(tmp_path, syn_root, options="cam_step: 0.05"), out_dir=out, progress=False)
    assert not os.path.exists(os.path.join(out, "syn__resnet18__cam__wsoleval", "summary.csv"))
    f = fake()
    df = run_suite(grid_yaml(tmp_path, syn_root, options="cam_step: 0.05"), out_dir=out, progress=False)
    assert len(f.calls) == 2 and list(df.status) == ["ok", "ok"]  # new hash: not skipped
    f = fake()
    df = run_suite(grid_yaml(tmp_path, syn_root), out_dir=out, only="*cam2016", force=True, progress=False)
    assert f.protocols == ["cam2016"]
    assert list(df.status) == ["skipped", "ok"] and "not selected" in df.reason[0]
    with pytest.raises(WsolError, match="matches none"):
        run_suite(grid_yaml(tmp_path, syn_root), out_dir=out, only="nothing*", progress=False)


def test_missing_root_fails_that_run_only(tmp_path, syn_root, fake, capsys):
    missing = str(tmp_path / "no_cub_here")
    path = grid_yaml(tmp_path, syn_root, protocols="[wsoleval]",
                     extra_dataset=f"  - {{name: cub, adapter: cub, root: {missing}}}")
    out = str(tmp_path / "out")
    f = fake(fail_on=[2])
    path2 = write(tmp_path / "three.yaml", open(path).read().replace(
        "methods: [cam]", "methods: [cam, {name: cam, id: camb}]"))
    df = run_suite(path2, out_dir=out, progress=False)
    # runs: syn/cam ok, syn/camb raises inside the engine, cub/* missing root (engine never called)
    assert list(df.status) == ["ok", "failed", "failed", "failed"]
    assert len(f.calls) == 2
    assert "RuntimeError: boom inside the run" == df.reason[1]
    assert os.path.isfile(os.path.join(out, df.run_id[1], "error.txt"))
    for i in (2, 3):
        assert missing in df.reason[i] and df.dataset[i] == "cub" and df.backbone[i] == "resnet18"
    on_disk = pd.read_csv(os.path.join(out, "summary.csv"))
    assert list(on_disk.status) == list(df.status)
    # the command exits 1 but still writes everything; the failed runs are retried next time
    f = fake()
    assert main(["-q", "suite", path2, "--out", out]) == 1
    assert len(f.calls) == 1  # the run that failed inside the engine; the missing root fails before it
    text = capsys.readouterr()
    assert "failed" in text.out and "run(s) failed" in text.err


def test_dry_run_runs_and_writes_nothing(tmp_path, syn_root, fake, capsys):
    out = tmp_path / "out"
    f = fake()
    path = grid_yaml(tmp_path, syn_root, extra_dataset="  - {name: gone, adapter: cub, root: /nonexistent/x}")
    df = run_suite(path, out_dir=str(out), dry_run=True, progress=False)
    assert f.calls == [] and not out.exists()
    assert list(df.status) == ["would-run", "would-run", "would-fail", "would-fail"]
    run_suite(path, out_dir=str(out), only="syn__*wsoleval", progress=False)
    f = fake()
    df = run_suite(path, out_dir=str(out), dry_run=True, progress=False)
    assert f.calls == [] and list(df.status) == ["would-skip", "would-run", "would-fail", "would-fail"]
    assert list(run_suite(path, out_dir=str(out), dry_run=True, force=True, progress=False).status)[0] == "would-run"
    assert main(["-q", "suite", path, "--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "syn__resnet18__cam__cam2016" in printed and "would-skip" in printed and f.calls == []


# ----------------------------------------------------------------------------- compare
def test_compare_hand_made_summary(tmp_path, capsys):
    d = tmp_path / "runs"
    d.mkdir()
    pd.DataFrame([
        {"run_id": "r1", "status": "ok", "reason": "", "dataset_name": "cub", "dataset": "cub", "split": "test",
         "backbone": "vgg16_gap", "method": "cam", "protocol": "wsoleval", "n_images": 5794,
         "maxboxacc_v2": 61.25, "top1_loc": 40.0, "top5_loc": 50.0},
        {"run_id": "r2", "status": "ok", "reason": "", "dataset_name": "in1k", "dataset": "imagenet", "split": "val",
         "backbone": "vgg16_gap", "method": "cam", "protocol": "cam2016_code", "n_images": 50000,
         "maxboxacc_v2": 55.0, "top1_loc": 44.5, "top5_loc": 56.0},
        {"run_id": "r3", "status": "failed", "reason": "weights file not found: /x", "dataset_name": "cub",
         "dataset": "cub", "split": "test", "backbone": "resnet50_s1", "method": "cam", "protocol": "wsoleval"},
    ]).to_csv(d / "summary.csv", index=False)
    paper = write(tmp_path / "paper.csv", """\
        source,dataset,split,backbone,method,protocol,metric,value
        A,cub,test,vgg16_gap,cam,wsoleval,maxboxacc_v2,63.7
        B,imagenet,val,vgg16_gap,cam,cam2016_code,top1_loc_err,57.20
        B,imagenet,val,vgg16_gap,cam,cam2016_code,top5_loc_err,45.14
        A,cub,test,resnet50_s1,cam,wsoleval,maxboxacc_v2,63.0
        A,cub,test,inception_v3_gap,cam,wsoleval,maxboxacc_v2,56.7
        """)
    assert main(["-q", "compare", str(d), "--paper", paper]) == 0
    cmp = pd.read_csv(d / "comparison.csv")
    assert list(cmp.status) == ["measured", "measured", "measured", "failed", "not run"]
    assert list(cmp.measured[:3]) == pytest.approx([61.25, 100 - 44.5, 100 - 56.0])
    assert list(cmp.published[:3]) == pytest.approx([63.7, 57.20, 45.14])
    assert list(cmp.delta[:3]) == pytest.approx([61.25 - 63.7, 55.5 - 57.20, 44.0 - 45.14])
    assert list(cmp.run_id[:3]) == ["r1", "r2", "r2"] and cmp.source[1] == "B"
    assert "weights file not found" in cmp.note[3]
    assert cmp.measured[3:].isna().all()
    md = (d / "comparison.md").read_text()
    assert "| cub | test | vgg16_gap | cam | cam | wsoleval | maxboxacc_v2 | 61.25 | 63.70 | -2.45 |" in md
    assert "| inception_v3_gap | cam | cam | wsoleval | maxboxacc_v2 | not run | 56.70 |" in md
    assert "not run" in capsys.readouterr().out
    # the shipped numbers: every one listed, none measured here except the matching keys
    # the shipped numbers: r2 matches by adapter ('imagenet') although its suite name is 'in1k'
    full = compare(str(d))
    shipped = read_paper_numbers()
    # the shipped CAM-paper rows carry their fingerprint: ten-crop heatmaps, which wsol's
    # cam2016_code run (one 224x224 resize) is not, so those two are refused, naming the field
    assert full.status.value_counts().to_dict() == {"measured": 1, "fingerprint differs": 2, "failed": 1,
                                                   "not run": len(shipped) - 4}
    assert list(full[full.status == "measured"].metric) == ["maxboxacc_v2"]
    refused = full[full.status == "fingerprint differs"]
    assert list(refused.metric) == ["top1_loc_err", "top5_loc_err"] and refused.measured.isna().all()
    assert set(refused.note) == {"fingerprint differs in test_crop (measured resize224, published ten_crop)"}


def test_paper_numbers_columns_and_metrics_are_ours():
    """Every shipped published number names a metric wsol writes (or its error form)."""
    p = read_paper_numbers()
    assert list(p.columns[:8]) == ["source", "dataset", "split", "backbone", "method", "protocol", "metric", "value"]
    assert set(p.metric) - {"pxap"} <= set(SUMMARY_COLUMNS) | {c + "_err" for c in SUMMARY_COLUMNS}
    assert not p.duplicated(["dataset", "split", "backbone", "training", "method", "protocol", "metric"]).any()


@pytest.mark.realdata
def test_paper_numbers_agree_with_the_published_table():
    """The Choe et al. rows equal an independent transcription of the paper's main table
    (../shared/data/choe2020_main_table.csv; skipped without it)."""
    from shared_data import SHARED_DATA

    path = os.path.join(SHARED_DATA, "choe2020_main_table.csv")
    if not os.path.isfile(path):
        pytest.skip(f"{path} absent")
    table = pd.read_csv(path, keep_default_na=False)
    published = {(r.dataset.lower(), r.metric.lower().replace("maxboxaccv2", "maxboxacc_v2"), r.architecture, r.method):
                 (float(r.value), r.published_as) for r in table.itertuples()}
    p = read_paper_numbers()
    choe = p[p.source.str.startswith("Choe et al.")]
    assert len(choe) == len(table) == 81  # 9 rows (6 methods, best, few-shot, centre) x 3 archs x 3 datasets
    for r in choe.itertuples():
        assert published[(r.dataset, r.metric, r.paper_backbone, r.paper_method)] == (r.value, r.published_as), r
        assert r.protocol == "wsoleval"


# ----------------------------------------------------------------------------- shipped suites
def _env_for(text: str, tmp_path, monkeypatch) -> None:
    for var in sorted(set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))):
        p = tmp_path / var.lower()
        if var.endswith("_ROOT"):
            p.mkdir(exist_ok=True)
        else:
            p.write_text("not a real checkpoint")
        monkeypatch.setenv(var, str(p))
    monkeypatch.setenv("WSOL_DEVICE", "cpu")


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "benchmarks", "suites", "*.yaml"))),
                         ids=os.path.basename)
def test_shipped_suite_loads_and_expands(path, tmp_path, monkeypatch, fake):
    _env_for(open(path).read(), tmp_path, monkeypatch)
    suite = load_suite(path)
    assert suite.name == os.path.splitext(os.path.basename(path))[0]
    assert os.path.samefile(find_suite_file(suite.name), path)  # `wsol suite smoke` finds it
    runs = suite.runs()
    assert runs and len({r.run_id for r in runs}) == len(runs)
    f = fake()
    df = run_suite(suite, out_dir=str(tmp_path / "out"), dry_run=True, progress=False)
    assert f.calls == [] and not (tmp_path / "out").exists()
    assert set(df.status) <= {"would-run", "would-fail"}
    for reason in df.reason:  # every variable is set: only not-yet-merged plugins may be missing
        assert "environment variable" not in reason and "not found" not in reason, reason


def test_shipped_suites_cover_the_reproducible_paper_numbers(tmp_path, monkeypatch):
    keys = set()
    for path in glob.glob(os.path.join(REPO, "benchmarks", "suites", "*.yaml")):
        _env_for(open(path).read(), tmp_path, monkeypatch)
        for r in load_suite(path).runs():
            keys.add((r.dataset.name, r.config.split, r.config.backbone, r.backbone.training, r.config.method,
                      r.config.protocol))
    p = read_paper_numbers()
    # not runs of their own: the CAM paper's other networks, the few-shot baseline (full
    # supervision), "best of the six" (derived by `wsol compare`) and other methods' own
    # pipelines (protocol 'external': listed with their fingerprints, not run by wsol)
    reproducible = p[~p.backbone.isin(["googlenet_gap", "alexnet_gap"]) & ~p.training.isin(["fsl", "best_wsol"])
                     & (p.protocol != "external")]
    # ImageNet, CUB, OpenImages x (6 methods + centre) x 3 archs + VGG16 CAM paper
    assert len(reproducible) == 3 * 7 * 3 + 2
    for r in reproducible.itertuples():
        assert (r.dataset, r.split, r.backbone, r.training, r.method, r.protocol) in keys, r


# ----------------------------------------------------------------------------- API
def test_api_evaluate_and_run_suite(tmp_path, syn_root, monkeypatch):
    kw = dict(dataset="synthetic", root=syn_root, backbone="resnet18", weights="random", limit=3, batch_size=3,
              dataset_options={"n_classes": 3, "n_train_per_class": 2, "n_test_per_class": 4}, progress=False)
    s = wsol.evaluate(**kw)
    assert isinstance(s, pd.DataFrame) and len(s) == 1 and s.n_images[0] == 3
    t = s.attrs["tables"]
    assert len(t.per_image) == 3 and isinstance(t["curves"], pd.DataFrame) and "stage" in t.timings
    assert t.config.backbone == "resnet18" and not os.listdir(tmp_path)  # nothing written without out=
    # several summaries concatenate (DataFrames in attrs would make this raise)
    monkeypatch.setattr(engine, "evaluate", lambda cfg, dataset=None: EvalResult(
        t.summary.assign(method="other"), t.per_image, t.curves, t.timings))
    both = pd.concat([s, wsol.evaluate(**kw)], ignore_index=True)
    assert list(both.method) == ["cam", "other"]
    with pytest.raises(WsolError, match="did you mean 'backbone'"):
        wsol.evaluate(backbon="resnet18")
    f = FakeEngine()
    monkeypatch.setattr(engine, "evaluate", f)
    df = wsol.run_suite(grid_yaml(tmp_path, syn_root), out_dir=str(tmp_path / "o"), progress=False)
    assert isinstance(df, pd.DataFrame) and list(df.status) == ["ok", "ok"] and len(f.calls) == 2
    with pytest.raises(WsolError, match="did you mean 'out_dir'"):
        wsol.run_suite("x.yaml", outdir="o")


def test_import_wsol_stays_light():
    code = "import sys, wsol; print(sorted(m for m in ('torch', 'pandas', 'yaml') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": REPO}).stdout.strip()
    assert out == "[]"


def test_shipped_files_found_in_checkout_then_in_wheel_prefix(tmp_path, monkeypatch):
    """From a checkout the suites and paper numbers are read in place; without one (a wheel
    install) from ``<prefix>/share/wsol/``, where setup.cfg's data_files put them."""
    import sysconfig

    from wsol import paths
    from wsol.comparison import default_paper_file
    from wsol.suite import find_suite_file

    assert find_suite_file("smoke") == os.path.join(paths.CHECKOUT_BENCHMARKS, "suites", "smoke.yaml")
    assert os.path.isfile(default_paper_file())

    prefix = tmp_path / "prefix"
    (prefix / "share" / "wsol" / "suites").mkdir(parents=True)
    (prefix / "share" / "wsol" / "suites" / "smoke.yaml").write_text("name: smoke\n")
    (prefix / "share" / "wsol" / "paper_numbers.csv").write_text("x\n")
    monkeypatch.setattr(paths, "CHECKOUT_BENCHMARKS", str(tmp_path / "no-checkout" / "benchmarks"))
    monkeypatch.setattr(sysconfig, "get_path", lambda name, scheme=None: str(prefix) if name == "data" else None)
    assert find_suite_file("smoke") == str(prefix / "share" / "wsol" / "suites" / "smoke.yaml")
    assert default_paper_file() == str(prefix / "share" / "wsol" / "paper_numbers.csv")
    assert find_suite_file("nope") == "nope"  # unknown names stay as given (the error names them)


def test_setup_cfg_ships_every_suite_and_the_paper_numbers():
    """setup.cfg's data_files globs cover every file wsol looks up with shipped_file."""
    import configparser
    import glob

    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(REPO, "setup.cfg"))
    data = dict(cfg["options.data_files"])
    root = REPO
    suites = sorted(glob.glob(os.path.join(root, data["share/wsol/suites"].strip())))
    assert [os.path.basename(p) for p in suites] == sorted(
        os.path.basename(p) for p in glob.glob(os.path.join(root, "benchmarks", "suites", "*.yaml")))
    assert data["share/wsol"].strip() == "benchmarks/paper_numbers.csv"
