"""Topology-gated attention: a coherence policy switches between softmax, top-W and argmax copy."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import param

import kernels
from kernels.dense import DENSE
from kernels.graph import GRAPH
from kernels.reference.softmax import masked_softmax
from workbench import topology as _T
from workbench.errors import ConfigurationError
from workbench.inputs import Batch
from workbench.mechanisms import params as P
from workbench.mechanisms.base import Mechanism
from workbench.registry import register

#: Logit elements per chunk of queries in the Cautious / Freeze path (16 MiB of float32).
_CHUNK = 1 << 22

_STABLE, _CAUTIOUS, _FREEZE = (m.code for m in _T.MODES)


@dataclass(frozen=True)
class GateTrace:
    """What the last call did, per query row: the mode used and the coherence in force.

    ``modes`` holds mode names (``"stable"``, ``"cautious"``, ``"freeze"``) and ``coherence``
    float64 values, both shaped like the query rows ``(..., Lq)`` (``()`` for a 1-D query).
    """

    modes: np.ndarray
    coherence: np.ndarray


@register("topology_gated")
class TopologyGated(Mechanism):
    """Topology-gated attention: the key window's kNN coherence picks Stable, Cautious or Freeze.

    Per batch element, an :class:`~workbench.topology.AttentionPolicy` reads the queries in order,
    one token each; every ``update_period`` tokens it recomputes the coherence
    ``c = mean_m metric_m(K_i)`` of the keys ``K_i`` query ``i`` may attend
    (:func:`workbench.topology.window_coherence`, kNN with ``k_neighbors``) and sets the mode with
    hysteresis. With ``s = scale/T`` (``scale`` default ``1/√d``) and ``A_i`` the allowed keys:

    * Stable: ``W_ij = softmax_{j ∈ A_i}(s q_i·k_j)`` (scaled dot-product attention);
    * Cautious: the same softmax over the top ``W = max(1, ⌊base_width·cautious_width_factor⌋)``
      allowed keys by ``q_i·k_j`` (ties: smaller index), all of ``A_i`` if it is smaller;
    * Freeze: ``W_ij = 1`` for ``j = argmax_{j ∈ A_i} q_i·k_j`` (smaller index on ties), a copy of
      that value.

    ``out_i = Σ_j W_ij v_j``; a query with no allowed key gives 0 and leaves the policy unchanged.
    State: without ``persistent`` every call starts each batch element from a fresh policy
    (Stable, stale), so a call is a pure function of its inputs; with ``persistent=True`` the
    policies (one per flattened batch element: each element is its own stream) carry over
    between calls, so hysteresis and the refresh period span calls (decoding token by token).
    :meth:`gated` takes and returns the state explicitly. After a call, :attr:`trace` holds the
    mode and coherence used for every query, :attr:`mode` the current mode(s) and
    :attr:`policies` the per-element policies with their plotting ``history``. ``weights()`` is
    a dry run: it reports the weights a forward call would use and never advances a persistent
    state. With a causal mask, one batched call over ``L`` tokens equals ``L`` persistent
    single-query calls on the growing prefix. Order: the default metrics (upstream's
    ``boundary_mass`` + ``similarity_variance``) depend on the key order; choose order-free
    ``metrics`` (``disagreement``, ``similarity_variance``, ``spectral_gap``) for permutation
    equivariance. Backends: ``numba`` runs the kNN top-k and the Stable rows (flash tiles) in Numba,
    ``numpy`` the references; Cautious and Freeze rows gather their few keys in NumPy either way.
    Shapes ``(..., Lq, d), (..., Lk, d), (..., Lk, dv) → (..., Lq, dv)``.
    Paper: the seed crate's topology-gated attention (docs/upstream.md#topology); Fiedler 1973 for
    ``spectral_gap``.
    """

    family = "theory"
    theory = "topology"
    formula = "mode = policy(coherence(kNN(K))); softmax(s·QKᵀ) V | top-W softmax | v_argmax"
    time_complexity = "O(Lq·Lk·(d+dv) + R·Lk²·d), R = coherence refreshes"
    memory_complexity = "O(Lk·k + chunk·Lk) (Stable rows on Numba: flash tiles)"
    kernels_used = (DENSE, GRAPH)  # the Stable rows; the kNN top-k of the coherence metrics

    k_neighbors = param.Integer(default=8, bounds=(1, 1024),
                                doc="Neighbours per key in the kNN graph of the coherence metrics (min(k, n-1)).")
    metrics = param.ListSelector(
        default=list(_T.DEFAULT_METRICS), objects=list(_T.METRICS),
        doc="Coherence metrics averaged into c (non-empty): boundary_mass and cut_proxy depend on the "
            "key order; disagreement, similarity_variance and spectral_gap do not.")
    stable_threshold = param.Number(default=0.7, bounds=(0, 1),
                                    doc="Coherence at or above which the raw mode is Stable (full softmax).")
    freeze_threshold = param.Number(default=0.3, bounds=(0, 1),
                                    doc="Coherence at or below which the raw mode is Freeze (argmax copy); <= stable_threshold.")
    hysteresis = param.Number(default=0.05, bounds=(0, 1),
                              doc="Margin h: leaving Stable or Freeze for Cautious (and back) needs c beyond threshold -/+ h.")
    update_period = param.Integer(default=4, bounds=(1, None),
                                  doc="Tokens (queries) between coherence refreshes: refreshed on tokens 0, P, 2P, ...")
    base_width = param.Integer(default=64, bounds=(1, None),
                               doc="Base attention width; Cautious attends the top max(1, floor(base_width*factor)) keys.")
    cautious_width_factor = param.Number(default=0.5, bounds=(0, 1), inclusive_bounds=(False, True),
                                         doc="Fraction of base_width that Cautious mode attends (0 < factor <= 1).")
    temperature = P.temperature("Softmax temperature T > 0 in softmax(scale*q.k/T); lower is sharper.")
    scale = P.scale()
    persistent = param.Boolean(
        default=False,
        doc="Keep each batch element's policy between calls (a stream); off: every call starts fresh.")
    history_size = param.Integer(default=1024, bounds=(1, 1_000_000),
                                 doc="Decisions kept in each policy's history for plotting (upstream keeps 16).")

    def __init__(self, **params):
        super().__init__(**params)
        self._policy_kwargs()  # validate the policy's configuration now
        _T.metric_names(self.metrics)
        self._state: list[_T.AttentionPolicy] | None = None
        self._trace: GateTrace | None = None
        self._batch_shape: tuple | None = None

    # -- public state --------------------------------------------------------------------------
    @property
    def trace(self) -> GateTrace | None:
        """Modes and coherence per query row of the last call (None before the first call)."""
        return self._trace

    @property
    def policies(self) -> list[_T.AttentionPolicy]:
        """The per-element policies after the last call (one per flattened batch element)."""
        return list(self._state or [])

    @property
    def mode(self):
        """Current mode name per batch element (a ``str`` for unbatched inputs); None before a call."""
        if not self._state:
            return None
        names = np.array([p.mode.value for p in self._state], dtype="<U8")
        if self._batch_shape == ():
            return str(names[0])
        return names.reshape(self._batch_shape)

    @property
    def history(self) -> list[_T.PolicyRecord]:
        """The decisions of the first batch element's policy (see :attr:`policies` for the others)."""
        return self._state[0].history if self._state else []

    def reset(self) -> None:
        """Forget the persistent state and the trace."""
        self._state, self._trace, self._batch_shape = None, None, None

    def gated(self, q, k, v, *, mask=None, state=None):
        """Forward with explicit state: ``(out, new_state)``; ``state`` (a list of policies, one per
        flattened batch element, e.g. a previous ``new_state``) is copied, never modified; None
        starts fresh. Does not touch the instance's persistent state."""
        batch = self._prepare(q, k, v, mask)
        self._check(batch)
        out, policies, trace = self._run(lambda b: self._compute(b, state, want="output"), batch)
        self._set_trace(batch, trace)
        return batch.restore(self._finite(out, "output")), policies

    # -- Mechanism hooks ------------------------------------------------------------------------
    def _check(self, b: Batch) -> None:
        self._policy_kwargs()
        _T.metric_names(self.metrics)

    def _forward(self, b: Batch) -> np.ndarray:
        out, policies, trace = self._compute(b, self._persistent_state(b), want="output")
        self._set_trace(b, trace)
        self._state, self._batch_shape = policies, b.batch_shape
        return out

    def _weights(self, b: Batch) -> np.ndarray:
        w, policies, trace = self._compute(b, self._persistent_state(b), want="weights")
        self._set_trace(b, trace)
        if not self.persistent:  # a dry run never advances a persistent state
            self._state, self._batch_shape = policies, b.batch_shape
        return w

    # -- the computation ------------------------------------------------------------------------
    def _policy_kwargs(self) -> dict:
        kw = dict(stable_threshold=self.stable_threshold, freeze_threshold=self.freeze_threshold,
                  hysteresis=self.hysteresis, update_period=self.update_period,
                  cautious_width_factor=self.cautious_width_factor, history_size=self.history_size)
        _T.AttentionPolicy(**kw)  # raises ConfigurationError naming the argument
        return kw

    def _start(self, B: int, state) -> list[_T.AttentionPolicy]:
        if state is None:
            kw = self._policy_kwargs()
            return [_T.AttentionPolicy(**kw) for _ in range(B)]
        state = list(state)
        if len(state) != B or not all(isinstance(p, _T.AttentionPolicy) for p in state):
            raise ConfigurationError(
                f"state: expected {B} AttentionPolicy objects (one per flattened batch element), got "
                f"{len(state)} item(s); call reset() (persistent) or pass state=None to start fresh")
        return [p.copy() for p in state]

    def _persistent_state(self, b: Batch):
        if not self.persistent or self._state is None:
            return None
        B = b.q.shape[0]
        if len(self._state) != B:
            raise ConfigurationError(
                f"persistent: the policies hold {len(self._state)} stream(s) (batch shape {self._batch_shape}), "
                f"got a call with {B} (batch shape {b.batch_shape}); keep the batch shape or call reset()")
        return self._state

    def _set_trace(self, b: Batch, trace) -> None:
        shape = b.batch_shape + (() if b.single_query else (trace[0].shape[-1],))
        self._trace = GateTrace(_T.mode_names(trace[0]).reshape(shape), trace[1].reshape(shape))

    def _compute(self, b: Batch, state, want: str):
        B, lq, lk = b.q.shape[0], b.q.shape[1], b.k.shape[1]
        policies = self._start(B, state)
        codes = np.empty((B, lq), np.int8)
        coh = np.empty((B, lq), np.float64)
        metrics = _T.metric_names(self.metrics)
        with _small_blas(lk):
            for bi in range(B):
                coherence_at = self._coherence_fn(b, bi, metrics)
                if b.mask is None or b.mask.shape[1] == 1:  # one window for every query
                    codes[bi], coh[bi] = policies[bi].run_constant(lq, lambda: coherence_at(0))
                else:
                    codes[bi], coh[bi] = policies[bi].run(lq, coherence_at)
            res = self._attend(b, codes, want)
        return res, policies, (codes, coh)

    def _attend(self, b: Batch, codes: np.ndarray, want: str) -> np.ndarray:
        B, lq, lk = b.q.shape[0], b.q.shape[1], b.k.shape[1]
        width = max(1, int(np.floor(self.base_width * self.cautious_width_factor)))
        s = self._scale(b.dim) / self.temperature
        dv = lk if want == "weights" else b.v.shape[-1]
        res = np.zeros((B, lq, dv), b.q.dtype)
        stable = codes == _STABLE
        whole = np.flatnonzero(stable.all(axis=1))  # elements attending in Stable mode only: one call
        if whole.size:
            m = None if b.mask is None else b.mask[whole] if b.mask.shape[0] > 1 else b.mask
            res[whole] = self._stable(b, whole, slice(None), m, s, want)
        for bi in np.flatnonzero(~stable.all(axis=1)):
            allowed = _mask_rows(b, bi)
            rows = np.flatnonzero(stable[bi])
            if rows.size:
                m = None if allowed is None else allowed[rows][None]
                res[bi, rows] = self._stable(b, [bi], rows, m, s, want)[0]
            other = np.flatnonzero(~stable[bi])
            step = max(1, _CHUNK // max(lk, 1))
            for i0 in range(0, other.size, step):
                rows = other[i0:i0 + step]
                res[bi, rows] = _sparse(b, bi, rows, codes[bi, rows], allowed, s, width, want)
        return res

    def _coherence_fn(self, b: Batch, bi: int, metrics):
        keys = b.k[bi]
        rows = _mask_rows(b, bi)
        cache: dict = {}
        k_nb, backend = self.k_neighbors, self.backend

        def coherence_at(t: int):
            if rows is None:
                key, sel = b"", None
            else:
                sel = rows[t]
                if not sel.any():
                    return None  # nothing to attend: no evidence, the refresh stays due
                key = np.packbits(sel).tobytes()
            if key not in cache:
                window = keys if sel is None else keys[sel]
                cache[key] = _T.window_coherence(window, k=k_nb, metrics=metrics, backend=backend)
            return cache[key]

        return coherence_at

    def _stable(self, b, elems, rows, mask, s, want):
        """Softmax attention of the query ``rows`` of batch elements ``elems`` (the dense kernels)."""
        every = len(elems) == b.q.shape[0]
        q = b.q if every else b.q[elems]
        q = q if isinstance(rows, slice) else q[:, rows]
        k = b.k if every else b.k[elems]
        if want == "weights":
            return kernels.attention_weights(q, k, mask=mask, scale=s, backend=self.backend)
        return kernels.attention(q, k, b.v if every else b.v[elems], mask=mask, scale=s, backend=self.backend)


#: Up to this many keys per batch element, the per-element BLAS calls (kNN Gram matrix, logits)
#: run single-threaded: threads only add overhead to such small products (measured on 2 busy
#: cores: a 512 × 64 × 512 product takes 0.6 ms on one thread, 11 ms on two).
_SMALL_LK = 2048


def _small_blas(lk: int):
    if lk > _SMALL_LK:
        return contextlib.nullcontext()
    from kernels.blas_threads import one_blas_thread

    return one_blas_thread("all")


def _sparse(b: Batch, bi: int, rows, codes, allowed, s: float, width: int, want: str) -> np.ndarray:
    """Cautious (softmax over the top-``width`` allowed keys) and Freeze (argmax copy) query rows.

    Only the selected keys enter the softmax and the value sum (gathered), so a row costs its
    logits, a partition and ``O(width·dv)``.
    """
    lk = b.k.shape[1]
    logits = (b.q[bi, rows] @ b.k[bi].T) * np.asarray(s, b.q.dtype)  # (r, Lk)
    ok = None if allowed is None else allowed[rows]
    masked = logits if ok is None else np.where(ok, logits, -np.inf)
    n_ok = np.full(len(rows), lk) if ok is None else ok.sum(axis=1)
    out = np.zeros((len(rows), lk if want == "weights" else b.v.shape[-1]), b.q.dtype)
    frz = (codes == _FREEZE) & (n_ok > 0)
    if frz.any():
        j = np.argmax(masked[frz], axis=1)  # first index among ties
        if want == "weights":
            out[np.flatnonzero(frz), j] = 1
        else:
            out[frz] = b.v[bi][j]  # a copy of the value
    caut = codes == _CAUTIOUS
    full = caut & (n_ok > width)  # exactly ``width`` keys kept
    if full.any():
        keep = _top_w(masked[full], width)
        idx = np.nonzero(keep)[1].reshape(-1, width)
        vals = np.take_along_axis(logits[full], idx, axis=1)
        w = masked_softmax(vals).astype(b.q.dtype, copy=False)
        if want == "weights":
            sub = np.zeros((idx.shape[0], lk), b.q.dtype)
            np.put_along_axis(sub, idx, w, axis=1)
            out[full] = sub
        else:
            out[full] = np.einsum("rw,rwd->rd", w, b.v[bi][idx])
    few = caut & (n_ok <= width) & (n_ok > 0)  # every allowed key
    if few.any():
        w = masked_softmax(logits[few], None if ok is None else ok[few]).astype(b.q.dtype, copy=False)
        out[few] = w if want == "weights" else w @ b.v[bi]
    return out


def _mask_rows(b: Batch, bi: int):
    """The ``(Lq, Lk)`` allowed pattern of batch element ``bi`` (None: everything allowed)."""
    if b.mask is None:
        return None
    m = b.mask[bi if b.mask.shape[0] > 1 else 0]
    return np.broadcast_to(m, (b.q.shape[1], b.k.shape[1]))


def _top_w(s: np.ndarray, width: int) -> np.ndarray:
    """Boolean ``(r, Lk)``: the ``width`` largest entries of each row of ``s`` (ties: smaller index).

    ``s`` holds ``-inf`` at disallowed entries and every row has more than ``width`` finite ones.
    """
    lk = s.shape[1]
    t = np.partition(s, lk - width, axis=1)[:, lk - width][:, None]  # the width-th largest
    above = s > t
    eq = s == t
    need = width - above.sum(axis=1)
    tied = eq.sum(axis=1) > need  # more keys at the threshold than places left: smaller index first
    if tied.any():
        eq[tied] &= np.cumsum(eq[tied], axis=1) <= need[tied, None]
    return above | eq
