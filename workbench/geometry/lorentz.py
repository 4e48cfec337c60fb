"""The hyperboloid (Lorentz) model ``H_c = {x ∈ R^{d+1} : ⟨x,x⟩_L = −1/c, x_0 > 0}``, time first.

The maths is :mod:`kernels.geometry.lorentz`; this module checks the arguments.

``⟨x,y⟩_L = −x_0 y_0 + Σ_{i≥1} x_i y_i``. As upstream's ``project_hyperboloid`` does, every
function treats coordinate 0 as the time coordinate and **recomputes** it from the spatial part
``x_s = x_{1:}`` (``x_0 = √(1/c + ‖x_s‖²)``), so any ``(..., d+1)`` array is a valid point and
results lie exactly on the hyperboloid. Functions are vectorised over leading dimensions, keep
float32/float64 and never return NaN for finite inputs; ``c`` is a keyword curvature ``> 0``
(a number or an array broadcastable to the leading dimensions).

* ``d(x, y) = arcosh(−c⟨x,y⟩_L)/√c``, evaluated as ``arcosh(1 + δ)`` with
  ``δ = (c/2)(‖u‖² − (⟨u, s⟩/(x_0 + y_0))²)``, ``u = x_s − y_s``, ``s = x_s + y_s`` (the same
  number, ``δ = −c⟨x,y⟩_L − 1``, without the cancellation of ``x_0 y_0 − ⟨x_s, y_s⟩``);
* ``exp_0(v) = (cosh(√c‖v‖)/√c, sinh(√c‖v‖)·v/(√c‖v‖))`` and its exact inverse
  ``log_0(x) = arsinh(√c‖x_s‖)·x_s/(√c‖x_s‖)`` (for every ``c``; upstream's log omits ``1/√c``);
* Poincaré ↔ Lorentz: ``x = ((1 + c‖p‖²)/√c, 2p)/(1 − c‖p‖²)``, ``p = x_s/(1 + √c x_0)``;
* Lorentzian centroid (Law et al., *Lorentzian Distance Learning*, 2019):
  ``s = Σ w_i x_i``, ``μ = s/√(c·|⟨s,s⟩_L|)``;
* Busemann function of a light-like ``ξ`` (``⟨ξ,ξ⟩_L = 0``, ``ξ_0 > 0``), normalised so that
  it is 0 at the origin: ``B_ξ(x) = ln(−√c⟨x,ξ⟩_L/ξ_0)/√c``.
"""
from __future__ import annotations

import numpy as np

from kernels.geometry import lorentz as _L
from kernels.geometry.numerics import eps, norm, sqnorm
from workbench.errors import ConfigurationError, NumericalError, ShapeError
from workbench.geometry._checks import curvature, floats, pair, points_and_weights, same_dim


def _points(x, name="x"):
    a = floats(x, name)
    if a.shape[-1] < 2:
        raise ShapeError(f"{name}: expected hyperboloid points (..., d+1) with d >= 1 (time first), got shape {a.shape}")
    return a


def _finite_time(xs, c, name="x"):
    """Raise NumericalError unless the time coordinates ``√(1/c + ‖x_s‖²)`` of ``xs`` are finite."""
    if not np.isfinite(_L.time(xs, c)).all():
        raise NumericalError(f"{name}: spatial coordinates too large for {xs.dtype} (‖x_s‖² overflows); "
                             "rescale or use float64")


def _cpair(x, y, c):
    a, b = _points(x, "x"), _points(y, "y")
    a, b, dt = pair(a, b)
    cc = curvature(c, dt)
    for z in (a, b):
        _finite_time(z[..., 1:], cc)
    return a, b, cc


def minkowski_dot(x, y, keepdims=False):
    """``⟨x,y⟩_L = −x_0 y_0 + Σ_{i≥1} x_i y_i`` (coordinates as given, broadcast): ``→ (...)``."""
    a, b, _ = pair(x, y)
    same_dim(a, b, "y", what="last dimension")
    r = _L.minkowski_dot(a, b)
    return r if keepdims else r[..., 0]


def project(x, c=1.0):
    """Onto the hyperboloid: keep the spatial part, set ``x_0 = √(1/c + ‖x_{1:}‖²)``."""
    a = _points(x)
    cc = curvature(c, a.dtype)
    _finite_time(a[..., 1:], cc)
    return _L.project(a, cc)


def distance(x, y, c=1.0):
    """Geodesic distance ``arcosh(−c⟨x,y⟩_L)/√c`` (element-wise, broadcast): ``→ (...)``."""
    a, b, cc = _cpair(x, y, c)
    same_dim(a, b, "y", what="last dimension")
    return _L.distance(a, b, cc)[..., 0]


def pairwise_distance(x, y, c=1.0):
    """All distances: ``(..., n, d+1), (..., m, d+1) → (..., n, m)``."""
    a, b = _points(x, "x"), _points(y, "y")
    a, b, dt = pair(a, b, min_ndim=2)
    same_dim(a, b, "y", what="last dimension")
    cc = curvature(c, dt)
    cc = cc if np.ndim(cc) == 0 else cc[..., None]  # (..., 1, 1) against (..., n, m)
    for z in (a, b):
        _finite_time(z[..., 1:], cc)
    return _L.pairwise_distance(a, b, cc)


def exp_map0(v, c=1.0):
    """Exponential map at the origin ``(1/√c, 0, …)``: spatial tangent ``(..., d) → (..., d+1)``."""
    a = floats(v, "v")
    cc = curvature(c, a.dtype)
    out = _L.expmap0(a, cc)
    if not np.isfinite(out).all():
        top = float(np.max(np.sqrt(cc) * norm(a)))
        raise NumericalError(f"v: tangent vector too long for {a.dtype} (sinh(√c‖v‖) overflows at "
                             f"√c‖v‖ = {top:.4g}); use shorter vectors or float64")
    return out


def log_map0(x, c=1.0):
    """Logarithmic map at the origin, the inverse of :func:`exp_map0`: ``(..., d+1) → (..., d)``."""
    a = _points(x)
    return _L.logmap0(a, curvature(c, a.dtype))


def busemann(x, xi, c=1.0):
    """Busemann function ``B_ξ(x) = ln(−√c⟨x,ξ⟩_L/ξ_0)/√c`` of the ideal point ``ξ``: ``→ (...)``.

    ``ξ`` must be light-like (``⟨ξ,ξ⟩_L = 0`` up to rounding) and future-pointing (``ξ_0 > 0``);
    ``x`` is projected. ``B_ξ(origin) = 0``; ``B`` decreases towards ``ξ`` at unit speed.
    """
    a = _points(x)
    a, z, dt = pair(a, xi, "x", "xi")
    same_dim(a, z, "xi", what="last dimension")
    cc = curvature(c, dt)
    _finite_time(a[..., 1:], cc)
    z0 = z[..., :1]
    zs2 = sqnorm(z[..., 1:])
    if (z0 <= 0).any() or (np.abs(zs2 - z0 * z0) > 64 * np.finfo(dt).eps * z0 * z0).any():
        raise ConfigurationError(
            "xi: expected a light-like, future-pointing vector (⟨xi,xi⟩_L = 0, xi_0 > 0), got "
            f"⟨xi,xi⟩_L = {float(np.max(np.abs(zs2 - z0 * z0))):.3g}, min xi_0 = {float(np.min(z0)):.3g}")
    return _L.busemann(a, z, cc)[..., 0]


def from_poincare(p, c=1.0):
    """Poincaré ball → hyperboloid: ``x = ((1 + c‖p‖²)/√c, 2p)/(1 − c‖p‖²)`` (``p`` projected)."""
    a = floats(p, "p")
    return _L.from_poincare(a, curvature(c, a.dtype), eps(a.dtype))


def to_poincare(x, c=1.0):
    """Hyperboloid → Poincaré ball: ``p = x_s/(1 + √c x_0)`` (time recomputed; result projected)."""
    a = _points(x)
    cc = curvature(c, a.dtype)
    _finite_time(a[..., 1:], cc)
    return _L.to_poincare(a, cc, eps(a.dtype))


def centroid(points, weights=None, c=1.0):
    """Lorentzian centroid ``s/√(c·|⟨s,s⟩_L|)``, ``s = Σ w_i x_i``: ``(..., n, d+1) → (..., d+1)``.

    Points are projected first; ``weights (..., n)`` ≥ 0 (default uniform); all-zero weights give
    the origin ``(1/√c, 0, …)``. The centroid minimises ``Σ w_i ‖x_i − μ‖²_L`` on ``H_c``.
    """
    a, w, _ = points_and_weights(points, weights, min_dim=2)
    cc = curvature(c, a.dtype)
    _finite_time(a[..., 1:], cc if np.ndim(cc) == 0 else cc[..., None, :], "points")
    out = _L.centroid(a, w.astype(a.dtype), cc)
    if not np.isfinite(out).all():
        raise NumericalError(f"points: the weighted sum overflows {a.dtype}; rescale or use float64")
    return out


__all__ = ["minkowski_dot", "project", "distance", "pairwise_distance", "exp_map0", "log_map0", "busemann",
           "from_poincare", "to_poincare", "centroid"]
