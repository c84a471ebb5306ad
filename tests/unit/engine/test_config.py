"""One config schema (docs/architecture.md, Flow): the suite's cache key hashes only the
fields that can change results, pinned here by a golden value."""
import dataclasses

import pytest

from wsol.engine.config import EvalConfig, result_fields
from wsol.suite import config_hash, hashed_config

BASE = dict(dataset="cub", root="/data/CUB_200_2011", backbone="resnet50", weights="random", method="gradcam")
# sha1 of the result fields of BASE (change it only with a change that changes results)
GOLDEN_HASH = "4d06a04bc613"


def test_suite_hash_is_pinned():
    assert config_hash(EvalConfig(**BASE)) == GOLDEN_HASH


@pytest.mark.parametrize("change", [dict(batch_size=7), dict(workers=3), dict(data_workers=2), dict(sweep="reference"),
                                    dict(out="/tmp/elsewhere"), dict(progress=False), dict(distributed="off")])
def test_speed_and_output_fields_do_not_change_the_hash(change):
    assert config_hash(EvalConfig(**{**BASE, **change})) == GOLDEN_HASH


@pytest.mark.parametrize("change", [dict(method="cam"), dict(cam_step=0.001), dict(seed=1), dict(fixed_tau=0.3),
                                    dict(protocol="cam2016"), dict(dtype="bf16"), dict(limit=10),
                                    dict(method_options={"relu": 1}), dict(save_cams="cams")])
def test_result_fields_change_the_hash(change):
    assert config_hash(EvalConfig(**{**BASE, **change})) != GOLDEN_HASH


def test_hashed_fields_are_the_result_fields():
    from wsol.engine.config import hash_omits_default

    omitted = hash_omits_default()
    assert set(hashed_config(EvalConfig(**BASE))) == set(result_fields()) - set(omitted)
    assert set(omitted) == {"tau_policy", "tau_source", "tau_holdout", "predictions", "box_rule", "save_boxes",
                            "save_predictions", "faithfulness", "faithfulness_steps", "faithfulness_patch",
                            "deletion_baseline", "insertion_baseline", "road_noise"}
    # away from their default they are hashed like any result field
    for change in (dict(tau_policy="fixed"), dict(predictions="p.csv"), dict(box_rule="all"),
                   dict(save_boxes="b.csv"), dict(tau_policy="holdout", tau_holdout=0.1),
                   dict(faithfulness="deletion"), dict(faithfulness_steps=10), dict(road_noise=0.0)):
        assert config_hash(EvalConfig(**{**BASE, **change})) != GOLDEN_HASH, change
    speed = {f.name for f in dataclasses.fields(EvalConfig)} - set(result_fields())
    assert speed == {"batch_size", "workers", "data_workers", "sweep", "out", "progress", "distributed"}


def test_cli_yaml_and_api_share_the_names(tmp_path):
    """The CLI's evaluate options and the suite's ``options`` keys are EvalConfig fields."""
    from wsol.cli import build_parser
    from wsol.suite import GRID_FIELDS

    ap = build_parser()
    sub = next(a for a in ap._actions if a.dest == "command")
    dests = {a.dest for a in sub.choices["evaluate"]._actions} - {"help", "debug", "quiet", "command"}
    fields = {f.name for f in dataclasses.fields(EvalConfig)}
    cli_only = {"dataset_option", "method_option", "model_option", "method_batch", "images", "report"}
    assert dests - cli_only <= fields, sorted(dests - cli_only - fields)
    assert set(GRID_FIELDS) <= fields
