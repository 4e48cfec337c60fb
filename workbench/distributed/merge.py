"""Exact merge of partial softmax attentions by their log-sum-exp.

A key shard ``S`` gives, per query, ``O_S = Σ_{j∈S} e^{s_j − ℓ_S} v_j`` and ``ℓ_S = log Σ_{j∈S} e^{s_j}``.
Two shards merge exactly: ``ℓ = m + log(e^{ℓ_A − m} + e^{ℓ_B − m})`` with ``m = max(ℓ_A, ℓ_B)``, and
``O = (e^{ℓ_A − ℓ} O_A + e^{ℓ_B − ℓ} O_B)``. A shard where a query sees no key has ``ℓ = −∞`` and
weight 0; a query that sees no key anywhere keeps ``O = 0, ℓ = −∞``. The merge is associative, so
any reduction tree gives the same result up to rounding.
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


def merge_all(parts: list) -> tuple[np.ndarray, np.ndarray]:
    """Merge a list of partials pairwise (a balanced tree, as the distributed reduction does)."""
    parts = list(parts)
    if not parts:
        raise ValueError("parts: expected at least one partial")
    while len(parts) > 1:
        parts = [merge_partials(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    out, lse = parts[0]
    return np.asarray(out, np.float64), np.asarray(lse, np.float64)


__all__ = ["merge_partials", "merge_all"]
