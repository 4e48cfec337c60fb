"""Argument checks for every public function, in one place: each failure is a ``workbench.errors``
error that names the argument, what was received and what was expected.

* :func:`float_array` — a finite real array (float64 kept, everything else float32), ragged,
  non-numeric, complex, too few dimensions and NaN/inf each refused by name;
* :func:`integer` — an integer within bounds (booleans are not integers);
* :func:`real`, :func:`positive`, :func:`non_negative` — a finite number within bounds;
* :func:`key_set` — one key set ``(n, d)``, ``n ≥ 1``;
* :func:`choice`, :func:`seed`, :func:`result_dtype`;
* :class:`Checked` — an attribute checked on every assignment (``lr = Checked(positive)``).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from workbench.errors import ConfigurationError, DataError, NumericalError, ShapeError


def float_array(name: str, x, *, min_ndim: int = 1, shape: str | None = None) -> np.ndarray:
    """``x`` as a finite float32/float64 array (float64 kept, everything else float32).

    ``shape`` names the expected shape in the message when ``x`` has fewer than ``min_ndim`` dimensions.
    """
    try:
        a = np.asarray(x)
    except ValueError as exc:  # ragged nested sequences
        raise ShapeError(f"{name}: expected a rectangular array, got a ragged sequence ({exc})") from None
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise ShapeError(f"{name}: expected a real numeric array, got dtype {a.dtype}")
    if np.iscomplexobj(a):
        raise ShapeError(f"{name}: expected a real numeric array, got dtype {a.dtype}")
    if a.ndim < min_ndim:
        want = f"shape {shape}" if shape else f"at least {min_ndim} dimension(s)"
        raise ShapeError(f"{name}: expected {want}, got shape {a.shape}")
    a = a.astype(np.float64 if a.dtype == np.float64 else np.float32, copy=False)
    if not np.isfinite(a).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise NumericalError(f"{name}: expected finite values, got {a[bad]} at index {bad}")
    return a


def device_float_array(name: str, x, *, min_ndim: int = 1, shape: str | None = None):
    """A CuPy float32/float64 array checked where it is (dimensions, dtype, finite values), with no copy to
    the host: :func:`float_array`'s checks for arrays that stay on the GPU (other dtypes are refused)."""
    if x.ndim < min_ndim:
        want = f"shape {shape}" if shape else f"at least {min_ndim} dimension(s)"
        raise ShapeError(f"{name}: expected {want}, got shape {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        raise DataError(f"{name}: expected float32 or float64 values on the GPU, got {x.dtype}")
    if not bool(np.isfinite(x).all()):
        raise NumericalError(f"{name}: expected finite values, got NaN or infinity")
    return x


def key_set(name: str, x, *, dtype=None) -> np.ndarray:
    """One key set ``x (n, d)``, ``n ≥ 1``, as an array (of ``dtype`` when given): what a mechanism builds
    a structure from (a graph, clusters)."""
    a = np.asarray(x, dtype)
    if a.ndim != 2 or a.shape[0] == 0:
        raise ShapeError(f"{name}: expected one key set of shape (n, d) with n >= 1, got shape {a.shape}")
    return a


def result_dtype(*arrays: np.ndarray):
    """float64 iff every input is float64 (the convention of ``workbench.inputs``)."""
    return np.float64 if all(a.dtype == np.float64 for a in arrays) else np.float32


def real(name: str, value, *, low: float | None = None, high: float | None = None,
         low_open: bool = False, high_open: bool = False) -> float:
    """A finite real number within the given bounds."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
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


def integer(name: str, value, *, minimum: int | None = 0, maximum: int | None = None,
            error: type = ConfigurationError) -> int:
    """An integer in ``[minimum, maximum]`` (either end may be None); booleans are refused.

    ``error`` is the class raised (:class:`~workbench.errors.DataError` for data-set arguments).
    """
    if minimum is not None and maximum is not None:
        want = f"in [{minimum}, {maximum}]"
    else:
        want = f">= {minimum}" if minimum is not None else (f"<= {maximum}" if maximum is not None else "")
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral)
            or (minimum is not None and value < minimum) or (maximum is not None and value > maximum)):
        raise error(f"{name}: expected an integer {want}".rstrip() + f", got {value!r}")
    return int(value)


def seed(value) -> int:
    """A seed for ``numpy.random.default_rng``: any integer >= 0 (0 included)."""
    return integer("seed", value, minimum=0)


def choice(name: str, value, options) -> str:
    if not isinstance(value, str) or value.lower() not in options:
        raise ConfigurationError(f"{name}: expected one of {list(options)}, got {value!r}")
    return value.lower()


class Checked:
    """An attribute that passes ``check(name, value)`` on every assignment (construction included).

    The checked value is stored as ``_<name>`` on the instance, for the hot paths to read.
    ``class Opt: lr = Checked(positive)`` makes ``opt.lr = 0`` raise as ``positive("lr", 0)`` does.
    """

    def __init__(self, check) -> None:
        self.check = check

    def __set_name__(self, owner, name: str) -> None:
        self.name, self.slot = name, "_" + name

    def __get__(self, obj, owner=None):
        return self if obj is None else getattr(obj, self.slot)

    def __set__(self, obj, value) -> None:
        setattr(obj, self.slot, self.check(self.name, value))
