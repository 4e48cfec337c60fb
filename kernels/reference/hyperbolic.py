"""Hyperbolic (Poincaré-ball) attention, the NumPy definition.

``W_ij = softmax_j(−d_c(q_i, k_j)/T)`` over allowed keys, with
``d_c(x, y) = (1/√c)·arcosh(1 + 2c‖x − y‖²/((1 − c‖x‖²)(1 − c‖y‖²)))``, after projecting
``q, k, v`` into the ball ``‖x‖ ≤ (1 − eps)/√c`` (``eps`` = 1e-5 for float32 and float64,
as :func:`workbench.geometry.poincare.eps`; a float64 point at margin ``e`` is known only to
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

A row with no allowed key has weights 0 and output 0 (the origin).
"""
from __future__ import annotations

import numpy as np

from kernels.reference.softmax import masked_softmax

#: Relative boundary margin by dtype (``√c‖x‖ ≤ 1 − eps``).
EPS = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-5}
MIN_NORM = 1e-15
AGGREGATIONS = ("einstein", "tangent")


def eps(dtype) -> float:
    return EPS.get(np.dtype(dtype), 1e-5)


def sqnorm(x):
    return np.einsum("...i,...i->...", x, x)[..., None]


def project(x, c, e=None):
    """Rescale rows longer than ``(1 − eps)/√c`` to that norm (finite inputs stay finite)."""
    e = eps(x.dtype) if e is None else e
    with np.errstate(over="ignore"):
        n2 = sqnorm(x)
    if np.isfinite(n2).all():
        n = np.sqrt(n2)
    else:  # huge entries: rescale before squaring
        s = np.max(np.abs(x), axis=-1, keepdims=True)
        s = np.where(s > 0, s, 1).astype(x.dtype)
        n = s * np.sqrt(sqnorm(x / s))
    maxnorm = x.dtype.type((1 - e) / np.sqrt(c))
    return x * np.where(n > maxnorm, maxnorm / np.maximum(n, MIN_NORM), 1).astype(x.dtype)


def one_minus(x, c, e=None):
    """``max(1 − c‖x‖², eps)`` with keepdims."""
    e = eps(x.dtype) if e is None else e
    return np.maximum(1 - x.dtype.type(c) * sqnorm(x), x.dtype.type(e))


def acosh1p(delta):
    """``arcosh(1 + δ) = log1p(δ + √δ·√(δ + 2))``, accurate for small ``δ``."""
    delta = np.maximum(delta, 0)
    return np.log1p(delta + np.sqrt(delta) * np.sqrt(delta + 2))


def pairwise_distance(x, y, c):
    """``d_c(x_i, y_j)``: ``(B, n, d), (B, m, d) → (B, n, m)`` for points inside the ball.

    ``‖x_i − y_j‖²`` from the differences themselves (no cancellation), in row chunks.
    """
    B, n, d = x.shape
    m = y.shape[1]
    out = np.empty((B, n, m), x.dtype)
    cx = x.dtype.type(c)
    ax = one_minus(x, c)  # (B, n, 1)
    ay = one_minus(y, c)[..., 0]  # (B, m)
    step = max(1, (1 << 21) // max(1, m * d))
    for i0 in range(0, n, step):
        i1 = min(n, i0 + step)
        diff = x[:, i0:i1, None, :] - y[:, None, :, :]
        diff2 = np.einsum("...i,...i->...", diff, diff)
        delta = 2 * cx * diff2 / (ax[:, i0:i1] * ay[:, None, :])
        out[:, i0:i1] = acosh1p(delta) / np.sqrt(cx)
    return out


def lorentz_pairwise_distance(x, y, c):
    """Hyperboloid distances ``arcosh(−c⟨x_i, y_j⟩_L)/√c``: ``(B, n, d+1), (B, m, d+1) → (B, n, m)``.

    The time coordinate (index 0) is recomputed from the spatial part; evaluated as
    ``arcosh(1 + δ)``, ``δ = (c/2)(‖u‖² − (⟨u, s⟩/(x_0 + y_0))²)``, ``u = x_s − y_s``, ``s = x_s + y_s``.
    """
    xs, ys = x[..., 1:], y[..., 1:]
    cx = x.dtype.type(c)
    x0 = np.sqrt(1 / cx + sqnorm(xs))  # (B, n, 1)
    y0 = np.sqrt(1 / cx + sqnorm(ys))[..., 0]  # (B, m)
    u = xs[:, :, None, :] - ys[:, None, :, :]
    s = xs[:, :, None, :] + ys[:, None, :, :]
    proj = np.einsum("...i,...i->...", u, s) / (x0 + y0[:, None, :])
    delta = np.maximum(cx / 2 * (np.einsum("...i,...i->...", u, u) - proj * proj), 0)
    return acosh1p(delta) / np.sqrt(cx)


def weights(q, k, c, temperature, mask=None):
    """``W = softmax(−d_c(π q_i, π k_j)/T)`` over allowed keys: ``→ (B, Lq, Lk)``."""
    qp, kp = project(q, c), project(k, c)
    d = pairwise_distance(qp, kp, c)
    return masked_softmax(-d / q.dtype.type(temperature), None if mask is None else np.asarray(mask, bool))


def einstein_values(v, c):
    """``[λ v, λ − 1]`` of the projected values, in float64: ``(B, Lk, dv) → (B, Lk, dv + 1)``.

    float64 whatever the input: the Klein → Poincaré map is ill-conditioned near the boundary
    (``1 − c‖m_K‖²`` is ~1e-10 at the float32 margin), so the sums are kept in float64.
    """
    vp = project(v, c).astype(np.float64)
    lam = 2 / one_minus(vp, c, eps(v.dtype))
    return np.concatenate([lam * vp, lam - 1], axis=-1)


def einstein_finish(r, c, dtype=None):
    """``m_K = r[:, :, :dv]/r[:, :, dv]`` back to the Poincaré ball (rows with ``r_dv = 0`` → 0),
    in float64, projected with the margin of ``dtype`` and returned as ``dtype``."""
    dtype = np.dtype(r.dtype if dtype is None else dtype)
    r = np.asarray(r, np.float64)
    num, den = r[..., :-1], r[..., -1:]
    ok = den > 0
    mk = np.where(ok, num / np.where(ok, den, 1), 0)
    root = np.sqrt(np.maximum(1 - c * sqnorm(mk), 0))
    return project(mk / (1 + root), c, eps(dtype)).astype(dtype)


def tangent_values(v, c):
    """``log_0(π v) = artanh(√c‖v‖)·v/(√c‖v‖)`` (float64)."""
    e = eps(v.dtype)
    vp = project(v, c).astype(np.float64)
    sc = np.sqrt(c)
    n = np.maximum(np.sqrt(sqnorm(vp)), MIN_NORM)
    return np.arctanh(np.minimum(sc * n, 1 - e)) * (vp / (sc * n))


def tangent_finish(r, c, dtype=None):
    """``exp_0(r) = tanh(√c‖r‖)·r/(√c‖r‖)``, projected with the margin of ``dtype``."""
    dtype = np.dtype(r.dtype if dtype is None else dtype)
    r = np.asarray(r, np.float64)
    sc = np.sqrt(c)
    n = np.maximum(np.sqrt(sqnorm(r)), MIN_NORM)
    return project(np.tanh(sc * n) * (r / (sc * n)), c, eps(dtype)).astype(dtype)


VALUES = {"einstein": einstein_values, "tangent": tangent_values}
FINISH = {"einstein": einstein_finish, "tangent": tangent_finish}


def attention(q, k, v, c, temperature, aggregation="einstein", mask=None):
    """Hyperbolic attention ``(B, Lq, d), (B, Lk, d), (B, Lk, dv) → (B, Lq, dv)`` (see module doc)."""
    w = weights(q, k, c, temperature, mask)
    return FINISH[aggregation](np.matmul(w, VALUES[aggregation](v, c)), c, q.dtype)
