"""Mixture-of-experts attention: a seeded router sends every query to its top-k attention experts."""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import param

from kernels.dense import DENSE
from kernels.graph import GRAPH
from kernels.hyperbolic import HYPERBOLIC
from kernels.linear import LINEAR
from workbench.errors import ConfigurationError, ShapeError
from workbench.mechanisms import params as P
from workbench.mechanisms.base import Mechanism
from workbench.registry import register, registry
from workbench.weights import check_names, check_shape

#: The research note's roster: local (standard), hierarchical (hyperbolic), global (linear) and
#: structural (edge-featured) experts. Names that are not registered are left out of the default.
DEFAULT_EXPERTS = ("scaled_dot_product", "hyperbolic", "linear", "edge_featured")

#: Parameters given to experts unless ``expert_params`` says otherwise: one GAT head keeps the
#: edge-featured expert's output width equal to ``dv`` for every ``dv``.
DEFAULT_EXPERT_PARAMS = {"edge_featured": {"num_heads": 1}}


@dataclass(frozen=True)
class Routing:
    """The routing of the last call; arrays have the call's batch shape in front.

    ``experts (..., Lq, k)``: the chosen expert indices (into ``names``), most probable first;
    ``kept (..., Lq, k)``: False where the expert was over capacity and dropped the query;
    ``gates (..., Lq, k)``: the gate weights used (0 where dropped; each row sums to 1 unless
    every chosen expert dropped the query, then it is all 0 and so is the output);
    ``probabilities (..., Lq, E)``: the router's softmax; ``logits (..., Lq, E)``: ``G x``;
    ``capacity``: queries each expert accepts per sequence (``None``: unlimited).
    """

    names: tuple
    experts: np.ndarray
    kept: np.ndarray
    gates: np.ndarray
    probabilities: np.ndarray
    logits: np.ndarray
    capacity: int | None

    @property
    def dropped(self) -> np.ndarray:
        """``(..., Lq)`` True for a query that every chosen expert dropped (its output is 0)."""
        return ~self.kept.any(axis=-1)

    def counts(self) -> np.ndarray:
        """``(..., E)`` number of queries each expert actually processed, per sequence."""
        E = len(self.names)
        onehot = (self.experts[..., None] == np.arange(E)) & self.kept[..., None]
        return onehot.sum(axis=(-3, -2))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Max-shifted softmax over the last axis."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def load_balancing_loss(probabilities: np.ndarray, chosen: np.ndarray) -> float:
    """Switch-Transformer auxiliary loss ``E·Σ_e f_e·P_e`` over all queries of the call.

    ``f_e`` = fraction of the ``k·N`` routing choices (before capacity) that went to expert
    ``e`` (so ``Σ_e f_e = 1``; upstream counts ``c_e/N``, which sums to ``k`` and is not
    minimised by uniform routing when ``k > 1``); ``P_e`` = mean router probability of ``e``.
    Perfectly uniform routing (``f_e = P_e = 1/E``) gives exactly 1.0, the minimum of
    ``E·Σ P_e²`` when choices follow probabilities; routing everything to one expert gives ``E``.
    ``probabilities (N, E)``, ``chosen (N, k)`` int.
    """
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1, np.shape(probabilities)[-1])
    E = p.shape[1]
    c = np.asarray(chosen).reshape(p.shape[0], -1)
    f = np.bincount(c.ravel(), minlength=E)[:E] / max(c.size, 1)
    return float(E * np.dot(f, p.mean(axis=0)))


def router_z_loss(logits: np.ndarray) -> float:
    """ST-MoE router z-loss ``mean_i (log Σ_e exp(x_ie))²``: keeps router logits small."""
    x = np.asarray(logits, dtype=np.float64).reshape(-1, np.shape(logits)[-1])
    m = x.max(axis=1)
    lse = m + np.log(np.exp(x - m[:, None]).sum(axis=1))
    return float(np.mean(lse ** 2))


@register("moe")
class MoE(Mechanism):
    """Mixture-of-experts attention: a seeded router picks the top-k attention experts per query.

    ``p_i = softmax(G x_i)`` with ``x_i = q_i`` (times ``U(1−ε, 1+ε)`` jitter in training),
    route ``R_i`` = the ``k`` most probable experts, gates ``g_ie = p_ie / Σ_{R_i} p_ie'``;
    ``o_i = Σ_{e∈R_i} g_ie · Expert_e(q_i, K, V)`` and weights ``Σ_{e∈R_i} g_ie W_e``. Each expert
    runs once per call, batched, on the queries routed to it only. Capacity (per sequence):
    ``C = ⌈capacity_factor·k·Lq/E⌉``; an expert chosen by more than ``C`` queries keeps the ``C``
    with the highest router probability for it, the others' gates are renormalised over the
    experts that kept them, and a query dropped by all its experts gets output 0 (weights 0).
    Shapes as SDPA ``(..., Lq, d), (..., Lk, d), (..., Lk, dv) → (..., Lq, dv)``; experts see the
    routed queries as one block, so position-dependent experts (causal, local_global) are
    rejected; in training mode every call (``weights`` too) draws fresh jitter, the n-th draw of an
    instance reproducible from ``seed``. ``graph=`` (``Lq = Lk = N`` nodes) goes to the experts that
    accept a graph (``edge_featured``, ``graph_rope``, …): they attend over its edges (edge features,
    self-loops) on all ``N`` nodes at once — graph attention is defined per node of the whole graph
    — and the rows of the queries routed to them are used, so an MoE of one graph expert equals
    that expert on the graph; the other experts attend every allowed key. Without a graph, graph
    experts run dense (every allowed pair an edge, zero edge features). Every expert must return
    width ``dv`` (``expert_params`` configures them). After each call: ``last_routing``,
    ``load_balancing_loss`` (Switch form, 1.0 for uniform routing), ``router_z_loss``.
    Do better than upstream: capacity and jitter are applied (upstream ignores them), the default
    roster has a linear expert, the balance loss is minimised by uniform routing.
    Paper: Shazeer et al., *Outrageously Large Neural Networks*, 2017; Fedus et al., *Switch
    Transformers*, 2021; Zoph et al., *ST-MoE*, 2022.
    """

    family = "routing"
    softmax_rows = False
    formula = "Σ_{e∈topk(softmax(Gq_i))} g_ie · Expert_e(q_i, K, V)"
    time_complexity = "O(Lq·E·d + Σ_e cost_e(routed queries))"
    memory_complexity = "O(Lq·E + max_e memory_e)"
    #: The kernels of the default experts (an expert outside them declares its own and refuses by itself).
    kernels_used = (DENSE, HYPERBOLIC, LINEAR, GRAPH)
    accepts_graph = True  # graph= is passed on to the experts that accept one
    #: ``W_router (d, E)`` (``x @ W`` convention: logits ``q W_router``); the experts' own learned
    #: weights under ``experts.{i}.`` (expert ``i``'s :meth:`state_dict` names).
    learned_weights = ("W_router",)

    experts = param.List(
        default=list(DEFAULT_EXPERTS), item_type=str,
        doc="Registry names of the experts, one expert each (repeats allowed). The default "
            "['scaled_dot_product', 'hyperbolic', 'linear', 'edge_featured'] keeps only the "
            "registered ones; an explicit list must name registered mechanisms.")
    expert_params = param.Dict(
        default={},
        doc="Parameters per expert registry name, e.g. {'linear': {'num_features': 64}}; merged over "
            "the defaults {'edge_featured': {'num_heads': 1}} (one head keeps the output width dv).")
    top_k = param.Integer(default=2, bounds=(1, 64),
                          doc="Experts per query k (at most the number of experts; larger is clamped).")
    capacity_factor = param.Number(
        default=1.25, allow_None=True, bounds=(0, None), inclusive_bounds=(False, True),
        doc="Expert capacity C = ceil(capacity_factor * k * Lq / E) queries per sequence; "
            "None = unlimited (no query is ever dropped).")
    jitter_noise = param.Number(
        default=0.0, bounds=(0.0, 1.0), inclusive_bounds=(True, False),
        doc="Multiplicative U(1-eps, 1+eps) noise on the router input, in training mode only.")
    training = param.Boolean(default=False,
                             doc="Training mode: apply the router jitter noise (eval mode never does).")
    seed = P.seed()

    def __init__(self, **params):
        super().__init__(**params)
        self._jitter_draws = 0
        self._expert_cache: dict = {}
        self.last_routing: Routing | None = None
        self.load_balancing_loss: float | None = None
        self.router_z_loss: float | None = None
        self._experts()  # validate now

    # -- configuration ----------------------------------------------------------------------------
    def uses_graph(self) -> bool:
        """``graph=`` goes to the experts that use one; with none of them, it is refused."""
        return any(m.uses_graph() for m in self._experts())

    def expert_names(self) -> tuple:
        """The experts in use (the default roster restricted to registered names)."""
        names = list(self.experts)
        registered = set(iter(registry))
        if names == list(DEFAULT_EXPERTS):
            names = [n for n in names if n in registered]
        if not names:
            raise ConfigurationError("experts: expected at least one registered mechanism name, got an empty list")
        bad = [n for n in names if n not in registered]
        if bad:
            raise ConfigurationError(
                f"experts: {bad} are not registered mechanisms; registered: {', '.join(registry)}")
        if "moe" in names:
            raise ConfigurationError("experts: 'moe' cannot be its own expert")
        return tuple(names)

    def _experts(self) -> list:
        names = self.expert_names()
        extra = self.expert_params or {}
        if not isinstance(extra, dict) or any(not isinstance(v, dict) for v in extra.values()):
            raise ConfigurationError(f"expert_params: expected a dict name -> dict of parameters, got {extra!r}")
        unused = sorted(set(extra) - set(names))
        if unused:
            raise ConfigurationError(f"expert_params: {unused} are not among the experts {list(names)}")
        key = (names, self.backend, self.seed, repr(sorted((n, sorted(p.items())) for n, p in extra.items())))
        if key not in self._expert_cache:
            made = self._make_experts(names, extra)
            if self._loaded_weights is not None:
                self._apply_expert_weights(made, self._loaded_weights)
            self._expert_cache = {key: made}
        return self._expert_cache[key]

    def _make_experts(self, names, extra) -> list:
        made = []
        for i, n in enumerate(names):
            cls = registry[n].cls
            kw = {"backend": self.backend}
            if "seed" in cls.param:
                kw["seed"] = self.seed + i  # repeated experts differ
            kw.update({a: b for a, b in DEFAULT_EXPERT_PARAMS.get(n, {}).items() if a in cls.param})
            kw.update(extra.get(n, {}))
            try:
                m = cls(**kw)
            except ConfigurationError as exc:
                raise ConfigurationError(f"expert_params: expert {n!r}: {exc}") from None
            if getattr(m, "causal", False) or n == "local_global":
                raise ConfigurationError(
                    f"experts: {n!r} depends on query positions; experts see routed queries as one block")
            made.append(m)
        return made

    @staticmethod
    def _apply_expert_weights(made: list, weights: dict) -> None:
        """Give expert ``i`` the ``experts.{i}.*`` entries of ``weights`` (errors name the full key)."""
        subs: dict = {}
        for key, value in weights.items():
            if not key.startswith("experts."):
                continue
            head, _, name = key[len("experts."):].partition(".")
            if not head.isdigit() or int(head) >= len(made) or not name:
                raise ShapeError(f"{key}: expected experts.{{i}}.NAME with 0 <= i < {len(made)}")
            subs.setdefault(int(head), {})[name] = value
        for i, sub in sorted(subs.items()):
            m = made[i]
            if not m.learned_weights:
                raise ShapeError(f"experts.{i}.{next(iter(sub))}: expert {i} ({type(m).__name__}) has no learned weights")
            try:
                m._loaded_weights = m._accept_weights(sub)
            except (ShapeError, ConfigurationError) as exc:
                raise type(exc)(f"experts.{i}.{exc}") from None

    def _initial_weights(self, d: int, dv: int) -> dict:
        out = {"W_router": self.router_weights(d).T.copy()}
        for i, m in enumerate(self._experts()):
            if m.learned_weights:
                out.update({f"experts.{i}.{k}": v for k, v in m.state_dict(d, dv).items()})
        return out

    def _accept_weights(self, w: dict) -> dict:
        names = self.expert_names()
        router = {k: v for k, v in w.items() if not k.startswith("experts.")}
        check_names(router, ("W_router",), (), "moe")
        check_shape(router, "W_router", (None, len(names)))
        self._apply_expert_weights(self._make_experts(names, self.expert_params or {}), w)  # validates
        self._expert_cache = {}  # rebuilt with the weights at the next call
        return {k: np.array(v, dtype=np.float64) for k, v in w.items()}

    def router_weights(self, d: int, dtype=np.float64) -> np.ndarray:
        """The router ``G (E, d)``: the loaded ``W_routerᵀ``, else seeded Glorot-uniform ``U(−a, a)``,
        ``a = √(6/(d + E))``."""
        if self._loaded_weights is not None:
            g = self._loaded_weights["W_router"]
            if g.shape[0] != d:
                raise ShapeError(f"q: width {d} does not match the loaded W_router {g.shape}")
            return g.T.astype(dtype)
        E = len(self.expert_names())
        rng = np.random.default_rng([self.seed, 0x6D6F65])
        a = math.sqrt(6.0 / (d + E))
        return rng.uniform(-a, a, size=(E, d)).astype(dtype)

    def effective_top_k(self) -> int:
        return min(self.top_k, len(self.expert_names()))

    def capacity(self, num_queries: int) -> int | None:
        """Queries each expert accepts per sequence, ``⌈cf·k·Lq/E⌉`` (``None``: unlimited)."""
        if self.capacity_factor is None:
            return None
        E = len(self.expert_names())
        return max(1, math.ceil(self.capacity_factor * self.effective_top_k() * num_queries / E - 1e-9))

    # -- routing --------------------------------------------------------------------------------------
    def _check(self, b):
        experts = self._experts()
        if b.graph is not None and not any(m.uses_graph() for m in experts):
            raise ConfigurationError(
                f"graph: none of the experts {list(self.expert_names())} uses a graph; add a graph expert "
                f"({', '.join(self._graph_mechanisms())}) or call without graph=")

    def _route(self, b) -> Routing:
        B, lq, d = b.q.shape
        E, k = len(self.expert_names()), self.effective_top_k()
        x = b.q.astype(np.float64)
        if self.training and self.jitter_noise > 0:
            rng = np.random.default_rng([self.seed, 0x6A6974, self._jitter_draws])
            self._jitter_draws += 1
            x = x * rng.uniform(1.0 - self.jitter_noise, 1.0 + self.jitter_noise, size=x.shape)
        logits = x @ self.router_weights(d).T  # (B, lq, E)
        probs = softmax(logits)
        chosen = np.argsort(-probs, axis=-1, kind="stable")[..., :k]  # (B, lq, k), ties: lower index
        p_chosen = np.take_along_axis(probs, chosen, axis=-1)
        kept = np.ones(chosen.shape, dtype=bool)
        cap = self.capacity(lq)
        if cap is not None:
            for e in range(E):
                for bi in range(B):
                    rows, slots = np.nonzero(chosen[bi] == e)
                    if rows.size > cap:
                        order = np.lexsort((rows, -p_chosen[bi, rows, slots]))  # highest probability first
                        drop = order[cap:]
                        kept[bi, rows[drop], slots[drop]] = False
        g = np.where(kept, p_chosen, 0.0)
        tot = g.sum(axis=-1, keepdims=True)
        gates = np.divide(g, tot, out=np.zeros_like(g), where=tot > 0)
        return Routing(self.expert_names(), chosen, kept, gates, probs, logits, cap)

    def _record(self, b, r: Routing) -> None:
        shape = b.batch_shape
        rs = lambda a: a.reshape(shape + a.shape[1:])  # noqa: E731
        self.last_routing = Routing(r.names, rs(r.experts), rs(r.kept), rs(r.gates), rs(r.probabilities),
                                    rs(r.logits), r.capacity)
        self.load_balancing_loss = load_balancing_loss(r.probabilities, r.experts)
        self.router_z_loss = router_z_loss(r.logits)

    def _mix(self, b, r: Routing, run, width: int) -> np.ndarray:
        """``Σ_e g_ie · run(expert_e, q_routed, mask_routed, None)``: one batched call per expert; a
        graph expert given ``b.graph`` runs ``run(expert_e, q, mask, graph)`` on every node instead
        and its rows of the routed queries are taken."""
        B, lq, _ = b.q.shape
        out = np.zeros((B, lq, width), dtype=b.q.dtype)
        mask = None if b.mask is None else np.broadcast_to(b.mask, (B, lq, b.k.shape[1]))
        for e, expert in enumerate(self._experts()):
            sel = (r.experts == e) & r.kept  # (B, lq, k); an expert appears at most once per row
            gate = (r.gates * sel).sum(axis=-1)  # (B, lq)
            use = sel.any(axis=-1)
            counts = use.sum(axis=1)
            n = int(counts.max())
            if n == 0:
                continue
            idx = np.zeros((B, n), dtype=np.intp)  # padded with query 0 (results discarded)
            valid = np.arange(n)[None, :] < counts[:, None]
            for bi in range(B):
                rows = np.nonzero(use[bi])[0]
                idx[bi, :rows.size] = rows
            if b.graph is not None and expert.uses_graph():
                res = np.take_along_axis(run(expert, b.q, mask, b.graph), idx[..., None], axis=1)
            else:
                qe = np.take_along_axis(b.q, idx[..., None], axis=1)
                me = None if mask is None else np.take_along_axis(mask, idx[..., None], axis=1)
                res = run(expert, qe, me, None)  # (B, n, width)
            if res.shape[-1] != width:
                raise ConfigurationError(
                    f"experts: expert {self.expert_names()[e]!r} returns width {res.shape[-1]}, expected {width} "
                    f"(dv); configure it with expert_params")
            ge = np.take_along_axis(gate, idx, axis=1) * valid
            contrib = (res * ge[..., None].astype(b.q.dtype))
            for bi in range(B):
                c = int(counts[bi])
                out[bi, idx[bi, :c]] += contrib[bi, :c]
        return out

    def _blas(self, b):
        """One BLAS thread while the experts run on the Numba backend: the experts' parallel kernels
        alternate with BLAS calls, and multi-threaded OpenBLAS workers left spinning between them
        slow every following kernel down (measured 4.5× at (32, 12, 512, 64) on a loaded 2-core
        machine). A no-op on the NumPy backend."""
        if b.backend != "numba":
            return contextlib.nullcontext()
        from kernels.blas_threads import one_blas_thread

        return one_blas_thread("all")

    def _forward(self, b):
        r = self._route(b)
        self._record(b, r)
        with self._blas(b):
            return self._mix(b, r, lambda ex, qe, me, g: ex(qe, b.k, b.v, mask=me, graph=g), b.v.shape[-1])

    def _weights(self, b):
        r = self._route(b)
        self._record(b, r)
        with self._blas(b):
            return self._mix(b, r, lambda ex, qe, me, g: ex.weights(qe, b.k, mask=me, graph=g), b.k.shape[1])
