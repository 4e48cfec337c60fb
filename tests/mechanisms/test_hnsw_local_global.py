"""HNSW local–global attention against its definition, written out here with loops in float64."""
from __future__ import annotations

import math

import numpy as np
import pytest

import workbench
from workbench.errors import ConfigurationError, ShapeError
from workbench.graph import Graph, hnsw_graph

BACKENDS = ("numpy", "numba")
DTYPES = (np.float32, np.float64)
TOL = {np.float32: 2e-5, np.float64: 1e-10}
SEEDS = (0, 1, 2)
N = 12


def graph(seed, n=N):
    """A random directed graph with HNSW-like levels (a few hubs on levels 1 and 2)."""
    rng = np.random.default_rng(seed)
    src, dst = [], []
    for i in range(n):
        for j in rng.choice(n, size=3, replace=False):
            src.append(j)
            dst.append(i)
    layer = np.zeros(n, np.int64)
    layer[rng.choice(n, size=3, replace=False)] = [1, 1, 2]
    return Graph(n, np.array([src, dst]), layer=layer)


def problem(seed, dtype, b=2, n=N, d=6, dv=3):
    rng = np.random.default_rng(seed)
    q, k = (rng.standard_normal((b, n, d)).astype(dtype) for _ in range(2))
    v = rng.standard_normal((b, n, dv)).astype(dtype)
    m = rng.random((b, n, n)) < 0.8
    m[:, 0, :] = False  # nothing allowed
    return q, k, v, m


def sets(g, self_loops=True, global_layer=1):
    local = [set() for _ in range(g.num_nodes)]
    for j, i in g.edge_index.T:
        local[i].add(int(j))
    if self_loops:
        for i in range(g.num_nodes):
            local[i].add(i)
    hubs = {j for j in range(g.num_nodes) if g.layer[j] >= global_layer}
    return local, hubs


def softmax_over(q, k, allowed, s):
    w = np.zeros(len(k))
    idx = [j for j in allowed]
    if not idx:
        return w, False
    sc = {j: s * sum(float(a) * float(c) for a, c in zip(q, k[j])) for j in idx}
    m = max(sc.values())
    z = sum(math.exp(x - m) for x in sc.values())
    for j in idx:
        w[j] = math.exp(sc[j] - m) / z
    return w, True


def expected(q, k, v, m, g, gate, self_loops=True, global_layer=1):
    local, hubs = sets(g, self_loops, global_layer)
    s = 1 / math.sqrt(q.shape[-1])
    W = np.zeros((q.shape[0], g.num_nodes, g.num_nodes))
    for bi in range(q.shape[0]):
        for i in range(g.num_nodes):
            ok = {j for j in range(g.num_nodes) if m is None or m[bi, i, j]}
            wl, hl = softmax_over(q[bi, i], k[bi], sorted(local[i] & ok), s)
            wg, hg = softmax_over(q[bi, i], k[bi], sorted(hubs & ok), s)
            gi = gate[bi, i] if hl and hg else (1.0 if hg else 0.0)
            W[bi, i] = (1 - gi) * wl + gi * wg
    return W, W @ v.astype(np.float64)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("gate", [0.0, 1.0, 0.3])
def test_fixed_gate(backend, dtype, gate):
    """gate 0: attention restricted to layer-0 neighbours; gate 1: to the upper-layer hubs."""
    for seed in SEEDS:
        g = graph(seed)
        q, k, v, m = problem(seed, dtype)
        mech = workbench.make("hnsw_local_global", gate=gate, backend=backend)
        w_exp, o_exp = expected(q, k, v, m, g, np.full((2, N), gate))
        w = mech.weights(q, k, mask=m, graph=g)
        np.testing.assert_allclose(w, w_exp, rtol=0, atol=TOL[dtype])
        out = mech(q, k, v, mask=m, graph=g)
        assert out.dtype == dtype
        np.testing.assert_allclose(out, o_exp, rtol=0, atol=TOL[dtype] * 4)
        assert (w[~m] == 0).all() and (w[:, 0] == 0).all() and (out[:, 0] == 0).all()
        rows = m.any(-1)
        np.testing.assert_allclose(w.sum(-1)[rows], 1.0, rtol=0, atol=TOL[dtype])


def test_gate_zero_and_one_are_the_two_restrictions():
    g = graph(5)
    q, k, v, _ = problem(5, np.float64)
    local, hubs = sets(g)
    adj = np.zeros((N, N), bool)
    for i in range(N):
        adj[i, sorted(local[i])] = True
    hub = np.zeros((N, N), bool)
    hub[:, sorted(hubs)] = True
    sdpa = workbench.make("scaled_dot_product")
    np.testing.assert_allclose(workbench.make("hnsw_local_global", gate=0.0)(q, k, v, graph=g),
                               sdpa(q, k, v, mask=adj), rtol=0, atol=1e-10)
    np.testing.assert_allclose(workbench.make("hnsw_local_global", gate=1)(q, k, v, graph=g),
                               sdpa(q, k, v, mask=hub), rtol=0, atol=1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_learned_gate(dtype):
    for seed in SEEDS:
        g = graph(seed)
        q, k, v, m = problem(seed, dtype)
        mech = workbench.make("hnsw_local_global", gate="learned", seed=seed, add_self_loops=False)
        w = mech.gate_vector(q.shape[-1])
        gate = 1 / (1 + np.exp(-(q.astype(np.float64) @ w) / math.sqrt(q.shape[-1])))
        np.testing.assert_allclose(mech.gates(q), gate, rtol=0, atol=1e-6)
        assert ((gate > 0) & (gate < 1)).all()
        w_exp, o_exp = expected(q, k, v, m, g, gate, self_loops=False)
        np.testing.assert_allclose(mech.weights(q, k, mask=m, graph=g), w_exp, rtol=0, atol=TOL[dtype])
        np.testing.assert_allclose(mech(q, k, v, mask=m, graph=g), o_exp, rtol=0, atol=TOL[dtype] * 4)
    a = workbench.make("hnsw_local_global", gate="learned", seed=1).gate_vector(8)
    np.testing.assert_array_equal(a, workbench.make("hnsw_local_global", gate="learned", seed=1).gate_vector(8))
    assert not np.array_equal(a, workbench.make("hnsw_local_global", gate="learned", seed=2).gate_vector(8))


def test_global_layer_selects_the_hubs():
    g = graph(3)
    q, k, v, _ = problem(3, np.float64)
    mech = workbench.make("hnsw_local_global", gate=1.0, global_layer=2)
    _, o_exp = expected(q, k, v, None, g, np.ones((2, N)), global_layer=2)
    np.testing.assert_allclose(mech(q, k, v, graph=g), o_exp, rtol=0, atol=1e-10)


def test_on_a_real_hnsw_graph():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 8))
    g = hnsw_graph(x, M=4, ef_construction=32, seed=1)
    assert (g.layer > 0).any()
    v = rng.standard_normal((200, 3))
    for backend in BACKENDS:
        mech = workbench.make("hnsw_local_global", gate=0.4, backend=backend)
        _, o_exp = expected(x[None], x[None], v[None], None, g, np.full((1, 200), 0.4))
        np.testing.assert_allclose(mech(x, x, v, graph=g), o_exp[0], rtol=0, atol=1e-10)


def test_needs_a_graph_with_levels():
    q, k, v, _ = problem(0, np.float64)
    mech = workbench.make("hnsw_local_global")
    for call in (lambda: mech(q, k, v), lambda: mech.weights(q, k),
                 lambda: mech(q, k, v, graph=Graph(N, graph(0).edge_index))):
        with pytest.raises(ConfigurationError, match="graph"):
            call()
    with pytest.raises(ShapeError, match="graph"):
        mech(q[:, :5], k, v, graph=graph(0))


@pytest.mark.parametrize("gate", [-0.1, 1.5, "bogus", None, True])
def test_bad_gate(gate):
    with pytest.raises(ConfigurationError, match="gate"):
        workbench.make("hnsw_local_global", gate=gate)
