"""The dashboard's view-model: runs, diagnostics, lazy tiles, report wrapper."""
from __future__ import annotations

import sys
import tracemalloc
import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import workbench
from workbench import compare as C
from workbench.compare import diagnostics, run, tile_indices, tile_plan, weights_tile
from workbench.errors import ConfigurationError, WorkbenchError


def _softmax_rows(q, k, scale=None, causal=False, offset=0):
    """Dense attention weights by the definition, float64 loops: w_ij ∝ exp(s q_i·k_j) over allowed j."""
    q, k = np.asarray(q, np.float64), np.asarray(k, np.float64)
    s = 1 / np.sqrt(q.shape[1]) if scale is None else scale
    w = np.zeros((len(q), len(k)))
    for i in range(len(q)):
        allowed = [j for j in range(len(k)) if not causal or j <= i + offset]
        if not allowed:
            continue
        logits = [s * sum(q[i, c] * k[j, c] for c in range(q.shape[1])) for j in allowed]
        m = max(logits)
        e = [np.exp(t - m) for t in logits]
        for j, ej in zip(allowed, e):
            w[i, j] = ej / sum(e)
    return w


def _pool(w, ridx, edges, reduce):
    out = np.zeros((len(ridx), len(edges) - 1))
    for a, i in enumerate(ridx):
        for b in range(len(edges) - 1):
            seg = w[i, edges[b]:edges[b + 1]]
            out[a, b] = {"max": max, "sum": sum, "mean": lambda s: sum(s) / len(s)}[reduce](list(seg))
    return out


@pytest.fixture
def qkv(rng):
    q = rng.standard_normal((37, 6)).astype(np.float32)
    k = rng.standard_normal((53, 6)).astype(np.float32) * 1.5
    v = rng.standard_normal((53, 4)).astype(np.float32)
    return q, k, v


# -- run -------------------------------------------------------------------------------------------

# Tests pick backend="numpy" where the Numba kernel is not the point (cold-cache compile time);
# the tile tests run the Numba flash kernel, which the dashboard's large maps use.

def test_run_scaled_dot_product_matches_the_definition(qkv):
    q, k, v = qkv
    r = run("scaled_dot_product", {"backend": "numpy"}, q, k, v)
    assert r.ok and r.backend == "numpy"
    w = _softmax_rows(q, k)
    np.testing.assert_allclose(r.weights, w, atol=2e-6)
    np.testing.assert_allclose(r.output, w @ v, atol=1e-5)
    assert r.seconds >= 0 and r.weights_seconds >= 0
    auto = run("flash", {}, q, k, v, want_weights=False)  # the backend actually used, not "auto"
    assert auto.ok and auto.backend == "numba" and auto.weights is None
    np.testing.assert_allclose(auto.output, w @ v, atol=1e-5)


def test_run_captures_user_errors(qkv):
    q, k, v = qkv
    for name, params, args, needle in [
        ("scaled_dot_product", {"scale": -1.0}, (q, k, v), "scale"),
        ("scaled_dot_product", {"bogus": 1}, (q, k, v), "bogus"),
        ("no_such_mechanism", {}, (q, k, v), "no mechanism"),
        ("flash", {}, (q, k[:, :3], v), "feature dimension"),
        ("flash", {}, (q, k, v[:5]), "Lk=53"),
        ("scaled_dot_product", {"backend": "cupy"}, (q, k, v), "backend"),
        ("scaled_dot_product", {}, (q * np.inf, k, v), "finite"),
    ]:
        r = run(name, params, *args)
        assert not r.ok and needle in r.error and r.weights is None and r.output is None, (name, r.error)


def test_run_supplies_graphs_to_graph_mechanisms(rng):
    x = rng.standard_normal((60, 8)).astype(np.float32)
    r = run("edge_featured", {"backend": "numpy"}, x, x, x, graph_k=5)
    assert r.ok and any("knn" in n and "k=5" in n for n in r.notes)
    assert r.graph.num_edges == 60 * 5
    allowed = np.zeros((60, 60), bool)
    allowed[r.graph.dst, r.graph.src] = True
    allowed |= np.eye(60, dtype=bool)  # GAT's self-loops
    assert np.all(r.weights[~allowed] == 0)
    np.testing.assert_allclose(r.weights.sum(1), 1, atol=1e-5)
    h = run("hnsw_local_global", {"backend": "numpy"}, x, x, x)
    assert h.ok and h.graph.layer is not None and any("hnsw" in n for n in h.notes)
    forced = run("hnsw_local_global", {"backend": "numpy"}, x, x, x, graph_kind="knn")
    assert not forced.ok and "layer" in forced.error


def test_run_query_index_keeps_positions(qkv):
    q, k, v = qkv
    rows = [3, 10, 36]
    r = run("scaled_dot_product", {"causal": True, "backend": "numpy"}, q, k, v, query_index=rows)
    w = _softmax_rows(q, k, causal=True)[rows]
    np.testing.assert_allclose(r.weights, w, atol=2e-6)
    assert r.output.shape == (3, 4)
    assert not run("flash", {}, q, k, v, query_index=[0, 99]).ok


def test_run_large_maps_skip_weights(qkv, monkeypatch):
    q, k, v = qkv
    monkeypatch.setattr(C, "MAX_DENSE", 100)
    r = run("flash", {}, q, k, v, query_index=[1, 2])
    assert r.ok and r.weights is None and r.output.shape == (2, 4)
    assert any("selected queries alone" in n for n in r.notes) and any("weights_tile" in n for n in r.notes)


# -- diagnostics -----------------------------------------------------------------------------------

def test_diagnostics_against_definitions():
    w = np.array([[0.5, 0.5, 0.0, 0.0], [0.7, 0.1, 0.1, 0.1], [0.0, 0.0, 0.0, 1.0]])
    ref = np.array([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1], [0.25, 0.25, 0.1, 0.4]])
    o, ro = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 2.0], [3.0, 0.0]])
    a = C.RunResult("a", {}, weights=w, output=o, seconds=0.5, backend="numba")
    b = C.RunResult("b", {}, weights=ref, output=ro, seconds=0.1, backend="numba")
    d = diagnostics(a, b, top_k=2)
    ent = [-(0.5 * np.log(0.5)) * 2, -(0.7 * np.log(0.7) + 3 * 0.1 * np.log(0.1)), 0.0]
    np.testing.assert_allclose(d["entropy"], ent)
    assert d["entropy_mean"] == pytest.approx(np.mean(ent)) and d["entropy_max"] == pytest.approx(np.log(4))
    assert d["sparsity"] == pytest.approx(5 / 12)
    # top-2 sets: {0,1} vs {3,2}: 0; {0, one of 1..3} vs {0,1}: 1 or 2 (ties) -> check row 2: {3, x} vs {3, 0|1}
    assert d["top_k"] == 2 and 0.0 <= d["top_k_overlap"] <= 1.0
    assert d["output_distance"] == pytest.approx(4.0 / np.sqrt(1 + 4 + 9))
    assert d["seconds"] == 0.5 and d["backend"] == "numba" and d["error"] is None
    same = diagnostics(b, b, top_k=3)
    assert same["top_k_overlap"] == 1.0 and same["output_distance"] == 0.0
    err = diagnostics(C.RunResult("x", {}, error="bad"), b)
    assert err["entropy"] is None and err["top_k_overlap"] is None and err["error"] == "bad"


def test_top_k_overlap_counts_shared_keys():
    w = np.array([[0.4, 0.3, 0.2, 0.1]])
    ref = np.array([[0.1, 0.45, 0.35, 0.1]])
    d = diagnostics(C.RunResult("a", {}, weights=w), C.RunResult("r", {}, weights=ref), top_k=2)
    assert d["top_k_overlap"] == pytest.approx(0.5)  # {0,1} ∩ {1,2} = {1}
    np.testing.assert_array_equal(C.attended_keys(ref[0], 2), [1, 2])


# -- lazy tiles -------------------------------------------------------------------------------------

def test_tile_indices_sub_sample_rows_and_pool_columns():
    ridx, edges = tile_indices((1000, 50), rows=(100, 900), cols=(10, 40), out_shape=(8, 800))
    np.testing.assert_array_equal(ridx, 100 + np.arange(8) * 100)
    assert len(edges) == 31 and edges[0] == 10 and edges[-1] == 40 and np.all(np.diff(edges) == 1)  # never upsampled
    ridx, edges = tile_indices((10, 10))
    np.testing.assert_array_equal(ridx, np.arange(10))
    for bad in [dict(rows=(5, 5)), dict(rows=(0, 11)), dict(cols=(-1, 3)), dict(out_shape=(0, 4)), dict(rows="x")]:
        with pytest.raises(ConfigurationError):
            tile_indices((10, 10), **bad)


@pytest.mark.parametrize("name", ["scaled_dot_product", "flash"])
@pytest.mark.parametrize("reduce", ["max", "sum", "mean"])
@pytest.mark.parametrize("params", [{}, {"causal": True, "causal_offset": 4}, {"causal": True, "causal_offset": -8},
                                    {"scale": 0.9, "backend": "numpy"}])
def test_tile_equals_the_pooled_block_of_the_dense_weights(qkv, name, reduce, params):
    q, k, _ = qkv
    kw = dict(rows=(5, 30), cols=(3, 50), out_shape=(10, 12))
    t = weights_tile(name, params, q, k, reduce=reduce, **kw)
    ridx, edges = tile_indices((37, 53), **kw)
    dense = _softmax_rows(q, k, params.get("scale"), params.get("causal", False), params.get("causal_offset", 0))
    np.testing.assert_allclose(t, _pool(dense, ridx, edges, reduce), rtol=2e-5, atol=1e-7)


@settings(max_examples=40, deadline=None)
@given(lq=st.integers(1, 40), lk=st.integers(1, 40), oh=st.integers(1, 50), ow=st.integers(1, 50),
       r=st.tuples(st.floats(0, 1), st.floats(0, 1)), c=st.tuples(st.floats(0, 1), st.floats(0, 1)))
def test_pool_weights_is_the_max_over_each_pixels_block(lq, lk, oh, ow, r, c):
    w = np.random.default_rng(lq * 100 + lk).random((lq, lk))
    r0, c0 = int(min(r) * (lq - 1)), int(min(c) * (lk - 1))
    r1, c1 = max(r0 + 1, int(round(max(r) * lq))), max(c0 + 1, int(round(max(c) * lk)))
    out = C.pool_weights(w, (r0, r1), (c0, c1), (oh, ow))
    h, wd = min(oh, r1 - r0), min(ow, c1 - c0)
    assert out.shape == (h, wd) and out.dtype == np.float32
    for a in range(h):  # pixel (a, b) covers rows [R_a, R_{a+1}) and keys [C_b, C_{b+1}), by the definition
        ra, rb = r0 + a * (r1 - r0) // h, r0 + (a + 1) * (r1 - r0) // h
        for b in range(wd):
            ca, cb = c0 + b * (c1 - c0) // wd, c0 + (b + 1) * (c1 - c0) // wd
            assert out[a, b] == np.float32(max(w[i, j] for i in range(ra, rb) for j in range(ca, cb)))


def test_pool_weights_keeps_a_single_sharp_weight_visible():
    w = np.zeros((2000, 2000), np.float32)
    w[1234, 567] = 1.0  # one query attends to one key: a sub-sampled map could drop its row
    out = C.pool_weights(w, None, None, (300, 600))
    assert out.shape == (300, 600) and out.max() == 1.0 and np.count_nonzero(out) == 1
    with pytest.raises(C.DataError, match="w: expected a non-empty"):
        C.pool_weights(np.zeros((0, 3)), None, None, (2, 2))
    with pytest.raises(ConfigurationError, match="rows"):
        C.pool_weights(w, (5, 3), None, (2, 2))


def test_tile_rows_without_allowed_keys_are_zero(qkv):
    q, k, _ = qkv
    t = weights_tile("scaled_dot_product", {"causal": True, "causal_offset": -8}, q, k, rows=(0, 12), reduce="sum")
    assert np.all(t[:8] == 0) and np.allclose(t[8:].sum(1), 1.0)
    none = weights_tile("flash", {"causal": True, "causal_offset": -40}, q, k, rows=(0, 5))
    assert none.shape == (5, 53) and np.all(none == 0)


def test_tile_rows_are_normalised_over_all_keys(qkv):
    q, k, _ = qkv
    full = weights_tile("scaled_dot_product", {}, q, k, cols=(0, 53), out_shape=(37, 7), reduce="sum")
    np.testing.assert_allclose(full.sum(1), 1.0, atol=1e-6)
    part = weights_tile("scaled_dot_product", {}, q, k, cols=(20, 30), out_shape=(37, 10), reduce="sum")
    dense = _softmax_rows(q, k)
    np.testing.assert_allclose(part.sum(1), dense[:, 20:30].sum(1), atol=1e-6)
    assert np.all(part.sum(1) < 1)  # normalised over all 53 keys, not over the 10 visible ones


def test_tile_of_a_large_map_never_materialises_it(rng):
    L = 20_000  # the dense float32 map would take 1.6 GB
    x = rng.standard_normal((L, 16)).astype(np.float32)
    weights_tile("flash", {}, x[:64], x[:64], out_shape=(8, 8))  # compile / load the kernel first
    tracemalloc.start()
    try:
        t = weights_tile("flash", {}, x, x, out_shape=(200, 300), reduce="sum")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert t.shape == (200, 300) and peak < 150 * 2**20
    np.testing.assert_allclose(t.sum(1), 1.0, atol=1e-5)
    ridx, edges = tile_indices((L, L), out_shape=(200, 300))
    logits = x[ridx[:3]].astype(np.float64) @ x.T.astype(np.float64) / 4.0  # three rows, all 20k keys, float64
    exact = np.exp(logits - logits.max(1, keepdims=True))
    exact /= exact.sum(1, keepdims=True)
    for b in (0, 1, 299):
        np.testing.assert_allclose(t[:3, b], exact[:, edges[b]:edges[b + 1]].sum(1), rtol=1e-4, atol=1e-9)


def test_tile_of_other_mechanisms_uses_their_weights(rng, monkeypatch):
    x = rng.standard_normal((40, 6)).astype(np.float32)
    p = {"c": 0.5, "backend": "numpy"}
    w = workbench.make("hyperbolic", **p).weights(x, x).astype(np.float64)
    ridx, edges = tile_indices((40, 40), out_shape=(10, 8))
    t = weights_tile("hyperbolic", p, x, x, out_shape=(10, 8))
    np.testing.assert_allclose(t, _pool(w, ridx, edges, "max"), rtol=1e-6)
    assert tile_plan("hyperbolic", {}, 40, 40)["method"] == "dense"
    monkeypatch.setattr(C, "MAX_DENSE", 150)  # 40 × 40 no longer "small": sampled rows, 3 per chunk
    assert tile_plan("hyperbolic", {}, 40, 40)["method"] == "sampled"
    t2 = weights_tile("hyperbolic", p, x, x, out_shape=(10, 8))
    np.testing.assert_allclose(t2, t, rtol=1e-5, atol=1e-7)
    plan = tile_plan("edge_featured", {}, 40, 40)
    assert plan["method"] == "refused" and "graph" in plan["note"]
    with pytest.raises(ConfigurationError, match="cannot draw"):
        weights_tile("edge_featured", {}, x, x)


def test_tile_of_a_graph_mechanism(rng):
    x = rng.standard_normal((30, 4)).astype(np.float32)
    r = run("edge_featured", {"backend": "numpy"}, x, x, x, graph_k=4)
    t = weights_tile("edge_featured", {"backend": "numpy"}, x, x, out_shape=(30, 30), graph_k=4)
    np.testing.assert_allclose(t, r.weights, rtol=1e-6)


def test_tile_errors(qkv):
    q, k, _ = qkv
    with pytest.raises(ConfigurationError, match="reduce"):
        weights_tile("flash", {}, q, k, reduce="median")
    with pytest.raises(WorkbenchError, match="d=6"):
        weights_tile("flash", {}, q, k[:, :4])
    with pytest.raises(ConfigurationError, match="rows"):
        weights_tile("flash", {}, q, k, rows=(0, 100))


# -- report ------------------------------------------------------------------------------------------

def test_report_for_wraps_analyze_keys(monkeypatch, rng):
    x = rng.standard_normal((20, 4)).astype(np.float32)
    fake = types.ModuleType("workbench.report")
    seen = {}

    def analyze_keys(K, *, profile="default", k=8, seed=1):
        seen.update(K=K, profile=profile, k=k, seed=seed)
        return "REPORT"

    fake.analyze_keys = analyze_keys
    monkeypatch.setitem(sys.modules, "workbench.report", fake)
    assert C.report_for(workbench.data.Dataset(x), k=5) == "REPORT"
    assert seen["K"] is not None and seen["k"] == 5 and seen["seed"] == 1
    monkeypatch.setitem(sys.modules, "workbench.report", None)  # "not installed"
    msg = C.report_for(x)
    assert isinstance(msg, str) and "not available" in msg
