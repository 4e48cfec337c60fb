"""Numba curvature score kernels: the fused E×H×S logits and hyperboloid distances, parallel over
(batch, query block).

Fused logits (see :mod:`kernels.reference.curvature`): per query block one GEMM
``Q_E K_Eᵀ`` (BLAS) for the Euclidean part, then one pass over the keys that adds the Poincaré
distance of the H slices (per-vector ball denominators precomputed) and the spherical geodesic
distance of the S directions (precomputed unit vectors), writing the combined logit once.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels.numba._common import FASTMATH, single_threaded_blas


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def _fused_logits(qe, keT, qh, kh, dq, dk, qs, ks, a_e, a_h, a_s, c_h, c_s, bq, out):
    B, lq, E = qe.shape
    lk = out.shape[2]
    H = qh.shape[2]
    S = qs.shape[2]
    nqb = (lq + bq - 1) // bq
    tiny = np.finfo(qe.dtype).tiny
    two_c = qe.dtype.type(2.0 * c_h)
    inv_sqrt_ch = qe.dtype.type(1.0 / np.sqrt(c_h))
    inv_sqrt_cs = qe.dtype.type(2.0 / np.sqrt(c_s))
    use_e = E > 0 and a_e != 0.0
    use_h = H > 0 and a_h != 0.0
    use_s = S > 0 and a_s != 0.0
    for item in prange(B * nqb):
        b = item // nqb
        i0 = (item % nqb) * bq
        i1 = min(lq, i0 + bq)
        blk = out[b, i0:i1]
        if use_e:
            np.dot(qe[b, i0:i1], keT[b], blk)
            for r in range(i1 - i0):
                for j in range(lk):
                    blk[r, j] *= a_e
        else:
            blk[:, :] = 0.0
        if use_h:
            for r in range(i1 - i0):
                i = i0 + r
                for j in range(lk):
                    acc = qe.dtype.type(0.0)
                    for t in range(H):
                        df = qh[b, i, t] - kh[b, j, t]
                        acc += df * df
                    den = max(dq[b, i] * dk[b, j], tiny)
                    x = two_c * acc / den
                    blk[r, j] -= a_h * (np.log1p(x + np.sqrt(x * (x + 2.0))) * inv_sqrt_ch)
        if use_s:
            for r in range(i1 - i0):
                i = i0 + r
                for j in range(lk):
                    m2 = qe.dtype.type(0.0)
                    p2 = qe.dtype.type(0.0)
                    for t in range(S):
                        x = qs[b, i, t]
                        y = ks[b, j, t]
                        m2 += (x - y) * (x - y)
                        p2 += (x + y) * (x + y)
                    blk[r, j] -= a_s * (np.arctan2(np.sqrt(m2), np.sqrt(p2)) * inv_sqrt_cs)
    return out


def fused_logits(qe, ke, qh, kh, dq, dk, qs, ks, a_e, a_h, a_s, c_h, c_s, block_q=64):
    """Combined logits ``(B, Lq, Lk)``; ``a_*`` are the component factors with the temperature folded in,
    ``dq``/``dk`` the ball denominators, ``qs``/``ks`` unit directions."""
    dt = qe.dtype
    B, lq, lk = qe.shape[0], qe.shape[1], ke.shape[1]
    out = np.empty((B, lq, lk), dt)
    keT = np.ascontiguousarray(np.swapaxes(ke, 1, 2))
    args = [np.ascontiguousarray(a, dtype=dt) for a in (qe, keT, qh, kh, dq, dk, qs, ks)]
    with single_threaded_blas():
        return _fused_logits(*args, dt.type(a_e), dt.type(a_h), dt.type(a_s), float(c_h), float(c_s),
                             int(block_q), out)


@njit(parallel=True, fastmath=FASTMATH, cache=True)
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
    f = lambda x: np.ascontiguousarray(x, dtype=np.float64)  # noqa: E731
    return _lorentz_distance(f(a), f(uhat), f(b), f(what), float(c), out)
