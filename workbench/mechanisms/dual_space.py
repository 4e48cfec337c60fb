"""Dual-space attention: Euclidean dot products and Poincaré-ball distances in one logit."""
from __future__ import annotations

import math

import numpy as np
import param

import kernels
import kernels.curvature
from kernels.reference.softmax import masked_softmax
from workbench.errors import ConfigurationError, ShapeError
from workbench.inputs import prepare
from workbench.mechanisms import params as P
from workbench.mechanisms.base import Mechanism
from workbench.registry import register
from workbench.weights import check_names, check_shape

#: Relative margin of the projection into the ball, ``√c‖x‖ ≤ 1 − PROJECTION_EPS`` (upstream's
#: 1e-5, float32-safe; the same for every dtype so that float32 and float64 agree).
PROJECTION_EPS = 1e-5

FUSIONS = ("dual", "graph_latent_cross")

#: Elements of one float64 work array of the Numba forward: the inputs are converted and projected
#: for a chunk of batch items at a time, so large batches need no full-size float64 copies.
BATCH_CHUNK = 1 << 21


@register("dual_space")
class DualSpace(Mechanism):
    """Dual-space attention: one logit mixing a Euclidean dot product and a Poincaré distance.

    ``s_ij = (α_E·⟨W_E q_i, W_E k_j⟩/√d − α_H·d_c(π q_i, π k_j)) / T``, ``π(x) = project(W_H x)``
    into the ball of curvature ``−c`` (``√c‖x‖ ≤ 1 − 10⁻⁵``); ``W = softmax(s)`` over allowed keys;
    ``out = W V``, then ``W_O`` when ``dv == d`` (as upstream; otherwise unprojected).
    ``fusion='graph_latent_cross'`` (the research note's three-way fusion, needs ``graph=``):
    graph attention ``A_G`` (softmax of ``s`` over the graph in-neighbours of node ``i``, with
    a self-loop), latent attention ``A_L`` (over all keys) and cross attention ``A_C`` whose
    query is the graph context in key space, ``q̃_i = Σ_j A_G,ij k_j`` (the note feeds the graph
    *output* back as a query, which only type-checks when ``dv == d``); weights
    ``(β_G A_G + β_L A_L + β_C A_C)/Σβ``, renormalised over the terms that exist for node ``i``
    (no allowed graph neighbour: latent only). Shapes as SDPA; the fusion needs ``Lq = Lk = N``.
    Logits, distances and the softmax are computed in float64 on both backends (the output has the
    input dtype). The Numba backend takes the logits from the fused E×H×S kernels of
    :mod:`kernels.curvature` (an empty spherical part); its ``fusion='dual'`` forward tiles the keys
    with an online softmax and never allocates ``Lq × Lk``. Paper: Chami et al., *Hyperbolic Graph
    Convolutional Neural Networks*, 2019; Gu et al., *Mixed-curvature representations*, 2019.
    """

    family = "graph"
    theory = "hyperbolic"
    formula = "softmax((α_E·⟨W_E q, W_E k⟩/√d − α_H·d_c(π q, π k)) / T) V W_O"
    time_complexity = "O(Lq·Lk·d + (Lq+Lk)·d²)"
    memory_complexity = "O(Lq·dv + threads·block²) forward (Numba, fusion='dual'); O(Lq·Lk) otherwise"
    needs_graph = False
    accepts_graph = True  # fusion='graph_latent_cross' reads graph=
    kernels_used = (kernels.curvature.CURVATURE,)
    #: ``x @ W`` convention, each ``(d, d)``: ``W_E`` (Euclidean branch), ``W_H`` (hyperbolic branch),
    #: ``W_O`` (output, used when ``dv == d``; identity when not given).
    learned_weights = ("W_E", "W_H", "W_O")

    euclidean_weight = param.Number(default=0.5, bounds=(0, None),
                                    doc="Weight α_E of the Euclidean dot-product term of the logit.")
    hyperbolic_weight = param.Number(default=0.5, bounds=(0, None),
                                     doc="Weight α_H of the (negative) Poincaré distance term of the logit.")
    c = param.Number(default=1.0, bounds=(0, 1e12), inclusive_bounds=(False, True),
                     doc="Curvature magnitude c > 0: the Poincaré ball of radius 1/sqrt(c).")
    temperature = P.temperature("Softmax temperature T > 0; lower is sharper.")
    projections = param.Boolean(
        default=True,
        doc="Apply seeded W_E, W_H (d x d) and W_O (d x d, only when dv == d), entries "
            "U(-1/sqrt(d), 1/sqrt(d)) as upstream, or trained ones after load_weights (which turns "
            "this on); off = identity maps.")
    fusion = param.Selector(
        default="dual", objects=list(FUSIONS),
        doc="'dual': one dual-space attention; 'graph_latent_cross': graph, latent and cross "
            "attention fused (needs graph=).")
    fusion_weights = param.NumericTuple(
        default=(1.0, 1.0, 1.0), length=3,
        doc="Non-negative weights (graph, latent, cross) of the three-way fusion (normalised).")
    add_self_loops = param.Boolean(default=True,
                                   doc="Graph fusion: every node is its own graph neighbour (as GAT).")
    seed = P.seed()

    def __init__(self, **params):
        super().__init__(**params)
        self._check_fusion_weights()

    def uses_graph(self) -> bool:
        """Only the three-way fusion reads ``graph=``; ``fusion='dual'`` refuses one."""
        return self.fusion == "graph_latent_cross"

    def _check_fusion_weights(self):
        fw = self.fusion_weights
        if any(w < 0 for w in fw) or sum(fw) <= 0:
            raise ConfigurationError(
                f"fusion_weights: expected three non-negative numbers with a positive sum, got {fw}")

    def space_contributions(self, q, k):
        """Unweighted ``(⟨W_E q, W_E k⟩/√d, d_c(π q, π k))``, each ``(..., Lq, Lk)`` float64."""
        b = prepare(q, k, None, None, need_v=False)
        e, h = self._terms(b.q, b.k)
        return b.restore(e), b.restore(h)

    # -- maths ------------------------------------------------------------------------------------
    def calibration_params(self, keys, target):
        """The curvature whose ball holds the keys' hyperbolic branch ``W_H k`` (``fit_curvature``)."""
        from workbench.geometry.poincare import fit_curvature

        k = np.asarray(keys, dtype=np.float64)
        kh = k @ self.projection_weights(k.shape[-1])["W_H"].T if self.projections else k
        c, rule = fit_curvature(kh, self.c)
        return ({} if c == self.c else {"c": c}), (f"hyperbolic branch: {rule}" if rule else "")

    def projection_weights(self, d: int) -> dict:
        """``W_E, W_H, W_O (d × d)`` (float64) as applied, ``y = W x``: the loaded ones, else seeded with
        entries ``U(−1/√d, 1/√d)``."""
        if self._loaded_weights is not None:
            w = self._loaded_weights
            return {"W_E": w["W_E"].T, "W_H": w["W_H"].T, "W_O": w["W_O"].T if "W_O" in w else np.eye(d)}
        rng = np.random.default_rng([self.seed, 0x647561])
        a = math.sqrt(2.0 / (2 * d))
        return {n: rng.uniform(-a, a, size=(d, d)) for n in ("W_E", "W_H", "W_O")}

    def _terms(self, q, k):
        d = q.shape[-1]
        q64, k64 = q.astype(np.float64), k.astype(np.float64)
        if self.projections:
            w = self.projection_weights(d)
            qe, ke = q64 @ w["W_E"].T, k64 @ w["W_E"].T
            qh, kh = q64 @ w["W_H"].T, k64 @ w["W_H"].T
        else:
            qe, ke, qh, kh = q64, k64, q64, k64
        euc = np.matmul(qe, np.swapaxes(ke, -1, -2)) / math.sqrt(d)
        return euc, self._distances(qh, kh)

    def _distances(self, x, y):
        """``d_c(π x_i, π y_j)`` in float64 from the Gram matrix (one BLAS call). Close pairs,
        ``‖x−y‖² < 10⁻³(‖x‖² + ‖y‖²)``, where ``‖x‖² + ‖y‖² − 2⟨x,y⟩`` cancels, are recomputed from
        their differences by :func:`workbench.geometry.poincare.distance` (relative error of
        ``‖x−y‖²`` elsewhere ≤ ~10⁻¹², so of ``d_c`` too, even next to the boundary)."""
        from kernels.geometry.stereographic import ball_distance_from_sq
        from workbench.geometry.poincare import distance, project  # geometry loads on first use

        c = self.c
        xp, yp = project(x, c=c, eps=PROJECTION_EPS), project(y, c=c, eps=PROJECTION_EPS)
        xx = np.einsum("...i,...i->...", xp, xp)[..., :, None]
        yy = np.einsum("...i,...i->...", yp, yp)[..., None, :]
        diff2 = np.maximum(xx + yy - 2.0 * np.matmul(xp, np.swapaxes(yp, -1, -2)), 0.0)
        hyp = ball_distance_from_sq(diff2, 1.0 - c * xx, 1.0 - c * yy, c)  # arcosh(1 + 2c‖x−y‖²/(…))/√c
        small = diff2 < 1e-3 * (xx + yy)
        if small.any():
            bi, i, j = np.nonzero(small)
            hyp[bi, i, j] = distance(xp[bi, i], yp[bi, j], c=c)
        return hyp

    def _parts(self, q, k):
        """float64 ``(qe, ke, qh, kh)``: ``W_E x`` and ``π(W_H x)`` of queries and keys; a space whose
        weight is 0 gets width 0 (its ``O(L·d²)`` projection and ``O(Lq·Lk·d)`` work are skipped)."""
        from workbench.geometry.poincare import project

        d = q.shape[-1]
        x, y = q.astype(np.float64), k.astype(np.float64)
        w = self.projection_weights(d) if self.projections else None
        lin = (lambda a, n: a) if w is None else (lambda a, n: a @ w[n].T)  # noqa: E731
        qe, ke = (lin(x, "W_E"), lin(y, "W_E")) if self.euclidean_weight else (x[..., :0], y[..., :0])
        if self.hyperbolic_weight:
            qh = project(lin(x, "W_H"), c=self.c, eps=PROJECTION_EPS)
            kh = project(lin(y, "W_H"), c=self.c, eps=PROJECTION_EPS)
        else:
            qh, kh = x[..., :0], y[..., :0]
        return qe, ke, qh, kh

    def _kernel_args(self, d):
        return dict(c_h=self.c, weights=(self.euclidean_weight, self.hyperbolic_weight, 0.0),
                    scale_e=1.0 / math.sqrt(d), temperature=self.temperature)

    def _logits(self, q, k, backend="numpy"):
        if backend == "numba":
            qe, ke, qh, kh = self._parts(q, k)
            return kernels.curvature.fused_logits(qe, ke, qh, kh, qe[..., :0], ke[..., :0], backend="numba",
                                                  **self._kernel_args(q.shape[-1]))
        ae, ah, T = self.euclidean_weight, self.hyperbolic_weight, self.temperature
        if ae == 0 or ah == 0:  # one space only: skip the other's O(Lq·Lk·d) work
            d = q.shape[-1]
            w = self.projection_weights(d) if self.projections else None
            x, y = q.astype(np.float64), k.astype(np.float64)
            if w is not None:
                x, y = x @ w["W_E" if ah == 0 else "W_H"].T, y @ w["W_E" if ah == 0 else "W_H"].T
            if ah == 0:
                return np.matmul(x, np.swapaxes(y, -1, -2)) * (ae / (math.sqrt(d) * T))
            return self._distances(x, y) * (-ah / T)
        euc, hyp = self._terms(q, k)
        euc *= ae / T
        euc -= hyp * (ah / T)
        return euc

    def _adjacency(self, b) -> np.ndarray:
        g = b.graph
        if g is None:
            raise ConfigurationError(
                "graph: fusion='graph_latent_cross' needs graph= (edge_index (2, E) or a Graph), got None")
        ei = np.asarray(getattr(g, "edge_index", g))
        n = getattr(g, "num_nodes", None)
        lq, lk = b.q.shape[1], b.k.shape[1]
        n = lk if n is None else int(n)
        if ei.ndim != 2 or ei.shape[0] != 2 or not np.issubdtype(ei.dtype, np.integer):
            raise ShapeError(f"graph: expected an integer edge_index of shape (2, E), got {ei.dtype} {ei.shape}")
        if lq != n or lk != n:
            raise ShapeError(f"graph: the graph fusion needs Lq == Lk == num_nodes={n}, got Lq={lq}, Lk={lk}")
        if ei.size and (ei.min() < 0 or ei.max() >= n):
            raise ShapeError(f"graph: edge_index entries must lie in [0, {n}), got range [{ei.min()}, {ei.max()}]")
        adj = np.zeros((n, n), dtype=bool)
        adj[ei[1], ei[0]] = True  # destination i attends source j
        if self.add_self_loops:
            np.fill_diagonal(adj, True)
        return adj

    def _initial_weights(self, d: int, dv: int) -> dict:
        if not self.projections:
            return {n: np.eye(d) for n in self.learned_weights}
        return {n: w.T.copy() for n, w in self.projection_weights(d).items()}

    def _accept_weights(self, w: dict) -> dict:
        check_names(w, ("W_E", "W_H"), ("W_O",), "dual_space")
        d = w["W_E"].shape[0]
        for n in w:
            check_shape(w, n, (d, d))
        self.projections = True
        return {k: np.array(v, dtype=np.float64) for k, v in w.items()}

    def _check(self, b):
        self._check_fusion_weights()
        if self.projections and self._loaded_weights is not None:
            d = self._loaded_weights["W_E"].shape[0]
            if b.q.shape[-1] != d:
                raise ShapeError(f"q: width {b.q.shape[-1]} does not match the loaded W_E ({d}, {d})")
        if self.fusion == "graph_latent_cross":
            self._adjacency(b)

    def _weights64(self, b) -> np.ndarray:
        B, lq, lk = b.q.shape[0], b.q.shape[1], b.k.shape[1]
        be = b.backend
        allowed = None if b.mask is None else np.broadcast_to(b.mask, (B, lq, lk))
        s = self._logits(b.q, b.k, be)
        if self.fusion == "dual":
            return masked_softmax(s, allowed)
        adj = self._adjacency(b)
        allowed = np.ones((B, lq, lk), dtype=bool) if allowed is None else allowed
        a_g = masked_softmax(s, allowed & adj)
        a_l = masked_softmax(s, allowed)
        q_ctx = np.matmul(a_g, b.k.astype(np.float64))  # graph context in key space
        a_c = masked_softmax(self._logits(q_ctx, b.k, be), allowed)
        has_g = (allowed & adj).any(axis=-1, keepdims=True)
        bg, bl, bc = (float(x) for x in self.fusion_weights)
        wg, wc = np.where(has_g, bg, 0.0), np.where(has_g, bc, 0.0)
        tot = wg + bl + wc
        num = wg * a_g + bl * a_l + wc * a_c
        return np.divide(num, tot, out=np.zeros_like(num), where=tot > 0)

    def _weights(self, b):
        return self._weights64(b).astype(b.q.dtype)

    def _forward(self, b):
        d, dv = b.q.shape[-1], b.v.shape[-1]
        w_o = self.projection_weights(d)["W_O"] if (self.projections and dv == d) else None
        if self.fusion != "dual" or b.backend != "numba":
            out = np.matmul(self._weights64(b), b.v.astype(np.float64))
            return (out if w_o is None else out @ w_o.T).astype(b.q.dtype)
        from kernels.blas_threads import one_blas_thread

        B, lq, lk = b.q.shape[0], b.q.shape[1], b.k.shape[1]
        out = np.empty((B, lq, dv), dtype=b.q.dtype)
        step = max(1, BATCH_CHUNK // ((lq + lk) * max(d, dv)))
        # The projections between kernel launches run on one BLAS thread as well: multi-threaded
        # OpenBLAS workers left spinning slow the next parallel kernel down (measured 6× on a
        # loaded 2-core machine at (32, 12, 512, 64)).
        with one_blas_thread("all"):
            for s0 in range(0, B, step):
                sl = slice(s0, min(B, s0 + step))
                qe, ke, qh, kh = self._parts(b.q[sl], b.k[sl])
                mask = None if b.mask is None else (b.mask[sl] if b.mask.shape[0] > 1 else b.mask)
                o = kernels.curvature.fused_attention(qe, ke, qh, kh, qe[..., :0], ke[..., :0],
                                                      b.v[sl].astype(np.float64), mask=mask, backend="numba",
                                                      **self._kernel_args(d))
                out[sl] = o if w_o is None else o @ w_o.T
        return out
