"""Graph RoPE: rotation identities, gap-free buckets, and every position source against the
definition written out here (explicit per-pair rotations, masked softmax)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import workbench
from tests._helpers import bfs_hops as bfs
from workbench.errors import ConfigurationError, DataError, ShapeError
from workbench.graph import Graph, hnsw_graph
from workbench.mechanisms.graph_rope import MAX_BUCKET_FACTOR, bucket_positions, rotate

SETTINGS = settings(max_examples=25, deadline=None)


def rot_explicit(x, p, base=10000.0, scaling=1.0, layout="half"):
    """Rotation, coordinate by coordinate, float64: pair i is (x_i, x_{i+D}) half-split or
    (x_{2i}, x_{2i+1}) interleaved, turned by (p/scaling)·base^(−2i/2D); odd d: last coordinate untouched."""
    x = np.asarray(x, np.float64)
    d = len(x)
    D = d // 2
    y = x.copy()
    for i in range(D):
        th = (p / scaling) * base ** (-2.0 * i / (2 * D))
        a, b = (i, i + D) if layout == "half" else (2 * i, 2 * i + 1)
        y[a] = x[a] * math.cos(th) - x[b] * math.sin(th)
        y[b] = x[a] * math.sin(th) + x[b] * math.cos(th)
    return y


def hf_rotate_half(x, p, base=10000.0):
    """Hugging Face's form: ``x·cos + rotate_half(x)·sin``, cos/sin tiled twice, ``rotate_half(x) = [−x₂, x₁]``."""
    d = x.shape[-1]
    inv = 1.0 / base ** (np.arange(0, d, 2) / d)
    th = np.outer(p, inv)
    cos, sin = np.cos(np.concatenate([th, th], -1)), np.sin(np.concatenate([th, th], -1))
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * cos + np.concatenate([-x2, x1], -1) * sin


def gptj_rotate_every_two(x, p, base=10000.0):
    """GPT-J's form: ``x·cos + rotate_every_two(x)·sin``, cos/sin repeated per pair, ``(x₀, x₁) → (−x₁, x₀)``."""
    d = x.shape[-1]
    inv = 1.0 / base ** (np.arange(0, d, 2) / d)
    th = np.outer(p, inv)
    cos, sin = np.repeat(np.cos(th), 2, -1), np.repeat(np.sin(th), 2, -1)
    rot = np.stack([-x[..., 1::2], x[..., ::2]], -1).reshape(x.shape)
    return x * cos + rot * sin


def bucket_explicit(dist, max_position, k):
    p = dist if dist <= 8 else 8 + math.ceil(k * math.log2(dist / 8) - 1e-9)
    return min(p, max_position)


# --- rotation ------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["half", "interleaved"])
@pytest.mark.parametrize("d", [1, 2, 7, 8, 33])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rotation_matches_definition_and_preserves_norm(d, dtype, layout):
    rng = np.random.default_rng(d)
    x = rng.standard_normal((6, d)).astype(dtype)
    p = rng.uniform(-50, 600, 6)
    y = rotate(x, p, base=500.0, scaling=1.5, layout=layout)
    assert y.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for r in range(6):
        np.testing.assert_allclose(y[r], rot_explicit(x[r], p[r], 500.0, 1.5, layout), atol=tol * 10)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), np.linalg.norm(x, axis=1), rtol=tol)
    if d % 2:
        np.testing.assert_array_equal(y[:, -1], x[:, -1])  # the odd coordinate passes through


@pytest.mark.parametrize("d", [2, 8, 64])
def test_layouts_match_the_models_own_formulas(d):
    """Half-split is Hugging Face's ``rotate_half`` form, interleaved is GPT-J's ``rotate_every_two``;
    the two differ on the same input (they pair different coordinates)."""
    rng = np.random.default_rng(d)
    x = rng.standard_normal((5, d))
    p = np.array([0.0, 1.0, 7.0, 100.0, 511.0])
    np.testing.assert_allclose(rotate(x, p, layout="half"), hf_rotate_half(x, p), atol=1e-12)
    np.testing.assert_allclose(rotate(x, p, layout="interleaved"), gptj_rotate_every_two(x, p), atol=1e-12)
    if d > 2:
        assert not np.allclose(rotate(x, p, layout="half"), rotate(x, p, layout="interleaved"))


def test_unknown_layout_is_refused():
    with pytest.raises(ValueError, match="layout"):
        rotate(np.zeros(4), 1.0, layout="neox")
    with pytest.raises(ConfigurationError, match="rope_layout"):
        workbench.make("graph_rope", rope_layout="neox")


def test_upstream_norm_at_position_5():
    x = np.random.default_rng(0).standard_normal(64)
    assert abs(np.linalg.norm(rotate(x, 5.0)) - np.linalg.norm(x)) < 1e-5


@SETTINGS
@given(st.integers(1, 20), st.floats(-300, 300), st.floats(-300, 300), st.floats(-300, 300),
       st.integers(0, 2**31 - 1), st.sampled_from([np.float32, np.float64]))
def test_score_depends_only_on_relative_position(d, a, b, t, seed, dtype):
    rng = np.random.default_rng(seed)
    q, k = rng.standard_normal((2, d)).astype(dtype)
    s1 = float(rotate(q, a) @ rotate(k, b))
    s2 = float(rotate(q, a + t) @ rotate(k, b + t))
    s3 = float(q @ rotate(k, b - a))
    tol = 1e-3 if dtype == np.float32 else 1e-9
    assert abs(s1 - s2) <= tol * (1 + abs(s1)) and abs(s1 - s3) <= tol * (1 + abs(s1))


# --- buckets -------------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [1.0, 2.5, 4.0, MAX_BUCKET_FACTOR])
@pytest.mark.parametrize("max_position", [3, 8, 20, 512])
def test_buckets_are_monotone_and_gap_free(k, max_position):
    dist = np.arange(0, 200_000)
    p = bucket_positions(dist, max_position, k)
    assert (np.diff(p) >= 0).all()  # monotone
    assert set(np.diff(p).tolist()) <= {0.0, 1.0}  # gap-free: never skips a bucket
    assert p.max() <= max_position and p[0] == 0
    for dd in [0, 1, 5, 8, 9, 15, 16, 17, 100, 1000, 199_999]:
        assert p[dd] == bucket_explicit(dd, max_position, k)


def test_buckets_upstream_examples():
    p = bucket_positions(np.array([0, 5, 8, 9, 16, 32]), 512, 4.0)
    assert p[0] == 0 and p[1] == 5 and p[2] == 8 and p[3] == 9  # upstream jumps 8 -> 12 here
    assert p[4] > 8 and p[5] > p[4]


def test_bucket_factor_bound():
    with pytest.raises(ConfigurationError, match="bucket_factor"):
        workbench.make("graph_rope", bucket_factor=6.0)


# --- the mechanism -------------------------------------------------------------------------------

def softmax_rows(S, allowed):
    W = np.zeros_like(S)
    for i in range(S.shape[0]):
        js = np.flatnonzero(allowed[i])
        if len(js):
            e = np.exp(S[i, js] - S[i, js].max())
            W[i, js] = e / e.sum()
    return W


@pytest.mark.parametrize("layout", ["half", "interleaved"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [6, 7])
def test_without_graph_is_index_rope(backend, dtype, d, layout):
    rng = np.random.default_rng(1)
    q, k, v = rng.standard_normal((4, d)), rng.standard_normal((9, d)), rng.standard_normal((9, 3))
    mask = rng.random((4, 9)) < 0.7
    mask[2] = False
    m = workbench.make("graph_rope", backend=backend, base=100.0, rope_layout=layout)
    out = m(q.astype(dtype), k.astype(dtype), v.astype(dtype), mask=mask)
    S = np.array([[rot_explicit(q[i], i, 100.0, layout=layout) @ rot_explicit(k[j], j, 100.0, layout=layout)
                   for j in range(9)] for i in range(4)])
    W = softmax_rows(S / math.sqrt(d), mask)
    tol = 2e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(out, W @ v, atol=tol * 5)
    np.testing.assert_allclose(m.weights(q.astype(dtype), k.astype(dtype), mask=mask), W, atol=tol * 5)
    assert (out[2] == 0).all()


def path_graph_with_tail(n=14):
    """A chain 0 ← 1 ← … (each i attends i+1) plus a few chords and an unreachable-from-the-tail part."""
    src = list(range(1, n)) + [5, 11]
    dst = list(range(0, n - 1)) + [0, 3]
    rng = np.random.default_rng(0)
    return Graph(n, [src, dst], distance=rng.uniform(0.1, 30, len(src)), layer=rng.integers(0, 3, n))


@pytest.mark.parametrize("layout", ["half", "interleaved"])
@pytest.mark.parametrize("buckets", [True, False])
def test_graph_distance_equals_definition(backend, buckets, layout):
    g = path_graph_with_tail()
    n, d = g.num_nodes, 8
    rng = np.random.default_rng(2)
    q, k, v = rng.standard_normal((n, d)), rng.standard_normal((n, d)), rng.standard_normal((n, 5))
    m = workbench.make("graph_rope", position_source="graph_distance", buckets=buckets, max_position=10,
                       bucket_factor=2.0, scaling=0.5, backend=backend, rope_layout=layout)
    H = bfs(n, g.edge_index.T.tolist())
    allowed = H >= 0
    S = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if allowed[i, j]:
                p = bucket_explicit(H[i, j], 10, 2.0) if buckets else min(H[i, j], 10)
                S[i, j] = q[i] @ rot_explicit(k[j], p, scaling=0.5, layout=layout) / math.sqrt(d)
    W = softmax_rows(S, allowed)
    np.testing.assert_allclose(m(q, k, v, graph=g), W @ v, atol=1e-10)
    np.testing.assert_allclose(m.weights(q, k, graph=g), W, atol=1e-10)
    assert allowed[0].all() and not allowed[-1, :-1].any()  # node 0 reaches all; the tail only itself


@pytest.mark.parametrize("layout", ["half", "interleaved"])
@pytest.mark.parametrize("source", ["index", "hnsw_layer", "edge_weight"])
@pytest.mark.parametrize("self_loops", [True, False])
def test_edge_sources_equal_definition(backend, source, self_loops, layout):
    g = path_graph_with_tail()
    n, d = g.num_nodes, 7
    rng = np.random.default_rng(3)
    q, k, v = rng.standard_normal((2, n, d)), rng.standard_normal((2, n, d)), rng.standard_normal((2, n, 4))
    m = workbench.make("graph_rope", position_source=source, add_self_loops=self_loops, backend=backend,
                       rope_layout=layout)
    rot = lambda x, p: rot_explicit(x, p, layout=layout)  # noqa: E731
    allowed = g.to_mask()
    dist = np.zeros((n, n))
    dist[g.dst, g.src] = g.distance
    if self_loops:
        np.fill_diagonal(allowed, True)
    out = m(q, k, v, graph=g)
    for b in range(2):
        S = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                if not allowed[i, j]:
                    continue
                if source == "index":
                    S[i, j] = rot(q[b, i], i) @ rot(k[b, j], j)
                elif source == "hnsw_layer":
                    S[i, j] = rot(q[b, i], g.layer[i]) @ rot(k[b, j], g.layer[j])
                else:
                    S[i, j] = q[b, i] @ rot(k[b, j], bucket_explicit(dist[i, j], 512, 4.0))
        W = softmax_rows(S / math.sqrt(d), allowed)
        np.testing.assert_allclose(out[b], W @ v[b], atol=1e-10)
    if not self_loops:
        assert (out[:, n - 1] == 0).all()  # the last node of the chain attends nothing


def test_hnsw_layer_positions_on_a_real_index(backend):
    x = np.random.default_rng(4).standard_normal((200, 8))
    g = hnsw_graph(x, M=4, seed=1)
    m = workbench.make("graph_rope", position_source="hnsw_layer", backend=backend)
    out = m.propagate(x, g)
    assert out.shape == (200, 8) and np.isfinite(out).all()
    flat = m.propagate(x, g.replace(layer=np.zeros(200, int)))  # all layers equal: plain dot products
    plain = workbench.make("graph_rope", position_source="index", backend=backend)
    assert not np.allclose(out, flat)
    assert np.isfinite(plain.propagate(x, g)).all()


def test_upstream_output_lengths():
    rng = np.random.default_rng(0)
    m = workbench.make("graph_rope")
    assert m(rng.standard_normal(64), rng.standard_normal((10, 64)), rng.standard_normal((10, 64))).shape == (64,)
    assert m(rng.standard_normal(32), rng.standard_normal((10, 32)), rng.standard_normal((10, 32))).shape == (32,)


def test_errors():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4))
    g = Graph(5, [[0, 1], [1, 2]])
    with pytest.raises(DataError, match="layer"):
        workbench.make("graph_rope", position_source="hnsw_layer")(x, x, x, graph=g)
    with pytest.raises(DataError, match="distance"):
        workbench.make("graph_rope", position_source="edge_weight")(x, x, x, graph=g)
    with pytest.raises(ShapeError, match=r"q, k"):
        workbench.make("graph_rope")(x[:4], x, x, graph=g)
    for bad in [dict(base=1.0), dict(scaling=0.0), dict(max_position=0), dict(position_source="pagerank")]:
        with pytest.raises(ConfigurationError, match=next(iter(bad))):
            workbench.make("graph_rope", **bad)
    info = workbench.registry["graph_rope"]
    assert info.needs_graph and info.family == "graph"
