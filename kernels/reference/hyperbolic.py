"""Hyperbolic (Poincaré-ball) attention, the NumPy definition.

``W_ij = softmax_j(−d_c(q_i, k_j)/T)`` over allowed keys, with
``d_c(x, y) = (1/√c)·arcosh(1 + 2c‖x − y‖²/((1 − c‖x‖²)(1 − c‖y‖²)))``, after projecting
``q, k, v`` into the ball ``‖x‖ ≤ (1 − eps)/√c`` (``eps`` = 1e-5 for float32 and float64,
as :func:`kernels.geometry.numerics.eps`; a float64 point at margin ``e`` is known only to
``ε/e`` in hyperbolic distance, so a smaller margin makes boundary inputs ill-conditioned). Aggregations of the (projected) values:

* ``"einstein"`` — the weighted Einstein midpoint, through the Klein model:
  ``x_K = 2v/(1 + c‖v‖²)``, ``γ = 1/√(1 − c‖x_K‖²)``, ``m_K = Σ_j W_ij γ_j x_K,j / Σ_j W_ij γ_j``,
  ``m = m_K/(1 + √(1 − c‖m_K‖²))``. Evaluated with the exact identities ``γ x_K = λ v`` and
  ``γ = λ − 1`` (``λ = 2/(1 − c‖v‖²)``), so that near-boundary values do not lose all precision
  to ``1 − c‖x_K‖²`` (which is ``((1 − c‖v‖²)/(1 + c‖v‖²))²``, ~1e-10 at the float32 margin).
  Both sums are one matrix product ``W·[λ v, λ − 1]``, accumulated in float64 (the map back
  from the Klein model is ill-conditioned near the boundary).
* ``"tangent"`` — mean in the tangent space at the origin: ``exp_0(Σ_j W_ij log_0(v_j))``
  (again one matrix product).

A row with no allowed key has weights 0 and output 0 (the origin). The geometry is
:mod:`kernels.geometry.stereographic` at ``κ = −c``.
"""
from __future__ import annotations

import numpy as np

from kernels.geometry import lorentz as _L
from kernels.geometry import stereographic as _K
from kernels.geometry.numerics import eps, sqnorm
from kernels.reference.softmax import masked_softmax

AGGREGATIONS = ("einstein", "tangent")


def project(x, c, e=None):
    """Rescale rows longer than ``(1 − eps)/√c`` to that norm (finite inputs stay finite)."""
    return _K.project(x, -c, e)


def one_minus(x, c, e=None):
    """``max(1 − c‖x‖², eps)`` with keepdims."""
    return _K.conformal_den(x, -c, e)


def pairwise_distance(x, y, c):
    """``d_c(x_i, y_j)``: ``(B, n, d), (B, m, d) → (B, n, m)`` for points inside the ball.

    ``‖x_i − y_j‖²`` from the differences themselves (no cancellation), in row chunks.
    """
    return _K.pairwise_distance(x, y, -c)


def lorentz_pairwise_distance(x, y, c):
    """Hyperboloid distances ``arcosh(−c⟨x_i, y_j⟩_L)/√c``: ``(B, n, d+1), (B, m, d+1) → (B, n, m)``
    (time coordinates recomputed; :func:`kernels.geometry.lorentz.pairwise_distance`)."""
    return _L.pairwise_distance(x, y, c)


def logits(q, k, c, temperature):
    """``−d_c(π q_i, π k_j)/T``: ``(B, Lq, d), (B, Lk, d) → (B, Lq, Lk)``."""
    d = pairwise_distance(project(q, c), project(k, c), c)
    return -d / q.dtype.type(temperature)


def weights(q, k, c, temperature, mask=None):
    """``W = softmax(−d_c(π q_i, π k_j)/T)`` over allowed keys: ``→ (B, Lq, Lk)``."""
    return masked_softmax(logits(q, k, c, temperature), None if mask is None else np.asarray(mask, bool))


def partial(q, k, v, c, temperature, aggregation="einstein", mask=None, block=2048):
    """One key shard's ``(r (B, Lq, m), lse (B, Lq))``, float64: ``r = Σ_j W_ij u_j`` with the
    shard's own softmax ``W`` and the aggregation's values ``u`` (:data:`VALUES`), ``lse`` the
    log-sum-exp of its logits (−∞ where a row has no allowed key). Merged over shards by their lse
    (``r`` is linear in the weights), ``FINISH[aggregation](r)`` is the attention over all keys.
    Keys by ``block`` at a time (memory ``O(Lq·block)``)."""
    from kernels.reference.lse_merge import blocked_partial

    return blocked_partial(lambda j0, j1: logits(q, k[:, j0:j1], c, temperature), VALUES[aggregation](v, c),
                           mask, block)


def einstein_values(v, c):
    """``[λ v, λ − 1]`` of the projected values, in float64: ``(B, Lk, dv) → (B, Lk, dv + 1)``.

    float64 whatever the input: the Klein → Poincaré map is ill-conditioned near the boundary
    (``1 − c‖m_K‖²`` is ~1e-10 at the float32 margin), so the sums are kept in float64.
    """
    vp = project(v, c).astype(np.float64)
    return np.concatenate(_K.klein_terms(vp, -c, eps(v.dtype)), axis=-1)


def einstein_finish(r, c, dtype=None):
    """``m_K = r[:, :, :dv]/r[:, :, dv]`` back to the Poincaré ball (rows with ``r_dv = 0`` → 0),
    in float64, projected with the margin of ``dtype`` and returned as ``dtype``."""
    dtype = np.dtype(r.dtype if dtype is None else dtype)
    r = r.astype(np.float64)  # a method, not np.asarray: CuPy arrays stay on the GPU
    return _K.midpoint_finish(r[..., :-1], r[..., -1:], -c, eps(dtype)).astype(dtype)


def tangent_values(v, c):
    """``log_0(π v) = artanh(√c‖v‖)·v/(√c‖v‖)`` (float64)."""
    return _K.logmap0(project(v, c).astype(np.float64), -c, eps(v.dtype))


def tangent_finish(r, c, dtype=None):
    """``exp_0(r) = tanh(√c‖r‖)·r/(√c‖r‖)``, projected with the margin of ``dtype``."""
    dtype = np.dtype(r.dtype if dtype is None else dtype)
    return _K.expmap0(r.astype(np.float64), -c, eps(dtype)).astype(dtype)


VALUES = {"einstein": einstein_values, "tangent": tangent_values}
FINISH = {"einstein": einstein_finish, "tangent": tangent_finish}


def attention(q, k, v, c, temperature, aggregation="einstein", mask=None):
    """Hyperbolic attention ``(B, Lq, d), (B, Lk, d), (B, Lk, dv) → (B, Lq, dv)`` (see module doc)."""
    w = weights(q, k, c, temperature, mask)
    return FINISH[aggregation](np.matmul(w, VALUES[aggregation](v, c)), c, q.dtype)


__all__ = ["AGGREGATIONS", "VALUES", "FINISH", "eps", "sqnorm", "project", "one_minus", "pairwise_distance",
           "lorentz_pairwise_distance", "logits", "weights", "partial", "einstein_values", "einstein_finish", "tangent_values",
           "tangent_finish", "attention"]
