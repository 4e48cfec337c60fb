"""The Poincaré ball ``B_c = {x : c‖x‖² < 1}`` (curvature ``−c``, radius ``1/√c``), as checked functions.

The maths is :mod:`kernels.geometry.stereographic` at ``κ = −c`` (geoopt's split: pure functions
there, argument checking here); :func:`frechet_mean` and :func:`fit_curvature` are workbench logic
on top of it.

Every function is vectorised over leading dimensions (the last axis is the vector), keeps the
dtype (float32 → float32, float64 → float64; other numbers → float64) and never returns NaN
for finite inputs. Points are first projected into the ball with a dtype-dependent relative
margin (:func:`eps`): ``‖x‖ ≤ (1 − eps)/√c``. ``c`` is a keyword, a number > 0 or an array
broadcastable to the leading dimensions of the points; ``c ≤ 0`` raises ConfigurationError.

Formulas (Ganea, Bécigneul & Hofmann, *Hyperbolic Neural Networks*, 2018):

* ``λ_x = 2/(1 − c‖x‖²)``,
* ``x ⊕ y = ((1 + 2c⟨x,y⟩ + c‖y‖²)x + (1 − c‖x‖²)y) / (1 + 2c⟨x,y⟩ + c²‖x‖²‖y‖²)``,
* ``r ⊗ x = tanh(r·artanh(√c‖x‖))·x/(√c‖x‖)``,
* ``exp_p(v) = p ⊕ tanh(√c λ_p‖v‖/2)·v/(√c‖v‖)``,
  ``log_p(y) = (2/(√c λ_p))·artanh(√c‖w‖)·w/‖w‖`` with ``w = (−p) ⊕ y`` (the standard pair:
  ``exp_p(log_p(y)) = y``; upstream's maps use half the conformal factor, see docs/upstream.md#geometry),
* ``d_c(x, y) = (1/√c)·arcosh(1 + 2c‖x − y‖²/((1 − c‖x‖²)(1 − c‖y‖²)))``, evaluated as
  ``log1p(δ + √δ·√(δ + 2))/√c`` so that it stays accurate for near points (``d(x, x) = 0``).
"""
from __future__ import annotations

import numpy as np

from kernels.geometry import stereographic as _K
from kernels.geometry.numerics import MIN_NORM, norm
from kernels.geometry.numerics import eps as _eps
from workbench.errors import ConfigurationError, NumericalError, ShapeError
from workbench.geometry._checks import curvature, floats, pair, points_and_weights, same_dim


def eps(dtype) -> float:
    """Relative boundary margin for ``dtype`` (1e-5 for float32 and float64, see
    :data:`kernels.geometry.numerics.EPS`)."""
    return _eps(dtype)


def _prep(x, name, c, min_ndim=1):
    """One checked array, its curvature ``κ = −c`` and margin."""
    a = floats(x, name, min_ndim)
    return a, -curvature(c, a.dtype), eps(a.dtype)


def _prep2(x, y, c, min_ndim=1):
    """Two checked arrays in their common dtype, ``κ = −c`` and the margin."""
    a, b, dt = pair(x, y, min_ndim=min_ndim)
    return a, b, -curvature(c, dt), eps(dt)


def _kp(k):
    """``κ`` for points ``(..., n, d)`` when ``κ`` is given for ``(..., d)`` (an array gains an axis)."""
    return k if np.ndim(k) == 0 else k[..., None, :]


# -- public API: checked arguments, then the κ-stereographic maths at κ = −c ------------------------

def project(x, c=1.0, eps=None):
    """Project ``x (..., d)`` into the ball: rescale to norm ``(1 − eps)/√c`` where it is longer.

    ``eps`` is the relative margin, by default :func:`eps` of the dtype.
    """
    a, k, e = _prep(x, "x", c)
    if eps is not None:
        if not (np.isfinite(eps) and 0 <= eps < 1):
            raise ConfigurationError(f"eps: expected a relative margin in [0, 1), got {eps!r}")
        e = float(eps)
    return _K.project(a, k, e)


def conformal_factor(x, c=1.0):
    """``λ_x = 2/(1 − c‖x‖²)`` with keepdims: ``(..., d) → (..., 1)`` (``x`` projected first)."""
    a, k, e = _prep(x, "x", c)
    return _K.lambda_x(_K.project(a, k, e), k, e)


def mobius_add(x, y, c=1.0):
    """Möbius addition ``x ⊕ y`` (broadcast over leading dims; result projected into the ball)."""
    a, b, k, e = _prep2(x, y, c)
    return _K.project(_K.mobius_add(_K.project(a, k, e), _K.project(b, k, e), k), k, e)


def mobius_scalar(r, x, c=1.0):
    """Möbius scalar multiplication ``r ⊗ x = tanh(r·artanh(√c‖x‖))·x/(√c‖x‖)``.

    ``r`` is a number or an array broadcastable to the leading dimensions of ``x``.
    """
    a, k, e = _prep(x, "x", c)
    try:
        rr = np.asarray(r, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigurationError(f"r: expected a number or an array of numbers, got {r!r}") from None
    if not np.isfinite(rr).all():
        raise NumericalError(f"r: expected finite scalars, got {r!r}")
    rr = rr.astype(a.dtype)
    if rr.ndim:
        rr = rr[..., None]
    return _K.mobius_scalar(rr, _K.project(a, k, e), k, e)


def exp_map(v, p=None, c=1.0):
    """Exponential map ``exp_p(v)`` (``p=None``: the origin, ``tanh(√c‖v‖)·v/(√c‖v‖)``).

    ``d_c(p, exp_p(v)) = λ_p‖v‖`` (at the origin ``2‖v‖``), at every length the ball's margin can hold.
    """
    if p is None:
        a, k, e = _prep(v, "v", c)
        return _K.expmap0(a, k, e)
    a, b, dt = pair(v, p, "v", "p")
    k, e = -curvature(c, dt), eps(dt)
    return _K.expmap(a, _K.project(b, k, e), k, e)


def log_map(y, p=None, c=1.0):
    """Logarithmic map ``log_p(y)``, the inverse of :func:`exp_map` (``p=None``: the origin)."""
    if p is None:
        a, k, e = _prep(y, "y", c)
        return _K.logmap0(_K.project(a, k, e), k, e)
    a, b, dt = pair(y, p, "y", "p")
    k, e = -curvature(c, dt), eps(dt)
    return _K.logmap(_K.project(a, k, e), _K.project(b, k, e), k, e)


def distance(x, y, c=1.0):
    """Geodesic distance ``d_c(x, y)``, element-wise over broadcast leading dims: ``→ (...)``."""
    a, b, k, e = _prep2(x, y, c)
    return _K.distance(_K.project(a, k, e), _K.project(b, k, e), k, e)[..., 0]


def pairwise_distance(x, y, c=1.0):
    """All distances ``d_c(x_i, y_j)``: ``(..., n, d), (..., m, d) → (..., n, m)``.

    Computed from the differences ``x_i − y_j`` (exact zeros on coincident points), in chunks of
    rows so that memory stays ``O(chunk·m·d)``.
    """
    a, b, dt = pair(x, y, min_ndim=2)
    same_dim(a, b, "y")
    k, e = _kp(-curvature(c, dt)), eps(dt)  # (..., 1, 1) against (..., n, m)
    a, b = _K.project(a, k, e), _K.project(b, k, e)
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2], np.shape(k)[:-2])
    except ValueError:
        raise ShapeError(f"x, y: leading dimensions must broadcast, got {a.shape} and {b.shape}") from None
    return _K.pairwise_distance(a, b, k, e)


def to_klein(x, c=1.0):
    """Poincaré → Klein: ``x_K = 2x/(1 + c‖x‖²)``."""
    a, k, e = _prep(x, "x", c)
    return _K.to_klein(_K.project(a, k, e), k)


def from_klein(x, c=1.0):
    """Klein → Poincaré: ``x = x_K/(1 + √(1 − c‖x_K‖²))`` (Klein points outside the ball are
    first projected onto the ball of the Klein model)."""
    a, k, e = _prep(x, "x", c)
    return _K.from_klein(_K.project(a, k, e), k, e)


def einstein_midpoint(points, weights=None, c=1.0):
    """Weighted Einstein midpoint (closed form, through the Klein model): ``(..., n, d) → (..., d)``.

    ``x_K,i = 2x_i/(1 + c‖x_i‖²)``, ``γ_i = 1/√(1 − c‖x_K,i‖²)``,
    ``m_K = Σ w_i γ_i x_K,i / Σ w_i γ_i``, ``m = m_K/(1 + √(1 − c‖m_K‖²))``. Evaluated as
    ``γ_i x_K,i = λ_i x_i`` and ``γ_i = λ_i − 1`` (exact, no square root of a small difference).
    ``weights (..., n)`` are ≥ 0 (default uniform); all-zero weights give the origin.
    """
    a, w, _ = points_and_weights(points, weights)
    k, e = -curvature(c, a.dtype), eps(a.dtype)
    return _K.weighted_midpoint(_K.project(a, _kp(k), e), w.astype(a.dtype), k, e)


def frechet_mean(points, weights=None, c=1.0, tol=None, max_iter=100):
    """Weighted Fréchet (Karcher) mean ``argmin_m Σ w_i d_c(m, x_i)²``: ``(..., n, d) → (..., d)``.

    Starts at the Einstein midpoint (often already close) and iterates
    ``m ← exp_m(t·H⁻¹ g)``, ``g = Σ ŵ_i log_m(x_i)`` (``ŵ`` the normalised weights) with
    the exact Hessian of ``½Σ ŵ_i d²`` in constant curvature (eigenvalue 1 along ``log_m x_i``,
    ``s_i coth s_i`` across it, ``s_i = √c·d(m, x_i)``): a Riemannian Newton step, ``t = 1``
    halved while it does not decrease the objective (beyond its rounding noise). Near points (``s → 0``) make ``H = I`` and
    the step the plain Karcher step ``exp_m(g)`` with step 1; for spread-out points step 1 alone
    overshoots across geodesics (``s coth s > 2``) and converges slowly or not at all, hence the
    Hessian. Stops when the Riemannian gradient norm ``λ_m‖g‖`` or the length of the last step
    is below ``tol`` (default 1e-6/√c for float32, 1e-11/√c for float64), when no step
    decreases the objective any more, or after ``max_iter`` iterations. Computed in float64, returned in the input dtype.
    All-zero weights give the origin. Cost per iteration ``O(n·d²)``.
    """
    a, w, lead = points_and_weights(points, weights)
    dt = a.dtype
    if not (isinstance(max_iter, (int, np.integer)) and max_iter >= 0):
        raise ConfigurationError(f"max_iter: expected an integer >= 0, got {max_iter!r}")
    c64 = curvature(c, np.float64)
    if tol is None:
        tol = (1e-6 if dt == np.float32 else 1e-11) / np.sqrt(c64)
    elif not (np.isfinite(tol) and tol >= 0):
        raise ConfigurationError(f"tol: expected a tolerance >= 0, got {tol!r}")
    e = eps(dt)
    n, d = a.shape[-2], a.shape[-1]
    x = np.broadcast_to(_K.project(a.astype(np.float64), _kp(-c64), e), lead + (n, d))
    w = np.broadcast_to(w, lead + (n,))
    total = w.sum(axis=-1, keepdims=True)
    wn = (w / np.where(total > 0, total, 1))[..., None]  # (..., n, 1)
    m = _K.weighted_midpoint(x, wn[..., 0], -c64, e)
    if np.ndim(c64):
        c64 = np.broadcast_to(c64, lead + (1,))
    k, kp = -c64, _kp(-c64)  # κ for the mean (..., 1) and for the points (..., n, 1)

    def objective(mm):
        return np.sum(wn * _K.distance(mm[..., None, :], x, kp, e) ** 2, axis=(-2, -1))

    done = (total[..., 0] <= 0)
    f0 = objective(m)
    sc = np.sqrt(-kp)
    eye = np.eye(d)
    for _ in range(max_iter):
        if done.all():
            break
        logs = _K.logmap(x, m[..., None, :], kp, e)  # (..., n, d), Euclidean coordinates at m
        lam = _K.lambda_x(m, k, e)  # (..., 1)
        ln = norm(logs)  # (..., n, 1)
        g = lam * np.sum(wn * logs, axis=-2)  # gradient in orthonormal coordinates (λ_m scaling)
        gnorm = norm(g)[..., 0]
        done = done | (gnorm <= tol)
        if done.all():
            break
        # exact Hessian of ½Σŵ d²: 1 along u_i = log_i/‖log_i‖, s·coth(s) across (s = √c d_i)
        s = sc * lam[..., None, :] * ln
        h = np.where(s > 1e-6, s / np.tanh(np.maximum(s, 1e-6)), 1 + s * s / 3)
        u = logs / np.maximum(ln, MIN_NORM)
        hess = np.sum(wn * h, axis=-2)[..., None] * eye + np.einsum("...ni,...nj->...ij", wn * (1 - h) * u, u)
        hess = np.where(done[..., None, None], eye, hess)  # finished rows (zero weights too): identity
        step = np.linalg.solve(hess, g[..., None])[..., 0] / lam  # Newton step, back to Euclidean coords
        t = np.ones(lead + (1,))
        slack = 1e4 * np.finfo(np.float64).eps * (1 + np.abs(f0))  # rounding noise of the objective
        cand = _K.expmap(t * step, m, k, e)
        f1 = objective(cand)
        bad = ~done & ~(f1 <= f0 + slack)
        for _h in range(40):
            if not bad.any():
                break
            t = np.where(bad[..., None], t / 2, t)
            cand = _K.expmap(t * step, m, k, e)
            f1 = objective(cand)
            bad = bad & ~(f1 <= f0 + slack)
        done = done | bad  # no step decreases the objective: converged to working precision
        upd = ~done
        m = np.where(upd[..., None], cand, m)
        f0 = np.where(upd, f1, f0)
        # Newton converges quadratically: a step shorter than tol leaves the mean within ~tol²
        done = done | (t[..., 0] * (lam * norm(step))[..., 0] <= tol)
    m = np.where((total > 0), m, 0)
    return _K.project(m.astype(dt), -curvature(c, dt), e)


#: Fraction of the ball's radius at which :func:`fit_curvature` puts the farthest point.
FIT_FRACTION = 0.95
#: The largest curvature the mechanisms accept (their ``c`` bound): a ball of radius 1e-6.
MAX_CURVATURE = 1e12


def fit_curvature(points, c: float = 1.0, fraction: float = FIT_FRACTION) -> tuple[float, str]:
    """``(c', rule)``: a curvature whose ball holds ``points (..., d)`` strictly inside.

    ``c`` is kept when every point lies within ``(1 − 1e-3)/√c`` (data already in the ball, e.g. a
    hyperbolic embedding); otherwise ``c' = (fraction / max‖x‖)²``, which puts the farthest point
    at ``fraction`` (0.95) of the radius ``1/√c'`` — unit-norm embeddings then sit on the sphere
    of radius 0.95·R, never on the boundary. ``rule`` says which in words.
    """
    a = np.asarray(points, dtype=np.float64)
    top = float(np.sqrt(np.max(np.einsum("...i,...i->...", a, a), initial=0.0)))
    radius = 1.0 / np.sqrt(float(c))
    if top < (1.0 - 1e-3) * radius:
        return float(c), f"inputs inside the ball (max ‖x‖ = {top:.3g} < 1/√c = {radius:.3g}): c = {c:g} kept"
    if top == 0.0:  # pragma: no cover - a zero point is always inside
        return float(c), ""
    new = min((fraction / top) ** 2, MAX_CURVATURE)
    return new, (f"c = ({fraction}/max ‖x‖)² = {new:.4g}: the ball of radius {1 / np.sqrt(new):.4g} holds the "
                 f"farthest input (‖x‖ = {top:.4g}) at {fraction} of its radius")


__all__ = [
    "fit_curvature", "FIT_FRACTION", "eps", "project", "conformal_factor", "mobius_add", "mobius_scalar", "exp_map", "log_map",
    "distance", "pairwise_distance", "frechet_mean", "einstein_midpoint", "to_klein", "from_klein",
    "MIN_NORM",
]
