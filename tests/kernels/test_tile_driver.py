"""The Numba tile driver (:mod:`kernels.numba.tile_driver`) with a score registered here (RBF,
``s = −‖q − k‖²/T``), against the masked softmax written in NumPy: every block size, partial tiles,
boolean and causal masks, per-group masks, rows with no allowed key, log-sum-exp only, mixed dtypes;
the weights pass on the same score and masks, and the logits pass (the scores themselves)."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from kernels.numba.tile_driver import register, run, run_logits, run_weights

LOG2E = 1.4426950408889634


@njit(cache=True)
def _queries(qctx, b, i0, i1, bk):
    q, qn2 = qctx
    return np.ascontiguousarray(q[b, i0:i1].T), qn2[b, i0:i1]


@njit(cache=True)
def _scores(qs, kctx, b, j0, j1, st):
    qt, qn2 = qs
    k, kn2, coef = kctx
    np.dot(k[b, j0:j1], qt, st)
    for c in range(j1 - j0):
        for r in range(st.shape[1]):
            st[c, r] = coef * (2.0 * st[c, r] - qn2[r] - kn2[b, j0 + c])


RBF = register(_queries, _scores)


def definition(q, k, v, T, allowed):
    """``softmax_j(−‖q_i − k_j‖²/T)`` over the allowed keys, ``W V`` and the log-sum-exp, in float64;
    a row with no allowed key: output 0, lse −∞."""
    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    s = -((q[:, :, None, :] - k[:, None, :, :]) ** 2).sum(-1) / T
    s = np.where(allowed, s, -np.inf)
    top = s.max(-1, keepdims=True)
    e = np.exp(s - np.where(np.isfinite(top), top, 0.0))
    total = e.sum(-1, keepdims=True)
    w = np.divide(e, total, out=np.zeros_like(e), where=total > 0)
    with np.errstate(divide="ignore"):
        lse = np.log(total[..., 0]) + np.where(np.isfinite(top[..., 0]), top[..., 0], 0.0)
    return w, w @ v, np.where(total[..., 0] > 0, lse, -np.inf)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), B=st.integers(1, 4), lq=st.integers(1, 40), lk=st.integers(1, 40), d=st.integers(1, 9),
       dv=st.integers(1, 5), bq=st.integers(1, 20), bk=st.integers(1, 20), causal=st.booleans(),
       offset=st.integers(-3, 5), masked=st.sampled_from(["none", "shared", "per_group"]),
       dtypes=st.sampled_from([(np.float64, np.float64), (np.float32, np.float32), (np.float32, np.float64)]),
       need_out=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_driver_equals_the_masked_softmax(data, B, lq, lk, d, dv, bq, bk, causal, offset, masked, dtypes, need_out,
                                          seed):
    sdt, vdt = dtypes
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((B, lq, d)).astype(sdt)
    k = rng.standard_normal((B, lk, d)).astype(sdt)
    v = rng.standard_normal((B, lk, dv)).astype(vdt)
    T = float(data.draw(st.sampled_from([0.05, 1.0, 30.0])))
    allowed = np.ones((B, lq, lk), bool)
    mask, group = None, 1
    if masked == "shared":
        mask = rng.random((lq, lk)) < 0.6  # rows with no allowed key happen
        allowed &= mask
    elif masked == "per_group":
        group = data.draw(st.sampled_from([g for g in (1, 2, 4) if B % g == 0]))
        mask = rng.random((B // group, lq, lk)) < 0.6
        allowed &= np.repeat(mask, group, axis=0)
    if causal:
        allowed &= np.arange(lk)[None, None, :] <= np.arange(lq)[None, :, None] + offset
    sq = lambda a: np.einsum("bld,bld->bl", a, a)  # noqa: E731
    out, lse = run(RBF, (q, sq(q)), (k, sq(k), sdt(LOG2E / T)), v, sdt, mask=mask, mask_group=group,
                   causal=causal, offset=offset, block_q=bq, block_k=bk, need_out=need_out)
    want_w, want_out, want_lse = definition(q, k, v, T, allowed)
    assert out.dtype == vdt and lse.dtype == sdt
    tol = 1e-10 if sdt == np.float64 else 2e-4
    np.testing.assert_array_equal(np.isfinite(lse), np.isfinite(want_lse))
    fin = np.isfinite(want_lse)
    np.testing.assert_allclose(lse[fin], want_lse[fin], rtol=tol, atol=tol * (1 + np.abs(want_lse[fin]).max(initial=0)))
    if need_out:
        np.testing.assert_allclose(out, want_out, rtol=tol, atol=tol)
    else:
        assert not out.any()
    w = run_weights(RBF, (q, sq(q)), (k, sq(k), sdt(LOG2E / T)), lk, sdt, mask=mask, mask_group=group, causal=causal,
                    offset=offset, block_q=bq)
    assert w.dtype == sdt
    np.testing.assert_allclose(w, want_w, rtol=tol, atol=tol)
    lg = run_logits(RBF, (q, sq(q)), (k, sq(k), sdt(LOG2E / T)), lk, sdt, block_q=bq, block_k=bk)
    want_lg = -((q.astype(float)[:, :, None, :] - k.astype(float)[:, None, :, :]) ** 2).sum(-1) / T
    assert lg.dtype == sdt and lg.shape == (B, lq, lk)
    np.testing.assert_allclose(lg, want_lg, rtol=tol, atol=tol * (1 + np.abs(want_lg).max()))
