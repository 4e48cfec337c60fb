"""Numba sliced-Wasserstein attention: fused ℓ_p feature distances, online softmax, GEMM aggregation.

The features ``a (B, Lq, F)``, ``b (B, Lk, F)`` are the quantile features of
:mod:`kernels.reference.sliced_wasserstein` (``SW_p = ‖a_i − b_j‖_p``). Attention and weights run on
the tile driver, parallel over (batch, query block); the two-stage kernel runs on one thread (a
parallel Numba kernel costs ~4× more to compile, and it is not on the benchmarked path). Per key block ``B_J``:

* ``p = 2``: ``G = B_J A_Iᵀ`` (one GEMM, one key per row so that per-query updates are contiguous,
  vectorised loops), ``‖a − b‖² = ‖a‖² + ‖b‖² − 2a·b``, recomputed from the differences for the
  (rare) near pairs where the expansion cancels (below ``TAU·(‖a‖² + ‖b‖²)``);
* other ``p``: ``Σ_f |a_f − b_f|^p`` accumulated feature by feature (``p = 1`` without ``pow``);

then base-2 scores ``s = −log2(e)·D/T``: that is the score; masks, online softmax and
``acc ← 2^{m_old − m}·acc + P·V_J`` (GEMM) are :mod:`kernels.numba.tile_driver`'s. Extra memory per thread
``O(bq·bk + bq·dv)``; nothing of size ``Lq × Lk`` is allocated.

The two-stage kernel (``num_candidates = C``): per query block one GEMM of raw dot products
``⟨q, k⟩`` in the input dtype; per query the ``C``-th largest estimate by one pass through a sorted
buffer, then the keys within the GEMM's rounding bound ``2γ_d‖q‖·max‖k‖`` of it rescored exactly in
float64 and ranked (ties to the smaller index) — the reference's float64 stable sort, at float32
GEMM cost; exact distances on those ``C`` keys only, softmax and a ``C × dv`` weighted sum.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from kernels.numba._common import (
    _LOG2E,
    FASTMATH,
    mask_arg,
    single_threaded_blas,
)
from kernels.numba.select import insert_sorted
from kernels.numba.tile_driver import register, run, run_weights

#: Below ``TAU·(‖a‖² + ‖b‖²)`` the expansion ``‖a‖² + ‖b‖² − 2a·b`` is replaced by the exact
#: ``Σ (a − b)²`` (its relative error is then at most ~``F·ε/TAU``).
TAU = {np.dtype(np.float32): 0.125, np.dtype(np.float64): 2.0 ** -10}


@njit(fastmath=FASTMATH, cache=True)
def _dist_row(row, an2, bn2, tau, at, bvec, p):
    """``row[r] ← ‖a_r − b‖_p`` (``at`` is ``(F, n)``, columns ``a_r``). For ``p = 2`` ``row`` holds
    ``a_r·b`` on entry (the GEMM); otherwise it is overwritten."""
    n = row.shape[0]
    F = bvec.shape[0]
    zero = row.dtype.type(0.0)
    if p == 2.0:
        two = row.dtype.type(2.0)
        flagged = 0
        for r in range(n):
            est = an2[r] + bn2 - two * row[r]
            row[r] = est
            flagged += est < tau * (an2[r] + bn2)
        if flagged > 0:
            for r in range(n):
                if row[r] < tau * (an2[r] + bn2):
                    acc = zero
                    for f in range(F):
                        x = at[f, r] - bvec[f]
                        acc += x * x
                    row[r] = acc
        for r in range(n):
            row[r] = np.sqrt(max(row[r], zero))
        return
    for r in range(n):
        row[r] = zero
    if p == 1.0:
        for f in range(F):
            bf = bvec[f]
            arow = at[f]
            for r in range(n):
                row[r] += abs(arow[r] - bf)
        return
    pp = row.dtype.type(p)
    for f in range(F):
        bf = bvec[f]
        arow = at[f]
        for r in range(n):
            row[r] += abs(arow[r] - bf) ** pp
    inv = row.dtype.type(1.0 / p)
    for r in range(n):
        row[r] = row[r] ** inv


@njit(fastmath=FASTMATH, cache=True)
def _queries(qctx, b, i0, i1, bk):
    """The block's features transposed ``(F, nq)`` and their ``‖a‖²``."""
    a, an2 = qctx
    return np.ascontiguousarray(a[b, i0:i1].T), an2[b, i0:i1]


@njit(fastmath=FASTMATH, cache=True)
def _scores(qs, kctx, b, j0, j1, st):
    """``st[c] = −log2(e)·‖a_r − b_c‖_p/T`` (for ``p = 2`` from one GEMM ``B_J A_Iᵀ``)."""
    at, an2_b = qs
    feats, bn2, ncoef, p, tau = kctx
    if p == 2.0:
        np.dot(feats[b, j0:j1], at, st)
    for c in range(j1 - j0):
        row = st[c]
        _dist_row(row, an2_b, bn2[b, j0 + c], tau, at, feats[b, j0 + c], p)
        for r in range(row.shape[0]):
            row[r] = ncoef * row[r]


DISTANCE = register(_queries, _scores)


@njit(fastmath=FASTMATH, cache=True)
def _top_candidates(row, qrow, kb, mask_row, has_mask, C, delta, vals, cand, pool):
    """The ``C`` allowed keys of largest exact (float64) ``⟨q, k_j⟩``, ties to the smaller index, into
    ``cand`` ordered by (score desc, index asc); returns how many (fewer if fewer are allowed).

    ``row`` holds the GEMM estimates (input dtype), each within ``delta/2`` of the exact score: the
    ``C``-th largest estimate, lowered by ``delta``, bounds every true top-``C`` score from below, so
    only the keys above it (about ``C``) are rescored exactly and ranked. ``vals`` holds the kept
    scores negated, ascending (:func:`kernels.numba.select.insert_sorted`: equal scores keep the
    smaller index)."""
    m = 0
    for j in range(row.shape[0]):
        if has_mask and not mask_row[j]:
            continue
        x = np.float64(row[j])
        if m < C or -x < vals[C - 1]:
            m = insert_sorted(vals, cand, m, -x, j)
    if m < C:  # every allowed key is a candidate; order them by exact score
        n_pool = m
        for c in range(m):
            pool[c] = cand[c]
        for a in range(n_pool):  # increasing index, so that ties keep the smaller one
            for b in range(a + 1, n_pool):
                if pool[b] < pool[a]:
                    pool[a], pool[b] = pool[b], pool[a]
    else:
        thr = -vals[C - 1] - delta
        n_pool = 0
        for j in range(row.shape[0]):
            if has_mask and not mask_row[j]:
                continue
            if np.float64(row[j]) >= thr:
                pool[n_pool] = j
                n_pool += 1
    d = qrow.shape[0]
    m = 0
    for c in range(n_pool):
        j = pool[c]
        acc = 0.0
        for t in range(d):
            acc += np.float64(qrow[t]) * np.float64(kb[j, t])
        m = insert_sorted(vals, cand, m, -acc, j)
    return m


@njit(fastmath=FASTMATH, cache=True)
def _candidate_logits(arow, b, cand, nc, p, inv_t, out):
    """``out[c] = −‖a − b_{cand[c]}‖_p / T`` (float64, from the differences); returns their max."""
    mx = -np.inf
    F = arow.shape[0]
    for c in range(nc):
        brow = b[cand[c]]
        acc = 0.0
        if p == 2.0:
            for f in range(F):
                x = np.float64(arow[f]) - np.float64(brow[f])
                acc += x * x
            acc = np.sqrt(acc)
        elif p == 1.0:
            for f in range(F):
                acc += abs(np.float64(arow[f]) - np.float64(brow[f]))
        else:
            for f in range(F):
                acc += abs(np.float64(arow[f]) - np.float64(brow[f])) ** p
            acc = acc ** (1.0 / p)
        out[c] = -acc * inv_t
        mx = max(mx, out[c])
    return mx


@njit(fastmath=FASTMATH, cache=True)
def _two_stage(q, k, kt, qn, kmax, gamma, a, b, v, mask, has_mask, C, inv_t, p, bq, need_out):
    """Two-stage form: output ``(B, Lq, dv)`` (``need_out``) or weights ``(B, Lq, Lk)``."""
    B, lq, _ = q.shape
    lk = k.shape[1]
    dv = v.shape[2]
    out = np.zeros((B, lq, dv), v.dtype)
    w = np.zeros((B, lq, lk if not need_out else 0), a.dtype)
    nqb = (lq + bq - 1) // bq
    per_batch_mask = mask.shape[0] > 1
    cmax = min(C, lk)
    for item in range(B * nqb):
        bi = item // nqb
        i0 = (item % nqb) * bq
        i1 = min(lq, i0 + bq)
        mb = bi if per_batch_mask else 0
        s = np.dot(q[bi, i0:i1], kt[bi])  # (nq, lk) estimates, input dtype
        vals = np.empty(cmax, np.float64)
        cand = np.empty(cmax, np.int64)
        pool = np.empty(lk, np.int64)
        logit = np.empty(cmax, np.float64)
        for r in range(i1 - i0):
            i = i0 + r
            mrow = mask[mb, i] if has_mask else mask[0, 0]
            delta = 2.0 * gamma * qn[bi, i] * kmax[bi] + 1e-300
            nc = _top_candidates(s[r], q[bi, i], k[bi], mrow, has_mask, cmax, delta, vals, cand, pool)
            if nc == 0:
                continue
            mx = _candidate_logits(a[bi, i], b[bi], cand, nc, p, inv_t, logit)
            total = 0.0
            for c in range(nc):
                logit[c] = np.exp(logit[c] - mx)
                total += logit[c]
            for c in range(nc):
                wc = logit[c] / total
                j = cand[c]
                if need_out:
                    for t in range(dv):
                        out[bi, i, t] += wc * v[bi, j, t]
                else:
                    w[bi, i, j] = wc
    return out, w


def _writable(x, dtype=None):
    """C-contiguous and writeable (one compiled specialisation per dtype: Numba types read-only
    arrays, such as broadcast views, separately)."""
    x = np.ascontiguousarray(x, dtype=dtype)
    return x if x.flags.writeable else x.copy()


def _prepare(a, b, mask, lq, lk):
    dtype = np.result_type(a.dtype, np.float32)
    a = _writable(a, dtype)
    b = _writable(b, dtype)
    an2 = np.ascontiguousarray(np.einsum("...f,...f->...", a, a))
    bn2 = np.ascontiguousarray(np.einsum("...f,...f->...", b, b))
    mask, has_mask = mask_arg(mask, lq, lk)
    return a, b, an2, bn2, mask, has_mask, dtype


def attention(a, b, v, p, temperature, mask, block_q, block_k):
    """``softmax(−‖a_i − b_j‖_p / T) V``, ``(B, Lq, dv)``, fused (see the module docstring)."""
    a, b, an2, bn2, _, _, dtype = _prepare(a, b, None, a.shape[1], b.shape[1])
    v = _writable(v, dtype)
    with single_threaded_blas():
        return run(DISTANCE, (a, an2), (b, bn2, dtype.type(-_LOG2E / temperature), float(p), dtype.type(TAU[dtype])),
                   v, dtype, mask=mask, block_q=block_q, block_k=block_k)[0]


def weights(a, b, p, temperature, mask, block_q=128):
    """``softmax(−‖a_i − b_j‖_p / T)`` rows, ``(B, Lq, Lk)`` (the driver's :func:`weights`)."""
    a, b, an2, bn2, _, _, dtype = _prepare(a, b, None, a.shape[1], b.shape[1])
    with single_threaded_blas():
        return run_weights(DISTANCE, (a, an2), (b, bn2, dtype.type(-_LOG2E / temperature), float(p),
                                                dtype.type(TAU[dtype])), b.shape[1], dtype, mask=mask, block_q=block_q)


def _two_stage_call(q, k, a, b, v, p, temperature, num_candidates, mask, need_out, block_q=256):
    lq, lk = q.shape[1], k.shape[1]
    a, b, _, _, mask, has_mask, dtype = _prepare(a, b, mask, lq, lk)
    q = _writable(q, dtype)
    k = _writable(k, dtype)
    qn = np.sqrt(np.einsum("bld,bld->bl", q.astype(np.float64), q.astype(np.float64)))
    kmax = np.sqrt(np.einsum("bld,bld->bl", k.astype(np.float64), k.astype(np.float64)).max(axis=1))
    u = float(np.finfo(dtype).eps) / 2
    gamma = q.shape[2] * u / (1 - q.shape[2] * u)  # |GEMM − exact| ≤ γ_d‖q‖‖k‖
    v = np.zeros((q.shape[0], lk, 1), dtype) if v is None else _writable(v, dtype)
    kt = np.ascontiguousarray(np.swapaxes(k, 1, 2))
    out, w = _two_stage(q, k, kt, qn, kmax, gamma, a, b, v, mask, has_mask, int(num_candidates),
                        1.0 / float(temperature), float(p), int(block_q), need_out)
    return out if need_out else w


def two_stage_attention(q, k, a, b, v, p, temperature, num_candidates, mask):
    """Two-stage output ``(B, Lq, dv)`` (see the module docstring)."""
    return _two_stage_call(q, k, a, b, v, p, temperature, num_candidates, mask, True)


def two_stage_weights(q, k, a, b, p, temperature, num_candidates, mask):
    """Two-stage weights ``(B, Lq, Lk)``."""
    return _two_stage_call(q, k, a, b, None, p, temperature, num_candidates, mask, False)
