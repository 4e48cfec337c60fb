"""Fused E×H×S attention against its definition written out here (float64 loops)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import workbench
from tests._helpers import assert_matches_per_batch, softmax_allowed
from workbench.curvature import ComponentQuantizer
from workbench.errors import ConfigurationError


def logit(q, k, e, h, ch, cs, w, s, t):
    dot = float(q[:e] @ k[:e])
    x, y = q[e:e + h], k[e:e + h]
    dh = (math.acosh(1 + 2 * ch * float((x - y) @ (x - y)) / ((1 - ch * float(x @ x)) * (1 - ch * float(y @ y))))
          / math.sqrt(ch)) if h else 0.0
    a, b = q[e + h:], k[e + h:]
    ds = math.acos(max(-1.0, min(1.0, float(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b))))) / math.sqrt(cs) \
        if len(a) else 0.0
    return (w[0] * s * dot - w[1] * dh - w[2] * ds) / t


def definition(q, k, v, heads, e, h, ch, cs, weights, variation, s, t, allowed):
    """``(Lq, d), (Lk, d), (Lk, dv)`` (H blocks inside the ball) → ``(Lq, dv), (Lq, Lk)``."""
    d, dv = q.shape[1], v.shape[1]
    dh, dvh = d // heads, dv // heads
    out = np.zeros((len(q), dv))
    wmean = np.zeros((len(q), len(k)))
    for hd in range(heads):
        f = hd / heads - 0.5 if heads > 1 else 0.0
        w = [max(0.0, weights[0] + f * variation), max(0.0, weights[1] - f * variation / 2),
             max(0.0, weights[2] + f * variation / 2)]
        sl, vs = slice(hd * dh, (hd + 1) * dh), slice(hd * dvh, (hd + 1) * dvh)
        for i in range(len(q)):
            ws = softmax_allowed([logit(q[i, sl], k[j, sl], e, h, ch, cs, w, s, t) for j in range(len(k))], allowed[i])
            out[i, vs] = ws @ v[:, vs]
            wmean[i] += ws / heads
    return out, wmean


def data(rng, b, lq, lk, d, dv, e, h, ch, heads=1):
    q, k, v = rng.standard_normal((b, lq, d)), rng.standard_normal((b, lk, d)), rng.standard_normal((b, lk, dv))
    dh = d // heads
    for x in (q, k):
        for hd in range(heads):
            x[..., hd * dh + e: hd * dh + e + h] *= 0.15 / math.sqrt(ch)
    return q, k, v


@pytest.mark.parametrize("heads, e, h, ch, cs, weights, variation, scale, t", [
    (1, 3, 2, 1.0, 1.0, (0.5, 0.35, 0.15), 0.0, None, 1.0),
    (1, 2, 3, 0.5, 2.0, (1.0, 2.0, 0.5), 0.0, 0.7, 1.5),
    (2, 2, 1, 1.5, 0.5, (0.5, 0.35, 0.15), 0.4, None, 0.8),
    (2, 0, 2, 1.0, 1.0, (0.0, 1.0, 1.0), 0.0, None, 1.0),
])
def test_matches_definition(heads, e, h, ch, cs, weights, variation, scale, t, rng, backend):
    d, dv = 6 * heads, 2 * heads
    q, k, v = data(rng, 2, 5, 7, d, dv, e, h, ch, heads)
    mask = rng.random((2, 5, 7)) < 0.7
    mask[1, 0] = False
    mech = workbench.make("fused_mixed_curvature", num_heads=heads, euclidean_dim=e, hyperbolic_dim=h,
                          hyperbolic_curvature=ch, spherical_curvature=cs, weight_e=weights[0], weight_h=weights[1],
                          weight_s=weights[2], per_head_variation=variation, scale=scale, temperature=t,
                          backend=backend)
    s = (1 / math.sqrt(e) if e else 1.0) if scale is None else scale
    out, w = mech(q, k, v, mask=mask), mech.weights(q, k, mask=mask)
    refs = [definition(q[b], k[b], v[b], heads, e, h, ch, cs, weights, variation, s, t, mask[b]) for b in range(2)]
    assert_matches_per_batch(out, w, refs, mask)
    assert (out[1, 0] == 0).all() and (w[1, 0] == 0).all()


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-5), (np.float32, 1e-4)])
@pytest.mark.parametrize("scale, t", [(1.0, "sqrtE"), (None, 1.0)])
def test_reduces_to_scaled_dot_product_on_the_e_slice(dtype, tol, scale, t, rng, backend):
    """Appendix A: weights (1, 0, 0), no per-head variation and T = √E (with scale 1) — or the
    default scale 1/√E with T = 1 — give scaled dot-product attention on the E slice."""
    E = 5
    q, k, v = (rng.standard_normal(s).astype(dtype) for s in ((2, 8, 12), (2, 10, 12), (2, 10, 4)))
    mask = rng.random((8, 10)) < 0.8
    mech = workbench.make("fused_mixed_curvature", euclidean_dim=E, hyperbolic_dim=4, weight_e=1.0, weight_h=0.0,
                          weight_s=0.0, scale=scale, temperature=math.sqrt(E) if t == "sqrtE" else t, backend=backend)
    sdpa = workbench.make("scaled_dot_product", backend="numpy")
    qe, ke = q[..., :E].astype(np.float64), k[..., :E].astype(np.float64)
    out = mech(q, k, v, mask=mask)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, sdpa(qe, ke, v.astype(np.float64), mask=mask), atol=tol)
    np.testing.assert_allclose(mech.weights(q, k, mask=mask), sdpa.weights(qe, ke, mask=mask), atol=tol)


def test_quantized_scores_equal_scores_of_round_tripped_inputs(rng, backend):
    q, k, v = data(rng, 2, 6, 8, 16, 3, 8, 4, 1.0)
    qz = ComponentQuantizer()
    mech = workbench.make("fused_mixed_curvature", quantize=True, backend=backend)
    plain = workbench.make("fused_mixed_curvature", backend=backend)
    dims = (8, 4, 4)
    np.testing.assert_allclose(mech(q, k, v), plain(qz.round_trip(q, dims), qz.round_trip(k, dims), v), atol=1e-12)
    assert np.abs(mech(q, k, v) - plain(q, k, v)).max() > 0


@pytest.mark.parametrize("amp", [1.0, 30.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numba_equals_numpy(amp, dtype, rng):
    """The Numba forward (key tiles of 256, online softmax, heads as batch items sharing their
    sequence's mask) against the dense NumPy reference."""
    q = (amp * rng.standard_normal((3, 33, 16))).astype(dtype)
    k = (amp * rng.standard_normal((3, 300, 16))).astype(dtype)
    v = rng.standard_normal((3, 300, 6)).astype(dtype)
    k[:, :5] = q[:, :5]  # zero distances
    mask = rng.random((3, 33, 300)) < 0.7
    mask[:, ::4] = False
    for params in ({}, {"num_heads": 2, "per_head_variation": 0.3}):
        a = workbench.make("fused_mixed_curvature", backend="numpy", **params)
        b = workbench.make("fused_mixed_curvature", backend="numba", **params)
        eps = float(np.finfo(dtype).eps)
        slack = 8 * eps * 0.5 * amp * amp * 16 / math.sqrt(4)  # rounding of w_E·⟨q_E,k_E⟩/√E
        np.testing.assert_allclose(b(q, k, v, mask=mask), a(q, k, v, mask=mask), rtol=0,
                                   atol=(2e-5 if dtype == np.float32 else 1e-10) + 4 * slack)
        np.testing.assert_allclose(b.weights(q, k, mask=mask), a.weights(q, k, mask=mask), rtol=0,
                                   atol=(1e-5 if dtype == np.float32 else 1e-10) + 2 * slack)


def test_configuration_errors(rng):
    q, k, v = rng.standard_normal((2, 4, 8)), rng.standard_normal((2, 5, 8)), rng.standard_normal((2, 5, 4))
    with pytest.raises(ConfigurationError, match="num_heads"):
        workbench.make("fused_mixed_curvature", num_heads=3)(q, k, v)
    with pytest.raises(ConfigurationError, match="num_heads"):
        workbench.make("fused_mixed_curvature", num_heads=8)(q, k, v)  # dv = 4
    with pytest.raises(ConfigurationError, match="euclidean_dim"):
        workbench.make("fused_mixed_curvature", euclidean_dim=6, hyperbolic_dim=3)(q, k, v)
    for bad in ({"weight_h": -0.1}, {"hyperbolic_curvature": 0.0}, {"spherical_curvature": -1.0},
                {"temperature": 0.0}, {"per_head_variation": -1.0}):
        with pytest.raises(ConfigurationError, match=next(iter(bad))):
            workbench.make("fused_mixed_curvature", **bad)


@pytest.mark.parametrize("shared_mask", [False, True])
def test_batch_chunks_equal_one_call(monkeypatch, shared_mask, rng, backend):
    """The forward runs per chunk of batch items (heads inside a chunk): chunks of one item give the
    same result as one chunk."""
    import workbench.mechanisms.fused_mixed_curvature as mod

    q, k, v = rng.standard_normal((5, 6, 8)), rng.standard_normal((5, 7, 8)), rng.standard_normal((5, 7, 4))
    mask = rng.random((1 if shared_mask else 5, 6, 7)) < 0.7
    mech = workbench.make("fused_mixed_curvature", num_heads=2, per_head_variation=0.3, backend=backend)
    whole = mech(q, k, v, mask=mask)
    monkeypatch.setattr(mod, "BATCH_CHUNK", 1)
    np.testing.assert_array_equal(mech(q, k, v, mask=mask), whole)
