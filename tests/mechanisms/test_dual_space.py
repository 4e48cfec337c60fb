"""Dual-space attention against its formula, written out here with loops in float64."""
from __future__ import annotations

import math

import numpy as np
import pytest

import workbench
from workbench.errors import ConfigurationError, ShapeError
from workbench.graph import Graph

BACKENDS = ("numpy", "numba")
DTYPES = (np.float32, np.float64)
W_TOL = {np.float32: 1e-5, np.float64: 1e-10}
SEEDS = (0, 1, 2)
CURVATURES = (0.5, 1.0, 2.0)
MARGIN = 1e-5  # the mechanism's relative projection margin


def problem(seed, dtype, b=2, lq=6, lk=7, d=5, dv=3, scale=1.0, mask=True):
    rng = np.random.default_rng(seed)
    q = (scale * rng.standard_normal((b, lq, d))).astype(dtype)
    k = (scale * rng.standard_normal((b, lk, d))).astype(dtype)
    v = rng.standard_normal((b, lk, dv)).astype(dtype)
    m = None
    if mask:
        m = rng.random((b, lq, lk)) < 0.7
        m[:, 0, :] = False
        m[:, 1, :] = True
    return q, k, v, m


def proj(x, c):
    n = math.sqrt(sum(float(t) ** 2 for t in x))
    r = (1 - MARGIN) / math.sqrt(c)
    return [float(t) * (r / n if n > r else 1.0) for t in x]


def dist(x, y, c):
    xx = sum(t * t for t in x)
    yy = sum(t * t for t in y)
    dd = sum((a - b) ** 2 for a, b in zip(x, y))
    z = 2 * c * dd / ((1 - c * xx) * (1 - c * yy))
    return math.log1p(z + math.sqrt(z * (z + 2))) / math.sqrt(c)  # arcosh(1 + z), exact near 0


def matvec(W, x):
    return [sum(W[r][j] * float(x[j]) for j in range(len(x))) for r in range(len(W))]


def logits(q, k, ae, ah, c, T, W=None):
    """``s_ij`` for one sequence, loops."""
    d = len(q[0])
    I = np.eye(d)
    WE = I if W is None else W["W_E"]
    WH = I if W is None else W["W_H"]
    s = np.zeros((len(q), len(k)))
    for i in range(len(q)):
        qe, qh = matvec(WE, q[i]), proj(matvec(WH, q[i]), c)
        for j in range(len(k)):
            ke, kh = matvec(WE, k[j]), proj(matvec(WH, k[j]), c)
            s[i, j] = (ae * sum(a * b for a, b in zip(qe, ke)) / math.sqrt(d) - ah * dist(qh, kh, c)) / T
    return s


def softmax_rows(s, allowed):
    w = np.zeros_like(s)
    for i in range(s.shape[0]):
        idx = [j for j in range(s.shape[1]) if allowed[i, j]]
        if idx:
            m = max(s[i, j] for j in idx)
            e = {j: math.exp(s[i, j] - m) for j in idx}
            z = sum(e.values())
            for j in idx:
                w[i, j] = e[j] / z
    return w


def expected(mech, q, k, v, m):
    W = mech.projection_weights(q.shape[-1]) if mech.projections else None
    ws, outs = [], []
    for bi in range(q.shape[0]):
        s = logits(q[bi], k[bi], mech.euclidean_weight, mech.hyperbolic_weight, mech.c, mech.temperature, W)
        allowed = np.ones(s.shape, bool) if m is None else m[bi]
        w = softmax_rows(s, allowed)
        o = w @ v[bi].astype(np.float64)
        if W is not None and v.shape[-1] == q.shape[-1]:
            o = np.array([matvec(W["W_O"], row) for row in o])
        ws.append(w)
        outs.append(o)
    return np.stack(ws), np.stack(outs)


# --- Appendix A reduction ----------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_reduces_to_scaled_dot_product(backend, dtype):
    """euclidean_weight 1, hyperbolic_weight 0, T = 1, identity projections = SDPA (1e-5 / 1e-10)."""
    for seed in SEEDS:
        q, k, v, m = problem(seed, dtype)
        mech = workbench.make("dual_space", euclidean_weight=1.0, hyperbolic_weight=0.0, temperature=1.0,
                              projections=False, backend=backend)
        sdpa = workbench.make("scaled_dot_product", backend="numpy")
        tol = 1e-4 if dtype == np.float32 else 1e-10
        np.testing.assert_allclose(mech(q, k, v, mask=m), sdpa(q, k, v, mask=m), rtol=0, atol=tol)
        np.testing.assert_allclose(mech.weights(q, k, mask=m), sdpa.weights(q, k, mask=m), rtol=0, atol=tol)


# --- the formula -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", CURVATURES)
@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_hyperbolic_only_is_softmax_of_negative_distance(dtype, c, temperature):
    for seed in SEEDS:
        q, k, v, m = problem(seed, dtype, scale=0.4 if seed else 3.0)  # seed 0: most points projected
        mech = workbench.make("dual_space", euclidean_weight=0.0, hyperbolic_weight=1.0, c=c,
                              temperature=temperature, projections=False)
        w_exp, o_exp = expected(mech, q, k, v, m)
        np.testing.assert_allclose(mech.weights(q, k, mask=m), w_exp, rtol=0, atol=W_TOL[dtype])
        np.testing.assert_allclose(mech(q, k, v, mask=m), o_exp, rtol=0, atol=W_TOL[dtype] * 10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", CURVATURES)
@pytest.mark.parametrize("dv", [3, 5])  # dv == d applies W_O
def test_full_formula_with_seeded_projections(dtype, c, dv):
    for seed in SEEDS:
        q, k, v, m = problem(seed, dtype, dv=dv)
        mech = workbench.make("dual_space", euclidean_weight=0.7, hyperbolic_weight=1.3, c=c, temperature=0.8,
                              projections=True, seed=seed)
        w_exp, o_exp = expected(mech, q, k, v, m)
        np.testing.assert_allclose(mech.weights(q, k, mask=m), w_exp, rtol=0, atol=W_TOL[dtype])
        out = mech(q, k, v, mask=m)
        assert out.dtype == dtype and out.shape == (2, 6, dv)
        np.testing.assert_allclose(out, o_exp, rtol=0, atol=W_TOL[dtype] * 10)


def test_projection_weights_are_seeded_and_scaled():
    a = workbench.make("dual_space", seed=3).projection_weights(16)
    b = workbench.make("dual_space", seed=3).projection_weights(16)
    c = workbench.make("dual_space", seed=4).projection_weights(16)
    for n in ("W_E", "W_H", "W_O"):
        np.testing.assert_array_equal(a[n], b[n])
        assert not np.array_equal(a[n], c[n])
        assert np.abs(a[n]).max() <= 1 / math.sqrt(16)
    assert not np.array_equal(a["W_E"], a["W_H"])


@pytest.mark.parametrize("dtype", DTYPES)
def test_lower_temperature_gives_larger_max_weight(dtype):
    for seed in SEEDS:
        q, k, _, m = problem(seed, dtype, lq=8, lk=9)
        prev = None
        for T in (4.0, 2.0, 1.0, 0.5, 0.25, 0.1):
            w = workbench.make("dual_space", temperature=T, seed=seed).weights(q, k, mask=m)
            mx = w.max(axis=-1)
            if prev is not None:
                rows = m.any(-1)
                assert (mx[rows] >= prev[rows] - W_TOL[dtype]).all()
                assert (mx[rows] > prev[rows]).any()
            prev = mx


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_masks_give_exact_zeros(backend, dtype):
    for seed in SEEDS:
        q, k, v, m = problem(seed, dtype)
        mech = workbench.make("dual_space", seed=seed, backend=backend)
        w = mech.weights(q, k, mask=m)
        out = mech(q, k, v, mask=m)
        assert (w[~m] == 0).all()
        assert (w[:, 0] == 0).all() and (out[:, 0] == 0).all()
        np.testing.assert_allclose(w.sum(-1)[:, 1:], 1.0, rtol=0, atol=W_TOL[dtype])
        allmasked = np.zeros((6, 7), bool)
        assert (mech(q, k, v, mask=allmasked) == 0).all()


def test_float32_agrees_with_float64():
    q, k, v, m = problem(9, np.float64)
    ref = workbench.make("dual_space", backend="numpy")(q, k, v, mask=m)
    f32 = workbench.make("dual_space")(q.astype(np.float32), k.astype(np.float32), v.astype(np.float32), mask=m)
    np.testing.assert_allclose(f32, ref, rtol=0, atol=1e-5)


def test_permuting_keys_and_values_leaves_output_unchanged():
    q, k, v, m = problem(4, np.float64)
    perm = np.random.default_rng(0).permutation(k.shape[1])
    mech = workbench.make("dual_space")
    np.testing.assert_allclose(mech(q, k[:, perm], v[:, perm], mask=m[..., perm]), mech(q, k, v, mask=m),
                               rtol=0, atol=1e-12)


def test_space_contributions():
    q, k, _, _ = problem(1, np.float64)
    mech = workbench.make("dual_space", projections=False, c=0.5)
    e, h = mech.space_contributions(q, k)
    assert e.shape == h.shape == (2, 6, 7)
    np.testing.assert_allclose(e[1, 2, 3], np.dot(q[1, 2], k[1, 3]) / math.sqrt(5), rtol=0, atol=1e-12)
    np.testing.assert_allclose(h[1, 2, 3], dist(proj(q[1, 2], 0.5), proj(k[1, 3], 0.5), 0.5), rtol=0, atol=1e-10)
    assert (h >= 0).all()


# --- three-way fusion --------------------------------------------------------------------------

def ring_graph(n):
    src = np.arange(n)
    return Graph(n, np.stack([np.concatenate([src, (src + 2) % n]), np.concatenate([(src + 1) % n, src])]))


def expected_fusion(mech, q, k, v, m, adj):
    bg, bl, bc = mech.fusion_weights
    W = mech.projection_weights(q.shape[-1]) if mech.projections else None
    args = (mech.euclidean_weight, mech.hyperbolic_weight, mech.c, mech.temperature, W)
    ws = []
    for bi in range(q.shape[0]):
        allowed = np.ones((q.shape[1], k.shape[1]), bool) if m is None else m[bi]
        s = logits(q[bi], k[bi], *args)
        a_g = softmax_rows(s, allowed & adj)
        a_l = softmax_rows(s, allowed)
        ctx = a_g @ k[bi].astype(np.float64)
        a_c = softmax_rows(logits(ctx, k[bi], *args), allowed)
        w = np.zeros_like(s)
        for i in range(s.shape[0]):
            has_g = (allowed[i] & adj[i]).any()
            tot = bl + (bg + bc if has_g else 0.0)
            w[i] = (bl * a_l[i] + ((bg * a_g[i] + bc * a_c[i]) if has_g else 0.0)) / tot
        ws.append(w)
    w = np.stack(ws)
    return w, w @ v.astype(np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("self_loops", [True, False])
def test_graph_latent_cross_fusion(dtype, self_loops):
    n = 7
    g = ring_graph(n)
    adj = np.zeros((n, n), bool)
    adj[g.edge_index[1], g.edge_index[0]] = True
    if self_loops:
        np.fill_diagonal(adj, True)
    for seed in SEEDS:
        q, k, v, m = problem(seed, dtype, lq=n, lk=n)
        m[:, 2, :] = ~adj[2]  # node 2: no allowed graph neighbour, latent only
        mech = workbench.make("dual_space", fusion="graph_latent_cross", fusion_weights=(0.5, 0.3, 0.2),
                              add_self_loops=self_loops, projections=False, seed=seed)
        w_exp, o_exp = expected_fusion(mech, q, k, v, m, adj)
        w = mech.weights(q, k, mask=m, graph=g)
        np.testing.assert_allclose(w, w_exp, rtol=0, atol=W_TOL[dtype])
        assert (w[~m] == 0).all()
        np.testing.assert_allclose(mech(q, k, v, mask=m, graph=g), o_exp, rtol=0, atol=W_TOL[dtype] * 10)
        rows = m.any(-1)
        np.testing.assert_allclose(w.sum(-1)[rows], 1.0, rtol=0, atol=W_TOL[dtype])
        # a raw edge_index works as well
        np.testing.assert_allclose(mech.weights(q, k, mask=m, graph=g.edge_index), w, rtol=0, atol=0)


def test_fusion_reductions():
    n = 6
    g = ring_graph(n)
    q, k, v, _ = problem(3, np.float64, lq=n, lk=n)
    kw = dict(fusion="graph_latent_cross", seed=3)
    latent = workbench.make("dual_space", fusion_weights=(0, 1, 0), **kw)
    np.testing.assert_allclose(latent(q, k, v, graph=g), workbench.make("dual_space", seed=3)(q, k, v),
                               rtol=0, atol=1e-12)
    graph_only = workbench.make("dual_space", fusion_weights=(1, 0, 0), **kw)
    adj = np.eye(n, dtype=bool)
    adj[g.edge_index[1], g.edge_index[0]] = True
    w = graph_only.weights(q, k, graph=g)
    np.testing.assert_allclose(w, workbench.make("dual_space", seed=3).weights(q, k, mask=adj), rtol=0, atol=1e-12)


def test_fusion_needs_a_graph():
    q, k, v, _ = problem(0, np.float64, lq=5, lk=5)
    mech = workbench.make("dual_space", fusion="graph_latent_cross")
    with pytest.raises(ConfigurationError, match="graph"):
        mech(q, k, v)
    with pytest.raises(ConfigurationError, match="graph"):
        mech.weights(q, k)
    with pytest.raises(ShapeError, match="graph"):
        mech(q, k, v, graph=ring_graph(4))
    with pytest.raises(ShapeError, match="graph"):
        mech(q, k, v, graph=np.array([[0.5], [1.0]]))


@pytest.mark.parametrize("params, arg", [({"temperature": 0.0}, "temperature"), ({"c": 0.0}, "c"),
                                         ({"c": -1.0}, "c"), ({"euclidean_weight": -1.0}, "euclidean_weight"),
                                         ({"fusion": "bogus"}, "fusion"),
                                         ({"fusion_weights": (1.0, -1.0, 0.0)}, "fusion_weights"),
                                         ({"fusion_weights": (0.0, 0.0, 0.0)}, "fusion_weights")])
def test_bad_parameters(params, arg):
    with pytest.raises(ConfigurationError, match=arg):
        workbench.make("dual_space", **params)


@pytest.mark.parametrize("c", CURVATURES)
def test_coincident_and_nearby_points(c):
    """d_c(x, x) = 0 exactly and tiny distances stay accurate (no Gram-matrix cancellation)."""
    rng = np.random.default_rng(0)
    q = rng.standard_normal((1, 6, 4)) * 0.3
    k = q + rng.standard_normal(q.shape) * np.array([0, 1e-9, 1e-7, 1e-5, 1e-3, 1e-1])[None, :, None]
    mech = workbench.make("dual_space", projections=False, c=c)
    _, h = mech.space_contributions(q, q)
    assert (np.diag(h[0]) == 0).all()
    _, h = mech.space_contributions(q, k)
    for i in range(6):
        ref = dist(proj(q[0, i], c), proj(k[0, i], c), c)
        assert abs(h[0, i, i] - ref) <= 1e-9 * max(ref, 1e-6), (i, h[0, i, i], ref)


# --- Numba backend ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fusion", ["dual", "graph_latent_cross"])
@pytest.mark.parametrize("params", [{}, {"projections": False, "c": 0.5, "temperature": 0.3},
                                    {"euclidean_weight": 0.0, "c": 2.0}, {"hyperbolic_weight": 0.0}], ids=str)
def test_numba_equals_numpy(dtype, fusion, params):
    """Both backends compute in float64: they agree to float64 rounding (then the output dtype's),
    on unit inputs, on large ones (every point projected onto the ball's margin), with keys that
    equal queries or lie next to them, and masked rows (tiles: tests/kernels/test_curvature_kernels)."""
    n = 40
    g = ring_graph(n)
    for seed, amp in ((0, 1.0), (1, 30.0), (2, 0.3)):
        rng = np.random.default_rng(seed)
        q = (amp * rng.standard_normal((2, n, 6))).astype(dtype)
        k = (amp * rng.standard_normal((2, n, 6))).astype(dtype)
        k[:, :10] = q[:, :10]
        k[:, 10:20] = q[:, 10:20] * (1 + 1e-6)
        v = rng.standard_normal((2, n, 6)).astype(dtype)
        m = rng.random((2, n, n)) < 0.8
        m[:, ::7] = False
        kw = dict(fusion=fusion, seed=seed, **params)
        ref = workbench.make("dual_space", backend="numpy", **kw)
        fast = workbench.make("dual_space", backend="numba", **kw)
        call = dict(mask=m, graph=g if fusion != "dual" else None)
        tol = 1e-6 if dtype == np.float32 else 1e-10
        out = fast(q, k, v, **call)
        assert out.dtype == dtype
        np.testing.assert_allclose(out, ref(q, k, v, **call), rtol=0, atol=tol)
        np.testing.assert_allclose(fast.weights(q, k, **call), ref.weights(q, k, **call), rtol=0, atol=tol)
        assert (out[:, ::7] == 0).all()


@pytest.mark.parametrize("shared_mask", [False, True])
def test_batch_chunks_equal_one_call(monkeypatch, shared_mask):
    """The Numba forward converts and projects the batch chunk by chunk: chunks of one item give the
    same result as one chunk (masks per item or shared, W_O applied per chunk)."""
    import workbench.mechanisms.dual_space as mod

    q, k, v, m = problem(5, np.float32, b=5, dv=5)
    m = m[:1, 0] if shared_mask else m
    mech = workbench.make("dual_space", backend="numba", seed=5)
    whole = mech(q, k, v, mask=m)
    monkeypatch.setattr(mod, "BATCH_CHUNK", 1)
    np.testing.assert_array_equal(mech(q, k, v, mask=m), whole)
