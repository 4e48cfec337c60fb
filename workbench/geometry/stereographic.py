"""The κ-stereographic model: one curvature ``κ`` for hyperbolic (``κ < 0``), flat (``κ = 0``)
and spherical (``κ > 0``) space, as pure functions (after geoopt's ``manifolds/stereographic``;
Skopek, Ganea & Bécigneul, *Mixed-curvature Variational Autoencoders*, 2020).

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

from workbench.geometry import poincare as _P
from workbench.geometry.poincare import MIN_NORM, _curvature, _dot, _dtype, _float, _norm, _sqnorm


def _k(k, dtype):
    return _curvature(k, dtype, name="k", signed=True)


def _branches(k):
    """``(s, neg, pos)``: ``s = √|κ|`` (1 where κ = 0, to keep divisions finite) and masks."""
    neg, pos = k < 0, k > 0
    s = np.sqrt(np.abs(k))
    s = np.where(neg | pos, s, 1).astype(np.result_type(s), copy=False)
    return s, neg, pos


def _tan_k(x, k):
    s, neg, pos = _branches(k)
    with np.errstate(over="ignore", invalid="ignore"):
        h = np.tanh(s * x) / s
        t = np.tan(s * x) / s
    return np.where(neg, h, np.where(pos, t, x))


def _artan_k(x, k, e):
    s, neg, pos = _branches(k)
    lim = 1 - e
    h = np.arctanh(np.clip(s * x, -lim, lim)) / s
    t = np.arctan(s * x) / s
    return np.where(neg, h, np.where(pos, t, x))


def _project(x, k, e):
    """Into the ball of radius ``(1 − e)/√−κ`` where ``κ < 0``; unchanged elsewhere."""
    kk = np.asarray(k)
    if not (kk < 0).any():
        return x
    c = np.where(kk < 0, -kk, 0)
    n = _norm(x)
    with np.errstate(divide="ignore"):
        maxnorm = np.where(kk < 0, (1 - e) / np.sqrt(np.where(kk < 0, c, 1)), np.inf)
    scale = np.where(n > maxnorm, maxnorm / np.maximum(n, MIN_NORM), 1).astype(x.dtype)
    return x * scale


def _mobius_add(x, y, k, e):
    x2, y2, xy = _sqnorm(x), _sqnorm(y), _dot(x, y)
    num = (1 - 2 * k * xy - k * y2) * x + (1 + k * x2) * y
    den = 1 - 2 * k * xy + k * k * x2 * y2
    den = np.where(np.abs(den) < MIN_NORM, MIN_NORM, den)
    return _project(num / den, k, e)


def _one(x, name="x"):
    return _float(x, name)


def _prep1(x, k, name="x"):
    a = _one(x, name)
    kk = _k(k, a.dtype)
    return a, kk, _P.eps(a.dtype)


def _prep2(x, y, k):
    a, b = _float(x, "x"), _float(y, "y")
    dt = _dtype(a, b)
    a, b = a.astype(dt, copy=False), b.astype(dt, copy=False)
    return a, b, _k(k, dt), _P.eps(dt)


def tan_k(x, k):
    """``tan_κ`` applied element-wise to ``x`` (any shape; ``k`` a number or broadcastable array)."""
    a = np.asarray(_float(np.atleast_1d(x), "x"))
    kk = np.asarray(k, dtype=a.dtype) if np.ndim(k) else _k(k, a.dtype)
    if np.ndim(k):
        _k(k, a.dtype)
    out = _tan_k(a, kk)
    return out.reshape(np.shape(x)) if np.ndim(x) == 0 else out


def artan_k(x, k):
    """``artan_κ``, the inverse of :func:`tan_k` (for κ < 0 the argument is clamped below ``1/√−κ``)."""
    a = np.asarray(_float(np.atleast_1d(x), "x"))
    kk = np.asarray(k, dtype=a.dtype) if np.ndim(k) else _k(k, a.dtype)
    if np.ndim(k):
        _k(k, a.dtype)
    out = _artan_k(a, kk, _P.eps(a.dtype))
    return out.reshape(np.shape(x)) if np.ndim(x) == 0 else out


def project(x, k):
    """For κ < 0: into the ball of radius ``(1 − eps)/√−κ``; for κ ≥ 0: unchanged."""
    a, kk, e = _prep1(x, k)
    return _project(a, kk, e)


def mobius_add(x, y, k):
    """κ-Möbius addition ``x ⊕_κ y`` (broadcast over leading dims)."""
    a, b, kk, e = _prep2(x, y, k)
    return _mobius_add(_project(a, kk, e), _project(b, kk, e), kk, e)


def distance(x, y, k):
    """``d_κ(x, y) = 2·artan_κ(‖(−x) ⊕_κ y‖)`` (element-wise over broadcast leading dims): ``→ (...)``.

    For κ < 0 the accurate closed form of :func:`workbench.geometry.poincare.distance` is used
    (the same number; exact 0 for coincident points and no saturation near the boundary).
    """
    a, b, kk, e = _prep2(x, y, k)
    a, b = _project(a, kk, e), _project(b, kk, e)
    generic = 2 * _artan_k(_norm(_mobius_add(-a, b, kk, e)), kk, e)
    kk_a = np.asarray(kk)
    if (kk_a < 0).any():
        c = np.where(kk_a < 0, -kk_a, 1).astype(a.dtype)
        hyp = _P._distance(a, b, c, e)
        generic = np.where(kk_a < 0, hyp, generic)
    return generic[..., 0]


def exp_map0(v, k):
    """``exp_0(v) = tan_κ(‖v‖)·v/‖v‖``."""
    a, kk, e = _prep1(v, k, "v")
    n = np.maximum(_norm(a), MIN_NORM)
    return _project(_tan_k(n, kk) * (a / n), kk, e)


def log_map0(y, k):
    """``log_0(y) = artan_κ(‖y‖)·y/‖y‖``, the inverse of :func:`exp_map0`."""
    a, kk, e = _prep1(y, k, "y")
    a = _project(a, kk, e)
    n = np.maximum(_norm(a), MIN_NORM)
    return _artan_k(n, kk, e) * (a / n)


__all__ = ["tan_k", "artan_k", "project", "mobius_add", "distance", "exp_map0", "log_map0"]
