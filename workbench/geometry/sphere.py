"""The sphere ``S_c = {x ∈ R^d : ‖x‖ = R}``, ``R = 1/√c`` (curvature ``+c``), as pure functions.

Vectorised over leading dimensions, float32/float64 kept, no NaN for finite inputs; ``c`` is a
keyword curvature ``> 0``. Points are projected radially onto the sphere first (the zero vector,
which has no direction, goes to the "north pole" ``R·e_0``).

* ``d(x, y) = R·θ``, ``θ = 2·atan2(‖x̂ − ŷ‖, ‖x̂ + ŷ‖)`` (accurate for near and antipodal points);
* ``exp_p(v) = cos(‖v‖/R)·p + R·sin(‖v‖/R)·v/‖v‖`` (``v`` first projected onto the tangent space
  ``{v : ⟨v, p⟩ = 0}``);
* ``log_p(y) = d(p, y)·u/‖u‖``, ``u = y − ⟨y, p⟩p/R²`` (0 for ``y = p``; for the antipode, where
  every direction is a shortest path, also 0 — the one point where ``log`` is not defined).
"""
from __future__ import annotations

import numpy as np

from workbench.errors import ShapeError
from workbench.geometry.poincare import MIN_NORM, _curvature, _dot, _dtype, _float, _norm


def _project(x, c):
    n = _norm(x)
    r = 1 / np.sqrt(c)
    pole = np.zeros_like(x)
    pole[..., 0] = 1
    unit = np.where(n > 0, x / np.where(n > 0, n, 1), pole)
    return (unit * r).astype(x.dtype, copy=False)


def _pair(x, y, nx="x", ny="y"):
    a, b = _float(x, nx), _float(y, ny)
    if a.shape[-1] != b.shape[-1]:
        raise ShapeError(f"{ny}: expected vector dimension d={a.shape[-1]} (from the first argument), "
                         f"got shape {b.shape}")
    dt = _dtype(a, b)
    return a.astype(dt, copy=False), b.astype(dt, copy=False), dt


def project(x, c=1.0):
    """Radial projection onto the sphere of radius ``1/√c`` (zero vectors → ``R·e_0``)."""
    a = _float(x, "x")
    return _project(a, _curvature(c, a.dtype))


def _angle(xu, yu):
    return 2 * np.arctan2(_norm(xu - yu), _norm(xu + yu))


def distance(x, y, c=1.0):
    """Great-circle distance ``R·θ`` (element-wise over broadcast leading dims): ``→ (...)``."""
    a, b, dt = _pair(x, y)
    cc = _curvature(c, dt)
    one = np.ones((), dt)
    xu, yu = _project(a, one), _project(b, one)
    return (_angle(xu, yu) / np.sqrt(cc))[..., 0]


def exp_map(v, p, c=1.0):
    """Exponential map ``exp_p(v)`` (``v`` made tangent at ``p`` first); result on the sphere."""
    a, b, dt = _pair(v, p, "v", "p")
    cc = _curvature(c, dt)
    p_ = _project(b, cc)
    r = 1 / np.sqrt(cc)
    a = a - _dot(a, p_) * p_ / (r * r)
    n = _norm(a)
    dirn = a / np.maximum(n, MIN_NORM)
    return _project(np.cos(n / r) * p_ + r * np.sin(n / r) * dirn, cc)


def log_map(y, p, c=1.0):
    """Logarithmic map ``log_p(y)``, the inverse of :func:`exp_map` (tangent vector at ``p``)."""
    a, b, dt = _pair(y, p, "y", "p")
    cc = _curvature(c, dt)
    y_, p_ = _project(a, cc), _project(b, cc)
    r = 1 / np.sqrt(cc)
    u = y_ - _dot(y_, p_) * p_ / (r * r)
    nu = _norm(u)
    theta = _angle(y_ / r, p_ / r)
    return np.where(nu > 0, r * theta * u / np.maximum(nu, MIN_NORM), 0).astype(dt, copy=False)


__all__ = ["project", "distance", "exp_map", "log_map"]
