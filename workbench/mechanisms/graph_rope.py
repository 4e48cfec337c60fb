"""Graph rotary position encoding: RoPE whose positions come from the graph."""
from __future__ import annotations

import math

import numpy as np
import param

import kernels
import kernels.graph as kgraph
from kernels.dense import DENSE
from workbench.errors import DataError
from workbench.mechanisms import params as P
from workbench.mechanisms.graph_base import GraphMechanism
from workbench.registry import register

#: Largest bucket factor k for which the log buckets are gap-free (slope k/(8 ln 2) ≤ 1 at d = 8).
MAX_BUCKET_FACTOR = 8.0 * math.log(2.0)


def rope_frequencies(d: int, base: float = 10000.0) -> np.ndarray:
    """``ω_i = base^(−2i/d_r)``, ``i < d_r/2``, ``d_r = 2⌊d/2⌋`` (the rotated width)."""
    half = d // 2
    if half == 0:
        return np.zeros(0)
    return base ** (-2.0 * np.arange(half) / (2 * half))


#: Which coordinates rotate together: ``"half"`` pairs ``(x_i, x_{i+D})`` (GPT-NeoX, Hugging Face
#: ``rotate_half``), ``"interleaved"`` pairs ``(x_{2i}, x_{2i+1})`` (RoFormer, GPT-J). Pair ``i`` turns by
#: ``θ_i`` in both, so the layouts differ by a fixed permutation of the features.
LAYOUTS = ("half", "interleaved")


def half_split_order(d: int, layout: str) -> np.ndarray:
    """Indices ``p`` with ``x[..., p]`` in half-split order: the identity for ``"half"``; for
    ``"interleaved"`` ``[0, 2, …, 2D−2, 1, 3, …, 2D−1]`` then the unrotated coordinate of odd ``d``."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected one of {LAYOUTS}, got {layout!r}")
    if layout == "half":
        return np.arange(d)
    D = d // 2
    return np.concatenate([np.arange(0, 2 * D, 2), np.arange(1, 2 * D, 2), np.arange(2 * D, d)])


def rotate(x, positions, base: float = 10000.0, scaling: float = 1.0, layout: str = "half") -> np.ndarray:
    """Rotary encoding ``rot(x, p)`` of the rows of ``x (..., d)`` at ``positions (...)``.

    With ``D = ⌊d/2⌋`` and ``θ_i = (p/scaling)·ω_i``, half-split: ``y_i = x_i cos θ_i − x_{i+D} sin θ_i``,
    ``y_{i+D} = x_i sin θ_i + x_{i+D} cos θ_i``; interleaved: the same on the pairs
    ``(x_{2i}, x_{2i+1})`` (:data:`LAYOUTS`). For odd ``d`` the last coordinate passes through
    unrotated (upstream sets it to 0). An orthogonal map: norms are preserved and
    ``⟨rot(q, a), rot(k, b)⟩ = ⟨q, rot(k, b − a)⟩``.
    """
    x = np.asarray(x)
    d = x.shape[-1]
    D = d // 2
    order = half_split_order(d, layout)
    theta = (np.asarray(positions, dtype=np.float64)[..., None] / scaling) * rope_frequencies(d, base)
    c, s = np.cos(theta).astype(x.dtype), np.sin(theta).astype(x.dtype)
    y = x.copy()
    a, b = x[..., order[:D]], x[..., order[D:2 * D]]
    y[..., order[:D]] = a * c - b * s
    y[..., order[D:2 * D]] = a * s + b * c
    return y


def bucket_positions(distance, max_position: int, factor: float = 4.0) -> np.ndarray:
    """Monotone, gap-free log buckets: ``p = δ`` for ``δ ≤ 8``, else ``min(max_position, 8 + ⌈k·log₂(δ/8)⌉)``.

    With ``k ≤ 8 ln 2`` consecutive integer distances never skip a bucket (upstream jumps 8 → 12 and
    fails for ``max_position < 8``); the result is also capped at ``max_position`` for ``δ ≤ 8``.
    """
    dd = np.asarray(distance, dtype=np.float64)
    with np.errstate(divide="ignore"):
        far = 8.0 + np.ceil(factor * np.log2(np.maximum(dd, 8.0) / 8.0) - 1e-9)
    return np.minimum(np.where(dd <= 8.0, dd, far), float(max_position))


@register("graph_rope")
class GraphRoPE(GraphMechanism):
    """Rotary position encoding with graph positions: ``softmax_j(s·⟨rot(q_i, p_i), rot(k_j, p_j)⟩) V``.

    ``rot`` is the rotation of :func:`rotate` (``ω_i = base^(−2i/d)``, angle ``p·ω_i/scaling``;
    pairs by ``rope_layout``, half-split or interleaved; odd ``d``: the last coordinate is not
    rotated), ``s = 1/√d``.
    Positions by ``position_source``:
    ``"index"`` node index (``p_i = i``, ``p_j = j``: standard RoPE); ``"hnsw_layer"`` the node's
    HNSW level (``graph.layer``); ``"graph_distance"`` the query sits at 0 and key ``j`` at
    ``bucket(hop(i, j))``, the BFS hop count from ``i`` along "attends" (edge ``j → i``: ``i`` attends
    ``j``), and every key reachable from ``i`` is attended; ``"edge_weight"`` the query at 0 and the key
    at ``bucket(graph.distance)`` of the edge ``j → i``. ``bucket`` is :func:`bucket_positions` when
    ``buckets`` is on, else ``min(δ, max_position)``. With a graph, queries and keys are its nodes
    (``Lq == Lk == N``, else ShapeError) and — except for ``"graph_distance"`` — only edges attend
    (plus self-loops at relative position 0 if ``add_self_loops``). Without a graph the sequence is
    the position: index positions whatever ``position_source`` (dense, masks as SDPA, ``Lq ≠ Lk``
    allowed). Do better than upstream: gap-free buckets, odd ``d`` keeps its last coordinate,
    all-masked rows give 0. Shapes ``(..., Lq, d), (..., Lk, d), (..., Lk, dv) → (..., Lq, dv)``.
    Paper: Su et al., *RoFormer: Enhanced Transformer with Rotary Position Embedding*, 2021.
    """

    family = "graph"
    formula = "softmax_j(s·⟨rot(q_i, p_i), rot(k_j, p_j)⟩) V,  p from the graph"
    time_complexity = "O(E·d) with E attended pairs (dense: Lq·Lk)"
    memory_complexity = "O(E) weights; O(N²) hop table for graph_distance"
    kernels_used = (kgraph.GRAPH, DENSE)

    base = param.Number(default=10000.0, bounds=(1, None), inclusive_bounds=(False, True),
                        doc="Frequency base: ω_i = base^(-2i/d).")
    max_position = param.Integer(default=512, bounds=(1, None),
                                 doc="Largest position a (bucketed) graph distance or edge weight maps to.")
    position_source = param.Selector(
        default="graph_distance", objects=["graph_distance", "index", "hnsw_layer", "edge_weight"],
        doc="Where positions come from: BFS hop distance from the query, node index, HNSW layer of "
            "each node, or the edge's distance (graph.distance).")
    buckets = param.Boolean(default=True,
                            doc="Map distances to monotone, gap-free log buckets (exact up to 8, then log).")
    bucket_factor = param.Number(
        default=4.0, bounds=(0, MAX_BUCKET_FACTOR), inclusive_bounds=(False, True),
        doc="k in 8 + ceil(k·log2(δ/8)); at most 8·ln 2 so that no bucket is skipped.")
    scaling = param.Number(default=1.0, bounds=(0, None), inclusive_bounds=(False, True),
                           doc="Position scaling: the angle is (p / scaling)·ω_i.")
    add_self_loops = param.Boolean(default=True,
                                   doc="With a graph: every node also attends itself (relative position 0).")
    rope_layout = param.Selector(
        default="half", objects=list(LAYOUTS),
        doc="Coordinates rotated together: 'half' pairs (x_i, x_i+d/2) as GPT-NeoX and Hugging Face "
            "rotate_half; 'interleaved' pairs (x_2i, x_2i+1) as RoFormer and GPT-J. Match the model "
            "whose weights you load.")
    scale = P.scale()

    def positions(self, distance) -> np.ndarray:
        """Relative position of a key at graph distance (or edge weight) ``distance``."""
        if self.buckets:
            return bucket_positions(distance, self.max_position, self.bucket_factor)
        return np.minimum(np.asarray(distance, dtype=np.float64), float(self.max_position))

    def _rot(self, x, p):
        return rotate(x, p, self.base, self.scaling, self.rope_layout)

    # -- without a graph: dense, index positions ----------------------------------------------
    def _rotated(self, b):
        lq, lk = b.q.shape[1], b.k.shape[1]
        return self._rot(b.q, np.arange(lq)[None, :]), self._rot(b.k, np.arange(lk)[None, :])

    def _forward(self, b):
        q, k = self._rotated(b)
        return kernels.attention(q, k, b.v, mask=b.mask, scale=self._scale(b.dim), backend=self.backend)

    def _weights(self, b):
        q, k = self._rotated(b)
        return kernels.attention_weights(q, k, mask=b.mask, scale=self._scale(b.dim), backend=self.backend)

    # -- with a graph --------------------------------------------------------------------------
    def _check_graph(self, b, graph):
        super()._check_graph(b, graph)
        if self.position_source == "hnsw_layer" and graph.layer is None:
            raise DataError("graph: position_source='hnsw_layer' needs graph.layer (one level per node), got None")
        if self.position_source == "edge_weight" and graph.distance is None:
            raise DataError("graph: position_source='edge_weight' needs graph.distance (one per edge), got None")

    def _graph_edges(self, graph):
        if self.position_source != "graph_distance":
            return super()._graph_edges(graph)
        dst, src = np.nonzero(graph.hop_distances >= 0)  # every reachable key, itself included
        return src.astype(np.int64), dst.astype(np.int64), np.full(len(src), -1, np.int64)

    def _attend_edges(self, q, k, v, edges, graph):
        src, dst = edges.src, edges.dst
        source = self.position_source
        if source in ("index", "hnsw_layer"):
            pos = np.arange(graph.num_nodes) if source == "index" else graph.layer
            rq, rk = self._rot(q, pos), self._rot(k, pos)
            scores = np.einsum("ed,ed->e", rq[dst], rk[src])
        else:
            rel = graph.hop_distances[dst, src] if source == "graph_distance" else edges.distance
            # ⟨rot(q_i, 0), rot(k_j, p_ij)⟩ per edge, without materialising rotated copies; the kernel
            # rotates half-split pairs, and reordering q and k alike leaves every dot product as it is
            order = half_split_order(q.shape[-1], self.rope_layout)
            if self.rope_layout != "half":
                q, k = q[..., order], k[..., order]
            scores = kgraph.rope_edge_scores(q, k, src, edges.indptr, self.positions(rel) / self.scaling,
                                             rope_frequencies(q.shape[-1], self.base), backend=self.backend)
        scores = (scores * self._scale(q.shape[-1]))[:, None].astype(q.dtype)
        vals = (v if v is not None else np.zeros((k.shape[0], 1), q.dtype))[:, None, :]
        out, w = kgraph.edge_softmax_aggregate(scores, src, edges.indptr, vals, backend=self.backend)
        return (None if v is None else out[:, 0, :]), w
