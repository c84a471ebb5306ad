"""Protocol objects (docs/protocol.md): τ grid, ground-truth scaling, localization and box
dtype per protocol, with hand-computed cases; and no code branches on a protocol's name."""
import ast
import os

import numpy as np
import pytest

from wsol.errors import UnknownNameError
from wsol.localize.boxes import MODES
from wsol.localize.protocols import PROTOCOLS, Cam2016Protocol, WsolEvalProtocol, get_protocol

from shared_data import REPO  # noqa: E402


def test_registry_and_unknown_name():
    assert {"cam2016", "cam2016_code", "wsoleval", "tscam", "scm", "sat"} <= set(PROTOCOLS.names())
    assert not PROTOCOLS.failures()
    assert isinstance(get_protocol("wsoleval"), WsolEvalProtocol)
    with pytest.raises(UnknownNameError, match="unknown protocol 'cam2017'; did you mean: cam2016"):
        get_protocol("cam2017")


def test_wsoleval_grid_scaling_and_dtype():
    p = get_protocol("wsoleval")
    taus = p.thresholds(0.01)
    assert len(taus) == 100 and taus[0] == 0 and taus[-1] == np.arange(0, 1, 0.01)[-1]
    # int(60*224/500)=26, int(27*224/400)=15, int(385*224/500)=172, int(331*224/400)=185
    assert p.gt_boxes(np.array([[60, 27, 385, 331]], float), (500, 400)).tolist() == [[26, 15, 172, 185]]
    assert p.box_dtype is np.uint8 and p.scores_heatmaps


def test_cam2016_grid_scaling_and_dtype():
    p = get_protocol("cam2016")
    assert p.thresholds(0.01).tolist() == [0.2] and p.thresholds(0.001).tolist() == [0.2]
    gt = np.array([[60.5, 27, 385, 331]])
    assert p.gt_boxes(gt, (500, 400)) is gt or np.array_equal(p.gt_boxes(gt, (500, 400)), gt)
    assert p.box_dtype is np.int32 and not p.scores_heatmaps


def test_cam2016_localize_by_hand():
    """A raw map already at the image size (the resize is then a copy): a 3x5 blob of 1s
    and a lone 0.5 pixel; foreground = m > 0.2 * max. Largest component by pixel count:
    columns 3..7, rows 2..4 -> inclusive box [3, 2, 7, 4]; the lone pixel is its own box."""
    cam = np.zeros((10, 12), np.float32)
    cam[2:5, 3:8] = 1.0
    cam[8, 10] = 0.5
    p = Cam2016Protocol()
    gt = p.gt_boxes(np.array([[3, 2, 7, 4], [10, 8, 10, 8]], float), (12, 10))
    (loc,), maps = p.localize(cam[None], [gt], [(12, 10)], p.thresholds(0.01), "fast")
    assert maps is None and loc.iou.shape == (len(MODES), 1)
    assert loc.boxes[MODES.index("largest"), 0].tolist() == [3, 2, 7, 4]
    assert loc.iou[MODES.index("largest"), 0] == 1.0 and loc.iou[MODES.index("all"), 0] == 1.0
    # against the lone pixel only: the largest box misses it, 'all' has it exactly
    (loc,), _ = p.localize(cam[None], [np.array([[10, 8, 10, 8]])], [(12, 10)], p.thresholds(0.01), "fast")
    assert loc.iou[MODES.index("largest"), 0] == 0.0 and loc.iou[MODES.index("all"), 0] == 1.0
    assert loc.boxes[MODES.index("all"), 0].tolist() == [10, 8, 10, 8]


def test_wsoleval_localize_matches_the_map_path():
    """wsoleval's batch localization = post-process then the sweep, and keep_maps returns
    the normalized 224 maps (what --save-cams writes)."""
    from wsol.localize.image import localize_map
    from wsol.localize.maps import postprocess

    rng = np.random.default_rng(0)
    cams = rng.random((2, 7, 7)).astype(np.float32)
    p = WsolEvalProtocol()
    gts = [p.gt_boxes(np.array([[10, 20, 300, 200]], float), (320, 240))] * 2
    taus = p.thresholds(0.05)
    locs, maps = p.localize(cams, gts, [(320, 240)] * 2, taus, "reference", keep_maps=True)
    assert maps.shape == (2, 224, 224)
    for c, g, loc in zip(cams, gts, locs):
        ref = localize_map(postprocess(c), g, taus, "reference")
        np.testing.assert_array_equal(loc.iou, ref.iou)
        np.testing.assert_array_equal(loc.boxes, ref.boxes)


def _name_comparisons(path: str):
    names = set(PROTOCOLS.names())
    tree = ast.parse(open(path, encoding="utf-8").read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                if isinstance(operand, ast.Constant) and operand.value in names:
                    yield node.lineno
                if isinstance(operand, (ast.Tuple, ast.List, ast.Set)):
                    if any(isinstance(e, ast.Constant) and e.value in names for e in operand.elts):
                        yield node.lineno


def test_no_branches_on_protocol_names_outside_the_protocols():
    own = {os.path.join(REPO, "wsol", "localize", f) for f in ("protocols.py", "cam2016.py", "cam2016_code.py")}
    bad = []
    for d, _, files in os.walk(os.path.join(REPO, "wsol")):
        for f in files:
            path = os.path.join(d, f)
            if f.endswith(".py") and path not in own:
                bad += [f"{os.path.relpath(path, REPO)}:{n}" for n in _name_comparisons(path)]
    assert not bad, "protocol names compared in: " + ", ".join(bad)
