"""Graph inputs: the :class:`Graph` record (PyG conventions) and exact kNN / HNSW graph builders.

``edge_index`` is an int64 ``(2, E)`` array, row 0 the source ``j``, row 1 the destination ``i``:
edge ``j → i`` means *node i may attend node j* (PyG's ``flow="source_to_target"``). Attention
over a graph is a softmax per destination over its incoming edges.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

import kernels
import kernels.knn
from workbench import checks
from workbench.errors import ConfigurationError, DataError, ShapeError

__all__ = ["Graph", "knn_graph", "ann_knn_graph", "hnsw_graph"]


def _readonly(a):
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Graph:
    """A directed graph on ``num_nodes`` nodes in PyG form, with optional per-edge/per-node data.

    * ``edge_index (2, E)`` int64: ``edge_index[0]`` sources ``j``, ``edge_index[1]`` destinations ``i``;
    * ``edge_attr (E, De)`` float edge features or None (a 1-D ``(E,)`` array becomes ``(E, 1)``);
    * ``layer (N,)`` int ≥ 0 per node (the HNSW level of the node) or None;
    * ``distance (E,)`` float ≥ 0 per edge (the metric distance between its ends) or None.

    Arrays are validated, copied into canonical dtypes and made read-only.
    """

    num_nodes: int
    edge_index: np.ndarray
    edge_attr: np.ndarray | None = None
    layer: np.ndarray | None = None
    distance: np.ndarray | None = None

    def __post_init__(self):
        n = self.num_nodes
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 0:
            raise DataError(f"num_nodes: expected a non-negative integer, got {n!r}")
        object.__setattr__(self, "num_nodes", int(n))
        ei = np.asarray(self.edge_index)
        if ei.ndim != 2 or ei.shape[0] != 2:
            raise ShapeError(f"edge_index: expected shape (2, E), got {ei.shape}")
        if ei.size and not np.issubdtype(ei.dtype, np.integer):
            raise DataError(f"edge_index: expected an integer array, got dtype {ei.dtype}")
        ei = np.array(ei, dtype=np.int64)
        if ei.size and (ei.min() < 0 or ei.max() >= n):
            bad = int(ei.min()) if ei.min() < 0 else int(ei.max())
            raise DataError(f"edge_index: node indices must lie in [0, {n}) (num_nodes={n}), got {bad}")
        object.__setattr__(self, "edge_index", _readonly(ei))
        E = ei.shape[1]
        if self.edge_attr is not None:
            ea = np.asarray(self.edge_attr)
            if ea.ndim == 1:
                ea = ea[:, None]
            if ea.ndim != 2 or ea.shape[0] != E:
                raise ShapeError(f"edge_attr: expected shape (E, De) with E={E} (from edge_index), got {ea.shape}")
            if not (np.issubdtype(ea.dtype, np.floating) or np.issubdtype(ea.dtype, np.integer)):
                raise DataError(f"edge_attr: expected a real array, got dtype {ea.dtype}")
            ea = np.array(ea, dtype=np.float64 if ea.dtype == np.float64 else np.float32)
            if not np.isfinite(ea).all():
                raise DataError("edge_attr: expected finite values, got NaN or infinity")
            object.__setattr__(self, "edge_attr", _readonly(ea))
        if self.layer is not None:
            la = np.asarray(self.layer)
            if la.shape != (n,):
                raise ShapeError(f"layer: expected shape ({n},) (one level per node), got {la.shape}")
            if la.size and not np.issubdtype(la.dtype, np.integer):
                raise DataError(f"layer: expected integer levels, got dtype {la.dtype}")
            la = np.array(la, dtype=np.int64)
            if la.size and la.min() < 0:
                raise DataError(f"layer: expected levels >= 0, got {int(la.min())}")
            object.__setattr__(self, "layer", _readonly(la))
        if self.distance is not None:
            di = np.asarray(self.distance)
            if di.shape != (E,):
                raise ShapeError(f"distance: expected shape ({E},) (one per edge), got {di.shape}")
            di = np.array(di, dtype=np.float64)
            if not np.isfinite(di).all() or (di.size and di.min() < 0):
                raise DataError("distance: expected finite values >= 0")
            object.__setattr__(self, "distance", _readonly(di))

    # -- views ---------------------------------------------------------------------------------
    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])

    @property
    def src(self) -> np.ndarray:
        return self.edge_index[0]

    @property
    def dst(self) -> np.ndarray:
        return self.edge_index[1]

    @property
    def edge_dim(self) -> int:
        return 0 if self.edge_attr is None else int(self.edge_attr.shape[1])

    def replace(self, **changes) -> "Graph":
        """A copy with some fields replaced (validated again): ``g.replace(edge_attr=g.distance)``."""
        return replace(self, **changes)

    def in_degree(self) -> np.ndarray:
        """Number of incoming edges per node, ``(N,)``."""
        return np.bincount(self.dst, minlength=self.num_nodes)

    def to_mask(self, num_queries: int | None = None) -> np.ndarray:
        """Dense boolean ``(num_queries or N, N)``: ``mask[i, j]`` iff an edge ``j → i`` exists.

        For small graphs (N² booleans); queries are nodes ``0..num_queries-1``.
        """
        nq = self.num_nodes if num_queries is None else int(num_queries)
        if not 0 <= nq <= self.num_nodes:
            raise ShapeError(f"num_queries: expected 0 <= num_queries <= num_nodes={self.num_nodes}, got {nq}")
        m = np.zeros((nq, self.num_nodes), dtype=bool)
        keep = self.dst < nq
        m[self.dst[keep], self.src[keep]] = True
        return m

    @cached_property
    def hop_distances(self) -> np.ndarray:
        """``(N, N)`` hop counts by BFS along "attends" (``i → j`` for each edge ``j → i``); −1 if unreachable.

        ``hop_distances[i, i] = 0``. Dense: for graphs small enough for an N×N matrix.
        """
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import shortest_path

        n = self.num_nodes
        a = csr_matrix((np.ones(self.num_edges), (self.dst, self.src)), shape=(n, n))
        d = shortest_path(a, directed=True, unweighted=True)
        out = np.where(np.isfinite(d), d, -1).astype(np.int64)
        return _readonly(out)


# -- builders -----------------------------------------------------------------------------------

def _points(x, name="x") -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 2:
        raise ShapeError(f"{name}: expected shape (N, d), got {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ShapeError(f"{name}: expected at least one point of dimension >= 1, got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise DataError(f"{name}: expected a real array, got dtype {a.dtype}")
    if not np.isfinite(a).all():
        raise DataError(f"{name}: expected finite values, got NaN or infinity")
    return a


_METRICS = ("euclidean", "cosine")


def _unit_rows(a):
    nrm = np.linalg.norm(a, axis=1, keepdims=True)
    return np.divide(a, nrm, out=np.zeros_like(a), where=nrm > 0)


def knn_graph(x, k: int, metric: str = "euclidean", self_loops: bool = False, block_size: int = 128,
              backend: str = "auto") -> Graph:
    """Exact k-nearest-neighbour graph: an edge ``j → i`` for each of the ``k`` nearest ``j`` of ``i``.

    ``x (N, d)``; ``metric`` ``"euclidean"`` (‖x_i − x_j‖) or ``"cosine"`` (1 − cos, the neighbours
    of the unit rows, whose ‖x̂_i − x̂_j‖² = 2(1 − cos)). One kernel, :func:`kernels.knn.knn`: blocks of
    ``block_size`` queries against all points (memory ``O(block_size · N)`` per thread, never
    ``N × N``; fewer queries if a block would exceed 8M distances), exact float64 distances, ties
    broken by the smaller index. ``self_loops=False`` excludes ``i`` from its own neighbours (then
    ``k ≤ N − 1``); with ``self_loops=True`` ``i`` is its own first neighbour (distance 0). Edges
    are sorted by destination, then by distance; ``distance`` holds the metric distance per edge;
    ``edge_attr`` is None (use ``g.replace(edge_attr=g.distance)`` for distance features).
    ``backend``: the kernel's ("auto" = Numba).
    """
    a = _points(x)
    n = a.shape[0]
    if metric not in _METRICS:
        raise DataError(f"metric: expected one of {_METRICS}, got {metric!r}")
    limit = n if self_loops else n - 1
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or not 1 <= k <= limit:
        raise DataError(f"k: expected an integer in [1, {limit}] for N={n} points (self_loops={self_loops}), got {k!r}")
    block_size = checks.integer("block_size", block_size, minimum=1, error=DataError)
    if metric == "cosine":
        a = _unit_rows(a.astype(np.float64))
    block_size = max(1, min(int(block_size), (1 << 23) // n))  # ≤ 8M distances (64 MiB) per block
    try:
        src, d2 = kernels.knn.knn(a, int(k), self_loops=bool(self_loops), block=block_size, backend=backend)
    except kernels.BackendError as exc:
        raise ConfigurationError(f"backend: {exc}") from None
    dist = np.sqrt(d2) if metric == "euclidean" else 0.5 * d2
    edge_index = np.stack([src.reshape(-1), np.repeat(np.arange(n), k)])
    return Graph(n, edge_index, distance=dist.reshape(-1))


def ann_knn_graph(x, k: int, *, M: int = 16, ef: int = 64, seed: int = 0, num_threads: int = 0) -> Graph:
    """Approximate k-nearest-neighbour graph from an HNSW index: :func:`knn_graph`'s format, ``O(n log n · d)``.

    The same layout as :func:`knn_graph` (Euclidean, no self-loops, ``k`` edges ``j → i`` per
    node sorted by distance, exact float64 ``distance`` per edge), but the neighbours are the
    ``k`` nearest that an ``hnswlib`` index (``M`` links, ``ef_construction = ef_search =
    max(ef, k + 1)``) finds for each point, so a few may be missed. ``num_threads=0`` uses every
    core (the order of insertion then varies, so the graph can differ slightly between runs).
    Paper: Malkov & Yashunin, *Efficient and robust approximate nearest neighbor search using
    Hierarchical Navigable Small World graphs*, 2018.
    """
    import os

    import hnswlib

    a = np.ascontiguousarray(_points(x), dtype=np.float32)
    n, dim = a.shape
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n - 1:
        raise DataError(f"k: expected an integer in [1, {n - 1}] for N={n} points, got {k!r}")
    M = checks.integer("M", M, minimum=2, maximum=200, error=DataError)
    ef = max(checks.integer("ef", ef, minimum=1, maximum=10_000, error=DataError), int(k) + 1)
    seed = checks.integer("seed", seed, minimum=0, error=DataError)
    threads = checks.integer("num_threads", num_threads, minimum=0, error=DataError) or (os.cpu_count() or 1)
    index = hnswlib.Index(space="l2", dim=dim)
    index.init_index(max_elements=n, M=M, ef_construction=ef, random_seed=seed)
    index.add_items(a, np.arange(n), num_threads=threads)
    index.set_ef(ef)
    labels, _ = index.knn_query(a, k=int(k) + 1, num_threads=threads)
    labels = labels.astype(np.int64)
    # drop each point itself (usually first; a duplicate may take its place), keep the k nearest others
    own = labels == np.arange(n)[:, None]
    drop = np.where(own.any(axis=1), np.argmax(own, axis=1), int(k))
    keep = np.ones_like(labels, dtype=bool)
    keep[np.arange(n), drop] = False
    src = labels[keep].reshape(n, int(k))
    dist = np.empty((n, int(k)))
    for i0 in range(0, n, 4096):  # exact float64 distances, 4,096 points at a time (bounded memory)
        i1 = min(n, i0 + 4096)
        diff = a[src[i0:i1]].astype(np.float64) - a[i0:i1, None, :]
        dist[i0:i1] = np.sqrt(np.einsum("ikd,ikd->ik", diff, diff))
    order = np.argsort(dist, axis=1, kind="stable")
    src = np.take_along_axis(src, order, axis=1)
    dist = np.take_along_axis(dist, order, axis=1)
    edge_index = np.stack([src.reshape(-1), np.repeat(np.arange(n), int(k))])
    return Graph(n, edge_index, distance=dist.reshape(-1))


def hnsw_graph(x, M: int = 16, ef_construction: int = 200, seed: int = 0, metric: str = "euclidean",
               num_threads: int = 1) -> Graph:
    """The layer-0 graph of an HNSW index built by ``hnswlib`` (Malkov & Yashunin 2018).

    Node ``i`` is point ``x[i]``; each layer-0 link ``i → j`` of the index (``j`` in ``i``'s
    neighbour list, at most ``2M``) becomes an edge ``j → i`` (``i`` attends its neighbours);
    ``layer[i]`` is the node's real HNSW level (top layer it appears in, 0 = only the base layer),
    read from the index's serialised state, as are the link lists; ``distance`` is the metric
    distance per edge. ``num_threads=1`` (the default) makes the build deterministic for a seed.
    Needs the ``hnswlib`` package.
    """
    try:
        import hnswlib
    except ImportError as exc:  # pragma: no cover - hnswlib is a dependency
        raise DataError(f"hnsw_graph needs the hnswlib package ({exc})") from None
    a = np.ascontiguousarray(_points(x), dtype=np.float32)
    n, dim = a.shape
    if metric not in _METRICS:
        raise DataError(f"metric: expected one of {_METRICS}, got {metric!r}")
    for name, val, lo in (("M", M, 2), ("ef_construction", ef_construction, 1), ("seed", seed, 0)):
        if isinstance(val, (bool, np.bool_)) or not isinstance(val, (int, np.integer)) or val < lo:
            raise DataError(f"{name}: expected an integer >= {lo}, got {val!r}")
    index = hnswlib.Index(space="l2" if metric == "euclidean" else "cosine", dim=dim)
    index.init_index(max_elements=n, M=int(M), ef_construction=int(ef_construction), random_seed=int(seed))
    index.add_items(a, np.arange(n), num_threads=int(num_threads))
    state = index.__getstate__()[0]
    count = int(state["cur_element_count"])
    size = int(state["size_data_per_element"])
    raw = np.asarray(state["data_level0"], dtype=np.uint8)[: count * size].reshape(count, size)
    off0, label_off = int(state["offset_level0"]), int(state["label_offset"])
    max_m0 = int(state["max_M0"])
    # per element: uint32 header (low 16 bits = link count), max_M0 uint32 links (internal ids),
    # then the vector, then the size_t label
    header = raw[:, off0:off0 + 4].copy().view(np.uint32)[:, 0] & 0xFFFF
    links = raw[:, off0 + 4:off0 + 4 + 4 * max_m0].copy().view(np.uint32).astype(np.int64)
    labels = raw[:, label_off:label_off + 8].copy().view(np.uint64)[:, 0].astype(np.int64)
    levels_internal = np.asarray(state["element_levels"], dtype=np.int64)[:count]
    valid = np.arange(max_m0)[None, :] < header[:, None].astype(np.int64)
    owner = np.repeat(np.arange(count), valid.sum(axis=1))
    neigh = links[valid]
    dst = labels[owner]
    src = labels[neigh]
    order = np.lexsort((src, dst))
    src, dst = src[order], dst[order]
    layer = np.empty(n, np.int64)
    layer[labels] = levels_internal
    if metric == "euclidean":
        dist = np.linalg.norm(a[src].astype(np.float64) - a[dst], axis=1)
    else:
        u = _unit_rows(a.astype(np.float64))
        dist = np.maximum(1.0 - np.einsum("ij,ij->i", u[src], u[dst]), 0.0)
    return Graph(n, np.stack([src, dst]), layer=layer, distance=dist)
