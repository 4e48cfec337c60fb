"""The hyperboloid (Lorentz) model ``H_c = {x ∈ R^{d+1} : ⟨x,x⟩_L = −1/c, x_0 > 0}``, time first.

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

from workbench.errors import ConfigurationError, NumericalError, ShapeError
from workbench.geometry import poincare as _P
from workbench.geometry.poincare import MIN_NORM, _curvature, _dot, _dtype, _float, _norm, _sqnorm


def _points(x, name="x"):
    a = _float(x, name)
    if a.shape[-1] < 2:
        raise ShapeError(f"{name}: expected hyperboloid points (..., d+1) with d >= 1 (time first), got shape {a.shape}")
    return a


def _time(xs, c):
    with np.errstate(over="ignore"):
        t = np.sqrt(1 / c + _sqnorm(xs))
    if not np.isfinite(t).all():
        raise NumericalError(f"x: spatial coordinates too large for {xs.dtype} (‖x_s‖² overflows); rescale or use float64")
    return t


def _assemble(t, xs):
    return np.concatenate([np.broadcast_to(t, xs.shape[:-1] + (1,)), xs], axis=-1)


def _cpair(x, y, c):
    a, b = _points(x, "x"), _points(y, "y")
    dt = _dtype(a, b)
    return a.astype(dt, copy=False), b.astype(dt, copy=False), _curvature(c, dt)


def minkowski_dot(x, y, keepdims=False):
    """``⟨x,y⟩_L = −x_0 y_0 + Σ_{i≥1} x_i y_i`` (coordinates as given, broadcast): ``→ (...)``."""
    a, b = _float(x, "x"), _float(y, "y")
    if a.shape[-1] != b.shape[-1]:
        raise ShapeError(f"y: expected last dimension {a.shape[-1]} (from x), got shape {b.shape}")
    dt = _dtype(a, b)
    a, b = a.astype(dt, copy=False), b.astype(dt, copy=False)
    r = _dot(a[..., 1:], b[..., 1:]) - a[..., :1] * b[..., :1]
    return r if keepdims else r[..., 0]


def project(x, c=1.0):
    """Onto the hyperboloid: keep the spatial part, set ``x_0 = √(1/c + ‖x_{1:}‖²)``."""
    a = _points(x)
    cc = _curvature(c, a.dtype)
    return _assemble(_time(a[..., 1:], cc), a[..., 1:])


def _delta(xs, ys, c):
    x0, y0 = _time(xs, c), _time(ys, c)
    u, s = xs - ys, xs + ys
    proj = _dot(u, s) / (x0 + y0)
    return np.maximum(c / 2 * (_sqnorm(u) - proj * proj), 0)


def distance(x, y, c=1.0):
    """Geodesic distance ``arcosh(−c⟨x,y⟩_L)/√c`` (element-wise, broadcast): ``→ (...)``."""
    a, b, cc = _cpair(x, y, c)
    if a.shape[-1] != b.shape[-1]:
        raise ShapeError(f"y: expected last dimension {a.shape[-1]} (from x), got shape {b.shape}")
    return (_P._acosh1p(_delta(a[..., 1:], b[..., 1:], cc)) / np.sqrt(cc))[..., 0]


def pairwise_distance(x, y, c=1.0):
    """All distances: ``(..., n, d+1), (..., m, d+1) → (..., n, m)``."""
    a, b = _float(x, "x", 2), _float(y, "y", 2)
    _curvature(c, _dtype(a, b))
    if np.ndim(c):
        c = np.asarray(c)[..., None, None]  # leading dims (...) against (..., n, m)
    return distance(a[..., :, None, :], b[..., None, :, :], c=c)


def exp_map0(v, c=1.0):
    """Exponential map at the origin ``(1/√c, 0, …)``: spatial tangent ``(..., d) → (..., d+1)``."""
    a = _float(v, "v")
    cc = _curvature(c, a.dtype)
    sc = np.sqrt(cc)
    n = np.maximum(_norm(a), MIN_NORM)
    with np.errstate(over="ignore", invalid="ignore"):
        xs = (np.sinh(sc * n) / (sc * n)) * a
    if not np.isfinite(xs).all():
        raise NumericalError(f"v: tangent vector too long for {a.dtype} (sinh(√c‖v‖) overflows at "
                             f"√c‖v‖ = {float(np.max(sc * n)):.4g}); use shorter vectors or float64")
    return _assemble(_time(xs, cc), xs)


def log_map0(x, c=1.0):
    """Logarithmic map at the origin, the inverse of :func:`exp_map0`: ``(..., d+1) → (..., d)``."""
    a = _points(x)
    cc = _curvature(c, a.dtype)
    xs = a[..., 1:]
    sc = np.sqrt(cc)
    n = np.maximum(_norm(xs), MIN_NORM)
    return (np.arcsinh(sc * n) / (sc * n)) * xs


def busemann(x, xi, c=1.0):
    """Busemann function ``B_ξ(x) = ln(−√c⟨x,ξ⟩_L/ξ_0)/√c`` of the ideal point ``ξ``: ``→ (...)``.

    ``ξ`` must be light-like (``⟨ξ,ξ⟩_L = 0`` up to rounding) and future-pointing (``ξ_0 > 0``);
    ``x`` is projected. ``B_ξ(origin) = 0``; ``B`` decreases towards ``ξ`` at unit speed.
    """
    a = _points(x)
    z = _float(xi, "xi")
    if z.shape[-1] != a.shape[-1]:
        raise ShapeError(f"xi: expected last dimension {a.shape[-1]} (from x), got shape {z.shape}")
    dt = _dtype(a, z)
    a, z = a.astype(dt, copy=False), z.astype(dt, copy=False)
    cc = _curvature(c, dt)
    z0 = z[..., :1]
    zs2 = _sqnorm(z[..., 1:])
    if (z0 <= 0).any() or (np.abs(zs2 - z0 * z0) > 64 * np.finfo(dt).eps * z0 * z0).any():
        raise ConfigurationError(
            "xi: expected a light-like, future-pointing vector (⟨xi,xi⟩_L = 0, xi_0 > 0), got "
            f"⟨xi,xi⟩_L = {float(np.max(np.abs(zs2 - z0 * z0))):.3g}, min xi_0 = {float(np.min(z0)):.3g}")
    xs = a[..., 1:]
    x0 = _time(xs, cc)
    zs = z[..., 1:] / z0  # normalise ξ_0 = 1 (the same ideal point)
    # −⟨x,ξ⟩_L = x_0 − ⟨x_s, ξ_s⟩ = (x_0² − ⟨x_s,ξ_s⟩²)/(x_0 + ⟨x_s,ξ_s⟩) avoids cancellation where
    # x goes off towards ξ (then x_0 ≈ ⟨x_s, ξ_s⟩).
    p = _dot(xs, zs)
    with np.errstate(over="ignore"):
        num = 1 / cc + (_sqnorm(xs) - p * p)  # x_0² − p² = 1/c + ‖x_s‖² − p² ≥ 1/c (since ‖ξ_s‖ = 1)
    direct = x0 - p
    viaq = num / np.maximum(x0 + p, MIN_NORM)
    inner = np.where(p > 0, viaq, direct)
    return (np.log(np.maximum(np.sqrt(cc) * inner, np.finfo(dt).tiny)) / np.sqrt(cc))[..., 0]


def from_poincare(p, c=1.0):
    """Poincaré ball → hyperboloid: ``x = ((1 + c‖p‖²)/√c, 2p)/(1 − c‖p‖²)`` (``p`` projected)."""
    a = _float(p, "p")
    cc, e = _curvature(c, a.dtype), _P.eps(a.dtype)
    a = _P._project(a, cc, e)
    om = _P._one_minus(cc, _sqnorm(a), e)
    xs = 2 * a / om
    return _assemble(_time(xs, cc), xs)


def to_poincare(x, c=1.0):
    """Hyperboloid → Poincaré ball: ``p = x_s/(1 + √c x_0)`` (time recomputed; result projected)."""
    a = _points(x)
    cc = _curvature(c, a.dtype)
    xs = a[..., 1:]
    x0 = _time(xs, cc)
    return _P._project(xs / (1 + np.sqrt(cc) * x0), cc, _P.eps(a.dtype))


def centroid(points, weights=None, c=1.0):
    """Lorentzian centroid ``s/√(c·|⟨s,s⟩_L|)``, ``s = Σ w_i x_i``: ``(..., n, d+1) → (..., d+1)``.

    Points are projected first; ``weights (..., n)`` ≥ 0 (default uniform); all-zero weights give
    the origin ``(1/√c, 0, …)``. The centroid minimises ``Σ w_i ‖x_i − μ‖²_L`` on ``H_c``.
    """
    a = _float(points, "points", 2)
    if a.shape[-1] < 2:
        raise ShapeError(f"points: expected hyperboloid points (..., n, d+1) with d >= 1, got shape {a.shape}")
    if a.shape[-2] == 0:
        raise ShapeError(f"points: expected at least one point, got shape {a.shape}")
    w = _P._weights(weights, a, a.dtype)
    cc = _curvature(c, a.dtype)
    cp = cc if np.ndim(cc) == 0 else cc[..., None, :]
    xs = a[..., 1:]
    full = _assemble(_time(xs, cp), xs)
    with np.errstate(over="ignore"):
        s = np.sum(w[..., None] * full, axis=-2)
    if not np.isfinite(s).all():
        raise NumericalError(f"points: the weighted sum overflows {a.dtype}; rescale or use float64")
    # −⟨s,s⟩_L = s_0² − ‖s_s‖² = (s_0 − ‖s_s‖)(s_0 + ‖s_s‖) ≥ 0 for a positive combination
    s0 = s[..., :1]
    ns = _norm(s[..., 1:])
    neg = np.maximum((s0 - ns) * (s0 + ns), 0)
    scale = np.sqrt(cc * neg)
    ok = scale > 0
    ms = np.where(ok, s[..., 1:] / np.where(ok, scale, 1), 0)
    return _assemble(_time(ms, cc), ms)


__all__ = ["minkowski_dot", "project", "distance", "pairwise_distance", "exp_map0", "log_map0", "busemann",
           "from_poincare", "to_poincare", "centroid"]
