"""Tiled exact attention (FlashAttention forward) with optional log-sum-exp output."""
from __future__ import annotations

import math

from kernels.capabilities import declare
from kernels.dispatch import resolve_backend
from kernels.gpu.flash import WIDE_HEAD_DIM
from kernels.reference import flash as _ref

#: What the kernel serves on each backend (:mod:`kernels.capabilities`); the CuPy kernel is
#: ``kernels/gpu/flash_tiled.cu`` (float32; heads wider than 128 read by chunks, up to WIDE_HEAD_DIM).
FLASH = declare("flash", masks=True, causal=True, cupy=None,
                cupy_limits={"dtypes": ("float32",), "max_head_dim": WIDE_HEAD_DIM})


def flash_attention(q, k, v, *, mask=None, scale=None, causal=False, causal_offset=0,
                    block_size=128, query_block_size=512, backend="auto"):
    """Exact attention by key blocks with an online softmax; returns ``(out, lse)``.

    ``out (B, Lq, dv)`` equals dense masked attention; ``lse (B, Lq)`` is
    ``log Σ_j exp(scale · q·k_j)`` over allowed keys (``-inf`` for a fully masked row,
    whose output is 0). Extra memory ``O(query_block_size · block_size)`` per thread.
    """
    be = resolve_backend(backend, (q, k, v), FLASH, mask=mask, causal=causal)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    if be == "numpy":
        return _ref.flash_attention(q, k, v, mask, scale, causal, causal_offset, block_size)
    if be == "cupy":
        from kernels.gpu.flash import flash_cupy

        return flash_cupy(q, k, v, mask, scale, causal, causal_offset)
    from kernels.numba import flash as _nb

    return _nb.flash_forward(q, k, v, mask, scale, causal, causal_offset, query_block_size, block_size)


def flash_weights(q, k, *, mask=None, scale=None, causal=False, causal_offset=0,
                  block_size=128, query_block_size=512, backend="auto"):
    """Attention weights recomputed block by block from the log-sum-exp, ``(B, Lq, Lk)``."""
    be = resolve_backend(backend, (q, k), FLASH, mask=mask, causal=causal)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    if be == "numpy":
        from kernels.reference.dense import attention_weights

        return attention_weights(q, k, mask, scale, causal, causal_offset)
    if be == "cupy":
        from kernels.gpu.flash import weights_cupy

        return weights_cupy(q, k, mask, scale, causal, causal_offset)
    from kernels.numba import flash as _nb

    return _nb.attention_weights(q, k, mask, scale, causal, causal_offset, query_block_size, block_size)
