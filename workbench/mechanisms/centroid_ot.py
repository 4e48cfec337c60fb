"""Centroid optimal-transport attention: queries transported to k-means centroids of the keys."""
from __future__ import annotations

import numpy as np
import param

from kernels.centroid_ot import CENTROID_OT, PLANS, SPREADS, centroid_ot_attention, centroid_ot_weights
from workbench import checks as C
from workbench.mechanisms import params as P
from workbench.mechanisms._key_subsets import key_subsets
from workbench.mechanisms.base import Mechanism
from workbench.registry import register
from workbench.transport import kmeans


@register("centroid_ot")
class CentroidOT(Mechanism):
    """Centroid OT attention: queries transported to k-means centroids of the keys, mass spread back to the keys.

    The keys a query may attend are clustered by k-means (``M' = min(M, n)`` centroids ``μ_c``,
    seeded k-means++, no empty cluster); cost ``C(x, μ) = (s/2)·‖x − μ‖²`` (``s = 1/√d`` by default),
    entropic regularisation ``ε = T``. The centroid measure ``b`` and member shares ``ρ_jc`` (each
    centroid's mass over its keys: soft responsibilities or ``1/|c|``) come from the keys; the plan
    ``π`` from the queries to ``b`` is ``π_ic ∝ b_c·exp(−C(q_i, μ_c)/T)`` (``plan='per_query'``: one
    unit source per query, target marginal as a prior) or the balanced Sinkhorn plan between the
    uniform measure on the queries and ``b`` (``plan='query_set'``, Sinkformer-like: then a query's
    output depends on the other queries with the same allowed keys). Key weights
    ``W_ij = Σ_c π_ic ρ_jc`` — rows sum to 1, no mass is lost — and ``out = W V = π (ρᵀV)``.
    Masked keys take no part in the clustering (key filtering; queries with the same allowed keys
    share one clustering, so the cost grows with the number of distinct mask rows). The keys are
    put in lexicographic order before clustering, so the result does not depend on key order.
    Shapes ``(..., Lq, d), (..., Lk, d), (..., Lk, dv) → (..., Lq, dv)``.
    Do better than upstream (docs/upstream.md#optimal-transport): Sinkhorn / entropic OT actually used, cluster
    masses used, no mass lost to empty clusters, assignments after the last centroid update,
    k-means++ seeding. Papers: Cuturi, *Sinkhorn Distances*, 2013; Sander et al., *Sinkformers*, 2022;
    Vyas, Katharopoulos & Fleuret, *Fast Transformers with Clustered Attention*, 2020.
    """

    family = "theory"
    softmax_rows = False
    theory = "optimal transport"
    formula = "W = π ρᵀ,  π_ic ∝ b_c exp(−(s/2)‖q_i − μ_c‖²/T) (or Sinkhorn),  out = π (ρᵀ V)"
    time_complexity = "O(Lk·M·d·iters + (Lq + Lk)·M·(d + dv)) per distinct mask row"
    memory_complexity = "O((Lq + Lk)·M); O(Lq·Lk) weights"
    kernels_used = (CENTROID_OT,)

    num_centroids = param.Integer(
        default=16, bounds=(1, 65_536),
        doc="Number M of k-means centroids (min(M, number of allowed keys) are used).")
    kmeans_iterations = param.Integer(
        default=10, bounds=(0, 1000),
        doc="At most this many Lloyd iterations after the k-means++ seeding (stops early on convergence).")
    temperature = P.temperature(
        "Entropic regularisation (temperature) T of the transport plan and of the soft member shares.")
    scale = P.scale()
    plan = param.Selector(
        default="per_query", objects=list(PLANS),
        doc="'per_query': each query a unit source, pi_ic ~ b_c exp(-C_ic/T); 'query_set': balanced Sinkhorn "
            "plan between the queries (uniform) and the centroid measure b.")
    spread = param.Selector(
        default="soft", objects=list(SPREADS),
        doc="How a centroid's mass goes to its keys: 'soft' responsibilities or 'hard' (1/|cluster|).")
    sinkhorn_iterations = param.Integer(
        default=100, bounds=(1, 10_000),
        doc="plan='query_set': at most this many log-domain Sinkhorn iterations (rows are renormalised).")
    seed = P.seed()

    def calibration_params(self, keys, target):
        """Enough centroids for the target: at ``T → 0`` a query keeps one cluster, of about ``n/M``
        keys, so the normalised entropy cannot fall below ``1 − ln M/ln n``; ``M ≥ 2·n^(1−target)``
        puts that floor below the target (never fewer than the current ``num_centroids``)."""
        n = int(np.shape(keys)[0])
        need = int(np.ceil(2.0 * n ** (1.0 - float(target))))
        m = min(max(self.num_centroids, need), n)
        if m == self.num_centroids:
            return {}, ""
        return {"num_centroids": m}, (f"num_centroids = {m} = ⌈2·n^(1−target)⌉ (n = {n} keys): a query's cluster "
                                      f"is small enough for entropy {target}")

    def clusters(self, k):
        """``(centroids (M', d) float64, labels (n,))`` of one key set ``k (n, d)``, independent of key order."""
        k = C.key_set("k", k, dtype=np.float64)
        order = np.argsort(k[:, 0], kind="stable")  # canonical order: lexicographic (ties need more columns)
        first = k[order, 0]
        if (first[1:] == first[:-1]).any():
            order = np.lexsort(k.T[::-1])
        mu, lab_sorted = kmeans(k[order], min(self.num_centroids, k.shape[0]), seed=self.seed,
                                iters=self.kmeans_iterations)
        labels = np.empty_like(lab_sorted)
        labels[order] = lab_sorted
        return mu, labels

    def _kw(self, d):
        return dict(scale=self._scale(d), temperature=self.temperature, plan=self.plan, spread=self.spread,
                    max_iter=self.sinkhorn_iterations, backend=self.backend)

    def _forward(self, b):
        B, lq = b.q.shape[:2]
        out = np.zeros((B, lq, b.v.shape[-1]), b.v.dtype)
        for bi, rows, keys in key_subsets(b):
            kk = b.k[bi, keys]
            mu, lab = self.clusters(kk)
            out[bi, rows] = centroid_ot_attention(b.q[bi, rows], kk, b.v[bi, keys], mu, lab, **self._kw(b.dim))
        return out

    def _weights(self, b):
        B, lq = b.q.shape[:2]
        w = np.zeros((B, lq, b.k.shape[1]), b.q.dtype)
        for bi, rows, keys in key_subsets(b):
            kk = b.k[bi, keys]
            mu, lab = self.clusters(kk)
            w[bi, rows[:, None], keys[None, :]] = centroid_ot_weights(b.q[bi, rows], kk, mu, lab, **self._kw(b.dim))
        return w
