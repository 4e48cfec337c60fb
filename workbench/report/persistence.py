"""0-dimensional persistent homology (H0) of a point cloud: the ``n − 1`` finite death times.

In the Vietoris–Rips filtration of ``x (n, d)`` every point is born at 0 and two components
merge when the shortest edge between them appears, so the finite H0 deaths are exactly the
edge lengths of a Euclidean minimum spanning tree (Kruskal's merge lengths). All ``n − 1`` of
them are finite; the essential class (the one component that never dies) has no finite death,
so none is dropped (upstream drops the largest, docs/upstream.md#report).

* ``method="exact"``: the MST of the complete graph, from the dense ``n × n`` distance matrix
  (``O(n²d)`` time, ``O(n²)`` memory).
* ``method="knn"``: the MST of the exact ``k``-nearest-neighbour graph
  (:func:`workbench.graph.knn_graph`, symmetrised), made connected by Borůvka rounds that add,
  for every component but the largest, its exact shortest edge to another component (BLAS by
  blocks, never ``n × n``). Every bridge is a complete-graph MST edge (cut property), and the
  result equals the complete-graph MST whenever the kNN graph holds every MST edge inside its
  components (the case for generic data with ``k ≳ 10``; ``tests/report/test_persistence.py``
  checks it against brute-force Kruskal). Otherwise it is a spanning tree whose deaths are
  upper bounds of the exact ones. Exact duplicates are merged first (each extra copy dies at 0)
  so that a repeated point cannot fill its own neighbour list.
* ``method="auto"``: exact for ``n ≤ exact_max``, kNN above.

The MST itself comes from :func:`scipy.sparse.csgraph.minimum_spanning_tree` (weighted by the
kNN graph's own distances for its edges); deaths are recomputed in float64 from the endpoints of
the tree's edges (so duplicate points give deaths
of exactly 0, which scipy would otherwise read as missing edges).
Reference: Edelsbrunner & Harer, *Computational Topology*, 2010, §VII (0-dimensional
persistence = single-linkage / MST).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.errors import ConfigurationError, DataError, NumericalError, ShapeError

__all__ = ["H0Persistence", "h0_persistence", "points"]

_METHODS = ("auto", "exact", "knn")


@dataclass(frozen=True)
class H0Persistence:
    """The finite H0 deaths of a point cloud and the spanning-tree edges that realise them.

    ``deaths (n − 1,)`` ascending float64; ``edges (n − 1, 2)`` int64 point indices with
    ``deaths[e] = ‖x[edges[e, 0]] − x[edges[e, 1]]‖``; ``method`` "exact" or "knn"; ``k`` the
    neighbour count used (None for exact); ``bridges`` the number of edges Borůvka added.
    """

    deaths: np.ndarray
    edges: np.ndarray
    method: str
    k: int | None = None
    bridges: int = 0

    @property
    def total(self) -> float:
        """Total persistence ``Σ deaths`` (births are 0)."""
        return float(self.deaths.sum())


def points(x, name: str = "K") -> np.ndarray:
    """``x`` validated as a finite real ``(n, d)`` array with ``n ≥ 1`` and ``d ≥ 1`` (dtype kept
    for float32/float64, integers and bools → float64)."""
    try:
        a = np.asarray(x)
    except ValueError as exc:
        raise ShapeError(f"{name}: expected a rectangular (n, d) array, got a ragged sequence ({exc})") from None
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_) or np.iscomplexobj(a):
        raise DataError(f"{name}: expected a real numeric array, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ShapeError(f"{name}: expected shape (n, d) (n points of dimension d), got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ShapeError(f"{name}: expected at least one point of dimension >= 1, got shape {a.shape}")
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    if not np.isfinite(a).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise NumericalError(f"{name}: expected finite values, got {a[bad]} at index {bad}")
    return a


def _mst_edges(n: int, rows: np.ndarray, cols: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Edges ``(n − 1, 2)`` of a minimum spanning tree of a connected graph given by an edge list."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import minimum_spanning_tree

    # every spanning tree has n − 1 edges, so adding the same positive offset to every weight
    # changes no tree's rank; it keeps zero-length edges (duplicates) from reading as "no edge"
    w = lengths + (1.0 + float(lengths.max(initial=0.0)))
    g = coo_matrix((w, (rows, cols)), shape=(n, n)).tocsr()
    t = minimum_spanning_tree(g).tocoo()
    return np.stack([t.row, t.col], axis=1).astype(np.int64)


def _lengths(a: np.ndarray, edges: np.ndarray) -> np.ndarray:
    diff = a[edges[:, 0]] - a[edges[:, 1]]
    return np.sqrt(np.einsum("ij,ij->i", diff, diff))


def _exact(a: np.ndarray) -> np.ndarray:
    n = a.shape[0]
    sq = np.einsum("ij,ij->i", a, a)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (a @ a.T), 0.0)
    iu, ju = np.triu_indices(n, 1)
    return _mst_edges(n, iu, ju, np.sqrt(d2[iu, ju]))


def _nearest_outside(a, sq, members, comp, block=1024):
    """For the points ``members`` (one component), the shortest edge to a point of another component."""
    best = (np.inf, -1, -1)
    c = comp[members[0]]
    outside = comp != c
    for i0 in range(0, members.size, block):
        m = members[i0:i0 + block]
        d2 = sq[m, None] + sq[None, :] - 2.0 * (a[m] @ a.T)
        d2[:, ~outside] = np.inf
        flat = int(np.argmin(d2))
        r, j = divmod(flat, a.shape[0])
        if d2[r, j] < best[0]:
            best = (float(d2[r, j]), int(m[r]), int(j))
    return best[1], best[2]


def _knn(a: np.ndarray, k: int, graph=None) -> tuple[np.ndarray, int]:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from workbench.graph import knn_graph

    n = a.shape[0]
    kk = min(k, n - 1)
    if graph is None:
        graph = knn_graph(a, kk)
    elif graph.num_nodes != n:
        raise ShapeError(f"graph: expected a kNN graph on n={n} points, got num_nodes={graph.num_nodes}")
    src, dst = np.asarray(graph.src), np.asarray(graph.dst)
    keep = src != dst
    rows, cols = src[keep], dst[keep]
    known = np.asarray(graph.distance)[keep] if graph.distance is not None else None
    bridges = []
    a64 = a.astype(np.float64, copy=False)
    sq = np.einsum("ij,ij->i", a64, a64)
    while True:
        er = np.concatenate([rows] + [np.array([b[0]]) for b in bridges]) if bridges else rows
        ec = np.concatenate([cols] + [np.array([b[1]]) for b in bridges]) if bridges else cols
        adj = coo_matrix((np.ones(er.size), (er, ec)), shape=(n, n))
        ncomp, comp = connected_components(adj, directed=False)
        if ncomp == 1:
            break
        sizes = np.bincount(comp, minlength=ncomp)
        largest = int(np.argmax(sizes))
        order = np.argsort(comp, kind="stable")
        starts = np.concatenate([[0], np.cumsum(sizes)])
        for c in range(ncomp):
            if c == largest:
                continue
            members = order[starts[c]:starts[c + 1]]
            bridges.append(_nearest_outside(a64, sq, members, comp))
    er = np.concatenate([rows] + [np.array([b[0]]) for b in bridges]) if bridges else rows
    ec = np.concatenate([cols] + [np.array([b[1]]) for b in bridges]) if bridges else cols
    if known is None:
        lengths = _lengths(a64, np.stack([er, ec], axis=1))
    else:  # the graph's own distances for its edges (the deaths are recomputed from the tree's endpoints)
        extra = np.stack([er[rows.size:], ec[rows.size:]], axis=1)
        lengths = np.concatenate([known, _lengths(a64, extra)])
    return _mst_edges(n, er, ec, lengths), len(bridges)


def _knn_unique(a: np.ndarray, k: int) -> tuple[np.ndarray, int, int]:
    """kNN-graph MST of the distinct points, the duplicates attached to their first copy by 0-length edges.

    (A point repeated more than ``k`` times would otherwise fill its own neighbour list.)
    """
    uniq, first, inverse = np.unique(a, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    m = uniq.shape[0]
    if m == 1:
        edges = np.zeros((0, 2), np.int64)
        nb = 0
    else:
        sub, nb = _knn(uniq, k)
        edges = first[sub]
    dup = np.flatnonzero(first[inverse] != np.arange(a.shape[0]))
    edges = np.concatenate([edges, np.stack([first[inverse[dup]], dup], axis=1)]).astype(np.int64)
    return edges, nb, min(k, max(m - 1, 1))


def h0_persistence(x, *, method: str = "auto", k: int = 10, exact_max: int = 1024, graph=None) -> H0Persistence:
    """All ``n − 1`` finite H0 deaths of the Rips filtration of ``x``: the Euclidean MST edge lengths.

    ``deaths = sorted(‖x_i − x_j‖ for (i, j) in MST(x))``; births are 0, so the total
    persistence is ``Σ deaths``. ``x (n, d)`` → ``deaths (n − 1,)`` (empty for ``n = 1``).
    ``method``: "exact" (complete graph), "knn" (kNN graph made connected, see the module
    docstring), "auto" (exact for ``n ≤ exact_max``). ``graph``: an optional precomputed
    :class:`workbench.graph.Graph` kNN graph of ``x`` for the kNN method (its edges are used
    as they are). Paper: Edelsbrunner, Letscher & Zomorodian, *Topological Persistence and
    Simplification*, 2002.
    """
    a = points(x, "x")
    if method not in _METHODS:
        raise ConfigurationError(f"method: expected one of {_METHODS}, got {method!r}")
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigurationError(f"k: expected an integer >= 1, got {k!r}")
    if isinstance(exact_max, (bool, np.bool_)) or not isinstance(exact_max, (int, np.integer)) or exact_max < 1:
        raise ConfigurationError(f"exact_max: expected an integer >= 1, got {exact_max!r}")
    n = a.shape[0]
    if n == 1:
        return H0Persistence(np.zeros(0), np.zeros((0, 2), np.int64), "exact")
    a64 = a.astype(np.float64, copy=False)
    use_exact = method == "exact" or (method == "auto" and n <= exact_max and graph is None)
    if use_exact:
        edges, kk, nb = _exact(a64), None, 0
    elif graph is not None:
        edges, nb = _knn(a64, int(k), graph)
        kk = None
    else:
        edges, nb, kk = _knn_unique(a64, int(k))
    lengths = _lengths(a64, edges)
    order = np.argsort(lengths, kind="stable")
    return H0Persistence(lengths[order], edges[order], "exact" if use_exact else "knn", kk, nb)
