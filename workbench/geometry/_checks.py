"""Argument checking shared by the geometry wrappers: arrays, dtypes, curvatures and weights.

Each helper returns the argument in the form :mod:`kernels.geometry` expects (a float32/float64
array, a curvature in that dtype) or raises a :mod:`workbench.errors` error that names the argument,
says what it received and what was expected.
"""
from __future__ import annotations

import numpy as np

from workbench.errors import ConfigurationError, NumericalError, ShapeError


def floats(x, name: str, min_ndim: int = 1) -> np.ndarray:
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


def common_dtype(*arrays) -> np.dtype:
    """float64 if any array is float64, else float32."""
    return np.dtype(np.float64) if any(a.dtype == np.float64 for a in arrays) else np.dtype(np.float32)


def pair(x, y, nx="x", ny="y", min_ndim=1):
    """Two checked arrays in their common dtype: ``(a, b, dtype)``."""
    a, b = floats(x, nx, min_ndim), floats(y, ny, min_ndim)
    dt = common_dtype(a, b)
    return a.astype(dt, copy=False), b.astype(dt, copy=False), dt


def same_dim(a, b, name: str, what: str = "vector dimension d", source: str = "x"):
    """Raise ShapeError (naming ``name``) unless ``a`` and ``b`` have the same last dimension."""
    if a.shape[-1] != b.shape[-1]:
        raise ShapeError(f"{name}: expected {what}={a.shape[-1]} (from {source}), got shape {b.shape}")


def curvature(c, dtype, name: str = "c", allow_zero: bool = False, signed: bool = False):
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


def weights(w, points: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Weights ``(..., n)`` ≥ 0 for ``points (..., n, d)`` (``None``: uniform ``1/n``)."""
    n = points.shape[-2]
    if w is None:
        return np.full(points.shape[:-1], 1.0 / n, dtype)
    try:
        a = np.asarray(w, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigurationError(f"weights: expected an array of numbers, got {w!r}") from None
    if a.ndim == 0 or a.shape[-1] != n:
        raise ShapeError(f"weights: expected shape (..., {n}) (one weight per point), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise NumericalError("weights: expected finite weights, got NaN or infinity")
    if (a < 0).any():
        raise ConfigurationError(f"weights: expected weights >= 0, got a minimum of {a.min()!r}")
    return a.astype(dtype)


def points_and_weights(points, w, name="points", min_dim=1):
    """``(points (..., n, d), weights (..., n) float64, broadcast leading shape)``, at least one point."""
    a = floats(points, name, 2)
    if a.shape[-1] < min_dim:
        raise ShapeError(f"{name}: expected hyperboloid points (..., n, d+1) with d >= 1, got shape {a.shape}")
    if a.shape[-2] == 0:
        raise ShapeError(f"{name}: expected at least one point, got shape {a.shape}")
    ww = weights(w, a)
    try:
        lead = np.broadcast_shapes(a.shape[:-2], ww.shape[:-1])
    except ValueError:
        raise ShapeError(f"weights: leading dimensions {ww.shape[:-1]} do not broadcast with those of "
                         f"{name} {a.shape[:-2]}") from None
    return a, ww, lead
