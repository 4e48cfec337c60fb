"""Argument checks shared by the training utilities: every failure is a ``workbench.errors`` error
that names the argument, what was received and what was expected."""
from __future__ import annotations

import math
import numbers

import numpy as np

from workbench.errors import ConfigurationError, NumericalError, ShapeError


def float_array(name: str, x, *, min_ndim: int = 1) -> np.ndarray:
    """``x`` as a finite float32/float64 array (float64 kept, everything else float32)."""
    try:
        a = np.asarray(x)
    except ValueError as exc:  # ragged nested sequences
        raise ShapeError(f"{name}: expected a rectangular array, got a ragged sequence ({exc})") from None
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise ShapeError(f"{name}: expected a numeric array, got dtype {a.dtype}")
    if np.iscomplexobj(a):
        raise ShapeError(f"{name}: expected a real array, got dtype {a.dtype}")
    if a.ndim < min_ndim:
        raise ShapeError(f"{name}: expected at least {min_ndim} dimension(s), got shape {a.shape}")
    a = a.astype(np.float64 if a.dtype == np.float64 else np.float32, copy=False)
    if not np.isfinite(a).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise NumericalError(f"{name}: expected finite values, got {a[bad]} at index {bad}")
    return a


def result_dtype(*arrays: np.ndarray):
    """float64 iff every input is float64 (the convention of ``workbench.inputs``)."""
    return np.float64 if all(a.dtype == np.float64 for a in arrays) else np.float32


def real(name: str, value, *, low: float | None = None, high: float | None = None,
         low_open: bool = False, high_open: bool = False) -> float:
    """A finite real number within the given bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigurationError(f"{name}: expected a real number, got {value!r}")
    v = float(value)
    ok = math.isfinite(v)
    if ok and low is not None:
        ok = v > low if low_open else v >= low
    if ok and high is not None:
        ok = v < high if high_open else v <= high
    if not ok:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        hi = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
        want = " and ".join(s for s in (lo, hi) if s) or "finite"
        raise ConfigurationError(f"{name}: expected a finite number {want}, got {value!r}")
    return v


def positive(name: str, value) -> float:
    return real(name, value, low=0.0, low_open=True)


def non_negative(name: str, value) -> float:
    return real(name, value, low=0.0)


def integer(name: str, value, *, minimum: int = 0) -> int:
    """An integer ``>= minimum`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigurationError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise ConfigurationError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def seed(value) -> int:
    """A seed for ``numpy.random.default_rng``: any integer >= 0 (0 included)."""
    return integer("seed", value, minimum=0)


def choice(name: str, value, options) -> str:
    if not isinstance(value, str) or value.lower() not in options:
        raise ConfigurationError(f"{name}: expected one of {list(options)}, got {value!r}")
    return value.lower()
