"""Masked, max-shifted softmax with exact zeros and no NaN."""
from __future__ import annotations

import numpy as np


def masked_softmax(scores: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
    """``w_j = allowed_j · exp(s_j − m) / Σ_i allowed_i · exp(s_i − m)``, ``m = max_{allowed} s``.

    Disallowed entries get exactly 0; a row with nothing allowed is all zeros (never NaN,
    never uniform). Softmax is over the last axis.
    """
    s = np.asarray(scores)
    if allowed is not None:
        s = np.where(allowed, s, -np.inf)
    m = np.max(s, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(s - m)
    total = e.sum(axis=-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def causal_allowed(lq: int, lk: int, offset: int = 0) -> np.ndarray:
    """Boolean ``(lq, lk)``: query ``i`` may attend key ``j`` iff ``j ≤ i + offset`` (SDPA: offset 0)."""
    return np.arange(lk)[None, :] <= np.arange(lq)[:, None] + offset
