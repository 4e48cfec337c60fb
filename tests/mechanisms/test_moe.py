"""Mixture-of-experts attention against its definition, written out here with loops in float64."""
from __future__ import annotations

import math

import numpy as np
import pytest

import workbench
from workbench.errors import ConfigurationError
from workbench.mechanisms.moe import DEFAULT_EXPERTS, load_balancing_loss, router_z_loss

BACKENDS = ("numpy", "numba")
DTYPES = (np.float32, np.float64)
TOL = {np.float32: 2e-5, np.float64: 1e-10}
SEEDS = (0, 1, 7)
#: Experts available whatever the other issues registered (all permutation-invariant, defined weights).
EXPERTS = ["scaled_dot_product", "linear", "flash", "scaled_dot_product"]


def problem(seed, dtype, b=2, lq=9, lk=7, d=8, dv=5, mask=True):
    rng = np.random.default_rng(seed)
    q, k = (rng.standard_normal((b, n, d)).astype(dtype) for n in (lq, lk))
    v = rng.standard_normal((b, lk, dv)).astype(dtype)
    m = None
    if mask:
        m = rng.random((b, lq, lk)) < 0.7
        m[:, 0, :] = False  # a fully masked query
    return q, k, v, m


def expected_routing(mech, q):
    """Router, top-k, capacity and gate renormalisation written out per sequence."""
    E = len(mech.expert_names())
    kk = min(mech.top_k, E)
    G = mech.router_weights(q.shape[-1])
    B, lq, _ = q.shape
    cap = None if mech.capacity_factor is None else math.ceil(mech.capacity_factor * kk * lq / E)
    probs = np.zeros((B, lq, E))
    route = []  # per (b, i): list of [expert, prob, kept]
    for bi in range(B):
        rows = []
        for i in range(lq):
            z = [float(np.dot(G[e], q[bi, i].astype(np.float64))) for e in range(E)]
            m = max(z)
            p = [math.exp(x - m) for x in z]
            p = [x / sum(p) for x in p]
            probs[bi, i] = p
            order = sorted(range(E), key=lambda e: (-p[e], e))[:kk]
            rows.append([[e, p[e], True] for e in order])
        if cap is not None:
            for e in range(E):
                users = [(rows[i][s][1], i, s) for i in range(lq) for s in range(kk) if rows[i][s][0] == e]
                users.sort(key=lambda t: (-t[0], t[1]))
                for _, i, s in users[cap:]:
                    rows[i][s][2] = False
        route.append(rows)
    gates = []
    for bi in range(B):
        g_rows = []
        for i in range(lq):
            tot = sum(p for _, p, kept in route[bi][i] if kept)
            g_rows.append({e: (p / tot if kept else 0.0) for e, p, kept in route[bi][i]} if tot > 0 else {})
        gates.append(g_rows)
    return probs, route, gates, cap


def expected_output(mech, q, k, v, mask, gates):
    experts = [workbench.make(n, backend="numpy", **({"seed": mech.seed + i} if n == "linear" else {}))
               for i, n in enumerate(mech.expert_names())]
    out = np.zeros(q.shape[:2] + v.shape[-1:])
    for bi in range(q.shape[0]):
        for i in range(q.shape[1]):
            for e, g in gates[bi][i].items():
                if g:
                    m = None if mask is None else mask[bi, i]
                    out[bi, i] += g * experts[e](q[bi, i], k[bi], v[bi], mask=m).astype(np.float64)
    return out


# --- reductions --------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["scaled_dot_product", "linear", "flash"])
def test_one_expert_equals_that_expert(backend, dtype, name):
    for seed in SEEDS:
        q, k, v, m = problem(seed, dtype)
        moe = workbench.make("moe", experts=[name], seed=seed, backend=backend)
        ref = workbench.make(name, backend=backend, **({"seed": seed} if name == "linear" else {}))
        out = moe(q, k, v, mask=m)
        assert out.dtype == dtype
        np.testing.assert_allclose(out, ref(q, k, v, mask=m), rtol=0, atol=TOL[dtype] * 4)
        np.testing.assert_allclose(moe.weights(q, k, mask=m), ref.weights(q, k, mask=m), rtol=0, atol=TOL[dtype])
        assert (moe.last_routing.gates == 1).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_top_k_all_equals_probability_weighted_mixture(dtype):
    for seed in SEEDS:
        q, k, v, m = problem(seed, dtype)
        moe = workbench.make("moe", experts=EXPERTS, top_k=len(EXPERTS), capacity_factor=None, seed=seed,
                             backend="numpy")
        probs, _, _, _ = expected_routing(moe, q)
        gates = [[dict(enumerate(probs[bi, i])) for i in range(q.shape[1])] for bi in range(q.shape[0])]
        expected = expected_output(moe, q, k, v, m, gates)
        np.testing.assert_allclose(moe(q, k, v, mask=m), expected, rtol=0, atol=TOL[dtype] * 10)
        np.testing.assert_allclose(moe.last_routing.probabilities, probs, rtol=0, atol=TOL[dtype])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("capacity_factor", [None, 1.25, 0.5, 0.2])
def test_output_is_the_gated_sum_of_routed_experts(backend, dtype, capacity_factor):
    """Routing (top-k, capacity in router-probability order, renormalised gates) and output."""
    for seed in SEEDS:
        q, k, v, m = problem(seed, dtype, lq=16)
        moe = workbench.make("moe", experts=EXPERTS, top_k=2, capacity_factor=capacity_factor, seed=seed,
                             backend=backend)
        probs, route, gates, cap = expected_routing(moe, q)
        out = moe(q, k, v, mask=m)
        r = moe.last_routing
        assert r.capacity == cap
        for bi in range(q.shape[0]):
            for i in range(q.shape[1]):
                assert list(r.experts[bi, i]) == [e for e, _, _ in route[bi][i]]
                assert list(r.kept[bi, i]) == [kept for _, _, kept in route[bi][i]]
                for s, (e, _, _) in enumerate(route[bi][i]):
                    assert abs(r.gates[bi, i, s] - gates[bi][i].get(e, 0.0)) < 1e-12
        expected = expected_output(moe, q, k, v, m, gates)
        np.testing.assert_allclose(out, expected, rtol=0, atol=TOL[dtype] * 10)
        assert (out[r.dropped] == 0).all()


@pytest.mark.parametrize("capacity_factor", [1.25, 1.0, 0.5, 0.3, 0.1])
@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_capacity_is_never_exceeded(capacity_factor, top_k):
    for seed in SEEDS:
        q, k, v, m = problem(seed, np.float64, b=3, lq=25)
        q[1] += 3.0 * q[1, :1]  # a skewed sequence: most queries want the same experts
        moe = workbench.make("moe", experts=EXPERTS, top_k=top_k, capacity_factor=capacity_factor, seed=seed)
        moe(q, k, v, mask=m)
        r = moe.last_routing
        cap = math.ceil(capacity_factor * top_k * 25 / len(EXPERTS))
        counts = r.counts()
        assert counts.shape == (3, len(EXPERTS))
        assert (counts <= cap).all()
        # an expert under capacity drops nobody
        for bi in range(3):
            for e in range(len(EXPERTS)):
                chosen = (r.experts[bi] == e).sum()
                assert counts[bi, e] == min(chosen, cap)


def test_capacity_drops_make_a_difference():
    q, k, v, m = problem(3, np.float64, lq=30)
    q += 2.0 * q[:, :1]
    full = workbench.make("moe", experts=EXPERTS, capacity_factor=None, seed=3)
    tight = workbench.make("moe", experts=EXPERTS, capacity_factor=0.3, seed=3)
    assert not np.allclose(full(q, k, v, mask=m), tight(q, k, v, mask=m))
    assert (~tight.last_routing.kept).any()


def test_gates_sum_to_one_per_routed_query():
    for seed in SEEDS:
        q, k, v, m = problem(seed, np.float32, lq=20)
        for cf in (None, 1.25, 0.3):
            moe = workbench.make("moe", experts=EXPERTS, top_k=3, capacity_factor=cf, seed=seed)
            moe(q, k, v, mask=m)
            r = moe.last_routing
            tot = r.gates.sum(axis=-1)
            np.testing.assert_allclose(tot[~r.dropped], 1.0, rtol=0, atol=1e-12)
            assert (tot[r.dropped] == 0).all()
            assert (r.gates[~r.kept] == 0).all() and (r.gates >= 0).all()
            if cf is None:
                assert not r.dropped.any()


# --- weights -----------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_weights_are_gated_expert_weights(backend, dtype):
    for seed in SEEDS:
        q, k, _, m = problem(seed, dtype, lq=12)
        moe = workbench.make("moe", experts=EXPERTS, capacity_factor=0.5, seed=seed, backend=backend)
        w = moe.weights(q, k, mask=m)
        _, _, gates, _ = expected_routing(moe, q)
        experts = [workbench.make(n, backend="numpy", **({"seed": seed + i} if n == "linear" else {}))
                   for i, n in enumerate(EXPERTS)]
        expected = np.zeros(w.shape)
        for bi in range(q.shape[0]):
            for i in range(q.shape[1]):
                for e, g in gates[bi][i].items():
                    expected[bi, i] += g * experts[e].weights(q[bi, i], k[bi], mask=m[bi, i])
        np.testing.assert_allclose(w, expected, rtol=0, atol=TOL[dtype] * 4)
        assert (w[~m] == 0).all() and (w[:, 0] == 0).all()
        routed = ~moe.last_routing.dropped & m.any(axis=-1)
        np.testing.assert_allclose(w.sum(-1)[routed], 1.0, rtol=0, atol=TOL[dtype] * 4)


def test_permuting_keys_and_values_leaves_output_unchanged():
    q, k, v, m = problem(5, np.float64)
    perm = np.random.default_rng(0).permutation(k.shape[1])
    moe = workbench.make("moe", experts=["scaled_dot_product", "flash"], seed=5, capacity_factor=0.5)
    np.testing.assert_allclose(moe(q, k[:, perm], v[:, perm], mask=m[..., perm]), moe(q, k, v, mask=m),
                               rtol=0, atol=1e-12)


def test_numba_equals_numpy():
    for dtype in DTYPES:
        q, k, v, m = problem(11, dtype, lq=15)
        a = workbench.make("moe", experts=EXPERTS, seed=2, backend="numpy")
        b = workbench.make("moe", experts=EXPERTS, seed=2, backend="numba")
        np.testing.assert_allclose(b(q, k, v, mask=m), a(q, k, v, mask=m), rtol=0, atol=TOL[dtype] * 10)


# --- jitter ------------------------------------------------------------------------------------

def test_jitter_only_in_training_and_reproducible():
    q, k, v, m = problem(2, np.float64, lq=30)
    kw = dict(experts=EXPERTS, jitter_noise=0.5, capacity_factor=None, seed=4)
    G = workbench.make("moe", **kw).router_weights(q.shape[-1])
    clean = q @ G.T
    ev = workbench.make("moe", **kw)
    ev(q, k, v, mask=m)
    np.testing.assert_allclose(ev.last_routing.logits, clean, rtol=0, atol=1e-12)
    ev(q, k, v, mask=m)
    np.testing.assert_allclose(ev.last_routing.logits, clean, rtol=0, atol=1e-12)

    runs = []
    for _ in range(2):
        tr = workbench.make("moe", training=True, **kw)
        outs = [tr(q, k, v, mask=m)]
        logits = [tr.last_routing.logits]
        outs.append(tr(q, k, v, mask=m))
        logits.append(tr.last_routing.logits)
        runs.append((outs, logits))
    for j in range(2):  # same seed, same sequence of draws
        np.testing.assert_array_equal(runs[0][0][j], runs[1][0][j])
        np.testing.assert_array_equal(runs[0][1][j], runs[1][1][j])
    assert not np.allclose(runs[0][1][0], clean)  # noise applied
    assert not np.allclose(runs[0][1][0], runs[0][1][1])  # fresh noise per call
    # the noise is multiplicative on the router input: x = q ⊙ u with u in [1 − ε, 1 + ε];
    # so each logit lies within ε·Σ_j |q_j G_ej| of the clean one
    bound = 0.5 * (np.abs(q) @ np.abs(G).T)
    assert (np.abs(runs[0][1][0] - clean) <= bound + 1e-12).all()
    # zero jitter in training is no noise
    z = workbench.make("moe", training=True, **{**kw, "jitter_noise": 0.0})
    z(q, k, v, mask=m)
    np.testing.assert_allclose(z.last_routing.logits, clean, rtol=0, atol=1e-12)


# --- auxiliary losses --------------------------------------------------------------------------

def test_load_balancing_loss_definition_and_extremes():
    rng = np.random.default_rng(0)
    for E, k in [(4, 1), (4, 2), (6, 3)]:
        n = 12 * E
        # perfectly uniform: uniform probabilities and every expert chosen equally often
        chosen = np.array([[(i + s) % E for s in range(k)] for i in range(n)])
        assert abs(load_balancing_loss(np.full((n, E), 1.0 / E), chosen) - 1.0) < 1e-12
        # everything on expert 0, with probability mass on it: the loss grows towards E
        p = np.full((n, E), 0.01 / (E - 1))
        p[:, 0] = 0.99
        skew = np.array([[(0 + s) % E for s in range(k)] for _ in range(n)])
        assert load_balancing_loss(p, skew) > 1.5
        # random: E·Σ f_e P_e written out
        logits = rng.standard_normal((n, E))
        pr = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        ch = np.argsort(-pr, axis=1)[:, :k]
        f = np.array([(ch == e).sum() for e in range(E)]) / (n * k)
        assert abs(load_balancing_loss(pr, ch) - E * sum(f[e] * pr[:, e].mean() for e in range(E))) < 1e-12
        # choices that follow the probabilities: E·Σ P_e² ≥ 1 (Cauchy–Schwarz), = 1 iff uniform
        assert E * (pr.mean(0) ** 2).sum() >= 1.0


def test_mechanism_exposes_losses():
    q, k, v, m = problem(1, np.float64, lq=20)
    moe = workbench.make("moe", experts=EXPERTS, seed=1)
    moe(q, k, v, mask=m)
    r = moe.last_routing
    assert abs(moe.load_balancing_loss - load_balancing_loss(r.probabilities, r.experts)) < 1e-12
    lse = np.log(np.exp(r.logits).sum(-1))
    assert abs(moe.router_z_loss - np.mean(lse ** 2)) < 1e-10
    assert abs(router_z_loss(np.zeros((3, 4))) - math.log(4) ** 2) < 1e-12
    # zero queries: uniform router probabilities, so the balance loss is exactly 1
    moe(np.zeros_like(q), k, v)
    assert abs(moe.load_balancing_loss - 1.0) < 1e-12
    # a skewed batch (all queries alike) routes everything to the same experts: loss > 1
    moe(np.broadcast_to(5 * q[:, :1], q.shape), k, v)
    assert moe.load_balancing_loss > 1.0


def test_routing_keeps_leading_batch_shape():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((2, 3, 5, 8))
    k = rng.standard_normal((2, 3, 4, 8))
    v = rng.standard_normal((2, 3, 4, 6))
    moe = workbench.make("moe", experts=EXPERTS, top_k=2)
    assert moe(q, k, v).shape == (2, 3, 5, 6)
    r = moe.last_routing
    assert r.experts.shape == (2, 3, 5, 2) and r.probabilities.shape == (2, 3, 5, 4)


# --- configuration -----------------------------------------------------------------------------

def test_default_roster_is_the_registered_part_of_the_note():
    moe = workbench.make("moe")
    assert moe.expert_names() == tuple(n for n in DEFAULT_EXPERTS if n in workbench.list_mechanisms())
    assert "linear" in moe.expert_names()


@pytest.mark.parametrize("experts", [["bogus"], [], ["moe"], ["scaled_dot_product", "nope"], ["local_global"]],
                         ids=str)
def test_bad_experts(experts):
    with pytest.raises(ConfigurationError, match="experts"):
        workbench.make("moe", experts=experts)


@pytest.mark.parametrize("params, arg", [({"top_k": 0}, "top_k"), ({"capacity_factor": 0.0}, "capacity_factor"),
                                         ({"jitter_noise": 1.0}, "jitter_noise"), ({"jitter_noise": -0.1},
                                                                                    "jitter_noise"),
                                         ({"seed": -1}, "seed")])
def test_bad_parameters(params, arg):
    with pytest.raises(ConfigurationError, match=arg):
        workbench.make("moe", **params)


def test_top_k_larger_than_experts_is_clamped():
    q, k, v, _ = problem(0, np.float64, mask=False)
    a = workbench.make("moe", experts=["scaled_dot_product", "flash"], top_k=5, capacity_factor=None)
    b = workbench.make("moe", experts=["scaled_dot_product", "flash"], top_k=2, capacity_factor=None)
    np.testing.assert_array_equal(a(q, k, v), b(q, k, v))
    assert a.last_routing.experts.shape[-1] == 2


def test_expert_params_configure_the_experts():
    q, k, v, m = problem(0, np.float64, dv=6)
    moe = workbench.make("moe", experts=["linear"], expert_params={"linear": {"num_features": 16, "kernel": "relu"}},
                         seed=2)
    ref = workbench.make("linear", num_features=16, kernel="relu", seed=2)
    np.testing.assert_allclose(moe(q, k, v, mask=m), ref(q, k, v, mask=m), rtol=0, atol=1e-12)
    with pytest.raises(ConfigurationError, match="expert_params"):
        workbench.make("moe", experts=["linear"], expert_params={"flash": {}})
    with pytest.raises(ConfigurationError, match="expert_params"):
        workbench.make("moe", experts=["linear"], expert_params={"linear": {"num_features": 0}})


@pytest.mark.skipif("edge_featured" not in workbench.list_mechanisms(), reason="edge_featured not registered")
@pytest.mark.parametrize("dv", [1, 3, 4])
def test_edge_featured_expert_keeps_the_value_width(dv):
    q, k, v, m = problem(1, np.float64, dv=dv)
    moe = workbench.make("moe", experts=["edge_featured", "scaled_dot_product"], seed=1)
    assert moe(q, k, v, mask=m).shape == (2, 9, dv)
    with pytest.raises(ConfigurationError, match="experts"):  # two concatenated heads of width 5: 10 != dv
        workbench.make("moe", experts=["edge_featured"], expert_params={"edge_featured": {"num_heads": 2,
                                                                                           "head_dim": 5}})(q, k, v)


# --- graph experts -----------------------------------------------------------------------------

def graph_problem(seed, dtype, n=12, d=8, dv=4, b=2):
    from workbench.graph import Graph

    rng = np.random.default_rng(seed)
    src = np.concatenate([np.arange(n), np.arange(n), rng.integers(0, n, 6)])
    dst = np.concatenate([(np.arange(n) + 1) % n, (np.arange(n) + 3) % n, rng.integers(0, n, 6)])
    g = Graph(n, np.stack([src, dst]), edge_attr=rng.standard_normal((len(src), 3)))
    q, k = (rng.standard_normal((b, n, d)).astype(dtype) for _ in range(2))
    v = rng.standard_normal((b, n, dv)).astype(dtype)
    m = rng.random((b, n, n)) < 0.8
    return g, q, k, v, m


@pytest.mark.skipif("edge_featured" not in workbench.list_mechanisms(), reason="edge_featured not registered")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", ["gatv2", "gatv1"])
def test_one_graph_expert_equals_that_expert_on_the_graph(backend, dtype, variant):
    for seed in SEEDS:
        g, q, k, v, m = graph_problem(seed, dtype)
        moe = workbench.make("moe", experts=["edge_featured"], expert_params={"edge_featured": {"variant": variant}},
                             seed=seed, backend=backend)
        ref = workbench.make("edge_featured", num_heads=1, variant=variant, seed=seed, backend=backend)
        for mask in (None, m):
            out = moe(q, k, v, mask=mask, graph=g)
            expected = ref(q, k, v, mask=mask, graph=g)
            assert out.dtype == dtype
            np.testing.assert_allclose(out, expected, rtol=0, atol=TOL[dtype] * 4)
            # the graph matters: the same expert without it attends every allowed pair
            assert np.abs(out - ref(q, k, v, mask=mask)).max() > 1e-3
            np.testing.assert_allclose(moe.weights(q, k, mask=mask, graph=g), ref.weights(q, k, mask=mask, graph=g),
                                       rtol=0, atol=TOL[dtype])


@pytest.mark.skipif("edge_featured" not in workbench.list_mechanisms(), reason="edge_featured not registered")
def test_graph_goes_only_to_graph_experts():
    """Two experts with a graph: the gated sum of the edge expert on the graph and SDPA on all keys."""
    for seed in SEEDS:
        g, q, k, v, m = graph_problem(seed, np.float64)
        moe = workbench.make("moe", experts=["edge_featured", "scaled_dot_product"], capacity_factor=0.75,
                             seed=seed)
        out = moe(q, k, v, mask=m, graph=g)
        r = moe.last_routing
        gat = workbench.make("edge_featured", num_heads=1, seed=seed)(q, k, v, mask=m, graph=g)
        sdpa = workbench.make("scaled_dot_product")(q, k, v, mask=m)
        expected = np.zeros_like(out)
        for bi in range(q.shape[0]):
            for i in range(q.shape[1]):
                for s in range(r.experts.shape[-1]):
                    e = r.experts[bi, i, s]
                    expected[bi, i] += r.gates[bi, i, s] * (gat if e == 0 else sdpa)[bi, i]
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
        assert (~r.kept).any()  # capacity drops happen, and the gathered rows still line up


def test_graph_without_graph_experts_is_refused():
    g, q, k, v, _ = graph_problem(0, np.float64)
    with pytest.raises(ConfigurationError, match="graph"):
        workbench.make("moe", experts=["scaled_dot_product", "flash"])(q, k, v, graph=g)


def test_two_experts_top_2_match_a_formula_written_here():
    """``out_i = Σ_e p_ie · expert_e(q_i)``, ``p_i = softmax(G q_i)`` (top_k = E, no capacity), with both
    experts written out in NumPy: scaled dot-product attention and its two-head split (no projections)."""
    q, k, v, m = problem(3, np.float64, dv=4)
    moe = workbench.make("moe", experts=["scaled_dot_product", "multi_head"],
                         expert_params={"multi_head": {"num_heads": 2}}, top_k=2, capacity_factor=None, seed=4,
                         backend="numpy")
    G = moe.router_weights(8)  # (E, d): the router's parameters, an input here

    def sdpa(qi, K, V, allowed):
        s = np.where(allowed, K @ qi / math.sqrt(len(qi)), -np.inf)
        if not allowed.any():
            return np.zeros(V.shape[1])
        w = np.exp(s - s.max())
        return (w / w.sum()) @ V

    expected = np.zeros((2, 9, 4))
    for b in range(2):
        for i in range(9):
            z = G @ q[b, i]
            p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
            single = sdpa(q[b, i], k[b], v[b], m[b, i])
            halves = np.concatenate([sdpa(q[b, i, 4 * h:4 * h + 4], k[b, :, 4 * h:4 * h + 4],
                                          v[b, :, 2 * h:2 * h + 2], m[b, i]) for h in range(2)])
            expected[b, i] = p[0] * single + p[1] * halves
    np.testing.assert_allclose(moe(q, k, v, mask=m), expected, rtol=0, atol=1e-12)
