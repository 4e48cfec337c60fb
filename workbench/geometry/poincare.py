"""The Poincaré ball ``B_c = {x : c‖x‖² < 1}`` (curvature ``−c``, radius ``1/√c``), as pure functions.

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

from workbench.errors import ConfigurationError, NumericalError, ShapeError

#: Relative boundary margin of the ball by dtype: points satisfy ``√c‖x‖ ≤ 1 − eps``.
#: The same 1e-5 for float64 as for float32 (as geoopt's float64 ball margin), not 1e-15: a
#: float64 point at margin ``e`` is only known to ``ε_mach/e`` in hyperbolic distance (1e-4 at
#: 1e-12, 0.1 at 1e-15), which made Fréchet means and Einstein midpoints of boundary points
#: depend on summation order at the 1e-5 level; at 1e-5 it is 1e-11. It also makes float32 and
#: float64 project every input to the same point (the same answers to float32 precision), and
#: still reaches distances of ``ln(2/1e-5)/√c ≈ 12.2/√c`` from the origin.
_EPS = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-5}
#: Floor of norms used as divisors (``v/‖v‖`` of a zero vector gives 0, not NaN).
MIN_NORM = 1e-15


def eps(dtype) -> float:
    """Relative boundary margin for ``dtype`` (1e-5 for float32 and float64, see ``_EPS``)."""
    dt = np.dtype(dtype)
    if dt in _EPS:
        return _EPS[dt]
    return _EPS[np.dtype(np.float64)] if dt.itemsize >= 8 else _EPS[np.dtype(np.float32)]


# -- validation helpers (shared by the other geometry modules) --------------------------------

def _float(x, name: str, min_ndim: int = 1) -> np.ndarray:
    """``x`` as a float32/float64 array with at least ``min_ndim`` dimensions and finite values."""
    try:
        a = np.asarray(x)
    except ValueError as exc:
        raise ShapeError(f"{name}: expected a rectangular array, got a ragged sequence ({exc})") from None
    if a.dtype.kind not in "biuf":
        raise ShapeError(f"{name}: expected a real numeric array, got dtype {a.dtype}")
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float32 if (a.dtype.kind == "f" and a.dtype.itemsize < 4) else np.float64)
    if a.ndim < min_ndim:
        what = "(..., d)" if min_ndim == 1 else "(..., n, d)"
        raise ShapeError(f"{name}: expected shape {what} with the vector on the last axis, got shape {a.shape}")
    if a.shape[-1] == 0:
        raise ShapeError(f"{name}: expected a vector dimension d >= 1, got shape {a.shape}")
    if not np.isfinite(a).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise NumericalError(f"{name}: expected finite values, got {a[bad]} at index {bad}")
    return a


def _dtype(*arrays) -> np.dtype:
    return np.dtype(np.float64) if any(a.dtype == np.float64 for a in arrays) else np.dtype(np.float32)


def _curvature(c, dtype, name: str = "c", allow_zero: bool = False, signed: bool = False):
    """Curvature as a dtype scalar, or as an array with a trailing axis (``(..., 1)``)."""
    try:
        arr = np.asarray(c, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name}: expected a number, got {c!r}") from None
    with np.errstate(over="ignore"):
        cast = arr.astype(dtype)
    if not np.isfinite(cast).all():
        raise ConfigurationError(f"{name}: expected a finite curvature representable in {np.dtype(dtype)}, got {c!r}")
    if not signed:
        if (arr < 0).any() or (not allow_zero and (arr == 0).any()):
            raise ConfigurationError(
                f"{name}: expected a curvature {name} > 0 (the ball of radius 1/sqrt({name})), got {c!r}")
        if not allow_zero and (cast == 0).any():
            raise ConfigurationError(f"{name}: curvature {c!r} underflows to 0 in {np.dtype(dtype)}")
    if cast.ndim == 0:
        return np.dtype(dtype).type(cast)
    return cast[..., None]


def _sqnorm(x: np.ndarray) -> np.ndarray:
    """``‖x‖²`` with keepdims (may be inf for huge finite inputs)."""
    with np.errstate(over="ignore"):
        return np.einsum("...i,...i->...", x, x)[..., None]


def _norm(x: np.ndarray) -> np.ndarray:
    """``‖x‖`` with keepdims, without overflow for huge finite entries."""
    n2 = _sqnorm(x)
    if np.isfinite(n2).all():
        return np.sqrt(n2)
    s = np.max(np.abs(x), axis=-1, keepdims=True)
    s = np.where(s > 0, s, 1).astype(x.dtype)
    return s * np.sqrt(_sqnorm(x / s))


def _dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.sum(x * y, axis=-1, keepdims=True)


def _artanh(z: np.ndarray, e: float) -> np.ndarray:
    lim = z.dtype.type(1.0 - e) if hasattr(z, "dtype") else 1.0 - e
    return np.arctanh(np.clip(z, -lim, lim))


def _acosh1p(delta: np.ndarray) -> np.ndarray:
    """``arcosh(1 + δ)`` for ``δ ≥ 0``, accurate for small ``δ`` and without overflow."""
    delta = np.maximum(delta, 0)
    return np.log1p(delta + np.sqrt(delta) * np.sqrt(delta + 2))


# -- unvalidated maths (inputs already arrays of one float dtype, c from _curvature) ----------

def _project(x, c, e):
    n = _norm(x)
    maxnorm = (1 - x.dtype.type(e)) / np.sqrt(c)
    scale = np.where(n > maxnorm, maxnorm / np.maximum(n, MIN_NORM), 1).astype(x.dtype)
    return x * scale


def _one_minus(c, x2, e):
    """``1 − c‖x‖²`` floored at ``e`` (the margin keeps projected points above it)."""
    return np.maximum(1 - c * x2, e)


def _mobius_add_raw(x, y, c):
    """``x ⊕ y = ((1 + 2c⟨x,y⟩ + c‖y‖²)x + (1 − c‖x‖²)y) / (1 + 2c⟨x,y⟩ + c²‖x‖²‖y‖²)``, rearranged so
    that two points near the boundary on opposite sides (where the result is a tiny difference of
    terms of size 1) keep their digits:

    * numerator ``(1 + c⟨x,y⟩)·s + c·(⟨y,s⟩x − ⟨x,s⟩y)`` with ``s = x + y`` (expand to check); the
      second term vanishes for collinear points instead of cancelling;
    * denominator ``(1 + c⟨x,y⟩)² + c²‖x‖²‖y_⊥‖²``, ``y_⊥`` the part of ``y`` orthogonal to ``x``
      (Lagrange's identity).

    Summed as written above, a step of length 20 from a point at distance 11 landed 1.5e-3 off.
    """
    x2, xy = _sqnorm(x), _dot(x, y)
    s = x + y
    one = 1 + c * xy
    num = one * s + c * (_dot(y, s) * x - _dot(x, s) * y)
    y_perp = y - (xy / np.maximum(x2, MIN_NORM)) * x
    den = one * one + c * c * x2 * _sqnorm(y_perp)
    return num / np.maximum(den, MIN_NORM)


def _mobius_add(x, y, c, e):
    return _project(_mobius_add_raw(x, y, c), c, e)


def _expmap0(v, c, e):
    sc = np.sqrt(c)
    n = np.maximum(_norm(v), MIN_NORM)
    return _project(np.tanh(sc * n) * (v / (sc * n)), c, e)


def _logmap0(y, c, e):
    sc = np.sqrt(c)
    n = np.maximum(_norm(y), MIN_NORM)
    return _artanh(sc * n, e) * (y / (sc * n))


def _expmap(v, p, c, e):
    """``p ⊕ tanh(√c λ_p‖v‖/2)·v/(√c‖v‖)``, projected once at the end. The second term is the
    point at distance ``λ_p‖v‖`` from the origin; it is *not* projected before the addition (that
    capped every step at the margin's reach, ``2·artanh(1 − eps)/√c`` ≈ 12.2/√c, so an inward step
    of length 13 from a point at distance 6 landed at 12.2 instead of 13): unprojected, it keeps all
    the digits ``tanh`` gives, and only points the ball cannot hold are projected."""
    sc = np.sqrt(c)
    lam = 2 / _one_minus(c, _sqnorm(p), e)
    n = np.maximum(_norm(v), MIN_NORM)
    second = np.tanh(sc * lam * n / 2) * (v / (sc * n))
    return _mobius_add(p, second, c, e)


def _logmap(y, p, c, e):
    """``(d_c(p, y)/λ_p)·w/‖w‖``, ``w = (−p) ⊕ y``: the same as ``(2/(√c λ_p)) artanh(√c‖w‖) w/‖w‖``,
    but with the length from the accurate distance formula and ``w`` not projected (``(−p) ⊕ y``
    may lie farther from the origin than the ball's margin allows, e.g. for two boundary points
    on opposite sides; clipping it would make ``log`` inconsistent with ``distance``)."""
    w = _mobius_add_raw(-p, y, c)
    lam = 2 / _one_minus(c, _sqnorm(p), e)
    n = np.maximum(_norm(w), MIN_NORM)
    return (_distance(p, y, c, e) / lam) * (w / n)


def _distance(x, y, c, e):
    """``d_c(x, y)`` with keepdims (inputs inside the ball)."""
    diff2 = _sqnorm(x - y)
    delta = 2 * c * diff2 / (_one_minus(c, _sqnorm(x), e) * _one_minus(c, _sqnorm(y), e))
    return _acosh1p(delta) / np.sqrt(c)


def _einstein(points, w, c, e):
    """Weighted Einstein midpoint of ``points (..., n, d)`` with weights ``w (..., n)``."""
    x2 = _sqnorm(points)  # (..., n, 1)
    om = _one_minus(c if np.ndim(c) == 0 else c[..., None, :], x2, e)
    lam = 2 / om  # γ_i x_K,i = λ_i x_i and γ_i = λ_i − 1 (exact rewriting of the Klein formulas)
    gamma = lam - 1
    num = np.sum((w[..., None] * lam) * points, axis=-2)
    den = np.sum(w[..., None] * gamma, axis=-2)
    mk = num / np.where(den > 0, den, 1)
    mk = np.where(den > 0, mk, 0)
    return _from_klein(mk, c, e)


def _to_klein(x, c):
    return 2 * x / (1 + c * _sqnorm(x))


def _from_klein(xk, c, e):
    root = np.sqrt(np.maximum(1 - c * _sqnorm(xk), 0))
    return _project(xk / (1 + root), c, e)


def _prep(x, name, c, min_ndim=1, dtype=None):
    a = _float(x, name, min_ndim)
    if dtype is not None:
        a = a.astype(dtype, copy=False)
    cc = _curvature(c, a.dtype)
    return a, cc, eps(a.dtype)


# -- public API ----------------------------------------------------------------------------

def project(x, c=1.0, eps=None):
    """Project ``x (..., d)`` into the ball: rescale to norm ``(1 − eps)/√c`` where it is longer.

    ``eps`` is the relative margin, by default :func:`eps` of the dtype.
    """
    a, cc, e = _prep(x, "x", c)
    if eps is not None:
        if not (np.isfinite(eps) and 0 <= eps < 1):
            raise ConfigurationError(f"eps: expected a relative margin in [0, 1), got {eps!r}")
        e = float(eps)
    return _project(a, cc, e)


def conformal_factor(x, c=1.0):
    """``λ_x = 2/(1 − c‖x‖²)`` with keepdims: ``(..., d) → (..., 1)`` (``x`` projected first)."""
    a, cc, e = _prep(x, "x", c)
    a = _project(a, cc, e)
    return 2 / _one_minus(cc, _sqnorm(a), e)


def mobius_add(x, y, c=1.0):
    """Möbius addition ``x ⊕ y`` (broadcast over leading dims; result projected into the ball)."""
    a, b = _float(x, "x"), _float(y, "y")
    dt = _dtype(a, b)
    a, b = a.astype(dt, copy=False), b.astype(dt, copy=False)
    cc, e = _curvature(c, dt), eps(dt)
    return _mobius_add(_project(a, cc, e), _project(b, cc, e), cc, e)


def mobius_scalar(r, x, c=1.0):
    """Möbius scalar multiplication ``r ⊗ x = tanh(r·artanh(√c‖x‖))·x/(√c‖x‖)``.

    ``r`` is a number or an array broadcastable to the leading dimensions of ``x``.
    """
    a, cc, e = _prep(x, "x", c)
    try:
        rr = np.asarray(r, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigurationError(f"r: expected a number or an array of numbers, got {r!r}") from None
    if not np.isfinite(rr).all():
        raise NumericalError(f"r: expected finite scalars, got {r!r}")
    rr = rr.astype(a.dtype)
    if rr.ndim:
        rr = rr[..., None]
    a = _project(a, cc, e)
    sc = np.sqrt(cc)
    n = np.maximum(_norm(a), MIN_NORM)
    return _project(np.tanh(rr * _artanh(sc * n, e)) * (a / (sc * n)), cc, e)


def exp_map(v, p=None, c=1.0):
    """Exponential map ``exp_p(v)`` (``p=None``: the origin, ``tanh(√c‖v‖)·v/(√c‖v‖)``)."""
    a = _float(v, "v")
    if p is None:
        cc = _curvature(c, a.dtype)
        return _expmap0(a, cc, eps(a.dtype))
    b = _float(p, "p")
    dt = _dtype(a, b)
    a, b = a.astype(dt, copy=False), b.astype(dt, copy=False)
    cc, e = _curvature(c, dt), eps(dt)
    return _expmap(a, _project(b, cc, e), cc, e)


def log_map(y, p=None, c=1.0):
    """Logarithmic map ``log_p(y)``, the inverse of :func:`exp_map` (``p=None``: the origin)."""
    a = _float(y, "y")
    if p is None:
        cc = _curvature(c, a.dtype)
        e = eps(a.dtype)
        return _logmap0(_project(a, cc, e), cc, e)
    b = _float(p, "p")
    dt = _dtype(a, b)
    a, b = a.astype(dt, copy=False), b.astype(dt, copy=False)
    cc, e = _curvature(c, dt), eps(dt)
    return _logmap(_project(a, cc, e), _project(b, cc, e), cc, e)


def distance(x, y, c=1.0):
    """Geodesic distance ``d_c(x, y)``, element-wise over broadcast leading dims: ``→ (...)``."""
    a, b = _float(x, "x"), _float(y, "y")
    dt = _dtype(a, b)
    a, b = a.astype(dt, copy=False), b.astype(dt, copy=False)
    cc, e = _curvature(c, dt), eps(dt)
    return _distance(_project(a, cc, e), _project(b, cc, e), cc, e)[..., 0]


def pairwise_distance(x, y, c=1.0):
    """All distances ``d_c(x_i, y_j)``: ``(..., n, d), (..., m, d) → (..., n, m)``.

    Computed from the differences ``x_i − y_j`` (exact zeros on coincident points), in chunks of
    rows so that memory stays ``O(chunk·m·d)``.
    """
    a, b = _float(x, "x", 2), _float(y, "y", 2)
    if a.shape[-1] != b.shape[-1]:
        raise ShapeError(f"y: expected vector dimension d={a.shape[-1]} (from x), got shape {b.shape}")
    dt = _dtype(a, b)
    a, b = a.astype(dt, copy=False), b.astype(dt, copy=False)
    cc, e = _curvature(c, dt), eps(dt)
    if np.ndim(cc):
        cc = cc[..., None]  # (..., 1, 1) against (..., n, m, 1)
    a, b = _project(a, cc, e), _project(b, cc, e)
    try:
        lead = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ShapeError(f"x, y: leading dimensions must broadcast, got {a.shape} and {b.shape}") from None
    n, m, d = a.shape[-2], b.shape[-2], a.shape[-1]
    out = np.empty(lead + (n, m), dt)
    ax2 = _one_minus(cc, _sqnorm(a), e)  # (..., n, 1)
    by2 = _one_minus(cc, _sqnorm(b), e)[..., 0]  # (..., m)
    step = max(1, (1 << 22) // max(1, m * d * max(1, int(np.prod(lead, dtype=np.int64)))))
    sc = np.sqrt(cc)
    for i0 in range(0, n, step):
        i1 = min(n, i0 + step)
        diff2 = _sqnorm(a[..., i0:i1, None, :] - b[..., None, :, :])[..., 0]  # (..., chunk, m)
        cc_ = cc if np.ndim(cc) == 0 else cc[..., 0]
        delta = 2 * cc_ * diff2 / (ax2[..., i0:i1, :] * by2[..., None, :])
        out[..., i0:i1, :] = _acosh1p(delta) / (sc if np.ndim(sc) == 0 else sc[..., 0])
    return out


def to_klein(x, c=1.0):
    """Poincaré → Klein: ``x_K = 2x/(1 + c‖x‖²)``."""
    a, cc, e = _prep(x, "x", c)
    return _to_klein(_project(a, cc, e), cc)


def from_klein(x, c=1.0):
    """Klein → Poincaré: ``x = x_K/(1 + √(1 − c‖x_K‖²))`` (Klein points outside the ball are
    first projected onto the ball of the Klein model)."""
    a, cc, e = _prep(x, "x", c)
    return _from_klein(_project(a, cc, e), cc, e)


def _weights(weights, points: np.ndarray, dtype=np.float64) -> np.ndarray:
    n = points.shape[-2]
    if weights is None:
        return np.full(points.shape[:-1], 1.0 / n, dtype)
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigurationError(f"weights: expected an array of numbers, got {weights!r}") from None
    if w.ndim == 0 or w.shape[-1] != n:
        raise ShapeError(f"weights: expected shape (..., {n}) (one weight per point), got shape {w.shape}")
    if not np.isfinite(w).all():
        raise NumericalError("weights: expected finite weights, got NaN or infinity")
    if (w < 0).any():
        raise ConfigurationError(f"weights: expected weights >= 0, got a minimum of {w.min()!r}")
    return w.astype(dtype)


def _points_and_weights(points, weights, c, name="points"):
    a = _float(points, name, 2)
    if a.shape[-2] == 0:
        raise ShapeError(f"{name}: expected at least one point, got shape {a.shape}")
    w = _weights(weights, a)
    try:
        lead = np.broadcast_shapes(a.shape[:-2], w.shape[:-1])
    except ValueError:
        raise ShapeError(f"weights: leading dimensions {w.shape[:-1]} do not broadcast with those of "
                         f"{name} {a.shape[:-2]}") from None
    return a, w, lead


def einstein_midpoint(points, weights=None, c=1.0):
    """Weighted Einstein midpoint (closed form, through the Klein model): ``(..., n, d) → (..., d)``.

    ``x_K,i = 2x_i/(1 + c‖x_i‖²)``, ``γ_i = 1/√(1 − c‖x_K,i‖²)``,
    ``m_K = Σ w_i γ_i x_K,i / Σ w_i γ_i``, ``m = m_K/(1 + √(1 − c‖m_K‖²))``. Evaluated as
    ``γ_i x_K,i = λ_i x_i`` and ``γ_i = λ_i − 1`` (exact, no square root of a small difference).
    ``weights (..., n)`` are ≥ 0 (default uniform); all-zero weights give the origin.
    """
    a, w, lead = _points_and_weights(points, weights, c)
    cc, e = _curvature(c, a.dtype), eps(a.dtype)
    a = _project(a, cc if np.ndim(cc) == 0 else cc[..., None, :], e)
    return _einstein(a, w.astype(a.dtype), cc, e)


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
    a, w, lead = _points_and_weights(points, weights, c)
    dt = a.dtype
    if not (isinstance(max_iter, (int, np.integer)) and max_iter >= 0):
        raise ConfigurationError(f"max_iter: expected an integer >= 0, got {max_iter!r}")
    c64 = _curvature(c, np.float64)
    if tol is None:
        tol = (1e-6 if dt == np.float32 else 1e-11) / np.sqrt(c64)
    elif not (np.isfinite(tol) and tol >= 0):
        raise ConfigurationError(f"tol: expected a tolerance >= 0, got {tol!r}")
    e = eps(dt)
    n, d = a.shape[-2], a.shape[-1]
    cp = c64 if np.ndim(c64) == 0 else c64[..., None, :]
    x = np.broadcast_to(_project(a.astype(np.float64), cp, e), lead + (n, d))
    w = np.broadcast_to(w, lead + (n,))
    total = w.sum(axis=-1, keepdims=True)
    wn = (w / np.where(total > 0, total, 1))[..., None]  # (..., n, 1)
    m = _einstein(x, wn[..., 0], c64, e)
    if np.ndim(c64):
        c64 = np.broadcast_to(c64, lead + (1,))
    cp = c64 if np.ndim(c64) == 0 else c64[..., None, :]

    def objective(mm):
        return np.sum(wn * _distance(mm[..., None, :], x, cp, e) ** 2, axis=(-2, -1))

    done = (total[..., 0] <= 0)
    f0 = objective(m)
    sc = np.sqrt(cp)
    eye = np.eye(d)
    for _ in range(max_iter):
        if done.all():
            break
        logs = _logmap(x, m[..., None, :], cp, e)  # (..., n, d), Euclidean coordinates at m
        lam = 2 / _one_minus(c64, _sqnorm(m), e)  # (..., 1)
        ln = _norm(logs)  # (..., n, 1)
        g = lam * np.sum(wn * logs, axis=-2)  # gradient in orthonormal coordinates (λ_m scaling)
        gnorm = _norm(g)[..., 0]
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
        cand = _expmap(t * step, m, c64, e)
        f1 = objective(cand)
        bad = ~done & ~(f1 <= f0 + slack)
        for _h in range(40):
            if not bad.any():
                break
            t = np.where(bad[..., None], t / 2, t)
            cand = _expmap(t * step, m, c64, e)
            f1 = objective(cand)
            bad = bad & ~(f1 <= f0 + slack)
        done = done | bad  # no step decreases the objective: converged to working precision
        upd = ~done
        m = np.where(upd[..., None], cand, m)
        f0 = np.where(upd, f1, f0)
        # Newton converges quadratically: a step shorter than tol leaves the mean within ~tol²
        done = done | (t[..., 0] * (lam * _norm(step))[..., 0] <= tol)
    m = np.where((total > 0), m, 0)
    return _project(m.astype(dt), _curvature(c, dt), e)


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
