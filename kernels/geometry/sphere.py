"""The sphere ``{x ∈ R^d : ‖x‖ = R}``, ``R = 1/√c`` (curvature ``+c``), embedded, as pure NumPy functions.

* directions ``x̂ = x/‖x‖`` (the zero vector, which has none, gets ``e_0``);
* ``d(x, y) = R·θ``, ``θ = 2·atan2(‖x̂ − ŷ‖, ‖x̂ + ŷ‖)`` (accurate for near and antipodal points,
  unlike ``arccos``);
* ``exp_p(v) = cos(‖v‖/R)·p + R·sin(‖v‖/R)·v/‖v‖`` (``v`` first made tangent at ``p``);
* ``log_p(y) = d(p, y)·u/‖u‖``, ``u = y − ⟨y, p⟩p/R²`` (0 for ``y = p`` and for the antipode).

The κ > 0 branch of :mod:`kernels.geometry.stereographic` is the same space in stereographic
coordinates. Arrays of one float dtype, vector on the last axis, ``c`` a number or an array that
broadcasts against ``(..., 1)``; no argument checking. Imports nothing from ``workbench``.
"""
from __future__ import annotations

import numpy as np

from kernels.geometry.numerics import MIN_NORM, curvature, dot, norm, pairwise_sq


def unit_directions(x):
    """``x/‖x‖`` per vector; a zero vector becomes ``e_0``."""
    n = norm(x)
    unit = x / np.where(n > 0, n, 1)
    if x.shape[-1]:
        unit[..., 0] = np.where(n[..., 0] > 0, unit[..., 0], 1)
    return unit


def project(x, c):
    """Radial projection onto the sphere of radius ``1/√c`` (zero vectors → ``R·e_0``)."""
    return (unit_directions(x) * (1 / np.sqrt(curvature(c, x.dtype)))).astype(x.dtype, copy=False)


def angle(xu, yu):
    """The angle ``2·atan2(‖x̂ − ŷ‖, ‖x̂ + ŷ‖)`` between unit vectors, keepdims."""
    return 2 * np.arctan2(norm(xu - yu), norm(xu + yu))


def distance(x, y, c):
    """Great-circle distance ``R·θ`` of the directions of ``x`` and ``y``, keepdims (broadcast)."""
    return angle(unit_directions(x), unit_directions(y)) / np.sqrt(curvature(c, x.dtype))


def pairwise_distance(x, y, c):
    """``(..., n, s), (..., m, s) → (..., n, m)``: :func:`distance` of every pair (``c`` a number)."""
    xu, yu = unit_directions(x), unit_directions(y)
    theta = 2 * np.arctan2(np.sqrt(pairwise_sq(xu, yu)), np.sqrt(pairwise_sq(xu, yu, 1.0)))
    return theta / np.sqrt(curvature(c, theta.dtype))


def expmap(v, p, c):
    """``exp_p(v)`` for ``p`` on the sphere (``v`` made tangent at ``p`` first); result on the sphere."""
    c = curvature(c, v.dtype)
    r = 1 / np.sqrt(c)
    v = v - dot(v, p) * p / (r * r)
    n = norm(v)
    return project(np.cos(n / r) * p + r * np.sin(n / r) * (v / np.maximum(n, MIN_NORM)), c)


def logmap(y, p, c):
    """``log_p(y)`` for ``y``, ``p`` on the sphere, the inverse of :func:`expmap` (tangent at ``p``)."""
    r = 1 / np.sqrt(curvature(c, y.dtype))
    u = y - dot(y, p) * p / (r * r)
    nu = norm(u)
    theta = angle(y / r, p / r)
    return np.where(nu > 0, r * theta * u / np.maximum(nu, MIN_NORM), 0).astype(y.dtype, copy=False)


__all__ = ["unit_directions", "project", "angle", "distance", "pairwise_distance", "expmap", "logmap"]
