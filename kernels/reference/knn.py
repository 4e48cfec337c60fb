"""Exact k nearest neighbours of a point set, the NumPy reference of :mod:`kernels.numba.knn`."""
from __future__ import annotations

import numpy as np

from kernels.reference.select import top_k


def knn(x, k: int, self_loops: bool = False):
    """``(idx (n, k) int64, d2 (n, k) float64)``: the ``k`` nearest points of every point by squared
    Euclidean distance from the differences (``scipy.spatial.distance.cdist``, row blocks), ties to
    the smaller index; the point itself excluded, or first (distance 0) with ``self_loops``."""
    from scipy.spatial.distance import cdist

    x = np.asarray(x, np.float64)
    n = x.shape[0]
    idx = np.empty((n, k), np.int64)
    d2 = np.empty((n, k))
    step = max(1, (1 << 22) // max(1, n))
    for i0 in range(0, n, step):
        i1 = min(n, i0 + step)
        block = cdist(x[i0:i1], x, "sqeuclidean")
        block[np.arange(i1 - i0), np.arange(i0, i1)] = -1.0 if self_loops else np.inf
        idx[i0:i1], d2[i0:i1] = top_k(block, k, largest=False)
    np.maximum(d2, 0.0, out=d2)  # the point itself: −1 ranks it first, its distance is 0
    return idx, d2
