"""Numba local–global attention: each query scores only its window and the global keys.

Cost ``O(Lq · (w + g) · d)`` plus ``O(g · Lk · d)`` for the global queries; no dense matrix.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels.numba._common import FASTMATH, MASKED, MASKED_BELOW, exp_shifted, mask_arg


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def _local_global(q, k, v, positions, mask, has_mask, scale, window, num_global, causal):
    B, lq, d = q.shape
    lk = k.shape[1]
    dv = v.shape[2]
    half = window // 2
    out = np.zeros((B, lq, dv), q.dtype)
    per_batch_mask = mask.shape[0] > 1
    g = min(num_global, lk)
    for item in prange(B * lq):
        b = item // lq
        i = item % lq
        mb = b if per_batch_mask else 0
        p = positions[i]
        # candidate keys: all for a global query; else globals then the window (no duplicates)
        if p < g:
            lo, hi, n_glob = 0, lk, 0
        else:
            lo = max(g, p - half)
            hi = min(lk, p + half + 1)
            n_glob = g
        if causal:
            hi = min(hi, p + 1)
            n_glob = min(n_glob, p + 1)
        n_win = max(0, hi - lo)
        n = n_glob + n_win
        if n == 0:
            continue
        idx = np.empty(n, np.int64)
        for c in range(n_glob):
            idx[c] = c
        for c in range(n_win):
            idx[n_glob + c] = lo + c
        s = np.empty(n, q.dtype)
        mx = q.dtype.type(MASKED)
        for c in range(n):
            j = idx[c]
            if has_mask and not mask[mb, i, j]:
                s[c] = MASKED
                continue
            acc = 0.0
            for t in range(d):
                acc += q[b, i, t] * k[b, j, t]
            s[c] = acc * scale
            mx = max(mx, s[c])
        if mx <= MASKED_BELOW:
            continue
        w = np.empty(n, q.dtype)
        total = exp_shifted(s, mx, w, np.empty(n, np.int32))
        inv = 1.0 / total
        for c in range(n):
            wc = w[c] * inv
            if wc == 0.0:
                continue
            j = idx[c]
            for t in range(dv):
                out[b, i, t] += wc * v[b, j, t]
    return out


def local_global_attention(q, k, v, positions, mask, scale, window, num_global, causal):
    """``(B, Lq, d), (B, Lk, d), (B, Lk, dv) → (B, Lq, dv)``; ``positions (Lq,)`` int."""
    dtype = np.result_type(q.dtype, np.float32)
    q, k, v = (np.ascontiguousarray(a, dtype=dtype) for a in (q, k, v))
    mask, has_mask = mask_arg(mask, q.shape[1], k.shape[1])
    positions = np.ascontiguousarray(positions, dtype=np.int64)
    return _local_global(q, k, v, positions, mask, has_mask, dtype.type(scale), int(window),
                         int(num_global), bool(causal))
