"""Vectorisable float64 ``log2`` and ``2^x`` over rows, for the Numba kernels.

NumPy's ``np.log2``/``np.exp2`` compile to libm calls, one element at a time; these loops use the
exponent bits and polynomials instead, so LLVM vectorises them (relative error ~1e-16). The float32
counterparts live with their first users (:func:`kernels.numba.hyperbolic.log2_row`,
:func:`kernels.numba._common.exp_shifted`).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from kernels.numba._common import _LOG2E, FASTMATH, MASKED_BELOW

_SQRT2 = 1.4142135623730951
#: Taylor coefficients of ``2^f = e^{f ln 2}``, ``|f| ≤ ½``: ``ln2^n/n!`` (truncation < 1e-17).
_EXP2_C = tuple(float(np.log(2.0) ** n / np.prod(np.arange(1, n + 1, dtype=np.float64))) for n in range(14))
_MANT_MASK64 = 0x000FFFFFFFFFFFFF
_ONE_BITS64 = 0x3FF0000000000000


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def log2_row64(src, dst, ibuf):
    """``dst[r] = log2(src[r])`` for finite normal ``src[r] > 0`` (float64), vectorisable: exponent
    bits plus ``2·artanh(f)·log2(e)``, ``f = (m − 1)/(m + 1)``, ``m ∈ [√½, √2)``, by its odd series
    (``|f| < 0.172``, 11 terms; relative error ~1e-16). ``dst`` may be ``src``; ``ibuf`` an int64 row."""
    n = src.shape[0]
    bits = src.view(np.int64)
    mant = ibuf.view(np.float64)
    for r in range(n):
        b = bits[r]
        e = np.float64(((b >> 52) & 0x7FF) - 1023)
        ibuf[r] = (b & _MANT_MASK64) | _ONE_BITS64
        dst[r] = e
    for r in range(n):
        m = mant[r]
        e = dst[r]
        if m > _SQRT2:
            m = m * 0.5
            e = e + 1.0
        f = (m - 1.0) / (m + 1.0)
        f2 = f * f
        p = 1.0 / 21.0
        p = p * f2 + 1.0 / 19.0
        p = p * f2 + 1.0 / 17.0
        p = p * f2 + 1.0 / 15.0
        p = p * f2 + 1.0 / 13.0
        p = p * f2 + 1.0 / 11.0
        p = p * f2 + 1.0 / 9.0
        p = p * f2 + 1.0 / 7.0
        p = p * f2 + 1.0 / 5.0
        p = p * f2 + 1.0 / 3.0
        p = p * f2 + 1.0
        dst[r] = e + (2.0 * _LOG2E) * f * p


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _exp2_split(t):
    """``2^t = p · 2^k`` for float64 ``t``: ``k = round(t)`` as exponent bits (``t`` clamped at −1023,
    whose bits are those of 0: exactly 0 for ``t < −1022.5``), ``p = 2^(t−k)``, ``|t−k| ≤ ½``, by
    a degree-13 polynomial."""
    t = max(t, -1023.0)
    k = np.floor(t + 0.5)
    f = t - k
    p = _EXP2_C[13]
    for i in range(12, -1, -1):  # Horner; a constant trip count, unrolled by LLVM
        p = p * f + _EXP2_C[i]
    return p, (np.int64(k) + 1023) << 52


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def exp2_row64(src, shift, dst, ibuf):
    """``dst[r] = 2^(src[r] − shift)`` (0 where ``src[r]`` is masked), returns ``Σ dst``
    (:func:`_exp2_split` per element, vectorisable). ``dst`` may be ``src``; ``ibuf`` an int64 work row."""
    n = src.shape[0]
    pow2 = ibuf.view(np.float64)
    for r in range(n):
        p, ibuf[r] = _exp2_split(src[r] - shift)
        dst[r] = p if src[r] > MASKED_BELOW else 0.0  # src[r] is read before dst[r] (may alias) is written
    total = 0.0
    for r in range(n):
        x = dst[r] * pow2[r]
        dst[r] = x
        total += x
    return total


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def exp2_shifted_row64(src, shift, dst, ibuf):
    """``dst[r] = 2^(src[r] − shift[r])`` (0 where masked): :func:`exp2_row64` with a per-element shift."""
    n = src.shape[0]
    pow2 = ibuf.view(np.float64)
    for r in range(n):
        p, ibuf[r] = _exp2_split(src[r] - shift[r])
        dst[r] = p if src[r] > MASKED_BELOW else 0.0
    for r in range(n):
        dst[r] = dst[r] * pow2[r]
