"""Hyperbolic (Poincaré-ball) attention on the GPU flash bodies (their Poincaré score).

The kernel computes, by tiles with the online softmax, ``r_i = Σ_j softmax_j(−d_c(q_i, k_j)/T) u_j``
and the log-sum-exp, from ``‖q − k‖²`` summed over the differences (no cancellation); the
projection into the ball, ``1 − c‖x‖²`` and the aggregation's value terms ``u`` (``[λv, λ − 1]`` for
the Einstein midpoint, ``log₀ v`` for the tangent mean) and the map back into the ball come from
:mod:`kernels.reference.hyperbolic` (``O((Lq + Lk)·d)``, against the kernel's ``O(Lq·Lk·d)``), run
where the arrays are (CuPy arrays: on the GPU), so that the float64 finish stays the reference's own. The kernel accumulates in
float32: results agree with the reference to float32 precision away from the ball's boundary.
"""
from __future__ import annotations

import numpy as np

from kernels.gpu.flash import poincare_partial
from kernels.reference import hyperbolic as _ref

__all__ = ["hyperbolic_cupy", "hyperbolic_opencl"]


def _prepare(q, k, v, c, aggregation):
    """The kernel's inputs: projected q, k (float32), their denominators, and the value terms (NumPy or
    CuPy arrays: the reference's functions serve both)."""
    qp, kp = _ref.project(q, c), _ref.project(k, c)
    qden = _ref.one_minus(qp.astype(np.float64), c)[..., 0]
    kden = _ref.one_minus(kp.astype(np.float64), c)[..., 0]
    u = _ref.VALUES[aggregation](v, c)
    return (qp.astype(np.float32), kp.astype(np.float32), u.astype(np.float32), qden.astype(np.float32),
            kden.astype(np.float32))


def hyperbolic_opencl(q, k, v, c=1.0, temperature=1.0, aggregation="einstein", mask=None):
    """:func:`kernels.hyperbolic.hyperbolic_attention` with the GPU body run through OpenCL (NumPy in, out)."""
    qp, kp, u, qden, kden = _prepare(np.asarray(q), np.asarray(k), np.asarray(v), c, aggregation)
    r, _ = poincare_partial("opencl", qp, kp, u, qden, kden, c, temperature, mask)
    return _ref.FINISH[aggregation](r.astype(np.float64), c, q.dtype)


def hyperbolic_cupy(q, k, v, c=1.0, temperature=1.0, aggregation="einstein", mask=None):
    """The same on CuPy arrays (CuPy in, CuPy out; float32). The host-side steps of the reference run on
    the GPU too: they are written with NumPy functions that CuPy arrays dispatch to CuPy."""
    import cupy as cp

    qp, kp, u, qden, kden = _prepare(*(cp.asarray(x, dtype=cp.float32) for x in (q, k, v)), c, aggregation)
    r, _ = poincare_partial("cuda", qp, kp, u, qden, kden, c, temperature, None if mask is None else cp.asarray(mask))
    return _ref.FINISH[aggregation](r, c, np.float32)
