"""Speed options on CPU: they run (or are refused in one line), and the exact parts stay exact."""
import numpy as np
import pandas as pd
import pytest
import torch

from cub_fixture import make_cub
from wsol.cli import main
from wsol.evaluation import fastpath
from wsol.engine.run import EvalConfig, evaluate
from wsol.evaluation.fastpath import FastPath
from wsol.transforms.gpu_decode import JpegBytesView, collate_payloads, decode_resize_normalize
from wsol.errors import WsolError
from wsol.models.backbone import IMAGENET_MEAN, IMAGENET_STD
from wsol.transforms.image import ImageFolderView
from wsol.transforms.image import test_transform as pil_transform


@pytest.fixture(scope="module")
def cub(tmp_path_factory):
    root = tmp_path_factory.mktemp("fp")
    make_cub(str(root / "cub"), n_per_class=4)
    cfg = EvalConfig(root=str(root / "cub"), backbone="resnet18", weights="random", batch_size=4,
                     progress=False, save_cams=str(root / "cams_ref"))
    return root, cfg, evaluate(cfg)


def _maps(folder, ids):
    return np.stack([np.load(f"{folder}/{i}.npy") for i in ids])


def test_channels_last_matches_default_on_cpu(cub):
    root, cfg, ref = cub
    ids = list(ref.per_image.image_id)
    cl = evaluate(EvalConfig(**{**cfg.__dict__, "channels_last": True, "save_cams": str(root / "cl")}))
    # same function in another memory order: float rounding only
    np.testing.assert_allclose(_maps(root / "cl", ids), _maps(root / "cams_ref", ids), atol=1e-3)
    assert list(cl.per_image.pred_top1) == list(ref.per_image.pred_top1)


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_autocast_forward_and_cam_on_cpu(dtype):
    """--dtype runs forward and CAM under autocast; only float32 raw maps leave the device."""
    from wsol.cams.base import create_method
    from wsol.models.registry import create_backbone

    torch.manual_seed(0)
    bb = create_backbone("resnet18", "random", num_classes=5).eval()
    fp = FastPath(EvalConfig(dtype=dtype, channels_last=True), torch.device("cpu"))
    fp.prepare(bb)
    x = fp.to_device(torch.randn(2, 3, 64, 64))
    assert x.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), fp.autocast():
        feats, logits = fp.forward(x)
        cams = create_method("cam")(bb, x, feats, logits, torch.tensor([1, 3]))
    assert feats.dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    with torch.no_grad():
        f32, _ = bb(x)
    assert cams.shape == (2, 2, 2) and torch.isfinite(cams.float()).all()
    torch.testing.assert_close(feats.float(), f32, atol=0.1, rtol=0.05)


def test_gpu_decode_path_runs_through_evaluate_on_cpu(cub, monkeypatch):
    """The --decode gpu code (bytes view, list collate, batched decode_jpeg, antialiased
    resize) with decode_jpeg's CPU backend: close to PIL, same pipeline."""
    root, cfg, ref = cub
    monkeypatch.setattr(fastpath, "check_options", lambda *a: None)
    res = evaluate(EvalConfig(**{**cfg.__dict__, "decode": "gpu", "save_cams": str(root / "gd")}))
    ids = list(ref.per_image.image_id)
    assert list(res.per_image.image_id) == ids
    assert np.abs(_maps(root / "gd", ids) - _maps(root / "cams_ref", ids)).mean() < 0.02


def test_decode_matches_pil_within_one_level(cub):
    root, cfg, ref = cub
    from wsol.datasets.base import build_dataset

    ds = build_dataset("cub", cfg.root, "test")
    pil = ImageFolderView(ds.samples, pil_transform(IMAGENET_MEAN, IMAGENET_STD))
    want = torch.stack([pil[i][0] for i in range(len(ds))])
    view = JpegBytesView(ds.samples)
    payloads, labels, idx, sizes, errors = collate_payloads([view[i] for i in range(len(ds))])
    assert all(p.ndim == 1 for p in payloads) and not any(errors)
    assert sizes == [pil[i][3] for i in range(len(ds))]
    got = decode_resize_normalize(payloads, torch.device("cpu"), IMAGENET_MEAN, IMAGENET_STD)
    levels = (got - want).abs() * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255
    assert got.shape == want.shape and float(levels.max()) <= 1.001


def test_bytes_view_png_grayscale_and_missing(tmp_path):
    from PIL import Image

    from wsol.datasets.base import Sample

    Image.fromarray(np.full((30, 40, 3), 200, np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.full((30, 40), 90, np.uint8)).save(tmp_path / "g.jpg", quality=95)
    samples = [Sample(n, str(tmp_path / n), 0, [[0, 0, 1, 1]]) for n in ("a.png", "g.jpg", "missing.jpg")]
    items = [JpegBytesView(samples)[i] for i in range(3)]
    assert items[0][0].shape == (3, 30, 40) and items[0][3] == (40, 30)  # PNG decoded by PIL
    assert items[1][0].ndim == 1 and items[1][3] == (40, 30)            # grayscale JPEG: bytes
    assert items[2][0].numel() == 0 and "missing image" in items[2][4]
    out = decode_resize_normalize([it[0] for it in items], torch.device("cpu"), (0, 0, 0), (1, 1, 1), size=8)
    assert out.shape == (3, 3, 8, 8)
    assert torch.allclose(out[0], torch.full_like(out[0], 200 / 255))
    assert torch.allclose(out[1], torch.full_like(out[1], 90 / 255), atol=2 / 255)
    assert float(out[2].abs().max()) == 0.0


def test_refusals_are_one_line(tmp_path, capsys):
    with pytest.raises(WsolError, match="--decode gpu"):
        FastPath(EvalConfig(decode="gpu"), torch.device("cpu"))
    with pytest.raises(WsolError, match="--dtype"):
        FastPath(EvalConfig(dtype="fp8"), torch.device("cpu"))
    rc = main(["-q", "evaluate", "--root", str(tmp_path), "--backbone", "resnet18", "--weights", "random",
               "--decode", "gpu", "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("wsol: error: --decode gpu") and "\n" not in err


def test_defaults_are_the_reference_path():
    fp = FastPath(EvalConfig(), torch.device("cpu"))
    assert fp.is_default and fp.amp_dtype is None
    x = torch.randn(1, 3, 4, 4)
    assert fp.to_device(x).is_contiguous() and torch.equal(fp.to_device(x), x)


def test_compile_wrapper_is_cached_per_backbone():
    from wsol.models.registry import create_backbone

    bb = create_backbone("resnet18", "random", num_classes=3)
    a, b = FastPath(EvalConfig(compile=True), torch.device("cpu")), FastPath(EvalConfig(compile=True), torch.device("cpu"))
    a.prepare(bb)
    b.prepare(bb)
    assert a._forward is b._forward and a._forward is not bb  # one compiled wrapper, reused by repeats
