"""Tiled exact attention with an online softmax (FlashAttention's forward), in NumPy.

For each key block ``J``: ``m' = max(m, max_J s)``, ``ℓ' = e^{m−m'} ℓ + Σ_J e^{s−m'}``,
``O' = e^{m−m'} O + Σ_J e^{s−m'} v``; finally ``O /= ℓ`` and ``lse = m + ln ℓ``.
Extra memory ``O(Lq · block)`` instead of ``O(Lq · Lk)``.
"""
from __future__ import annotations

import numpy as np

from kernels.reference.softmax import causal_allowed


def flash_attention(q, k, v, mask=None, scale=None, causal=False, causal_offset=0, block_size=128):
    """Return ``(out (B, Lq, dv), lse (B, Lq))``; fully masked rows give 0 and ``-inf``."""
    B, lq, d = q.shape
    lk, dv = k.shape[1], v.shape[2]
    scale = 1.0 / np.sqrt(d) if scale is None else scale
    m = np.full((B, lq, 1), -np.inf, dtype=q.dtype)
    ell = np.zeros((B, lq, 1), dtype=q.dtype)
    acc = np.zeros((B, lq, dv), dtype=q.dtype)
    qs = q * np.asarray(scale, dtype=q.dtype)
    for j0 in range(0, lk, block_size):
        j1 = min(lk, j0 + block_size)
        s = np.matmul(qs, np.swapaxes(k[:, j0:j1], 1, 2))
        allowed = np.ones((1, lq, j1 - j0), dtype=bool)
        if mask is not None:
            allowed = allowed & np.asarray(mask)[..., j0:j1]
        if causal:
            allowed = allowed & causal_allowed(lq, lk, causal_offset)[:, j0:j1]
        s = np.where(allowed, s, -np.inf)
        m_new = np.maximum(m, s.max(axis=-1, keepdims=True))
        finite = np.isfinite(m_new)
        shift = np.where(finite, m_new, 0.0)
        alpha = np.where(np.isfinite(m), np.exp(m - shift), 0.0)
        p = np.exp(s - shift)  # exp(-inf) = 0 for masked keys
        ell = alpha * ell + p.sum(axis=-1, keepdims=True)
        acc = alpha * acc + np.matmul(p, v[:, j0:j1])
        m = m_new
    out = np.divide(acc, ell, out=np.zeros_like(acc), where=ell > 0)
    with np.errstate(divide="ignore"):
        lse = np.where(ell > 0, m + np.log(np.where(ell > 0, ell, 1.0)), -np.inf)[..., 0]
    return out, lse
