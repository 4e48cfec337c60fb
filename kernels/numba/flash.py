"""Numba FlashAttention forward: parallel over (batch, query block), BLAS for block products.

Per query block ``Q_I`` and key block ``K_J``: ``Sᵀ = K_J (log2e·s·Q_I)ᵀ`` (GEMM; scores in
base 2, one key per row so that every per-query update is a contiguous, vectorised loop), masked
entries set to :data:`MASKED`, online-softmax update of ``(m, ℓ)``, ``Pᵀ = 2^(Sᵀ − m)`` with a
vectorised exp2, ``O ← 2^{m_old − m} O + P V_J`` (GEMM). Extra memory per thread
``O(bq · bk + bq · dv)``; nothing of size ``Lq × Lk`` is ever allocated.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

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


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def _flash_forward(q, k, v, mask, has_mask, scale, causal, offset, bq, bk, need_out):
    B, lq, _ = q.shape
    lk = k.shape[1]
    dv = v.shape[2]
    out = np.zeros((B, lq, dv), q.dtype)
    lse = np.empty((B, lq), q.dtype)
    nqb = (lq + bq - 1) // bq
    per_batch_mask = mask.shape[0] > 1
    log2e = q.dtype.type(_LOG2E)
    for item in prange(B * nqb):
        b = item // nqb
        qb = item % nqb
        if causal:  # zigzag: cheap and expensive causal blocks alternate, so threads stay balanced
            qb = qb // 2 if qb % 2 == 0 else nqb - 1 - qb // 2
        i0 = qb * bq
        i1 = min(lq, i0 + bq)
        nq = i1 - i0
        mb = b if per_batch_mask else 0
        # scores in base 2: s2 = log2(e)·scale·q·k, so every exponential is a 2^x
        qt = np.ascontiguousarray((q[b, i0:i1] * (scale * log2e)).T)  # (d, nq)
        m = np.full(nq, MASKED, q.dtype)  # running max per query (base 2)
        m_new = np.empty(nq, q.dtype)
        ell = np.zeros(nq, q.dtype)
        alpha = np.empty(nq, q.dtype)
        acc = np.zeros((nq, dv), q.dtype)
        st_full = np.empty((bk, nq), q.dtype)  # scores transposed: one key per row, queries contiguous
        pt_full = np.empty((bk, nq), q.dtype)
        pv = np.empty((nq, dv), q.dtype)
        scratch = np.empty(nq, np.int32)
        jend = lk
        if causal:
            jend = max(0, min(lk, i1 + offset))
        for j0 in range(0, jend, bk):
            j1 = min(jend, j0 + bk)
            nk = j1 - j0
            if nk == bk:
                np.dot(k[b, j0:j1], qt, st_full)
                st = st_full
                pt = pt_full
            else:
                st = np.dot(k[b, j0:j1], qt)
                pt = np.empty((nk, nq), q.dtype)
            if has_mask:
                for c in range(nk):
                    for r in range(nq):
                        if not mask[mb, i0 + r, j0 + c]:
                            st[c, r] = MASKED
            if causal and j1 - 1 > i0 + offset:  # rows r with i0 + r + offset < j are masked
                for c in range(nk):
                    for r in range(max(0, min(nq, j0 + c - offset - i0))):
                        st[c, r] = MASKED
            online_softmax_block(st, pt, m, m_new, alpha, ell, scratch)
            if not need_out:
                continue
            np.dot(pt.T, v[b, j0:j1], pv)
            rescale_accumulate(acc, alpha, pv)
        ln2 = q.dtype.type(1.0 / _LOG2E)
        for r in range(nq):
            i = i0 + r
            if ell[r] > 0.0:
                lse[b, i] = (m[r] + np.log2(ell[r])) * ln2
                if need_out:
                    for c in range(dv):
                        out[b, i, c] = acc[r, c] / ell[r]
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


def query_block(batch: int, lq: int, block_q: int) -> int:
    """``block_q``, or smaller when that leaves fewer than two work items per thread."""
    want = 2 * numba.get_num_threads()
    if batch * -(-lq // block_q) >= want:
        return block_q
    per_batch = -(-want // batch)
    return max(16, min(block_q, -(-lq // per_batch)))


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
    block_q = query_block(q.shape[0], q.shape[1], block_q)
    with single_threaded_blas():
        return _flash_forward(q, k, v, mask, has_mask, scale, bool(causal), int(causal_offset),
                              int(block_q), int(block_k), True)


def log_sum_exp(q, k, mask, scale, causal, causal_offset, block_q, block_k):
    """Row log-sum-exp of the masked scores, ``(B, Lq)``, without touching values."""
    q, k, _, mask, has_mask, scale = _prepare(q, k, None, mask, scale)
    dummy_v = np.zeros((q.shape[0], k.shape[1], 1), q.dtype)
    block_q = query_block(q.shape[0], q.shape[1], block_q)
    with single_threaded_blas():
        return _flash_forward(q, k, dummy_v, mask, has_mask, scale, bool(causal), int(causal_offset),
                              int(block_q), int(block_k), False)[1]


def attention_weights(q, k, mask, scale, causal, causal_offset, block_q, block_k):
    """Weights recomputed block by block from the log-sum-exp: ``w = exp(s − lse)``."""
    lse = log_sum_exp(q, k, mask, scale, causal, causal_offset, block_q, block_k)
    q, k, _, mask, has_mask, scale = _prepare(q, k, None, mask, scale)
    with single_threaded_blas():
        # rows of weights are written straight to the output; 64 query rows keep the score tile small
        return _weights_from_lse(q, k, lse, mask, has_mask, scale, bool(causal), int(causal_offset),
                                 int(min(block_q, 64)))
