"""Local–global (Longformer) attention as a dense mask: the definition.

Query at key position ``p`` attends key ``j`` iff ``|p − j| ≤ ⌊w/2⌋`` (the window) or
``j < g`` (global keys) or ``p < g`` (global queries see everything); with ``causal`` also
``j ≤ p``.
"""
from __future__ import annotations

import numpy as np


def local_global_mask(positions, num_keys: int, window: int, num_global: int, causal: bool = False):
    """Boolean ``(len(positions), num_keys)`` pattern."""
    p = np.asarray(positions)[:, None]
    j = np.arange(num_keys)[None, :]
    allowed = (np.abs(p - j) <= window // 2) | (j < num_global) | (p < num_global)
    if causal:
        allowed &= j <= p
    return allowed
