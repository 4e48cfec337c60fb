"""Centroid optimal-transport attention for one key set (k-means centroids given).

See :mod:`kernels.reference.centroid_ot` for the definition. The work after k-means is a few
``O((Lq + Lk)·M·d)`` matrix products and a ``Lq × M`` Sinkhorn: BLAS-bound, so the NumPy
reference is the implementation on the CPU.
"""
from __future__ import annotations


from kernels.capabilities import declare
from kernels.checks import one_of, positive
from kernels.dispatch import resolve_backend
from kernels.reference import centroid_ot as _ref
from kernels.reference.centroid_ot import PLANS, SPREADS

#: What the kernel serves on each backend (:mod:`kernels.capabilities`).
CENTROID_OT = declare(
    "centroid_ot",
    numba="no Numba kernel: after k-means the work is a few (L x M) matrix products (BLAS) and an "
          "Lq x M Sinkhorn, served by the NumPy reference")

__all__ = ["CENTROID_OT", "PLANS", "SPREADS", "centroid_ot_attention", "centroid_ot_weights"]


def _check(scale, temperature, plan, spread):
    positive("scale", scale)
    positive("temperature", temperature)
    one_of("plan", plan, PLANS)
    one_of("spread", spread, SPREADS)


def centroid_ot_attention(q, k, v, centroids, labels, *, scale, temperature=1.0, plan="per_query",
                          spread="soft", max_iter=100, tol=1e-9, backend="auto"):
    """``q (Lq, d), k (Lk, d), v (Lk, dv)`` with ``centroids (M, d)``, ``labels (Lk,)`` → ``(Lq, dv)``
    in the dtype of ``v``: queries transported to the centroid measure, mass spread back to the keys."""
    resolve_backend(backend, (q, k, v), CENTROID_OT)
    _check(scale, temperature, plan, spread)
    return _ref.attention(q, k, v, centroids, labels, float(scale), float(temperature), plan, spread,
                          int(max_iter), float(tol)).astype(v.dtype)


def centroid_ot_weights(q, k, centroids, labels, *, scale, temperature=1.0, plan="per_query", spread="soft",
                        max_iter=100, tol=1e-9, backend="auto"):
    """The key weights ``(Lq, Lk)`` of :func:`centroid_ot_attention`, in the dtype of ``q``."""
    resolve_backend(backend, (q, k), CENTROID_OT)
    _check(scale, temperature, plan, spread)
    return _ref.weights(q, k, centroids, labels, float(scale), float(temperature), plan, spread,
                        int(max_iter), float(tol)).astype(q.dtype)
