"""Lorentz cascade attention: multi-curvature heads on the hyperboloid, with a sparse top-k form."""
from __future__ import annotations

import numpy as np
import param

from kernels.curvature import busemann, lorentz_distance
from kernels.reference.softmax import masked_softmax
from workbench.errors import ConfigurationError
from workbench.mechanisms.base import Mechanism
from workbench.registry import register


@register("lorentz_cascade")
class LorentzCascade(Mechanism):
    """Hyperbolic attention with heads at log-spaced curvatures, combined in the tangent space.

    Each vector is mapped onto the hyperboloid ``H_c = {⟨x,x⟩_L = −1/c}`` with ``exp_0`` of the whole
    vector (``d`` → ``d+1`` Lorentz coordinates). Head ``h`` has curvature
    ``c_h = exp(ln c_min + t_h (ln c_max − ln c_min))``, ``t_h = h/(H−1)`` (0.5 for one head), scores
    ``s_ij = −d_{c_h}(q_i, k_j)/T`` (``score='distance'``) or ``−|B(k_j) − B(q_i)|/T``
    (``score='busemann'``, ideal point ``ξ = e_0 + e_1``), masked softmax ``W_h``, and aggregates the
    values with the exact Lorentzian centroid ``μ_h = Σ_j W_ij x_j / (√c_h·√|⟨Σ W x, Σ W x⟩_L|)``.
    Heads are combined on the manifold: ``out_i = Σ_h β_h log_0^{c_h}(μ_{h,i})`` — each head's
    centroid taken to the tangent space at the origin at its own curvature and averaged there with
    the head weights ``β`` (uniform by default). Mapping that average back with ``exp_0`` at a
    reference curvature and returning ``log_0`` at the same curvature (the SDPA-shaped call) is the
    identity, so the tangent average is the output, ``(…, dv)``; one key gives its value back.
    ``weights()`` returns ``Σ_h β_h W_h``. With ``top_k > 0`` each query keeps the ``top_k`` allowed
    keys of largest head-0 score (lowest curvature; ties broken by key order) and attends only to them.

    Fixes of upstream (spec §2.10, §5 item 8): upstream's horosphere score ``−(B(k_j) − B(q))/T``
    does not depend on the query (the query term cancels in the softmax), so both scores here are
    query dependent; upstream's "Einstein midpoint" is not on the manifold (here: the Lorentzian
    centroid) and its heads are averaged off the manifold (here: in the tangent space at the
    origin, with the curvature-consistent maps). Distances are computed from the tangent vectors in
    the log domain (hyperbolic law of cosines), so far points neither overflow nor cancel.
    Shapes ``(..., Lq, d), (..., Lk, d), (..., Lk, dv) → (..., Lq, dv)``.
    Paper: Nickel & Kiela, *Learning Continuous Hierarchies in the Lorentz Model*, ICML 2018;
    Law et al., *Lorentzian Distance Learning for Hyperbolic Representations*, ICML 2019.
    """

    family = "geometric"
    theory = "hyperbolic geometry"
    formula = "out = Σ_h β_h log₀^{c_h}(centroid_L(softmax(−d_{c_h}(q,k)/T), exp₀^{c_h}(V)))"
    time_complexity = "O(H·Lq·Lk·(d + dv))"
    memory_complexity = "O(H·Lq·Lk + Lq·dv)"

    num_heads = param.Integer(default=4, bounds=(1, None),
                              doc="Number of heads H, one per curvature in curvature_range (log-spaced).")
    curvature_range = param.NumericTuple(
        default=(0.1, 2.0), length=2,
        doc="(c_min, c_max), 0 < c_min <= c_max: curvature magnitudes of the first and last head.")
    temperature = param.Number(default=1.0, bounds=(0, None), inclusive_bounds=(False, True),
                               doc="Softmax temperature T dividing every head's scores.")
    top_k = param.Integer(default=0, bounds=(0, None),
                          doc="0 = dense; k > 0 = keep the k best keys per query by the head-0 score, then attend.")
    score = param.Selector(
        default="distance", objects=["distance", "busemann"],
        doc="Query-dependent score: 'distance' −d_L(q,k)/T or 'busemann' −|B(k) − B(q)|/T.")
    head_weights = param.List(
        default=None, allow_None=True, item_type=(int, float),
        doc="Weights β_h >= 0 of the heads in the tangent-space average (normalised); None = uniform.")

    def __init__(self, **params):
        super().__init__(**params)
        self._validate()

    # -- configuration ---------------------------------------------------------------------------
    def _validate(self):
        c0, c1 = (float(x) for x in self.curvature_range)
        if not (np.isfinite(c0) and np.isfinite(c1) and 0 < c0 <= c1):
            raise ConfigurationError(
                f"curvature_range: expected (c_min, c_max) with 0 < c_min <= c_max, got {self.curvature_range!r}")
        if self.head_weights is not None:
            w = np.asarray(self.head_weights, dtype=np.float64)
            if w.shape != (self.num_heads,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                raise ConfigurationError(
                    f"head_weights: expected {self.num_heads} (num_heads) finite weights >= 0 with a positive "
                    f"sum, got {self.head_weights!r}")

    def curvatures(self) -> np.ndarray:
        """Curvature magnitude of every head, ``(H,)``."""
        c0, c1 = (float(x) for x in self.curvature_range)
        h = self.num_heads
        t = np.full(1, 0.5) if h == 1 else np.arange(h) / (h - 1)
        return np.exp(np.log(c0) + t * (np.log(c1) - np.log(c0)))

    def _betas(self) -> np.ndarray:
        if self.head_weights is None:
            return np.full(self.num_heads, 1.0 / self.num_heads)
        w = np.asarray(self.head_weights, dtype=np.float64)
        return w / w.sum()

    def _check(self, b):
        self._validate()

    # -- pieces ------------------------------------------------------------------------------------
    def _scores(self, b, c):
        """Head scores at curvature ``c``, float64 ``(B, Lq, Lk)``."""
        if self.score == "distance":
            s = -lorentz_distance(b.q, b.k, c=c, backend=self.backend)
        else:
            from kernels.dispatch import resolve_backend
            from kernels.curvature import SUPPORT

            resolve_backend(self.backend, (b.q, b.k), SUPPORT)
            s = -np.abs(busemann(b.k, c=c)[:, None, :] - busemann(b.q, c=c)[:, :, None])
        return s / self.temperature

    def _allowed(self, b, s0):
        """Mask ∩ the top-k selection by the head-0 scores ``s0``; ``None`` when everything is allowed."""
        lk = b.k.shape[1]
        allowed = None if b.mask is None else np.broadcast_to(b.mask, s0.shape)
        if 0 < self.top_k < lk:
            ranked = s0 if allowed is None else np.where(allowed, s0, -np.inf)
            order = np.argsort(-ranked, axis=-1, kind="stable")[..., : self.top_k]
            keep = np.zeros(s0.shape, dtype=bool)
            np.put_along_axis(keep, order, True, axis=-1)
            allowed = keep if allowed is None else (keep & allowed)
        return allowed

    def _head_weights(self, b):
        cs = self.curvatures()
        scores = [self._scores(b, c) for c in cs]
        allowed = self._allowed(b, scores[0])
        return cs, [masked_softmax(s, allowed) for s in scores]

    def _weights(self, b):
        _, ws = self._head_weights(b)
        out = sum(beta * w for beta, w in zip(self._betas(), ws))
        return out.astype(b.q.dtype)

    def _forward(self, b):
        from workbench.geometry import lorentz

        cs, ws = self._head_weights(b)
        v = b.v.astype(np.float64)
        out = np.zeros(ws[0].shape[:2] + (v.shape[-1],))
        for beta, c, w in zip(self._betas(), cs, ws):
            x = lorentz.exp_map0(v, c=c)  # (B, Lk, dv+1)
            s = np.matmul(w, x)  # (B, Lq, dv+1)
            norm2 = -lorentz.minkowski_dot(s, s)  # > 0 for a positive combination of hyperboloid points
            has = norm2 > 0
            mu = s / np.sqrt(c * np.where(has, norm2, 1.0))[..., None]
            mu[~has] = 0.0
            mu[~has, 0] = 1.0 / np.sqrt(c)  # the origin: an empty row maps to the zero tangent vector
            out += beta * lorentz.log_map0(mu, c=c)
        out[ws[0].sum(-1) == 0] = 0.0  # a row with no allowed key: output exactly 0
        return out.astype(b.q.dtype)
