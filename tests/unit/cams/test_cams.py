"""CAM methods: each formula pinned against an independent NumPy/loop computation on tiny
nets with known weights, batch == one by one, baselines, and the error paths."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wsol.cams.base import create_method, list_methods
from wsol.errors import WsolError
from wsol.models.backbone import BackboneInfo, NetBackbone

GRAD_METHODS = ["gradcam", "gradcampp", "xgradcam", "layercam", "hirescam"]
MODEL_METHODS = ["cam"] + GRAD_METHODS + ["scorecam"]
BASELINES = ["center_gaussian", "center_box", "random"]
ALL_METHODS = MODEL_METHODS + BASELINES


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    """One intra-op thread for this module (see conftest.one_thread)."""


# --------------------------------------------------------------------------- tiny nets

def _tiny_net(K: int = 5, C: int = 4, seed: int = 0, square_head: bool = False) -> NetBackbone:
    """conv3x3/2 + ReLU -> A [B,K,h,w]; head GAP + linear, or linear(mean_hw(A^2)) when
    ``square_head`` (a head whose gradient varies over space: d y_c / d A = 2 W_ck A / hw)."""
    torch.manual_seed(seed)
    net = nn.Module()
    net.conv = nn.Conv2d(3, K, 3, stride=2, padding=1)
    net.fc = nn.Linear(K, C)
    logits_fn = (lambda n, f: n.fc((f * f).mean(dim=(2, 3)))) if square_head else None
    info = BackboneInfo("tiny_sq" if square_head else "tiny_gap", "test", "conv", 2, not square_head)
    return NetBackbone(net, info, lambda n, x: F.relu(n.conv(x)), "fc", logits_fn=logits_fn).eval()


def _run(method, bb, images, targets, **kw):
    """What the engine does: forward without autograd, then the method (under no_grad too;
    gradient methods differentiate the head themselves)."""
    with torch.no_grad():
        feats, logits = bb(images)
        return method(bb, images, feats, logits, targets, **kw)


def _inputs(B: int = 3, size: int = 16, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, 3, size, size, generator=g), torch.tensor([0, 2, 3, 1, 2][:B])


def _acts_and_grads(bb: NetBackbone, images, targets):
    """Activations (NumPy float64) and the analytic gradient d y_t / d A (not autograd)."""
    with torch.no_grad():
        A = bb.forward_features(images).double().numpy()
    W = bb.net.fc.weight.detach().double().numpy()
    B, K, h, w = A.shape
    G = np.zeros_like(A)
    for b in range(B):
        for k in range(K):
            wk = W[int(targets[b]), k]
            G[b, k] = 2 * wk * A[b, k] / (h * w) if not bb.info.cam_exact else wk / (h * w)
    return A, G


# ------------------------------------------------------------- reference formulas (loops)

def ref_gradcam(A, G):
    B, K = A.shape[:2]
    out = np.zeros((B,) + A.shape[2:])
    for b in range(B):
        for k in range(K):
            out[b] += G[b, k].mean() * A[b, k]
    return np.maximum(out, 0)


def ref_gradcampp(A, G, eps=1e-6):
    B, K, h, w = A.shape
    out = np.zeros((B, h, w))
    for b in range(B):
        for k in range(K):
            s = A[b, k].sum()
            wk = 0.0
            for i in range(h):
                for j in range(w):
                    g = G[b, k, i, j]
                    alpha = 0.0 if g == 0 else g ** 2 / (2 * g ** 2 + s * g ** 3 + eps)
                    wk += alpha * max(g, 0.0)
            out[b] += wk * A[b, k]
    return np.maximum(out, 0)


def ref_xgradcam(A, G, eps=1e-7):
    B, K, h, w = A.shape
    out = np.zeros((B, h, w))
    for b in range(B):
        for k in range(K):
            s = A[b, k].sum()
            wk = sum(A[b, k, i, j] / (s + eps) * G[b, k, i, j] for i in range(h) for j in range(w))
            out[b] += wk * A[b, k]
    return np.maximum(out, 0)


def ref_layercam(A, G):
    out = np.zeros((A.shape[0],) + A.shape[2:])
    for b in range(A.shape[0]):
        for k in range(A.shape[1]):
            out[b] += np.maximum(G[b, k], 0) * A[b, k]
    return np.maximum(out, 0)


def ref_hirescam(A, G):
    out = np.zeros((A.shape[0],) + A.shape[2:])
    for b in range(A.shape[0]):
        for k in range(A.shape[1]):
            out[b] += G[b, k] * A[b, k]
    return np.maximum(out, 0)


REFS = {"gradcam": ref_gradcam, "gradcampp": ref_gradcampp, "xgradcam": ref_xgradcam,
        "layercam": ref_layercam, "hirescam": ref_hirescam}


def _minmax(m: np.ndarray) -> np.ndarray:
    m = m.reshape(m.shape[0], -1)
    lo, hi = m.min(1, keepdims=True), m.max(1, keepdims=True)
    assert (hi > lo).all(), "degenerate map: the test would prove nothing"
    return (m - lo) / (hi - lo)


def _close(got: torch.Tensor, ref: np.ndarray, rtol: float = 1e-4) -> None:
    got = got.detach().double().numpy()
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * max(np.abs(ref).max(), 1e-12))


# ----------------------------------------------------------------------------- registry

def test_registry_lists_every_method_with_one_line_description():
    infos = {m.name: m for m in list_methods()}
    assert set(ALL_METHODS) <= set(infos)
    for name in ALL_METHODS:
        d = infos[name].description
        assert d and "\n" not in d and len(d) < 140, name
        assert infos[name].needs_grad == (name in GRAD_METHODS), name
    for name in BASELINES:  # their maps ignore the model outputs entirely
        m = create_method(name)
        x = torch.zeros(2, 3, 64, 48)
        assert m(None, x, None, None, None).shape[0] == 2, name


# ------------------------------------------------------------------- CAM and the family

def test_cam_is_explicit_fc_weighted_sum():
    bb = _tiny_net()
    x, t = _inputs()
    got = _run(create_method("cam"), bb, x, t)
    with torch.no_grad():
        f = bb.forward_features(x)
    W = bb.net.fc.weight.detach()
    for b in range(x.shape[0]):
        ref = torch.zeros(f.shape[2:])
        for k in range(f.shape[1]):
            ref += W[t[b], k] * f[b, k]
        torch.testing.assert_close(got[b], ref, rtol=1e-5, atol=1e-6)


def test_relu_cam_equals_gradcam_and_hirescam_on_gap_linear():
    bb = _tiny_net()
    x, t = _inputs()
    cam = _run(create_method("cam"), bb, x, t).numpy()
    assert (cam > 0).any() and (cam < 0).any(), "want a CAM with both signs, so ReLU matters"
    ref = _minmax(np.maximum(cam, 0))
    for name in ("gradcam", "hirescam", "xgradcam"):
        got = _run(create_method(name), bb, x, t).numpy()
        np.testing.assert_allclose(_minmax(got), ref, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("square_head", [False, True], ids=["gap_linear", "square_head"])
@pytest.mark.parametrize("name", GRAD_METHODS)
def test_gradient_methods_match_paper_formulas(name, square_head):
    bb = _tiny_net(square_head=square_head)
    x, t = _inputs()
    A, G = _acts_and_grads(bb, x, t)
    assert (G > 0).any() and (G < 0).any() and (G == 0).any() == square_head
    got = _run(create_method(name), bb, x, t)
    _close(got, REFS[name](A, G))


def test_gradient_methods_relu_false_keeps_sign():
    bb = _tiny_net(square_head=True)
    x, t = _inputs()
    A, G = _acts_and_grads(bb, x, t)
    ref = np.einsum("bkhw->bhw", G * A)  # HiResCAM without the ReLU
    assert (ref < 0).any()
    _close(_run(create_method("hirescam", relu=False), bb, x, t), ref)


def test_gradient_methods_leave_parameter_grads_alone():
    bb = _tiny_net(square_head=True)
    x, t = _inputs()
    for name in GRAD_METHODS:
        _run(create_method(name), bb, x, t)
    assert all(p.grad is None for p in bb.parameters())


@pytest.mark.parametrize("name", GRAD_METHODS)
def test_gradient_method_from_a_no_grad_forward_equals_full_autograd(name):
    """The engine's path (trunk under no_grad, parameters frozen, head re-run on a leaf copy)
    gives the same map as differentiating the whole network with autograd on."""
    from wsol.cams.gradcam import target_gradients

    bb = _tiny_net(square_head=True)
    x, t = _inputs()
    for p in bb.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        feats, logits = bb(x)
        fast = create_method(name)(bb, x, feats, logits, t)
    assert feats.grad_fn is None and not feats.requires_grad
    for p in bb.parameters():
        p.requires_grad_(True)
    with torch.enable_grad():
        f_full, l_full = bb(x)
        g_full = target_gradients(f_full, l_full, t)
    method = create_method(name)
    ref = torch.relu(method.combine(f_full.detach(), g_full))
    torch.testing.assert_close(fast, ref, rtol=1e-6, atol=1e-7)
    assert all(p.grad is None for p in bb.parameters())


def test_target_gradients_without_graph_is_a_clear_error():
    from wsol.cams.gradcam import target_gradients

    bb = _tiny_net()
    x, t = _inputs()
    with torch.no_grad():
        feats, logits = bb(x)
    with pytest.raises(WsolError, match="autograd") as e:
        target_gradients(feats, logits, t)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name", MODEL_METHODS)
def test_targets_outside_head_are_rejected(name):
    bb = _tiny_net()
    x, _ = _inputs()
    with pytest.raises(WsolError, match="outside the classifier head"):
        _run(create_method(name), bb, x, torch.tensor([0, 4, 1]))
    with pytest.raises(WsolError, match="outside the classifier head"):
        _run(create_method(name), bb, x, torch.tensor([0, -1, 1]))


def test_cam_refuses_non_exact_head():
    bb = _tiny_net(square_head=True)
    x, t = _inputs()
    with pytest.raises(WsolError, match="gradcam"):
        _run(create_method("cam"), bb, x, t)


# ---------------------------------------------------------------------------- Score-CAM

def _scorecam_net(pool: int, K: int = 5, C: int = 4):
    """avgpool(pool) -> conv1x1 -> ReLU; GAP + linear. Known weights (NumPy); channel 0 is
    constant 0, channel 1 constant 0.5 (both must get weight 0)."""
    rng = np.random.default_rng(7)
    Wc, bc = rng.normal(size=(K, 3)), rng.normal(size=K) * 0.2
    Wc[0], bc[0] = 0.0, -1.0
    Wc[1], bc[1] = 0.0, 0.5
    Wf, bf = rng.normal(size=(C, K)) * 2.0, rng.normal(size=C)
    net = nn.Module()
    net.pool = nn.AvgPool2d(pool)
    net.conv = nn.Conv2d(3, K, 1)
    net.fc = nn.Linear(K, C)
    with torch.no_grad():
        net.conv.weight.copy_(torch.tensor(Wc).view(K, 3, 1, 1))
        net.conv.bias.copy_(torch.tensor(bc))
        net.fc.weight.copy_(torch.tensor(Wf))
        net.fc.bias.copy_(torch.tensor(bf))
    bb = NetBackbone(net, BackboneInfo("tiny_pool", "test", "conv", pool, True),
                     lambda n, x: F.relu(n.conv(n.pool(x))), "fc").eval()
    return bb, (Wc, bc, Wf, bf)


def _np_forward(x, pool, Wc, bc, Wf, bf):
    """The tiny net in NumPy: x [3,H,W] -> (A [K,h,w], logits [C])."""
    H, W = x.shape[1:]
    h, w = H // pool, W // pool
    p = np.zeros((3, h, w))
    for c in range(3):
        for i in range(h):
            for j in range(w):
                p[c, i, j] = x[c, i * pool:(i + 1) * pool, j * pool:(j + 1) * pool].mean()
    A = np.maximum(np.einsum("kc,chw->khw", Wc, p) + bc[:, None, None], 0)
    return A, Wf @ A.mean(axis=(1, 2)) + bf


def _np_bilinear(a, H, W):
    """Bilinear resize, half-pixel centres (align_corners=False), edges clamped."""
    h, w = a.shape
    out = np.zeros((H, W))
    for y in range(H):
        sy = max((y + 0.5) * h / H - 0.5, 0.0)
        y0 = int(math.floor(sy)); y1 = min(y0 + 1, h - 1); ly = sy - y0
        for x in range(W):
            sx = max((x + 0.5) * w / W - 0.5, 0.0)
            x0 = int(math.floor(sx)); x1 = min(x0 + 1, w - 1); lx = sx - x0
            out[y, x] = ((1 - ly) * ((1 - lx) * a[y0, x0] + lx * a[y0, x1])
                         + ly * ((1 - lx) * a[y1, x0] + lx * a[y1, x1]))
    return out


def ref_scorecam(images, targets, pool, params):
    out = []
    for b in range(images.shape[0]):
        x = images[b]
        A, _ = _np_forward(x, pool, *params)
        cam = np.zeros(A.shape[1:])
        for k in range(A.shape[0]):
            if A[k].max() == A[k].min():
                continue  # no mask: weight 0
            up = _np_bilinear(A[k], *x.shape[1:])
            mask = (up - up.min()) / (up.max() - up.min())
            _, z = _np_forward(x * mask, pool, *params)
            prob = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
            cam += prob[int(targets[b])] * A[k]
        out.append(np.maximum(cam, 0))
    return np.stack(out)


@pytest.mark.parametrize("pool,size", [(2, 8), (3, 12)])
def test_scorecam_matches_paper_formula(pool, size):
    bb, params = _scorecam_net(pool)
    x, t = _inputs(B=3, size=size)
    got = _run(create_method("scorecam", method_batch=4), bb, x, t)
    _close(got, ref_scorecam(x.double().numpy(), t, pool, params))


def test_scorecam_method_batch_does_not_change_maps_and_mode_is_restored():
    bb, _ = _scorecam_net(2)
    x, t = _inputs(B=3, size=8)
    ref = _run(create_method("scorecam", method_batch=64), bb, x, t)
    bb.train()
    got = _run(create_method("scorecam", method_batch=1), bb, x, t)
    assert bb.training
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(WsolError, match="method_batch"):
        create_method("scorecam", method_batch=0)


# ------------------------------------------------------------------ batch == one by one

@pytest.mark.parametrize("name", ALL_METHODS)
def test_batch_equals_one_by_one(name):
    bb = _tiny_net()
    x, t = _inputs(B=3)
    batched = _run(create_method(name), bb, x, t)
    single_method = create_method(name)  # one instance, as a run over the images would use
    singles = torch.cat([_run(single_method, bb, x[i:i + 1], t[i:i + 1]) for i in range(3)])
    assert batched.dim() == 3 and batched.shape[0] == 3
    torch.testing.assert_close(batched, singles, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- baselines

def test_center_gaussian_peak_symmetry_and_sigma():
    x = torch.zeros(2, 3, 224, 224)
    g = create_method("center_gaussian")(None, x, None, None, None)
    assert g.shape == (2, 224, 224)
    assert torch.equal(g, g.flip(-1)) and torch.equal(g, g.flip(-2)) and torch.equal(g, g.transpose(-1, -2))
    assert g[0, 111, 111] == g.max() and g[0, 112, 112] == g.max()
    s = 0.25 * 224
    # pixel centre 111 is 0.5 from the centre 111.5
    assert math.isclose(float(g[0, 111, 111]), math.exp(-0.5 / (2 * s * s)), rel_tol=1e-6)
    assert math.isclose(float(g[0, 111, 111 + 56]), math.exp(-(0.25 + 55.5 ** 2) / (2 * s * s)), rel_tol=1e-5)
    odd = create_method("center_gaussian", sigma=0.5)(None, torch.zeros(1, 3, 9, 7), None, None, None)
    assert odd.shape == (1, 9, 7) and odd[0, 4, 3] == 1.0 and odd.argmax() == 4 * 7 + 3
    assert math.isclose(float(odd[0, 4, 0]), math.exp(-9 / (2 * 3.5 ** 2)), rel_tol=1e-6)  # sigma = 0.5 * 7


@pytest.mark.parametrize("fraction,side", [(0.5, 158), (0.25, 112), (1.0, 224)])
def test_center_box_covers_documented_fraction(fraction, side):
    b = create_method("center_box", fraction=fraction)(None, torch.zeros(2, 3, 224, 224), None, None, None)
    assert b.shape == (2, 224, 224) and set(b.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(b, b.flip(-1)) and torch.equal(b, b.flip(-2))
    rows = b[0].any(dim=1).nonzero().flatten()
    assert len(rows) == side and int(rows[0]) == (224 - side) // 2
    assert int(b[0].sum()) == side * side
    assert abs(float(b[0].mean()) - fraction) < 2 / 224


def test_random_is_seeded_per_image_and_differs_across_images():
    x = torch.zeros(3, 3, 224, 224)
    a = create_method("random", seed=3)(None, x, None, None, None)
    b = create_method("random", seed=3)(None, x, None, None, None)
    c = create_method("random", seed=4)(None, x, None, None, None)
    assert a.shape == (3, 7, 7) and float(a.min()) >= 0 and float(a.max()) < 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a[0], a[1]) and not torch.equal(a[1], a[2])
    m = create_method("random", seed=3)
    first = m(None, x[:2], None, None, None)
    nxt = m(None, x[:1], None, None, None)   # image index 2
    assert torch.equal(torch.cat([first, nxt]), a)
    m.reset()
    assert torch.equal(m(None, x[:1], None, None, None), a[:1])
    assert torch.equal(m(None, x[:1], None, None, None, indices=torch.tensor([2])), a[2:])
    assert create_method("random", cell=1)(None, torch.zeros(1, 3, 10, 12), None, None, None).shape == (1, 10, 12)


def test_gradient_methods_combine_in_float32_for_bfloat16_nets():
    x, t = _inputs()
    bb32 = _tiny_net(square_head=True)
    bb16 = _tiny_net(square_head=True).to(torch.bfloat16)
    for name in GRAD_METHODS:
        ref = _run(create_method(name), bb32, x, t)
        got = _run(create_method(name), bb16, x.to(torch.bfloat16), t)
        assert got.dtype == torch.float32, name
        assert float((got - ref).abs().max() / ref.abs().max()) < 3e-2, name
