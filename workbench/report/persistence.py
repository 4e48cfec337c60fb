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
  for every component but the largest, its exact shortest edge to another component: the nearest
  outside neighbour its members' lists hold, then a search (BLAS by blocks, never ``n × n``) of
  only those members whose kNN radius is shorter than that edge — an exact kNN list that lies
  inside the component proves nothing outside is nearer than its radius. Every bridge is a complete-graph MST edge (cut property), and the
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
    step = max(1, (1 << 22) // a.shape[1])  # by blocks of rows: a memory-mapped file is streamed, not copied
    for i0 in range(0, a.shape[0], step):
        block = np.asarray(a[i0:i0 + step])
        if not np.isfinite(block).all():
            r, c = (int(i) for i in np.argwhere(~np.isfinite(block))[0])
            raise NumericalError(f"{name}: expected finite values, got {block[r, c]} at index {(i0 + r, c)}")
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


class _Outside:
    """Per point, what is known of its nearest point outside its own component, kept across Borůvka rounds.

    ``cand[i]``, ``cand_d2[i]``: the nearest point outside the component ``i`` had when it was last
    searched (-1 if never); ``lb[i]``: a lower bound on the squared distance from ``i`` to any point
    outside its current component. Components only grow, so a candidate that is still outside is
    still the nearest outside, and the distance to an old candidate stays a lower bound.
    """

    def __init__(self, n: int, lists, kth):
        self.lists = lists
        self.cand = np.full(n, -1, np.int64)
        self.cand_d2 = np.full(n, np.inf)
        self.lb = kth ** 2  # an exact kNN list inside the component: nothing outside is nearer than its radius

    def bridges(self, a, sq, comp, ncomp, block=1024) -> list:
        """One Borůvka round: for every component but the largest, its exact shortest edge to another one.

        Each component's candidates: its members' still-valid nearest outside points and the first
        outside point of their (distance-sorted) neighbour lists. Only members without a valid
        candidate whose lower bound is below the component's best candidate are searched against
        every point (blocked BLAS, never ``n × n``).
        """
        sizes = np.bincount(comp, minlength=ncomp)
        largest = int(np.argmax(sizes))
        best = np.full(ncomp, np.inf)
        pair = np.full((ncomp, 2), -1, np.int64)

        def offer(i, j, d2):
            # per component, the smallest offered squared length (ties: the first offered)
            c = comp[i]
            order = np.lexsort((d2, c))
            c, i, j, d2 = c[order], i[order], j[order], d2[order]
            first = np.ones(c.size, bool)
            first[1:] = c[1:] != c[:-1]
            c, i, j, d2 = c[first], i[first], j[first], d2[first]
            better = d2 < best[c]
            best[c[better]] = d2[better]
            pair[c[better]] = np.stack([i[better], j[better]], axis=1)

        active = comp != largest
        has = self.cand >= 0
        valid = has & (comp[np.maximum(self.cand, 0)] != comp) & active
        stale = has & ~valid
        self.lb[stale] = np.maximum(self.lb[stale], self.cand_d2[stale])
        self.cand[stale] = -1
        if valid.any():
            rows = np.flatnonzero(valid)
            offer(rows, self.cand[rows], self.cand_d2[rows])
        if self.lists is not None:
            ok = self.lists >= 0
            out = ok & (comp[np.where(ok, self.lists, 0)] != comp[:, None])
            hit = out.any(axis=1) & active
            if hit.any():
                rows = np.flatnonzero(hit)
                j = self.lists[rows, np.argmax(out[rows], axis=1)]  # sorted lists: the first outside is nearest
                diff = a[rows] - a[j]
                offer(rows, j, np.einsum("ij,ij->i", diff, diff))
        search = np.flatnonzero(active & ~valid & (self.lb < best[comp]))
        if search.size:
            a32 = self.a32 if getattr(self, "a32", None) is not None else a.astype(np.float32)
            self.a32 = a32
            norm = np.sqrt(sq)
            # float32 Gram distances are off by at most about d·u·(‖a_i‖ + ‖a_j‖)² (u = 2⁻²⁴, with
            # margin): every point within that of a row's float32 minimum is re-ranked in float64
            slack = 4.0 * a.shape[1] * 2.0 ** -24
        for i0 in range(0, search.size, block):
            m = search[i0:i0 + block]
            d2 = sq[m, None].astype(np.float32) + sq[None, :].astype(np.float32) - 2.0 * (a32[m] @ a32.T)
            d2[comp[m][:, None] == comp[None, :]] = np.inf
            tol = slack * (norm[m] + norm.max()) ** 2
            r, c = np.nonzero(d2 <= (d2.min(axis=1) + tol)[:, None])
            diff = a[m[r]] - a[c]
            dr = np.einsum("ij,ij->i", diff, diff)
            order = np.lexsort((c, dr, r))  # per row: the exact minimum, ties to the smaller index
            r, c, dr = r[order], c[order], dr[order]
            first = np.ones(r.size, bool)
            first[1:] = r[1:] != r[:-1]
            j, exact = c[first], dr[first]
            self.cand[m], self.cand_d2[m] = j, exact
            self.lb[m] = np.maximum(self.lb[m], exact)
            offer(m, j, exact)
        keep = np.flatnonzero(np.isfinite(best))
        return [(int(p[0]), int(p[1])) for p in pair[keep]]


def _lists(n: int, rows: np.ndarray, cols: np.ndarray, known) -> tuple:
    """Each point's neighbour list (``cols`` of its edges sorted by length, -1 pads) and the longest length."""
    if known is None or rows.size == 0:
        return None, np.zeros(n)
    order = np.lexsort((known, rows))
    r, c, d = rows[order], cols[order], known[order]
    cnt = np.bincount(r, minlength=n)
    width = int(cnt.max())
    start = np.concatenate([[0], np.cumsum(cnt)[:-1]])
    pos = np.arange(r.size) - start[r]
    lists = np.full((n, width), -1, np.int64)
    lists[r, pos] = c
    kth = np.zeros(n)
    np.maximum.at(kth, r, d)
    return lists, kth


def _knn(a: np.ndarray, k: int, graph=None, exact_lists: bool = True) -> tuple[np.ndarray, int]:
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
    a64 = a.astype(np.float64, copy=False)
    sq = np.einsum("ij,ij->i", a64, a64)
    # neighbour lists per point (edge j → i: j is a neighbour of i); a point's kNN radius bounds
    # how near an outside point can be only when its list holds its exact nearest neighbours
    lists, kth = _lists(n, cols, rows, known)
    if not exact_lists:
        kth = np.zeros(n)  # no radius to trust: every member of a component is searched
    outside = _Outside(n, lists, kth)
    bridges: list = []
    while True:
        er = np.concatenate([rows, np.array([b[0] for b in bridges], np.int64)])
        ec = np.concatenate([cols, np.array([b[1] for b in bridges], np.int64)])
        adj = coo_matrix((np.ones(er.size), (er, ec)), shape=(n, n))
        ncomp, comp = connected_components(adj, directed=False)
        if ncomp == 1:
            break
        found = outside.bridges(a64, sq, comp, ncomp)
        if not found:  # cannot happen for finite points (every component but one has an outside point)
            raise NumericalError(f"x: could not connect {ncomp} components of the kNN graph")
        bridges += found
    er = np.concatenate([rows, np.array([b[0] for b in bridges], np.int64)])
    ec = np.concatenate([cols, np.array([b[1] for b in bridges], np.int64)])
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


def h0_persistence(x, *, method: str = "auto", k: int = 10, exact_max: int = 1024, graph=None,
                   graph_exact: bool = True) -> H0Persistence:
    """All ``n − 1`` finite H0 deaths of the Rips filtration of ``x``: the Euclidean MST edge lengths.

    ``deaths = sorted(‖x_i − x_j‖ for (i, j) in MST(x))``; births are 0, so the total
    persistence is ``Σ deaths``. ``x (n, d)`` → ``deaths (n − 1,)`` (empty for ``n = 1``).
    ``method``: "exact" (complete graph), "knn" (kNN graph made connected, see the module
    docstring), "auto" (exact for ``n ≤ exact_max``). ``graph``: an optional precomputed
    :class:`workbench.graph.Graph` kNN graph of ``x`` for the kNN method (its edges are used
    as they are; ``graph_exact=False`` says its lists are approximate, e.g.
    :func:`workbench.graph.ann_knn_graph`, so the bridging searches every member of a component
    instead of trusting each point's kNN radius). Paper: Edelsbrunner, Letscher & Zomorodian, *Topological Persistence and
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
        edges, nb = _knn(a64, int(k), graph, exact_lists=bool(graph_exact))
        kk = None
    else:
        edges, nb, kk = _knn_unique(a64, int(k))
    lengths = _lengths(a64, edges)
    order = np.argsort(lengths, kind="stable")
    return H0Persistence(lengths[order], edges[order], "exact" if use_exact else "knn", kk, nb)
