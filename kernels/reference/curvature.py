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
The geometry is :mod:`kernels.geometry` (``stereographic`` at ``κ = −c_h``, ``sphere``, ``lorentz``);
this module imports nothing from ``workbench``.
"""
from __future__ import annotations

import numpy as np

from kernels.geometry import lorentz as _L
from kernels.geometry import sphere as _S
from kernels.geometry import stereographic as _K
from kernels.geometry.numerics import pairwise_sq
from kernels.geometry.sphere import unit_directions
from kernels.reference.softmax import masked_softmax

#: The tangent-chart functions of the hyperboloid (used by the Lorentz cascade and the kernels).
origin_chart = _L.origin_chart
lorentz_distance_from_chart = _L.distance_from_chart
busemann_from_chart = _L.busemann_from_chart


def ball_denominators(x: np.ndarray, c: float) -> np.ndarray:
    """``1 − c‖x‖²`` per vector, floored at the ball's margin, ``(..., h) → (...)`` (:func:`kernels.geometry.stereographic.conformal_den`)."""
    return _K.conformal_den(x, -c)[..., 0]


def poincare_pairwise_distance(x, y, c, dx=None, dy=None):
    """``(B, n, h), (B, m, h) → (B, n, m)``: Poincaré distances; ``dx``/``dy`` = :func:`ball_denominators`."""
    dx = ball_denominators(x, c) if dx is None else dx
    dy = ball_denominators(y, c) if dy is None else dy
    return _K.ball_distance_from_sq(pairwise_sq(x, y), dx[..., :, None], dy[..., None, :], c)


def sphere_pairwise_distance(x, y, c):
    """``(B, n, s), (B, m, s) → (B, n, m)``: geodesic distances of the directions on the sphere of curvature ``c``."""
    return _S.pairwise_distance(x, y, c)


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
    B, lq = qe.shape[0], qe.shape[1]
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


__all__ = ["unit_directions", "ball_denominators", "poincare_pairwise_distance", "sphere_pairwise_distance",
           "fused_logits", "fused_attention", "origin_chart", "lorentz_distance_from_chart", "busemann_from_chart"]
