"""Fused mixed-curvature attention on E × H × S product vectors (one fused score kernel)."""
from __future__ import annotations

import numpy as np
import param

from kernels.curvature import CURVATURE, fused_attention, fused_logits
from kernels.reference.softmax import masked_softmax
from workbench.curvature import ComponentQuantizer, component_dims
from workbench.errors import ConfigurationError, DataError
from workbench.mechanisms import params as P
from workbench.mechanisms.base import Mechanism
from workbench.registry import register
from workbench.weights import check_names, check_shape


#: Elements of one work array of the forward (per-head copies of q, k, v for a chunk of batch items).
BATCH_CHUNK = 1 << 21


@register("fused_mixed_curvature")
class FusedMixedCurvature(Mechanism):
    """Attention whose logit sums a Euclidean, a hyperbolic and a spherical similarity of split vectors.

    ``ℓ_ij = (w_E·s·⟨q_E,k_E⟩ − w_H·d_H(π q_H, π k_H) − w_S·d_S(q_S, k_S)) / T``,
    ``out = softmax(ℓ) V`` over allowed keys. Each vector (per head) is split into ``E``, ``H`` and
    ``S = rest`` features; ``d_H`` is the Poincaré distance at curvature ``−c_h`` (H block projected
    into the ball), ``d_S`` the geodesic distance of the S directions on the sphere of curvature ``c_s``.
    All three logits come from one fused kernel pass (BLAS for ``⟨q_E,k_E⟩`` and the Gram matrices
    of the H and S blocks, Numba loops for the distances, parallel over query blocks); the Numba
    forward tiles the keys with an online softmax (FlashAttention style) and never allocates
    ``Lq × Lk`` (``weights()`` is dense by definition). With ``num_heads > 1`` the feature axes of
    q, k and v are cut into heads, head ``h`` uses weights ``(w_E + f_h v, w_H − f_h v/2, w_S + f_h v/2)`` (clipped at 0),
    ``f_h = h/H − ½``, ``v = per_head_variation``, and the head outputs are concatenated;
    ``weights()`` is the mean over heads. ``quantize=True`` scores 8/5/5-bit quantised q and k
    (:class:`~workbench.curvature.ComponentQuantizer`).

    Do better than upstream (docs/upstream.md#mixed-curvature): true multi-head (upstream reaches only head 0), the
    Euclidean block scaled by ``s = 1/√E`` (upstream: none, so E dominates), geodesic distances for H
    and S (upstream: tangent dot product and cosine), curvature of S as a parameter. Reductions:
    ``weights (1, 0, 0)`` with ``T = 1`` (or ``scale = 1``, ``T = √E``) is scaled dot-product
    attention on the E slice. Shapes ``(..., Lq, d), (..., Lk, d), (..., Lk, dv) → (..., Lq, dv)``.
    Paper: Gu et al., *Learning Mixed-Curvature Representations in Product Spaces*, ICLR 2019.
    """

    family = "geometric"
    softmax_rows = False
    theory = "mixed-curvature geometry"
    formula = "softmax((w_E·s⟨q_E,k_E⟩ − w_H·d_H(q_H,k_H) − w_S·d_S(q_S,k_S))/T) V"
    time_complexity = "O(Lq·Lk·d)"
    memory_complexity = "O(Lq·dv + threads·block²) forward (Numba); O(Lq·Lk) weights"
    kernels_used = (CURVATURE,)
    #: ``head_weights (num_heads, 3)``: per head ``(w_E, w_H, w_S)`` (trained mixing weights).
    learned_weights = ("head_weights",)

    euclidean_dim = param.Integer(default=None, allow_None=True, bounds=(0, None),
                                  doc="Width E of the Euclidean block (per head); None means ⌊d_head/2⌋.")
    hyperbolic_dim = param.Integer(default=None, allow_None=True, bounds=(0, None),
                                   doc="Width H of the hyperbolic block (per head); None means ⌊d_head/4⌋; "
                                       "the rest is spherical.")
    hyperbolic_curvature = param.Number(default=1.0, bounds=(0, 1e12), inclusive_bounds=(False, True),
                                        doc="Curvature magnitude c_h > 0 of the hyperbolic block (Poincaré ball).")
    spherical_curvature = param.Number(default=1.0, bounds=(0, 1e12), inclusive_bounds=(False, True),
                                       doc="Curvature c_s > 0 of the spherical block (sphere of radius 1/√c_s).")
    weight_e = param.Number(default=0.5, bounds=(0, None), doc="Weight w_E >= 0 of the Euclidean logit.")
    weight_h = param.Number(default=0.35, bounds=(0, None), doc="Weight w_H >= 0 of the hyperbolic distance.")
    weight_s = param.Number(default=0.15, bounds=(0, None), doc="Weight w_S >= 0 of the spherical distance.")
    temperature = P.temperature("Softmax temperature T dividing the fused logit.")
    scale = P.scale()
    num_heads = param.Integer(default=1, bounds=(1, 256),
                              doc="Number of heads; d and dv must divide by it; outputs are concatenated.")
    per_head_variation = param.Number(default=0.0, bounds=(0, None),
                                      doc="Spread v of the component weights across heads (0 = same weights).")
    quantize = param.Boolean(default=False,
                             doc="Score quantised q and k (8-bit E, 5-bit H and S, absmax per block).")

    def head_weights(self) -> np.ndarray:
        """Component weights ``(w_E, w_H, w_S)`` of every head, ``(num_heads, 3)``: trained ones from
        :meth:`load_weights`, else from ``weight_e/h/s`` and ``per_head_variation``."""
        if self._loaded_weights is not None:
            return self._loaded_weights["head_weights"].copy()
        h = np.arange(self.num_heads)
        f = h / self.num_heads - 0.5 if self.num_heads > 1 else np.zeros(1)
        v = self.per_head_variation
        w = np.stack([self.weight_e + f * v, self.weight_h - f * v / 2, self.weight_s + f * v / 2], axis=-1)
        return np.maximum(w, 0.0)

    def _initial_weights(self, d: int, dv: int) -> dict:
        return {"head_weights": self.head_weights()}

    def _accept_weights(self, w: dict) -> dict:
        check_names(w, ("head_weights",), (), "fused_mixed_curvature")
        check_shape(w, "head_weights", (self.num_heads, 3))
        hw = np.array(w["head_weights"], dtype=np.float64)
        if (hw < 0).any():
            raise DataError(f"head_weights: the component weights must be >= 0, got min {hw.min():.4g}")
        return {"head_weights": hw}

    def _check(self, b):
        nh = self.num_heads
        if self._loaded_weights is not None and self._loaded_weights["head_weights"].shape[0] != nh:
            raise ConfigurationError(f"num_heads: the loaded head_weights have {self._loaded_weights['head_weights'].shape[0]} "
                                     f"rows, num_heads={nh}")
        if b.dim % nh:
            raise ConfigurationError(f"num_heads: expected a divisor of the feature dimension d={b.dim}, got {nh}")
        if b.v is not None and b.v.shape[-1] % nh:
            raise ConfigurationError(
                f"num_heads: expected a divisor of the value dimension dv={b.v.shape[-1]}, got {nh}")
        component_dims(b.dim // nh, self.euclidean_dim, self.hyperbolic_dim)

    def calibration_params(self, keys, target):
        """The curvature whose ball holds the keys' hyperbolic block, over every head (``fit_curvature``)."""
        from workbench.geometry.poincare import fit_curvature

        k = self._heads(np.asarray(keys)[None])
        e, h, _ = component_dims(k.shape[-1], self.euclidean_dim, self.hyperbolic_dim)
        if not h:
            return {}, ""
        c, rule = fit_curvature(k[..., e:e + h], self.hyperbolic_curvature)
        return ({} if c == self.hyperbolic_curvature else {"hyperbolic_curvature": c}), f"hyperbolic block: {rule}"

    def _heads(self, x):
        """``(B, L, n) → (B·H, L, n/H)``."""
        B, L, n = x.shape
        nh = self.num_heads
        return np.ascontiguousarray(x.reshape(B, L, nh, n // nh).transpose(0, 2, 1, 3).reshape(B * nh, L, n // nh))

    def _components(self, bq, bk):
        """Per-head ``(B·H, L, ·)`` slices ``(qe, ke, qh, kh, qs, ks)`` of ``bq, bk (B, L, d)`` (quantised
        if asked, H projected) and the Euclidean scale."""
        from workbench.geometry import poincare

        q, k = self._heads(bq), self._heads(bk)
        e, h, s = component_dims(q.shape[-1], self.euclidean_dim, self.hyperbolic_dim)
        if self.quantize:
            qz = ComponentQuantizer()
            q, k = qz.round_trip(q, (e, h, s)), qz.round_trip(k, (e, h, s))
        ch = self.hyperbolic_curvature
        qh, kh = q[..., e:e + h], k[..., e:e + h]
        if h:
            qh, kh = poincare.project(qh, c=ch), poincare.project(kh, c=ch)
        scale = 1.0 / np.sqrt(e) if (self.scale is None and e) else (1.0 if self.scale is None else self.scale)
        return (q[..., :e], k[..., :e], qh, kh, q[..., e + h:], k[..., e + h:]), scale

    def _head_weights_all(self, b):
        """Per-head weights ``(B, H, Lq, Lk)``."""
        nh = self.num_heads
        (qe, ke, qh, kh, qs, ks), scale = self._components(b.q, b.k)
        B = b.q.shape[0]
        lq, lk = qe.shape[1], ke.shape[1]
        W = np.empty((B, nh, lq, lk), dtype=b.q.dtype)
        allowed = None if b.mask is None else b.mask[:, None]
        hw = self.head_weights()
        for i in range(nh):
            sl = slice(i, None, nh)  # rows of head i in the (B·H) layout
            lg = fused_logits(qe[sl], ke[sl], qh[sl], kh[sl], qs[sl], ks[sl],
                              c_h=self.hyperbolic_curvature, c_s=self.spherical_curvature, weights=tuple(hw[i]),
                              scale_e=scale, temperature=self.temperature, backend=self.backend)
            W[:, i] = masked_softmax(lg, None if allowed is None else allowed[:, 0])
        return W

    def _weights(self, b):
        return self._head_weights_all(b).mean(axis=1).astype(b.q.dtype, copy=False)

    def _forward(self, b):
        """All heads in one fused-attention call per chunk of batch items (heads are batch items of
        the kernel); the Numba kernel tiles the keys with an online softmax, so no ``Lq × Lk`` array
        is allocated, and the per-head copies of q, k, v exist for one chunk at a time."""
        nh = self.num_heads
        B, lq, lk = b.q.shape[0], b.q.shape[1], b.k.shape[1]
        dv = b.v.shape[-1]
        out = np.empty((B, lq, dv), dtype=b.q.dtype)
        step = max(1, BATCH_CHUNK // ((lq + lk) * max(b.dim, dv)))
        for s0 in range(0, B, step):
            sl = slice(s0, min(B, s0 + step))
            n = sl.stop - sl.start
            comps, scale = self._components(b.q[sl], b.k[sl])
            mask = None if b.mask is None else (b.mask[sl] if b.mask.shape[0] > 1 else b.mask)
            o = fused_attention(*comps, self._heads(b.v[sl]), c_h=self.hyperbolic_curvature,
                                c_s=self.spherical_curvature, weights=np.tile(self.head_weights(), (n, 1)),
                                scale_e=scale, temperature=self.temperature, mask=mask, mask_group=nh,
                                backend=self.backend)
            out[sl] = o.reshape(n, nh, lq, dv // nh).transpose(0, 2, 1, 3).reshape(n, lq, dv)
        return out
