"""Numba FlashAttention forward: the dot-product score on the tile driver.

Per query block ``Q_I`` and key block ``K_J`` the score is one GEMM, ``Sᵀ = K_J (log2e·s·Q_I)ᵀ``
(base 2, one key per row); masks, online softmax, ``O ← 2^{m_old − m} O + P V_J`` and the finish
are :func:`kernels.numba.tile_driver.attend`'s. Extra memory per thread ``O(bq · bk + bq · dv)``;
nothing of size ``Lq × Lk`` is ever allocated. Weights (for maps) come from the same score, row
block by row block (:func:`kernels.numba.tile_driver.weights`).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from kernels.numba._common import (
    _LOG2E,
    FASTMATH,
    single_threaded_blas,
)
from kernels.numba.tile_driver import register, run, run_weights


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _queries(qctx, b, i0, i1, bk):
    """The block's queries times ``log2(e)·scale``, transposed ``(d, nq)``: scores in base 2."""
    q, scale2 = qctx
    return (np.ascontiguousarray((q[b, i0:i1] * scale2).T),)


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _scores(qs, kctx, b, j0, j1, st):
    """``Sᵀ = K_J (log2e·s·Q_I)ᵀ``: one GEMM."""
    np.dot(kctx[0][b, j0:j1], qs[0], st)


DOT = register(_queries, _scores)


def _contiguous(q, k):
    dtype = np.result_type(q.dtype, np.float32)
    return np.ascontiguousarray(q, dtype=dtype), np.ascontiguousarray(k, dtype=dtype), dtype


def flash_forward(q, k, v, mask, scale, causal, causal_offset, block_q, block_k):
    """``(out (B, Lq, dv), lse (B, Lq))``; see the module docstring."""
    q, k, dtype = _contiguous(q, k)
    with single_threaded_blas():
        return run(DOT, (q, dtype.type(scale * _LOG2E)), (k,), np.ascontiguousarray(v, dtype=dtype), dtype,
                   mask=mask, causal=causal, offset=causal_offset, block_q=block_q, block_k=block_k)


def attention_weights(q, k, mask, scale, causal, causal_offset, block_q, block_k):
    """Softmax weights ``(B, Lq, Lk)``, row block by row block (the driver's :func:`weights`)."""
    q, k, dtype = _contiguous(q, k)
    with single_threaded_blas():
        # 64 query rows keep the score block small
        return run_weights(DOT, (q, dtype.type(scale * _LOG2E)), (k,), k.shape[1], dtype, mask=mask, causal=causal,
                           offset=causal_offset, block_q=min(block_q, 64))
