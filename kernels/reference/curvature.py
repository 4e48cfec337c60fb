"""Curvature scores, the definition: fused E×H×S logits and hyperboloid distances from the origin chart.

Fused logits of one query ``q = [q_E | q_H | q_S]`` and key ``k`` (split vectors):

    ℓ = (w_E · s_E ⟨q_E, k_E⟩ − w_H · d_H(q_H, k_H) − w_S · d_S(q_S, k_S)) / T

* ``d_H`` is the Poincaré-ball distance at curvature ``−c_h`` (``q_H``, ``k_H`` already inside the
  ball): ``d_H = arcosh(1 + 2 c_h ‖x − y‖² / ((1 − c_h‖x‖²)(1 − c_h‖y‖²))) / √c_h``;
* ``d_S`` is the geodesic distance on the sphere of curvature ``c_s`` (radius ``1/√c_s``) between the
  directions ``x̂ = x/‖x‖`` and ``ŷ``: ``d_S = 2·atan2(‖x̂ − ŷ‖, ‖x̂ + ŷ‖) / √c_s`` (accurate for near
  and antipodal points, unlike ``arccos``); a zero vector has direction ``e_0``.

Hyperboloid distance between ``exp_0(u)`` and ``exp_0(w)`` (Lorentz model, curvature ``−c``), from
the tangent vectors alone (hyperbolic law of cosines, all terms non-negative, so no cancellation;
evaluated in the log domain, so no overflow): with ``a = √c‖u‖``, ``b = √c‖w‖``,
``δ = ‖û − ŵ‖²``, ``X = 2 sinh²((a − b)/2) + sinh a · sinh b · δ/2`` and ``d = arcosh(1 + X)/√c``.
This module imports nothing from ``workbench``.
"""
from __future__ import annotations

import numpy as np

from kernels.reference.softmax import masked_softmax

_LN2 = float(np.log(2.0))


def ball_denominators(x: np.ndarray, c: float) -> np.ndarray:
    """``1 − c‖x‖²`` per vector, ``(..., h) → (...)`` (positive for points inside the ball)."""
    return 1.0 - c * np.einsum("...i,...i->...", x, x)


def unit_directions(x: np.ndarray) -> np.ndarray:
    """``x/‖x‖`` per vector; a zero vector becomes ``e_0``."""
    n = np.sqrt(np.einsum("...i,...i->...", x, x))[..., None]
    out = np.divide(x, n, out=np.zeros_like(x), where=n > 0)
    if x.shape[-1]:
        out[..., 0] = np.where(n[..., 0] > 0, out[..., 0], 1.0)
    return out


def _arcosh1p(x):
    """``arcosh(1 + x)`` for ``x ≥ 0``, accurate near 0."""
    return np.log1p(x + np.sqrt(x * (x + 2.0)))


#: Elements of one ``(B, rows, m, width)`` temporary of the pairwise functions (rows are chunked).
_CHUNK = 1 << 22


def _pair_sq(x, y, sign=-1.0):
    """``Σ_t (x_it ± y_jt)²`` from the differences (no cancellation): ``(B, n, w), (B, m, w) → (B, n, m)``,
    computed for a chunk of rows at a time (the ``(B, rows, m, w)`` temporary stays below ``_CHUNK``)."""
    B, n, w = x.shape
    m = y.shape[1]
    out = np.empty((B, n, m), dtype=np.result_type(x, y))
    step = max(1, _CHUNK // max(1, B * m * w))
    for i0 in range(0, n, step):
        t = x[:, i0:i0 + step, None, :] + sign * y[:, None, :, :]
        out[:, i0:i0 + step] = np.einsum("...i,...i->...", t, t)
    return out


def poincare_pairwise_distance(x, y, c, dx=None, dy=None):
    """``(B, n, h), (B, m, h) → (B, n, m)``: Poincaré distances; ``dx``/``dy`` = :func:`ball_denominators`."""
    dx = ball_denominators(x, c) if dx is None else dx
    dy = ball_denominators(y, c) if dy is None else dy
    diff2 = _pair_sq(x, y)
    den = np.maximum(dx[:, :, None] * dy[:, None, :], np.finfo(x.dtype).tiny)
    return _arcosh1p(2.0 * c * diff2 / den) / np.sqrt(c)


def sphere_pairwise_distance(x, y, c):
    """``(B, n, s), (B, m, s) → (B, n, m)``: geodesic distances of the directions on the sphere of curvature ``c``."""
    xu, yu = unit_directions(x), unit_directions(y)
    a = np.sqrt(_pair_sq(xu, yu))
    b = np.sqrt(_pair_sq(xu, yu, 1.0))
    return 2.0 * np.arctan2(a, b) / np.sqrt(c)


def fused_logits(qe, ke, qh, kh, qs, ks, c_h=1.0, c_s=1.0, w_e=1.0, w_h=1.0, w_s=1.0, scale_e=1.0,
                 temperature=1.0):
    """Fused E×H×S logits ``(B, Lq, Lk)`` from the split, already projected components (see module doc).

    ``qe (B, Lq, E)``, ``qh (B, Lq, H)`` inside the ball of curvature ``−c_h``, ``qs (B, Lq, S)`` any
    (directions are taken here); keys likewise. A component with zero width or zero weight adds 0.
    """
    B, lq, lk = qe.shape[0], qe.shape[1], ke.shape[1]
    out = np.zeros((B, lq, lk), dtype=qe.dtype)
    if qe.shape[-1] and w_e:
        out += (w_e * scale_e) * np.matmul(qe, np.swapaxes(ke, -1, -2))
    if qh.shape[-1] and w_h:
        out -= w_h * poincare_pairwise_distance(qh, kh, c_h)
    if qs.shape[-1] and w_s:
        out -= w_s * sphere_pairwise_distance(qs, ks, c_s)
    return (out / temperature).astype(qe.dtype, copy=False)


def fused_attention(qe, ke, qh, kh, qs, ks, v, c_h=1.0, c_s=1.0, weights=(1.0, 1.0, 1.0), scale_e=1.0,
                    temperature=1.0, mask=None, mask_group=1):
    """``softmax(ℓ) v`` over allowed keys, ``ℓ`` the :func:`fused_logits`: ``→ (B, Lq, dv)``.

    ``weights`` is ``(3,)`` or ``(B, 3)`` (per batch item, e.g. per head); ``mask (Bm, Lq, Lk)``
    boolean with ``Bm`` in ``{1, B/mask_group}`` (item ``b`` uses mask ``b // mask_group``). A
    row with no allowed key gives 0. One item at a time (``Lq × Lk`` logits each).
    """
    B, lq, lk = qe.shape[0], qe.shape[1], ke.shape[1]
    w = np.broadcast_to(np.asarray(weights, dtype=np.float64), (B, 3))
    out = np.empty((B, lq, v.shape[-1]), dtype=v.dtype)
    for b in range(B):
        lg = fused_logits(qe[b:b + 1], ke[b:b + 1], qh[b:b + 1], kh[b:b + 1], qs[b:b + 1], ks[b:b + 1], c_h, c_s,
                          w[b, 0], w[b, 1], w[b, 2], scale_e, temperature)
        allowed = None
        if mask is not None:
            allowed = mask[b // mask_group] if mask.shape[0] > 1 else mask[0]
        out[b] = np.matmul(masked_softmax(lg[0], allowed), v[b])
    return out


# --- hyperboloid (Lorentz) distances from tangent vectors at the origin -----------------------------

def _log_sinh(x):
    """``ln sinh x`` for ``x ≥ 0`` (``−inf`` at 0), without overflow."""
    with np.errstate(divide="ignore"):
        return x + np.log1p(-np.exp(-2.0 * x)) - _LN2


def origin_chart(u, c):
    """``(a = √c‖u‖, û)`` per vector of ``u (..., d)`` in float64 (``û = e_0`` for ``u = 0``)."""
    u = np.asarray(u, dtype=np.float64)
    return np.sqrt(c) * np.sqrt(np.einsum("...i,...i->...", u, u)), unit_directions(u)


def lorentz_distance_from_chart(a, uhat, b, what, c):
    """``(B, n), (B, n, d), (B, m), (B, m, d) → (B, n, m)``: ``d_L(exp_0 u_i, exp_0 w_j)`` at curvature ``−c``."""
    delta = _pair_sq(uhat, what)
    ai, bj = a[:, :, None], b[:, None, :]
    with np.errstate(divide="ignore"):
        t1 = _LN2 + 2.0 * _log_sinh(np.abs(ai - bj) / 2.0)
        t2 = _log_sinh(ai) + _log_sinh(bj) + np.log(delta / 2.0)
        ln_x = np.logaddexp(t1, t2)
    x = np.exp(np.minimum(ln_x, 30.0))
    d = np.where(ln_x < 30.0, _arcosh1p(x), ln_x + _LN2)
    return d / np.sqrt(c)


def busemann_from_chart(a, uhat, c):
    """Busemann function of ``exp_0(u)`` for the ideal point ``ξ = e_0 + e_1`` (time coordinate first):
    ``B(x) = ln(−⟨x, ξ⟩_L) = ln((cosh a − sinh a · û_0)/√c)`` in the log domain, ``(..., ) → (...)``."""
    cphi = np.clip(uhat[..., 0], -1.0, 1.0)
    with np.errstate(divide="ignore"):
        return np.logaddexp(-a + np.log1p(cphi), a + np.log1p(-cphi)) - _LN2 - 0.5 * np.log(c)
