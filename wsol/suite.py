"""Benchmark suites: a YAML grid (datasets x backbones x methods x protocols) expanded into
runs, each written by :func:`wsol.engine.run.evaluate` into ``DIR/<run-id>/``, resumed
when interrupted and aggregated into ``DIR/summary.csv``.

Suite file (YAML)::

    name: smoke                      # default: the file name without .yaml
    description: free text
    datasets:                        # required, one or more
      - name: cub                    # label in run ids (`wsol compare` matches it or the adapter)
        adapter: cub                 # wsol dataset adapter (default: name)
        root: ${CUB_ROOT:-data/CUB_200_2011}
        split: test                  # default: test
        limit: 500                   # optional, overrides options.limit for this dataset
        options: {}                  # adapter options (--dataset-option)
    backbones:                       # required; a bare string means {name: ..., weights: pretrained}
      - name: vgg16_gap
        weights: ${WSOL_CKPT_CUB_VGG16_CAM}   # pretrained | random | checkpoint file
        id: vgg16                    # optional label in run ids (default: name)
        training: cam                # optional: how the checkpoint was trained (cam, has, acol,
                                     # spg, adl, cutmix; none for baselines), matched by `wsol compare`
        options: {}                  # optional model options (--model-option), e.g. large_feature_map
        methods: [cam]               # optional: only these of the suite's methods (names or ids)
    methods: [cam, {name: gradcam, options: {}, id: gradcam}]   # default: [cam]
    protocols: [wsoleval, cam2016]   # default: [wsoleval]; also cam2016_code
    options:                         # run options: fields of EvalConfig
      batch_size: 32
      device: cuda
      cam_step: 0.01
      limit: null
      workers: 0
      save_cams: false               # true: heatmaps into DIR/<run-id>/cams/

Environment variables: every string value may hold ``${VAR}`` or ``${VAR:-default}`` (the
default applies when VAR is unset or empty); ``~`` is expanded in roots and weight paths.
An unset variable without default in a dataset (root, options) or in a backbone's weights
fails only the runs that use it, with a reason naming the variable; anywhere else it is an
error of the whole file. Relative paths are taken from the current directory.

Run ids are ``<dataset>__<backbone>__<method>__<protocol>`` (characters outside
``[A-Za-z0-9._-]`` become ``-``); ids that would collide get ``-<6 hex>`` of their specs.

A run is skipped when ``DIR/<run-id>/config.json`` holds the same config hash and the run's
``summary.csv`` exists. The hash covers the fields of the resolved EvalConfig that can
change results (not ``out``, ``progress``, ``batch_size``, ``workers``, ``data_workers``,
``sweep``, ``distributed``; root as an absolute path, save_cams as a flag) plus the SHA-256
of a checkpoint file given as weights, so a retrained checkpoint at the same path reruns.
"""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
import fnmatch
import hashlib
import json
import logging
import os
import re
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import pandas as pd

from wsol.errors import WsolError
from wsol.utils.io import read_text_file, write_text_atomic
from wsol.utils.outdirs import claim_output_dir, folder_lock

log = logging.getLogger(__name__)

TOP_KEYS = ("name", "description", "datasets", "backbones", "methods", "protocols", "options")
DATASET_KEYS = ("name", "adapter", "root", "split", "limit", "options")
BACKBONE_KEYS = ("name", "weights", "id", "training", "options", "methods")
METHOD_KEYS = ("name", "options", "id")
#: EvalConfig fields the grid sets itself (not allowed under ``options``).
GRID_FIELDS = ("dataset", "root", "split", "backbone", "weights", "method", "protocol", "out",
               "progress", "dataset_options", "method_options", "model_options")
SUITE_COLUMNS = ["run_id", "status", "reason", "config_hash", "dataset_name", "training"]
#: Columns of the run's summary.csv filled from the config when a run did not finish.
META_COLUMNS = ("dataset", "split", "protocol", "backbone", "weights", "method")
CONFIG_FILE = "config.json"
ERROR_FILE = "error.txt"
NO_FILE_WEIGHTS = ("pretrained", "random", "none", "")

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


# ----------------------------------------------------------------------------- specs
@dataclass
class DatasetSpec:
    """One dataset entry of a suite (strings already expanded)."""

    name: str
    adapter: str
    root: str
    split: str = "test"
    limit: Optional[int] = None
    options: Dict[str, Any] = field(default_factory=dict)
    raw_root: str = ""
    missing_env: List[str] = field(default_factory=list)


@dataclass
class BackboneSpec:
    """One backbone entry: registry name, weights, label in run ids, how its checkpoint was
    trained (``training``, for ``wsol compare``), model options, and optionally which of the
    suite's methods it runs with."""

    name: str
    weights: str = "pretrained"
    id: str = ""
    raw_weights: str = ""
    missing_env: List[str] = field(default_factory=list)
    training: str = "cam"
    options: Dict[str, Any] = field(default_factory=dict)
    methods: Optional[List[str]] = None


@dataclass
class MethodSpec:
    """One CAM method entry: registry name, options, label in run ids."""

    name: str
    options: Dict[str, Any] = field(default_factory=dict)
    id: str = ""


@dataclass
class Run:
    """One point of the grid: its id, the resolved config (``out`` unset) and, when known
    before running, why it cannot run."""

    run_id: str
    dataset: DatasetSpec
    backbone: BackboneSpec
    method: MethodSpec
    protocol: str
    config: Any  # EvalConfig
    problem: Optional[str] = None

    @property
    def config_hash(self) -> str:
        return config_hash(self.config)


@dataclass
class Suite:
    """A parsed suite file; :meth:`runs` expands the grid."""

    name: str
    path: str = ""
    description: str = ""
    datasets: List[DatasetSpec] = field(default_factory=list)
    backbones: List[BackboneSpec] = field(default_factory=list)
    methods: List[MethodSpec] = field(default_factory=list)
    protocols: List[str] = field(default_factory=lambda: ["wsoleval"])
    options: Dict[str, Any] = field(default_factory=dict)

    def runs(self) -> List[Run]:
        """The grid in file order: datasets x backbones x methods x protocols."""
        from wsol.engine.run import EvalConfig

        runs: List[Run] = []
        for d in self.datasets:
            for b in self.backbones:
                for m in self.methods:
                    if b.methods is not None and m.name not in b.methods and (m.id or m.name) not in b.methods:
                        continue
                    for p in self.protocols:
                        opts = dict(self.options)
                        if d.limit is not None:
                            opts["limit"] = d.limit
                        save = bool(opts.pop("save_cams", False))
                        cfg = EvalConfig(dataset=d.adapter, root=d.root, split=d.split, backbone=b.name,
                                         weights=b.weights, method=m.name, protocol=p,
                                         dataset_options=dict(d.options), method_options=dict(m.options),
                                         model_options=dict(b.options),
                                         save_cams="cams" if save else None, **opts)
                        rid = "__".join(_sanitize(x) for x in (d.name, b.id or b.name, m.id or m.name, p))
                        runs.append(Run(rid, d, b, m, p, cfg, _problem(d, b, m)))
        _disambiguate(runs)
        return runs


def _sanitize(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(s)).strip("-") or "x"


def _disambiguate(runs: List[Run]) -> None:
    """Append ``-<6 hex of the run's specs>`` to ids shared by several runs."""
    counts: Dict[str, int] = {}
    for r in runs:
        counts[r.run_id] = counts.get(r.run_id, 0) + 1
    for r in runs:
        if counts[r.run_id] > 1:
            spec = json.dumps([dataclasses.asdict(r.dataset), dataclasses.asdict(r.backbone),
                               dataclasses.asdict(r.method), r.protocol], sort_keys=True, default=str)
            r.run_id = f"{r.run_id}-{hashlib.sha1(spec.encode()).hexdigest()[:6]}"


def _unknown(kind: str, name: str, known: List[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.4)
    return f"unknown {kind} '{name}'" + (f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(known)})")


def _problem(d: DatasetSpec, b: BackboneSpec, m: MethodSpec) -> Optional[str]:
    """Why a run cannot start (unset variable, unknown adapter or method, missing root or
    checkpoint), or None. Registry names are checked here, not when loading, so a suite
    naming a plugin that is not installed still loads and its other runs go on."""
    from wsol.cams.base import list_methods
    from wsol.datasets.base import list_datasets

    if d.missing_env:
        return (f"environment variable {', '.join('$' + v for v in d.missing_env)} not set "
                f"(dataset '{d.name}', root: {d.raw_root})")
    if b.missing_env:
        return (f"environment variable {', '.join('$' + v for v in b.missing_env)} not set "
                f"(backbone '{b.name}', weights: {b.raw_weights})")
    generates = {i.name: i.generates for i in list_datasets()}
    if d.adapter not in generates:
        return _unknown("dataset adapter", d.adapter, sorted(generates)) + f" (dataset '{d.name}')"
    methods = [i.name for i in list_methods()]
    if m.name not in methods:
        return _unknown("method", m.name, methods)
    if not generates[d.adapter] and not os.path.isdir(d.root):
        return f"dataset root not found: {d.root} (dataset '{d.name}', root: {d.raw_root})"
    if b.weights not in NO_FILE_WEIGHTS and not os.path.exists(b.weights):
        return f"weights file not found: {b.weights} (backbone '{b.name}', weights: {b.raw_weights})"
    return None


# ----------------------------------------------------------------------------- hashing
_FILE_DIGESTS: Dict[Tuple[str, int, int], str] = {}


def _file_digest(path: str) -> str:
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in _FILE_DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _FILE_DIGESTS[key] = h.hexdigest()
    return _FILE_DIGESTS[key]


def hashed_config(cfg) -> Dict[str, Any]:
    """The parts of an EvalConfig that decide a run's outputs (what :func:`config_hash` hashes):
    its result fields (:func:`wsol.engine.config.result_fields`), less those added later while
    at their default (:func:`wsol.engine.config.hash_omits_default`)."""
    from wsol.engine.config import hash_omits_default, result_fields

    full = dataclasses.asdict(cfg)
    omit = hash_omits_default()
    d = {k: full[k] for k in result_fields() if not (k in omit and full[k] == omit[k])}
    d["save_cams"] = bool(d.get("save_cams"))
    for k in ("save_boxes", "save_predictions"):
        if k in d:
            d[k] = bool(d[k])
    if d.get("root"):
        d["root"] = os.path.abspath(d["root"])
    w = d.get("weights") or ""
    if w not in NO_FILE_WEIGHTS and os.path.isfile(w):
        d["weights"] = os.path.abspath(w)
        d["weights_sha256"] = _file_digest(w)
    return d


def config_hash(cfg) -> str:
    """12 hex digits of SHA-1 over :func:`hashed_config` (JSON, sorted keys)."""
    blob = json.dumps(hashed_config(cfg), sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------- loading
def _expand(value: Any, missing: List[str]) -> Any:
    """Expand ``${VAR}`` / ``${VAR:-default}`` in strings (recursively); unset names go to ``missing``."""
    if isinstance(value, str):
        def sub(m: "re.Match[str]") -> str:
            v = os.environ.get(m.group(1))
            if v:
                return v
            if m.group(2) is not None:
                return m.group(2)
            if v is None:
                missing.append(m.group(1))
            return ""
        return _ENV_RE.sub(sub, value)
    if isinstance(value, list):
        return [_expand(v, missing) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, missing) for k, v in value.items()}
    return value


KeyPath = Tuple[Any, ...]  # keys and list indices from the top of the file, e.g. ("datasets", 0, "root")


class _Loader:
    """Checks one suite file; errors name the file, the line and, for unknown keys, the closest key."""

    def __init__(self, path: str, text: str):
        import yaml

        self.path = path
        self.lines: Dict[KeyPath, int] = {}
        try:
            self._index(yaml.compose(text, Loader=yaml.SafeLoader), ())
        except yaml.YAMLError:
            pass  # reported by safe_load

    def _index(self, node: Any, at: KeyPath) -> None:
        import yaml

        if node is None:
            return
        self.lines.setdefault(at, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                self.lines[at + (k.value,)] = k.start_mark.line + 1
                self._index(v, at + (k.value,))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                self._index(v, at + (i,))

    def error(self, msg: str, at: KeyPath = ()) -> WsolError:
        while at and at not in self.lines:
            at = at[:-1]
        line = self.lines.get(at) if at else None
        return WsolError(f"{self.path}:{line}: {msg}" if line else f"{self.path}: {msg}")

    def check_keys(self, d: dict, known: Sequence[str], what: str, at: KeyPath) -> None:
        for k in d:
            if k not in known:
                close = difflib.get_close_matches(str(k), list(known), n=1, cutoff=0.5)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise self.error(f"unknown key '{k}' in {what}{hint} (known: {', '.join(known)})", at + (k,))

    def mapping(self, v: Any, what: str, at: KeyPath) -> dict:
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise self.error(f"{what} must be a mapping (key: value), got {type(v).__name__}", at)
        return v

    def entries(self, v: Any, key: str, required: bool) -> List[Any]:
        if v is None:
            if required:
                raise self.error(f"'{key}' is required (a list of entries)")
            return []
        if isinstance(v, (str, dict)):
            v = [v]
        if not isinstance(v, list) or (required and not v):
            raise self.error(f"'{key}' must be a non-empty list", (key,))
        return v

    def env_free(self, v: Any, what: str, at: KeyPath) -> Any:
        missing: List[str] = []
        out = _expand(v, missing)
        if missing:
            raise self.error(f"environment variable ${missing[0]} is not set ({what})", at)
        return out


def _run_options() -> Dict[str, Any]:
    """The suite's ``options`` keys: EvalConfig's declared options less the grid's fields."""
    from wsol.engine.config import EvalConfig
    from wsol.utils.options import options_of

    return {k: o for k, o in options_of(EvalConfig).items() if k not in GRID_FIELDS}


def _coerce_option(ld: _Loader, opt: Any, value: Any, at: KeyPath) -> Any:
    """A YAML value (strings from ``${VAR}`` included) -> the option's type, checked by its
    declaration (:mod:`wsol.utils.options`: the same rule and line as the CLI and the API)."""
    from wsol.utils.options import OptionError

    if opt.name == "save_cams":  # in a suite: a flag (heatmaps into DIR/<run-id>/cams/)
        opt = dataclasses.replace(opt, kind="bool", optional=False, pattern=None)
    try:
        return opt.coerce(value)
    except OptionError as e:
        raise ld.error(str(e), at) from None


def load_suite(path: str) -> Suite:
    """Read and check a suite file (see the module docstring for the schema)."""
    import yaml

    if not os.path.exists(path):
        raise WsolError(f"{path}: suite file not found")
    text = read_text_file(path, "suite file")  # missing, unreadable, not UTF-8: one line
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        raise WsolError(f"{where}: invalid YAML ({getattr(e, 'problem', None) or e})") from None
    ld = _Loader(path, text)
    data = ld.mapping(data, "a suite file", ())
    ld.check_keys(data, TOP_KEYS, "the suite", ())
    stem = os.path.splitext(os.path.basename(path))[0]
    suite = Suite(name=str(ld.env_free(data.get("name") or stem, "name", ("name",))), path=os.path.abspath(path),
                  description=str(ld.env_free(data.get("description") or "", "description", ("description",))))

    _load_datasets(ld, data, suite)
    _load_backbones(ld, data, suite)
    _load_methods(ld, data, suite)
    _load_protocols_and_options(ld, data, suite)
    return suite


def _load_datasets(ld: "_Loader", data: dict, suite: Suite) -> None:
    """The ``datasets`` entries (names unique; roots may hold ${VAR})."""
    for i, e in enumerate(ld.entries(data.get("datasets"), "datasets", True)):
        at: KeyPath = ("datasets", i)
        e = ld.mapping(e, f"datasets[{i}]", at)
        ld.check_keys(e, DATASET_KEYS, f"datasets[{i}]", at)
        if not e.get("name"):
            raise ld.error(f"datasets[{i}] needs a 'name'", at)
        if not e.get("root"):
            raise ld.error(f"dataset '{e['name']}' needs a 'root'", at)
        missing: List[str] = []
        root = str(_expand(str(e["root"]), missing))
        options = _expand(ld.mapping(e.get("options"), f"options of dataset '{e['name']}'", at + ("options",)),
                          missing)
        limit = e.get("limit")
        if limit is not None:
            limit = _coerce_option(ld, _run_options()["limit"], ld.env_free(limit, "limit", at + ("limit",)),
                                   at + ("limit",))
        suite.datasets.append(DatasetSpec(
            name=str(e["name"]), adapter=str(ld.env_free(e.get("adapter") or e["name"], "adapter", at + ("adapter",))),
            root=os.path.expanduser(root) if root else root,
            split=str(ld.env_free(e.get("split") or "test", "split", at + ("split",))), limit=limit,
            options=options, raw_root=str(e["root"]), missing_env=missing))
    names = [d.name for d in suite.datasets]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ld.error(f"dataset name '{dup[0]}' used twice (names label the runs)", ("datasets",))


def _load_backbones(ld: "_Loader", data: dict, suite: Suite) -> None:
    """The ``backbones`` entries (weights may hold ${VAR})."""
    for i, e in enumerate(ld.entries(data.get("backbones"), "backbones", True)):
        at = ("backbones", i)
        e = ld.mapping({"name": e} if isinstance(e, str) else e, f"backbones[{i}]", at)
        ld.check_keys(e, BACKBONE_KEYS, f"backbones[{i}]", at)
        if not e.get("name"):
            raise ld.error(f"backbones[{i}] needs a 'name'", at)
        missing = []
        raw = str(e.get("weights") if e.get("weights") is not None else "pretrained")
        weights = str(_expand(raw, missing))
        if weights not in NO_FILE_WEIGHTS:
            weights = os.path.expanduser(weights)
        methods = e.get("methods")
        if methods is not None and (not isinstance(methods, list) or not all(isinstance(x, str) for x in methods)):
            raise ld.error(f"backbones[{i}].methods must be a list of method names", at + ("methods",))
        suite.backbones.append(BackboneSpec(
            name=str(ld.env_free(e["name"], "backbone name", at + ("name",))), weights=weights,
            id=str(ld.env_free(e.get("id") or "", "id", at + ("id",))), raw_weights=raw, missing_env=missing,
            training=str(ld.env_free(e.get("training") or "cam", "training", at + ("training",))),
            options=ld.env_free(ld.mapping(e.get("options"), f"options of backbone '{e['name']}'", at + ("options",)),
                                "model options", at + ("options",)),
            methods=[str(x) for x in methods] if methods is not None else None))


def _load_methods(ld: "_Loader", data: dict, suite: Suite) -> None:
    """The ``methods`` entries (default: cam)."""
    for i, e in enumerate(ld.entries(data.get("methods"), "methods", False) or ["cam"]):
        at = ("methods", i)
        e = ld.mapping({"name": e} if isinstance(e, str) else e, f"methods[{i}]", at)
        ld.check_keys(e, METHOD_KEYS, f"methods[{i}]", at)
        if not e.get("name"):
            raise ld.error(f"methods[{i}] needs a 'name'", at)
        opts_at = at + ("options",)
        suite.methods.append(MethodSpec(
            name=str(e["name"]),
            options=ld.env_free(ld.mapping(e.get("options"), f"options of method '{e['name']}'", opts_at),
                                "method options", opts_at),
            id=str(e.get("id") or "")))


def _load_protocols_and_options(ld: "_Loader", data: dict, suite: Suite) -> None:
    """``protocols`` (default: wsoleval) and the run ``options`` (EvalConfig fields)."""
    protocols = ld.entries(data.get("protocols"), "protocols", False) or ["wsoleval"]
    if not all(isinstance(p, str) and p for p in protocols):
        raise ld.error("'protocols' must be a list of names (wsoleval, cam2016, cam2016_code)", ("protocols",))
    suite.protocols = [str(ld.env_free(p, "protocol", ("protocols", i))) for i, p in enumerate(protocols)]

    types = _run_options()
    opts = ld.mapping(data.get("options"), "options", ("options",))
    grid = [k for k in opts if k in GRID_FIELDS]
    if grid:
        raise ld.error(f"'{grid[0]}' is set by the grid, not under options "
                       f"(use datasets/backbones/methods/protocols)", ("options", grid[0]))
    ld.check_keys(opts, sorted(types), "options", ("options",))
    suite.options = {k: _coerce_option(ld, types[k], ld.env_free(v, f"option {k}", ("options", k)), ("options", k))
                     for k, v in opts.items()}


# ----------------------------------------------------------------------------- running
def _read_json(path: str) -> Optional[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_text_atomic(path: str, text: str) -> None:
    write_text_atomic(path, text, newline=None)


def is_complete(run: Run, run_dir: str) -> bool:
    """Whether ``run_dir`` holds finished outputs of exactly this run's config."""
    meta = _read_json(os.path.join(run_dir, CONFIG_FILE))
    return bool(meta) and meta.get("config_hash") == run.config_hash and \
        os.path.isfile(os.path.join(run_dir, "summary.csv"))


def _meta_row(run: Run) -> Dict[str, Any]:
    cfg = run.config
    return {"dataset_name": run.dataset.name, "training": run.backbone.training, "dataset": cfg.dataset, "split": cfg.split,
            "protocol": cfg.protocol, "backbone": cfg.backbone, "weights": cfg.weights, "method": cfg.method}


def _row(run: Run, status: str, reason: str, summary: Optional[pd.DataFrame] = None) -> Dict[str, Any]:
    row: Dict[str, Any] = {"run_id": run.run_id, "status": status, "reason": reason,
                           "config_hash": run.config_hash}
    row.update(_meta_row(run))
    if summary is not None and len(summary):
        row.update({k: v for k, v in summary.iloc[0].to_dict().items()})
    return row


def _frame(rows: List[Dict[str, Any]]) -> pd.DataFrame:
    from wsol.evaluation.scoring import SUMMARY_COLUMNS

    df = pd.DataFrame(rows)
    first = SUITE_COLUMNS + [c for c in SUMMARY_COLUMNS if c not in SUITE_COLUMNS]
    for c in first:
        if c not in df.columns:
            df[c] = pd.Series(dtype=object)
    return df[first + [c for c in df.columns if c not in first]]


def _read_summary(run_dir: str) -> Optional[pd.DataFrame]:
    try:
        return pd.read_csv(os.path.join(run_dir, "summary.csv"))
    except Exception:  # unreadable/partial: treated as absent
        return None


def _execute(run: Run, run_dir: str, progress: bool) -> Dict[str, Any]:
    """Run one grid point into ``run_dir``; any exception becomes a failed row."""
    from wsol.engine import run as engine

    if run.problem:
        return _row(run, "failed", run.problem)
    os.makedirs(run_dir, exist_ok=True)
    for name in ("summary.csv", CONFIG_FILE, ERROR_FILE):  # stale outputs of another config
        p = os.path.join(run_dir, name)
        if os.path.exists(p):
            os.unlink(p)
    cfg = dataclasses.replace(run.config, out=run_dir, progress=progress,
                              save_cams=os.path.join(run_dir, "cams") if run.config.save_cams else None)
    t0 = time.perf_counter()
    try:
        res = engine.evaluate(cfg)
    except Exception as e:  # one failed run must not stop the suite
        reason = str(e).splitlines()[0] if isinstance(e, WsolError) else \
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")
        _write_text_atomic(os.path.join(run_dir, ERROR_FILE), traceback.format_exc())
        log.warning("run %s failed: %s", run.run_id, reason)
        return _row(run, "failed", reason)
    meta = {"run_id": run.run_id, "config_hash": run.config_hash, "config": hashed_config(run.config),
            "dataset_name": run.dataset.name, "seconds": round(time.perf_counter() - t0, 3),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    _write_text_atomic(os.path.join(run_dir, CONFIG_FILE), json.dumps(meta, indent=2, default=str) + "\n")
    return _row(run, "ok", "", res.summary)


def _select(runs: List[Run], only: Union[None, str, Sequence[str]]) -> List[bool]:
    if not only:
        return [True] * len(runs)
    pats = [only] if isinstance(only, str) else list(only)
    return [any(fnmatch.fnmatchcase(r.run_id, p) for p in pats) for r in runs]


def default_out_dir(suite: Suite) -> str:
    """``runs/<suite-name>`` (relative to the current directory)."""
    return os.path.join("runs", _sanitize(suite.name))


def run_suite(path_or_suite: Union[str, Suite], out_dir: Optional[str] = None,
              only: Union[None, str, Sequence[str]] = None, force: bool = False, dry_run: bool = False,
              progress: bool = True) -> pd.DataFrame:
    """Run every run of a suite into ``out_dir/<run-id>/`` and return the suite summary.

    Finished runs with the same config hash are skipped (``force`` reruns them); ``only``
    is an fnmatch pattern (or several) on run ids; runs left out are reported as skipped.
    ``out_dir/summary.csv`` is rewritten atomically after every run. With ``dry_run``
    nothing is run or written: the frame lists each run as would-run, would-skip or
    would-fail (with the reason). A failed run has status 'failed' and its reason; the
    others go on.
    """
    suite = path_or_suite if isinstance(path_or_suite, Suite) else load_suite(path_or_suite)
    out_dir = out_dir or default_out_dir(suite)
    runs = suite.runs()
    selected = _select(runs, only)
    if only and not any(selected):
        raise WsolError(f"--only {only if isinstance(only, str) else ' '.join(only)}: matches none of the "
                        f"{len(runs)} runs ({', '.join(r.run_id for r in runs[:5])}{' ...' if len(runs) > 5 else ''})")

    if dry_run:
        rows = []
        for r, sel in zip(runs, selected):
            done = is_complete(r, os.path.join(out_dir, r.run_id))
            if not sel:
                status, reason = "skipped", "not selected by --only"
            elif done and not force:
                status, reason = "would-skip", "finished outputs with the same config hash"
            elif r.problem:
                status, reason = "would-fail", r.problem
            else:
                status, reason = "would-run", "--force" if done else ""
            row = {"run_id": r.run_id, "status": status, "reason": reason, "config_hash": r.config_hash}
            row.update(_meta_row(r))
            rows.append(row)
        return pd.DataFrame(rows, columns=SUITE_COLUMNS + [c for c in META_COLUMNS])

    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from wsol.report.csv import write_csv_atomic

    claim_output_dir(out_dir, "suite", ["summary.csv"])
    summary_path = os.path.join(out_dir, "summary.csv")
    rows: List[Dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        # two suites on one folder would both run every job: the second one stops here
        stack.enter_context(folder_lock(out_dir, "wsol suite"))
        bar = tqdm(total=sum(selected), desc=f"suite {suite.name}", unit="run", disable=not progress)
        stack.callback(bar.close)
        if progress:  # log lines above the bar, not through it
            stack.enter_context(logging_redirect_tqdm())
        for r, sel in zip(runs, selected):
            run_dir = os.path.join(out_dir, r.run_id)
            if is_complete(r, run_dir) and not (force and sel):
                row = _row(r, "skipped", "finished outputs with the same config hash" if sel else
                           "not selected by --only (finished earlier)", _read_summary(run_dir))
            elif not sel:
                row = _row(r, "skipped", "not selected by --only")
            else:
                bar.set_postfix_str(r.run_id)
                row = _execute(r, run_dir, progress)
                log.info("run %s: %s%s", r.run_id, row["status"], f" ({row['reason']})" if row["reason"] else "")
            if sel:
                bar.update(1)
            rows.append(row)
            write_csv_atomic(_frame(rows), summary_path)
    return _frame(rows)


def find_suite_file(name: str) -> str:
    """``name`` itself when it is a file, else the shipped ``benchmarks/suites/<name>.yaml``
    (this checkout's, or the wheel's copy: :func:`wsol.paths.shipped_file`)."""
    if os.path.isfile(name) or os.sep in name or name.endswith((".yaml", ".yml")):
        return name
    from wsol.paths import shipped_file

    shipped = shipped_file("suites", f"{name}.yaml")
    return shipped if os.path.isfile(shipped) else name
