"""Mixed-curvature attention on split vectors ``[x_E | x_H]`` (Euclidean × Poincaré ball)."""
from __future__ import annotations

import numpy as np
import param

from kernels.curvature import CURVATURE, fused_logits
from kernels.reference.softmax import masked_softmax
from workbench.errors import ConfigurationError
from workbench.mechanisms import params as P
from workbench.mechanisms.base import Mechanism
from workbench.registry import register


def split_dims(d: int, euclidean_dim, what: str = "euclidean_dim") -> int:
    """Width of the Euclidean block: ``euclidean_dim`` (checked against ``d``) or ``⌊d/2⌋``."""
    if euclidean_dim is None:
        return d // 2
    if euclidean_dim > d:
        raise ConfigurationError(f"{what}: expected at most the feature dimension d={d}, got {euclidean_dim}")
    return int(euclidean_dim)


@register("mixed_curvature")
class MixedCurvature(Mechanism):
    """Attention on a product of a Euclidean and a hyperbolic space, mixing the two softmaxes.

    ``w = (1−α)·softmax(⟨q_E,k_E⟩/T) + α·softmax(−d_c(π q_H, π k_H)/T)`` over allowed keys (both
    masked, so masked keys get exactly 0 and each row sums to 1); ``out = concat(Σ_j w_j v_{j,E},
    M_w(π v_{j,H}))`` with ``M`` the weighted Einstein midpoint (Klein model, closed form) or the
    weighted Fréchet mean (Karcher iteration with the standard exp/log maps).
    ``π`` projects into the ball of curvature ``−c`` (values with a margin of at least 1e-7: a mean of
    points on the margin is ill-conditioned in ball coordinates); ``d_c`` is the Poincaré distance
    (Numba kernel). Fixes of upstream: one masked softmax (exact zeros, no uniform fallback), the
    standard exp/log maps in the Fréchet mean, errors for impossible splits (docs/upstream.md#mixed-curvature).
    The Euclidean logits carry no ``1/√d`` (as upstream): ``T = √E`` and ``α = 0`` give scaled
    dot-product attention on the E block. A row with no allowed key gives weights 0 and output 0.
    Shapes ``(..., Lq, d), (..., Lk, d), (..., Lk, dv) → (..., Lq, dv)``; ``q``/``k`` split at
    ``euclidean_dim`` and ``v`` at ``value_euclidean_dim``.
    Paper: Gu et al., *Learning Mixed-Curvature Representations in Product Spaces*, ICLR 2019.
    """

    family = "geometric"
    softmax_rows = False
    theory = "hyperbolic geometry"
    formula = "w = (1−α)·softmax(⟨q_E,k_E⟩/T) + α·softmax(−d_c(q_H,k_H)/T); out = [w V_E | midpoint_w(V_H)]"
    time_complexity = "O(Lq·Lk·d)"
    memory_complexity = "O(Lq·Lk + Lq·dv)"
    kernels_used = (CURVATURE,)

    euclidean_dim = param.Integer(
        default=None, allow_None=True, bounds=(0, None),
        doc="Width E of the Euclidean block of q and k (the first E features); None means ⌊d/2⌋.")
    value_euclidean_dim = param.Integer(
        default=None, allow_None=True, bounds=(0, None),
        doc="Width of the Euclidean block of v; None means E when dv = d, else ⌊dv·E/d⌋.")
    c = param.Number(default=1.0, bounds=(0, 1e12), inclusive_bounds=(False, True),
                     doc="Curvature magnitude c > 0 of the hyperbolic block (ball of radius 1/√c).")
    mixing_weight = param.Number(default=0.5, bounds=(0.0, 1.0),
                                 doc="Weight α of the hyperbolic softmax; 1 − α goes to the Euclidean one.")
    temperature = P.temperature("Softmax temperature T dividing both the Euclidean and hyperbolic logits.")
    aggregation = param.Selector(
        default="einstein", objects=["einstein", "frechet"],
        doc="Mean of the hyperbolic values: 'einstein' (closed-form Klein midpoint) or 'frechet' "
            "(Karcher mean, iterative).")

    # -- pieces ------------------------------------------------------------------------------------
    def _dims(self, d: int) -> int:
        return split_dims(d, self.euclidean_dim)

    def _value_dims(self, d: int, dv: int, e: int) -> int:
        if self.value_euclidean_dim is None:
            return e if dv == d else (dv * e) // d
        return split_dims(dv, self.value_euclidean_dim, "value_euclidean_dim")

    def calibration_params(self, keys, target):
        """The curvature whose ball holds the keys' hyperbolic block (``fit_curvature``)."""
        from workbench.geometry.poincare import fit_curvature

        e = self._dims(keys.shape[-1])
        c, rule = fit_curvature(keys[..., e:], self.c)
        return ({} if c == self.c else {"c": c}), (f"hyperbolic block: {rule}" if rule else "")

    def _check(self, b):
        e = self._dims(b.dim)
        if b.v is not None:
            self._value_dims(b.dim, b.v.shape[-1], e)

    def _weights(self, b):
        from workbench.geometry import poincare

        e = self._dims(b.dim)
        empty = b.q[..., :0]
        emptk = b.k[..., :0]
        t = self.temperature
        le = fused_logits(b.q[..., :e], b.k[..., :e], empty, emptk, empty, emptk, weights=(1.0, 0.0, 0.0),
                          temperature=t, backend=self.backend)
        if e < b.dim:
            qh = poincare.project(b.q[..., e:], c=self.c)
            kh = poincare.project(b.k[..., e:], c=self.c)
        else:
            qh, kh = empty, emptk
        lh = fused_logits(empty, emptk, qh, kh, empty, emptk, c_h=self.c, weights=(0.0, 1.0, 0.0),
                          temperature=t, backend=self.backend)
        allowed = None if b.mask is None else b.mask
        a = self.mixing_weight
        w = masked_softmax(le, allowed) * (1.0 - a) + masked_softmax(lh, allowed) * a
        return w.astype(b.q.dtype, copy=False)

    def _forward(self, b):
        w = self._weights(b)
        e = self._dims(b.dim)
        dv = b.v.shape[-1]
        ev = self._value_dims(b.dim, dv, e)
        out = np.empty(w.shape[:2] + (dv,), dtype=b.q.dtype)
        out[..., :ev] = np.matmul(w, b.v[..., :ev])
        if ev < dv:
            out[..., ev:] = self._hyperbolic_mean(w, b.v[..., ev:])
        return out

    def _hyperbolic_mean(self, w, vh):
        """``(B, Lq, Lk), (B, Lk, h) → (B, Lq, h)``: weighted mean of ``π v_H`` per query (0 for empty rows)."""
        from kernels.geometry.stereographic import klein_terms
        from workbench.geometry import poincare

        c = self.c
        dt = vh.dtype
        # values are projected with a margin of at least 1e-7: the mean of points on the margin is
        # ill-conditioned in ball coordinates (error ~ eps/margin), and float64's 1e-12 amplifies
        # summation-order rounding to ~1e-10
        margin = max(poincare.eps(dt), 1e-7)
        p = poincare.project(vh, c=c, eps=margin).astype(np.float64)
        w64 = w.astype(np.float64)
        if self.aggregation == "einstein":  # γ_i x_K,i = λ_i x_i and γ_i = λ_i − 1 (as poincare.einstein_midpoint)
            lam_p, gamma = klein_terms(p, -c, margin)
            num, den = np.matmul(w64, lam_p), np.matmul(w64, gamma)
            res = poincare.from_klein(np.divide(num, den, out=np.zeros_like(num), where=den > 0), c=c)
        else:
            res = poincare.frechet_mean(p[:, None], weights=w64, c=c)
        res = np.where((w64.sum(-1) > 0)[..., None], res, 0.0)
        return res.astype(dt)
