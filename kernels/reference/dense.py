"""Dense scaled dot-product attention, the definition: ``softmax(s·QKᵀ + mask) V``."""
from __future__ import annotations

import numpy as np

from kernels.reference.softmax import causal_allowed, masked_softmax


def allowed_pattern(mask, lq: int, lk: int, causal: bool, causal_offset: int = 0):
    """Combine a boolean mask (broadcastable to ``(B, lq, lk)``) with the causal pattern."""
    allowed = None if mask is None else np.asarray(mask, dtype=bool)
    if causal:
        c = causal_allowed(lq, lk, causal_offset)
        allowed = c if allowed is None else (allowed & c)
    return allowed


def attention_weights(q, k, mask=None, scale=None, causal=False, causal_offset=0):
    """``W = softmax(scale · Q Kᵀ)`` over allowed keys; ``(B, Lq, d), (B, Lk, d) → (B, Lq, Lk)``."""
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * np.asarray(scale, dtype=q.dtype)
    return masked_softmax(s, allowed_pattern(mask, q.shape[-2], k.shape[-2], causal, causal_offset))


def attention(q, k, v, mask=None, scale=None, causal=False, causal_offset=0):
    """``O = W V`` with ``W`` from :func:`attention_weights`; ``→ (B, Lq, dv)``."""
    return np.matmul(attention_weights(q, k, mask, scale, causal, causal_offset), v)
