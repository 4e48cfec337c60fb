"""The κ-stereographic model as pure NumPy functions: hyperbolic (κ < 0), flat (κ = 0), spherical (κ > 0).

``κ = −c`` is the Poincaré ball ``{x : c‖x‖² < 1}`` (radius ``1/√c``); ``κ = 0`` is Euclidean space in
the same conformal normalisation (``λ_x = 2``: ``x ⊕ y = x + y``, ``d(x, y) = 2‖x − y‖``); ``κ > 0`` is
the stereographic projection of the sphere of radius ``1/√κ``. After geoopt's
``manifolds/stereographic/math.py`` (Skopek, Ganea & Bécigneul, *Mixed-curvature Variational
Autoencoders*, 2020; Ganea, Bécigneul & Hofmann, *Hyperbolic Neural Networks*, 2018):

* ``tan_κ(x) = tanh(√−κ x)/√−κ`` (κ<0), ``x`` (κ=0), ``tan(√κ x)/√κ`` (κ>0); ``artan_κ`` its inverse;
* ``λ_x = 2/(1 + κ‖x‖²)``;
* ``x ⊕_κ y = ((1 − 2κ⟨x,y⟩ − κ‖y‖²)x + (1 + κ‖x‖²)y)/(1 − 2κ⟨x,y⟩ + κ²‖x‖²‖y‖²)``;
* ``d_κ(x, y) = 2·artan_κ(‖(−x) ⊕_κ y‖)``; for κ < 0 evaluated as
  ``arcosh(1 + 2c‖x − y‖²/((1 − c‖x‖²)(1 − c‖y‖²)))/√c`` (exact 0 on coincident points, no saturation);
* ``exp_p(v) = p ⊕_κ tan_κ(λ_p‖v‖/2)·v/‖v‖``, ``log_p(y) = (d_κ(p, y)/λ_p)·w/‖w‖``, ``w = (−p) ⊕_κ y``
  (so ``d_κ(p, exp_p v) = λ_p‖v‖``; at the origin ``λ_0 = 2``: ``exp_0(v) = tan_κ(‖v‖)·v/‖v‖``);
* ``r ⊗_κ x = tan_κ(r·artan_κ(‖x‖))·x/‖x‖``;
* weighted midpoint (Einstein's for κ < 0): ``m = ½ ⊗_κ (Σ w_i λ_i x_i / Σ w_i (λ_i − 1))``, i.e.
  ``m_K/(1 + √(1 + κ‖m_K‖²))`` of the Klein-model mean ``m_K``.

Conventions: arrays of one float dtype, the vector on the last axis, ``k`` a number or an array that
broadcasts against the ``(..., 1)`` keepdims shape of the points (cast to the points' dtype here);
``e`` the relative boundary margin, by default :func:`~kernels.geometry.numerics.eps` of the dtype.
No argument checking: that is :mod:`workbench.geometry`'s job. Imports nothing from ``workbench``.
"""
from __future__ import annotations

import numpy as np

from kernels.geometry.numerics import MIN_NORM, acosh1p, artanh, curvature, dot, eps, norm, pairwise_sq, sqnorm


def _margin(e, dtype):
    return eps(dtype) if e is None else e


def _scale(k):
    """``√|κ|`` (1 where κ = 0, to keep divisions finite)."""
    if np.ndim(k) == 0:
        return np.sqrt(abs(k)) if k != 0 else type(k)(1)
    return np.where(k != 0, np.sqrt(np.abs(k)), 1).astype(k.dtype, copy=False)


def _tan_scaled(z, k):
    """``tanh z`` (κ<0), ``z`` (κ=0), ``tan z`` (κ>0): ``tan_κ(x) = _tan_scaled(√|κ|x)/√|κ|``."""
    if np.ndim(k) == 0:
        return np.tanh(z) if k < 0 else (np.tan(z) if k > 0 else z)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(k < 0, np.tanh(z), np.where(k > 0, np.tan(z), z))


def _artan_scaled(z, k, e):
    """The inverse of :func:`_tan_scaled`, the κ<0 argument clamped to ``1 − e``."""
    if np.ndim(k) == 0:
        return artanh(z, e) if k < 0 else (np.arctan(z) if k > 0 else z)
    return np.where(k < 0, artanh(z, e), np.where(k > 0, np.arctan(z), z))


def tan_k(x, k):
    """``tan_κ(x)`` element-wise."""
    k = curvature(k, x.dtype)
    s = _scale(k)
    return _tan_scaled(s * x, k) / s


def artan_k(x, k, e=None):
    """``artan_κ(x)`` element-wise (for κ < 0 the argument ``√−κ x`` is clamped to ``±(1 − e)``)."""
    k = curvature(k, x.dtype)
    s = _scale(k)
    return _artan_scaled(s * x, k, _margin(e, x.dtype)) / s


def project(x, k, e=None):
    """For κ < 0: rescale vectors longer than ``(1 − e)/√−κ`` to that norm; for κ ≥ 0: unchanged."""
    k = curvature(k, x.dtype)
    if not np.any(k < 0):
        return x
    one_e = 1 - x.dtype.type(_margin(e, x.dtype))
    if np.ndim(k) == 0:
        maxnorm = one_e / np.sqrt(-k)
    else:
        neg = k < 0
        maxnorm = np.where(neg, one_e / np.sqrt(np.where(neg, -k, 1)), np.inf)
    n = norm(x)
    return x * np.where(n > maxnorm, maxnorm / np.maximum(n, MIN_NORM), 1).astype(x.dtype)


def conformal_den(x, k, e=None):
    """``1 + κ‖x‖²`` with keepdims, floored at ``e`` (the margin keeps projected ball points above it)."""
    return np.maximum(1 + curvature(k, x.dtype) * sqnorm(x), _margin(e, x.dtype))


def lambda_x(x, k, e=None):
    """The conformal factor ``λ_x = 2/(1 + κ‖x‖²)`` with keepdims."""
    return 2 / conformal_den(x, k, e)


def mobius_add(x, y, k):
    """``x ⊕_κ y`` (not projected), rearranged so that two points near the boundary on opposite sides
    (where the result is a tiny difference of terms of size 1) keep their digits:

    * numerator ``(1 − κ⟨x,y⟩)·s − κ·(⟨y,s⟩x − ⟨x,s⟩y)`` with ``s = x + y`` (expand to check); the
      second term vanishes for collinear points instead of cancelling;
    * denominator ``(1 − κ⟨x,y⟩)² + κ²‖x‖²‖y_⊥‖²``, ``y_⊥`` the part of ``y`` orthogonal to ``x``
      (Lagrange's identity; never negative).

    Summed as in the module doc, a step of length 20 from a point at distance 11 landed 1.5e-3 off.
    """
    k = curvature(k, x.dtype)
    x2, xy = sqnorm(x), dot(x, y)
    s = x + y
    one = 1 - k * xy
    num = one * s - k * (dot(y, s) * x - dot(x, s) * y)
    y_perp = y - (xy / np.maximum(x2, MIN_NORM)) * x
    den = one * one + k * k * x2 * sqnorm(y_perp)
    return num / np.maximum(den, MIN_NORM)


def ball_distance_from_sq(diff2, den_x, den_y, c):
    """The Poincaré distance ``arcosh(1 + 2c‖x − y‖²/(den_x·den_y))/√c`` from ``‖x − y‖²`` and the
    denominators ``1 − c‖·‖²`` (shapes broadcast; ``c > 0``)."""
    c = curvature(c, diff2.dtype)
    return acosh1p(2 * c * diff2 / (den_x * den_y)) / np.sqrt(c)


def _generic_distance(x, y, k, e):
    """``2·artan_κ(‖(−x) ⊕_κ y‖)`` (κ ≥ 0 here)."""
    s = _scale(k)
    return 2 * _artan_scaled(s * norm(mobius_add(-x, y, k)), k, e) / s


def distance(x, y, k, e=None):
    """``d_κ(x, y)`` with keepdims (broadcast; κ < 0: the accurate closed form, points inside the ball)."""
    e = _margin(e, x.dtype)
    k = curvature(k, x.dtype)
    neg = k < 0
    hyp = gen = None
    if np.any(neg):
        c = -k if np.ndim(k) == 0 else np.where(neg, -k, 1)
        hyp = ball_distance_from_sq(sqnorm(x - y), conformal_den(x, -c, e), conformal_den(y, -c, e), c)
    if not np.all(neg):
        gen = _generic_distance(x, y, k if np.ndim(k) == 0 else np.where(neg, 0, k), e)
    if gen is None or hyp is None:
        return gen if hyp is None else hyp
    return np.where(neg, hyp, gen)


def pairwise_distance(x, y, k, e=None):
    """All ``d_κ(x_i, y_j)``: ``(..., n, d), (..., m, d) → (..., n, m)``; an array ``k`` broadcasts
    against ``(..., n, m)`` (shape ``(..., 1, 1)``). κ < 0 from the differences ``x_i − y_j`` (exact
    zeros on coincident points); κ ≥ 0 in row chunks of the element-wise distance."""
    e = _margin(e, x.dtype)
    k = curvature(k, x.dtype)
    if np.all(k < 0):
        den_x = conformal_den(x, k, e)  # (..., n, 1)
        den_y = conformal_den(y, k, e)[..., None, :, 0]  # (..., 1, m)
        return ball_distance_from_sq(pairwise_sq(x, y), den_x, den_y, -k)
    kk = k[..., None] if np.ndim(k) else k  # against (..., rows, m, 1)
    lead = np.broadcast_shapes(x.shape[:-2], y.shape[:-2], np.shape(k)[:-2])
    n, m, d = x.shape[-2], y.shape[-2], x.shape[-1]
    out = np.empty(lead + (n, m), x.dtype)
    step = max(1, (1 << 20) // max(1, int(np.prod(lead, dtype=np.int64)) * m * d))
    for i0 in range(0, n, step):
        out[..., i0:i0 + step, :] = distance(x[..., i0:i0 + step, None, :], y[..., None, :, :], kk, e)[..., 0]
    return out


def expmap0(v, k, e=None):
    """``exp_0(v) = tan_κ(‖v‖)·v/‖v‖``, projected."""
    k = curvature(k, v.dtype)
    s = _scale(k)
    n = np.maximum(norm(v), MIN_NORM)
    return project(_tan_scaled(s * n, k) * (v / (s * n)), k, e)


def logmap0(y, k, e=None):
    """``log_0(y) = artan_κ(‖y‖)·y/‖y‖``, the inverse of :func:`expmap0`."""
    k = curvature(k, y.dtype)
    s = _scale(k)
    n = np.maximum(norm(y), MIN_NORM)
    return _artan_scaled(s * n, k, _margin(e, y.dtype)) * (y / (s * n))


def expmap(v, p, k, e=None):
    """``exp_p(v) = p ⊕_κ tan_κ(λ_p‖v‖/2)·v/‖v‖``, projected once at the end. The second term is the
    point at distance ``λ_p‖v‖`` from the origin; it is *not* projected before the addition (that
    capped every step at the margin's reach, ``2·artanh(1 − eps)/√c`` ≈ 12.2/√c, so an inward step
    of length 13 from a point at distance 6 landed at 12.2 instead of 13): unprojected, it keeps all
    the digits ``tanh`` gives, and only points the ball cannot hold are projected."""
    k = curvature(k, v.dtype)
    s = _scale(k)
    lam = lambda_x(p, k, e)
    n = np.maximum(norm(v), MIN_NORM)
    second = _tan_scaled(s * lam * n / 2, k) * (v / (s * n))
    return project(mobius_add(p, second, k), k, e)


def logmap(y, p, k, e=None):
    """``log_p(y) = (d_κ(p, y)/λ_p)·w/‖w‖``, ``w = (−p) ⊕_κ y``: the same as
    ``(2/λ_p)·artan_κ(‖w‖)·w/‖w‖``, but with the length from the accurate distance and ``w`` not
    projected (``(−p) ⊕ y`` may lie farther out than the ball's margin allows, e.g. for two boundary
    points on opposite sides; clipping it would make ``log`` inconsistent with :func:`distance`)."""
    k = curvature(k, y.dtype)
    w = mobius_add(-p, y, k)
    n = np.maximum(norm(w), MIN_NORM)
    return (distance(p, y, k, e) / lambda_x(p, k, e)) * (w / n)


def mobius_scalar(r, x, k, e=None):
    """``r ⊗_κ x = tan_κ(r·artan_κ(‖x‖))·x/‖x‖``, projected (``r`` broadcasts against ``(..., 1)``)."""
    k = curvature(k, x.dtype)
    e = _margin(e, x.dtype)
    s = _scale(k)
    n = np.maximum(norm(x), MIN_NORM)
    return project(_tan_scaled(r * _artan_scaled(s * n, k, e), k) * (x / (s * n)), k, e)


def to_klein(x, k):
    """Stereographic → Klein (gnomonic for κ > 0): ``x_K = 2x/(1 − κ‖x‖²)``."""
    return 2 * x / (1 - curvature(k, x.dtype) * sqnorm(x))


def from_klein(xk, k, e=None):
    """Klein → stereographic: ``x = x_K/(1 + √(1 + κ‖x_K‖²))`` (``= ½ ⊗_κ x_K``), projected."""
    k = curvature(k, xk.dtype)
    root = np.sqrt(np.maximum(1 + k * sqnorm(xk), 0))
    return project(xk / (1 + root), k, e)


def klein_terms(x, k, e=None):
    """``(λ x, λ − 1)`` of points ``x``: the numerator and denominator terms of the midpoint, since
    ``γ x_K = λ x`` and ``γ = λ − 1`` (exact rewriting of the Klein formulas, no square root of a
    small difference near the boundary)."""
    lam = lambda_x(x, k, e)
    return lam * x, lam - 1


def midpoint_finish(num, den, k, e=None):
    """``m_K = num/den`` (0 where ``den ≤ 0``) mapped back by :func:`from_klein`: the midpoint."""
    ok = den > 0
    mk = np.where(ok, num / np.where(ok, den, 1), 0)
    return from_klein(mk, k, e)


def weighted_midpoint(points, w, k, e=None):
    """``Σ w_i λ_i x_i / Σ w_i (λ_i − 1)`` back from the Klein model: ``(..., n, d), (..., n) → (..., d)``.

    For κ < 0 the Einstein midpoint, κ = 0 the weighted mean, κ > 0 the gyromidpoint (points within
    ``1/√κ``). ``k`` broadcasts against the result's ``(..., 1)``; all-zero weights give the origin.
    """
    k = curvature(k, points.dtype)
    kp = k if np.ndim(k) == 0 else k[..., None, :]
    lx, g = klein_terms(points, kp, e)
    num = np.sum(w[..., None] * lx, axis=-2)
    den = np.sum(w[..., None] * g, axis=-2)
    return midpoint_finish(num, den, k, e)


__all__ = ["tan_k", "artan_k", "project", "conformal_den", "lambda_x", "mobius_add", "ball_distance_from_sq",
           "distance", "pairwise_distance", "expmap0", "logmap0", "expmap", "logmap", "mobius_scalar", "to_klein",
           "from_klein", "klein_terms", "midpoint_finish", "weighted_midpoint"]
