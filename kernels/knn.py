"""Exact k nearest neighbours of a point set: the NumPy reference, the fused Numba kernel and the CuPy
form of its scheme (:mod:`kernels.gpu.knn`)."""
from __future__ import annotations

from kernels.capabilities import BackendError, declare
from kernels.dispatch import resolve_backend
from kernels.reference import knn as _ref

#: What the kernel serves on each backend (:mod:`kernels.capabilities`).
KNN = declare("knn", cupy=None)

__all__ = ["KNN", "knn"]


def knn(x, k: int, *, self_loops: bool = False, block: int = 128, backend="auto"):
    """The ``k`` nearest points of every point of ``x (n, d)``: ``(idx (n, k) int64, d2 (n, k) float64)``
    sorted by (squared Euclidean distance, index), so ties go to the smaller index.

    The point itself is excluded (``1 ≤ k ≤ n − 1``), or first with distance 0 with ``self_loops``
    (``1 ≤ k ≤ n``). Numba (:mod:`kernels.numba.knn`): a GEMM per ``block`` queries in the dtype of
    ``x`` (memory ``block·n`` per thread, never ``n × n``), a one-pass top-k of the estimates and an
    exact float64 re-ranking of the candidates within the GEMM's rounding bound; the reference
    forms exact differences; CuPy runs the Numba kernel's scheme as array expressions on the GPU. All
    give the exact neighbours and float64 distances.
    """
    be = resolve_backend(backend, (x,), KNN)
    n = x.shape[0]
    top = n if self_loops else n - 1
    if not 1 <= int(k) <= top:
        raise BackendError(f"k: expected 1 <= k <= {top} (n = {n}, self_loops={self_loops}), got {k!r}")
    if be == "cupy":  # CuPy in, CuPy out
        from kernels.gpu.knn import knn as _gpu

        return _gpu(x, int(k), bool(self_loops))
    if be == "numpy":
        return _ref.knn(x, int(k), bool(self_loops))
    from kernels.numba import knn as _nb

    return _nb.knn(x, int(k), bool(self_loops), int(block))
