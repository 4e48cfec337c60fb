"""The hyperboloid (Lorentz) model ``H_c = {x ∈ R^{d+1} : ⟨x,x⟩_L = −1/c, x_0 > 0}``, time first, as pure
NumPy functions; and the tangent chart at its origin.

``⟨x,y⟩_L = −x_0 y_0 + Σ_{i≥1} x_i y_i``. Functions **recompute** the time coordinate from the
spatial part ``x_s = x_{1:}`` (``x_0 = √(1/c + ‖x_s‖²)``), so any ``(..., d+1)`` array is a point.

* ``d(x, y) = arcosh(−c⟨x,y⟩_L)/√c``, evaluated as ``arcosh(1 + δ)`` with
  ``δ = (c/2)(‖u‖² − (⟨u, s⟩/(x_0 + y_0))²)``, ``u = x_s − y_s``, ``s = x_s + y_s`` (the same
  number, ``δ = −c⟨x,y⟩_L − 1``, without the cancellation of ``x_0 y_0 − ⟨x_s, y_s⟩``);
* ``exp_0(v) = (cosh(√c‖v‖)/√c, sinh(√c‖v‖)·v/(√c‖v‖))``, ``log_0(x) = arsinh(√c‖x_s‖)·x_s/(√c‖x_s‖)``;
* Poincaré ↔ Lorentz: ``x = ((1 + c‖p‖²)/√c, 2p)/(1 − c‖p‖²)``, ``p = x_s/(1 + √c x_0)``;
* Lorentzian centroid (Law et al., 2019): ``s = Σ w_i x_i``, ``μ = s/√(c·|⟨s,s⟩_L|)``;
* Busemann function of a light-like ``ξ``: ``B_ξ(x) = ln(−√c⟨x,ξ⟩_L/ξ_0)/√c`` (0 at the origin);
* from the tangent chart at the origin (``a = √c‖u‖``, direction ``û``; hyperbolic law of cosines,
  all terms non-negative, in the log domain so nothing overflows): ``δ = ‖û − ŵ‖²``,
  ``X = 2 sinh²((a − b)/2) + sinh a · sinh b · δ/2``, ``d(exp_0 u, exp_0 w) = arcosh(1 + X)/√c``.

Arrays of one float dtype; ``c`` a number or an array broadcasting against ``(..., 1)``. Results
may be inf where a float format overflows (callers check); no argument checking. Imports nothing
from ``workbench``.
"""
from __future__ import annotations

import numpy as np

from kernels.geometry import stereographic as _K
from kernels.geometry.numerics import MIN_NORM, acosh1p, curvature, dot, eps, norm, pairwise_sq, sqnorm
from kernels.geometry.sphere import unit_directions

_LN2 = float(np.log(2.0))


def time(xs, c):
    """The time coordinate ``√(1/c + ‖x_s‖²)`` of spatial parts ``x_s``, keepdims (inf on overflow)."""
    with np.errstate(over="ignore"):
        return np.sqrt(1 / curvature(c, xs.dtype) + sqnorm(xs))


def assemble(t, xs):
    """``(t, x_s)``: the time coordinate first."""
    return np.concatenate([np.broadcast_to(t, xs.shape[:-1] + (1,)), xs], axis=-1)


def minkowski_dot(x, y):
    """``⟨x,y⟩_L`` of the coordinates as given, keepdims."""
    return dot(x[..., 1:], y[..., 1:]) - x[..., :1] * y[..., :1]


def project(x, c):
    """Onto the hyperboloid: keep the spatial part, recompute ``x_0``."""
    return assemble(time(x[..., 1:], c), x[..., 1:])


def _distance(u, s, x0, y0, c):
    proj = dot(u, s) / (x0 + y0)
    return acosh1p(np.maximum(c / 2 * (sqnorm(u) - proj * proj), 0)) / np.sqrt(c)


def distance(x, y, c):
    """``arcosh(−c⟨x,y⟩_L)/√c`` with keepdims (broadcast; time coordinates recomputed)."""
    c = curvature(c, x.dtype)
    xs, ys = x[..., 1:], y[..., 1:]
    return _distance(xs - ys, xs + ys, time(xs, c), time(ys, c), c)


def pairwise_distance(x, y, c):
    """All distances ``(..., n, d+1), (..., m, d+1) → (..., n, m)`` (an array ``c`` broadcasts against
    ``(..., n, m)``); the time coordinates are computed once per point."""
    c = curvature(c, x.dtype)
    xs, ys = x[..., 1:], y[..., 1:]
    x0 = time(xs, c)[..., :, None, :]  # (..., n, 1, 1)
    y0 = time(ys, c)[..., None, :, :]  # (..., 1, m, 1)
    u = xs[..., :, None, :] - ys[..., None, :, :]
    s = xs[..., :, None, :] + ys[..., None, :, :]
    return _distance(u, s, x0, y0, c[..., None] if np.ndim(c) else c)[..., 0]


def expmap0(v, c):
    """``exp_0(v)`` of spatial tangents ``(..., d) → (..., d+1)`` (inf where ``sinh`` overflows)."""
    c = curvature(c, v.dtype)
    sc = np.sqrt(c)
    n = np.maximum(norm(v), MIN_NORM)
    with np.errstate(over="ignore", invalid="ignore"):
        xs = (np.sinh(sc * n) / (sc * n)) * v
    return assemble(time(xs, c), xs)


def logmap0(x, c):
    """``log_0(x)``, the inverse of :func:`expmap0`: ``(..., d+1) → (..., d)``."""
    c = curvature(c, x.dtype)
    xs = x[..., 1:]
    sc = np.sqrt(c)
    n = np.maximum(norm(xs), MIN_NORM)
    return (np.arcsinh(sc * n) / (sc * n)) * xs


def busemann(x, xi, c):
    """``B_ξ(x) = ln(−√c⟨x,ξ⟩_L/ξ_0)/√c`` with keepdims, ``ξ`` light-like with ``ξ_0 > 0``.

    ``−⟨x,ξ⟩_L = x_0 − ⟨x_s, ξ_s⟩`` (``ξ_0 = 1``) is evaluated as ``(x_0² − ⟨x_s,ξ_s⟩²)/(x_0 + ⟨x_s,ξ_s⟩)``
    where ``x`` goes off towards ``ξ`` (there ``x_0 ≈ ⟨x_s, ξ_s⟩`` and the difference cancels).
    """
    c = curvature(c, x.dtype)
    xs = x[..., 1:]
    x0 = time(xs, c)
    p = dot(xs, xi[..., 1:] / xi[..., :1])
    with np.errstate(over="ignore"):
        num = 1 / c + (sqnorm(xs) - p * p)  # x_0² − p² = 1/c + ‖x_s‖² − p² ≥ 1/c (since ‖ξ_s‖ = 1)
    inner = np.where(p > 0, num / np.maximum(x0 + p, MIN_NORM), x0 - p)
    return np.log(np.maximum(np.sqrt(c) * inner, np.finfo(x.dtype).tiny)) / np.sqrt(c)


def from_poincare(p, c, e=None):
    """Poincaré ball → hyperboloid: ``x = ((1 + c‖p‖²)/√c, 2p)/(1 − c‖p‖²)`` (``p`` projected first)."""
    c = curvature(c, p.dtype)
    e = eps(p.dtype) if e is None else e
    p = _K.project(p, -c, e)
    xs = 2 * p / _K.conformal_den(p, -c, e)
    return assemble(time(xs, c), xs)


def to_poincare(x, c, e=None):
    """Hyperboloid → Poincaré ball: ``p = x_s/(1 + √c x_0)`` (time recomputed; result projected)."""
    c = curvature(c, x.dtype)
    xs = x[..., 1:]
    return _K.project(xs / (1 + np.sqrt(c) * time(xs, c)), -c, e)


def centroid(points, w, c):
    """Lorentzian centroid ``s/√(c·|⟨s,s⟩_L|)``, ``s = Σ w_i x_i``: ``(..., n, d+1), (..., n) → (..., d+1)``.

    Time coordinates are recomputed; ``c`` broadcasts against the result's ``(..., 1)``; all-zero
    weights give the origin ``(1/√c, 0, …)`` (inf/NaN where the weighted sum overflows).
    """
    c = curvature(c, points.dtype)
    full = project(points, c if np.ndim(c) == 0 else c[..., None, :])
    with np.errstate(over="ignore", invalid="ignore"):
        s = np.sum(w[..., None] * full, axis=-2)
        # −⟨s,s⟩_L = s_0² − ‖s_s‖² = (s_0 − ‖s_s‖)(s_0 + ‖s_s‖) ≥ 0 for a positive combination
        s0, ns = s[..., :1], norm(s[..., 1:])
        scale = np.sqrt(c * np.maximum((s0 - ns) * (s0 + ns), 0))
    ok = scale > 0
    ms = np.where(ok, s[..., 1:] / np.where(ok, scale, 1), 0)
    return assemble(time(ms, c), ms)


# --- the tangent chart at the origin ---------------------------------------------------------------

def log_sinh(x):
    """``ln sinh x`` for ``x ≥ 0`` (``−inf`` at 0), without overflow."""
    with np.errstate(divide="ignore"):
        return x + np.log1p(-np.exp(-2.0 * x)) - _LN2


def origin_chart(u, c):
    """``(a = √c‖u‖, û)`` per vector of ``u (..., d)`` in float64 (``û = e_0`` for ``u = 0``)."""
    # astype, not asarray: a CuPy (or other duck) array stays in its library
    u = u.astype(np.float64) if hasattr(u, "astype") else np.asarray(u, dtype=np.float64)
    return np.sqrt(c) * np.sqrt(np.einsum("...i,...i->...", u, u)), unit_directions(u)


def distance_from_chart(a, uhat, b, what, c):
    """``(..., n), (..., n, d), (..., m), (..., m, d) → (..., n, m)``: ``d(exp_0 u_i, exp_0 w_j)`` at
    curvature ``−c`` from the charts of :func:`origin_chart` (float64, see the module doc)."""
    delta = pairwise_sq(uhat, what)
    ai, bj = a[..., :, None], b[..., None, :]
    with np.errstate(divide="ignore"):
        t1 = _LN2 + 2.0 * log_sinh(np.abs(ai - bj) / 2.0)
        t2 = log_sinh(ai) + log_sinh(bj) + np.log(delta / 2.0)
        ln_x = np.logaddexp(t1, t2)
    x = np.exp(np.minimum(ln_x, 30.0))
    d = np.where(ln_x < 30.0, acosh1p(x), ln_x + _LN2)
    return d / np.sqrt(c)


def busemann_from_chart(a, uhat, c):
    """Busemann function of ``exp_0(u)`` for the ideal point ``ξ = e_0 + e_1`` (time first):
    ``B(x) = ln(−⟨x, ξ⟩_L) = ln((cosh a − sinh a · û_0)/√c)`` in the log domain, ``(...) → (...)``."""
    cphi = np.clip(uhat[..., 0], -1.0, 1.0)
    with np.errstate(divide="ignore"):
        return np.logaddexp(-a + np.log1p(cphi), a + np.log1p(-cphi)) - _LN2 - 0.5 * np.log(c)


__all__ = ["time", "assemble", "minkowski_dot", "project", "distance", "pairwise_distance", "expmap0", "logmap0",
           "busemann", "from_poincare", "to_poincare", "centroid", "log_sinh", "origin_chart",
           "distance_from_chart", "busemann_from_chart"]
