"""The numerical guards of the geometry, in one place: margins by dtype, safe norms, clamped inverses.

* :func:`eps` — the relative boundary margin of the Poincaré ball by dtype: projected points
  satisfy ``√c‖x‖ ≤ 1 − eps``;
* :data:`MIN_NORM` — the floor of every norm used as a divisor (``v/‖v‖`` of a zero vector is 0);
* :func:`norm` — ``‖x‖`` without overflow for huge finite entries;
* :func:`artanh` — ``artanh`` with its argument clamped to ``[−(1 − e), 1 − e]``;
* :func:`acosh1p` — ``arcosh(1 + δ) = log1p(δ + √δ·√(δ + 2))``, accurate for small ``δ``, no overflow;
* :func:`pairwise_sq` — ``‖x_i ∓ y_j‖²`` from the differences (no cancellation), in row chunks.

Pure NumPy; imports nothing from ``workbench``.
"""
from __future__ import annotations

import numpy as np

#: Relative boundary margin of the ball by dtype: points satisfy ``√c‖x‖ ≤ 1 − eps``.
#: The same 1e-5 for float64 as for float32 (as geoopt's float64 ball margin), not 1e-15: a
#: float64 point at margin ``e`` is only known to ``ε_mach/e`` in hyperbolic distance (1e-4 at
#: 1e-12, 0.1 at 1e-15), which made Fréchet means and Einstein midpoints of boundary points
#: depend on summation order at the 1e-5 level; at 1e-5 it is 1e-11. It also makes float32 and
#: float64 project every input to the same point (the same answers to float32 precision), and
#: still reaches distances of ``ln(2/1e-5)/√c ≈ 12.2/√c`` from the origin.
EPS = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-5}
#: Floor of norms used as divisors (``v/‖v‖`` of a zero vector gives 0, not NaN).
MIN_NORM = 1e-15
#: Elements of one ``(..., rows, m, width)`` temporary of :func:`pairwise_sq` (rows are chunked).
CHUNK = 1 << 22


def eps(dtype) -> float:
    """Relative boundary margin for ``dtype`` (1e-5 for float32 and float64, see :data:`EPS`)."""
    dt = np.dtype(dtype)
    if dt in EPS:
        return EPS[dt]
    return EPS[np.dtype(np.float64)] if dt.itemsize >= 8 else EPS[np.dtype(np.float32)]


def curvature(k, dtype):
    """A curvature as a ``dtype`` scalar or a ``dtype`` array (so that maths stays in ``dtype``)."""
    if np.ndim(k) == 0:
        return np.dtype(dtype).type(k)
    return np.asarray(k, dtype=dtype)


def sqnorm(x: np.ndarray) -> np.ndarray:
    """``‖x‖²`` with keepdims (may be inf for huge finite inputs)."""
    with np.errstate(over="ignore"):
        return np.einsum("...i,...i->...", x, x)[..., None]


def norm(x: np.ndarray) -> np.ndarray:
    """``‖x‖`` with keepdims, without overflow for huge finite entries."""
    n2 = sqnorm(x)
    if np.isfinite(n2).all():
        return np.sqrt(n2)
    s = np.max(np.abs(x), axis=-1, keepdims=True)
    s = np.where(s > 0, s, 1).astype(x.dtype)
    return s * np.sqrt(sqnorm(x / s))


def dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``⟨x, y⟩`` with keepdims (broadcast)."""
    return np.sum(x * y, axis=-1, keepdims=True)


def artanh(z, e: float):
    """``artanh(z)`` with ``z`` clamped to ``[−(1 − e), 1 − e]`` (finite, in the dtype of ``z``)."""
    lim = z.dtype.type(1.0 - e) if hasattr(z, "dtype") else 1.0 - e
    return np.arctanh(np.clip(z, -lim, lim))


def acosh1p(delta):
    """``arcosh(1 + δ)`` for ``δ ≥ 0`` (negative ``δ`` read as 0), accurate for small ``δ``, no overflow."""
    delta = np.maximum(delta, 0)
    return np.log1p(delta + np.sqrt(delta) * np.sqrt(delta + 2))


def pairwise_sq(x, y, sign=-1.0):
    """``Σ_t (x_it ± y_jt)²`` from the sums/differences themselves (no cancellation):
    ``(..., n, w), (..., m, w) → (..., n, m)`` (leading dimensions broadcast; ``sign = −1``:
    differences). Rows are chunked so that the ``(..., rows, m, w)`` temporary stays below :data:`CHUNK`."""
    lead = np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    n, m, w = x.shape[-2], y.shape[-2], x.shape[-1]
    out = np.empty(lead + (n, m), dtype=np.result_type(x, y))
    step = max(1, CHUNK // max(1, int(np.prod(lead, dtype=np.int64)) * m * w))
    for i0 in range(0, n, step):
        t = x[..., i0:i0 + step, None, :] + sign * y[..., None, :, :]
        with np.errstate(over="ignore"):
            out[..., i0:i0 + step, :] = np.einsum("...i,...i->...", t, t)
    return out


__all__ = ["EPS", "MIN_NORM", "CHUNK", "eps", "curvature", "sqnorm", "norm", "dot", "artanh", "acosh1p",
           "pairwise_sq"]
