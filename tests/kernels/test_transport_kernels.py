"""Sliced-Wasserstein kernels: the NumPy reference against loops, the Numba kernels against the
reference on random (hypothesis) and adversarial inputs. Rule for float32: the Numba error against
a float64 reference is at most about twice that of a plain float32 NumPy implementation."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.reference import sliced_wasserstein as ref
from kernels.sliced_wasserstein import sw_attention, sw_weights

SETTINGS = settings(max_examples=20, deadline=None)
EPS32 = float(np.finfo(np.float32).eps)


def loop_distances(a, b, p):
    B, lq, _ = a.shape
    lk = b.shape[1]
    out = np.zeros((B, lq, lk))
    for bi in range(B):
        for i in range(lq):
            for j in range(lk):
                out[bi, i, j] = np.sum(np.abs(a[bi, i].astype(np.float64) - b[bi, j]) ** p) ** (1 / p)
    return out


def plain(a, b, v, p, T, mask, dtype):
    """The obvious same-precision implementation: distances, softmax, product, all in ``dtype``."""
    a, b, v = (np.asarray(x, dtype) for x in (a, b, v))
    diff = np.abs(a[:, :, None, :] - b[:, None, :, :])
    d = (diff ** dtype(p)).sum(-1) ** dtype(1 / p)
    s = -d / dtype(T)
    if mask is not None:
        s = np.where(mask, s, -np.inf)
    m = s.max(-1, keepdims=True)
    e = np.exp(s - np.where(np.isfinite(m), m, 0))
    tot = e.sum(-1, keepdims=True)
    w = np.divide(e, tot, out=np.zeros_like(e), where=tot > 0)
    return w @ v, w


def test_reference_distances_match_loops(rng):
    a, b = rng.standard_normal((2, 4, 6)), rng.standard_normal((2, 5, 6))
    for p in (1.0, 2.0, 3.5):
        np.testing.assert_allclose(ref.distances(a, b, p), loop_distances(a, b, p), atol=1e-12)


def test_quantile_grid_is_exact():
    ia, ib, dt = ref.quantile_grid(3, 4)
    assert dt.sum() == pytest.approx(1.0, abs=1e-15)
    # breakpoints {0, 1/4, 1/3, 1/2, 2/3, 3/4, 1}
    np.testing.assert_allclose(dt, [1 / 4, 1 / 12, 1 / 6, 1 / 6, 1 / 12, 1 / 4])
    np.testing.assert_array_equal(ia, [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(ib, [0, 1, 1, 2, 2, 3])


def check(a, b, v, p, T, mask, num_candidates=None, q=None, k=None):
    kw = dict(p=p, temperature=T, mask=mask, num_candidates=num_candidates, q=q, k=k)
    dtype = a.dtype.type
    fast = sw_attention(a, b, v, backend="numba", **kw)
    fast_w = sw_weights(a, b, backend="numba", **kw)
    assert fast.dtype == a.dtype and fast_w.dtype == a.dtype
    assert np.isfinite(fast).all() and np.isfinite(fast_w).all()
    a64, b64, v64 = (x.astype(np.float64) for x in (a, b, v))
    exact = sw_attention(a64, b64, v64, backend="numpy", **kw)
    exact_w = sw_weights(a64, b64, backend="numpy", **kw)
    if dtype is np.float64:
        vmax = max(1.0, float(np.abs(v).max()))
        np.testing.assert_allclose(fast, exact, rtol=0, atol=1e-11 * vmax)
        np.testing.assert_allclose(fast_w, exact_w, rtol=0, atol=1e-11)
        return
    if num_candidates is not None and num_candidates < b.shape[1]:
        # two-stage: float64 distances on the candidates; compare with the float32 reference
        np.testing.assert_allclose(fast_w, sw_weights(a, b, backend="numpy", **kw), rtol=0, atol=1e-6)
        return
    p_out, p_w = plain(a, b, v, p, T, mask, np.float32)
    dmax = float(ref.distances(a64, b64, p).max()) / T
    floor = 8 * EPS32 * max(1.0, dmax)  # what rounding the logits alone moves a weight by
    vmax = max(1.0, float(np.abs(v).max()))
    assert np.abs(fast_w - exact_w).max() <= 2 * np.abs(p_w - exact_w).max() + floor
    assert np.abs(fast - exact).max() <= 2 * np.abs(p_out - exact).max() + floor * vmax


@st.composite
def problems(draw, max_lk=300):
    B = draw(st.integers(1, 2))
    lq = draw(st.integers(1, 12))
    lk = draw(st.integers(1, max_lk))
    F = draw(st.integers(1, 20))
    dv = draw(st.integers(1, 5))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    amp = draw(st.sampled_from([1.0, 30.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a = (amp * rng.standard_normal((B, lq, F))).astype(dtype)
    b = (amp * rng.standard_normal((B, lk, F))).astype(dtype)
    v = rng.standard_normal((B, lk, dv)).astype(dtype)
    mask = None
    if draw(st.booleans()):
        mask = rng.random((B, lq, lk)) < 0.7
        mask[:, rng.random(lq) < 0.3] = False
    return a, b, v, mask


@SETTINGS
@given(prob=problems(), p=st.sampled_from([1.0, 2.0, 3.0, 1.5]), T=st.sampled_from([0.3, 1.0, 5.0]))
def test_numba_equals_reference_random(prob, p, T):
    check(*prob[:3], p, T, prob[3])


@SETTINGS
@given(prob=problems(max_lk=40), p=st.sampled_from([1.0, 2.0, 2.5]), C=st.integers(1, 12), d=st.integers(1, 6),
       seed=st.integers(0, 2**31))
def test_two_stage_numba_equals_reference_random(prob, p, C, d, seed):
    a, b, v, mask = prob
    rng = np.random.default_rng(seed)
    q = rng.standard_normal(a.shape[:2] + (d,)).astype(a.dtype)
    k = rng.standard_normal(b.shape[:2] + (d,)).astype(a.dtype)
    check(a, b, v, p, 1.0, mask, C, q, k)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adversarial_near_points_far_from_the_origin(rng, dtype):
    """‖a‖² ≫ ‖a − b‖²: the GEMM expansion cancels; the kernel must recompute those pairs."""
    base = 1000.0 + rng.standard_normal((1, 1, 16))
    a = (base + 1e-2 * rng.standard_normal((1, 7, 16))).astype(dtype)
    b = np.concatenate([a[:, :3], (base + 1e-2 * rng.standard_normal((1, 290, 16)))], axis=1).astype(dtype)
    v = rng.standard_normal((1, 293, 3)).astype(dtype)
    check(a, b, v, 2.0, 0.01, None)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [1.0, 2.0, 4.0])
def test_adversarial_shapes(rng, dtype, p):
    for lq, lk, F in [(1, 1, 1), (1, 257, 3), (5, 1, 2), (300, 2, 1), (3, 513, 7)]:
        a = rng.standard_normal((2, lq, F)).astype(dtype)
        b = rng.standard_normal((2, lk, F)).astype(dtype)
        v = rng.standard_normal((2, lk, 2)).astype(dtype)
        mask = rng.random((2, lq, lk)) < 0.5
        mask[:, ::2] = False
        check(a, b, v, p, 1.0, None)
        check(a, b, v, p, 1.0, mask)
        check(a, b, v, p, 1.0, mask, 2, a[..., :1], b[..., :1])


def test_identical_keys_give_uniform_weights(backend):
    a = np.ones((1, 2, 4), np.float32)
    b = np.full((1, 5, 4), 3.0, np.float32)
    w = sw_weights(a, b, backend=backend)
    np.testing.assert_allclose(w, 0.2, atol=1e-7)


def test_everything_masked_gives_zeros(backend, rng):
    a, b = rng.standard_normal((1, 3, 4)), rng.standard_normal((1, 6, 4))
    v = rng.standard_normal((1, 6, 2))
    mask = np.zeros((1, 3, 6), bool)
    assert (sw_attention(a, b, v, mask=mask, backend=backend) == 0).all()
    assert (sw_weights(a, b, mask=mask, backend=backend) == 0).all()
    assert (sw_attention(a, b, v, mask=mask, num_candidates=2, q=a, k=b, backend=backend) == 0).all()
