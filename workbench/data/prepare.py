"""Preparing embeddings for attention: normalisation, PCA, query selection, 2-D projections, graphs.

Pure NumPy (UMAP and hnswlib only when asked for). Options that are not understood raise
:class:`~workbench.errors.ConfigurationError`, data that cannot serve them
:class:`~workbench.errors.DataError`; both name the argument.
"""
from __future__ import annotations

import importlib.util
import threading
from collections import OrderedDict

import numpy as np

from workbench.data.dataset import Dataset, validate_embeddings
from workbench import checks as C
from workbench.digest import array_digest
from workbench.errors import ConfigurationError, DataError

__all__ = ["NORMALISATIONS", "QUERY_SELECTIONS", "GRAPH_KINDS", "normalise", "pca", "transform",
           "select_queries", "project_2d", "available_projections", "graph_for"]

NORMALISATIONS = ("none", "l2", "standard", "ball")
QUERY_SELECTIONS = ("all", "subset", "label")
GRAPH_KINDS = ("knn", "hnsw")


def _choice(name: str, value, allowed) -> str:
    if value not in allowed:
        raise ConfigurationError(f"{name}: expected one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def _int(name: str, value, lo: int, hi: int | None = None) -> int:
    return C.integer(name, value, minimum=lo, maximum=hi)


def normalise(x, how: str = "none") -> np.ndarray:
    """Row or column normalisation of ``x (n, d)``, float32 out.

    ``"none"``: unchanged; ``"l2"``: ``x_i / ‖x_i‖`` (zero rows stay zero); ``"standard"``: per
    column ``(x − mean) / std`` (population std; constant columns become 0); ``"ball"``: into the
    unit Poincaré ball (the domain of the hyperbolic mechanisms at c = 1) by the exponential map at
    the origin of the rows scaled by their median norm ``s``: ``x_i ↦ tanh(‖x_i‖/s)·x_i/‖x_i‖``
    (the median row lands at radius tanh 1 ≈ 0.76; directions and the order of norms are kept).
    """
    _choice("how", how, NORMALISATIONS)
    a = validate_embeddings(x, "x")
    if how == "none":
        return a
    a64 = a.astype(np.float64)
    if how == "l2":
        nrm = np.linalg.norm(a64, axis=1, keepdims=True)
        out = np.divide(a64, nrm, out=np.zeros_like(a64), where=nrm > 0)
    elif how == "ball":
        nrm = np.linalg.norm(a64, axis=1, keepdims=True)
        s = float(np.median(nrm[nrm > 0])) if np.any(nrm > 0) else 0.0
        radius = np.tanh(nrm / s) if s > 0 else nrm
        out = np.divide(a64 * radius, nrm, out=np.zeros_like(a64), where=nrm > 0)
        # float32 rounds tanh(t) to 1 for t > 9: keep every row strictly inside the ball
        out *= np.minimum(1.0, (1 - 1e-6) / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-300))
    else:
        mu, sd = a64.mean(axis=0), a64.std(axis=0)
        out = np.divide(a64 - mu, sd, out=np.zeros_like(a64), where=sd > 0)
    return out.astype(np.float32)


def _principal_axes(a64: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(components (d, d) rows sorted by variance, variances)`` of centred ``a64``; each
    component's largest-magnitude loading is positive (deterministic signs, as scikit-learn)."""
    n, d = a64.shape
    if n >= 4 * d:  # tall: eigen-decompose the d × d scatter matrix (one BLAS pass over the data)
        evals, evecs = np.linalg.eigh(a64.T @ a64)
        order = np.argsort(evals)[::-1]
        comps, var = evecs[:, order].T, np.maximum(evals[order], 0.0) / max(n - 1, 1)
    else:
        _, s, vt = np.linalg.svd(a64, full_matrices=False)
        comps, var = vt, s**2 / max(n - 1, 1)
    big = np.argmax(np.abs(comps), axis=1)
    signs = np.sign(comps[np.arange(len(comps)), big])
    signs[signs == 0] = 1.0
    return comps * signs[:, None], var


def pca(x, dim: int) -> np.ndarray:
    """Principal component scores: ``(x − mean) Vᵀ_dim``, ``(n, d) → (n, dim)`` float32.

    ``V`` holds the top ``dim`` eigenvectors of the covariance (by eigendecomposition of the
    ``d × d`` scatter matrix when ``n ≥ 4d``, else by SVD), signs fixed so that each component's
    largest loading is positive. ``1 ≤ dim ≤ d``.
    """
    a = validate_embeddings(x, "x")
    dim = _int("dim", dim, 1, a.shape[1])
    a64 = a.astype(np.float64)
    a64 -= a64.mean(axis=0)
    comps, _ = _principal_axes(a64)
    return (a64 @ comps[:dim].T).astype(np.float32)


def transform(ds: Dataset, normalisation: str = "none", pca_dim: int | None = None) -> Dataset:
    """``ds`` normalised, then reduced by PCA to ``pca_dim`` (None: kept), as a new :class:`Dataset`.

    PCA to fewer than 2 dimensions is refused (attention needs vectors).
    """
    _choice("normalisation", normalisation, NORMALISATIONS)
    ball = normalisation == "ball"  # mapped into the ball last: PCA of ball points leaves the ball
    x = normalise(ds.x, "none" if ball else normalisation)
    notes = list(ds.notes)
    if normalisation != "none" and not ball:
        notes.append(f"normalised: {normalisation}")
    if pca_dim is not None:
        pca_dim = _int("pca_dim", pca_dim, 2, ds.dim)
        x = pca(x, pca_dim)
        notes.append(f"PCA to {pca_dim} dimensions")
    if ball:
        x = normalise(x, "ball")
        notes.append("normalised: ball")
    return ds.replace(x=x, notes=tuple(notes))


def select_queries(ds: Dataset, how: str = "all", n: int | None = None, label=None, seed: int = 0) -> np.ndarray:
    """Indices (sorted int64) of the rows of ``ds`` used as queries.

    ``"all"``: every row; ``"subset"``: ``n`` rows drawn without replacement with ``seed``
    (``n`` larger than the data set gives every row); ``"label"``: the rows whose label equals
    ``label`` (compared as text, so ``"3"`` selects label ``3`` — URL state is text).
    """
    _choice("how", how, QUERY_SELECTIONS)
    N = ds.n
    if how == "all":
        return np.arange(N, dtype=np.int64)
    if how == "subset":
        if n is None:
            raise ConfigurationError("n: how='subset' needs the number of queries n, got None")
        n = _int("n", n, 1)
        seed = _int("seed", seed, 0)
        if n >= N:
            return np.arange(N, dtype=np.int64)
        idx = np.random.default_rng(seed).choice(N, size=n, replace=False)
        return np.sort(idx).astype(np.int64)
    if ds.labels is None:
        raise DataError(f"label: the data set {ds.name!r} has no labels; choose queries 'all' or 'subset'")
    if label is None:
        raise ConfigurationError("label: how='label' needs a label, got None")
    as_text = ds.labels.astype(str)
    idx = np.flatnonzero(as_text == str(label)).astype(np.int64)
    if idx.size == 0:
        present = list(dict.fromkeys(as_text.tolist()))
        shown = ", ".join(present[:10]) + (", …" if len(present) > 10 else "")
        raise DataError(f"label: no row has label {label!r}; labels: {shown}")
    return idx


def available_projections() -> tuple[str, ...]:
    """Projection methods usable here: ``"pca"`` always, ``"umap"`` if ``umap-learn`` is installed."""
    return ("pca", "umap") if importlib.util.find_spec("umap") is not None else ("pca",)


def project_2d(x, method: str = "pca", seed: int = 0) -> np.ndarray:
    """A 2-D view of ``x (n, d) → (n, 2)`` float32 for plotting.

    ``"pca"``: the first two principal component scores (see :func:`pca`); ``"umap"``: UMAP
    (McInnes et al. 2018) with ``random_state=seed`` — only if ``umap-learn`` is installed
    (:func:`available_projections`), otherwise a DataError that says so.
    """
    _choice("method", method, ("pca", "umap"))
    a = validate_embeddings(x, "x")
    if method == "pca":
        return pca(a, 2)
    if "umap" not in available_projections():
        raise DataError("method: 'umap' needs the umap-learn package, which is not installed; use 'pca'")
    import umap  # pragma: no cover - optional

    n_neighbors = max(2, min(15, a.shape[0] - 1))
    return umap.UMAP(n_components=2, n_neighbors=n_neighbors, random_state=_int("seed", seed, 0)) \
        .fit_transform(a).astype(np.float32)  # pragma: no cover


# -- graphs ------------------------------------------------------------------------------------------

_GRAPH_CACHE: "OrderedDict[tuple, object]" = OrderedDict()
_GRAPH_LOCK = threading.Lock()
_GRAPH_CACHE_SIZE = 8


def graph_for(x, kind: str = "knn", k: int = 8, *, metric: str = "euclidean", seed: int = 0):
    """The neighbour graph of the points ``x (n, d)`` for graph mechanisms (one node per row).

    ``"knn"``: the exact ``k``-nearest-neighbour graph (:func:`workbench.graph.knn_graph`, no
    self-loops, so ``k ≤ n − 1``); ``"hnsw"``: the layer-0 graph of an HNSW index
    (:func:`workbench.graph.hnsw_graph`) with ``M = max(2, ⌈k/2⌉)`` (layer 0 keeps up to ``2M``
    links, so about ``k`` neighbours per node) and per-node levels. Deterministic for ``seed``;
    the last few graphs are cached by the content of ``x``.
    """
    from workbench.graph import hnsw_graph, knn_graph

    _choice("kind", kind, GRAPH_KINDS)
    a = validate_embeddings(x, "x")
    n = a.shape[0]
    if n < 2:
        raise DataError(f"x: a graph needs at least 2 points, got {n}")
    k = _int("k", k, 1)
    if kind == "knn" and k > n - 1:
        raise ConfigurationError(f"k: expected at most n - 1 = {n - 1} neighbours for {n} points, got {k}")
    key = (array_digest(a), kind, k, metric, int(seed))
    with _GRAPH_LOCK:
        if key in _GRAPH_CACHE:
            _GRAPH_CACHE.move_to_end(key)
            return _GRAPH_CACHE[key]
    if kind == "knn":
        g = knn_graph(a, k, metric=metric)
    else:
        g = hnsw_graph(a, M=max(2, (k + 1) // 2), seed=_int("seed", seed, 0), metric=metric)
    with _GRAPH_LOCK:
        _GRAPH_CACHE[key] = g
        while len(_GRAPH_CACHE) > _GRAPH_CACHE_SIZE:
            _GRAPH_CACHE.popitem(last=False)
    return g
