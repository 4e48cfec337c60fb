"""Trained weights in dual_space, moe (router and experts), hnsw_local_global (gate) and
fused_mixed_curvature (per-head mixing weights): each against its definition written out here,
the state_dict round trip, and refusals naming the key."""
from __future__ import annotations

import math

import numpy as np
import pytest

import workbench
from workbench.errors import ConfigurationError, DataError, ShapeError
from workbench.graph import hnsw_graph


def softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_dual_space_loaded_projections_equal_the_definition():
    rng = np.random.default_rng(0)
    d, L = 6, 9
    q, k, v = (0.3 * rng.standard_normal((L, d)) for _ in range(3))
    W = {n: rng.standard_normal((d, d)) / d for n in ("W_E", "W_H", "W_O")}
    m = workbench.make("dual_space", projections=False).load_weights(W)
    assert m.projections and m.weights_loaded
    plain = workbench.make("dual_space", projections=False)
    euc, hyp = m.space_contributions(q, k)
    np.testing.assert_allclose(euc, (q @ W["W_E"]) @ (k @ W["W_E"]).T / math.sqrt(d), atol=1e-12)
    np.testing.assert_allclose(hyp, plain.space_contributions(q @ W["W_H"], k @ W["W_H"])[1], atol=1e-12)
    # with one matrix for both branches the whole call is the unprojected one on projected inputs
    same = {"W_E": W["W_E"], "W_H": W["W_E"], "W_O": W["W_O"]}
    m.load_weights(same)
    np.testing.assert_allclose(m(q, k, v), plain(q @ W["W_E"], k @ W["W_E"], v) @ W["W_O"], atol=1e-12)
    again = workbench.make("dual_space").load_weights(m.state_dict())
    np.testing.assert_array_equal(again(q, k, v), m(q, k, v))


def test_dual_space_seeded_round_trip_and_refusals():
    rng = np.random.default_rng(1)
    q = rng.standard_normal((5, 8)) * 0.2
    m = workbench.make("dual_space")
    again = workbench.make("dual_space").load_weights(m.state_dict(8))
    np.testing.assert_allclose(again(q, q, q), m(q, q, q), atol=1e-12)
    with pytest.raises(ShapeError, match="W_H: missing"):
        m.load_weights({"W_E": np.eye(8)})
    with pytest.raises(ShapeError, match="W_H: expected shape"):
        m.load_weights({"W_E": np.eye(8), "W_H": np.eye(7)})
    with pytest.raises(ShapeError, match="W_X: not a weight"):
        m.load_weights({"W_E": np.eye(8), "W_H": np.eye(8), "W_X": np.eye(8)})
    m.load_weights({"W_E": np.eye(4), "W_H": np.eye(4)})
    with pytest.raises(ShapeError, match="q: width 8"):
        m(q, q, q)


def test_moe_router_and_expert_weights():
    rng = np.random.default_rng(2)
    d, L = 8, 12
    x = rng.standard_normal((L, d))
    experts = ["scaled_dot_product", "multi_head"]
    kw = dict(experts=experts, expert_params={"multi_head": {"num_heads": 2}}, capacity_factor=None)
    G = rng.standard_normal((d, 2))
    mh = {n: rng.standard_normal((d, d)) / math.sqrt(d) for n in ("W_q", "W_k", "W_v", "W_o")}
    m = workbench.make("moe", top_k=1, **kw).load_weights({"W_router": G, **{f"experts.1.{n}": w for n, w in mh.items()}})
    out = m(x, x, x)
    probs = softmax(x @ G)
    np.testing.assert_allclose(m.last_routing.probabilities, probs, atol=1e-12)
    sdpa = workbench.make("scaled_dot_product")(x, x, x)
    trained = workbench.make("multi_head", num_heads=2).load_weights(mh)(x, x, x)
    pick = probs.argmax(1)
    np.testing.assert_allclose(out, np.where(pick[:, None] == 0, sdpa, trained), atol=1e-10)
    again = workbench.make("moe", top_k=1, **kw).load_weights(m.state_dict())
    np.testing.assert_array_equal(again(x, x, x), out)
    seeded = workbench.make("moe", **kw)
    np.testing.assert_allclose(workbench.make("moe", **kw).load_weights(seeded.state_dict(d, d))(x, x, x),
                               seeded(x, x, x), atol=1e-12)


def test_moe_refusals_name_the_key():
    m = workbench.make("moe", experts=["scaled_dot_product", "multi_head"])
    with pytest.raises(ShapeError, match="W_router: missing"):
        m.load_weights({"experts.1.W_q": np.eye(4)})
    with pytest.raises(ShapeError, match="W_router: expected shape"):
        m.load_weights({"W_router": np.ones((4, 3))})
    with pytest.raises(ShapeError, match="experts.0.W_q: expert 0"):
        m.load_weights({"W_router": np.ones((4, 2)), "experts.0.W_q": np.eye(4)})
    with pytest.raises(ShapeError, match="experts.5.W_q"):
        m.load_weights({"W_router": np.ones((4, 2)), "experts.5.W_q": np.eye(4)})
    with pytest.raises(ShapeError, match="experts.1.W_k: missing"):
        m.load_weights({"W_router": np.ones((4, 2)), "experts.1.W_q": np.eye(4)})
    assert not m.weights_loaded
    m.load_weights({"W_router": np.ones((4, 2))})
    with pytest.raises(ShapeError, match="q: width 6"):
        m(np.ones((3, 6)), np.ones((3, 6)), np.ones((3, 6)))


def test_hnsw_local_global_trained_gate():
    rng = np.random.default_rng(3)
    n, d = 60, 8
    x = rng.standard_normal((n, d))
    g = hnsw_graph(x, M=4, seed=0)
    w, b = rng.standard_normal(d), 0.3
    m = workbench.make("hnsw_local_global").load_weights({"w_gate": w[None, :], "b_gate": np.array([b])})
    assert m.gate == "learned"
    np.testing.assert_allclose(m.gates(x), 1 / (1 + np.exp(-(x @ w + b))), atol=1e-12)
    seeded = workbench.make("hnsw_local_global", gate="learned")
    again = workbench.make("hnsw_local_global").load_weights(seeded.state_dict(d))
    np.testing.assert_allclose(again(x, x, x, graph=g), seeded(x, x, x, graph=g), atol=1e-12)
    with pytest.raises(ShapeError, match="b_gate: expected shape"):
        m.load_weights({"w_gate": w, "b_gate": np.ones(2)})
    with pytest.raises(ShapeError, match="q: width 5"):
        m.gates(np.ones((4, 5)))


def test_fused_mixed_curvature_trained_head_weights():
    rng = np.random.default_rng(4)
    q, k, v = (0.2 * rng.standard_normal((7, 16)) for _ in range(3))
    m = workbench.make("fused_mixed_curvature", num_heads=2).load_weights(
        {"head_weights": np.array([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]])})
    for h, (we, wh, ws) in enumerate(m.head_weights()):
        one = workbench.make("fused_mixed_curvature", weight_e=we, weight_h=wh, weight_s=ws)
        np.testing.assert_allclose(m(q, k, v)[:, 8 * h:8 * (h + 1)],
                                   one(q[:, 8 * h:8 * (h + 1)], k[:, 8 * h:8 * (h + 1)], v[:, 8 * h:8 * (h + 1)]),
                                   atol=1e-12)
    with pytest.raises(DataError, match="head_weights: .* >= 0"):
        m.load_weights({"head_weights": -np.ones((2, 3))})
    with pytest.raises(ShapeError, match="head_weights: expected shape"):
        m.load_weights({"head_weights": np.ones((3, 3))})
    m.num_heads = 4
    with pytest.raises(ConfigurationError, match="num_heads"):
        m(q, k, v)
