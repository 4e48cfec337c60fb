"""Exact k nearest neighbours on the GPU, by CuPy array expressions: the scheme of :mod:`kernels.numba.knn`.

Per block of query points: one GEMM ``G = X_I Xᵀ`` in the input dtype (cuBLAS), estimates
``ê_ij = ‖x_i‖² + ‖x_j‖² − 2G_ij`` (norms in float64), the ``k``-th smallest estimate ``ê_(k)`` by
``partition``, the candidates ``ê_ij ≤ ê_(k) + δ_i`` with the dot product's rounding bound
``δ_i = 4γ_d‖x_i‖·max_j‖x_j‖`` (+ a float64 slack; ``γ_d = d·u/(1 − d·u)``), so every true neighbour
is a candidate; then exact float64 squared distances ``Σ_t (x_it − x_jt)²`` of the candidates and the
``k`` smallest by (distance, index), from a stable sort of the candidates ordered by index. So the
result is the exact kNN with ties to the smaller index, as the reference's and the Numba kernel's.

Written with NumPy functions on the array's own module (CuPy for CuPy arrays), so the same code runs
on NumPy arrays: the tests check it against the reference without a GPU. Memory per block:
``block × n`` estimates and ``rows × C × d`` differences (``C`` ≈ ``k`` candidates; more where many
estimates tie), each kept under :data:`BLOCK_ELEMENTS` (one row at least).
"""
from __future__ import annotations

import numpy as np

from kernels.dispatch import array_module

#: Elements of the largest work array of one block (the estimates, or the candidates' differences).
BLOCK_ELEMENTS = 1 << 25

__all__ = ["BLOCK_ELEMENTS", "knn"]


def knn(x, k: int, self_loops: bool = False):
    """``(idx (n, k) int64, d2 (n, k) float64)`` of ``x (n, d)`` on ``x``'s array module: the ``k`` nearest
    points by exact squared Euclidean distance, ties to the smaller index; the point itself excluded,
    or first (distance 0) with ``self_loops`` (``1 ≤ k ≤ n − 1``, or ``≤ n``: the caller checks)."""
    xp = array_module(x)
    x = xp.ascontiguousarray(x, dtype=np.result_type(x.dtype, np.float32))
    n, d = x.shape
    x64 = x.astype(np.float64)
    sq = np.einsum("nd,nd->n", x64, x64)
    norms = np.sqrt(sq)
    nmax = float(norms.max())
    u = float(np.finfo(x.dtype).eps) / 2
    gamma = d * u / (1 - d * u)
    first = 1 if self_loops else 0
    kk = int(k) - first  # neighbours other than the point itself
    idx = xp.empty((n, int(k)), np.int64)
    d2 = xp.empty((n, int(k)), np.float64)
    if self_loops:
        idx[:, 0] = xp.arange(n)
        d2[:, 0] = 0.0
    block = max(1, min(n, BLOCK_ELEMENTS // n))
    for i0 in range(0, n if kk > 0 else 0, block):
        i1 = min(n, i0 + block)
        rows = xp.arange(i1 - i0)
        est = sq[i0:i1, None] + sq[None, :] - 2.0 * (x[i0:i1] @ x.T).astype(np.float64)
        est[rows, rows + i0] = np.inf  # never the point itself
        kth = np.partition(est, kk - 1, axis=1)[:, kk - 1]
        thr = kth + 4.0 * gamma * norms[i0:i1] * nmax + 1e-12 * (sq[i0:i1] + nmax * nmax)
        # the C smallest estimates of a row hold all its candidates (C = the most candidates of a row)
        c = max(kk, int((est <= thr[:, None]).sum(axis=1).max()))
        cand = np.argpartition(est, c - 1, axis=1)[:, :c] if c < n else xp.broadcast_to(xp.arange(n), (i1 - i0, n))
        cand = np.sort(cand, axis=1)  # by index: the stable sort below breaks distance ties by it
        is_cand = np.take_along_axis(est, cand, axis=1) <= thr[:, None]
        step = max(1, BLOCK_ELEMENTS // (c * d))  # rows whose candidates' differences fit (many ties: fewer)
        for r0 in range(0, i1 - i0, step):
            r1 = min(i1 - i0, r0 + step)
            diff = x64[i0 + r0:i0 + r1, None, :] - x64[cand[r0:r1]]
            exact = np.where(is_cand[r0:r1], np.einsum("bcd,bcd->bc", diff, diff), np.inf)
            order = np.argsort(exact, axis=1, kind="stable")[:, :kk]
            idx[i0 + r0:i0 + r1, first:] = np.take_along_axis(cand[r0:r1], order, axis=1)
            d2[i0 + r0:i0 + r1, first:] = np.take_along_axis(exact, order, axis=1)
    return idx, d2
