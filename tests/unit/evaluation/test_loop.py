"""The inference loop with built objects (docs/architecture.md, Flow): it runs without a
config, gives a backbone back as it came in, and leaves the global RNG alone."""
import numpy as np
import pandas as pd
import pytest
import torch

from cub_fixture import make_cub, tiny_eval_config

from wsol.engine.run import evaluate


@pytest.fixture(scope="module")
def cub(tmp_path_factory):
    root = tmp_path_factory.mktemp("loop") / "cub"
    make_cub(str(root), n_per_class=4)
    return root


def _cfg(cub, **kw):
    return tiny_eval_config(cub, **kw)


def test_backbone_passed_in_comes_back_as_it_went_in(cub):
    from wsol.models.registry import create_backbone

    torch.manual_seed(0)
    bb = create_backbone("tiny_test_net", "random", num_classes=3)
    bb.train()
    params = list(bb.parameters())
    params[0].requires_grad_(False)  # a mix of frozen and trainable parameters
    before = {k: v.clone() for k, v in bb.state_dict().items()}
    flags = [p.requires_grad for p in params]
    for kw in ({}, {"channels_last": True}, {"method": "gradcam"}):
        evaluate(_cfg(cub, **kw), backbone=bb)
        assert bb.training and all(m.training for m in bb.modules()), kw
        assert [p.requires_grad for p in bb.parameters()] == flags, kw
        assert all(t.is_contiguous() for t in list(bb.parameters()) + list(bb.buffers())), kw
        for k, v in bb.state_dict().items():
            assert torch.equal(v, before[k]), (kw, k)


def test_evaluate_leaves_the_global_rng_alone(cub):
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    a = evaluate(_cfg(cub))
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(99)  # a different global state does not change the seeded random init
    b = evaluate(_cfg(cub))
    pd.testing.assert_frame_equal(a.per_image, b.per_image)


def test_inference_on_dataset_with_built_objects_equals_evaluate(cub):
    """The loop called directly with objects built by hand scores what evaluate scores."""
    from wsol.cams.base import create_method
    from wsol.datasets.base import build_dataset
    from wsol.evaluation.box_evaluator import BoxEvaluator
    from wsol.evaluation.loop import Localizer, inference_context, inference_on_dataset
    from wsol.evaluation.runners import ModelRunner
    from wsol.evaluation.timing import StageTimer
    from wsol.localize.protocols import get_protocol
    from wsol.models.registry import create_backbone
    from wsol.transforms.image import ImageFolderView, test_transform

    ds = build_dataset("cub", str(cub), "test")
    torch.manual_seed(0)
    bb = create_backbone("tiny_test_net", "random", num_classes=3)
    protocol = get_protocol("wsoleval")
    taus = protocol.thresholds(0.01)
    view = ImageFolderView(ds.samples, test_transform(bb.mean, bb.std))

    def collate(batch):
        return (torch.stack([b[0] for b in batch]), torch.tensor([b[1] for b in batch]),
                [b[2] for b in batch], [b[3] for b in batch], [b[4] for b in batch])

    loader = torch.utils.data.DataLoader(view, batch_size=3, collate_fn=collate)
    boxes = BoxEvaluator(taus, 0.2, box_dtype=protocol.box_dtype)
    with inference_context(bb):
        stats = inference_on_dataset(ModelRunner(bb, create_method("cam")), loader, boxes, Localizer(protocol, taus),
                                     StageTimer("cpu"))
    assert stats.n_images == len(ds) and stats.n_nonfinite == 0
    ref = evaluate(_cfg(cub, batch_size=3))
    pd.testing.assert_frame_equal(boxes.per_image(), ref.boxes.per_image())  # box columns
    got, want = boxes.evaluate(), ref.boxes.evaluate()
    assert got == want and np.isfinite(got["maxboxacc_v2"])
