"""Edge-featured GAT: the edge-list computation against a dense masked-softmax formulation written
out here, heads, concat/mean, self-loops, isolated nodes, the upstream GAT v1 formula, propagate."""
from __future__ import annotations

import numpy as np
import pytest

import workbench
from workbench.errors import ConfigurationError, DataError, ShapeError
from workbench.graph import Graph

TOL = {np.float32: 2e-5, np.float64: 1e-10}


def leaky(x, s):
    return np.where(x >= 0, x, s * x)


def dense_gat(q, k, v, allowed, eps, P, variant, slope, concat):
    """One batch item, float64: per head the scores of every pair, softmax over allowed keys only."""
    q, k, v, eps = (np.asarray(a, np.float64) for a in (q, k, v, eps))
    H, C = P["a"].shape
    heads = []
    for h in range(H):
        zq, zk, zv = q @ P["W_q"][h].T, k @ P["W"][h].T, v @ P["W_v"][h].T
        ze = eps @ P["W_e"][h].T  # (Lq, Lk, C)
        if variant == "gatv2":
            S = leaky(zq[:, None, :] + zk[None, :, :] + ze, slope) @ P["a"][h]
        else:
            S = leaky((zq @ P["a_q"][h])[:, None] + (zk @ P["a_k"][h])[None, :] + ze @ P["a_e"][h], slope)
        out = np.zeros((len(q), zv.shape[1]))
        for i in range(len(q)):
            js = np.flatnonzero(allowed[i])
            if len(js):
                e = np.exp(S[i, js] - S[i, js].max())
                out[i] = (e / e.sum()) @ zv[js]
        heads.append(out)
    return np.concatenate(heads, axis=1) if concat else np.mean(heads, axis=0)


def small_graph(rng, n=7, E=14, de=3, self_loop=False):
    src = rng.integers(0, n, E)
    dst = rng.integers(0, n, E)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    pairs = sorted(set(zip(src.tolist(), dst.tolist())))  # a simple graph, so the dense tensor is exact
    ei = np.array(pairs).T
    if self_loop:
        ei = np.concatenate([ei, [[0], [0]]], axis=1)
    return Graph(n, ei, edge_attr=rng.standard_normal((ei.shape[1], de)) if de else None)


def dense_edges(g, add_self_loops):
    """Allowed (N, N) and dense edge features (N, N, De), self-loops as PyG (features: mean incoming)."""
    n, de = g.num_nodes, g.edge_dim
    allowed = np.zeros((n, n), bool)
    eps = np.zeros((n, n, de))
    for e, (j, i) in enumerate(g.edge_index.T):
        if add_self_loops and i == j:
            continue
        allowed[i, j] = True
        if de:
            eps[i, j] = g.edge_attr[e]
    if add_self_loops:
        for i in range(n):
            allowed[i, i] = True
            inc = [e for e, (j, d) in enumerate(g.edge_index.T) if d == i and j != i]
            if de and inc:
                eps[i, i] = g.edge_attr[inc].mean(0)
    return allowed, eps


@pytest.mark.parametrize("variant", ["gatv2", "gatv1"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("heads, concat", [(1, True), (2, True), (2, False)])
@pytest.mark.parametrize("add_self_loops", [True, False])
def test_graph_call_equals_dense_formulation(backend, variant, dtype, heads, concat, add_self_loops):
    rng = np.random.default_rng(11)
    g = small_graph(rng, self_loop=True)
    n, d, dv = g.num_nodes, 6, 4
    q, k = rng.standard_normal((2, 2, n, d)).astype(dtype)
    v = rng.standard_normal((2, n, dv)).astype(dtype)
    m = workbench.make("edge_featured", variant=variant, num_heads=heads, concat=concat,
                       add_self_loops=add_self_loops, negative_slope=0.15, seed=4, backend=backend)
    out = m(q, k, v, graph=g)
    P = m.parameters(d, dv, g.edge_dim)
    allowed, eps = dense_edges(g, add_self_loops)
    for b in range(2):
        want = dense_gat(q[b], k[b], v[b], allowed, eps, P, variant, 0.15, concat)
        assert out.dtype == dtype and out[b].shape == want.shape
        np.testing.assert_allclose(out[b], want, atol=TOL[dtype] * 10, rtol=TOL[dtype] * 10)
    w = m.weights(q, k, graph=g)
    assert (w[:, ~allowed] == 0).all()
    rows = allowed.any(1)
    np.testing.assert_allclose(w.sum(-1)[:, rows], 1.0, rtol=1e-5)


@pytest.mark.parametrize("variant", ["gatv2", "gatv1"])
def test_dense_call_with_mask_equals_formulation(backend, variant):
    """Without a graph: every allowed pair, zero edge features, Lq != Lk allowed."""
    rng = np.random.default_rng(2)
    q, k, v = rng.standard_normal((5, 8)), rng.standard_normal((9, 8)), rng.standard_normal((9, 6))
    mask = rng.random((5, 9)) < 0.6
    mask[3] = False
    m = workbench.make("edge_featured", variant=variant, num_heads=3, seed=1, backend=backend)
    P = m.parameters(8, 6, 0)
    want = dense_gat(q, k, v, mask, np.zeros((5, 9, 0)), P, variant, 0.2, True)
    out = m(q, k, v, mask=mask)
    np.testing.assert_allclose(out, want, atol=1e-10)
    assert (out[3] == 0).all()


def test_upstream_gatv1_single_query_formula():
    """Upstream compute(q, K, V): zero edge features, one query, e_j = LeakyReLU(a_srcᵀWq + a_dstᵀWk_j)."""
    rng = np.random.default_rng(0)
    d, n, H = 8, 10, 4
    q, K = rng.standard_normal(d), rng.standard_normal((n, d))
    m = workbench.make("edge_featured", variant="gatv1", num_heads=H, backend="numpy", edge_dim=5)
    P = m.parameters(d, d, 5)
    out = m(q, K, K)  # values use the node projection (dv == d)
    parts = []
    for h in range(H):
        Wq = P["W"][h] @ q
        edge = P["a_e"][h] @ (P["W_e"][h] @ np.zeros(5))
        s = [float(leaky(P["a_q"][h] @ Wq + P["a_k"][h] @ (P["W"][h] @ K[j]) + edge, 0.2)) for j in range(n)]
        a = np.exp(np.array(s) - max(s))
        a /= a.sum()
        parts.append(sum(a[j] * (P["W"][h] @ K[j]) for j in range(n)))
    np.testing.assert_allclose(out, np.concatenate(parts), atol=1e-12)
    assert out.shape == (d,)


def test_concat_vs_mean(backend):
    rng = np.random.default_rng(3)
    g = small_graph(rng)
    x = rng.standard_normal((g.num_nodes, 8))
    cat = workbench.make("edge_featured", num_heads=4, head_dim=3, backend=backend).propagate(x, g)
    mean = workbench.make("edge_featured", num_heads=4, head_dim=3, concat=False, backend=backend).propagate(x, g)
    assert cat.shape == (g.num_nodes, 12) and mean.shape == (g.num_nodes, 3)
    np.testing.assert_allclose(mean, cat.reshape(-1, 4, 3).mean(1), atol=1e-12)


def test_heads_are_independent_single_heads(backend):
    """Head h of an H-head layer equals a one-head layer with head h's weights (via the dense form)."""
    rng = np.random.default_rng(4)
    g = small_graph(rng, de=2)
    x = rng.standard_normal((g.num_nodes, 6))
    m = workbench.make("edge_featured", num_heads=3, head_dim=2, backend=backend, seed=9)
    out = m.propagate(x, g)
    P = m.parameters(6, 6, 2)
    allowed, eps = dense_edges(g, True)
    for h in range(3):
        Ph = {name: arr[h:h + 1] for name, arr in P.items()}
        np.testing.assert_allclose(out[:, 2 * h:2 * h + 2], dense_gat(x, x, x, allowed, eps, Ph, "gatv2", 0.2, True),
                                   atol=1e-10)


def test_isolated_nodes_get_zero_without_self_loops(backend):
    g = Graph(5, [[0, 1, 2], [1, 2, 1]], edge_attr=np.ones((3, 2)))  # nodes 0, 3, 4 receive nothing
    x = np.random.default_rng(0).standard_normal((5, 4))
    m = workbench.make("edge_featured", num_heads=2, add_self_loops=False, backend=backend)
    out, (ei, alpha) = m.propagate(x, g, return_attention_weights=True)
    assert np.isfinite(out).all()
    assert (out[[0, 3, 4]] == 0).all() and (out[[1, 2]] != 0).any()
    np.testing.assert_array_equal(ei, [[0, 2, 1], [1, 1, 2]])
    np.testing.assert_allclose(alpha[:2].sum(0), 1.0)
    np.testing.assert_allclose(alpha[2], 1.0)
    w = m.weights(x, x, graph=g)
    assert (w[[0, 3, 4]] == 0).all()


def test_self_loops_replace_existing_ones(backend):
    rng = np.random.default_rng(5)
    g = small_graph(rng, de=0)
    with_loop = Graph(g.num_nodes, np.concatenate([g.edge_index, [[2, 2], [2, 2]]], axis=1))
    x = rng.standard_normal((g.num_nodes, 4))
    m = workbench.make("edge_featured", num_heads=1, backend=backend)
    np.testing.assert_allclose(m.propagate(x, with_loop), m.propagate(x, g), atol=1e-12)
    w = m.weights(x, x, graph=g)
    assert (np.diag(w) > 0).all()


def test_propagate_formats_agree(backend):
    rng = np.random.default_rng(6)
    g = small_graph(rng, de=1)
    x = rng.standard_normal((g.num_nodes, 4)).astype(np.float32)
    m = workbench.make("edge_featured", num_heads=2, backend=backend)
    a = m.propagate(x, g)
    b = m.propagate(x, np.array(g.edge_index), np.array(g.edge_attr[:, 0]))  # 1-D edge_attr
    c = m(x, x, x, graph=g)
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(a, c, atol=1e-6)


def test_mask_is_anded_with_graph(backend):
    rng = np.random.default_rng(7)
    g = small_graph(rng, de=2)
    n = g.num_nodes
    x = rng.standard_normal((n, 4))
    mask = rng.random((n, n)) < 0.5
    np.fill_diagonal(mask, True)
    m = workbench.make("edge_featured", num_heads=2, backend=backend)
    keep = mask[g.dst, g.src]
    g2 = Graph(n, g.edge_index[:, keep], edge_attr=g.edge_attr[keep])
    # self-loop features are the mean over the *graph's* incoming edges; compare without edge features there
    m0 = workbench.make("edge_featured", num_heads=2, add_self_loops=False, backend=backend)
    np.testing.assert_allclose(m0(x, x, x, mask=mask, graph=g), m0.propagate(x, g2), atol=1e-12)
    assert np.isfinite(m(x, x, x, mask=mask, graph=g)).all()


def test_node_permutation_equivariance(backend):
    rng = np.random.default_rng(8)
    g = small_graph(rng, de=2)
    n = g.num_nodes
    x = rng.standard_normal((n, 4))
    perm = rng.permutation(n)
    inv = np.argsort(perm)
    gp = Graph(n, inv[g.edge_index], edge_attr=g.edge_attr)  # node perm[i] becomes node i
    m = workbench.make("edge_featured", num_heads=2, backend=backend)
    np.testing.assert_allclose(m.propagate(x[perm], gp), m.propagate(x, g)[perm], atol=1e-12)


def test_seeded():
    x = np.random.default_rng(0).standard_normal((6, 4))
    a = workbench.make("edge_featured", seed=1)(x, x, x)
    np.testing.assert_array_equal(a, workbench.make("edge_featured", seed=1)(x, x, x))
    assert not np.allclose(a, workbench.make("edge_featured", seed=2)(x, x, x))


def test_errors():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4))
    g = Graph(6, [[0], [1]], edge_attr=[[1.0, 2.0]])
    m = workbench.make("edge_featured", num_heads=2)
    with pytest.raises(ShapeError, match=r"q, k"):
        m(x, x, x, graph=g)
    with pytest.raises(DataError, match="graph"):
        m(x, x, x, graph=np.zeros((2, 3), int))
    g5 = Graph(5, [[0], [1]], edge_attr=[[1.0, 2.0]])
    with pytest.raises(ShapeError, match="edge_attr"):
        workbench.make("edge_featured", num_heads=2, edge_dim=3).propagate(x, g5)
    with pytest.raises(ConfigurationError, match="num_heads"):
        workbench.make("edge_featured", num_heads=3)(x, x, x)
    with pytest.raises(ConfigurationError, match="variant"):
        workbench.make("edge_featured", variant="gat3")
    with pytest.raises(ConfigurationError, match="negative_slope"):
        workbench.make("edge_featured", negative_slope=-1.0)
    with pytest.raises(ShapeError, match="x"):
        m.propagate(x[0], [[0], [1]])
    info = workbench.registry["edge_featured"]
    assert info.needs_graph and info.family == "graph"
