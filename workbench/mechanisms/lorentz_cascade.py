"""Lorentz cascade attention: multi-curvature heads on the hyperboloid, with a sparse top-k form."""
from __future__ import annotations

import numpy as np
import param

from kernels.lorentz import LORENTZ, cascade_attention, cascade_weights
from workbench.errors import ConfigurationError, NumericalError
from workbench.mechanisms import params as P
from workbench.mechanisms.base import Mechanism
from workbench.registry import register


#: Elements of one float64 work array of the forward: batch items are processed in chunks.
BATCH_CHUNK = 1 << 21


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

    Fixes of upstream (docs/upstream.md#lorentz): upstream's horosphere score ``−(B(k_j) − B(q))/T``
    does not depend on the query (the query term cancels in the softmax), so both scores here are
    query dependent; upstream's "Einstein midpoint" is not on the manifold (here: the Lorentzian
    centroid) and its heads are averaged off the manifold (here: in the tangent space at the
    origin, with the curvature-consistent maps). Distances are computed from the tangent vectors
    (hyperbolic law of cosines, every term non-negative; in the log domain for far points), so far
    points neither overflow nor cancel. The Numba backend fuses the scores of every head, the
    top-k selection, the softmax and the hyperboloid sums (:mod:`kernels.numba.lorentz`; key tiles
    with an online softmax, no ``Lq × Lk`` array in the forward), in float64 like the reference; the
    CuPy backend runs each head's scores, softmax and sums in the GPU flash body (float32; the
    centroids and maps in float64 on the GPU).
    Shapes ``(..., Lq, d), (..., Lk, d), (..., Lk, dv) → (..., Lq, dv)``.
    Paper: Nickel & Kiela, *Learning Continuous Hierarchies in the Lorentz Model*, ICML 2018;
    Law et al., *Lorentzian Distance Learning for Hyperbolic Representations*, ICML 2019.
    """

    family = "geometric"
    softmax_rows = False
    theory = "hyperbolic geometry"
    formula = "out = Σ_h β_h log₀^{c_h}(centroid_L(softmax(−d_{c_h}(q,k)/T), exp₀^{c_h}(V)))"
    time_complexity = "O(H·Lq·Lk·(d + dv)); top-k: O(Lq·Lk·d + H·Lq·k·dv)"
    memory_complexity = "O(H·Lq·dv + threads·block²) forward (Numba); O(Lq·Lk) weights and NumPy"
    kernels_used = (LORENTZ,)

    num_heads = param.Integer(default=4, bounds=(1, 64),
                              doc="Number of heads H, one per curvature in curvature_range (log-spaced).")
    curvature_range = param.NumericTuple(
        default=(0.1, 2.0), length=2,
        doc="(c_min, c_max), 0 < c_min <= c_max: curvature magnitudes of the first and last head.")
    temperature = P.temperature("Softmax temperature T dividing every head's scores.")
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

    # -- attention ---------------------------------------------------------------------------------
    def _kw(self, b):
        return dict(curvatures=self.curvatures(), temperature=self.temperature, score=self.score, top_k=self.top_k,
                    mask=b.mask, backend=self.backend)

    def _weights(self, b):
        return cascade_weights(b.q, b.k, betas=self._betas(), **self._kw(b)).astype(b.q.dtype)

    def _forward(self, b):
        # NumPy functions throughout (kernels.geometry's, unchecked: the batch is validated), so that
        # CuPy arrays from the GPU heads stay on the GPU
        from kernels.geometry import lorentz as _L
        from kernels.geometry.numerics import sqnorm

        cs = self.curvatures()
        reach = float(np.sqrt(cs.max()) * np.sqrt(sqnorm(b.v.astype(np.float64)).max()))
        if reach > 700.0:  # sinh(√c‖v‖) of exp_0 overflows float64 near 710
            raise NumericalError(f"v: value vectors too long for the hyperboloid map exp_0 (√c_max·‖v‖ = {reach:.4g} "
                                 f"> 700 overflows sinh in float64); rescale the values")
        B, lq, lk = b.q.shape[0], b.q.shape[1], b.k.shape[1]
        dv = b.v.shape[-1]
        out = np.empty_like(b.q, shape=(B, lq, dv))
        kw = self._kw(b)
        step = max(1, BATCH_CHUNK // ((lq + lk) * b.dim + len(cs) * lq * (dv + 1)))
        for s0 in range(0, B, step):  # chunks of batch items: float64 work arrays of one chunk at a time
            sl = slice(s0, min(B, s0 + step))
            kw["mask"] = None if b.mask is None else (b.mask[sl] if b.mask.shape[0] > 1 else b.mask)
            sums = cascade_attention(b.q[sl], b.k[sl], b.v[sl], **kw)  # (H, n, Lq, dv + 1)
            o = np.zeros_like(sums[0, ..., 1:])
            for beta, c, s in zip(self._betas(), cs, sums):
                norm2 = -_L.minkowski_dot(s, s)[..., 0]  # > 0 for a positive combination of hyperboloid points
                has = norm2 > 0
                mu = np.where(has[..., None], s / np.sqrt(c * np.where(has, norm2, 1.0))[..., None], 0.0)
                mu[..., 0] = np.where(has, mu[..., 0], 1.0 / np.sqrt(c))  # no norm: the origin, log₀ = 0
                o += beta * _L.logmap0(mu, c)
            o = np.where((sums[0, ..., 0] > 0)[..., None], o, 0.0)  # a row with no allowed key: output exactly 0
            out[sl] = o
        return out
