"""Numba FlashAttention forward: parallel over (batch, query block), BLAS for block products.

Per query block ``Q_I`` and key block ``K_J``: ``S = s·Q_I K_Jᵀ`` (GEMM), masked entries set
to :data:`MASKED`, online-softmax update of ``(m, ℓ)``, ``P = exp(S − m)`` with a vectorised
exp, ``O ← e^{m_old − m} O + P V_J`` (GEMM). Extra memory per thread
``O(bq · bk + bq · dv)``; nothing of size ``Lq × Lk`` is ever allocated.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels.numba._common import FASTMATH, MASKED, MASKED_BELOW, exp_shifted, mask_arg, single_threaded_blas


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def _flash_forward(q, k, v, mask, has_mask, scale, causal, offset, bq, bk, need_out):
    B, lq, _ = q.shape
    lk = k.shape[1]
    dv = v.shape[2]
    out = np.zeros((B, lq, dv), q.dtype)
    lse = np.empty((B, lq), q.dtype)
    nqb = (lq + bq - 1) // bq
    per_batch_mask = mask.shape[0] > 1
    for item in prange(B * nqb):
        b = item // nqb
        i0 = (item % nqb) * bq
        i1 = min(lq, i0 + bq)
        nq = i1 - i0
        mb = b if per_batch_mask else 0
        qs = q[b, i0:i1] * scale
        m = np.full(nq, MASKED, q.dtype)
        ell = np.zeros(nq, q.dtype)
        alpha = np.empty(nq, q.dtype)
        acc = np.zeros((nq, dv), q.dtype)
        s_full = np.empty((nq, bk), q.dtype)
        p_full = np.empty((nq, bk), q.dtype)
        pv_full = np.empty((nq, dv), q.dtype)
        scratch = np.empty(bk, np.int32)
        jend = lk
        if causal:
            jend = max(0, min(lk, i1 + offset))
        for j0 in range(0, jend, bk):
            j1 = min(jend, j0 + bk)
            nk = j1 - j0
            if nk == bk:
                np.dot(qs, k[b, j0:j1].T, s_full)
                s = s_full
                p = p_full
            else:
                s = np.dot(qs, k[b, j0:j1].T)
                p = np.empty((nq, nk), q.dtype)
            # causal masking is needed only where the block reaches past row i0's last key
            need_causal = causal and (j1 - 1 > i0 + offset)
            if has_mask or need_causal:
                for r in range(nq):
                    i = i0 + r
                    for c in range(nk):
                        j = j0 + c
                        if (has_mask and not mask[mb, i, j]) or (need_causal and j > i + offset):
                            s[r, c] = MASKED
            for r in range(nq):
                row = s[r]
                mx = m[r]
                for c in range(nk):
                    mx = max(mx, row[c])
                if mx <= MASKED_BELOW:
                    alpha[r] = 1.0
                    p[r, :] = 0.0
                    continue
                alpha[r] = np.exp(m[r] - mx)
                m[r] = mx
                ell[r] = ell[r] * alpha[r] + exp_shifted(row, mx, p[r], scratch)
            if not need_out:
                continue
            if nk == bk:
                np.dot(p, v[b, j0:j1], pv_full)
                pv = pv_full
            else:
                pv = np.dot(p, v[b, j0:j1])
            for r in range(nq):
                a = alpha[r]
                for c in range(dv):
                    acc[r, c] = acc[r, c] * a + pv[r, c]
        for r in range(nq):
            i = i0 + r
            if ell[r] > 0.0:
                lse[b, i] = m[r] + np.log(ell[r])
                if need_out:
                    inv = 1.0 / ell[r]
                    for c in range(dv):
                        out[b, i, c] = acc[r, c] * inv
            else:
                lse[b, i] = -np.inf
    return out, lse


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def _weights_from_lse(q, k, lse, mask, has_mask, scale, causal, offset, bq):
    B, lq, _ = q.shape
    lk = k.shape[1]
    w = np.zeros((B, lq, lk), q.dtype)
    nqb = (lq + bq - 1) // bq
    per_batch_mask = mask.shape[0] > 1
    for item in prange(B * nqb):
        b = item // nqb
        i0 = (item % nqb) * bq
        i1 = min(lq, i0 + bq)
        mb = b if per_batch_mask else 0
        s = np.dot(q[b, i0:i1] * scale, k[b].T)
        scratch = np.empty(lk, np.int32)
        for r in range(i1 - i0):
            i = i0 + r
            if not np.isfinite(lse[b, i]):
                continue
            row = s[r]
            for j in range(lk):
                if (has_mask and not mask[mb, i, j]) or (causal and j > i + offset):
                    row[j] = MASKED
            exp_shifted(row, lse[b, i], w[b, i], scratch)
    return w


def _prepare(q, k, v, mask, scale):
    dtype = np.result_type(q.dtype, np.float32)
    q = np.ascontiguousarray(q, dtype=dtype)
    k = np.ascontiguousarray(k, dtype=dtype)
    v = None if v is None else np.ascontiguousarray(v, dtype=dtype)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        mask = np.broadcast_to(mask, (mask.shape[0] if mask.ndim == 3 else 1, q.shape[1], k.shape[1]))
    mask, has_mask = mask_arg(mask)
    return q, k, v, mask, has_mask, dtype.type(scale)


def flash_forward(q, k, v, mask, scale, causal, causal_offset, block_q, block_k):
    """``(out (B, Lq, dv), lse (B, Lq))``; see the module docstring."""
    q, k, v, mask, has_mask, scale = _prepare(q, k, v, mask, scale)
    with single_threaded_blas():
        return _flash_forward(q, k, v, mask, has_mask, scale, bool(causal), int(causal_offset),
                              int(block_q), int(block_k), True)


def log_sum_exp(q, k, mask, scale, causal, causal_offset, block_q, block_k):
    """Row log-sum-exp of the masked scores, ``(B, Lq)``, without touching values."""
    q, k, _, mask, has_mask, scale = _prepare(q, k, None, mask, scale)
    dummy_v = np.zeros((q.shape[0], k.shape[1], 1), q.dtype)
    with single_threaded_blas():
        return _flash_forward(q, k, dummy_v, mask, has_mask, scale, bool(causal), int(causal_offset),
                              int(block_q), int(block_k), False)[1]


def attention_weights(q, k, mask, scale, causal, causal_offset, block_q, block_k):
    """Weights recomputed block by block from the log-sum-exp: ``w = exp(s − lse)``."""
    lse = log_sum_exp(q, k, mask, scale, causal, causal_offset, block_q, block_k)
    q, k, _, mask, has_mask, scale = _prepare(q, k, None, mask, scale)
    with single_threaded_blas():
        return _weights_from_lse(q, k, lse, mask, has_mask, scale, bool(causal), int(causal_offset), int(block_q))
