"""Numba Lorentz cascade heads: scores of every head, top-k, softmax and the hyperboloid sums, fused.

Parallel over (batch, query block), float64 throughout (as :mod:`kernels.reference.lorentz`).

Distance scores come from the tangent chart at the origin: with ``a = √c‖q‖``, ``b = √c‖k‖`` and
``δ = ‖q̂ − k̂‖²`` (head independent: one GEMM of the unit directions per tile for all heads,
recomputed from the differences where the expansion ``2 − 2q̂·k̂`` cancels),
``X = 2 sinh²((a − b)/2) + sinh a · sinh b · δ/2`` and ``√c·d = ln A``, ``A = 1 + X + √X·√(X + 2)``.
Every term is non-negative (no cancellation); ``sinh((a − b)/2) = (e^{a/2}e^{−b/2} − e^{−a/2}e^{b/2})/2``
from per-vector exponentials, and ``log2 A`` and the softmax's ``2^x`` are vectorised float64
polynomials (relative error ~1e-16), so a (pair, head) costs a few dozen vector flops and no libm
call. Where some ``a`` exceeds :data:`FAR` (``sinh a · sinh b`` could overflow) every pair is
evaluated in the log domain instead, as :func:`kernels.reference.curvature.lorentz_distance_from_chart`.
Busemann scores are ``−|B(k) − B(q)|/T`` from per-vector values. Scores are kept in base 2.

Dense form: key tiles, one online softmax per head, and the hyperboloid sums by
``x^h_j = (t^h_j, f^h_j v_j)``: ``Σ_j p_j x^h_j = (Σ_j p_j t^h_j, (P ⊙ f^h) V)`` (one GEMM per head and
tile, on the values shared by all heads). The loop is its own, not the tile driver's: every head
of a tile reuses one ``δ`` tile (one GEMM), which the driver, one score per launch, would redo per
head; and its online softmax stays written out here, because the driver's
``online_softmax_block`` in its place measured 1.37× slower (benchmarks/RESULTS.md). Extra memory per thread ``O(H·bq·dv + bq·bk)``; nothing
of size ``Lq × Lk``. Top-k form (``0 < top_k < Lk``): per query the head-0 scores of all keys (one
row), the ``top_k``-th largest by quickselect (ties kept in key order, as a stable sort), then
every head on the ``top_k`` kept keys only: ``O(Lq·Lk·d + Lq·top_k·H·dv)``. Weights: row by row.
The kernels use Numba's NumPy error model (no zero-division checks, every divisor is kept
non-zero by construction): Python's model puts a branch in every loop that divides, which stops
LLVM from vectorising it (measured: the spherical tile step 2.8× slower).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels.numba._common import _LOG2E, FASTMATH, MASKED, mask_arg, single_threaded_blas
from kernels.numba.tile_driver import query_block
from kernels.numba.hyperbolic import _diff2_row
from kernels.numba.select import top_k_mask_row as _select
from kernels.numba.vecmath import exp2_row64 as _exp2_row
from kernels.numba.vecmath import exp2_shifted_row64 as _exp2_row_shifted
from kernels.numba.vecmath import log2_row64 as _log2_row

#: Above this ``a = √c‖x‖`` the direct formula could overflow (``sinh a · sinh b``): log domain.
FAR = 300.0
#: Below ``TAU·(‖q̂‖² + ‖k̂‖²)`` the expansion of ``‖q̂ − k̂‖²`` is recomputed from the differences
#: (relative error of the expansion elsewhere ≲ ``(d + 3)·ε/TAU`` ≈ 1e-13 for d = 64).
TAU = 2.0 ** -4
_LN2 = float(np.log(2.0))

# rows of the per-vector parameter arrays P (5, H, B, L)
_A, _EP, _EM, _SH, _LSH = 0, 1, 2, 3, 4


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _arcosh1p_log(delta, a, lsa, b, lsb):
    """``ln A = arcosh(1 + X)`` in the log domain (far points, no overflow)."""
    h = abs(a - b) / 2.0
    t1 = _LN2 + 2.0 * (h + np.log1p(-np.exp(-2.0 * h)) - _LN2) if h > 0 else -np.inf
    t2 = lsa + lsb + np.log(delta / 2.0) if (delta > 0 and a > 0 and b > 0) else -np.inf
    hi = max(t1, t2)
    if hi == -np.inf:
        return 0.0
    ln_x = hi + np.log1p(np.exp(min(t1, t2) - hi))
    if ln_x < 30.0:
        x = np.exp(ln_x)
        return np.log1p(x + np.sqrt(x) * np.sqrt(x + 2.0))
    return ln_x + _LN2


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _score_row(h, b, one, idx, many, delta, qp, kp, bq_, bk_, coef, kind, far, arg, out, ibuf):
    """Base-2 scores of one vector against many of the other side, head ``h``, batch item ``b``.

    ``one`` is the index of the single vector in ``qp``/``bq_`` (query side) when ``idx`` is 0, or
    in ``kp``/``bk_`` (key side) when ``idx`` is 1; ``many`` the first index of the other side's
    contiguous run of ``out.shape[0]`` vectors (the formula is symmetric in q and k)."""
    n = out.shape[0]
    sp = qp if idx == 0 else kp
    vp = kp if idx == 0 else qp
    if kind == 1:
        bs = bq_[h, b, one] if idx == 0 else bk_[h, b, one]
        bv = bk_[h, b, many:many + n] if idx == 0 else bq_[h, b, many:many + n]
        for r in range(n):
            out[r] = -coef * abs(bv[r] - bs)
        return
    if far:
        a_s = sp[_A, h, b, one]
        l_s = sp[_LSH, h, b, one]
        for r in range(n):
            out[r] = -coef * _LOG2E * _arcosh1p_log(delta[r], a_s, l_s, vp[_A, h, b, many + r],
                                                     vp[_LSH, h, b, many + r])
        return
    ep_s = sp[_EP, h, b, one]
    em_s = sp[_EM, h, b, one]
    sh_s = 0.5 * sp[_SH, h, b, one]
    epv = vp[_EP, h, b, many:many + n]
    emv = vp[_EM, h, b, many:many + n]
    shv = vp[_SH, h, b, many:many + n]
    for r in range(n):
        hh = 0.5 * (epv[r] * em_s - emv[r] * ep_s)
        x = 2.0 * hh * hh + sh_s * shv[r] * delta[r]
        arg[r] = 1.0 + x + np.sqrt(x) * np.sqrt(x + 2.0)
    _log2_row(arg, out, ibuf)
    for r in range(n):
        out[r] = -coef * out[r]


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _score_one(h, b, i, j, delta, qp, kp, bq_, bk_, coef, kind, far):
    """Base-2 score of one (query, key) pair (scalar libm form, for the few top-k keys)."""
    if kind == 1:
        return -coef * abs(bk_[h, b, j] - bq_[h, b, i])
    if far:
        return -coef * _LOG2E * _arcosh1p_log(delta, qp[_A, h, b, i], qp[_LSH, h, b, i], kp[_A, h, b, j],
                                               kp[_LSH, h, b, j])
    hh = 0.5 * (qp[_EP, h, b, i] * kp[_EM, h, b, j] - qp[_EM, h, b, i] * kp[_EP, h, b, j])
    x = 2.0 * hh * hh + 0.5 * qp[_SH, h, b, i] * kp[_SH, h, b, j] * delta
    return -coef * _LOG2E * np.log1p(x + np.sqrt(x) * np.sqrt(x + 2.0))


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _delta_row(qvec, keys, out):
    """``out[j] = ‖q̂ − k̂_j‖²`` for every key (exact: from the differences)."""
    for j in range(keys.shape[0]):
        acc = 0.0
        for t in range(qvec.shape[0]):
            x = qvec[t] - keys[j, t]
            acc += x * x
        out[j] = acc


@njit(parallel=True, fastmath=FASTMATH, error_model="numpy", cache=True)
def _cascade_dense(qhat, khat, qn2, kn2, qp, kp, bq_, bk_, tv, fv, v, coef, kind, far, mask, has_mask, bq, bk):
    H = coef.shape[0]
    B, lq, d = qhat.shape
    lk = khat.shape[1]
    dv = v.shape[2]
    out = np.zeros((H, B, lq, dv + 1))
    nqb = (lq + bq - 1) // bq
    per_batch_mask = mask.shape[0] > 1
    for item in prange(B * nqb):
        b = item // nqb
        i0 = (item % nqb) * bq
        i1 = min(lq, i0 + bq)
        nq = i1 - i0
        mb = b if per_batch_mask else 0
        qt = np.ascontiguousarray(qhat[b, i0:i1].T)  # (d, nq)
        qn2_b = qn2[b, i0:i1]
        m = np.full((H, nq), MASKED)
        ell = np.zeros((H, nq))
        acc = np.zeros((H, nq, dv))
        acc0 = np.zeros((H, nq))
        m_new = np.empty(nq)
        arg = np.empty(nq)
        ibuf = np.empty(nq, np.int64)
        delta_full = np.empty((bk, nq))
        st_full = np.empty((bk, nq))
        pf_full = np.empty((bk, nq))
        pv = np.empty((nq, dv))
        for j0 in range(0, lk, bk):
            j1 = min(lk, j0 + bk)
            nk = j1 - j0
            delta = delta_full[:nk]
            st = st_full[:nk]
            pf = pf_full[:nk]
            if kind == 0:
                np.dot(khat[b, j0:j1], qt, delta)
                for c in range(nk):
                    _diff2_row(delta[c], qn2_b, kn2[b, j0 + c], TAU, qt, khat[b, j0 + c])
            for h in range(H):
                mh = m[h]
                lh = ell[h]
                for c in range(nk):
                    _score_row(h, b, j0 + c, 1, i0, delta[c], qp, kp, bq_, bk_, coef[h], kind, far, arg, st[c], ibuf)
                    if has_mask:
                        srow = st[c]
                        for r in range(nq):
                            if not mask[mb, i0 + r, j0 + c]:
                                srow[r] = MASKED
                # online softmax (base 2): new maxima, rescale, probabilities into st
                for r in range(nq):
                    m_new[r] = mh[r]
                for c in range(nk):
                    srow = st[c]
                    for r in range(nq):
                        m_new[r] = max(m_new[r], srow[r])
                for r in range(nq):
                    alpha = np.exp2(mh[r] - m_new[r])
                    lh[r] *= alpha
                    acc0[h, r] *= alpha
                    for t in range(dv):
                        acc[h, r, t] *= alpha
                    mh[r] = m_new[r]
                for c in range(nk):
                    srow = st[c]
                    _exp2_row_shifted(srow, mh, srow, ibuf)
                    t_c = tv[h, b, j0 + c]
                    f_c = fv[h, b, j0 + c]
                    frow = pf[c]
                    for r in range(nq):
                        p = srow[r]
                        lh[r] += p
                        acc0[h, r] += p * t_c
                        frow[r] = p * f_c
                np.dot(pf.T, v[b, j0:j1], pv)
                for r in range(nq):
                    for t in range(dv):
                        acc[h, r, t] += pv[r, t]
        for h in range(H):
            for r in range(nq):
                if ell[h, r] > 0.0:
                    inv = 1.0 / ell[h, r]
                    out[h, b, i0 + r, 0] = acc0[h, r] * inv
                    for t in range(dv):
                        out[h, b, i0 + r, 1 + t] = acc[h, r, t] * inv
    return out


@njit(parallel=True, fastmath=FASTMATH, error_model="numpy", cache=True)
def _cascade_rows(qhat, khat, qp, kp, bq_, bk_, tv, fv, v, coef, betas, kind, far, mask, has_mask, top_k, bq,
                  want_weights):
    """Row by row: the top-k form of the forward (``want_weights`` False) or the dense weights
    ``Σ_h β_h W^h`` (``want_weights`` True, with or without top-k)."""
    H = coef.shape[0]
    B, lq, d = qhat.shape
    lk = khat.shape[1]
    dv = v.shape[2]
    out = np.zeros((H, B, lq, dv + 1)) if not want_weights else np.zeros((1, 1, 1, 1))
    w = np.zeros((B, lq, lk)) if want_weights else np.zeros((1, 1, 1))
    nqb = (lq + bq - 1) // bq
    per_batch_mask = mask.shape[0] > 1
    sparse = 0 < top_k < lk
    for item in prange(B * nqb):
        b = item // nqb
        i0 = (item % nqb) * bq
        i1 = min(lq, i0 + bq)
        mb = b if per_batch_mask else 0
        delta = np.zeros(lk)
        s0 = np.empty(lk)
        s = np.empty(lk)
        arg = np.empty(lk)
        ibuf = np.empty(lk, np.int64)
        allowed = np.ones(lk, np.bool_)
        keep = np.ones(lk, np.bool_)
        idx = np.empty(lk, np.int64)
        for i in range(i0, i1):
            if has_mask:
                for j in range(lk):
                    allowed[j] = mask[mb, i, j]
            if kind == 0:
                _delta_row(qhat[b, i], khat[b], delta)
            if sparse:
                _score_row(0, b, i, 0, 0, delta, qp, kp, bq_, bk_, coef[0], kind, far, arg, s0, ibuf)
                _select(s0, allowed, top_k, keep, s)
                n = 0
                for j in range(lk):
                    if keep[j]:
                        idx[n] = j
                        n += 1
                if n == 0:
                    continue
                for h in range(H):
                    mx = -np.inf
                    for c in range(n):
                        j = idx[c]
                        x = s0[j] if h == 0 else _score_one(h, b, i, j, delta[j], qp, kp, bq_, bk_, coef[h], kind,
                                                            far)
                        s[c] = x
                        mx = max(mx, x)
                    tot = _exp2_row(s[:n], mx, s[:n], ibuf)
                    inv = 1.0 / tot
                    if want_weights:
                        bh = betas[h] * inv
                        for c in range(n):
                            w[b, i, idx[c]] += bh * s[c]
                    else:
                        t0 = 0.0
                        for c in range(n):
                            j = idx[c]
                            p = s[c] * inv
                            t0 += p * tv[h, b, j]
                            pf = p * fv[h, b, j]
                            for t in range(dv):
                                out[h, b, i, 1 + t] += pf * v[b, j, t]
                        out[h, b, i, 0] = t0
            else:  # dense weights
                any_allowed = False
                for j in range(lk):
                    any_allowed = any_allowed or allowed[j]
                if not any_allowed:
                    continue
                for h in range(H):
                    _score_row(h, b, i, 0, 0, delta, qp, kp, bq_, bk_, coef[h], kind, far, arg, s, ibuf)
                    mx = -np.inf
                    for j in range(lk):
                        if not allowed[j]:
                            s[j] = MASKED
                        mx = max(mx, s[j])
                    tot = _exp2_row(s, mx, s, ibuf)
                    bh = betas[h] / tot
                    for j in range(lk):
                        w[b, i, j] += bh * s[j]
    return out, w


def _arg(x, dtype=np.float64):
    """A writeable C-contiguous array (one Numba signature, whatever views the caller passes)."""
    a = np.ascontiguousarray(x, dtype=dtype)
    return a if a.flags.writeable else a.copy()


def _chart(x):
    """Norms and unit directions (``e_0`` for a zero vector), float64."""
    x = np.asarray(x, np.float64)
    n = np.sqrt(np.einsum("...i,...i->...", x, x))
    u = np.divide(x, n[..., None], out=np.zeros_like(x), where=n[..., None] > 0)
    u[..., 0] = np.where(n > 0, u[..., 0], 1.0)
    return n, _arg(u)


def _vector_params(norms, sqrt_c):
    """``(5, H, B, L)``: ``a = √c_h‖x‖``, ``e^{a/2}``, ``e^{−a/2}``, ``sinh a``, ``ln sinh a`` (overflow → inf, unused then)."""
    a = sqrt_c[:, None, None] * norms[None]
    with np.errstate(over="ignore", divide="ignore"):
        lsh = a + np.log1p(-np.exp(-2.0 * a)) - _LN2
        return _arg(np.stack([a, np.exp(a / 2), np.exp(-a / 2), np.sinh(a), lsh]))


def _prepare(q, k, mask, curvatures, temperature, score):
    cs = np.asarray(curvatures, np.float64)
    sc = np.sqrt(cs)
    nq_, qhat = _chart(q)
    nk_, khat = _chart(k)
    qp, kp = _vector_params(nq_, sc), _vector_params(nk_, sc)
    far = bool(max(qp[_A].max(initial=0.0), kp[_A].max(initial=0.0)) > FAR)
    kind = 0 if score == "distance" else 1
    if kind == 1:
        from kernels.reference.curvature import busemann_from_chart

        bq_ = _arg(np.stack([busemann_from_chart(s_ * nq_, qhat, c_) for s_, c_ in zip(sc, cs)]))
        bk_ = _arg(np.stack([busemann_from_chart(s_ * nk_, khat, c_) for s_, c_ in zip(sc, cs)]))
        coef = np.full(len(cs), _LOG2E / temperature)  # base 2: −|ΔB|·log2(e)/T
    else:
        bq_ = bk_ = np.zeros((1, 1, 1))
        coef = _arg(1.0 / (sc * temperature))  # base 2: −log2(A)/(√c T) = −d·log2(e)/T
    mask, has_mask = mask_arg(mask, q.shape[1], k.shape[1])
    return cs, sc, qhat, khat, qp, kp, bq_, bk_, coef, kind, far, mask, has_mask


def _value_factors(v, sc):
    """``t^h_j`` and ``f^h_j`` of ``exp_0^{c_h}(v_j) = (t, f·v_j)``: two ``(H, B, Lk)`` arrays."""
    v = np.asarray(v, np.float64)
    n = np.maximum(np.sqrt(np.einsum("...i,...i->...", v, v)), 1e-15)
    a = sc[:, None, None] * n[None]
    f = np.sinh(a) / a
    t = np.sqrt(1.0 / (sc * sc)[:, None, None] + (f * n[None]) ** 2)
    return _arg(t), _arg(f)


def cascade_attention(q, k, v, curvatures, temperature, score, top_k=0, mask=None, block_q=64, block_k=256):
    """``S (H, B, Lq, dv + 1)`` as :func:`kernels.reference.lorentz.cascade_attention`."""
    cs, sc, qhat, khat, qp, kp, bq_, bk_, coef, kind, far, mask, has_mask = _prepare(
        q, k, mask, curvatures, temperature, score)
    tv, fv = _value_factors(v, sc)
    v64 = _arg(v)
    B, lq, lk = qhat.shape[0], qhat.shape[1], khat.shape[1]
    if 0 < top_k < lk:
        bq = query_block(B, lq, 16)
        return _cascade_rows(qhat, khat, qp, kp, bq_, bk_, tv, fv, v64, coef, np.zeros(len(cs)), kind, far, mask,
                             has_mask, int(top_k), int(bq), False)[0]
    bq = query_block(B, lq, block_q)
    sq = lambda x: _arg(np.einsum("...i,...i->...", x, x))  # noqa: E731
    with single_threaded_blas():
        return _cascade_dense(qhat, khat, sq(qhat), sq(khat), qp, kp, bq_, bk_, tv, fv, v64, coef, kind, far, mask,
                              has_mask, int(bq), int(block_k))


def cascade_weights(q, k, curvatures, betas, temperature, score, top_k=0, mask=None):
    """``Σ_h β_h W^h (B, Lq, Lk)`` as :func:`kernels.reference.lorentz.cascade_weights`."""
    cs, sc, qhat, khat, qp, kp, bq_, bk_, coef, kind, far, mask, has_mask = _prepare(
        q, k, mask, curvatures, temperature, score)
    B, lq = qhat.shape[0], qhat.shape[1]
    dummy = np.zeros((1, 1, 1))
    bq = query_block(B, lq, 16)
    return _cascade_rows(qhat, khat, qp, kp, bq_, bk_, dummy, dummy, dummy, coef,
                         _arg(betas), kind, far, mask, has_mask, int(top_k), int(bq),
                         True)[1]
