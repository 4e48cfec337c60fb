"""Coherence of a key window: kNN-graph metrics in ``[0, 1]`` (higher = more coherent).

See :mod:`workbench.topology` for the definitions of every metric.
"""
from __future__ import annotations

from functools import cached_property
from typing import Callable, Sequence

import numpy as np

from workbench.errors import ConfigurationError, DataError, NumericalError, ShapeError
from workbench.inputs import _as_float

__all__ = ["METRICS", "DEFAULT_METRICS", "ORDER_FREE_METRICS", "boundary_mass", "cut_proxy", "disagreement",
           "similarity_variance", "spectral_gap", "coherence_scores", "window_coherence", "metric_names"]

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
        c = np.empty(self.src.size)
        for e0 in range(0, c.size, 65536):  # by blocks of edges: never E × d gathered at once
            s, t = self.src[e0:e0 + 65536], self.dst[e0:e0 + 65536]
            c[e0:e0 + s.size] = np.einsum("ed,ed->e", u[s], u[t])
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
