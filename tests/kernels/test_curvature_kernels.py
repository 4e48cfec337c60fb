"""The curvature kernels against explicit float64 definitions, and Numba against the NumPy reference."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kernels
from kernels import curvature as kc
from tests._helpers import hyperboloid_exp0 as hyperboloid_point

SETTINGS = settings(max_examples=25, deadline=None)


def ball(rng, shape, c, radius=0.9):
    """Random points strictly inside the ball of curvature −c (norm ≤ radius/√c)."""
    x = rng.standard_normal(shape)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    r = radius * rng.random(shape[:-1] + (1,)) ** (1 / max(shape[-1], 1))
    return np.where(n > 0, x / np.where(n > 0, n, 1) * r / math.sqrt(c), 0.0)


def definition_logit(qe, ke, qh, kh, qs, ks, c_h, c_s, w, s_e, t):
    """One fused logit, written out with math (float64)."""
    dot = sum(float(a) * float(b) for a, b in zip(qe, ke))
    nq = sum(float(a) ** 2 for a in qh)
    nk = sum(float(a) ** 2 for a in kh)
    diff = sum((float(a) - float(b)) ** 2 for a, b in zip(qh, kh))
    d_h = math.acosh(1 + 2 * c_h * diff / ((1 - c_h * nq) * (1 - c_h * nk))) / math.sqrt(c_h) if len(qh) else 0.0
    if len(qs):
        a = np.array(qs, float) / np.linalg.norm(qs)
        b = np.array(ks, float) / np.linalg.norm(ks)
        d_s = math.acos(max(-1.0, min(1.0, float(a @ b)))) / math.sqrt(c_s)
    else:
        d_s = 0.0
    return (w[0] * s_e * dot - w[1] * d_h - w[2] * d_s) / t


@pytest.mark.parametrize("dims", [(3, 2, 4), (0, 3, 0), (4, 0, 0), (0, 0, 3), (2, 5, 1)])
def test_fused_logits_match_definition(dims, backend):
    rng = np.random.default_rng(sum(dims))
    e, h, s = dims
    c_h, c_s, w, s_e, t = 0.7, 2.5, (0.5, 0.3, 0.2), 0.4, 1.3
    B, lq, lk = 2, 5, 4
    qe, ke = rng.standard_normal((B, lq, e)), rng.standard_normal((B, lk, e))
    qh, kh = ball(rng, (B, lq, h), c_h), ball(rng, (B, lk, h), c_h)
    qs, ks = rng.standard_normal((B, lq, s)), rng.standard_normal((B, lk, s))
    out = kc.fused_logits(qe, ke, qh, kh, qs, ks, c_h=c_h, c_s=c_s, weights=w, scale_e=s_e, temperature=t,
                          backend=backend)
    assert out.shape == (B, lq, lk) and out.dtype == np.float64
    for b in range(B):
        for i in range(lq):
            for j in range(lk):
                ref = definition_logit(qe[b, i], ke[b, j], qh[b, i], kh[b, j], qs[b, i], ks[b, j], c_h, c_s, w, s_e, t)
                assert out[b, i, j] == pytest.approx(ref, abs=1e-9)


def test_fused_logits_distances_vanish_on_equal_points(backend):
    rng = np.random.default_rng(1)
    x = ball(rng, (1, 6, 4), 1.0)
    s = rng.standard_normal((1, 6, 3))
    empty = x[..., :0]
    out = kc.fused_logits(empty, empty, x, x, s, s, weights=(0, 1, 1), backend=backend)
    np.testing.assert_allclose(np.diagonal(out, axis1=1, axis2=2), 0.0, atol=1e-7)
    assert (out <= 1e-7).all()
    # antipodal spherical points are at distance π/√c_s
    one = empty[:, :1]
    anti = kc.fused_logits(one, one, one, one, s[:, :1], -s[:, :1], c_s=4.0, weights=(0, 0, 1), backend=backend)
    assert anti[0, 0, 0] == pytest.approx(-math.pi / 2, abs=1e-6)


cases = st.fixed_dictionaries({
    "seed": st.integers(0, 2**31 - 1),
    "B": st.integers(1, 3), "lq": st.integers(1, 70), "lk": st.integers(1, 70),
    "e": st.integers(0, 9), "h": st.integers(0, 6), "s": st.integers(0, 5),
    "dtype": st.sampled_from([np.float32, np.float64]),
    "c_h": st.sampled_from([0.1, 1.0, 3.0]), "c_s": st.sampled_from([0.5, 1.0, 2.0]),
    "weights": st.sampled_from([(1.0, 1.0, 1.0), (0.5, 0.35, 0.15), (1.0, 0.0, 0.0), (0.0, 2.0, 0.5)]),
    "adversarial": st.booleans(),
})


def fused_inputs(case):
    """``rng`` and the six float64 inputs of a drawn case; adversarial cases: large Euclidean logits,
    H points on the projection margin and repeated (zero distance), zero and antipodal S vectors."""
    rng = np.random.default_rng(case["seed"])
    B, lq, lk, c_h = case["B"], case["lq"], case["lk"], case["c_h"]
    amp = 30.0 if case["adversarial"] else 1.0
    qe, ke = amp * rng.standard_normal((B, lq, case["e"])), amp * rng.standard_normal((B, lk, case["e"]))
    radius = 1 - (1e-5 if case["dtype"] == np.float32 else 1e-12) if case["adversarial"] else 0.9
    qh, kh = ball(rng, (B, lq, case["h"]), c_h, radius), ball(rng, (B, lk, case["h"]), c_h, radius)
    qs, ks = rng.standard_normal((B, lq, case["s"])), rng.standard_normal((B, lk, case["s"]))
    if case["adversarial"]:
        n = min(lq, lk)
        kh[:, :n] = qh[:, :n]
        ks[:, :n] = -qs[:, :n]
        qs[:, ::3] = 0.0
    return rng, (qe, ke, qh, kh, qs, ks)


@SETTINGS
@given(case=cases)
def test_fused_logits_numba_equals_numpy(case):
    """Random and adversarial inputs: large Euclidean logits, H points on the projection margin,
    repeated (zero-distance) points, zero and antipodal spherical vectors."""
    dt = case["dtype"]
    _, (qe, ke, qh, kh, qs, ks) = fused_inputs(case)
    args = [a.astype(dt) for a in (qe, ke, qh, kh, qs, ks)]
    kw = dict(c_h=case["c_h"], c_s=case["c_s"], weights=case["weights"], scale_e=0.5, temperature=0.8)
    ref = kc.fused_logits(*args, backend="numpy", **kw)
    fast = kc.fused_logits(*args, backend="numba", **kw)
    assert fast.dtype == ref.dtype == dt and np.isfinite(fast).all()
    eps = float(np.finfo(dt).eps)
    # rounding of the dot products (sum of |q||k|) and of the distances (relative, plus the
    # conditioning of arcosh near the margin: d ~ ln(1/margin), error ~ eps/margin relative to 1)
    bound = 0.5 * np.einsum("bie,bje->bij", np.abs(args[0]).astype(float), np.abs(args[1]).astype(float))
    dist_slack = 16 * eps * 30.0 * (1e3 if case["adversarial"] else 1.0)
    tol = 8 * eps * (bound + np.abs(ref).astype(float)) + dist_slack + (1e-5 if dt == np.float32 else 1e-12)
    assert (np.abs(fast.astype(float) - ref.astype(float)) <= tol).all()


def test_fused_slices_must_agree_on_rows():
    """A slice with other rows is refused by name (the reference would broadcast it silently)."""
    x, y = np.zeros((1, 6, 2)), np.zeros((1, 1, 3))
    with pytest.raises(ValueError, match="qs has shape"):
        kc.fused_logits(x, x, x, x, y, x, backend="numpy")
    with pytest.raises(ValueError, match="kh has shape"):
        kc.fused_attention(x, x, x, y, x, x, x, backend="numpy")


def test_fused_logits_cupy_backend_is_refused():
    x = np.zeros((1, 2, 2))
    with pytest.raises(kernels.BackendError):
        kc.fused_logits(x, x, x, x, x, x, backend="cupy")


# --- hyperboloid distances ------------------------------------------------------------------------

def lorentz_dist(x, y, c):
    inner = -x[0] * y[0] + float(np.dot(x[1:], y[1:]))
    return math.acosh(max(1.0, -c * inner)) / math.sqrt(c)


@pytest.mark.parametrize("c", [0.1, 1.0, 2.0])
def test_lorentz_distance_matches_hyperboloid_definition(c, backend):
    rng = np.random.default_rng(7)
    u, w = rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 6, 4))
    w[0, 0] = 0.0  # the origin
    out = kc.lorentz_distance(u, w, c=c, backend=backend)
    for b in range(2):
        for i in range(5):
            for j in range(6):
                ref = lorentz_dist(hyperboloid_point(u[b, i], c), hyperboloid_point(w[b, j], c), c)
                assert out[b, i, j] == pytest.approx(ref, rel=1e-8, abs=1e-8)
    # distance to the origin is the tangent norm
    np.testing.assert_allclose(out[0, :, 0], np.linalg.norm(u[0], axis=-1), rtol=1e-12)


@pytest.mark.parametrize("scale", [1.0, 100.0, 1e4])
def test_lorentz_distance_far_points_numba_equals_numpy(scale):
    """Far points (cosh would overflow): finite, symmetric, equal across backends, d(u,u) = 0."""
    rng = np.random.default_rng(3)
    u = scale * rng.standard_normal((2, 9, 5))
    ref = kc.lorentz_distance(u, u, c=0.5, backend="numpy")
    fast = kc.lorentz_distance(u, u, c=0.5, backend="numba")
    assert np.isfinite(ref).all()
    np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(ref, np.swapaxes(ref, 1, 2), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(np.diagonal(ref, axis1=1, axis2=2), 0.0, atol=1e-6 * scale)
    # triangle inequality on a few triples
    for i, j, k in [(0, 1, 2), (3, 4, 5), (6, 7, 8)]:
        assert ref[0, i, k] <= ref[0, i, j] + ref[0, j, k] + 1e-9 * scale


def test_busemann_matches_definition():
    rng = np.random.default_rng(5)
    u = rng.standard_normal((4, 3))
    for c in (0.3, 1.0, 2.0):
        out = kc.busemann(u, c=c)
        for i in range(4):
            x = hyperboloid_point(u[i], c)
            assert out[i] == pytest.approx(math.log(x[0] - x[1]), abs=1e-12)
    # far points stay finite (log domain)
    assert np.isfinite(kc.busemann(1e4 * u, c=1.0)).all()


# --- fused attention (tiled, online softmax) ------------------------------------------------------

def definition_attention(qe, ke, qh, kh, qs, ks, v, c_h, c_s, w, s_e, t, allowed):
    """``softmax(ℓ) v`` over the allowed keys of one sequence, written out with math (float64)."""
    out = np.zeros((len(qe), v.shape[-1]))
    for i in range(len(qe)):
        idx = [j for j in range(len(ke)) if allowed[i, j]]
        if not idx:
            continue
        lg = [definition_logit(qe[i], ke[j], qh[i], kh[j], qs[i], ks[j], c_h, c_s, w, s_e, t) for j in idx]
        m = max(lg)
        p = [math.exp(x - m) for x in lg]
        for pj, j in zip(p, idx):
            out[i] += pj / sum(p) * v[j].astype(float)
    return out


@pytest.mark.parametrize("dims", [(3, 2, 4), (0, 3, 0), (0, 0, 3), (2, 5, 1)])
def test_fused_attention_matches_definition(dims, backend):
    """Several key tiles (block_k 3), per-item weights (heads as items), a per-sequence mask shared by
    the heads of a sequence (mask_group 2) with an empty row."""
    rng = np.random.default_rng(11 + sum(dims))
    e, h, s = dims
    c_h, c_s, s_e, t = 0.7, 2.5, 0.4, 1.3
    B, lq, lk, dv = 4, 6, 8, 3
    qe, ke = rng.standard_normal((B, lq, e)), rng.standard_normal((B, lk, e))
    qh, kh = ball(rng, (B, lq, h), c_h), ball(rng, (B, lk, h), c_h)
    qs, ks = rng.standard_normal((B, lq, s)), rng.standard_normal((B, lk, s))
    v = rng.standard_normal((B, lk, dv))
    w = rng.random((B, 3)) * 2
    mask = rng.random((2, lq, lk)) < 0.7
    mask[1, 2] = False
    out = kc.fused_attention(qe, ke, qh, kh, qs, ks, v, c_h=c_h, c_s=c_s, weights=w, scale_e=s_e, temperature=t,
                             mask=mask, mask_group=2, backend=backend, block_q=4, block_k=3)
    assert out.shape == (B, lq, dv) and out.dtype == np.float64
    for b in range(B):
        ref = definition_attention(qe[b], ke[b], qh[b], kh[b], qs[b], ks[b], v[b], c_h, c_s, w[b], s_e, t,
                                   mask[b // 2])
        np.testing.assert_allclose(out[b], ref, rtol=0, atol=1e-10)
    assert (out[2:, 2] == 0).all()


attention_cases = st.fixed_dictionaries({
    "seed": st.integers(0, 2**31 - 1),
    "B": st.integers(1, 3), "lq": st.integers(1, 40), "lk": st.integers(1, 70),
    "e": st.integers(0, 9), "h": st.integers(0, 6), "s": st.integers(0, 5),
    "dv": st.integers(1, 5), "block_k": st.sampled_from([1, 7, 64, 256]),
    "dtype": st.sampled_from([np.float32, np.float64]),
    "c_h": st.sampled_from([0.1, 1.0, 3.0]), "c_s": st.sampled_from([0.5, 1.0, 2.0]),
    "mask": st.sampled_from(["none", "shared", "rows"]),
    "adversarial": st.booleans(),
})


@SETTINGS
@given(case=attention_cases)
def test_fused_attention_numba_equals_numpy(case):
    """Random and adversarial inputs (large Euclidean logits, H points on the projection margin and
    repeated, zero and antipodal spherical vectors, masked rows); key tiles that do not divide Lk."""
    dt, B, lq, lk, c_h = case["dtype"], case["B"], case["lq"], case["lk"], case["c_h"]
    rng, (qe, ke, qh, kh, qs, ks) = fused_inputs(case)
    v = rng.standard_normal((B, lk, case["dv"]))
    mask = None
    if case["mask"] != "none":
        mask = rng.random((B if case["mask"] == "rows" else 1, lq, lk)) < 0.6
        if case["mask"] == "rows":
            mask[:, ::3] = False
    args = [a.astype(dt) for a in (qe, ke, qh, kh, qs, ks, v)]
    w = rng.random((B, 3))
    kw = dict(c_h=c_h, c_s=case["c_s"], weights=w, scale_e=0.5, temperature=0.8, mask=mask)
    ref = kc.fused_attention(*args, backend="numpy", **kw)
    fast = kc.fused_attention(*args, backend="numba", block_k=case["block_k"], **kw)
    assert fast.dtype == ref.dtype == dt and np.isfinite(fast).all()
    if mask is not None:
        empty = ~np.broadcast_to(mask, (B, lq, lk)).any(-1)
        assert (fast[empty] == 0).all()
    # a weight moves by about twice the logit error: the logits' rounding (as in the fused-logits
    # test) times the value magnitude, plus the float32 softmax's own rounding
    eps = float(np.finfo(dt).eps)
    bound = 0.5 * np.einsum("bie,bje->bij", np.abs(args[0]).astype(float), np.abs(args[1]).astype(float))
    dist_slack = 16 * eps * 30.0 * (1e3 if case["adversarial"] else 1.0)
    logit_err = (8 * eps * bound + dist_slack).max(initial=0.0)
    tol = (2 * logit_err + (2e-5 if dt == np.float32 else 1e-12)) * max(1.0, float(np.abs(v).max()))
    np.testing.assert_allclose(fast, ref, rtol=0, atol=tol)


def test_fused_attention_near_points_keep_their_accuracy():
    """Keys that are near copies of the query, next to the boundary (H) or in almost the same direction
    (S), at a temperature that resolves their tiny distances: the kernel's Gram expansion must fall
    back to differences (float64; without the fallback the cancellation error, ~1e-16 in ‖q − k‖²,
    is magnified by 1/(1 − c‖q‖²)² ~ 1e18 here and moves every weight)."""
    rng = np.random.default_rng(4)
    offsets = np.array([0.0, 1e-13, 3e-13, 1e-12, 3e-12, 1e-11])[None, :, None]
    v = np.eye(6)[None]
    qh = ball(rng, (1, 1, 4), 1.0, radius=1 - 1e-9)
    qh *= (1 - 1e-9) / np.linalg.norm(qh)
    kh = qh + offsets * rng.standard_normal((1, 6, 4))
    qs = rng.standard_normal((1, 1, 3))
    qs /= np.linalg.norm(qs)
    ks = qs + 1e3 * offsets * rng.standard_normal((1, 6, 3))
    eq, ek = np.zeros((1, 1, 0)), np.zeros((1, 6, 0))
    for w, t, x in (((0, 1, 0), 0.01, (qh, kh, eq, ek)), ((0, 0, 1), 1e-9, (eq, ek, qs, ks))):
        args = (eq, ek, *x, v)
        ref = kc.fused_attention(*args, weights=w, temperature=t, backend="numpy")
        assert (ref[0, 0] > 1e-3).sum() >= 3  # the weights do resolve the tiny distances
        fast = kc.fused_attention(*args, weights=w, temperature=t, backend="numba")
        np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-8)
