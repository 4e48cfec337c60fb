"""Numba hyperbolic attention: fused Poincaré distances, masked softmax and GEMM aggregation.

Parallel over (batch, query block). Per key block ``K_J``: ``G = K_J Q_Iᵀ`` (one GEMM, one key
per row so that per-query updates are contiguous, vectorised loops), then
``‖q − k‖² = ‖q‖² + ‖k‖² − 2 q·k`` — recomputed from the differences for the (rare) near pairs
where the expansion cancels (below ``TAU·(‖q‖² + ‖k‖²)``; near the boundary even a rounding of
1e-16 in ``‖q − k‖²`` is magnified by ``1/((1 − c‖q‖²)(1 − c‖k‖²))``, up to 1e24) — ``δ = 2c‖q − k‖²/((1 − c‖q‖²)(1 − c‖k‖²))``,
``a = 1 + δ + √δ·√(δ + 2)`` (so ``d_c = ln(a)/√c``) and the base-2 score
``s = −log2(a)/(√c T)`` with a vectorisable ``log2`` (exponent bits plus an odd series in
``(m − 1)/(m + 1)``; relative error < 2e-7 in float32, ~1e-16 in float64); masked entries get
:data:`MASKED`. Then the online
softmax of the flash kernel and ``acc ← 2^{m_old − m}·acc + P·V'_J`` (GEMM, in float64: the
Klein → Poincaré map that follows is ill-conditioned near the boundary) on transformed
values ``V'`` (``[λ v, λ − 1]`` for the Einstein midpoint, ``log_0 v`` for the tangent mean; see
:mod:`kernels.reference.hyperbolic`). Extra memory per thread ``O(bq·bk + bq·dv)``; nothing of
size ``Lq × Lk`` is allocated. The cheap ``O(L·d)`` pre- and post-processing (projection,
value transform, Klein → Poincaré) runs in NumPy.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from kernels.numba._common import (
    _LOG2E,
    FASTMATH,
    MASKED,
    exp_shifted,
    online_softmax_block,
    rescale_accumulate,
    mask_arg,
    single_threaded_blas,
)
from kernels.numba.flash import query_block
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


@njit(parallel=True, fastmath=FASTMATH, error_model="numpy", cache=True)
def _hyperbolic_forward(q, k, vt, qn2, qf, kn2, kf, mask, has_mask, coef, tau, bq, bk):
    B, lq, _ = q.shape
    lk = k.shape[1]
    dv = vt.shape[2]
    out = np.zeros((B, lq, dv), vt.dtype)
    nqb = (lq + bq - 1) // bq
    per_batch_mask = mask.shape[0] > 1
    masked = q.dtype.type(MASKED)
    one = q.dtype.type(1.0)
    ncoef = -coef
    for item in prange(B * nqb):
        b = item // nqb
        i0 = (item % nqb) * bq
        i1 = min(lq, i0 + bq)
        nq = i1 - i0
        mb = b if per_batch_mask else 0
        qt = np.ascontiguousarray(q[b, i0:i1].T)  # (d, nq)
        qn2_b = qn2[b, i0:i1]
        qf_b = qf[b, i0:i1]
        m = np.full(nq, masked, q.dtype)
        m_new = np.empty(nq, q.dtype)
        ell = np.zeros(nq, q.dtype)
        alpha = np.empty(nq, q.dtype)
        acc = np.zeros((nq, dv), vt.dtype)
        st_full = np.empty((bk, nq), q.dtype)
        pt_full = np.empty((bk, nq), vt.dtype)
        pv = np.empty((nq, dv), vt.dtype)
        arg = np.empty(nq, q.dtype)
        ibuf = np.empty(nq, np.int32)
        fbuf = np.empty(nq, q.dtype)
        for j0 in range(0, lk, bk):
            j1 = min(lk, j0 + bk)
            nk = j1 - j0
            if nk == bk:
                np.dot(k[b, j0:j1], qt, st_full)
                st = st_full
                pt = pt_full
            else:
                st = np.dot(k[b, j0:j1], qt)
                pt = np.empty((nk, nq), vt.dtype)
            for c in range(nk):
                row = st[c]
                _diff2_row(row, qn2_b, kn2[b, j0 + c], tau, qt, k[b, j0 + c])
                _acosh_arg(row, qf_b, kf[b, j0 + c], arg)
                log2_row(arg, row, ibuf, fbuf)
                for r in range(nq):
                    row[r] = ncoef * row[r]
                if has_mask:
                    for r in range(nq):
                        if not mask[mb, i0 + r, j0 + c]:
                            row[r] = masked
            online_softmax_block(st, pt, m, m_new, alpha, ell, ibuf)
            np.dot(pt.T, vt[b, j0:j1], pv)
            rescale_accumulate(acc, alpha, pv)
        for r in range(nq):
            if ell[r] > 0.0:
                inv = one / ell[r]
                for c in range(dv):
                    out[b, i0 + r, c] = acc[r, c] * inv
    return out


@njit(parallel=True, fastmath=FASTMATH, error_model="numpy", cache=True)
def _hyperbolic_weights(q, k, qn2, qf, kn2, kf, mask, has_mask, coef, tau, bq):
    B, lq, _ = q.shape
    lk = k.shape[1]
    w = np.zeros((B, lq, lk), q.dtype)
    nqb = (lq + bq - 1) // bq
    per_batch_mask = mask.shape[0] > 1
    ln2 = q.dtype.type(1.0 / _LOG2E)
    zero = q.dtype.type(0.0)
    one = q.dtype.type(1.0)
    two = q.dtype.type(2.0)
    masked = q.dtype.type(MASKED)
    ncoef = -coef * ln2
    for item in prange(B * nqb):
        b = item // nqb
        i0 = (item % nqb) * bq
        i1 = min(lq, i0 + bq)
        mb = b if per_batch_mask else 0
        kt = np.ascontiguousarray(k[b].T)
        g = np.dot(q[b, i0:i1], kt)  # (nq, lk): one query per row, keys contiguous
        arg = np.empty(lk, q.dtype)
        ibuf = np.empty(lk, np.int32)
        fbuf = np.empty(lk, q.dtype)
        for r in range(i1 - i0):
            i = i0 + r
            row = g[r]
            f_q = qf[b, i]
            _diff2_row(row, kn2[b], qn2[b, i], tau, kt, q[b, i])
            for j in range(lk):
                delta = max(row[j], zero) * f_q * kf[b, j]
                arg[j] = one + delta + np.sqrt(delta) * np.sqrt(delta + two)
            log2_row(arg, row, ibuf, fbuf)
            mx = masked
            for j in range(lk):
                s = ncoef * row[j]
                if has_mask and not mask[mb, i, j]:
                    s = masked
                row[j] = s
                mx = max(mx, s)
            total = exp_shifted(row, mx, w[b, i], ibuf)
            if total > zero:
                inv = one / total
                for j in range(lk):
                    w[b, i, j] *= inv
    return w


def _prepare(q, k, mask, c):
    """Projected ``q, k`` and the per-row factors the kernels take."""
    dtype = np.result_type(q.dtype, np.float32)
    q = np.ascontiguousarray(_ref.project(np.asarray(q, dtype), c))
    k = np.ascontiguousarray(_ref.project(np.asarray(k, dtype), c))
    qn2 = np.ascontiguousarray(_ref.sqnorm(q)[..., 0])
    kn2 = np.ascontiguousarray(_ref.sqnorm(k)[..., 0])
    qf = np.ascontiguousarray(2 * dtype.type(c) / _ref.one_minus(q, c)[..., 0])
    kf = np.ascontiguousarray(1 / _ref.one_minus(k, c)[..., 0])
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        mask = np.broadcast_to(mask, (mask.shape[0] if mask.ndim == 3 else 1, q.shape[1], k.shape[1]))
    mask, has_mask = mask_arg(mask)
    return q, k, qn2, qf, kn2, kf, mask, has_mask, dtype


#: Below ``TAU·(‖q‖² + ‖k‖²)`` the expansion ``‖q‖² + ‖k‖² − 2q·k`` is replaced by the exact
#: ``Σ (q − k)²``: the expansion's relative error is then at most ~``d·ε/TAU``.
TAU = {np.dtype(np.float32): 0.125, np.dtype(np.float64): 2.0 ** -10}


def attention(q, k, v, mask, c, temperature, aggregation, block_q, block_k):
    """``(B, Lq, dv)``: transformed values, fused kernel, NumPy post-processing."""
    q, k, qn2, qf, kn2, kf, mask, has_mask, dtype = _prepare(q, k, mask, c)
    vt = np.ascontiguousarray(_ref.VALUES[aggregation](np.asarray(v, dtype), c))  # float64
    coef = dtype.type(1.0 / (np.sqrt(c) * temperature))
    bq = query_block(q.shape[0], q.shape[1], block_q)
    with single_threaded_blas():
        r = _hyperbolic_forward(q, k, vt, qn2, qf, kn2, kf, mask, has_mask, coef, dtype.type(TAU[dtype]),
                                int(bq), int(block_k))
    return _ref.FINISH[aggregation](r, c, dtype)


def weights(q, k, mask, c, temperature, block_q=64):
    """``softmax(−d_c/T)`` rows, ``(B, Lq, Lk)``, computed block by block from one GEMM each."""
    q, k, qn2, qf, kn2, kf, mask, has_mask, dtype = _prepare(q, k, mask, c)
    coef = dtype.type(1.0 / (np.sqrt(c) * temperature))
    bq = query_block(q.shape[0], q.shape[1], block_q)
    with single_threaded_blas():
        return _hyperbolic_weights(q, k, qn2, qf, kn2, kf, mask, has_mask, coef, dtype.type(TAU[dtype]), int(bq))
