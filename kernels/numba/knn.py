"""Numba exact k-nearest neighbours of a point set, fused: the one kNN kernel (the graphs of
:func:`workbench.graph.knn_graph` and :func:`workbench.diffusion.knn_affinity`).

Parallel over blocks of ``bq`` query points. Per block one GEMM ``G = X_I Xᵀ`` in the input dtype
(BLAS, cache-sized tile; nothing of size ``n × n`` is held), then per point ``i``:

1. estimates ``ê_j = ‖x_i‖² + ‖x_j‖² − 2G_ij`` (norms exact in float64) and the ``k``-th smallest
   ``ê_(k)`` by insertion into a sorted ``k``-list (one pass);
2. candidates ``{j ≠ i : ê_j ≤ ê_(k) + δ_i}`` with ``δ_i = 4γ_d‖x_i‖·max_j‖x_j‖`` (+ a float64
   slack), ``γ_d = d·u/(1 − d·u)`` the dot-product rounding bound of the dtype: every true
   neighbour is a candidate, since ``|ê_j − e_j| ≤ 2γ_d‖x_i‖‖x_j‖``;
3. exact float64 squared distances ``Σ_t (x_it − x_jt)²`` of the candidates (about ``k`` of them)
   and the ``k`` smallest by (distance, index).

So the result is the exact kNN (ties to the smaller index) — the same as the NumPy reference — at
the cost of one float32 GEMM where the reference forms exact differences. With ``self_loops`` the
point is its own first neighbour (distance 0) and the ``k − 1`` others follow.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels.numba._common import single_threaded_blas
from kernels.numba.select import insert_sorted as _insert


@njit(parallel=True, cache=True)
def _knn(x, sq, norms, k_out, self_loops, gamma, bq):
    n, d = x.shape
    out_idx = np.empty((n, k_out), np.int64)
    out_d2 = np.empty((n, k_out), np.float64)
    first = 1 if self_loops else 0
    k = k_out - first  # neighbours other than the point itself
    xt = np.ascontiguousarray(x.T)
    nmax = 0.0
    for j in range(n):
        nmax = max(nmax, norms[j])
    nb = (n + bq - 1) // bq
    for blk in prange(nb):
        i0 = blk * bq
        i1 = min(n, i0 + bq)
        g = np.dot(x[i0:i1], xt)  # (nq, n) in the input dtype
        est_v = np.empty(max(k, 1), np.float64)
        est_i = np.empty(max(k, 1), np.int64)
        est = np.empty(n, np.float64)
        cand = np.empty(n, np.int64)
        best_v = np.empty(max(k, 1), np.float64)
        best_i = np.empty(max(k, 1), np.int64)
        for r in range(i1 - i0):
            i = i0 + r
            if self_loops:
                out_idx[i, 0] = i
                out_d2[i, 0] = 0.0
            if k == 0:
                continue
            row = g[r]
            sqi = sq[i]
            for j in range(n):  # vectorised
                est[j] = sqi + sq[j] - 2.0 * np.float64(row[j])
            est[i] = np.inf
            m = 0
            worst = np.inf
            for j in range(n):
                if est[j] < worst or m < k:
                    m = _insert(est_v, est_i, m, est[j], j)
                    if m == k:
                        worst = est_v[k - 1]
            delta = 4.0 * gamma * norms[i] * nmax + 1e-12 * (sqi + nmax * nmax)
            thr = est_v[k - 1] + delta
            nc = 0
            for j in range(n):
                if est[j] <= thr:
                    cand[nc] = j
                    nc += 1
            mb = 0
            for c in range(nc):
                j = cand[c]
                acc = 0.0
                for t in range(d):
                    diff = np.float64(x[i, t]) - np.float64(x[j, t])
                    acc += diff * diff
                mb = _insert(best_v, best_i, mb, acc, j)
            for c in range(k):
                out_idx[i, first + c] = best_i[c]
                out_d2[i, first + c] = best_v[c]
    return out_idx, out_d2


def knn(x, k: int, self_loops: bool = False, block: int = 128):
    """``(idx (n, k) int64, d2 (n, k) float64)``: the ``k`` nearest points of every point (itself first
    with ``self_loops``, else only the others), by exact squared Euclidean distance, ties to the
    smaller index (see the module docstring). ``block`` queries per GEMM (memory ``block·n`` per thread)."""
    x = np.ascontiguousarray(x, dtype=np.result_type(x.dtype, np.float32))
    if not x.flags.writeable:
        x = x.copy()
    x64 = x.astype(np.float64)
    sq = np.einsum("nd,nd->n", x64, x64)
    norms = np.sqrt(sq)
    u = float(np.finfo(x.dtype).eps) / 2
    d = x.shape[1]
    gamma = d * u / (1 - d * u)
    with single_threaded_blas():
        return _knn(x, sq, norms, int(k), bool(self_loops), gamma, int(block))
