"""Hyperbolic attention kernels: NumPy reference against a loop definition, Numba against both."""
from __future__ import annotations

import math

import numpy as np
import pytest

import kernels
from kernels.hyperbolic import hyperbolic_attention, hyperbolic_weights
from kernels.reference import hyperbolic as ref

DTYPES = (np.float32, np.float64)


def definition(q, k, v, c, T, mask=None, aggregation="einstein"):
    """Loops in float64: project, d_c by the textbook formula, softmax, Klein-model midpoint."""
    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    B, lq, _ = q.shape
    lk, dv = k.shape[1], v.shape[2]

    def proj(x, e):
        n = math.sqrt(float(np.sum(x * x)))
        r = (1 - e) / math.sqrt(c)
        return x * (r / n) if n > r else x

    out = np.zeros((B, lq, dv))
    W = np.zeros((B, lq, lk))
    for b in range(B):
        for i in range(lq):
            qi = proj(q[b, i], E)
            s = np.full(lk, -np.inf)
            for j in range(lk):
                if mask is not None and not mask[min(b, mask.shape[0] - 1), min(i, mask.shape[1] - 1),
                                                 min(j, mask.shape[2] - 1)]:
                    continue
                kj = proj(k[b, j], E)
                arg = 1 + 2 * c * np.sum((qi - kj) ** 2) / ((1 - c * np.sum(qi ** 2)) * (1 - c * np.sum(kj ** 2)))
                s[j] = -math.acosh(arg) / math.sqrt(c) / T
            if np.all(np.isinf(s)):
                continue
            w = np.exp(s - s.max())
            w /= w.sum()
            W[b, i] = w
            vals = np.array([proj(v[b, j], E) for j in range(lk)])
            if aggregation == "einstein":
                xk = 2 * vals / (1 + c * np.sum(vals ** 2, -1, keepdims=True))
                g = 1 / np.sqrt(1 - c * np.sum(xk ** 2, -1, keepdims=True))
                mk = np.sum(w[:, None] * g * xk, 0) / np.sum(w[:, None] * g)
                out[b, i] = mk / (1 + math.sqrt(max(0.0, 1 - c * np.sum(mk ** 2))))
            else:
                n = np.linalg.norm(vals, axis=-1, keepdims=True)
                logs = np.where(n > 0, np.arctanh(math.sqrt(c) * n) * vals / (math.sqrt(c) * np.maximum(n, 1e-300)), 0)
                t = np.sum(w[:, None] * logs, 0)
                nt = np.linalg.norm(t)
                out[b, i] = math.tanh(math.sqrt(c) * nt) * t / (math.sqrt(c) * nt) if nt > 0 else 0
    return out, W


E = 1e-5  # the definition projects with the float32 margin; inputs below stay well inside it


def inputs(rng, B, lq, lk, d, dv, c, dtype, radius=0.9):
    def pts(n, dd):
        x = rng.standard_normal((B, n, dd))
        x /= np.linalg.norm(x, axis=-1, keepdims=True)
        return (x * rng.uniform(0, radius, (B, n, 1)) / math.sqrt(c)).astype(dtype)

    return pts(lq, d), pts(lk, d), pts(lk, dv)


@pytest.mark.parametrize("aggregation", ("einstein", "tangent"))
@pytest.mark.parametrize("c", (0.1, 1.0, 5.0))
def test_reference_matches_loop_definition(aggregation, c):
    rng = np.random.default_rng(1)
    q, k, v = inputs(rng, 2, 5, 7, 3, 2, c, np.float64)
    mask = rng.random((2, 5, 7)) < 0.6
    mask[1, 2] = False
    expected, W = definition(q, k, v, c, 0.7, mask, aggregation)
    np.testing.assert_allclose(ref.weights(q, k, c, 0.7, mask), W, atol=1e-12)
    np.testing.assert_allclose(ref.attention(q, k, v, c, 0.7, aggregation, mask), expected, atol=1e-10)


def _err(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)))


CASES = [  # (B, Lq, Lk, d, dv, radius, mask kind)
    (2, 37, 53, 5, 3, 0.9, "random"),
    (1, 1, 1, 1, 1, 0.9, None),
    (3, 1, 9, 4, 2, 0.9, "batch"),
    (2, 9, 1, 1, 3, 0.9, "random"),
    (1, 70, 300, 8, 8, 0.999, "rows"),
    (2, 20, 33, 6, 4, 5.0, "keys"),  # outside the ball: everything projected to the boundary
    (1, 300, 257, 16, 5, 0.5, None),
]


def make_mask(rng, kind, B, lq, lk):
    if kind is None:
        return None
    if kind == "random":
        m = rng.random((B, lq, lk)) < 0.7
        m[0, 0] = False  # a fully masked row
        return m
    if kind == "batch":
        return rng.random((1, lq, lk)) < 0.5
    if kind == "rows":
        m = np.ones((1, lq, 1), bool)
        m[0, ::3] = False
        return m
    m = np.ones((B, 1, lk), bool)
    m[:, :, ::2] = False
    return m


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:5])) + f"-r{c[5]}-{c[6]}")
@pytest.mark.parametrize("aggregation", ("einstein", "tangent"))
def test_numba_matches_numpy(dtype, case, aggregation):
    B, lq, lk, d, dv, radius, kind = case
    c, T = 2.0, 0.6
    rng = np.random.default_rng(lq * 31 + lk)
    q, k, v = inputs(rng, B, lq, lk, d, dv, c, dtype, radius)
    mask = make_mask(rng, kind, B, lq, lk)
    q64, k64, v64 = (a.astype(np.float64) for a in (q, k, v))
    exact = hyperbolic_attention(q64, k64, v64, c=c, temperature=T, aggregation=aggregation, mask=mask, backend="numpy")
    ref_out = hyperbolic_attention(q, k, v, c=c, temperature=T, aggregation=aggregation, mask=mask, backend="numpy")
    for bq, bk in ((256, 256), (16, 8), (1, 3)):
        out = hyperbolic_attention(q, k, v, c=c, temperature=T, aggregation=aggregation, mask=mask,
                                   backend="numba", block_q=bq, block_k=bk)
        assert out.dtype == dtype and out.shape == (B, lq, dv)
        assert np.all(np.isfinite(out))
        assert np.all(math.sqrt(c) * np.linalg.norm(out.astype(np.float64), axis=-1) < 1)
        # flash-attention rule: at most about twice the error of the same-precision reference
        slack = 1e-5 if dtype == np.float32 else 1e-12
        assert _err(out, exact) <= 2 * _err(ref_out, exact) + slack
    w_exact = hyperbolic_weights(q64, k64, c=c, temperature=T, mask=mask, backend="numpy")
    w_ref = hyperbolic_weights(q, k, c=c, temperature=T, mask=mask, backend="numpy")
    w = hyperbolic_weights(q, k, c=c, temperature=T, mask=mask, backend="numba")
    assert w.dtype == dtype
    assert _err(w, w_exact) <= 2 * _err(w_ref, w_exact) + (1e-5 if dtype == np.float32 else 1e-12)
    allowed = np.ones((B, lq, lk), bool) if mask is None else np.broadcast_to(mask, (B, lq, lk))
    assert np.all(w[~allowed] == 0)
    sums = w.astype(np.float64).sum(-1)
    np.testing.assert_allclose(sums[allowed.any(-1)], 1, atol=1e-5)
    assert np.all(sums[~allowed.any(-1)] == 0)
    if mask is not None:
        out = hyperbolic_attention(q, k, v, c=c, temperature=T, aggregation=aggregation, mask=mask, backend="numba")
        assert np.all(out[~allowed.any(-1)] == 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_log2_row_accuracy(dtype):
    from kernels.numba.hyperbolic import log2_row
    from numba import njit

    @njit
    def run(x):
        out = np.empty_like(x)
        log2_row(x, out, np.empty(x.shape[0], np.int32), np.empty_like(x))
        return out

    x = np.concatenate([[1.0, 1.0 + 1e-7, 1.4142135, 1.4142137, 2.0, 3.0], np.geomspace(1, 1e30, 2000)]).astype(dtype)
    got = run(x)
    exact = np.log2(x.astype(np.float64))
    assert np.max(np.abs(got - exact) / np.maximum(exact, 1)) < (3e-7 if dtype == np.float32 else 1e-15)


def test_extreme_curvature_and_temperature_stay_finite():
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 20, 4)).astype(np.float32) for _ in range(3))
    for c, T in ((1e4, 1.0), (1e-4, 1.0), (1.0, 1e-6), (1.0, 1e6)):
        for be in ("numpy", "numba"):
            out = hyperbolic_attention(q, k, v, c=c, temperature=T, backend=be)
            w = hyperbolic_weights(q, k, c=c, temperature=T, backend=be)
            assert np.isfinite(out).all() and np.isfinite(w).all()
            np.testing.assert_allclose(w.sum(-1), 1, atol=1e-5)


def test_argument_errors():
    q = np.zeros((1, 2, 3))
    with pytest.raises(kernels.BackendError, match="aggregation"):
        hyperbolic_attention(q, q, q, aggregation="frechet")
    with pytest.raises(kernels.BackendError, match=r"\bc\b"):
        hyperbolic_weights(q, q, c=0.0)
    with pytest.raises(kernels.BackendError, match="temperature"):
        hyperbolic_weights(q, q, temperature=-1.0)
    with pytest.raises(kernels.BackendError, match="CuPy"):
        hyperbolic_weights(q, q, backend="cupy")


def test_lorentz_pairwise_distance_matches_poincare():
    rng = np.random.default_rng(3)
    c = 0.7
    p = rng.standard_normal((2, 6, 3)) * 0.3
    r = rng.standard_normal((2, 4, 3)) * 0.3

    def lift(z):
        a = c * np.sum(z ** 2, -1, keepdims=True)
        return np.concatenate([(1 + a) / math.sqrt(c), 2 * z], -1) / (1 - a)

    np.testing.assert_allclose(ref.lorentz_pairwise_distance(lift(p), lift(r), c),
                               ref.pairwise_distance(p, r, c), rtol=1e-10, atol=1e-12)
