"""Topology of a key window: kNN coherence metrics and the three-mode attention policy.

Coherence metrics score a window of keys ``K (n, d)`` in ``[0, 1]`` (higher = more coherent)
from its exact k-nearest-neighbour graph (:func:`workbench.graph.knn_graph`, blocked BLAS and a
Numba top-k, never an ``n × n`` matrix): each key ``i`` gets the ``k = min(k, n − 1)`` nearest
other keys ``j`` by Euclidean distance (ties by the smaller index), one edge ``(i, j)`` each.

* ``boundary_mass``: fraction of edges with ``|i − j| ≤ ⌊n/4⌋``;
* ``cut_proxy``: ``1 −`` fraction of edges with ``i`` and ``j`` on opposite sides of ``⌊n/2⌋``
  (indices ``< ⌊n/2⌋`` versus ``≥ ⌊n/2⌋``);
* ``disagreement``: ``1 − min(1, mean_i Var_j cos(k_i, k_j))``, the population variance over the
  neighbours ``j`` of each key ``i``;
* ``similarity_variance``: ``clip(μ·(1 − min(1, σ)), 0, 1)`` with ``μ, σ`` the mean and population
  standard deviation of ``cos(k_i, k_j)`` over all edges;
* ``spectral_gap`` (ours, order-free): ``min(1, λ₂)``, the Fiedler value of the normalised
  Laplacian ``I − D^{-1/2} A D^{-1/2}`` of the symmetrised kNN graph (0 when the graph falls
  apart into components, larger when the window is one well-connected neighbourhood).

``cos`` is 0 when either norm is below 1e-8 and is clipped to ``[−1, 1]``. A window of one key
scores 1.0 on every metric (as upstream). **Order:** ``boundary_mass`` and ``cut_proxy`` compare
the keys' *sequence positions* with their geometric neighbourhoods, so they only mean something
when the keys come in a meaningful order (tokens of a sequence) and they change when the keys are
permuted; ``disagreement``, ``similarity_variance`` and ``spectral_gap`` do not depend on the order.

:class:`AttentionPolicy` turns coherence into a mode, Stable / Cautious / Freeze, with hysteresis
and a refresh period (docs/upstream.md#topology), and keeps a history for plotting.
Paper (topological gating as in the seed crate): no single paper; the spectral gap is Fiedler,
*Algebraic connectivity of graphs*, 1973, and Chung, *Spectral Graph Theory*, 1997.
"""
from __future__ import annotations

import enum
import math
from collections import deque
from functools import cached_property
from typing import Callable, Iterable, NamedTuple, Sequence

import numpy as np

from workbench import checks as C
from workbench.errors import ConfigurationError, DataError, NumericalError, ShapeError
from workbench.inputs import _as_float

__all__ = [
    "METRICS", "DEFAULT_METRICS", "ORDER_FREE_METRICS", "MODES", "Mode", "PolicyRecord", "AttentionPolicy",
    "boundary_mass", "cut_proxy", "disagreement", "similarity_variance", "spectral_gap",
    "coherence_scores", "window_coherence", "metric_names", "mode_names",
]

#: Norm below which a key's cosine similarity is defined as 0 (upstream's guard).
COS_EPS = 1e-8
#: Windows up to this size build their kNN graph with the NumPy reference under ``backend="auto"``.
_SMALL_WINDOW = 64
#: Windows up to this size get the Fiedler value from a dense symmetric eigensolver.
_DENSE_SPECTRUM_MAX = 200

# -- inputs -----------------------------------------------------------------------------------------


def _keys(K) -> np.ndarray:
    a = _as_float("K", K)
    if a.ndim != 2:
        raise ShapeError(f"K: expected keys of shape (n, d), got shape {a.shape}")
    if a.shape[0] == 0:
        raise ShapeError(f"K: expected at least one key, got shape {a.shape}")
    if a.shape[1] == 0:
        raise ShapeError(f"K: expected a feature dimension d >= 1, got shape {a.shape}")
    return a.astype(np.float64, copy=False)


def _neighbours(k) -> int:
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigurationError(f"k: expected an integer number of neighbours >= 1, got {k!r}")
    return int(k)


class _Window:
    """A validated window of keys with its kNN edges ``(src j → dst i)`` and cosine per edge."""

    def __init__(self, K, k: int, graph=None, backend: str = "auto"):
        self.K = _keys(K)
        self.n = n = self.K.shape[0]
        self.k = min(_neighbours(k), max(n - 1, 1))
        if n < 2:
            self.src = self.dst = np.zeros(0, np.int64)
            return
        if graph is None:
            from workbench.graph import knn_graph

            if backend == "auto" and n <= _SMALL_WINDOW:
                backend = "numpy"  # a few keys: no parallel-kernel start-up
            graph = knn_graph(self.K, self.k, backend=backend)
        elif getattr(graph, "num_nodes", None) != n:
            raise ShapeError(f"graph: expected a graph on the n={n} keys of K, got "
                             f"{getattr(graph, 'num_nodes', type(graph).__name__)} nodes")
        src, dst = np.asarray(graph.src, np.int64), np.asarray(graph.dst, np.int64)
        loop = src == dst  # a self-loop is no neighbour
        self.src, self.dst = (src, dst) if not loop.any() else (src[~loop], dst[~loop])
        if self.src.size == 0:
            raise DataError("graph: expected at least one edge between the keys, got none")

    @cached_property
    def cos(self) -> np.ndarray:
        nrm = np.linalg.norm(self.K, axis=1)
        ok = nrm >= COS_EPS
        u = np.divide(self.K, nrm[:, None], out=np.zeros_like(self.K), where=ok[:, None])
        c = np.einsum("ed,ed->e", u[self.src], u[self.dst])
        return np.clip(c, -1.0, 1.0)


def _window(K, k, graph, backend) -> _Window:
    return K if isinstance(K, _Window) else _Window(K, k, graph, backend)


# -- metrics ------------------------------------------------------------------------------------------


def boundary_mass(K, k: int = 8, *, graph=None, backend: str = "auto") -> float:
    """Fraction of kNN edges ``(i, j)`` whose sequence positions satisfy ``|i − j| ≤ ⌊n/4⌋``.

    ``K (n, d)`` keys in sequence order; ``graph`` an optional precomputed neighbour graph on the
    ``n`` keys (a :class:`workbench.graph.Graph`, e.g. ``knn_graph(K, k)``). Order-dependent.
    """
    w = _window(K, k, graph, backend)
    if w.n < 2:
        return 1.0
    return float(np.mean(np.abs(w.src - w.dst) <= w.n // 4))


def cut_proxy(K, k: int = 8, *, graph=None, backend: str = "auto") -> float:
    """``1 −`` fraction of kNN edges crossing the middle index ``m = ⌊n/2⌋`` (``< m`` vs ``≥ m``).

    ``K (n, d)``; order-dependent (see the module docstring).
    """
    w = _window(K, k, graph, backend)
    if w.n < 2:
        return 1.0
    m = w.n // 2
    return float(1.0 - np.mean((w.src < m) != (w.dst < m)))


def disagreement(K, k: int = 8, *, graph=None, backend: str = "auto") -> float:
    """``1 − min(1, mean_i Var_{j ∈ N(i)} cos(k_i, k_j))`` (population variance per key).

    ``K (n, d)``; keys without neighbours in ``graph`` are left out of the mean.
    """
    w = _window(K, k, graph, backend)
    if w.n < 2:
        return 1.0
    c = w.cos
    cnt = np.bincount(w.dst, minlength=w.n).astype(np.float64)
    has = cnt > 0
    mean = np.zeros(w.n)
    mean[has] = np.bincount(w.dst, weights=c, minlength=w.n)[has] / cnt[has]
    dev = c - mean[w.dst]
    var = np.bincount(w.dst, weights=dev * dev, minlength=w.n)[has] / cnt[has]
    return float(1.0 - min(1.0, float(var.mean())))


def similarity_variance(K, k: int = 8, *, graph=None, backend: str = "auto") -> float:
    """``clip(μ·(1 − min(1, σ)), 0, 1)``, ``μ, σ`` = mean and population std of edge cosines.

    ``K (n, d)``.
    """
    w = _window(K, k, graph, backend)
    if w.n < 2:
        return 1.0
    c = w.cos
    mu, sigma = float(c.mean()), float(c.std())
    return float(np.clip(mu * (1.0 - min(1.0, sigma)), 0.0, 1.0))


def spectral_gap(K, k: int = 8, *, graph=None, backend: str = "auto") -> float:
    """``min(1, λ₂)`` of the normalised Laplacian ``I − D^{-1/2} A D^{-1/2}`` of the kNN graph.

    ``A`` is the symmetrised (undirected, unweighted) kNN adjacency of ``K (n, d)``; ``λ₂`` its
    Fiedler value: 0 for a disconnected graph, ``n/(n−1)`` for a complete one (clipped to 1).
    Order-free. Dense ``eigvalsh`` up to 200 keys; beyond, Lanczos (ARPACK ``eigsh``) for the largest
    eigenvalue ``μ₂`` of ``D^{-1/2} A D^{-1/2}`` on the complement of its known top eigenvector
    ``D^{1/2}1``, and ``λ₂ = 1 − μ₂`` (milliseconds for 10⁴ keys; shift-invert would take minutes).
    Paper: Fiedler, *Algebraic connectivity of graphs*, 1973.
    """
    w = _window(K, k, graph, backend)
    n = w.n
    if n < 2:
        return 1.0
    keep = w.src != w.dst
    src, dst = w.src[keep], w.dst[keep]
    if n <= _DENSE_SPECTRUM_MAX:
        a = np.zeros((n, n))
        a[dst, src] = 1.0
        a = np.maximum(a, a.T)
        deg = a.sum(axis=1)
        if (deg == 0).any():  # an isolated key: disconnected
            return 0.0
        r = 1.0 / np.sqrt(deg)
        lam = float(np.linalg.eigvalsh(np.eye(n) - r[:, None] * a * r[None, :])[1])
        return 0.0 if lam < 1e-10 else float(min(lam, 1.0))
    from scipy import sparse
    from scipy.sparse import csgraph

    a = sparse.coo_matrix((np.ones(src.size), (dst, src)), shape=(n, n)).tocsr()
    a = ((a + a.T) > 0).astype(np.float64)
    if csgraph.connected_components(a, directed=False)[0] > 1:
        return 0.0
    lam = _fiedler_lanczos(csgraph.laplacian(a, normed=True), np.sqrt(np.asarray(a.sum(axis=1)).ravel()))
    return float(np.clip(lam, 0.0, 1.0))


def _fiedler_lanczos(lap, sqrt_deg: np.ndarray) -> float:
    """``λ₂`` of a connected graph's normalised Laplacian ``lap`` by deflated Lanczos."""
    from scipy import sparse
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    n = lap.shape[0]
    u0 = sqrt_deg / np.linalg.norm(sqrt_deg)
    m = (sparse.identity(n, format="csr") - lap).tocsr()
    op = LinearOperator((n, n), matvec=lambda x: m @ x - u0 * (u0 @ x), dtype=np.float64)
    v0 = np.random.default_rng(0).standard_normal(n)
    try:
        mu = eigsh(op, k=1, which="LA", v0=v0, tol=1e-10, return_eigenvectors=False)[0]
    except ArpackNoConvergence as exc:  # pragma: no cover - ARPACK converges on kNN graphs
        if len(exc.eigenvalues) == 0:
            raise NumericalError("spectral_gap: the Lanczos iteration did not converge on this key window") from None
        mu = float(np.max(exc.eigenvalues))
    return float(1.0 - mu)


_METRIC_FUNCTIONS: dict[str, Callable[..., float]] = {
    "boundary_mass": boundary_mass,
    "cut_proxy": cut_proxy,
    "disagreement": disagreement,
    "similarity_variance": similarity_variance,
    "spectral_gap": spectral_gap,
}
#: Every metric name, in a fixed order.
METRICS: tuple[str, ...] = tuple(_METRIC_FUNCTIONS)
#: Upstream's default metric list (``BoundaryMass``, ``SimilarityVariance``).
DEFAULT_METRICS: tuple[str, ...] = ("boundary_mass", "similarity_variance")
#: Metrics that do not change when the keys are permuted.
ORDER_FREE_METRICS: tuple[str, ...] = ("disagreement", "similarity_variance", "spectral_gap")

_ALIASES = {m.replace("_", ""): m for m in METRICS}


def metric_names(metrics) -> tuple[str, ...]:
    """Canonical names of a metric list (snake_case or upstream CamelCase); empty or unknown → error."""
    if isinstance(metrics, str):
        metrics = (metrics,)
    try:
        names = list(metrics)
    except TypeError:
        raise ConfigurationError(f"metrics: expected a sequence of metric names from {METRICS}, got {metrics!r}") from None
    if not names:
        raise ConfigurationError(f"metrics: expected at least one metric from {METRICS}, got an empty list")
    out = []
    for m in names:
        key = str(m).replace("_", "").lower() if isinstance(m, str) else None
        if key not in _ALIASES:
            raise ConfigurationError(f"metrics: unknown metric {m!r}; known: {', '.join(METRICS)}")
        out.append(_ALIASES[key])
    return tuple(out)


def coherence_scores(K, k: int = 8, metrics: Sequence[str] = DEFAULT_METRICS, *, graph=None,
                     backend: str = "auto") -> dict[str, float]:
    """Each requested metric of the window ``K (n, d)``, by name, every score in ``[0, 1]``.

    ``metrics`` names from :data:`METRICS` (upstream's CamelCase names are accepted too); an empty
    list is a :class:`ConfigurationError` (upstream returns NaN). ``graph``: a precomputed neighbour
    graph on the ``n`` keys (edge ``j → i``: ``j`` is a neighbour of ``i``; self-loops ignored),
    reused by every metric; otherwise the exact kNN graph is built once (``backend`` selects its
    top-k kernel, :func:`workbench.graph.knn_graph`).
    """
    names = metric_names(metrics)
    w = _Window(K, k, graph, backend)
    return {m: _METRIC_FUNCTIONS[m](w) for m in names}


def window_coherence(K, k: int = 8, metrics: Sequence[str] = DEFAULT_METRICS, *, graph=None,
                     backend: str = "auto") -> float:
    """Coherence of a key window: the mean of the requested metric scores, in ``[0, 1]``.

    ``c(K) = mean_{m ∈ metrics} m(K)``; ``K (n, d)``, ``n ≥ 1`` (one key: 1.0); kNN graph with
    ``min(k, n − 1)`` neighbours per key. See :func:`coherence_scores` for the arguments.
    """
    scores = coherence_scores(K, k, metrics, graph=graph, backend=backend)
    return float(np.mean(list(scores.values())))


# -- the policy ---------------------------------------------------------------------------------------


class Mode(str, enum.Enum):
    """Attention mode chosen by the policy (a ``str``: ``Mode.STABLE == "stable"``)."""

    STABLE = "stable"
    CAUTIOUS = "cautious"
    FREEZE = "freeze"

    @property
    def code(self) -> int:
        """0 Stable, 1 Cautious, 2 Freeze (for plotting and arrays)."""
        return _CODES[self]


_CODES = {Mode.STABLE: 0, Mode.CAUTIOUS: 1, Mode.FREEZE: 2}
MODES: tuple[Mode, ...] = (Mode.STABLE, Mode.CAUTIOUS, Mode.FREEZE)


class PolicyRecord(NamedTuple):
    """One decision of the policy: the token ``step`` it was taken at, the coherence, the mode."""

    step: int
    coherence: float
    mode: Mode


def _number(name, value, lo=None, hi=None, *, lo_open=False) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigurationError(f"{name}: expected a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or (lo is not None and (v < lo or (lo_open and v == lo))) or (hi is not None and v > hi):
        rng = f"{'(' if lo_open else '['}{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
        raise ConfigurationError(f"{name}: expected a finite number in {rng}, got {value!r}")
    return v


def _integer(name, value, lo) -> int:
    return C.integer(name, value, minimum=lo)


class AttentionPolicy:
    """Three-mode attention policy with hysteresis and a coherence refresh period (docs/upstream.md#topology).

    Raw mode of a coherence ``c``: Stable if ``c ≥ stable_threshold``, Freeze if
    ``c ≤ freeze_threshold``, else Cautious. Hysteresis ``h`` against the current mode:
    Stable→Cautious only if ``c < stable − h``; Cautious→Stable only if ``c > stable + h``;
    Cautious→Freeze only if ``c < freeze − h``; Freeze→Cautious only if ``c > freeze + h``;
    otherwise the current mode stays. Stable↔Freeze jumps and staying in a mode take the raw mode
    at once (as upstream: from Stable ``c ≤ freeze`` freezes immediately, from Freeze
    ``c ≥ stable`` returns to Stable). Initial mode Stable.

    Token bookkeeping (:meth:`step`): the coherence is refreshed when the policy is stale (new
    or :meth:`mark_stale`) or ``update_period`` tokens have passed since the last refresh, so it
    is recomputed on tokens 0, P, 2P, … — every ``update_period`` tokens (upstream refreshes every
    ``update_period + 1`` calls, docs/upstream.md#topology). A token whose window is empty (``None``
    coherence) changes nothing and the refresh stays due.

    Attention width: Stable ``base``, Cautious ``max(1, ⌊base·cautious_width_factor⌋)``, Freeze 0;
    sparsity factor 1, ``cautious_sparsity_factor``, ``inf``. Updates/writes are allowed unless
    frozen. ``history`` keeps the last ``history_size`` decisions (default 1024; upstream keeps
    16) as :class:`PolicyRecord` entries ``(step, coherence, mode)``; :meth:`history_arrays` gives
    them as arrays for plotting.
    """

    def __init__(self, stable_threshold: float = 0.7, freeze_threshold: float = 0.3, hysteresis: float = 0.05,
                 update_period: int = 4, cautious_width_factor: float = 0.5, cautious_sparsity_factor: float = 2.0,
                 history_size: int = 1024):
        self.stable_threshold = _number("stable_threshold", stable_threshold, 0.0, 1.0)
        self.freeze_threshold = _number("freeze_threshold", freeze_threshold, 0.0, 1.0)
        if self.freeze_threshold > self.stable_threshold:
            raise ConfigurationError(
                f"freeze_threshold, stable_threshold: expected freeze_threshold <= stable_threshold, got "
                f"freeze_threshold={freeze_threshold!r} > stable_threshold={stable_threshold!r}")
        self.hysteresis = _number("hysteresis", hysteresis, 0.0, 1.0)
        self.update_period = _integer("update_period", update_period, 1)
        self.cautious_width_factor = _number("cautious_width_factor", cautious_width_factor, 0.0, 1.0, lo_open=True)
        self.cautious_sparsity_factor = _number("cautious_sparsity_factor", cautious_sparsity_factor, 1.0)
        self.history_size = _integer("history_size", history_size, 1)
        self.reset()

    # -- state ------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the initial state: Stable, stale, no coherence, empty history, step 0."""
        self._mode = Mode.STABLE
        self._coherence: float | None = None
        self._history: deque[PolicyRecord] = deque(maxlen=self.history_size)
        self._stale = True
        self._since = 0
        self._step = 0

    def copy(self) -> "AttentionPolicy":
        """An independent copy (same configuration and state)."""
        new = object.__new__(AttentionPolicy)
        new.__dict__.update(self.__dict__)
        new._history = deque(self._history, maxlen=self.history_size)
        return new

    @property
    def mode(self) -> Mode:
        """The current mode."""
        return self._mode

    @property
    def coherence(self) -> float | None:
        """The coherence of the last refresh (None before the first)."""
        return self._coherence

    @property
    def steps(self) -> int:
        """Tokens seen so far (calls of :meth:`step`)."""
        return self._step

    @property
    def tokens_since_update(self) -> int:
        return self._since

    @property
    def is_stale(self) -> bool:
        return self._stale

    @property
    def history(self) -> list[PolicyRecord]:
        """The last ``history_size`` decisions, oldest first."""
        return list(self._history)

    def history_arrays(self) -> dict[str, np.ndarray]:
        """``{"step": int64, "coherence": float64, "mode": str, "code": int8}`` arrays of the history."""
        h = self._history
        return {
            "step": np.array([r.step for r in h], np.int64),
            "coherence": np.array([r.coherence for r in h], np.float64),
            "mode": np.array([r.mode.value for r in h], dtype="<U8"),
            "code": np.array([r.mode.code for r in h], np.int8),
        }

    # -- decisions -----------------------------------------------------------------------------------
    def raw_mode(self, coherence: float) -> Mode:
        """The mode of ``coherence`` ignoring hysteresis."""
        c = self._check_coherence(coherence)
        if c >= self.stable_threshold:
            return Mode.STABLE
        if c <= self.freeze_threshold:
            return Mode.FREEZE
        return Mode.CAUTIOUS

    def determine_mode(self, coherence: float) -> Mode:
        """Apply the raw mode of ``coherence`` with hysteresis, record it, and return the new mode."""
        c = self._check_coherence(coherence)
        raw = self.raw_mode(c)
        cur, h = self._mode, self.hysteresis
        if cur is Mode.STABLE and raw is Mode.CAUTIOUS:
            new = Mode.CAUTIOUS if c < self.stable_threshold - h else Mode.STABLE
        elif cur is Mode.CAUTIOUS and raw is Mode.STABLE:
            new = Mode.STABLE if c > self.stable_threshold + h else Mode.CAUTIOUS
        elif cur is Mode.CAUTIOUS and raw is Mode.FREEZE:
            new = Mode.FREEZE if c < self.freeze_threshold - h else Mode.CAUTIOUS
        elif cur is Mode.FREEZE and raw is Mode.CAUTIOUS:
            new = Mode.CAUTIOUS if c > self.freeze_threshold + h else Mode.FREEZE
        else:
            new = raw
        self._mode = new
        self._coherence = c
        self._history.append(PolicyRecord(self._step, c, new))
        return new

    @staticmethod
    def _check_coherence(coherence) -> float:
        try:
            c = float(coherence)
        except (TypeError, ValueError):
            raise DataError(f"coherence: expected a number in [0, 1], got {coherence!r}") from None
        if not math.isfinite(c):
            raise NumericalError(f"coherence: expected a finite number in [0, 1], got {coherence!r}")
        if not 0.0 <= c <= 1.0:
            raise DataError(f"coherence: expected a number in [0, 1], got {coherence!r}")
        return c

    # -- token bookkeeping ----------------------------------------------------------------------------
    def needs_update(self) -> bool:
        """True when the coherence must be refreshed: stale, or ``update_period`` tokens since."""
        return self._stale or self._since >= self.update_period

    def mark_stale(self) -> None:
        """Force a refresh at the next token (e.g. after the key window changed wholesale)."""
        self._stale = True

    def tick(self, tokens: int = 1) -> None:
        """Count ``tokens`` processed tokens without refreshing."""
        self._since += int(tokens)
        self._step += int(tokens)

    def refresh(self, coherence: float) -> Mode:
        """A coherence refresh: :meth:`determine_mode` and restart the refresh period (not stale)."""
        mode = self.determine_mode(coherence)
        self._since = 0
        self._stale = False
        return mode

    def step(self, coherence: float | Callable[[], float | None] | None) -> Mode:
        """Process one token: refresh from ``coherence`` if due, then tick; return the mode used.

        ``coherence`` is a number, a callable evaluated only when a refresh is due (so the
        expensive kNN metrics run every ``update_period`` tokens), or None (empty window).
        """
        if self.needs_update():
            c = coherence() if callable(coherence) else coherence
            if c is not None:
                self.refresh(c)
        self.tick()
        return self._mode

    def run(self, tokens: int, coherence_at: Callable[[int], float | None]) -> tuple[np.ndarray, np.ndarray]:
        """``tokens`` calls of :meth:`step`, token ``t`` refreshing from ``coherence_at(t)`` when due.

        Returns ``(codes (tokens,) int8, coherence (tokens,) float64)``: the mode code used for
        each token and the coherence in force (NaN before the first refresh). Equivalent to the
        loop over :meth:`step`, but loops only over the refresh points.
        """
        n = _integer("tokens", tokens, 0)
        codes = np.empty(n, np.int8)
        coh = np.empty(n, np.float64)
        t = 0
        while t < n:
            if self.needs_update():
                c = coherence_at(t)
                if c is not None:
                    self.refresh(c)
            span = 1 if self.needs_update() else min(n - t, self.update_period - self._since)
            span = max(span, 1)
            codes[t:t + span] = self._mode.code
            coh[t:t + span] = np.nan if self._coherence is None else self._coherence
            self.tick(span)
            t += span
        return codes, coh

    def run_constant(self, tokens: int, coherence: float | Callable[[], float | None] | None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`run` with the same window for every token, in O(1) Python steps.

        ``coherence`` is a number, a callable (evaluated at most once, only if a refresh falls in
        these tokens) or None (empty window). With a fixed coherence every refresh after the first
        repeats the first decision (the hysteresis rule is idempotent: ``determine_mode(c)`` twice
        gives the mode of once), so the refreshes are recorded in bulk.
        """
        n = _integer("tokens", tokens, 0)
        codes = np.empty(n, np.int8)
        coh = np.empty(n, np.float64)
        first = min(n, 0 if self.needs_update() else self.update_period - self._since)
        codes[:first] = self._mode.code
        coh[:first] = np.nan if self._coherence is None else self._coherence
        self.tick(first)
        if first == n:
            return codes, coh
        c = coherence() if callable(coherence) else coherence
        if c is None:  # nothing to attend: no refresh, it stays due
            codes[first:] = self._mode.code
            coh[first:] = np.nan if self._coherence is None else self._coherence
            self.tick(n - first)
            return codes, coh
        start = self._step
        mode = self.refresh(c)
        remaining = n - first
        refreshes = -(-remaining // self.update_period)
        keep = min(refreshes - 1, self.history_size)
        c = self._coherence
        self._history.extend(PolicyRecord(start + self.update_period * j, c, mode)
                             for j in range(refreshes - keep, refreshes))
        codes[first:] = mode.code
        coh[first:] = c
        self._step = start + remaining
        self._since = remaining - self.update_period * (refreshes - 1)
        return codes, coh

    # -- what the mode implies -------------------------------------------------------------------------
    def attention_width(self, base: int) -> int:
        """Keys to attend: Stable ``base``, Cautious ``max(1, ⌊base·factor⌋)``, Freeze 0."""
        b = _integer("base", base, 0)
        if self._mode is Mode.STABLE:
            return b
        if self._mode is Mode.CAUTIOUS:
            return max(1, int(math.floor(b * self.cautious_width_factor)))
        return 0

    def sparsity_factor(self) -> float:
        """1 (Stable), ``cautious_sparsity_factor`` (Cautious), ``inf`` (Freeze)."""
        return {Mode.STABLE: 1.0, Mode.CAUTIOUS: self.cautious_sparsity_factor, Mode.FREEZE: math.inf}[self._mode]

    def allows_updates(self) -> bool:
        return self._mode is not Mode.FREEZE

    def allows_writes(self) -> bool:
        return self._mode is not Mode.FREEZE

    def mode_stability(self) -> float:
        """Fraction of the history equal to the current mode (1.0 with no history)."""
        if not self._history:
            return 1.0
        return sum(r.mode is self._mode for r in self._history) / len(self._history)

    def __repr__(self) -> str:
        return (f"AttentionPolicy(mode={self._mode.value}, coherence={self._coherence}, steps={self._step}, "
                f"stable_threshold={self.stable_threshold}, freeze_threshold={self.freeze_threshold}, "
                f"hysteresis={self.hysteresis}, update_period={self.update_period})")


def mode_names(codes: Iterable[int] | np.ndarray) -> np.ndarray:
    """Mode names (``"stable"``, ``"cautious"``, ``"freeze"``) of an array of mode codes."""
    names = np.array([m.value for m in MODES], dtype="<U8")
    return names[np.asarray(codes, dtype=np.int64)]
