"""Hyperbolic attention on the Poincaré ball (Ganea et al. 2018; Gulcehre et al. 2019)."""
from __future__ import annotations

import numpy as np
import param

from kernels.geometry import stereographic as _K
from kernels.gpu.host import to_host
from kernels.hyperbolic import AGGREGATIONS as _CLOSED_FORM
from kernels.hyperbolic import (HYPERBOLIC, hyperbolic_attention, hyperbolic_finish, hyperbolic_partial,
                                hyperbolic_weights)
from workbench.geometry import poincare as _P
from workbench.errors import ConfigurationError
from workbench.mechanisms import params as P
from workbench.mechanisms.base import Mechanism
from workbench.registry import register

#: Elements of a (queries × keys × dv) float64 work array per chunk of the Fréchet mean.
_FRECHET_CHUNK = 1 << 21


@register("hyperbolic")
class Hyperbolic(Mechanism):
    """Attention on the Poincaré ball: weights from geodesic distances, values averaged in the ball.

    ``W_ij = softmax_j(−d_c(q_i, k_j)/T)`` over allowed keys, with
    ``d_c(x, y) = (1/√c)·arcosh(1 + 2c‖x − y‖²/((1 − c‖x‖²)(1 − c‖y‖²)))``; ``q, k, v`` are first
    projected into the ball ``‖x‖ ≤ (1 − eps)/√c`` (eps 1e-5, float32 and float64 alike).
    ``out_i`` = the weighted mean of the projected values: ``"einstein"`` the Einstein midpoint
    (closed form through the Klein model, default, fused Numba kernel), ``"frechet"`` the Fréchet
    (Karcher) mean ``argmin_m Σ_j W_ij d_c(m, v_j)²``, ``"tangent"`` ``exp_0(Σ_j W_ij log_0 v_j)``,
    ``"mobius"`` the Möbius sum ``⊕_j (W_ij ⊗ v_j)`` (the research note's formula, order-dependent,
    for comparison). The output lies in the ball; a row with no allowed key gives the origin.
    Shapes ``(..., Lq, d), (..., Lk, d), (..., Lk, dv) → (..., Lq, dv)``.
    Do better than upstream (docs/upstream.md#hyperbolic): the standard exp/log pair
    (``exp_p∘log_p = id``), the Karcher iteration with step 1 (halved where it would not descend)
    instead of a fixed step 0.1, a float32-safe boundary margin, and weights that project too.
    Papers: Ganea, Bécigneul & Hofmann, *Hyperbolic Neural Networks*, 2018; Gulcehre et al.,
    *Hyperbolic Attention Networks*, 2019.
    """

    family = "geometric"
    theory = "hyperbolic geometry"
    formula = "W = softmax(−d_c(Q, K)/T);  out_i = midpoint_c({v_j}, W_i·)"
    time_complexity = "O(Lq·Lk·(d+dv)) (frechet: × iterations)"
    memory_complexity = "O(Lq·dv + threads·block²) (einstein/tangent, Numba); O(Lq·Lk) otherwise"
    needs_graph = False
    kernels_used = (HYPERBOLIC,)
    #: By key shards for the closed-form means: the Einstein midpoint and the tangent mean are ratios
    #: of weighted sums, which shards merge exactly by their log-sum-exp ('frechet' and 'mobius' refuse).
    not_shardable = None

    c = param.Number(default=1.0, bounds=(0, 1e12), inclusive_bounds=(False, True),
                     doc="Curvature magnitude c > 0: the ball of radius 1/sqrt(c), curvature -c.")
    temperature = P.temperature("Softmax temperature T in softmax(-d_c(q, k)/T); T -> 0 picks the nearest key.")
    aggregation = param.Selector(
        default="einstein", objects=["einstein", "frechet", "tangent", "mobius"],
        doc="How values are averaged in the ball: 'einstein' midpoint (closed form, fast), 'frechet' "
            "(Karcher) mean, 'tangent' mean at the origin, or the 'mobius' weighted sum.")
    tol = param.Number(default=None, allow_None=True, bounds=(0, None),
                       doc="Fréchet mean: stop when the Riemannian gradient norm is below tol "
                           "(None: 1e-6/sqrt(c) in float32, 1e-11/sqrt(c) in float64).")
    max_iter = param.Integer(default=100, bounds=(0, 10_000),
                             doc="Fréchet mean: at most this many Karcher iterations per query.")

    def input_notes(self, q, k) -> list[str]:
        """A note when ``q`` or ``k`` reach outside the ball ``‖x‖ < 1/√c``: such points are
        projected onto its boundary, where all distances are huge and each query attends almost
        only to its own point (the map looks like the identity)."""
        radius = 1.0 / np.sqrt(self.c)
        top = max(float(np.max(np.linalg.norm(np.asarray(a, np.float64), axis=-1), initial=0.0))
                  for a in map(to_host, (q, k)))  # CuPy arrays: read on the host
        if top < radius:
            return []
        return [f"inputs reach outside the Poincaré ball (max ‖x‖ = {top:.3g} ≥ 1/√c = {radius:.3g}): they are "
                "projected onto its boundary, where every distance is large and a query attends to little "
                "but itself; map them into the ball first (normalisation 'ball')"]

    def calibration_params(self, keys, target):
        """The curvature whose ball holds the keys (:func:`~workbench.geometry.poincare.fit_curvature`)."""
        c, rule = _P.fit_curvature(keys, self.c)
        return ({} if c == self.c else {"c": c}), rule

    def _kw(self, b):
        # the call's resolved backend: a host re-entry (the iterative means on CuPy arrays) sets "numba"
        return dict(mask=b.mask, c=self.c, temperature=self.temperature, backend=b.backend or self.backend)

    def _weights(self, b):
        return hyperbolic_weights(b.q, b.k, **self._kw(b))

    def _shard_partial(self, b, query_offset, key_offset):
        if self.aggregation not in _CLOSED_FORM:
            raise ConfigurationError(f"hyperbolic: by key shards only with aggregation in {list(_CLOSED_FORM)} "
                                     f"(ratios of weighted sums); {self.aggregation!r} needs all the weights at once")
        return hyperbolic_partial(b.q, b.k, b.v, aggregation=self.aggregation, **self._kw(b))

    def shard_finish(self, out, d: int, dv: int, dtype=None):
        """Merged ``r`` → the Einstein midpoint or tangent mean in the ball (``dtype``, default float32)."""
        return hyperbolic_finish(out, c=self.c, aggregation=self.aggregation, dtype=dtype or np.float32)

    def _forward(self, b):
        if self.aggregation in _CLOSED_FORM:
            return hyperbolic_attention(b.q, b.k, b.v, aggregation=self.aggregation, **self._kw(b))
        if b.backend == "cupy":  # the iterative means run on the host: CuPy in, CuPy out
            import dataclasses

            from kernels.gpu.host import via_host

            return via_host(lambda q, k, v, m: self._forward(dataclasses.replace(b, q=q, k=k, v=v, mask=m,
                                                                                 backend="numba")),
                            b.q, b.k, b.v, b.mask)
        w = self._weights(b)
        v = _P.project(b.v, c=self.c)
        if self.aggregation == "frechet":
            return self._frechet(w, v)
        return self._mobius(w, v)

    def _frechet(self, w, v):
        B, lq, lk = w.shape
        out = np.empty((B, lq, v.shape[-1]), v.dtype)
        step = max(1, _FRECHET_CHUNK // max(1, lk * v.shape[-1]))
        for bi in range(B):
            for i0 in range(0, lq, step):
                i1 = min(lq, i0 + step)
                out[bi, i0:i1] = _P.frechet_mean(v[bi], w[bi, i0:i1], c=self.c, tol=self.tol,
                                                 max_iter=self.max_iter)
        return out

    def _mobius(self, w, v):
        k = -np.dtype(v.dtype).type(self.c)  # κ = −c
        e = _P.eps(v.dtype)
        acc = np.zeros(w.shape[:2] + (v.shape[-1],), v.dtype)
        for j in range(w.shape[2]):
            term = _K.mobius_scalar(w[:, :, j, None], v[:, None, j], k, e)  # w_ij ⊗ v_j, (B, Lq, dv)
            acc = _K.project(_K.mobius_add(acc, term, k), k, e)
        return acc
