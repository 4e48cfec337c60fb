"""Curvature score kernels: fused E×H×S logits and hyperboloid distances, dispatched by backend.

``fused_logits`` takes one vector per query/key already split into its Euclidean, hyperbolic and
spherical slices (H slices inside the Poincaré ball of curvature ``−c_h``) and returns
``(w_E·s_E⟨q_E,k_E⟩ − w_H d_H − w_S d_S)/T`` for every (query, key); ``fused_attention`` returns
``softmax(ℓ) V`` of those logits (Numba: key tiles and an online softmax, never ``Lq × Lk``). ``lorentz_distance`` returns the
hyperboloid distances between ``exp_0(u_i)`` and ``exp_0(w_j)`` without leaving the tangent chart
(float64, no overflow). See :mod:`kernels.reference.curvature` for the definitions.
"""
from __future__ import annotations

import math

import numpy as np

from kernels.capabilities import declare
from kernels.dispatch import resolve_backend
from kernels.reference import curvature as _ref

#: What the kernel serves on each backend (:mod:`kernels.capabilities`).
CURVATURE = declare("curvature", masks=True)

#: Queries per parallel work item of the Numba fused kernels; keys per tile.
BLOCK_Q = 64
BLOCK_K = 256


def _coefficients(w, scale_e, temperature, c_h, c_s):
    """The natural-base factors of ``⟨q_E, k_E⟩``, ``ln a`` and the half angle the Numba score takes:
    ``w · (s_E/T, 1/(√c_h T), 2/(√c_s T))`` (``d_H = ln(a)/√c_h``, ``d_S = 2·half angle/√c_s``)."""
    t = float(temperature)
    return np.asarray(w, np.float64) * np.array([scale_e / t, 1.0 / (math.sqrt(c_h) * t), 2.0 / (math.sqrt(c_s) * t)])


def _check_slices(qe, ke, qh, kh, qs, ks):
    """The six slices agree on ``(B, Lq)`` / ``(B, Lk)`` (a zero-width slice too: no broadcasting)."""
    B, lq, lk = qe.shape[0], qe.shape[1], ke.shape[1]
    for name, x, rows in (("ke", ke, lk), ("qh", qh, lq), ("kh", kh, lk), ("qs", qs, lq), ("ks", ks, lk)):
        if x.ndim != 3 or x.shape[:2] != (B, rows):
            raise ValueError(f"{name} has shape {x.shape}; expected ({B}, {rows}, ·) from qe {qe.shape} and "
                             f"ke {ke.shape}")


def fused_logits(qe, ke, qh, kh, qs, ks, *, c_h=1.0, c_s=1.0, weights=(1.0, 1.0, 1.0), scale_e=1.0,
                 temperature=1.0, backend="auto"):
    """``(B, Lq, ·), (B, Lk, ·) ×3 → (B, Lq, Lk)`` fused logits (the Euclidean dot products by BLAS).

    ``qe``/``ke`` Euclidean slices, ``qh``/``kh`` Poincaré-ball points at curvature ``−c_h``,
    ``qs``/``ks`` spherical slices (directions taken here; sphere of curvature ``c_s``). Numba: the
    score of :func:`fused_attention`, key tile by key tile.
    """
    be = resolve_backend(backend, (qe, ke, qh, kh, qs, ks), CURVATURE)
    _check_slices(qe, ke, qh, kh, qs, ks)
    w_e, w_h, w_s = (float(w) for w in weights)
    if be == "numpy":
        return _ref.fused_logits(qe, ke, qh, kh, qs, ks, c_h, c_s, w_e, w_h, w_s, scale_e, temperature)
    from kernels.numba import curvature as _nb

    coef = _coefficients(np.array([w_e, w_h, w_s]), scale_e, temperature, c_h, c_s)
    dq, dk = _ref.ball_denominators(qh, c_h), _ref.ball_denominators(kh, c_h)
    us, vs = _ref.unit_directions(qs), _ref.unit_directions(ks)
    return _nb.fused_logits(qe, ke, qh, kh, dq, dk, us, vs, coef, c_h, BLOCK_Q, BLOCK_K)


def fused_attention(qe, ke, qh, kh, qs, ks, v, *, c_h=1.0, c_s=1.0, weights=(1.0, 1.0, 1.0), scale_e=1.0,
                    temperature=1.0, mask=None, mask_group=1, backend="auto", block_q=BLOCK_Q, block_k=BLOCK_K):
    """``softmax(ℓ) v`` of the fused logits ``ℓ`` (see :func:`fused_logits`): ``→ (B, Lq, dv)``.

    ``weights`` ``(3,)`` or ``(B, 3)`` (per batch item: the heads of a multi-head call are items);
    ``mask`` boolean ``(Bm, Lq, Lk)``, True = may attend, ``Bm`` in ``{1, B/mask_group}`` (item
    ``b`` uses mask ``b // mask_group``); a row with no allowed key gives 0. The Numba kernel never
    holds ``Lq × Lk`` (tiles and an online softmax); the reference does, one item at a time.
    """
    be = resolve_backend(backend, (qe, ke, qh, kh, qs, ks, v), CURVATURE, mask=mask)
    _check_slices(qe, ke, qh, kh, qs, ks)
    B = qe.shape[0]
    w = np.broadcast_to(np.asarray(weights, dtype=np.float64), (B, 3))
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim == 2:
            mask = mask[None]
    if be == "numpy":
        return _ref.fused_attention(qe, ke, qh, kh, qs, ks, v, c_h, c_s, w, scale_e, temperature, mask, mask_group)
    from kernels.numba import curvature as _nb

    coef = _coefficients(w, scale_e, temperature, c_h, c_s)
    dq, dk = _ref.ball_denominators(qh, c_h), _ref.ball_denominators(kh, c_h)
    us, vs = _ref.unit_directions(qs), _ref.unit_directions(ks)
    return _nb.fused_attention(qe, ke, qh, kh, dq, dk, us, vs, v, coef, c_h, mask, int(mask_group), int(block_q),
                               int(block_k))


def lorentz_distance(u, w, *, c=1.0, backend="auto"):
    """``(B, n, d), (B, m, d) → (B, n, m)`` float64: ``d_L(exp_0 u_i, exp_0 w_j)`` at curvature ``−c``."""
    be = resolve_backend(backend, (u, w), CURVATURE)
    a, uh = _ref.origin_chart(u, c)
    b, wh = _ref.origin_chart(w, c)
    if be == "numpy":
        return _ref.lorentz_distance_from_chart(a, uh, b, wh, c)
    from kernels.numba import curvature as _nb

    return _nb.lorentz_distance_from_chart(a, uh, b, wh, c)


def busemann(u, *, c=1.0):
    """``(..., d) → (...)`` float64: Busemann function of ``exp_0(u)`` for ``ξ = e_0 + e_1`` (per vector; cheap)."""
    a, uh = _ref.origin_chart(u, c)
    return _ref.busemann_from_chart(a, uh, c)


__all__ = ["CURVATURE", "fused_logits", "fused_attention", "lorentz_distance", "busemann"]
