"""Numba hyperbolic attention: the Poincaré-distance score on the tile driver
(:mod:`kernels.numba.tile_driver`, which owns the loop, masks, online softmax and aggregation).

Per key block ``K_J``: ``G = K_J Q_Iᵀ`` (one GEMM, one key
per row so that per-query updates are contiguous, vectorised loops), then
``‖q − k‖² = ‖q‖² + ‖k‖² − 2 q·k`` — recomputed from the differences for the (rare) near pairs
where the expansion cancels (below ``TAU·(‖q‖² + ‖k‖²)``; near the boundary even a rounding of
1e-16 in ``‖q − k‖²`` is magnified by ``1/((1 − c‖q‖²)(1 − c‖k‖²))``, up to 1e24) — ``δ = 2c‖q − k‖²/((1 − c‖q‖²)(1 − c‖k‖²))``,
``a = 1 + δ + √δ·√(δ + 2)`` (so ``d_c = ln(a)/√c``) and the base-2 score
``s = −log2(a)/(√c T)`` with a vectorisable ``log2`` (exponent bits plus an odd series in
``(m − 1)/(m + 1)``; relative error < 2e-7 in float32, ~1e-16 in float64); masked entries get
:data:`MASKED`. Then the driver's online
softmax and ``acc ← 2^{m_old − m}·acc + P·V'_J`` (GEMM, in float64: the
Klein → Poincaré map that follows is ill-conditioned near the boundary) on transformed
values ``V'`` (``[λ v, λ − 1]`` for the Einstein midpoint, ``log_0 v`` for the tangent mean; see
:mod:`kernels.reference.hyperbolic`). Extra memory per thread ``O(bq·bk + bq·dv)``; nothing of
size ``Lq × Lk`` is allocated. The cheap ``O(L·d)`` pre- and post-processing (projection,
value transform, Klein → Poincaré) runs in NumPy.
"""
from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

from kernels.numba._common import (
    _LOG2E,
    FASTMATH,
    single_threaded_blas,
)
from kernels.numba.tile_driver import register, run, run_weights
from kernels.numba.vecmath import log2_row64
from kernels.reference import hyperbolic as _ref

_SQRT2 = 1.4142135623730951


def log2_row(src, dst, ibuf, fbuf):  # pragma: no cover - replaced by the overload below
    """``dst[r] = log2(src[r])`` for ``src[r] ≥ 1`` (finite); ``ibuf``/``fbuf`` int32/float work rows."""
    raise NotImplementedError


@overload(log2_row, jit_options={"fastmath": FASTMATH, "error_model": "numpy"})
def _log2_row_impl(src, dst, ibuf, fbuf):
    if src.dtype == types.float32:
        def impl32(src, dst, ibuf, fbuf):
            n = src.shape[0]
            bits = src.view(np.int32)
            mant = ibuf.view(np.float32)
            for r in range(n):  # split x = m·2^e, m in [1, 2)
                b = bits[r]
                fbuf[r] = np.float32(((b >> np.int32(23)) & np.int32(255)) - np.int32(127))
                ibuf[r] = (b & np.int32(0x7FFFFF)) | np.int32(0x3F800000)
            for r in range(n):
                m = mant[r]
                e = fbuf[r]
                if m > np.float32(_SQRT2):
                    m = m * np.float32(0.5)
                    e = e + np.float32(1.0)
                f = (m - np.float32(1.0)) / (m + np.float32(1.0))  # |f| < 0.1716
                f2 = f * f
                p = np.float32(1.0 / 9.0)
                p = p * f2 + np.float32(1.0 / 7.0)
                p = p * f2 + np.float32(1.0 / 5.0)
                p = p * f2 + np.float32(1.0 / 3.0)
                p = p * f2 + np.float32(1.0)
                dst[r] = e + np.float32(2.0 * _LOG2E) * f * p

        return impl32

    def impl64(src, dst, ibuf, fbuf):
        log2_row64(src, dst, fbuf.view(np.int64))

    return impl64


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _diff2_row(g, an2, bn2, tau, at, bvec):
    """``g[r] ← ‖a_r − b‖²`` from ``g[r] = a_r·b``: ``‖a_r‖² + ‖b‖² − 2 a_r·b`` where that is
    accurate, recomputed from the differences (``at`` is ``(d, n)``, columns ``a_r``) where it
    is below ``tau·(‖a_r‖² + ‖b‖²)`` and the rounding of the expansion would dominate (near
    points; near the boundary ``δ`` divides by ``(1 − c‖q‖²)(1 − c‖k‖²)`` and magnifies it)."""
    two = g.dtype.type(2.0)
    n = g.shape[0]
    flagged = 0
    for r in range(n):
        est = an2[r] + bn2 - two * g[r]
        g[r] = est
        flagged += est < tau * (an2[r] + bn2)
    if flagged > 0:
        d = bvec.shape[0]
        for r in range(n):
            if g[r] < tau * (an2[r] + bn2):
                acc = g.dtype.type(0.0)
                for t in range(d):
                    x = at[t, r] - bvec[t]
                    acc += x * x
                g[r] = acc


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _acosh_arg(diff2, qf, kf, out):
    """``out[r] = 1 + δ + √δ·√(δ+2)``, ``δ = ‖q − k‖²·qf·kf`` (``qf``, ``kf`` per row / scalar)."""
    zero = diff2.dtype.type(0.0)
    one = diff2.dtype.type(1.0)
    two = diff2.dtype.type(2.0)
    for r in range(out.shape[0]):
        delta = max(diff2[r], zero) * qf[r] * kf
        out[r] = one + delta + np.sqrt(delta) * np.sqrt(delta + two)


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def log2_acosh_rows(g, qt, qn2, qf, k, kn2, kf, tau, arg, ibuf, fbuf):
    """``g[c, r] ← log2 a``, ``a = 1 + δ + √δ·√(δ + 2)`` of query ``r`` and key ``c``, from
    ``g[c, r] = k_c·q_r`` (``d_c = ln(a)/√c``): ``qt (d, nq)``, ``qn2``/``qf`` per query
    (``‖q‖²``, ``2c/(1 − c‖q‖²)``), ``k (nk, d)``, ``kn2``/``kf`` per key (``‖k‖²``, ``1/(1 − c‖k‖²)``)."""
    for c in range(g.shape[0]):
        row = g[c]
        _diff2_row(row, qn2, kn2[c], tau, qt, k[c])
        _acosh_arg(row, qf, kf[c], arg)
        log2_row(arg, row, ibuf, fbuf)


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _queries(qctx, b, i0, i1, bk):
    """The block's queries transposed ``(d, nq)``, their ``‖q‖²`` and ``2c/(1 − c‖q‖²)``, work rows."""
    q, qn2, qf = qctx
    nq = i1 - i0
    return (np.ascontiguousarray(q[b, i0:i1].T), qn2[b, i0:i1], qf[b, i0:i1], np.empty(nq, q.dtype),
            np.empty(nq, np.int32), np.empty(nq, q.dtype))


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _scores(qs, kctx, b, j0, j1, st):
    """``st[c] = −log2(a)/(√c T)``, ``a = 1 + δ + √δ·√(δ + 2)``, from one GEMM ``K_J Q_Iᵀ``."""
    qt, qn2_b, qf_b, arg, ibuf, fbuf = qs
    k, kn2, kf, ncoef, tau = kctx
    np.dot(k[b, j0:j1], qt, st)
    log2_acosh_rows(st, qt, qn2_b, qf_b, k[b, j0:j1], kn2[b, j0:j1], kf[b, j0:j1], tau, arg, ibuf, fbuf)
    for c in range(j1 - j0):
        row = st[c]
        for r in range(row.shape[0]):
            row[r] = ncoef * row[r]


DISTANCE = register(_queries, _scores)


def _prepare(q, k, c):
    """Projected ``q, k`` and the per-row factors the score takes."""
    dtype = np.result_type(q.dtype, np.float32)
    q = np.ascontiguousarray(_ref.project(np.asarray(q, dtype), c))
    k = np.ascontiguousarray(_ref.project(np.asarray(k, dtype), c))
    qn2 = np.ascontiguousarray(_ref.sqnorm(q)[..., 0])
    kn2 = np.ascontiguousarray(_ref.sqnorm(k)[..., 0])
    qf = np.ascontiguousarray(2 * dtype.type(c) / _ref.one_minus(q, c)[..., 0])
    kf = np.ascontiguousarray(1 / _ref.one_minus(k, c)[..., 0])
    return q, k, qn2, qf, kn2, kf, dtype


#: Below ``TAU·(‖q‖² + ‖k‖²)`` the expansion ``‖q‖² + ‖k‖² − 2q·k`` is replaced by the exact
#: ``Σ (q − k)²``: the expansion's relative error is then at most ~``d·ε/TAU``.
TAU = {np.dtype(np.float32): 0.125, np.dtype(np.float64): 2.0 ** -10}


def attention(q, k, v, mask, c, temperature, aggregation, block_q, block_k):
    """``(B, Lq, dv)``: transformed values, the distance score on the tile driver, NumPy post-processing."""
    q, k, qn2, qf, kn2, kf, dtype = _prepare(q, k, c)
    vt = np.ascontiguousarray(_ref.VALUES[aggregation](np.asarray(v, dtype), c))  # float64
    coef = dtype.type(1.0 / (np.sqrt(c) * temperature))
    with single_threaded_blas():
        r = run(DISTANCE, (q, qn2, qf), (k, kn2, kf, -coef, dtype.type(TAU[dtype])), vt, dtype, mask=mask,
                block_q=block_q, block_k=block_k)[0]
    return _ref.FINISH[aggregation](r, c, dtype)


def weights(q, k, mask, c, temperature, block_q=64):
    """``softmax(−d_c/T)`` rows, ``(B, Lq, Lk)``, row block by row block (the driver's :func:`weights`)."""
    q, k, qn2, qf, kn2, kf, dtype = _prepare(q, k, c)
    coef = dtype.type(1.0 / (np.sqrt(c) * temperature))
    with single_threaded_blas():
        return run_weights(DISTANCE, (q, qn2, qf), (k, kn2, kf, -coef, dtype.type(TAU[dtype])), k.shape[1], dtype,
                           mask=mask, block_q=block_q)
