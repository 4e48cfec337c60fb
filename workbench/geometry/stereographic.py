"""The κ-stereographic model: one curvature ``κ`` for hyperbolic (``κ < 0``), flat (``κ = 0``)
and spherical (``κ > 0``) space, as checked functions (after geoopt's ``manifolds/stereographic``;
Skopek, Ganea & Bécigneul, *Mixed-curvature Variational Autoencoders*, 2020).

The maths is :mod:`kernels.geometry.stereographic`; this module checks the arguments.
``κ = −c`` is the Poincaré ball of :mod:`workbench.geometry.poincare` (the functions agree);
``κ = 0`` is Euclidean space in the same conformal normalisation (``λ_x = 2``): ``x ⊕ y = x + y``,
``exp_0 = log_0 = id`` and ``d(x, y) = 2‖x − y‖``; ``κ > 0`` is the stereographic projection
of the sphere of radius ``1/√κ``. ``k`` is a number or an array broadcastable to the leading
dimensions; results change continuously with ``κ`` through 0.

* ``tan_κ(x) = tanh(√−κ x)/√−κ`` (κ<0), ``x`` (κ=0), ``tan(√κ x)/√κ`` (κ>0); ``artan_κ`` its inverse;
* ``x ⊕_κ y = ((1 − 2κ⟨x,y⟩ − κ‖y‖²)x + (1 + κ‖x‖²)y)/(1 − 2κ⟨x,y⟩ + κ²‖x‖²‖y‖²)``;
* ``d_κ(x, y) = 2·artan_κ(‖(−x) ⊕_κ y‖)``;
* ``exp_0(v) = tan_κ(‖v‖)·v/‖v‖``, ``log_0(y) = artan_κ(‖y‖)·y/‖y‖``.
"""
from __future__ import annotations

import numpy as np

from kernels.geometry import stereographic as _K
from kernels.geometry.numerics import eps
from workbench.geometry._checks import curvature, floats, pair


def _k(k, dtype):
    return curvature(k, dtype, name="k", signed=True)


def _prep1(x, k, name="x"):
    a = floats(x, name)
    return a, _k(k, a.dtype), eps(a.dtype)


def _prep2(x, y, k):
    a, b, dt = pair(x, y)
    return a, b, _k(k, dt), eps(dt)


def _elementwise(f, x, k):
    """``f(a, κ)`` on any-shaped ``x`` (scalars too), κ a number or a broadcastable array."""
    a = floats(np.atleast_1d(x), "x")
    _k(k, a.dtype)
    kk = np.asarray(k, dtype=a.dtype) if np.ndim(k) else _k(k, a.dtype)
    out = f(a, kk)
    return out.reshape(np.shape(x)) if np.ndim(x) == 0 else out


def tan_k(x, k):
    """``tan_κ`` applied element-wise to ``x`` (any shape; ``k`` a number or broadcastable array)."""
    return _elementwise(_K.tan_k, x, k)


def artan_k(x, k):
    """``artan_κ``, the inverse of :func:`tan_k` (for κ < 0 the argument is clamped below ``1/√−κ``)."""
    return _elementwise(_K.artan_k, x, k)


def project(x, k):
    """For κ < 0: into the ball of radius ``(1 − eps)/√−κ``; for κ ≥ 0: unchanged."""
    a, kk, e = _prep1(x, k)
    return _K.project(a, kk, e)


def mobius_add(x, y, k):
    """κ-Möbius addition ``x ⊕_κ y`` (broadcast over leading dims)."""
    a, b, kk, e = _prep2(x, y, k)
    return _K.project(_K.mobius_add(_K.project(a, kk, e), _K.project(b, kk, e), kk), kk, e)


def distance(x, y, k):
    """``d_κ(x, y) = 2·artan_κ(‖(−x) ⊕_κ y‖)`` (element-wise over broadcast leading dims): ``→ (...)``.

    For κ < 0 the accurate closed form of :func:`workbench.geometry.poincare.distance` is used
    (the same number; exact 0 for coincident points and no saturation near the boundary).
    """
    a, b, kk, e = _prep2(x, y, k)
    return _K.distance(_K.project(a, kk, e), _K.project(b, kk, e), kk, e)[..., 0]


def exp_map0(v, k):
    """``exp_0(v) = tan_κ(‖v‖)·v/‖v‖``."""
    a, kk, e = _prep1(v, k, "v")
    return _K.expmap0(a, kk, e)


def log_map0(y, k):
    """``log_0(y) = artan_κ(‖y‖)·y/‖y‖``, the inverse of :func:`exp_map0`."""
    a, kk, e = _prep1(y, k, "y")
    return _K.logmap0(_K.project(a, kk, e), kk, e)


__all__ = ["tan_k", "artan_k", "project", "mobius_add", "distance", "exp_map0", "log_map0"]
