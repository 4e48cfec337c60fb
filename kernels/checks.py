"""Argument checks shared by the top-level kernel wrappers (each raises :class:`BackendError`
naming the argument and what was expected). ``kernels`` never imports ``workbench``."""
from __future__ import annotations

import math

import numpy as np

from kernels.capabilities import BackendError


def positive(name: str, value, what: str | None = None) -> float:
    """``float(value)`` when finite and ``> 0``; ``what`` names it in the message (default ``name``)."""
    x = float(value)
    if not math.isfinite(x) or x <= 0:
        raise BackendError(f"{name}: expected a {what or name} > 0, got {value!r}")
    return x


def one_of(name: str, value, choices) -> None:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        raise BackendError(f"{name}: expected one of {choices}, got {value!r}")


def positive_int(name: str, value) -> int:
    """``value`` as an ``int >= 1`` (a bool is not a count)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise BackendError(f"{name}: expected an integer >= 1, got {value!r}")
    return int(value)
