"""Graph record validation, dense masks and hop distances, exact kNN and HNSW (hnswlib) builders."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests._helpers import bfs_hops
from workbench.errors import DataError, ShapeError
from workbench.graph import Graph, hnsw_graph, knn_graph


# --- the record ------------------------------------------------------------------------------

def test_graph_normalises_and_freezes():
    g = Graph(3, [[0, 1], [1, 2]], edge_attr=[1.0, 2.0], layer=[0, 1, 0], distance=[0.5, 1.5])
    assert g.edge_index.dtype == np.int64 and g.edge_attr.shape == (2, 1) and g.num_edges == 2
    assert g.edge_dim == 1 and g.layer.dtype == np.int64
    with pytest.raises(ValueError):
        g.edge_index[0, 0] = 2  # read-only
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.num_nodes = 4  # frozen
    np.testing.assert_array_equal(g.in_degree(), [0, 1, 1])
    h = g.replace(edge_attr=None)
    assert h.edge_attr is None and g.edge_attr is not None


@pytest.mark.parametrize(
    "kwargs, cls, arg",
    [
        (dict(num_nodes=-1, edge_index=np.zeros((2, 0), int)), DataError, "num_nodes"),
        (dict(num_nodes=2.5, edge_index=np.zeros((2, 0), int)), DataError, "num_nodes"),
        (dict(num_nodes=3, edge_index=np.zeros((3, 2), int)), ShapeError, "edge_index"),
        (dict(num_nodes=3, edge_index=np.zeros(4, int)), ShapeError, "edge_index"),
        (dict(num_nodes=3, edge_index=[[0, 3], [1, 1]]), DataError, "edge_index"),
        (dict(num_nodes=3, edge_index=[[0, -1], [1, 1]]), DataError, "edge_index"),
        (dict(num_nodes=3, edge_index=[[0.0, 1.0], [1.0, 2.0]]), DataError, "edge_index"),
        (dict(num_nodes=3, edge_index=[[0, 1], [1, 2]], edge_attr=np.zeros((3, 2))), ShapeError, "edge_attr"),
        (dict(num_nodes=3, edge_index=[[0, 1], [1, 2]], edge_attr=[[np.nan], [1.0]]), DataError, "edge_attr"),
        (dict(num_nodes=3, edge_index=[[0, 1], [1, 2]], layer=[0, 1]), ShapeError, "layer"),
        (dict(num_nodes=3, edge_index=[[0, 1], [1, 2]], layer=[0, -1, 0]), DataError, "layer"),
        (dict(num_nodes=3, edge_index=[[0, 1], [1, 2]], layer=[0.5, 1, 0]), DataError, "layer"),
        (dict(num_nodes=3, edge_index=[[0, 1], [1, 2]], distance=[1.0]), ShapeError, "distance"),
        (dict(num_nodes=3, edge_index=[[0, 1], [1, 2]], distance=[1.0, -2.0]), DataError, "distance"),
    ],
)
def test_graph_validation(kwargs, cls, arg):
    with pytest.raises(cls) as e:
        Graph(**kwargs)
    assert arg in str(e.value)


def test_to_mask():
    g = Graph(4, [[0, 2, 3, 1], [1, 1, 0, 3]])
    m = g.to_mask()
    want = np.zeros((4, 4), bool)
    for j, i in [(0, 1), (2, 1), (3, 0), (1, 3)]:
        want[i, j] = True  # i may attend j
    np.testing.assert_array_equal(m, want)
    np.testing.assert_array_equal(g.to_mask(num_queries=2), want[:2])
    with pytest.raises(ShapeError):
        g.to_mask(num_queries=5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hop_distances_equal_bfs(seed):
    rng = np.random.default_rng(seed)
    n, E = 15, 25
    ei = rng.integers(0, n, (2, E))
    g = Graph(n, ei)
    np.testing.assert_array_equal(g.hop_distances, bfs_hops(n, ei.T.tolist()))


# --- kNN -------------------------------------------------------------------------------------

def brute_knn(x, k, metric, self_loops):
    x = x.astype(np.float64)
    n = len(x)
    out_src, out_d = [], []
    for i in range(n):
        if metric == "euclidean":
            d = np.sqrt(((x - x[i]) ** 2).sum(1))
        else:
            u = x / np.linalg.norm(x, axis=1, keepdims=True)
            d = 1.0 - u @ u[i]
        cand = [j for j in range(n) if self_loops or j != i]
        cand.sort(key=lambda j: (0.0 if j == i else d[j], j))
        out_src.append(cand[:k])
        out_d.append([0.0 if j == i else d[j] for j in cand[:k]])
    return np.array(out_src), np.array(out_d)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("self_loops", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_knn_equals_brute_force(backend, metric, self_loops, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((60, 5)).astype(dtype)
    k = 6
    g = knn_graph(x, k, metric=metric, self_loops=self_loops, block_size=17, backend=backend)  # several blocks
    src, dist = brute_knn(x, k, metric, self_loops)
    np.testing.assert_array_equal(g.dst, np.repeat(np.arange(60), k))
    np.testing.assert_array_equal(g.src.reshape(60, k), src)
    np.testing.assert_allclose(g.distance.reshape(60, k), dist, atol=1e-6)
    assert g.edge_attr is None and g.layer is None


def test_knn_ties_broken_by_index(backend):
    x = np.array([[0.0], [1.0], [-1.0], [2.0], [-2.0], [1.0]])
    g = knn_graph(x, 2, backend=backend)
    # node 0: neighbours at distance 1 are 1, 2, 5 (ties) -> the two smallest indices
    np.testing.assert_array_equal(g.src[:2], [1, 2])
    g2 = knn_graph(np.zeros((5, 2)), 2, backend=backend)
    np.testing.assert_array_equal(g2.src.reshape(5, 2), [[1, 2], [0, 2], [0, 1], [0, 1], [0, 1]])
    g3 = knn_graph(np.zeros((4, 2)), 4, self_loops=True, backend=backend)
    np.testing.assert_array_equal(g3.src.reshape(4, 4), [[0, 1, 2, 3], [1, 0, 2, 3], [2, 0, 1, 3], [3, 0, 1, 2]])
    np.testing.assert_array_equal(g3.distance, 0.0)


@pytest.mark.parametrize("k", [1, 5, 29])
def test_knn_backends_agree_on_grid_ties(k):
    """Integer grid points: many exactly equal distances; both kernels break ties identically."""
    x = np.stack(np.meshgrid(np.arange(5), np.arange(6)), -1).reshape(-1, 2).astype(float)
    a, b = knn_graph(x, k, backend="numpy"), knn_graph(x, k, backend="numba", block_size=7)
    np.testing.assert_array_equal(a.edge_index, b.edge_index)
    np.testing.assert_allclose(a.distance, b.distance)


def test_knn_cupy_backend_is_configuration_error():
    from workbench.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="backend"):
        knn_graph(np.zeros((5, 2)), 2, backend="cupy")


@pytest.mark.parametrize(
    "kwargs, cls, arg",
    [(dict(k=0), DataError, "k"), (dict(k=10), DataError, "k"), (dict(k=2, metric="manhattan"), DataError, "metric")],
)
def test_knn_errors(kwargs, cls, arg):
    with pytest.raises(cls) as e:
        knn_graph(np.zeros((10, 2)), **kwargs)
    assert arg in str(e.value)
    with pytest.raises(ShapeError):
        knn_graph(np.zeros(10), 2)
    with pytest.raises(DataError):
        knn_graph(np.full((10, 2), np.nan), 2)


# --- HNSW ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def points():
    return np.random.default_rng(7).standard_normal((1500, 12)).astype(np.float32)


@pytest.fixture(scope="module")
def hnsw(points):
    return hnsw_graph(points, M=8, ef_construction=100, seed=3)


def test_hnsw_structure(points, hnsw):
    g = hnsw
    n = len(points)
    assert g.num_nodes == n and g.layer.shape == (n,) and g.distance.shape == (g.num_edges,)
    assert (g.src != g.dst).all()
    deg = np.bincount(g.dst, minlength=n)
    assert deg.max() <= 2 * 8 and deg.min() >= 1  # layer-0 lists hold at most 2M links
    # no duplicate links per node
    assert len(np.unique(g.dst * n + g.src)) == g.num_edges
    np.testing.assert_allclose(g.distance, np.linalg.norm(points[g.src] - points[g.dst], axis=1), rtol=1e-5)


def test_hnsw_layers_are_geometric(hnsw):
    """HNSW draws level ⌊−ln U · 1/ln M⌋: P(level ≥ l) = M^−l; the real levels follow it."""
    n, M = hnsw.num_nodes, 8
    for lvl in (1, 2):
        p = M ** -lvl
        count = (hnsw.layer >= lvl).sum()
        assert abs(count - n * p) < 5 * np.sqrt(n * p * (1 - p)) + 1
    assert hnsw.layer.max() >= 1


def test_hnsw_links_are_near_neighbours(points, hnsw):
    """Layer-0 links are chosen among close points (the diversity heuristic prunes some): nearly
    every node links its nearest neighbour and most of its exact 4-NN (random links: ~1 %)."""
    linked = set(zip(hnsw.src.tolist(), hnsw.dst.tolist()))

    def recall(k):
        exact = knn_graph(points, k)
        return np.mean([(j, i) in linked for j, i in zip(exact.src.tolist(), exact.dst.tolist())])

    assert recall(1) > 0.9
    assert recall(4) > 0.6


def test_hnsw_is_reproducible(points, hnsw):
    g2 = hnsw_graph(points, M=8, ef_construction=100, seed=3)
    np.testing.assert_array_equal(g2.edge_index, hnsw.edge_index)
    np.testing.assert_array_equal(g2.layer, hnsw.layer)


def test_hnsw_cosine_and_errors(points):
    g = hnsw_graph(points[:300], M=4, metric="cosine")
    u = points[:300] / np.linalg.norm(points[:300], axis=1, keepdims=True)
    np.testing.assert_allclose(g.distance, 1 - (u[g.src] * u[g.dst]).sum(1), atol=1e-5)
    for kwargs, arg in [(dict(M=1), "M"), (dict(metric="ip"), "metric"), (dict(ef_construction=0), "ef_construction")]:
        with pytest.raises(DataError) as e:
            hnsw_graph(points[:50], **kwargs)
        assert arg in str(e.value)


# -- ann_knn_graph: knn_graph's layout from an HNSW index ------------------------------------------


def _clustered(rng, n=3000, d=24, centres=30):
    c = rng.standard_normal((centres, d)) * 3
    return (c[rng.integers(0, centres, n)] + rng.standard_normal((n, d))).astype(np.float32)


def test_ann_knn_graph_has_knn_graphs_layout_and_finds_most_neighbours(rng):
    from workbench.graph import ann_knn_graph

    x = _clustered(rng)
    g, exact = ann_knn_graph(x, 10, seed=1), knn_graph(x, 10)
    n = len(x)
    assert g.num_nodes == n and g.num_edges == 10 * n
    np.testing.assert_array_equal(g.dst, np.repeat(np.arange(n), 10))
    src = np.asarray(g.src).reshape(n, 10)
    assert not np.any(src == np.arange(n)[:, None])  # no self-loops
    dist = np.asarray(g.distance).reshape(n, 10)
    assert np.all(np.diff(dist, axis=1) >= 0)  # sorted per node
    np.testing.assert_allclose(dist, np.linalg.norm(x[src].astype(np.float64) - x[:, None].astype(np.float64),
                                                    axis=2), rtol=1e-12)
    want = np.asarray(exact.src).reshape(n, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(src, want)])
    assert recall > 0.9


def test_ann_knn_graph_with_duplicates_never_lists_a_point_as_its_own_neighbour(rng):
    from workbench.graph import ann_knn_graph

    x = np.repeat(_clustered(rng, 200, 6, 5), 3, axis=0)
    src = np.asarray(ann_knn_graph(x, 4).src).reshape(len(x), 4)
    assert not np.any(src == np.arange(len(x))[:, None])
    assert np.all([len(set(r)) == 4 for r in src])


@pytest.mark.parametrize("kw, name", [({"k": 0}, "k"), ({"k": 50}, "k"), ({"M": 1}, "M"), ({"ef": 0}, "ef"),
                                      ({"seed": -1}, "seed")])
def test_ann_knn_graph_names_bad_arguments(rng, kw, name):
    from workbench.errors import DataError
    from workbench.graph import ann_knn_graph

    args = {"k": 3, **kw}
    with pytest.raises(DataError, match=name):
        ann_knn_graph(rng.standard_normal((50, 4)), **args)
