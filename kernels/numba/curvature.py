"""Numba curvature score kernels: the fused E×H×S score on the tile driver, and hyperboloid
distances, parallel over (batch, query block).

One score (:data:`FUSED`) serves both the fused logits (:func:`fused_logits`, the driver's
:func:`~kernels.numba.tile_driver.logits` pass, ``(B, Lq, Lk)``) and the fused attention.

Fused attention (:func:`fused_attention`): the same logits tile by tile, never ``Lq × Lk``.
Per query block ``I`` and key block ``J`` (scores transposed, one key per row, queries
contiguous, in base 2): ``Sᵀ = K_E,J (c_E Q_E,I)ᵀ`` (GEMM); the H part from a second GEMM
``G = K_H,J Q_H,Iᵀ``, ``‖q − k‖² = ‖q‖² + ‖k‖² − 2G`` (recomputed from the differences where
the expansion cancels, below ``tau_h·(‖q‖² + ‖k‖²)``), ``a = 1 + δ + √δ·√(δ + 2)``,
``δ = 2c_h‖q − k‖²/((1 − c_h‖q‖²)(1 − c_h‖k‖²))`` and ``Sᵀ −= c_H·log2 a`` (vectorised log2 of
:mod:`kernels.numba.hyperbolic`); the S part from ``C = K̂_S,J Q̂_S,Iᵀ`` (unit directions),
``‖x̂ ∓ ŷ‖² = ‖x̂‖² + ‖ŷ‖² ∓ 2C`` (differences where either cancels) and
``Sᵀ −= c_S·atan2(‖x̂ − ŷ‖, ‖x̂ + ŷ‖)`` (vectorised float32 arctangent). That is the score; the loop, masks, online softmax and
``O ← 2^{m_old − m} O + P V_J`` (GEMM) are :mod:`kernels.numba.tile_driver`'s. Extra memory per thread
``O(bq·bk + bq·dv)``. Coefficients are per batch item, so the heads of a multi-head call are
batch items of one launch.
The kernels use Numba's NumPy error model (no zero-division checks, every divisor is kept
non-zero by construction): Python's model puts a branch in every loop that divides, which stops
LLVM from vectorising it (measured: the spherical tile step 2.8× slower).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from kernels.numba._common import (
    _LOG2E,
    FASTMATH,
    single_threaded_blas,
)
from kernels.numba.tile_driver import register, run, run_logits
from kernels.numba.hyperbolic import log2_acosh_rows


def _arg(x, dtype):
    """``x`` as a writeable C-contiguous array of ``dtype``: one Numba signature per dtype (read-only
    views, e.g. from ``np.broadcast_to``, would otherwise each compile their own specialisation)."""
    a = np.ascontiguousarray(x, dtype=dtype)
    return a if a.flags.writeable else a.copy()


@njit(parallel=True, fastmath=FASTMATH, error_model="numpy", cache=True)
def _lorentz_distance(a, uhat, b, what, c, out):
    B, n, d = uhat.shape
    m = what.shape[1]
    ln2 = np.log(2.0)
    inv = 1.0 / np.sqrt(c)
    for item in prange(B * n):
        bb = item // n
        i = item % n
        ai = a[bb, i]
        lsa = ai + np.log1p(-np.exp(-2.0 * ai)) - ln2 if ai > 0 else -np.inf
        for j in range(m):
            bj = b[bb, j]
            delta = 0.0
            for t in range(d):
                df = uhat[bb, i, t] - what[bb, j, t]
                delta += df * df
            h = abs(ai - bj) / 2.0
            t1 = ln2 + 2.0 * (h + np.log1p(-np.exp(-2.0 * h)) - ln2) if h > 0 else -np.inf
            lsb = bj + np.log1p(-np.exp(-2.0 * bj)) - ln2 if bj > 0 else -np.inf
            t2 = lsa + lsb + np.log(delta / 2.0) if (delta > 0 and ai > 0 and bj > 0) else -np.inf
            hi = max(t1, t2)
            if hi == -np.inf:
                out[bb, i, j] = 0.0
                continue
            ln_x = hi + np.log1p(np.exp(min(t1, t2) - hi))
            if ln_x < 30.0:
                x = np.exp(ln_x)
                out[bb, i, j] = np.log1p(x + np.sqrt(x * (x + 2.0))) * inv
            else:
                out[bb, i, j] = (ln_x + ln2) * inv
    return out


def lorentz_distance_from_chart(a, uhat, b, what, c):
    """As :func:`kernels.reference.curvature.lorentz_distance_from_chart` (float64)."""
    out = np.empty((uhat.shape[0], uhat.shape[1], what.shape[1]), np.float64)
    f = lambda x: _arg(x, np.float64)  # noqa: E731
    return _lorentz_distance(f(a), f(uhat), f(b), f(what), float(c), out)


# --- fused attention (tiled, online softmax) ---------------------------------------------------------

_PI_2 = 1.5707963267948966
_PI_4 = 0.7853981633974483
_TAN_PI_8 = 0.41421356237309503


def half_angle_row(m2, p2, dst):  # pragma: no cover - replaced by the overload below
    """``dst[r] = atan2(√m2[r], √p2[r])`` in ``[0, π/2]`` (``m2 + p2 > 0``)."""
    raise NotImplementedError


@overload(half_angle_row, jit_options={"fastmath": FASTMATH, "error_model": "numpy"})
def _half_angle_row_impl(m2, p2, dst):
    if m2.dtype == types.float32:
        # Cephes atanf on [0, 1] (one reduction at tan(π/8)); relative error < 2e-7.
        def impl32(m2, p2, dst):
            for r in range(m2.shape[0]):
                a = np.sqrt(m2[r])
                b = np.sqrt(p2[r])
                hi = max(a, b)
                t = min(a, b) / hi
                red = t > np.float32(_TAN_PI_8)
                x = (t - np.float32(1.0)) / (t + np.float32(1.0)) if red else t
                y0 = np.float32(_PI_4) if red else np.float32(0.0)
                z = x * x
                p = np.float32(8.05374449538e-2)
                p = p * z - np.float32(1.38776856032e-1)
                p = p * z + np.float32(1.99777106478e-1)
                p = p * z - np.float32(3.33329491539e-1)
                y = y0 + (p * z * x + x)
                dst[r] = np.float32(_PI_2) - y if a > b else y

        return impl32

    def impl64(m2, p2, dst):
        for r in range(m2.shape[0]):
            dst[r] = np.arctan2(np.sqrt(m2[r]), np.sqrt(p2[r]))

    return impl64


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _sphere_rows(g, an2, bn2, tau, at, bvec, m2, p2):
    """From ``g[r] = â_r·b̂``: ``m2[r] = ‖â_r − b̂‖²``, ``p2[r] = ‖â_r + b̂‖²`` by the expansion,
    recomputed from the vectors (``at (s, n)``, columns ``â_r``) where either is below
    ``tau·(‖â_r‖² + ‖b̂‖²)`` (near and antipodal directions, where the expansion cancels)."""
    two = g.dtype.type(2.0)
    n = g.shape[0]
    flagged = 0
    for r in range(n):
        tot = an2[r] + bn2
        m2[r] = tot - two * g[r]
        p2[r] = tot + two * g[r]
        flagged += (m2[r] < tau * tot) | (p2[r] < tau * tot)
    if flagged > 0:
        d = bvec.shape[0]
        for r in range(n):
            tot = an2[r] + bn2
            if m2[r] < tau * tot or p2[r] < tau * tot:
                am = g.dtype.type(0.0)
                ap = g.dtype.type(0.0)
                for t in range(d):
                    x = at[t, r]
                    y = bvec[t]
                    am += (x - y) * (x - y)
                    ap += (x + y) * (x + y)
                m2[r] = am
                p2[r] = ap
    zero = g.dtype.type(0.0)
    for r in range(n):
        m2[r] = max(m2[r], zero)
        p2[r] = max(p2[r], zero)


# Tile steps of the fused forward, compiled once per dtype as separate functions (not inlined into
# the parallel loop: that keeps the kernel's compile time down).

@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _hyperbolic_tile(g, st, qht, qn2, qf, kh, kn2, kf, tau, coef, arg, ibuf, fbuf):
    """``st[c] −= coef·log2 a`` for the keys ``c`` of the tile, ``g[c]`` holding ``K_H Q_Hᵀ``."""
    log2_acosh_rows(g, qht, qn2, qf, kh, kn2, kf, tau, arg, ibuf, fbuf)
    for c in range(st.shape[0]):
        row = g[c]
        srow = st[c]
        for r in range(srow.shape[0]):
            srow[r] -= coef * row[r]


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _sphere_tile(g, st, qst, qsn, ks, ksn, tau, coef, m2, p2):
    """``st[c] −= coef·atan2(‖q̂ − k̂‖, ‖q̂ + k̂‖)``, ``g[c]`` holding ``K̂_S Q̂_Sᵀ``."""
    for c in range(st.shape[0]):
        row = g[c]
        _sphere_rows(row, qsn, ksn[c], tau, qst, ks[c], m2, p2)
        half_angle_row(m2, p2, row)
        srow = st[c]
        for r in range(srow.shape[0]):
            srow[r] -= coef * row[r]


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _queries(qctx, b, i0, i1, bk):
    """Per query block: item ``b``'s coefficients, the block's E/H/S parts transposed (the E part
    times its base-2 factor), their norms and ball factors, and the work rows of the H and S steps."""
    qe, qh, qs, qn2, qf, qsn, coef = qctx
    dt = qe.dtype
    nq = i1 - i0
    c_e = coef[b, 0]
    return (coef[b, 1], coef[b, 2], qe.shape[2] > 0 and c_e != 0.0,
            np.ascontiguousarray((qe[b, i0:i1] * c_e).T), np.ascontiguousarray(qh[b, i0:i1].T),
            np.ascontiguousarray(qs[b, i0:i1].T), qn2[b, i0:i1], qf[b, i0:i1], qsn[b, i0:i1],
            np.empty((bk, nq), dt), np.empty(nq, dt), np.empty(nq, dt), np.empty(nq, dt),
            np.empty(nq, np.int32), np.empty(nq, dt))


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _scores(qs, kctx, b, j0, j1, st):
    """``Sᵀ = c_E K_E Q_Eᵀ − c_H log2 a_H − c_S·half-angle`` for keys ``j0:j1`` (base 2)."""
    c_h, c_s, use_e, qet, qht, qst, qn2_b, qf_b, qsn_b, g_full, arg, m2, p2, ibuf, fbuf = qs
    ke, kh, kn2, kf, ks, ksn, tau_h, tau_s = kctx
    g = g_full[: j1 - j0]
    if use_e:
        np.dot(ke[b, j0:j1], qet, st)
    else:
        st[:, :] = 0.0
    if kh.shape[2] > 0 and c_h != 0.0:
        np.dot(kh[b, j0:j1], qht, g)
        _hyperbolic_tile(g, st, qht, qn2_b, qf_b, kh[b, j0:j1], kn2[b, j0:j1], kf[b, j0:j1], tau_h, c_h,
                         arg, ibuf, fbuf)
    if ks.shape[2] > 0 and c_s != 0.0:
        np.dot(ks[b, j0:j1], qst, g)
        _sphere_tile(g, st, qst, qsn_b, ks[b, j0:j1], ksn[b, j0:j1], tau_s, c_s, m2, p2)


FUSED = register(_queries, _scores)


#: Below ``TAU·(‖q‖² + ‖k‖²)`` an expanded squared distance is recomputed from the differences;
#: the expansion's relative error is at most ~``(n + 3)·ε/TAU`` (n the block width).
TAU_H = {np.dtype(np.float32): 0.5, np.dtype(np.float64): 2.0 ** -10}
TAU_S = {np.dtype(np.float32): 0.5, np.dtype(np.float64): 2.0 ** -10}


def _contexts(qe, ke, qh, kh, dq, dk, qs, ks, coef, c_h, dt):
    """The driver's query and key contexts of the fused score, in ``dt``."""
    f = lambda x: _arg(x, dt)  # noqa: E731
    tiny = np.finfo(dt).tiny
    sq = lambda x: np.einsum("...i,...i->...", x, x)  # noqa: E731
    qf = 2.0 * float(c_h) / np.maximum(dq, tiny)
    kf = 1.0 / np.maximum(dk, tiny)
    # base 2: the E and S terms times log2(e); the H term multiplies log2(a) = ln(a)·log2(e) already
    coef2 = np.asarray(coef, np.float64) * np.array([_LOG2E, 1.0, _LOG2E])
    return ((f(qe), f(qh), f(qs), f(sq(qh)), f(qf), f(sq(qs)), f(coef2)),
            (f(ke), f(kh), f(sq(kh)), f(kf), f(ks), f(sq(ks)), dt.type(TAU_H[dt]), dt.type(TAU_S[dt])))


def fused_logits(qe, ke, qh, kh, dq, dk, qs, ks, coef, c_h, block_q=64, block_k=256):
    """The fused logits ``(B, Lq, Lk)`` in ``qe``'s dtype: the score of :func:`fused_attention`
    (same ``coef (B, 3)``, ball denominators and unit directions), key tile by key tile."""
    dt = np.dtype(qe.dtype)
    qctx, kctx = _contexts(qe, ke, qh, kh, dq, dk, qs, ks, np.broadcast_to(coef, (qe.shape[0], 3)), c_h, dt)
    with single_threaded_blas():
        return run_logits(FUSED, qctx, kctx, ke.shape[1], dt, block_q=block_q, block_k=block_k)


def fused_attention(qe, ke, qh, kh, dq, dk, qs, ks, v, coef, c_h, mask=None, mask_group=1, block_q=64,
                    block_k=256):
    """Softmax of the fused logits times ``v``, tile by tile: ``→ (B, Lq, dv)`` in ``v``'s dtype.

    ``coef (B, 3)``: natural-base factors ``(w_E s_E/T, w_H/(√c_h T), 2w_S/(√c_s T))`` of
    ``⟨q_E, k_E⟩``, ``ln a`` (``d_H = ln a/√c_h``) and the half angle (``d_S = 2·half/√c_s``), per
    item; ``dq``/``dk`` the ball denominators ``1 − c_h‖x‖²``; ``qs``/``ks`` unit directions.
    ``mask (Bm, Lq, Lk)``, ``Bm`` in ``{1, B/mask_group}``: item ``b`` uses mask ``b // mask_group``.
    """
    dt = np.dtype(v.dtype)
    qctx, kctx = _contexts(qe, ke, qh, kh, dq, dk, qs, ks, coef, c_h, dt)
    with single_threaded_blas():
        return run(FUSED, qctx, kctx, _arg(v, dt), dt, mask=mask, mask_group=mask_group, block_q=block_q,
                   block_k=block_k)[0]
