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


__all__ = ["merge_partials"]
