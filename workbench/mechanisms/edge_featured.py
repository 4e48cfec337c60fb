"""Edge-featured graph attention (GAT / GATv2 with edge features)."""
from __future__ import annotations

import numpy as np
import param

import kernels.graph as kgraph
from workbench.errors import ConfigurationError, ShapeError
from workbench.mechanisms import params as P
from workbench.mechanisms.graph_base import GraphMechanism
from workbench.registry import register
from workbench.weights import check_names, check_shape


def _glorot(rng, shape, fan_in, fan_out):
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape)


@register("edge_featured")
class EdgeFeatured(GraphMechanism):
    """Graph attention with edge features: GATv2 (default) or GAT v1 scores, per destination softmax.

    Per head ``h`` and edge ``j → i`` with features ``ε_ij``:
    ``"gatv2"`` ``e_ij = a_hᵀ LeakyReLU(W_q,h q_i + W_h k_j + W_e,h ε_ij)`` (Brody et al.);
    ``"gatv1"`` ``e_ij = LeakyReLU(a_q,hᵀ W_h q_i + a_k,hᵀ W_h k_j + a_e,hᵀ W_e,h ε_ij)`` (the upstream
    formula, which upstream mislabels "GATv2"); ``α_ij = softmax_j e_ij`` over the incoming edges of
    ``i``; ``o_i,h = Σ_j α_ij W_v,h v_j``; heads concatenated (``concat``) or averaged.
    ``W_v = W`` when ``dv == d`` (upstream: values share the node projection), else its own matrix.
    Weights are seeded Glorot-uniform (PyG's ``glorot``), one independent stream per matrix, or
    trained ones through :meth:`load_weights` (key map ``"pyg"``: ``GATConv``/``GATv2Conv``, with
    biases ``b`` (keys, and values when they share ``W``), ``b_q``, ``b_v`` and the output's ``b_o``).
    Shapes: ``q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv) → (..., Lq, H·C)`` (concat) or
    ``(..., Lq, C)`` (mean), ``C = head_dim`` (default ``dv / H``, so concat keeps ``dv``).
    With a graph (``Lq == Lk == N``) only edges attend, self-loops added (PyG; their edge
    features are the mean of the node's incoming ones) and edge features taken from
    ``graph.edge_attr``; without one every allowed pair attends with zero edge features.
    ``weights`` are the mean over heads; ``temperature`` ``T`` divides every score (``α = softmax_j
    e_ij/T``, ``T = 1`` as PyG), the knob :func:`workbench.calibrate` fits. Do better than upstream: real GATv2, self-loops,
    a graph-level API (:meth:`propagate`), an all-masked row gives 0, not uniform weights.
    Paper: Veličković et al., *Graph Attention Networks*, 2018; Brody et al., *How Attentive are
    Graph Attention Networks?*, 2022; edge features as in Gong & Cheng 2019.
    """

    family = "graph"
    #: ``x @ W`` convention: ``W, W_q (d, H·C)``, ``W_v (dv, H·C)``, ``W_e (De, H·C)``, attention
    #: vectors ``(H, C)``, biases ``(H·C,)`` (``b_o``: ``(H·C,)`` concatenated, ``(C,)`` averaged).
    learned_weights = ("W", "W_q", "W_v", "W_e", "a", "a_q", "a_k", "a_e", "b", "b_q", "b_v", "b_o")
    formula = "α_ij = softmax_j aᵀ LeakyReLU(W_q q_i + W k_j + W_e ε_ij); o_i = ‖_h Σ_j α_ij W v_j"
    time_complexity = "O(E·H·C·(d + De)) with E edges (dense: E = Lq·Lk)"
    memory_complexity = "O(E·H) weights + O(N·H·C) projections"

    num_heads = param.Integer(default=4, bounds=(1, 256), doc="Number of attention heads H.")
    variant = param.Selector(
        default="gatv2", objects=["gatv2", "gatv1"],
        doc="Score function: 'gatv2' = aᵀ LeakyReLU(W_q q_i + W k_j + W_e ε) (dynamic attention), "
            "'gatv1' = LeakyReLU(a_qᵀW q_i + a_kᵀW k_j + a_eᵀW_e ε) (the upstream formula).")
    concat = param.Boolean(default=True, doc="Concatenate the heads (width H·C); False averages them (width C).")
    negative_slope = param.Number(default=0.2, bounds=(0, None),
                                  doc="Slope of the LeakyReLU for negative inputs (0 gives a ReLU).")
    add_self_loops = param.Boolean(
        default=True, doc="With a graph: replace self-loops by one loop per node (as PyG's GATConv).")
    edge_dim = param.Integer(default=None, allow_None=True, bounds=(0, 4096),
                             doc="Edge feature width De; None takes it from the graph's edge_attr (0 if none).")
    temperature = P.temperature(
        "Temperature T dividing every score e_ij before the softmax (1 = GAT/PyG; set by calibration).")
    head_dim = param.Integer(default=None, allow_None=True, bounds=(1, 4096),
                             doc="Per-head width C of the projections; None means dv / num_heads (must divide).")
    seed = P.seed()

    # -- parameters ----------------------------------------------------------------------------
    def _head_dim(self, dv: int) -> int:
        if self.head_dim is not None:
            return self.head_dim
        if dv % self.num_heads:
            raise ConfigurationError(
                f"num_heads: dv={dv} is not divisible by num_heads={self.num_heads}; choose a divisor of {dv} "
                f"or set head_dim")
        return dv // self.num_heads

    def _check(self, b):
        w = self._loaded_weights
        if w is None:
            if b.v is not None:
                self._head_dim(b.v.shape[-1])
            return
        for arg, x, key in (("q", b.q, "W_q" if "W_q" in w else "W"), ("k", b.k, "W"), ("v", b.v, "W_v")):
            if x is not None and x.shape[-1] != w[key].shape[0]:
                raise ShapeError(f"{arg}: width {x.shape[-1]} does not match the loaded {key} {w[key].shape} "
                                 f"(it takes inputs of width {w[key].shape[0]})")

    # -- trained weights -----------------------------------------------------------------------
    def _required(self) -> tuple:
        return ("W", "W_q", "W_v", "a") if self.variant == "gatv2" else ("W", "W_v", "a_q", "a_k")

    def _initial_weights(self, d: int, dv: int) -> dict:
        de = self.edge_dim or 0
        p = self.parameters(d, dv, de)
        H, C = p["W"].shape[:2]
        flat = {n: p[n].reshape(H * C, -1).T.copy() for n in ("W", "W_q", "W_v", "W_e")}
        names = list(self._required())
        if de:  # edge weights, and GAT v1's edge attention vector
            names += ["W_e", "a_e"] if self.variant == "gatv1" else ["W_e"]
        return {n: flat[n] if n in flat else p[n].copy() for n in names}

    def _accept_weights(self, w: dict) -> dict:
        req = self._required()
        own_vectors = ("a",) if self.variant == "gatv2" else ("a_q", "a_k", "a_e")
        opt = tuple(n for n in ("W_q", "W_e", *own_vectors, "b", "b_q", "b_v", "b_o") if n not in req)
        if self.variant == "gatv2" and any(n in w for n in ("a_q", "a_k", "a_e")):
            raise ConfigurationError("variant: the weights are GAT v1's (a_q/a_k: PyG GATConv); set variant='gatv1'")
        if self.variant == "gatv1" and "a" in w:
            raise ConfigurationError("variant: the weights are GATv2's (a: PyG GATv2Conv); set variant='gatv2'")
        check_names(w, req, opt, f"edge_featured ({self.variant})")
        a = w["a"] if self.variant == "gatv2" else w["a_q"]
        if a.ndim != 2:
            raise ShapeError(f"{'a' if self.variant == 'gatv2' else 'a_q'}: expected shape (H, C), got {a.shape}")
        H, C = a.shape
        if H != self.num_heads:
            raise ConfigurationError(f"num_heads: the weights have {H} heads, the mechanism num_heads={self.num_heads}; "
                                     "set num_heads to the model's own")
        for n in ("a", "a_q", "a_k", "a_e"):
            if n in w:
                check_shape(w, n, (H, C))
        for n in ("W", "W_q", "W_v", "W_e"):
            if n in w:
                check_shape(w, n, (None, H * C))
        if "W_q" in w:
            check_shape(w, "W_q", (w["W"].shape[0], H * C))
        if "W_e" in w and self.variant == "gatv1" and "a_e" not in w:
            raise ShapeError("a_e: missing; GAT v1 with edge weights W_e needs the edge attention vector a_e")
        for n in ("b", "b_q", "b_v"):
            if n in w:
                check_shape(w, n, (H * C,))
        if "b_o" in w and w["b_o"].shape != ((H * C,) if self.concat else (C,)):
            raise ShapeError(f"b_o: expected shape ({H * C if self.concat else C},) for concat={self.concat}, got "
                             f"{w['b_o'].shape}; set concat to the model's own")
        return {k: np.array(v, dtype=np.float64) for k, v in w.items()}

    def _loaded(self, dtype) -> dict:
        """The loaded weights in the kernel's layout: ``W, W_q, W_v, W_e (H, C, ·)``, biases ``(H, C)``."""
        w = self._loaded_weights
        H, C = self.num_heads, w["W"].shape[1] // self.num_heads
        p = {n: np.ascontiguousarray(w[n].T.reshape(H, C, -1), dtype=dtype) for n in ("W", "W_q", "W_v", "W_e") if n in w}
        p.setdefault("W_q", p["W"])
        if self.variant == "gatv1":
            p.setdefault("a_e", np.zeros((H, C), dtype))  # no edge weights: the edge term is 0
        p.update({n: np.ascontiguousarray(w[n], dtype=dtype) for n in ("a", "a_q", "a_k", "a_e") if n in w})
        p.update({n: np.ascontiguousarray(w[n].reshape(H, C), dtype=dtype) for n in ("b", "b_q", "b_v") if n in w})
        if "b_o" in w:
            p["b_o"] = w["b_o"].astype(dtype)
        return p

    def parameters(self, d: int, dv: int, edge_dim: int = 0, dtype=np.float64) -> dict:
        """The seeded weights for node width ``d``, value width ``dv``, edge width ``edge_dim``:
        ``W, W_q (H, C, d)``, ``W_v (H, C, dv)``, ``W_e (H, C, De)``, ``a_q, a_k, a_e, a (H, C)``."""
        H, C = self.num_heads, self._head_dim(dv)
        rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(self.seed).spawn(8)]
        p = {
            "W": _glorot(rngs[0], (H * C, d), d, H * C).reshape(H, C, d),
            "W_q": _glorot(rngs[1], (H * C, d), d, H * C).reshape(H, C, d),
            "W_e": _glorot(rngs[3], (H * C, max(edge_dim, 0)), edge_dim, H * C).reshape(H, C, edge_dim),
            "a_q": _glorot(rngs[4], (H, C), H, C),
            "a_k": _glorot(rngs[5], (H, C), H, C),
            "a_e": _glorot(rngs[6], (H, C), H, C),
            "a": _glorot(rngs[7], (H, C), H, C),
        }
        p["W_v"] = p["W"] if dv == d else _glorot(rngs[2], (H * C, dv), dv, H * C).reshape(H, C, dv)
        if self.variant == "gatv1":
            p["W_q"] = p["W"]
        return {n: np.ascontiguousarray(x, dtype=dtype) for n, x in p.items()}

    def _edge_dim(self, graph):
        have = 0 if graph is None else graph.edge_dim
        if self._loaded_weights is not None:
            want = self._loaded_weights["W_e"].shape[0] if "W_e" in self._loaded_weights else 0
            if graph is not None and graph.edge_attr is not None and have != want:
                raise ShapeError(f"edge_attr: the loaded weights take edge features of width {want} "
                                 f"(W_e), got shape {graph.edge_attr.shape}"
                                 + ("; this model has no edge weights: pass edge_attr=None" if not want else ""))
            return want
        if self.edge_dim is None:
            return have
        if graph is not None and graph.edge_attr is not None and have != self.edge_dim:
            raise ShapeError(f"edge_attr: expected width edge_dim={self.edge_dim}, got shape {graph.edge_attr.shape}")
        return self.edge_dim

    # -- attention -----------------------------------------------------------------------------
    def _attend_edges(self, q, k, v, edges, graph):
        H = self.num_heads
        d = q.shape[-1]
        dv = d if v is None else v.shape[-1]
        de = edges.attr.shape[1]
        p = self._loaded(q.dtype) if self._loaded_weights is not None else self.parameters(d, dv, de, q.dtype)
        C = p["W"].shape[1]

        def proj(x, w, bias):  # (L, d) @ (d, H·C) [+ b] -> (L, H, C)
            z = (x @ w.reshape(H * C, -1).T).reshape(x.shape[0], H, C)
            return z if bias not in p else z + p[bias]

        zq, zk = proj(q, p["W_q"], "b_q"), proj(k, p["W"], "b")
        zv = proj(v, p["W_v"], "b_v") if v is not None else np.zeros((k.shape[0], H, 1), q.dtype)
        # e_ij/T: both scores are linear in the attention vectors (LeakyReLU is positively
        # homogeneous), so dividing them by T divides every score by T
        t = self.temperature
        att = (p["a_q"] / t, p["a_k"] / t, p["a_e"] / t) if self.variant == "gatv1" else p["a"] / t
        out, w = kgraph.gat_attention(zq, zk, zv, edges.src, edges.indptr,
                                      edge_attr=edges.attr if de else None, w_edge=p["W_e"] if de else None,
                                      att=att, variant=self.variant, negative_slope=self.negative_slope,
                                      backend=self.backend)
        if v is None:
            return None, w
        out = out.reshape(out.shape[0], H * C) if self.concat else out.mean(axis=1)
        if "b_o" in p:
            out = out + p["b_o"]
        return np.ascontiguousarray(out, dtype=q.dtype), w
