"""Lorentz cascade heads on the GPU flash bodies (their Lorentz-distance and Busemann scores, ``scores.cuh``).

Per head at curvature ``−c``, one launch computes, by tiles with the online softmax,
``S_i = Σ_j softmax_j(s_ij) x_j`` with ``x_j = exp_0^c(v_j)`` on the hyperboloid (time first,
``dv + 1`` columns): the sums :func:`kernels.reference.lorentz.cascade_attention` returns (dense
form, ``top_k = 0``). The scores come from the tangent chart at the origin, as in the reference:
``"distance"`` ``−d_c(exp_0 q_i, exp_0 k_j)/T`` by the hyperbolic law of cosines in the log domain
(the body sums ``δ = ‖û_i − ŵ_j‖²`` over the unit directions, no cancellation; ``a = √c‖q‖`` and
``ln sinh a`` per row), ``"busemann"`` ``−|B(k_j) − B(q_i)|/T`` (per-row Busemann values). The
per-row terms and the values come from :mod:`kernels.geometry.lorentz` (``O((Lq + Lk)·d)`` against
the kernel's ``O(Lq·Lk·d)``), written with NumPy functions that a CuPy array dispatches to CuPy, so
they run where the arrays are.

The kernel accumulates in float32, and float32 hyperboloid coordinates stop being points on the
hyperboloid far from the origin: ``x_0² − ‖x_s‖² = 1/c`` is what the caller's centroid reads back,
and rounding ``x`` (``~e^a``, ``a = √c‖v‖``) to float32 moves it by ``~1e-7·e^{2a}/c``. So values are
refused past :data:`MAX_REACH` (``a = 4``: at most ``~3e-4`` relative error in the centroid's
Minkowski norm, where the weights sit on one far value; unit-norm embeddings at ``c ≤ 2`` reach
``a ≤ 1.42``); the float64 Numba kernel serves them.
"""
from __future__ import annotations

import math

import numpy as np

from kernels.capabilities import BackendError
from kernels.geometry import lorentz as _L
from kernels.gpu.flash import scored_partial

__all__ = ["MAX_REACH", "cascade_cupy", "cascade_opencl", "head_inputs"]

#: The largest ``√c‖v‖`` of a value the float32 heads take (see the module doc).
MAX_REACH = 4.0


def head_inputs(q, k, v, c: float, score: str):
    """The kernel's inputs for the head at curvature ``c``: ``(q rows, k rows, values, qden, kden)``
    float32 (NumPy or CuPy, as the inputs). ``"distance"``: unit directions and ``(a, ln sinh a)`` per
    row; ``"busemann"``: one zero column and the Busemann values. BackendError for values past
    :data:`MAX_REACH`."""
    a, uh = _L.origin_chart(q, c)
    b, wh = _L.origin_chart(k, c)
    if score == "distance":
        rows = uh.astype(np.float32), wh.astype(np.float32)
        qden = np.stack([a, _L.log_sinh(a)], axis=-1).astype(np.float32)
        kden = np.stack([b, _L.log_sinh(b)], axis=-1).astype(np.float32)
    else:  # the score needs no dimension loop: one zero column
        rows = np.zeros_like(a[..., None], dtype=np.float32), np.zeros_like(b[..., None], dtype=np.float32)
        qden = _L.busemann_from_chart(a, uh, c).astype(np.float32)
        kden = _L.busemann_from_chart(b, wh, c).astype(np.float32)
    v2 = np.einsum("...i,...i->...", v, v, dtype=np.float64)
    reach = math.sqrt(c) * float(np.sqrt(v2.max())) if v2.size else 0.0
    if not reach <= MAX_REACH:
        raise BackendError(f"v: value vectors too long for the float32 GPU heads at curvature {c:g} (√c‖v‖ = "
                           f"{reach:.3g} > {MAX_REACH:g}: float32 hyperboloid coordinates lose the centroid's "
                           "Minkowski norm); rescale the values or use float64 inputs (the Numba kernel)")
    x = _L.expmap0(v.astype(np.float64), c).astype(np.float32)
    return rows[0], rows[1], x, qden, kden


def _cascade(api, q, k, v, curvatures, temperature, score, mask, kernel):
    sums = []
    for c in curvatures:
        c = float(c)
        qr, kr, x, qden, kden = head_inputs(q, k, v, c, score)
        scale = 1.0 / (math.sqrt(c) * temperature) if score == "distance" else 1.0 / temperature
        sums.append(scored_partial(api, "lorentz" if score == "distance" else "busemann", qr, kr, x, qden, kden,
                                   c, scale, mask, kernel)[0])
    return np.stack(sums).astype(np.float64)


def cascade_opencl(q, k, v, curvatures, temperature=1.0, score="distance", mask=None, kernel=None):
    """:func:`kernels.reference.lorentz.cascade_attention` (``top_k = 0``) with the GPU body run through
    OpenCL: NumPy ``(B, Lq, d), (B, Lk, d), (B, Lk, dv) → S (H, B, Lq, dv + 1)`` float64."""
    return _cascade("opencl", *(np.asarray(x) for x in (q, k, v)), curvatures, float(temperature), score, mask,
                    kernel)


def cascade_cupy(q, k, v, curvatures, temperature=1.0, score="distance", mask=None, kernel=None):
    """The same on CuPy arrays (CuPy in, CuPy out)."""
    import cupy as cp

    return _cascade("cuda", *(cp.asarray(x, dtype=cp.float32) for x in (q, k, v)), curvatures, float(temperature),
                    score, None if mask is None else cp.asarray(mask), kernel)
