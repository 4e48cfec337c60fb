"""Merging partial softmax attentions by their log-sum-exp: :func:`merge_partials` (two, exact; the
formula lives in :mod:`kernels.reference.lse_merge`) and :func:`merge_all` (a list, as a balanced tree)."""
from __future__ import annotations

import numpy as np

from kernels.reference.lse_merge import merge_partials


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
