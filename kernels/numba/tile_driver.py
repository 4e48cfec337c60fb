"""The one Numba tile loop of every ``softmax_j(s(q_i, k_j)) · V`` kernel (flash, hyperbolic,
sliced-Wasserstein, fused mixed-curvature): parallel over (batch, query block), online softmax over
key tiles, nothing of size ``Lq × Lk`` allocated.

A kernel supplies only its score, as two ``@njit`` functions registered once with :func:`register`:

* ``prepare(qctx, b, i0, i1, bk) → qs`` — per query block state (e.g. the block's queries
  transposed to ``(d, nq)``, per-query factors, work rows), built once per work item;
* ``score(qs, kctx, b, j0, j1, st)`` — the base-2 scores ``log2(e)·s(q_i, k_j)`` of keys
  ``j0:j1`` against the block, written transposed into ``st (nk, nq)`` (one key per row, queries
  contiguous, so every per-query update below is a vectorised loop).

:func:`attend` owns everything else: work items (zigzag order under a causal mask, so cheap and
expensive blocks alternate between threads), scratch rows, partial last tiles, the boolean mask
(``mask (Bm, Lq, Lk)``, item ``b`` reads mask ``b // mask_group``) and the causal mask (query
``i`` sees keys ``j ≤ i + offset``; key tiles past the diagonal are skipped), the online softmax
(``m' = max(m, max_j s)``, ``ℓ ← 2^{m−m'}ℓ + Σ_j 2^{s−m'}``), the aggregation
``O ← 2^{m−m'}O + P·V_J`` (one GEMM per tile) and the finish ``O/ℓ``,
``lse = ln 2·(m + log2 ℓ)`` (``−∞`` for a row with no allowed key, whose output stays 0).
:func:`weights` gives the softmax weights of the same scores and masks, :func:`logits` the scores
themselves (natural units), so a kernel's maps come from the one score it registered.

Which score is compiled in is chosen by the registration key, a string literal, at compile time:
no call through a function pointer in the inner loop, and the compiled driver stays in Numba's
on-disk cache (a driver taking the score functions as arguments or as closure variables is
recompiled in every process). The key carries a digest of the two functions' code, so a changed
score (or another one under the same name, say in a notebook) is compiled afresh; a change in a
helper they call is caught for the modules of this package by
:func:`kernels.numba.renew_stale_cache`, which drops every cached kernel.
"""
from __future__ import annotations

import hashlib

import numba
import numpy as np
from numba import literally, njit, prange, typeof, types
from numba.extending import overload

from kernels.numba._common import (
    _LOG2E,
    FASTMATH,
    MASKED,
    MASKED_BELOW,
    exp_shifted,
    mask_arg,
    online_softmax_block,
    rescale_accumulate,
)

_SCORES: dict[str, tuple] = {}


def _code_bytes(code) -> bytes:
    """Bytecode and constants of a function, nested code objects included (its source may not exist)."""
    parts = [code.co_code, repr(code.co_names).encode()]
    for c in code.co_consts:
        if hasattr(c, "co_code"):
            parts.append(_code_bytes(c))
        else:  # a frozenset's order follows the per-process string hash: sort it
            parts.append(repr(sorted(c, key=repr) if isinstance(c, frozenset) else c).encode())
    return b"\0".join(parts)


def register(prepare, score) -> str:
    """Make ``(prepare, score)`` available to :func:`attend`; returns the key to pass it."""
    code = b"".join(_code_bytes(f.py_func.__code__) for f in (prepare, score))
    key = f"{score.py_func.__module__}.{score.py_func.__qualname__}@{hashlib.sha256(code).hexdigest()[:16]}"
    _SCORES[key] = (prepare, score)
    return key


def _prepare(key, qctx, b, i0, i1, bk):  # pragma: no cover - replaced by the overload below
    raise NotImplementedError


def _score(key, qs, kctx, b, j0, j1, st):  # pragma: no cover - replaced by the overload below
    raise NotImplementedError


@overload(_prepare, jit_options={"fastmath": FASTMATH, "error_model": "numpy"})
def _prepare_impl(key, qctx, b, i0, i1, bk):
    if isinstance(key, types.StringLiteral):
        prepare = _SCORES[key.literal_value][0]
        return lambda key, qctx, b, i0, i1, bk: prepare(qctx, b, i0, i1, bk)
    return None


@overload(_score, jit_options={"fastmath": FASTMATH, "error_model": "numpy"})
def _score_impl(key, qs, kctx, b, j0, j1, st):
    if isinstance(key, types.StringLiteral):
        score = _SCORES[key.literal_value][1]
        return lambda key, qs, kctx, b, j0, j1, st: score(qs, kctx, b, j0, j1, st)
    return None


def _online_softmax(st, pt, m, m_new, alpha, ell, ibuf, fbuf):  # pragma: no cover - replaced by the overload
    """:func:`online_softmax_block` with the scratch row of its vectorised ``2^x``: ``ibuf`` (int32)
    for float32 scores, ``fbuf`` (a float64 row) seen as int64 for float64 scores."""
    raise NotImplementedError


@overload(_online_softmax, jit_options={"fastmath": FASTMATH, "error_model": "numpy"})
def _online_softmax_impl(st, pt, m, m_new, alpha, ell, ibuf, fbuf):
    if st.dtype == types.float32:
        def impl32(st, pt, m, m_new, alpha, ell, ibuf, fbuf):
            online_softmax_block(st, pt, m, m_new, alpha, ell, ibuf)

        return impl32

    def impl64(st, pt, m, m_new, alpha, ell, ibuf, fbuf):
        online_softmax_block(st, pt, m, m_new, alpha, ell, fbuf.view(np.int64))

    return impl64


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _mask_tile(st, allowed, masked):
    """``st[c, r] = masked`` where ``allowed[r, c]`` is False (``allowed`` the (queries, keys) tile)."""
    for c in range(st.shape[0]):
        for r in range(st.shape[1]):
            if not allowed[r, c]:
                st[c, r] = masked


@njit(parallel=True, fastmath=FASTMATH, error_model="numpy", cache=True)
def attend(key, qctx, kctx, v, out, lse, mask, has_mask, mask_group, causal, offset, bq, bk, need_out):
    """Fill ``out (B, Lq, dv)`` (``v``'s dtype) and ``lse (B, Lq)`` (the scores' dtype); see the module
    docstring. ``v (B, Lk, dv)``; ``need_out=False`` skips the aggregation (log-sum-exp only)."""
    literally(key)
    B, lq, dv = out.shape
    lk = v.shape[1]
    sdt = lse.dtype
    vdt = out.dtype
    nqb = (lq + bq - 1) // bq
    per_batch_mask = mask.shape[0] > 1
    masked = sdt.type(MASKED)
    ln2 = sdt.type(1.0 / _LOG2E)
    for item in prange(B * nqb):
        b = item // nqb
        qb = item % nqb
        if causal:  # zigzag: cheap and expensive causal blocks alternate, so threads stay balanced
            qb = qb // 2 if qb % 2 == 0 else nqb - 1 - qb // 2
        i0 = qb * bq
        i1 = min(lq, i0 + bq)
        nq = i1 - i0
        mb = b // mask_group if per_batch_mask else 0
        qs = _prepare(key, qctx, b, i0, i1, bk)
        m = np.full(nq, masked, sdt)  # running max per query (base 2)
        m_new = np.empty(nq, sdt)
        ell = np.zeros(nq, sdt)
        alpha = np.empty(nq, sdt)
        acc = np.zeros((nq, dv), vdt)
        st_full = np.empty((bk, nq), sdt)  # scores transposed: one key per row, queries contiguous
        pt_full = np.empty((bk, nq), vdt)
        pv = np.empty((nq, dv), vdt)
        ibuf = np.empty(nq, np.int32)
        fbuf = np.empty(nq, np.float64)
        jend = lk
        if causal:
            jend = max(0, min(lk, i1 + offset))
        for j0 in range(0, jend, bk):
            j1 = min(jend, j0 + bk)
            nk = j1 - j0
            st = st_full[:nk]
            pt = pt_full[:nk]
            _score(key, qs, kctx, b, j0, j1, st)
            if has_mask:
                _mask_tile(st, mask[mb, i0:i1, j0:j1], masked)
            if causal and j1 - 1 > i0 + offset:  # rows r with i0 + r + offset < j are masked
                for c in range(nk):
                    for r in range(max(0, min(nq, j0 + c - offset - i0))):
                        st[c, r] = masked
            _online_softmax(st, pt, m, m_new, alpha, ell, ibuf, fbuf)
            if need_out:
                np.dot(pt.T, v[b, j0:j1], pv)
                rescale_accumulate(acc, alpha, pv)
        for r in range(nq):
            i = i0 + r
            if ell[r] > 0.0:
                lse[b, i] = (m[r] + np.log2(ell[r])) * ln2
                if need_out:
                    inv = vdt.type(1.0) / ell[r]
                    for c in range(dv):
                        out[b, i, c] = acc[r, c] * inv
            else:
                lse[b, i] = -np.inf


@njit(parallel=True, fastmath=FASTMATH, error_model="numpy", cache=True)
def weights(key, qctx, kctx, w, mask, has_mask, mask_group, causal, offset, bq):
    """Fill ``w (B, Lq, Lk)`` with the softmax weights of the same scores and masks as :func:`attend`
    (rows with no allowed key stay 0): per query block one score call over all keys, then row by row
    ``w_ij = exp(ln2·s_ij − max) / Σ``. Memory ``O(bq·Lk)`` per thread besides ``w``."""
    literally(key)
    B, lq, lk = w.shape
    sdt = w.dtype
    nqb = (lq + bq - 1) // bq
    per_batch_mask = mask.shape[0] > 1
    masked = sdt.type(MASKED)
    ln2 = sdt.type(1.0 / _LOG2E)
    zero = sdt.type(0.0)
    for item in prange(B * nqb):
        b = item // nqb
        i0 = (item % nqb) * bq
        i1 = min(lq, i0 + bq)
        nq = i1 - i0
        mb = b // mask_group if per_batch_mask else 0
        qs = _prepare(key, qctx, b, i0, i1, lk)
        st = np.empty((lk, nq), sdt)
        _score(key, qs, kctx, b, 0, lk, st)
        s = np.ascontiguousarray(st.T)  # (nq, lk): one query per row, keys contiguous
        scratch = np.empty(lk, np.int32)
        for r in range(nq):
            i = i0 + r
            row = s[r]
            mx = masked
            for j in range(lk):
                x = row[j] * ln2
                if (has_mask and not mask[mb, i, j]) or (causal and j > i + offset):
                    x = masked
                row[j] = x
                mx = max(mx, x)
            if mx <= MASKED_BELOW:
                continue
            total = exp_shifted(row, mx, w[b, i], scratch)
            if total > zero:
                inv = sdt.type(1.0) / total
                for j in range(lk):
                    w[b, i, j] *= inv


@njit(parallel=True, fastmath=FASTMATH, error_model="numpy", cache=True)
def logits(key, qctx, kctx, out, bq, bk):
    """Fill ``out (B, Lq, Lk)`` with the scores themselves in natural units, ``s_ij = ln 2·score``
    (no mask, no softmax: what a logit map shows). Key tiles of ``bk``; memory ``O(bq·bk)`` per
    thread besides ``out``."""
    literally(key)
    B, lq, lk = out.shape
    sdt = out.dtype
    nqb = (lq + bq - 1) // bq
    ln2 = sdt.type(1.0 / _LOG2E)
    for item in prange(B * nqb):
        b = item // nqb
        i0 = (item % nqb) * bq
        i1 = min(lq, i0 + bq)
        nq = i1 - i0
        qs = _prepare(key, qctx, b, i0, i1, bk)
        st_full = np.empty((bk, nq), sdt)
        for j0 in range(0, lk, bk):
            j1 = min(lk, j0 + bk)
            st = st_full[: j1 - j0]
            _score(key, qs, kctx, b, j0, j1, st)
            for r in range(nq):
                row = out[b, i0 + r]
                for c in range(j1 - j0):
                    row[j0 + c] = st[c, r] * ln2


_ENTRIES: dict = {}


def _call(driver, key: str, *args):
    """``driver(key, *args)`` through its compiled entry point for the literal ``key``.

    Called with a plain ``str``, a Numba dispatcher first tries (and fails) to compile for
    ``unicode_type`` before ``literally`` makes it use the literal: measured 76 ms per call, against
    0.1 ms for the entry point. So the signature is built here, with the key as a literal, and
    compiled (or loaded from the on-disk cache) once per process.
    """
    sig = (types.literal(key), *(typeof(a) for a in args))
    entry = _ENTRIES.get((driver, sig))
    if entry is None:
        entry = _ENTRIES[(driver, sig)] = driver.compile(sig)
    return entry(key, *args)


def query_block(batch: int, lq: int, block_q: int) -> int:
    """``block_q``, or smaller when that leaves fewer than two work items per thread."""
    want = 2 * numba.get_num_threads()
    if batch * -(-lq // block_q) >= want:
        return block_q
    per_batch = -(-want // batch)
    return max(16, min(block_q, -(-lq // per_batch)))


def run(key, qctx, kctx, v, score_dtype, mask=None, mask_group=1, causal=False, offset=0, block_q=64,
        block_k=256, need_out=True):
    """Allocate the outputs and call :func:`attend`: ``→ (out (B, Lq, dv), lse (B, Lq))``.

    ``Lq`` is read from ``qctx[0]``; ``mask`` is ``None`` or boolean, ``(Lq, Lk)`` or ``(Bm, Lq, Lk)``.
    The caller holds :func:`kernels.numba._common.single_threaded_blas`.
    """
    B, lq, lk = qctx[0].shape[0], qctx[0].shape[1], v.shape[1]
    out = np.zeros((B, lq, v.shape[2]), v.dtype)
    lse = np.empty((B, lq), score_dtype)
    mask, has_mask = mask_arg(mask, lq, lk)
    bq = query_block(B, lq, block_q)
    _call(attend, key, qctx, kctx, v, out, lse, mask, has_mask, int(mask_group), bool(causal), int(offset),
          int(bq), int(block_k), bool(need_out))
    return out, lse


def run_weights(key, qctx, kctx, lk: int, score_dtype, mask=None, mask_group=1, causal=False, offset=0,
                block_q=64):
    """Allocate ``w (B, Lq, Lk)`` in ``score_dtype`` and call :func:`weights` (under the caller's
    :func:`kernels.numba._common.single_threaded_blas`)."""
    B, lq = qctx[0].shape[0], qctx[0].shape[1]
    w = np.zeros((B, lq, lk), score_dtype)
    mask, has_mask = mask_arg(mask, lq, lk)
    _call(weights, key, qctx, kctx, w, mask, has_mask, int(mask_group), bool(causal), int(offset),
          int(query_block(B, lq, block_q)))
    return w


def run_logits(key, qctx, kctx, lk: int, score_dtype, block_q=64, block_k=256):
    """Allocate ``out (B, Lq, Lk)`` in ``score_dtype`` and call :func:`logits` (under the caller's
    :func:`kernels.numba._common.single_threaded_blas`)."""
    B, lq = qctx[0].shape[0], qctx[0].shape[1]
    out = np.empty((B, lq, lk), score_dtype)
    _call(logits, key, qctx, kctx, out, int(query_block(B, lq, block_q)), int(block_k))
    return out
