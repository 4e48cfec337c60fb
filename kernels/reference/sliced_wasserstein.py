"""Sliced-Wasserstein attention, the NumPy definition.

Random unit directions ``θ_1..θ_P`` (normalised Gaussians: uniform on the sphere). For two
empirical measures with ``n`` and ``m`` equally weighted points (a single point is a Dirac mass),
projected on ``θ`` and sorted, the 1-D Wasserstein distance is exact from the quantile functions:
``W_p^p(θ) = ∫_0^1 |F_x^{-1}(t) − F_y^{-1}(t)|^p dt = Σ_a Δt_a |x_(i_a) − y_(j_a)|^p`` over the
merged breakpoints ``{i/n} ∪ {j/m}`` (:func:`quantile_grid`), and
``SW_p(x, y) = (mean_θ W_p^p(θ))^{1/p}``.

For attention, each query and key becomes a *quantile feature* vector
``φ = [(Δt_a/P)^{1/p} · x_(i_a)(θ_p)]_{a,p}`` (:func:`features`), so that
``SW_p = ‖φ_q − φ_k‖_p``; weights ``W_ij = softmax_j(−‖φ_i − φ_j‖_p / T)`` over allowed keys,
``out = W V``. For single points (``n = m = 1``) ``φ = P^{−1/p}·Θx`` and the distance is
``(mean_p |θ_p·(q − k)|^p)^{1/p}`` (for ``p = 2`` an estimate of ``‖q − k‖/√d``).

The two-stage form keeps, per query, the ``C`` allowed keys with the largest raw dot product
``⟨q, k⟩`` (float64; ties to the smaller index) and takes the softmax over those only.
"""
from __future__ import annotations

import numpy as np

from kernels.reference.softmax import masked_softmax

#: Seed-stream tag of the projection directions (so that other seeded draws never coincide).
_TAG = 0x5357


def directions(num_projections: int, d: int, seed: int) -> np.ndarray:
    """``(P, d)`` float64 unit vectors, uniform on the sphere (normalised Gaussians), seeded."""
    g = np.random.default_rng([int(seed), _TAG]).standard_normal((int(num_projections), int(d)))
    n = np.linalg.norm(g, axis=1, keepdims=True)
    return g / np.where(n > 0, n, 1.0)


def quantile_grid(n: int, m: int):
    """Merged breakpoints of two empirical quantile functions with ``n`` and ``m`` atoms.

    Returns ``(ia, ib, dt)``: on the ``a``-th interval of ``{i/n} ∪ {j/m}`` the quantile functions
    are the ``ia[a]``-th and ``ib[a]``-th sorted values, and ``dt[a]`` is its length (``Σ dt = 1``).
    Exact integer arithmetic in units of ``1/(n·m)``.
    """
    n, m = int(n), int(m)
    u = np.union1d(np.arange(n + 1, dtype=np.int64) * m, np.arange(m + 1, dtype=np.int64) * n)
    left = u[:-1]
    return left // m, left // n, np.diff(u) / float(n * m)


def sorted_projections(x, theta) -> np.ndarray:
    """``x (..., m, d)`` projected on ``theta (P, d)`` and sorted over the ``m`` atoms: ``(..., m, P)`` float64
    (on ``x``'s array module: a CuPy ``x`` is projected and sorted on the GPU)."""
    x = x.astype(np.float64) if hasattr(x, "__array_function__") else np.asarray(x, np.float64)
    return np.sort(x @ np.asarray(theta, like=x).T, axis=-2)


def features(sorted_proj, idx, dt, p: float) -> np.ndarray:
    """Quantile features ``(..., A·P)`` from ``sorted_proj (..., m, P)``, the grid indices ``idx (A,)`` of
    this side and the interval lengths ``dt (A,)``: ``φ_{a,p} = (Δt_a/P)^{1/p}·x_(idx_a)(θ_p)``."""
    P = sorted_proj.shape[-1]
    w = np.asarray((np.asarray(dt, np.float64) / P) ** (1.0 / p), like=sorted_proj)  # on the array's module
    f = sorted_proj[..., np.asarray(idx, like=sorted_proj), :] * w[:, None]
    return f.reshape(f.shape[:-2] + (-1,))


def distances(a, b, p: float) -> np.ndarray:
    """``D_ij = ‖a_i − b_j‖_p`` in float64 from the differences: ``(B, Lq, F), (B, Lk, F) → (B, Lq, Lk)``."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    B, lq, F = a.shape
    lk = b.shape[1]
    out = np.empty((B, lq, lk))
    step = max(1, (1 << 21) // max(1, lk * F))
    for i0 in range(0, lq, step):
        i1 = min(lq, i0 + step)
        diff = np.abs(a[:, i0:i1, None, :] - b[:, None, :, :])
        if p == 2:
            out[:, i0:i1] = np.sqrt(np.einsum("...f,...f->...", diff, diff))
        elif p == 1:
            out[:, i0:i1] = diff.sum(-1)
        else:
            out[:, i0:i1] = (diff ** p).sum(-1) ** (1.0 / p)
    return out


def weights(a, b, p, temperature, mask=None):
    """``W = softmax(−‖a_i − b_j‖_p / T)`` over allowed keys, ``(B, Lq, Lk)`` in the dtype of ``a``."""
    d = distances(a, b, p)
    w = masked_softmax(-d / float(temperature), None if mask is None else np.asarray(mask, bool))
    return w.astype(a.dtype)


def attention(a, b, v, p, temperature, mask=None):
    """``softmax(−‖a_i − b_j‖_p / T) V``: ``→ (B, Lq, dv)``."""
    d = distances(a, b, p)
    w = masked_softmax(-d / float(temperature), None if mask is None else np.asarray(mask, bool))
    return np.matmul(w, np.asarray(v, np.float64)).astype(v.dtype)


def partial(a, b, v, p, temperature, mask=None, block: int = 1024):
    """``(out (B, Lq, dv), lse (B, Lq))`` of ``softmax(−‖a_i − b_j‖_p / T)`` over the keys at hand.

    ``lse = log Σ_j exp(−‖a_i − b_j‖_p / T)`` over allowed keys (``−inf`` with none, then
    ``out = 0``): one key shard's partial result, merged with others by
    :func:`kernels.reference.lse_merge.merge_partials`. Keys by blocks of ``block`` (memory
    ``O(Lq·block)``), merged the same way; float64.
    """
    from kernels.reference.lse_merge import blocked_partial

    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return blocked_partial(lambda j0, j1: -distances(a, b[:, j0:j1], p) / float(temperature), v, mask, block)


def candidates(q, k, num_candidates: int, mask=None):
    """Top-``C`` allowed keys per query by ``⟨q, k⟩`` (float64; ties to the smaller index).

    Returns ``(idx (B, Lq, C'), valid (B, Lq, C'))`` with ``C' = min(C, Lk)``; ``valid`` is False
    where a query has fewer than ``C`` allowed keys.
    """
    s = np.matmul(np.asarray(q, np.float64), np.swapaxes(np.asarray(k, np.float64), 1, 2))
    B, lq, lk = s.shape
    allowed = np.ones((B, lq, lk), bool) if mask is None else np.broadcast_to(np.asarray(mask, bool), s.shape)
    s = np.where(allowed, s, -np.inf)
    c = min(int(num_candidates), lk)
    idx = np.argsort(-s, axis=-1, kind="stable")[..., :c]
    valid = np.take_along_axis(allowed, idx, axis=-1)
    return idx, valid


def two_stage_weights(q, k, a, b, p, temperature, num_candidates, mask=None):
    """Weights of the two-stage form: softmax of ``−‖a_i − b_j‖_p / T`` over the candidates of
    :func:`candidates` only (0 elsewhere): ``(B, Lq, Lk)`` in the dtype of ``a``."""
    idx, valid = candidates(q, k, num_candidates, mask)
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    B, lq, lk = a.shape[0], a.shape[1], b.shape[1]
    bsel = np.take_along_axis(b64[:, None, :, :], idx[..., None], axis=2)  # (B, Lq, C, F)
    diff = np.abs(a64[:, :, None, :] - bsel)
    d = np.sqrt((diff * diff).sum(-1)) if p == 2 else (diff ** p).sum(-1) ** (1.0 / p)
    wc = masked_softmax(-d / float(temperature), valid)
    w = np.zeros((B, lq, lk))
    np.put_along_axis(w, idx, wc, axis=-1)
    return w.astype(a.dtype)


def two_stage_attention(q, k, a, b, v, p, temperature, num_candidates, mask=None):
    """``W V`` with the two-stage weights: ``→ (B, Lq, dv)``."""
    w = two_stage_weights(q, k, a, b, p, temperature, num_candidates, mask).astype(np.float64)
    return np.matmul(w, np.asarray(v, np.float64)).astype(v.dtype)
