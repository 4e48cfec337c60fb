"""Lorentz cascade heads, the definition: scores at several curvatures, top-k, softmax, centroid sums.

Head ``h`` has curvature ``−c_h``. Queries, keys and values are tangent vectors at the origin of
the hyperboloid ``H_c = {⟨x,x⟩_L = −1/c, x_0 > 0}`` (time coordinate first) mapped by ``exp_0``.

* Scores ``s^h_ij = −d_{c_h}(exp_0 q_i, exp_0 k_j)/T`` (``"distance"``, from the tangent chart in
  the log domain, :func:`kernels.geometry.lorentz.distance_from_chart`) or
  ``−|B(exp_0 k_j) − B(exp_0 q_i)|/T`` (``"busemann"``, ideal point ``ξ = e_0 + e_1``).
* With ``0 < top_k < Lk`` each query keeps the ``top_k`` allowed keys of largest head-0 score
  (ties: lower key index first, as a stable sort) for every head.
* ``W^h = softmax(s^h)`` over the kept, allowed keys (a row with none: 0).
* Per head the weighted sum of the values on the hyperboloid, ``S^h_i = Σ_j W^h_ij x^h_j``,
  ``x^h_j = exp_0^{c_h}(v_j) = (√(1/c_h + ‖x_s‖²), sinh(√c_h‖v_j‖)/(√c_h‖v_j‖)·v_j)``: ``(H, B, Lq, dv + 1)``
  (the caller normalises it to the Lorentzian centroid and maps it back).

Everything is float64. This module imports nothing from ``workbench``.
"""
from __future__ import annotations

import numpy as np

from kernels.geometry import lorentz as _L
from kernels.reference.select import top_k_mask
from kernels.reference.softmax import masked_softmax

SCORES = ("distance", "busemann")


def head_scores(q, k, c, temperature, score):
    """``(B, Lq, d), (B, Lk, d) → (B, Lq, Lk)``: the natural-base scores of the head at curvature ``c``."""
    a, uh = _L.origin_chart(q, c)
    b, wh = _L.origin_chart(k, c)
    if score == "distance":
        s = -_L.distance_from_chart(a, uh, b, wh, c)
    else:
        s = -np.abs(_L.busemann_from_chart(b, wh, c)[:, None, :] - _L.busemann_from_chart(a, uh, c)[:, :, None])
    return s / temperature


def top_k_allowed(s0, mask, top_k):
    """Mask ∩ the ``top_k`` largest ``s0`` per row among allowed keys; ``None`` when everything is allowed."""
    lk = s0.shape[-1]
    allowed = None if mask is None else np.broadcast_to(mask, s0.shape)
    if 0 < top_k < lk:
        keep = top_k_mask(s0, top_k, mask=allowed)
        allowed = keep if allowed is None else (keep & allowed)
    return allowed


def hyperboloid_values(v, c):
    """``exp_0^c(v)`` with the time coordinate first: ``(B, Lk, dv) → (B, Lk, dv + 1)`` float64."""
    return _L.expmap0(np.asarray(v, dtype=np.float64), c)


def cascade_weights_per_head(q, k, curvatures, temperature, score, top_k=0, mask=None):
    """The heads' weights ``[W^h (B, Lq, Lk)]``, top-k selected by head 0."""
    scores = [head_scores(q, k, c, temperature, score) for c in curvatures]
    allowed = top_k_allowed(scores[0], mask, top_k)
    return [masked_softmax(s, allowed) for s in scores]


def cascade_weights(q, k, curvatures, betas, temperature, score, top_k=0, mask=None):
    """``Σ_h β_h W^h``: ``(B, Lq, Lk)`` float64."""
    ws = cascade_weights_per_head(q, k, curvatures, temperature, score, top_k, mask)
    return sum(float(beta) * w for beta, w in zip(betas, ws))


def cascade_attention(q, k, v, curvatures, temperature, score, top_k=0, mask=None):
    """``S (H, B, Lq, dv + 1)``: ``S^h = W^h · exp_0^{c_h}(V)`` per head (see the module doc)."""
    ws = cascade_weights_per_head(q, k, curvatures, temperature, score, top_k, mask)
    return np.stack([np.matmul(w, hyperboloid_values(v, c)) for w, c in zip(ws, curvatures)])
