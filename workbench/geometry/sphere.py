"""The sphere ``S_c = {x ∈ R^d : ‖x‖ = R}``, ``R = 1/√c`` (curvature ``+c``), as checked functions.

The maths is :mod:`kernels.geometry.sphere`; this module checks the arguments.

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

from kernels.geometry import sphere as _S
from workbench.geometry._checks import curvature, floats, pair, same_dim


def _pair(x, y, nx="x", ny="y"):
    a, b, dt = pair(x, y, nx, ny)
    same_dim(a, b, ny, source="the first argument")
    return a, b, dt


def project(x, c=1.0):
    """Radial projection onto the sphere of radius ``1/√c`` (zero vectors → ``R·e_0``)."""
    a = floats(x, "x")
    return _S.project(a, curvature(c, a.dtype))


def distance(x, y, c=1.0):
    """Great-circle distance ``R·θ`` (element-wise over broadcast leading dims): ``→ (...)``."""
    a, b, dt = _pair(x, y)
    return _S.distance(a, b, curvature(c, dt))[..., 0]


def exp_map(v, p, c=1.0):
    """Exponential map ``exp_p(v)`` (``v`` made tangent at ``p`` first); result on the sphere."""
    a, b, dt = _pair(v, p, "v", "p")
    cc = curvature(c, dt)
    return _S.expmap(a, _S.project(b, cc), cc)


def log_map(y, p, c=1.0):
    """Logarithmic map ``log_p(y)``, the inverse of :func:`exp_map` (tangent vector at ``p``)."""
    a, b, dt = _pair(y, p, "y", "p")
    cc = curvature(c, dt)
    return _S.logmap(_S.project(a, cc), _S.project(b, cc), cc)


__all__ = ["project", "distance", "exp_map", "log_map"]
