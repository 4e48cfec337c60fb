"""Dense exact attention and its weights: the kernels behind ``scaled_dot_product``."""
from __future__ import annotations

import math

from kernels.capabilities import declare
from kernels.dispatch import resolve_backend
from kernels.reference import dense as _ref

#: What the kernel serves on each backend (:mod:`kernels.capabilities`).
DENSE = declare("dense", masks=True, causal=True)

#: Query / key tiles of the Numba kernel (tuned on a 2-core AVX-512 machine, see benchmarks/).
BLOCK_Q = 512
BLOCK_K = 128


def _scale(q, scale):
    return 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)


def attention(q, k, v, *, mask=None, scale=None, causal=False, causal_offset=0, backend="auto"):
    """``softmax(scale · Q Kᵀ, masked) V``: ``(B, Lq, d), (B, Lk, d), (B, Lk, dv) → (B, Lq, dv)``.

    ``mask`` is boolean, broadcastable to ``(B, Lq, Lk)``, True = may attend; ``causal`` lets
    query ``i`` see keys ``j ≤ i + causal_offset`` (SDPA's convention for offset 0). Fully
    masked rows give 0. The Numba kernel never materialises the ``Lq × Lk`` matrix.
    """
    be = resolve_backend(backend, (q, k, v), DENSE, mask=mask, causal=causal)
    scale = _scale(q, scale)
    if be == "numpy":
        return _ref.attention(q, k, v, mask, scale, causal, causal_offset)
    from kernels.numba import flash as _nb

    return _nb.flash_forward(q, k, v, mask, scale, causal, causal_offset, BLOCK_Q, BLOCK_K)[0]


def attention_weights(q, k, *, mask=None, scale=None, causal=False, causal_offset=0, backend="auto"):
    """``W = softmax(scale · Q Kᵀ, masked)``: ``(B, Lq, d), (B, Lk, d) → (B, Lq, Lk)``."""
    be = resolve_backend(backend, (q, k), DENSE, mask=mask, causal=causal)
    scale = _scale(q, scale)
    if be == "numpy":
        return _ref.attention_weights(q, k, mask, scale, causal, causal_offset)
    from kernels.numba import flash as _nb

    return _nb.attention_weights(q, k, mask, scale, causal, causal_offset, BLOCK_Q, BLOCK_K)
