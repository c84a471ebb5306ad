"""A head that does not fit the dataset is an error with what to do (or --new-head), and
--dataset-option keys are checked against each adapter's declared options."""
import os

import pandas as pd
import pytest

from cub_fixture import make_cub
from wsol.cli import main
from wsol.datasets.base import build_dataset, list_datasets


def _main(capsys, *argv):
    rc = main(["-q", *argv])
    return rc, capsys.readouterr().err


@pytest.fixture(scope="module")
def meta(tmp_path_factory):
    """The 3-class CUB fixture as wsolevaluation metadata without class_names.txt (as
    wsolevaluation ships it), images beside it; labels 0..2 (tiny_test_net's head has 3)."""
    root = tmp_path_factory.mktemp("heads")
    make_cub(str(root / "cub"), n_per_class=2)
    assert main(["-q", "export-metadata", "--dataset", "cub", "--root", str(root / "cub"), "--split", "test",
                 "--out", str(root / "meta")]) == 0
    os.remove(root / "meta" / "class_names.txt")
    return root


def _eval(meta, out, *extra):
    return ["evaluate", "--dataset", "wsoleval", "--root", str(meta / "meta"), "--images",
            str(meta / "cub" / "images"), "--backbone", "tiny_test_net", "--weights", "pretrained",
            "--batch-size", "8", "--out", str(out), *extra]


def test_labels_without_class_list_keep_a_head_that_covers_them(meta, tmp_path, capsys):
    rc, err = _main(capsys, *_eval(meta, tmp_path / "o"))
    assert rc == 0, err
    assert "re-initialised" not in err and "replaced" not in err
    assert pd.read_csv(tmp_path / "o" / "summary.csv").n_images[0] == 3


def test_declared_class_count_that_disagrees_is_one_line_exit_2(meta, tmp_path, capsys):
    rc, err = _main(capsys, *_eval(meta, tmp_path / "o", "--dataset-option", "num_classes=5"))
    assert rc == 2 and err.count("\n") == 1
    assert "has 3 classes" in err and "5" in err and "--new-head" in err and "num_classes=3" in err
    assert not (tmp_path / "o" / "summary.csv").exists()


def test_class_list_that_disagrees_is_an_error_and_new_head_opts_in(meta, tmp_path, capsys):
    (meta / "meta4").mkdir()
    for f in os.listdir(meta / "meta"):
        (meta / "meta4" / f).write_bytes((meta / "meta" / f).read_bytes())
    (meta / "meta4" / "class_names.txt").write_text("a\nb\nc\nd\n")
    argv = [a if a != str(meta / "meta") else str(meta / "meta4") for a in _eval(meta, tmp_path / "o")]
    rc, err = _main(capsys, *argv)
    assert rc == 2 and err.count("\n") == 1 and "class list" in err and "--new-head" in err
    rc, err = _main(capsys, *argv, "--new-head")
    assert rc == 0, err
    assert pd.read_csv(tmp_path / "o" / "summary.csv").n_images[0] == 3


def test_label_beyond_the_head_is_an_error(meta, tmp_path, capsys):
    (meta / "meta_big").mkdir()
    for f in os.listdir(meta / "meta"):
        (meta / "meta_big" / f).write_bytes((meta / "meta" / f).read_bytes())
    lines = (meta / "meta_big" / "class_labels.txt").read_text().splitlines()
    lines[0] = lines[0].rsplit(",", 1)[0] + ",7"
    (meta / "meta_big" / "class_labels.txt").write_text("\n".join(lines) + "\n")
    argv = [a if a != str(meta / "meta") else str(meta / "meta_big") for a in _eval(meta, tmp_path / "o")]
    rc, err = _main(capsys, *argv)
    assert rc == 2 and err.count("\n") == 1 and "at least 8" in err and "--new-head" in err


def test_unknown_dataset_option_lists_valid_keys(meta, tmp_path, capsys):
    rc, err = _main(capsys, *_eval(meta, tmp_path / "o", "--dataset-option", "num_clases=1000"))
    assert rc == 2 and err.count("\n") == 1
    assert "num_clases" in err and "images" in err and "num_classes" in err
    rc, err = _main(capsys, "check-data", "--dataset", "cub", "--root", str(meta / "cub"),
                    "--dataset-option", "wnids=x.txt")
    assert rc == 2 and err.count("\n") == 1 and "wnids" in err and "num_classes" in err
    rc, err = _main(capsys, "export-metadata", "--dataset", "cub", "--root", str(meta / "cub"),
                    "--dataset-option", "bogus=1", "--out", str(tmp_path / "m"))
    assert rc == 2 and "bogus" in err


def test_every_adapter_declares_its_options_and_refuses_others(tmp_path):
    from wsol.errors import WsolError

    for info in list_datasets():
        assert "num_classes" in info.valid_options()
        for key, help_text in info.options.items():
            assert help_text, f"{info.name}: option {key} has no help"
        with pytest.raises(WsolError, match="valid --dataset-option keys"):
            build_dataset(info.name, str(tmp_path), "test", no_such_key=1)


def test_num_classes_option(meta):
    ds = build_dataset("wsoleval", str(meta / "meta"), "test", num_classes=1000)
    assert ds.num_classes == 1000 and ds.classes_known
    plain = build_dataset("wsoleval", str(meta / "meta"), "test")
    assert plain.num_classes == 3 and not plain.classes_known
    from wsol.errors import WsolError

    with pytest.raises(WsolError, match="not below num_classes=2"):
        build_dataset("wsoleval", str(meta / "meta"), "test", num_classes=2)
    with pytest.raises(WsolError, match="disagrees with the dataset's class list"):
        build_dataset("cub", str(meta / "cub"), "test", num_classes=4)
    assert build_dataset("cub", str(meta / "cub"), "test", num_classes=3).num_classes == 3
    with pytest.raises(WsolError, match="positive integer"):
        build_dataset("cub", str(meta / "cub"), "test", num_classes="many")


def test_every_declared_option_reaches_its_builder(tmp_path):
    """Each key an adapter declares is a parameter its builder takes (none is dropped on the
    way), and the synthetic set's keys are its generator parameters."""
    import inspect

    from wsol.datasets.synthetic import DEFAULTS

    for info in list_datasets():
        params = inspect.signature(info.builder).parameters
        takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
        for key in info.options:
            assert key in params or takes_any, f"{info.name}: option {key} is not a builder parameter"
        if takes_any:
            assert info.name == "synthetic" and set(info.options) == set(DEFAULTS)


def test_synthetic_options_from_the_command_line_are_honoured(tmp_path, capsys):
    rc, err = _main(capsys, "check-data", "--dataset", "synthetic", "--root", str(tmp_path / "syn"),
                    "--dataset-option", "n_classes=2", "--dataset-option", "n_test_per_class=1",
                    "--dataset-option", "n_train_per_class=1", "--dataset-option", "image_size=64,48")
    assert rc == 0, err
    ds = build_dataset("synthetic", str(tmp_path / "syn"), "test")  # the cached parameters are kept
    assert len(ds) == 2 and ds.num_classes == 2
    from PIL import Image

    with Image.open(ds.samples[0].path) as im:
        assert abs(im.size[0] - 64) <= 16 and abs(im.size[1] - 48) <= 12


def test_head_kept_on_a_lower_bound_says_so(meta, tmp_path, caplog):
    import logging

    from wsol.engine.run import EvalConfig, evaluate

    cfg = EvalConfig(dataset="wsoleval", root=str(meta / "meta"), split="test", backbone="tiny_test_net",
                     weights="pretrained", dataset_options={"images": str(meta / "cub" / "images")},
                     progress=False)
    with caplog.at_level(logging.WARNING, logger="wsol.engine.heads"):
        evaluate(cfg)
    assert any("no class list" in r.getMessage() and "num_classes=N" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="wsol.engine.heads"):
        evaluate(EvalConfig(**{**cfg.__dict__, "dataset_options": {**cfg.dataset_options, "num_classes": 3}}))
    assert not caplog.records
