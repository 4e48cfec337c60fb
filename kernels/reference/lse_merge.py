"""Exact merge of two partial softmax attentions by their log-sum-exp (key shards, key chunks).

A key set ``S`` gives, per query, ``O_S = Σ_{j∈S} e^{s_j − ℓ_S} u_j`` and ``ℓ_S = log Σ_{j∈S} e^{s_j}``.
Two sets merge exactly: ``ℓ = m + log(e^{ℓ_A − m} + e^{ℓ_B − m})`` with ``m = max(ℓ_A, ℓ_B)`` and
``O = e^{ℓ_A − ℓ} O_A + e^{ℓ_B − ℓ} O_B``. A set where a query sees no key has ``ℓ = −∞`` and
weight 0; a query that sees no key anywhere keeps ``O = 0, ℓ = −∞``. ``lse`` may carry extra axes
(one per head): ``O`` has one more trailing axis than ``ℓ``. Associative, so any tree agrees.
"""
from __future__ import annotations

import numpy as np


def merge_partials(a: tuple, b: tuple) -> tuple[np.ndarray, np.ndarray]:
    """``(out (..., Lq, dv), lse (..., Lq))`` of two key shards → the same of their union (float64)."""
    oa, la = np.asarray(a[0], np.float64), np.asarray(a[1], np.float64)
    ob, lb = np.asarray(b[0], np.float64), np.asarray(b[1], np.float64)
    m = np.maximum(la, lb)
    finite = np.isfinite(m)
    safe = np.where(finite, m, 0.0)
    wa = np.where(np.isfinite(la), np.exp(la - safe), 0.0)
    wb = np.where(np.isfinite(lb), np.exp(lb - safe), 0.0)
    tot = wa + wb
    lse = np.where(finite, safe + np.log(np.where(tot > 0, tot, 1.0)), -np.inf)
    inv = np.divide(1.0, tot, out=np.zeros_like(tot), where=tot > 0)
    out = (wa * inv)[..., None] * oa + (wb * inv)[..., None] * ob
    return out, lse


def blocked_partial(scores, values, mask=None, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """``(out (B, Lq, m), lse (B, Lq))`` of ``softmax_j(s_ij)`` over the keys applied to ``values (B, Lk, m)``.

    ``scores(j0, j1)`` gives the logits of keys ``j0 … j1 − 1``, ``(B, Lq, j1 − j0)``; ``mask``
    (bool, broadcastable to ``(B, Lq, Lk)``) removes keys. Keys by ``block`` at a time (memory
    ``O(Lq·block)``), each block's softmax merged by :func:`merge_partials`; float64. A row with no
    allowed key gives ``out = 0``, ``lse = −∞``.
    """
    v = np.asarray(values, np.float64)
    m = None if mask is None else np.asarray(mask, bool)
    acc = None
    for j0 in range(0, v.shape[1], block):
        j1 = min(v.shape[1], j0 + block)
        s = np.asarray(scores(j0, j1), np.float64)
        if m is not None:
            s = np.where(m[..., j0:j1] if m.shape[-1] != 1 else m, s, -np.inf)
        top = s.max(axis=-1)
        safe = np.where(np.isfinite(top), top, 0.0)
        e = np.exp(s - safe[..., None])
        tot = e.sum(axis=-1)
        lse = np.where(tot > 0, safe + np.log(np.where(tot > 0, tot, 1.0)), -np.inf)
        part = (np.matmul(e, v[:, j0:j1]) / np.where(tot > 0, tot, 1.0)[..., None], lse)
        acc = part if acc is None else merge_partials(acc, part)
    if acc is None:  # no keys at all
        s = np.asarray(scores(0, 0))
        acc = (np.zeros(s.shape[:2] + (v.shape[-1],)), np.full(s.shape[:2], -np.inf))
    return acc


__all__ = ["merge_partials", "blocked_partial"]
