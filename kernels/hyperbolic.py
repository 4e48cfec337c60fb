"""Hyperbolic (Poincaré-ball) attention: ``softmax(−d_c(q, k)/T)`` weights, Einstein or tangent mean.

See :mod:`kernels.reference.hyperbolic` for the definition and :mod:`kernels.numba.hyperbolic`
for the fused kernel (distances from one GEMM per block, online softmax, aggregation by GEMM).
"""
from __future__ import annotations

import math

from kernels.capabilities import BackendError, declare
from kernels.dispatch import resolve_backend
from kernels.gpu.flash import WIDE_HEAD_DIM
from kernels.reference import hyperbolic as _ref

#: What the kernel serves on each backend (:mod:`kernels.capabilities`); the CuPy kernel is the
#: Poincaré score of ``kernels/gpu/flash_tiled.cu`` (float32, heads up to WIDE_HEAD_DIM: embeddings by chunks).
HYPERBOLIC = declare("hyperbolic", masks=True, cupy=None,
                     cupy_limits={"dtypes": ("float32",), "max_head_dim": WIDE_HEAD_DIM})

#: Aggregations with a closed form served here (the Fréchet mean and the Möbius sum, which need
#: the weights themselves, are computed by the mechanism from :func:`hyperbolic_weights`).
AGGREGATIONS = _ref.AGGREGATIONS

#: Query / key tiles of the Numba kernel.
BLOCK_Q = 256
BLOCK_K = 256


def _check(c, temperature, aggregation=None):
    if not (isinstance(c, (int, float)) or hasattr(c, "__float__")) or not math.isfinite(float(c)) or float(c) <= 0:
        raise BackendError(f"c: expected a curvature > 0, got {c!r}")
    if not math.isfinite(float(temperature)) or float(temperature) <= 0:
        raise BackendError(f"temperature: expected a temperature > 0, got {temperature!r}")
    if aggregation is not None and aggregation not in AGGREGATIONS:
        raise BackendError(f"aggregation: expected one of {AGGREGATIONS}, got {aggregation!r}")


def hyperbolic_attention(q, k, v, *, c=1.0, temperature=1.0, aggregation="einstein", mask=None,
                         backend="auto", block_q=BLOCK_Q, block_k=BLOCK_K):
    """``(B, Lq, d), (B, Lk, d), (B, Lk, dv) → (B, Lq, dv)``: weights ``softmax_j(−d_c(q_i, k_j)/T)``
    over allowed keys, values aggregated by the Einstein midpoint (``"einstein"``) or the tangent
    mean at the origin (``"tangent"``). ``q, k, v`` are projected into the ball of radius ``1/√c``
    first; a row with no allowed key gives the origin. ``mask`` is boolean, broadcastable to
    ``(B, Lq, Lk)``, True = may attend."""
    be = resolve_backend(backend, (q, k, v), HYPERBOLIC, mask=mask)
    _check(c, temperature, aggregation)
    c, temperature = float(c), float(temperature)
    if be == "numpy":
        return _ref.attention(q, k, v, c, temperature, aggregation, mask)
    if be == "cupy":
        from kernels.gpu.hyperbolic import hyperbolic_cupy

        return hyperbolic_cupy(q, k, v, c, temperature, aggregation, mask)
    from kernels.numba import hyperbolic as _nb

    return _nb.attention(q, k, v, mask, c, temperature, aggregation, int(block_q), int(block_k))


def hyperbolic_partial(q, k, v, *, c=1.0, temperature=1.0, aggregation="einstein", mask=None, backend="auto"):
    """One key shard's ``(r (B, Lq, m), lse (B, Lq))`` (float64; see
    :func:`kernels.reference.hyperbolic.partial`): merged over shards by the lse,
    ``hyperbolic_finish(r)`` is :func:`hyperbolic_attention` over all keys. NumPy reference on
    every backend (the fused kernel returns no log-sum-exp)."""
    be = resolve_backend(backend, (q, k, v), HYPERBOLIC, mask=mask)  # refuses what a call would refuse
    _check(c, temperature, aggregation)
    if be == "cupy":  # the reference on the host, CuPy in and out
        from kernels.gpu.host import via_host

        return via_host(_ref.partial, q, k, v, float(c), float(temperature), aggregation, mask)
    return _ref.partial(q, k, v, float(c), float(temperature), aggregation, mask)


def hyperbolic_finish(r, *, c=1.0, aggregation="einstein", dtype=None):
    """Merged partials ``r`` → the aggregated values in the ball (``dtype``, default that of ``r``)."""
    _check(c, 1.0, aggregation)
    return _ref.FINISH[aggregation](r, float(c), dtype)


def hyperbolic_weights(q, k, *, c=1.0, temperature=1.0, mask=None, backend="auto"):
    """``W = softmax_j(−d_c(π q_i, π k_j)/T)``: ``(B, Lq, d), (B, Lk, d) → (B, Lq, Lk)``."""
    be = resolve_backend(backend, (q, k), HYPERBOLIC, mask=mask)
    _check(c, temperature)
    c, temperature = float(c), float(temperature)
    if be == "numpy":
        return _ref.weights(q, k, c, temperature, mask)
    if be == "cupy":  # for inspection: the reference on the host, CuPy in and out
        from kernels.gpu.host import via_host

        return via_host(_ref.weights, q, k, c, temperature, mask)
    from kernels.numba import hyperbolic as _nb

    return _nb.weights(q, k, mask, c, temperature)
