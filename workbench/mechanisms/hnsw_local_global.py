"""HNSW local–global attention: layer-0 neighbours (local) and upper-layer hubs (global), gated."""
from __future__ import annotations

import math
import numbers

import numpy as np
import param

import kernels
from kernels.dense import DENSE
from kernels.graph import GRAPH, csr_by_destination, edge_softmax_aggregate
from workbench.errors import ConfigurationError, ShapeError
from workbench.inputs import prepare
from workbench.mechanisms import params as P
from workbench.mechanisms.base import Mechanism
from workbench.registry import register
from workbench.weights import check_names, check_shape


@register("hnsw_local_global")
class HNSWLocalGlobal(Mechanism):
    """HNSW-aware attention: softmax over layer-0 neighbours and over upper-layer hubs, gated.

    Local set ``N_L(i)`` = sources ``j`` of the layer-0 edges ``j → i`` (plus ``i`` itself with
    ``add_self_loops``); global set ``N_G`` = nodes whose HNSW level ``graph.layer[j] ≥
    global_layer`` (the hubs every query may see). ``A_L = softmax_{N_L(i)}(s q_i·k_j)``,
    ``A_G = softmax_{N_G}(s q_i·k_j)``, ``out_i = (1 − g_i)·A_L V + g_i·A_G V`` with a fixed gate
    ``g`` or, with ``gate='learned'``, ``g_i = σ(w·q_i/√d)`` (``w`` seeded ``N(0, I)``), or
    ``σ(q_i·w_gate + b_gate)`` with a trained gate from :meth:`load_weights` (``w_gate (d,)`` or a
    ``Linear(d, 1)`` weight ``(1, d)``, ``b_gate (1,)``). A node whose
    (masked) local or global set is empty uses the other one alone (weight 1); both empty gives 0.
    Needs ``graph=`` with per-node ``layer`` (e.g. ``workbench.graph.hnsw_graph``) and
    ``Lq == Lk == N``. Shapes ``(..., N, d), (..., N, d), (..., N, dv) → (..., N, dv)``.
    Local part over the edge list, global part dense over the hubs: ``O(E·d + N·H·d)``.
    HNSW read as local and global structure (docs/upstream.md#graph; layer 0 = local,
    higher layers = global, learned gating); Malkov & Yashunin, *HNSW*, 2018; Beltagy et al.,
    *Longformer*, 2020.
    """

    family = "graph"
    learned_weights = ("w_gate", "b_gate")
    formula = "(1 − g_i)·softmax_{layer-0 nbrs}(s·q_i·k_j) V + g_i·softmax_{hubs}(s·q_i·k_j) V"
    time_complexity = "O(E·d + N·H·d), E layer-0 edges, H hubs"
    memory_complexity = "O(E + N·H) (weights() is dense O(N²), for inspection)"
    needs_graph = True
    accepts_graph = True
    kernels_used = (GRAPH, DENSE)

    gate = param.ClassSelector(
        default=0.5, class_=(float, int, str),
        doc="Share g of the global (hub) attention: a number in [0, 1] (0 = local only, 1 = global "
            "only) or 'learned' for g_i = sigmoid(w . q_i / sqrt(d)) with a seeded w.")
    global_layer = param.Integer(default=1, bounds=(1, 64),
                                 doc="Nodes with HNSW level >= global_layer are the global hubs.")
    add_self_loops = param.Boolean(default=True, doc="Every node is in its own local set (as GAT).")
    scale = P.scale()
    seed = P.seed()

    def __init__(self, **params):
        super().__init__(**params)
        self._check_gate()

    def _check_gate(self):
        g = self.gate
        if isinstance(g, str):
            if g != "learned":
                raise ConfigurationError(f"gate: expected a number in [0, 1] or 'learned', got {g!r}")
            return
        if isinstance(g, bool) or not isinstance(g, numbers.Real) or not (0.0 <= float(g) <= 1.0):
            raise ConfigurationError(f"gate: expected a number in [0, 1] or 'learned', got {g!r}")

    def gate_vector(self, d: int) -> np.ndarray:
        """The seeded ``w (d,)`` of the learned gate."""
        return np.random.default_rng([self.seed, 0x676174]).standard_normal(d)

    def gate_weights(self, d: int) -> tuple[np.ndarray, float]:
        """``(w_gate (d,), b_gate)`` with ``g_i = σ(q_i·w_gate + b_gate)``: the loaded ones (a trained
        ``Linear(d, 1)``), else ``w / √d`` of :meth:`gate_vector` and 0."""
        if self._loaded_weights is not None:
            w = self._loaded_weights
            return w["w_gate"], float(w["b_gate"][0]) if "b_gate" in w else 0.0
        return self.gate_vector(d) / math.sqrt(d), 0.0

    def _initial_weights(self, d: int, dv: int) -> dict:
        w, b = self.gate_weights(d)
        return {"w_gate": w.copy(), "b_gate": np.array([b])}

    def _accept_weights(self, w: dict) -> dict:
        w = dict(w)
        if "w_gate" in w and w["w_gate"].ndim == 2 and w["w_gate"].shape[0] == 1:
            w["w_gate"] = w["w_gate"][0]  # a Linear(d, 1) weight (1, d)
        check_names(w, ("w_gate",), ("b_gate",), "hnsw_local_global")
        check_shape(w, "w_gate", (None,))
        if "b_gate" in w:
            check_shape(w, "b_gate", (1,))
        self.gate = "learned"
        return {k: np.array(v, dtype=np.float64) for k, v in w.items()}

    def gates(self, q) -> np.ndarray:
        """The gate ``g_i`` per query ``(..., N)`` (before empty-set overrides)."""
        b = prepare(q, q, None, None, need_v=False)
        return b.restore(self._gate(b.q), trailing=1)

    # -- checks ------------------------------------------------------------------------------------
    def _check(self, b):
        self._check_gate()
        g = b.graph
        if g is None:
            raise ConfigurationError(
                "graph: hnsw_local_global needs graph= (a workbench.graph.Graph with per-node layer, e.g. "
                "from hnsw_graph), got None")
        if getattr(g, "layer", None) is None or not hasattr(g, "edge_index"):
            raise ConfigurationError(f"graph: expected a Graph with per-node HNSW levels (layer), got {g!r}")
        n = g.num_nodes
        if not b.q.shape[1] == b.k.shape[1] == n:
            raise ShapeError(f"graph: expected Lq == Lk == num_nodes={n} (one query and one key per node), "
                             f"got Lq={b.q.shape[1]}, Lk={b.k.shape[1]}")

    # -- maths ---------------------------------------------------------------------------------------
    def _gate(self, q):
        if self.gate == "learned":
            w, bias = self.gate_weights(q.shape[-1])
            if w.shape[0] != q.shape[-1]:
                raise ShapeError(f"q: width {q.shape[-1]} does not match the loaded w_gate {w.shape}")
            z = q.astype(np.float64) @ w + bias
            return 1.0 / (1.0 + np.exp(-z))
        return np.full(q.shape[:2], float(self.gate))

    def _edges(self, g):
        src, dst = np.asarray(g.edge_index[0], np.int64), np.asarray(g.edge_index[1], np.int64)
        if self.add_self_loops:
            keep = src != dst
            loops = np.arange(g.num_nodes, dtype=np.int64)
            src, dst = np.concatenate([src[keep], loops]), np.concatenate([dst[keep], loops])
        pairs = np.unique(dst * g.num_nodes + src)  # no duplicate edges
        return pairs % g.num_nodes, pairs // g.num_nodes

    def _parts(self, b, with_values: bool):
        """Local ``(out_L, edges, α_L)``, global ``(out_G, hubs, A_G)`` and the effective gate."""
        B, n = b.q.shape[0], b.q.shape[1]
        s = self._scale(b.dim)
        src, dst = self._edges(b.graph)
        hubs = np.flatnonzero(np.asarray(b.graph.layer) >= self.global_layer)
        full = None if b.mask is None else np.broadcast_to(b.mask, (b.mask.shape[0], n, n))
        dv = b.v.shape[-1] if with_values else 1
        out_l = np.zeros((B, n, dv), b.q.dtype)
        loc = []
        has_l = np.zeros((B, n), bool)
        for bi in range(B):
            keep = np.ones(len(src), bool) if full is None else full[bi if full.shape[0] > 1 else 0][dst, src]
            es, ed = src[keep], dst[keep]
            perm, indptr = csr_by_destination(ed, n)
            es, ed = es[perm], ed[perm]
            scores = (np.einsum("ed,ed->e", b.q[bi][ed], b.k[bi][es]) * b.q.dtype.type(s))[:, None]
            vals = (b.v[bi] if with_values else np.zeros((n, 1), b.q.dtype))[:, None, :]
            o, a = edge_softmax_aggregate(np.ascontiguousarray(scores), es, indptr, np.ascontiguousarray(vals),
                                          backend=self.backend)
            out_l[bi] = o[:, 0, :]
            loc.append((es, ed, a[:, 0]))
            has_l[bi] = np.diff(indptr) > 0
        gm = None if full is None else np.ascontiguousarray(full[:, :, hubs])
        if hubs.size:
            kh = np.ascontiguousarray(b.k[:, hubs])
            a_g = kernels.attention_weights(b.q, kh, mask=gm, scale=s, backend=self.backend)
            out_g = (kernels.attention(b.q, kh, np.ascontiguousarray(b.v[:, hubs]), mask=gm, scale=s,
                                       backend=self.backend) if with_values else None)
            has_g = np.ones((B, n), bool) if gm is None else np.broadcast_to(gm.any(-1), (B, n))
        else:
            a_g, out_g, has_g = np.zeros((B, n, 0), b.q.dtype), np.zeros((B, n, dv), b.q.dtype), np.zeros((B, n), bool)
        g = self._gate(b.q)
        g = np.where(has_l & ~has_g, 0.0, np.where(has_g & ~has_l, 1.0, g))
        return out_l, loc, out_g, hubs, a_g, g, has_l | has_g

    def _forward(self, b):
        out_l, _, out_g, _, _, g, _ = self._parts(b, True)
        g = g[..., None]
        return ((1.0 - g) * out_l + g * out_g).astype(b.q.dtype)

    def _weights(self, b):
        _, loc, _, hubs, a_g, g, _ = self._parts(b, False)
        B, n = b.q.shape[0], b.q.shape[1]
        w = np.zeros((B, n, n))
        for bi, (es, ed, a) in enumerate(loc):
            w[bi, ed, es] = (1.0 - g[bi, ed]) * a
        w[:, :, hubs] += g[..., None] * a_g
        return w.astype(b.q.dtype)
