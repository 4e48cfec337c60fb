"""Base of the graph mechanisms: SDPA-shaped calls restricted by a :class:`~workbench.graph.Graph`,
and the node-level, PyG-style :meth:`GraphMechanism.propagate`.

Nodes are keys: with ``graph`` (``N`` nodes) a call needs ``Lq == Lk == N`` and query ``i`` may
attend key ``j`` iff the graph has an edge ``j → i`` (PyG: row 0 source, row 1 destination) and
``mask[..., i, j]`` allows it. Attention is a softmax per destination over its incoming edges,
computed over the edge list (never ``N × N``). Without a graph, every (query, key) pair the mask
allows is an edge with zero edge features (dense attention), and ``Lq`` may differ from ``Lk``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels.graph import GRAPH, csr_by_destination
from workbench.errors import DataError, ShapeError
from workbench.graph import Graph
from workbench.mechanisms.base import Mechanism


@dataclass(frozen=True)
class EdgeSet:
    """The edges one batch item attends over, sorted by destination (CSR by ``indptr``).

    ``eid[e]`` is the index of the edge in ``graph.edge_index`` (−1 for an added self-loop or a
    dense pair); ``attr (E, De)`` edge features (self-loops: the mean of the node's incoming
    features, as PyG's ``fill_value="mean"``; dense pairs: 0); ``distance (E,)`` (self-loops and
    dense pairs: 0).
    """

    src: np.ndarray
    dst: np.ndarray
    indptr: np.ndarray
    eid: np.ndarray
    attr: np.ndarray
    distance: np.ndarray

    @property
    def num_edges(self) -> int:
        return len(self.src)

    @property
    def edge_index(self) -> np.ndarray:
        return np.stack([self.src, self.dst])


def _sorted_edges(src, dst, eid, num_dst, attr, distance):
    perm, indptr = csr_by_destination(dst, num_dst)
    return EdgeSet(src[perm], dst[perm], indptr, eid[perm], attr[perm], distance[perm])


class GraphMechanism(Mechanism):
    """Attention restricted to a graph's edges; dense (all allowed pairs) without a graph.

    Subclasses implement :meth:`_attend_edges` (one batch item over an :class:`EdgeSet`) and may
    override :meth:`_graph_edges` (which pairs a graph lets attend) and :meth:`_self_loops`.
    """

    needs_graph = True
    accepts_graph = True
    kernels_used = (GRAPH,)

    # -- public API ----------------------------------------------------------------------------
    def __call__(self, q, k, v, *, mask=None, graph: Graph | None = None):
        """``q (..., N, d), k (..., N, d), v (..., N, dv) → (..., N, out)``, restricted to ``graph``."""
        self._check_numbers()
        if graph is None:
            return super().__call__(q, k, v, mask=mask)
        b = self._prepare(q, k, v, mask)
        self._check(b)
        self._check_graph(b, graph)
        out = self._run(lambda bb: self._attend_batch(bb, graph)[0], b)
        return b.restore(self._finite(out, "output"))

    def weights(self, q, k, *, mask=None, graph: Graph | None = None):
        """Dense weights ``(..., Lq, Lk)`` (mean over heads); for small graphs."""
        self._check_numbers()
        if graph is None:
            return super().weights(q, k, mask=mask)
        b = self._prepare(q, k, None, mask, need_v=False)
        self._check(b)
        self._check_graph(b, graph)
        w = self._run(lambda bb: self._dense_weights(bb, graph), b)
        return b.restore(self._finite(w, "weights"))

    def propagate(self, x, edge_index, edge_attr=None, *, return_attention_weights: bool = False):
        """Node-level attention, PyG style: ``x (N, F)`` and ``edge_index (2, E)`` (or a :class:`Graph`)
        → updated node features ``(N, out)``; softmax per destination over its incoming edges
        (plus self-loops where the mechanism adds them). With ``return_attention_weights`` also
        ``(edge_index_used (2, E'), α (E', H))`` with the edges sorted by destination.
        """
        self._check_numbers()
        xa = np.asarray(x)
        if xa.ndim != 2:
            raise ShapeError(f"x: expected node features of shape (N, F), got {xa.shape}")
        if isinstance(edge_index, Graph):
            graph = edge_index
            if edge_attr is not None:
                graph = graph.replace(edge_attr=edge_attr)
        else:
            graph = Graph(xa.shape[0], edge_index, edge_attr)
        b = self._prepare(xa, xa, xa)
        self._check(b)
        self._check_graph(b, graph)
        out, edges, w = self._run(lambda bb: self._attend_batch(bb, graph), b)
        out = self._finite(out, "output")[0]
        if return_attention_weights:
            return out, (edges[0].edge_index, w[0])
        return out

    # -- for subclasses ------------------------------------------------------------------------
    def _attend_edges(self, q, k, v, edges: EdgeSet, graph: Graph | None):
        """One batch item: ``q (Lq, d), k (Lk, d), v (Lk, dv)`` or ``v`` None (weights only) →
        ``(out (Lq, out) or None, α (E, H))``."""
        raise NotImplementedError

    def _self_loops(self) -> bool:
        return bool(getattr(self, "add_self_loops", False))

    def _graph_edges(self, graph: Graph):
        """``(src, dst, eid)`` of the pairs the graph lets attend (default: its edges, with
        self-loops replacing existing ones when :meth:`_self_loops`)."""
        src, dst = graph.src, graph.dst
        eid = np.arange(graph.num_edges, dtype=np.int64)
        if self._self_loops():
            keep = src != dst
            loops = np.arange(graph.num_nodes, dtype=np.int64)
            src = np.concatenate([src[keep], loops])
            dst = np.concatenate([dst[keep], loops])
            eid = np.concatenate([eid[keep], np.full(graph.num_nodes, -1, np.int64)])
        return src, dst, eid

    def _edge_dim(self, graph: Graph | None) -> int:
        return 0 if graph is None else graph.edge_dim

    # -- machinery -----------------------------------------------------------------------------
    def _check_graph(self, b, graph) -> None:
        if not isinstance(graph, Graph):
            raise DataError(f"graph: expected a workbench.graph.Graph, got {type(graph).__name__}")
        lq, lk = b.q.shape[1], b.k.shape[1]
        if not lq == lk == graph.num_nodes:
            raise ShapeError(
                f"q, k: with a graph of num_nodes={graph.num_nodes} expected Lq == Lk == {graph.num_nodes} "
                f"(one query and one key per node), got Lq={lq}, Lk={lk}")

    def _edge_sets(self, b, graph):
        """One :class:`EdgeSet` per mask batch (``Bm`` of them, 1 or B)."""
        lq, lk = b.q.shape[1], b.k.shape[1]
        dtype = b.q.dtype
        de = self._edge_dim(graph)
        sets = []
        nm = 1 if b.mask is None else b.mask.shape[0]
        if graph is None:
            for mi in range(nm):
                allowed = np.ones((lq, lk), bool) if b.mask is None else np.broadcast_to(b.mask[mi], (lq, lk))
                dst, src = np.nonzero(allowed)  # row-major: already sorted by destination
                counts = np.bincount(dst, minlength=lq)
                indptr = np.zeros(lq + 1, np.int64)
                np.cumsum(counts, out=indptr[1:])
                E = len(src)
                sets.append(EdgeSet(src.astype(np.int64), dst.astype(np.int64), indptr, np.full(E, -1, np.int64),
                                    np.zeros((E, de), dtype), np.zeros(E, dtype)))
            return sets
        src, dst, eid = self._graph_edges(graph)
        real = eid >= 0
        attr = np.zeros((len(src), de), dtype)
        if de and graph.edge_attr is not None:
            attr[real] = graph.edge_attr[eid[real]]
            loops = ~real & (src == dst)
            if loops.any():  # PyG fill_value="mean": mean of the node's incoming edge features
                ge = np.flatnonzero(graph.src != graph.dst)
                tot = np.zeros((graph.num_nodes, de))
                np.add.at(tot, graph.dst[ge], graph.edge_attr[ge])
                cnt = np.bincount(graph.dst[ge], minlength=graph.num_nodes)[:, None]
                mean = np.divide(tot, cnt, out=np.zeros_like(tot), where=cnt > 0)
                attr[loops] = mean[dst[loops]]
        distance = np.zeros(len(src), dtype)
        if graph.distance is not None:
            distance[real] = graph.distance[eid[real]]
        for mi in range(nm):
            if b.mask is None:
                keep = slice(None)
            else:
                m = np.broadcast_to(b.mask[mi], (lq, lk))
                keep = m[dst, src]
            sets.append(_sorted_edges(src[keep], dst[keep], eid[keep], lq, attr[keep], distance[keep]))
        return sets

    def _attend_batch(self, b, graph):
        sets = self._edge_sets(b, graph)
        outs, ws, used = [], [], []
        for bi in range(b.q.shape[0]):
            edges = sets[bi if len(sets) > 1 else 0]
            out, w = self._attend_edges(b.q[bi], b.k[bi], None if b.v is None else b.v[bi], edges, graph)
            outs.append(out)
            ws.append(w)
            used.append(edges)
        out = None if b.v is None else np.stack(outs)
        return out, used, ws

    def _dense_weights(self, b, graph):
        _, used, ws = self._attend_batch(b, graph)
        B, lq, lk = b.q.shape[0], b.q.shape[1], b.k.shape[1]
        dense = np.zeros((B, lq, lk), b.q.dtype)
        for bi in range(B):
            e = used[bi]
            np.add.at(dense[bi], (e.dst, e.src), ws[bi].mean(axis=1).astype(b.q.dtype))
        return dense

    def _forward(self, b):
        return self._attend_batch(b, None)[0]

    def _weights(self, b):
        return self._dense_weights(b, None)


__all__ = ["GraphMechanism", "EdgeSet"]
