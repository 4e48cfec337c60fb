"""Numba linear attention: ``O(L · m · dv)`` time, no ``L × L`` matrix.

Non-causal: ``S = Σ_j φ(k_j) v_jᵀ``, ``z = Σ_j φ(k_j)``, ``out_i = φ(q_i)ᵀS / φ(q_i)ᵀz``.
Causal (query ``i`` sees keys ``j ≤ i``): chunks of ``C`` rows; inside a chunk the masked
``C × C`` products, across chunks the running prefix sums ``S`` and ``z``.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels.numba._common import single_threaded_blas

#: No ``arcp``: ``num / den`` must not become ``num · (1/den)``, which overflows for tiny ``den``.
_FASTMATH = {"nsz", "contract", "reassoc"}


@njit(parallel=True, fastmath=_FASTMATH, cache=True)
def _linear(qf, kf, v, causal, chunk):
    B, lq, m = qf.shape
    lk = kf.shape[1]
    dv = v.shape[2]
    out = np.zeros((B, lq, dv), qf.dtype)
    for b in prange(B):
        s = np.zeros((m, dv), qf.dtype)
        z = np.zeros(m, qf.dtype)
        if not causal:
            s = np.dot(kf[b].T, v[b])
            for j in range(lk):
                for c in range(m):
                    z[c] += kf[b, j, c]
            num = np.dot(qf[b], s)
            den = np.dot(qf[b], z)
            for i in range(lq):
                if den[i] > 0.0:
                    for c in range(dv):
                        out[b, i, c] = num[i, c] / den[i]
            continue
        for c0 in range(0, lq, chunk):
            c1 = min(lq, c0 + chunk)
            n = c1 - c0
            qc = qf[b, c0:c1]
            kc = kf[b, c0:c1]
            vc = v[b, c0:c1]
            a = np.dot(qc, kc.T)
            den = np.dot(qc, z)
            for r in range(n):
                for j in range(r + 1, n):
                    a[r, j] = 0.0
                for j in range(r + 1):
                    den[r] += a[r, j]
            num = np.dot(a, vc) + np.dot(qc, s)
            for r in range(n):
                if den[r] > 0.0:
                    for c in range(dv):
                        out[b, c0 + r, c] = num[r, c] / den[r]
            s += np.dot(kc.T, vc)
            for r in range(n):
                for c in range(m):
                    z[c] += kc[r, c]
    return out


def linear_attention(q_feat, k_feat, v, causal: bool, chunk: int = 256):
    """``(B, Lq, m), (B, Lk, m), (B, Lk, dv) → (B, Lq, dv)``; causal needs ``Lq == Lk``."""
    dtype = np.result_type(q_feat.dtype, np.float32)
    qf = np.ascontiguousarray(q_feat, dtype=dtype)
    kf = np.ascontiguousarray(k_feat, dtype=dtype)
    v = np.ascontiguousarray(v, dtype=dtype)
    with single_threaded_blas():
        return _linear(qf, kf, v, bool(causal), int(chunk))
