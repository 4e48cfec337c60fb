"""Shared pieces of the Numba kernels: fast-math flags, a vectorisable exp, BLAS threading.

The kernels parallelise over (batch, query block) with ``prange`` and call single-threaded
BLAS (``np.dot``) inside each work item. OpenBLAS left multi-threaded while called from two
threads at once runs several times slower, so every parallel kernel runs under
:func:`single_threaded_blas` (which limits only the BLAS library Numba calls, see
:mod:`kernels.blas_threads`).
"""
from __future__ import annotations

import contextlib
import os

# Numba's OpenMP workers spin while idle by default; on a small machine every following
# Numba launch or multi-threaded BLAS call then waits for a time slice (measured: ~16 ms per
# call on 2 cores, against 0.2–0.7 ms passive). Read by libgomp when Numba first starts its
# thread pool; an explicit setting of the user's wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba
import numpy as np
from numba import njit, types
from numba.extending import overload

from kernels.blas_threads import one_blas_thread

#: Fast-math flags without ``nnan``/``ninf``: masked scores must compare exactly.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

#: Score given to a key a query may not attend. Finite, so that fast-math comparisons stay
#: exact; scores of finite inputs this negative are treated as masked.
MASKED = -1.0e30
#: Anything at or below this is a masked score.
MASKED_BELOW = -1.0e29

_LOG2E = 1.4426950408889634


@njit(inline="always", fastmath=FASTMATH)
def _exp2_parts(t):
    """``2^t = p · 2^n`` for float32 ``t``: ``n = round(t)``, ``p = 2^(t−n)`` by a degree-6
    polynomial on ``[−½, ½]`` (relative error < 2e-7), ``2^n`` returned as exponent bits.
    ``t`` is clamped at −127, whose exponent bits are those of 0: ``2^t`` underflows to exactly 0
    for ``t < −126.5`` (it would be subnormal, which fast math flushes anyway)."""
    t = max(t, np.float32(-127.0))
    r = np.floor(t + np.float32(0.5))
    f = t - r
    p = np.float32(1.5353362e-4)
    p = p * f + np.float32(1.3398874e-3)
    p = p * f + np.float32(9.6180677e-3)
    p = p * f + np.float32(5.5503324e-2)
    p = p * f + np.float32(2.4022648e-1)
    p = p * f + np.float32(6.9314718e-1)
    p = p * f + np.float32(1.0)
    return p, (np.int32(r) + np.int32(127)) << np.int32(23)


def exp_shifted(src, shift, dst, scratch):  # pragma: no cover - replaced by the overload below
    """``dst[j] = exp(src[j] − shift)`` for ``src[j] > MASKED_BELOW``, else 0; returns ``Σ dst``.

    ``scratch`` is an int32 work array at least as long as ``src``.
    """
    raise NotImplementedError


@overload(exp_shifted, jit_options={"fastmath": FASTMATH})
def _exp_shifted_impl(src, shift, dst, scratch):
    if src.dtype == types.float32:
        # Two passes that LLVM vectorises: polynomial and exponent bits, then their product.
        def impl32(src, shift, dst, scratch):
            n = src.shape[0]
            pow2 = scratch.view(np.float32)
            for j in range(n):
                dst[j], scratch[j] = _exp2_parts((src[j] - shift) * np.float32(_LOG2E))
            total = np.float32(0.0)
            for j in range(n):
                x = dst[j] * pow2[j] if src[j] > np.float32(MASKED_BELOW) else np.float32(0.0)
                dst[j] = x
                total += x
            return total

        return impl32

    def impl64(src, shift, dst, scratch):
        total = 0.0
        for j in range(src.shape[0]):
            x = np.exp(src[j] - shift) if src[j] > MASKED_BELOW else 0.0
            dst[j] = x
            total += x
        return total

    return impl64


def exp2_sub_accumulate(src, shift, dst, scratch, total):  # pragma: no cover - overloaded below
    """Element-wise ``dst[r] = 2^(src[r] − shift[r])`` (0 where ``src[r]`` is masked) and
    ``total[r] += dst[r]``: one key's contribution to every query of a block. float32: the
    polynomial of :func:`_exp2_parts` (``scratch`` int32); float64 with an int64 ``scratch``: the
    vectorised :func:`kernels.numba.vecmath.exp2_shifted_row64`; float64 otherwise: ``np.exp2``."""
    raise NotImplementedError


@overload(exp2_sub_accumulate, jit_options={"fastmath": FASTMATH})
def _exp2_sub_accumulate_impl(src, shift, dst, scratch, total):
    if src.dtype == types.float32:
        def impl32(src, shift, dst, scratch, total):
            pow2 = scratch.view(np.float32)
            for r in range(src.shape[0]):
                p, scratch[r] = _exp2_parts(src[r] - shift[r])
                x = p * pow2[r] if src[r] > np.float32(MASKED_BELOW) else np.float32(0.0)
                dst[r] = x
                total[r] += x

        return impl32

    if scratch.dtype == types.int64:
        from kernels.numba.vecmath import exp2_shifted_row64  # vecmath imports this module

        def impl64_rows(src, shift, dst, scratch, total):
            exp2_shifted_row64(src, shift, dst, scratch)
            for r in range(src.shape[0]):
                total[r] += dst[r]

        return impl64_rows

    def impl64(src, shift, dst, scratch, total):
        for r in range(src.shape[0]):
            x = np.exp2(src[r] - shift[r]) if src[r] > MASKED_BELOW else 0.0
            dst[r] = x
            total[r] += x

    return impl64


@njit(inline="always", fastmath=FASTMATH)
def online_softmax_block(st, pt, m, m_new, alpha, ell, scratch):
    """One key block of the online softmax, scores transposed (``st (nk, nq)``, base 2).

    ``m' = max(m, max_c st[c])``, ``α = 2^(m − m')``, ``ℓ ← α·ℓ + Σ_c 2^(st[c] − m')``,
    ``pt[c] = 2^(st[c] − m')`` (0 where masked); ``m`` and ``ℓ`` updated in place, ``α`` left
    in ``alpha`` for the caller's rescaling of its accumulator.
    """
    nq = m.shape[0]
    for r in range(nq):
        m_new[r] = m[r]
    for c in range(st.shape[0]):
        row = st[c]
        for r in range(nq):
            m_new[r] = max(m_new[r], row[r])
    for r in range(nq):
        alpha[r] = np.exp2(m[r] - m_new[r])
        ell[r] *= alpha[r]
        m[r] = m_new[r]
    for c in range(st.shape[0]):
        exp2_sub_accumulate(st[c], m, pt[c], scratch, ell)


@njit(inline="always", fastmath=FASTMATH)
def rescale_accumulate(acc, alpha, pv):
    """``acc[r] ← α_r·acc[r] + pv[r]``: the output update that follows :func:`online_softmax_block`."""
    for r in range(acc.shape[0]):
        a = alpha[r]
        for c in range(acc.shape[1]):
            acc[r, c] = acc[r, c] * a + pv[r, c]


def single_threaded_blas():
    """Numba's BLAS on one thread while a parallel kernel runs (no-op with one Numba thread)."""
    if numba.get_num_threads() == 1:
        return contextlib.nullcontext()
    return one_blas_thread("numba")


def mask_arg(mask, lq: int, lk: int):
    """``(mask, has_mask)`` as the Numba kernels take it: a boolean ``(Lq, Lk)`` or ``(Bm, Lq, Lk)``
    mask as a C-contiguous, writeable ``(Bm, Lq, Lk)`` array (a read-only one, e.g. a broadcast
    view, is another Numba type and would compile its own kernel); ``None`` a 1×1×1 dummy."""
    if mask is None:
        return np.ones((1, 1, 1), dtype=np.bool_), False
    mask = np.asarray(mask, dtype=bool)
    mask = np.ascontiguousarray(np.broadcast_to(mask, (mask.shape[0] if mask.ndim == 3 else 1, lq, lk)))
    return (mask if mask.flags.writeable else mask.copy()), True
