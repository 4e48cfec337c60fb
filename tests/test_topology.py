"""Coherence metrics against their definitions (float64 loops here) and the three-mode policy."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench import topology as T
from workbench.errors import ConfigurationError, DataError, NumericalError, ShapeError, WorkbenchError
from workbench.graph import knn_graph

# --- the definitions, written out -------------------------------------------------------------------


def knn_def(K, k):
    """Neighbours of each key: the k nearest other keys by squared distance, ties by smaller index."""
    n = len(K)
    k = min(k, n - 1)
    out = []
    for i in range(n):
        d = sorted((sum((K[i][t] - K[j][t]) ** 2 for t in range(len(K[i]))), j) for j in range(n) if j != i)
        out.append([j for _, j in d[:k]])
    return out


def cos_def(a, b):
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    if na < 1e-8 or nb < 1e-8:
        return 0.0
    return max(-1.0, min(1.0, sum(x * y for x, y in zip(a, b)) / (na * nb)))


def metrics_def(K, k):
    K = [list(map(float, row)) for row in K]
    n = len(K)
    if n < 2:
        return dict.fromkeys(T.METRICS, 1.0)
    nb = knn_def(K, k)
    edges = [(i, j) for i in range(n) for j in nb[i]]
    cos = [cos_def(K[i], K[j]) for i, j in edges]
    bm = sum(abs(i - j) <= n // 4 for i, j in edges) / len(edges)
    m = n // 2
    cut = 1 - sum((i < m) != (j < m) for i, j in edges) / len(edges)
    variances = []
    for i in range(n):
        c = [cos_def(K[i], K[j]) for j in nb[i]]
        mu = sum(c) / len(c)
        variances.append(sum((x - mu) ** 2 for x in c) / len(c))
    dis = 1 - min(1.0, sum(variances) / n)
    mu = sum(cos) / len(cos)
    sigma = math.sqrt(sum((x - mu) ** 2 for x in cos) / len(cos))
    sv = min(1.0, max(0.0, mu * (1 - min(1.0, sigma))))
    # Fiedler value of the normalised Laplacian of the symmetrised graph
    a = np.zeros((n, n))
    for i, j in edges:
        a[i, j] = a[j, i] = 1.0
    deg = a.sum(1)
    lap = np.eye(n) - a / np.sqrt(np.outer(deg, deg))
    lam = np.sort(np.linalg.eigvalsh(lap))[1]
    gap = 0.0 if lam < 1e-9 else min(1.0, lam)
    return {"boundary_mass": bm, "cut_proxy": cut, "disagreement": dis, "similarity_variance": sv,
            "spectral_gap": gap}


# --- metrics ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("n, d, k", [(1, 3, 8), (2, 1, 8), (3, 2, 1), (9, 4, 3), (25, 5, 8), (30, 16, 4)])
@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_match_their_definitions(n, d, k, seed):
    rng = np.random.default_rng(seed)
    K = rng.standard_normal((n, d)) + rng.standard_normal(d)  # off-centre: cosines not ~0
    expected = metrics_def(K, k)
    got = T.coherence_scores(K, k, T.METRICS)
    assert set(got) == set(T.METRICS)
    for name in T.METRICS:
        assert got[name] == pytest.approx(expected[name], abs=1e-10), name
        assert 0.0 <= got[name] <= 1.0
        assert getattr(T, name)(K, k) == pytest.approx(expected[name], abs=1e-10)
    assert T.window_coherence(K, k, T.METRICS) == pytest.approx(np.mean([expected[m] for m in T.METRICS]), abs=1e-10)


def test_metrics_on_adversarial_windows():
    """Exact distance ties (integer lattice, ties by index), zero keys (cosine 0), duplicates, float32."""
    lattice = np.array([[x, y] for x in range(4) for y in range(3)], dtype=np.float64)
    with_zero = np.vstack([np.zeros((2, 3)), np.random.default_rng(3).standard_normal((8, 3))])
    duplicates = np.repeat(np.random.default_rng(4).standard_normal((4, 5)), 3, axis=0)
    for K, k in ((lattice, 4), (with_zero, 3), (duplicates, 2), (lattice.astype(np.float32), 5)):
        expected = metrics_def(K, k)
        got = T.coherence_scores(K, k, T.METRICS)
        for name in T.METRICS:
            assert got[name] == pytest.approx(expected[name], abs=1e-9), name


def test_spectral_gap_large_windows_use_lanczos_and_agree_with_dense():
    rng = np.random.default_rng(5)
    K = rng.standard_normal((260, 8))
    g = knn_graph(K, 6)
    a = np.zeros((260, 260))
    a[g.dst, g.src] = 1
    a = np.maximum(a, a.T)
    deg = a.sum(1)
    lam = np.sort(np.linalg.eigvalsh(np.eye(260) - a / np.sqrt(np.outer(deg, deg))))[1]
    assert T.spectral_gap(K, 6) == pytest.approx(min(1.0, lam), abs=1e-8)
    # two far-apart clusters: the kNN graph falls apart, gap 0; one blob: clearly positive
    two = np.vstack([rng.standard_normal((150, 8)), rng.standard_normal((150, 8)) + 100.0])
    assert T.spectral_gap(two, 6) == 0.0
    assert T.spectral_gap(K, 6) > 0.1


def test_upstream_cases():
    ramp = np.tile(0.1 * np.arange(20)[:, None], (1, 32))
    c = T.window_coherence(ramp, 5, ["BoundaryMass", "SimilarityVariance"])  # upstream names accepted
    assert 0.0 <= c <= 1.0
    assert T.window_coherence(np.ones((10, 4)), 5, ["disagreement"]) > 0.8
    assert T.boundary_mass(ramp, 5) == 1.0  # ramp neighbours are index neighbours
    assert T.window_coherence(np.ones((1, 4)), 8, T.METRICS) == 1.0  # one key


def test_order_dependence_is_as_documented():
    rng = np.random.default_rng(6)
    K = np.linspace(1, 5, 40)[:, None] * rng.standard_normal(3) + 0.01 * rng.standard_normal((40, 3))  # a line
    perm = rng.permutation(40)
    for name in T.ORDER_FREE_METRICS:
        assert T.coherence_scores(K[perm], 5, [name])[name] == pytest.approx(T.coherence_scores(K, 5, [name])[name],
                                                                            abs=1e-12)
    assert T.boundary_mass(K, 5) == 1.0 and T.boundary_mass(K[perm], 5) < 0.7


def test_precomputed_graph_is_reused():
    rng = np.random.default_rng(7)
    K = rng.standard_normal((50, 6))
    g = knn_graph(K, 5)
    assert T.coherence_scores(K, 5, T.METRICS, graph=g) == pytest.approx(T.coherence_scores(K, 5, T.METRICS))
    looped = knn_graph(K, 6, self_loops=True)  # i is its own first neighbour: ignored
    assert T.coherence_scores(K, 5, T.METRICS, graph=looped) == pytest.approx(T.coherence_scores(K, 5, T.METRICS))
    with pytest.raises(ShapeError, match="graph"):
        T.window_coherence(K[:40], 5, graph=g)


def _check(excinfo, cls, arg):
    assert issubclass(excinfo.type, cls) and issubclass(excinfo.type, WorkbenchError)
    assert arg in str(excinfo.value)


@pytest.mark.parametrize("K, cls", [
    (np.zeros((0, 4)), ShapeError), (np.zeros((3, 0)), ShapeError), (np.zeros(5), ShapeError),
    (np.zeros((2, 3, 4)), ShapeError), ([[1.0, np.nan]], NumericalError), ([[1.0, np.inf], [0, 1]], NumericalError),
    ("keys", ShapeError),
], ids=["empty", "no-dim", "1-D", "3-D", "nan", "inf", "str"])
def test_bad_keys(K, cls):
    with pytest.raises(cls) as e:
        T.window_coherence(K)
    _check(e, cls, "K")


@pytest.mark.parametrize("metrics", [[], (), "bogus", ["boundary_mass", "nope"], 3])
def test_bad_metric_lists(metrics):
    with pytest.raises(ConfigurationError) as e:
        T.window_coherence(np.ones((4, 2)), 2, metrics)
    _check(e, ConfigurationError, "metrics")


@pytest.mark.parametrize("k", [0, -1, 2.5, True, "3"])
def test_bad_k(k):
    with pytest.raises(ConfigurationError) as e:
        T.window_coherence(np.ones((4, 2)), k)
    _check(e, ConfigurationError, "k")


# --- the policy ---------------------------------------------------------------------------------------

S, C, F = T.Mode.STABLE, T.Mode.CAUTIOUS, T.Mode.FREEZE


def reference_mode(mode, c, stable=0.7, freeze=0.3, h=0.05):
    """The transition table of the gating policy (docs/upstream.md#topology), written independently."""
    raw = S if c >= stable else F if c <= freeze else C
    table = {(S, C): c < stable - h, (C, S): c > stable + h, (C, F): c < freeze - h, (F, C): c > freeze + h}
    if (mode, raw) in table:
        return raw if table[(mode, raw)] else mode
    return raw


def modes_of(sequence, **cfg):
    p = T.AttentionPolicy(**cfg)
    return [p.determine_mode(c) for c in sequence]


def test_spec_sequences():
    assert modes_of([0.9, 0.5, 0.1]) == [S, C, F]
    assert modes_of([0.8, 0.65, 0.55], hysteresis=0.1) == [S, S, C]
    # defaults: from Cautious, Freeze needs c < 0.25; from Stable c <= 0.3 freezes at once
    assert modes_of([0.5, 0.26, 0.25, 0.24]) == [C, C, C, F]
    assert modes_of([0.3]) == [F]
    # from Freeze, c > 0.35 returns to Cautious, c >= 0.7 jumps straight to Stable
    assert modes_of([0.1, 0.349, 0.351]) == [F, F, C]
    assert modes_of([0.1, 0.7]) == [F, S]
    # from Cautious, Stable needs c > 0.75
    assert modes_of([0.5, 0.74, 0.76]) == [C, C, S]


def test_hysteresis_stops_oscillation():
    wobble = [0.7 + 0.03 * (-1) ** i for i in range(20)]  # 0.73, 0.67, ... around the threshold
    assert set(modes_of(wobble)) == {S}
    assert modes_of(wobble, hysteresis=0.0)[:4] == [S, C, S, C]  # without it: flips every token
    assert set(modes_of([0.5] + wobble)) == {C}
    around_freeze = [0.5] + [0.3 + 0.04 * (-1) ** i for i in range(10)]
    assert set(modes_of(around_freeze)) == {C}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=40),
       st.floats(0, 1), st.floats(0, 1), st.floats(0, 0.3))
def test_policy_equals_the_transition_table(seq, a, b, h):
    stable, freeze = max(a, b), min(a, b)
    mode, expected = S, []
    for c in seq:
        mode = reference_mode(mode, c, stable, freeze, h)
        expected.append(mode)
    assert modes_of(seq, stable_threshold=stable, freeze_threshold=freeze, hysteresis=h) == expected


def test_widths_permissions_and_factors():
    p = T.AttentionPolicy()
    out = []
    for c in (0.9, 0.5, 0.1):
        p.determine_mode(c)
        out.append((p.attention_width(100), p.allows_updates(), p.allows_writes(), p.sparsity_factor()))
    assert out == [(100, True, True, 1.0), (50, True, True, 2.0), (0, False, False, math.inf)]
    p = T.AttentionPolicy(cautious_width_factor=0.01)
    p.determine_mode(0.5)
    assert p.attention_width(10) == 1  # never below one key


def test_update_period_refreshes_every_period_tokens():
    calls = []
    p = T.AttentionPolicy(update_period=4)
    assert p.needs_update()
    for t in range(13):
        p.step(lambda: calls.append(t) or 0.9)
    assert calls == [0, 4, 8, 12]  # upstream: 0, 5, 10
    assert [r.step for r in p.history] == [0, 4, 8, 12]
    p = T.AttentionPolicy()  # upstream: a new window needs an update, not after one, again after 4 ticks
    assert p.needs_update()
    p.refresh(0.9)
    assert not p.needs_update()
    p.tick(3)
    assert not p.needs_update()
    p.tick()
    assert p.needs_update()
    p.mark_stale()
    assert p.is_stale


def test_empty_windows_leave_the_refresh_due():
    p = T.AttentionPolicy(update_period=3)
    seq = [None, None, 0.1, None, 0.9, 0.9, None, 0.9, 0.5]
    used = [p.step(c) for c in seq]
    assert used == [S, S, F, F, F, S, S, S, C]
    assert [r.step for r in p.history] == [2, 5, 8]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(0, 1)), min_size=0, max_size=30), st.integers(1, 5),
       st.integers(0, 6))
def test_run_equals_stepping(seq, period, warm):
    a = T.AttentionPolicy(update_period=period)
    for _ in range(warm):  # arbitrary entering state
        a.step(0.5)
    b = a.copy()
    stepped = [a.step(c) for c in seq]
    codes, coh = b.run(len(seq), lambda t: seq[t])
    assert list(T.mode_names(codes)) == [m.value for m in stepped]
    assert a.history == b.history and a.steps == b.steps and a.tokens_since_update == b.tokens_since_update
    for t in range(len(seq)):  # the coherence in force is that of the last refresh at or before t
        last = [r.coherence for r in b.history if r.step <= t + warm]
        assert coh[t] == pytest.approx(last[-1] if last else 0.5 if warm else np.nan, nan_ok=True)


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.none(), st.floats(0, 1)), st.integers(0, 40), st.integers(1, 5), st.integers(0, 7),
       st.floats(0, 1), st.integers(1, 12))
def test_run_constant_equals_run(c, tokens, period, warm, warm_c, history):
    a = T.AttentionPolicy(update_period=period, history_size=history)
    for _ in range(warm):
        a.step(warm_c)
    b = a.copy()
    codes_a, coh_a = a.run(tokens, lambda t: c)
    calls = []
    codes_b, coh_b = b.run_constant(tokens, lambda: calls.append(1) or c)
    np.testing.assert_array_equal(codes_a, codes_b)
    np.testing.assert_array_equal(coh_a, coh_b)
    assert a.history == b.history and a.steps == b.steps
    assert (a.tokens_since_update, a.is_stale, a.mode) == (b.tokens_since_update, b.is_stale, b.mode)
    assert len(calls) <= 1


def test_history_is_bounded_and_plottable():
    p = T.AttentionPolicy(history_size=5)
    for c in (0.9, 0.5, 0.1, 0.2, 0.9, 0.9, 0.9):
        p.determine_mode(c)
    assert len(p.history) == 5 and p.history[-1].mode is S
    arr = p.history_arrays()
    assert list(arr["mode"]) == ["freeze", "freeze", "stable", "stable", "stable"]
    assert list(arr["code"]) == [2, 2, 0, 0, 0] and arr["coherence"][0] == 0.1
    assert p.mode_stability() == pytest.approx(3 / 5)
    assert T.AttentionPolicy().history_arrays()["step"].shape == (0,)
    assert len(T.AttentionPolicy().history) == 0 and T.AttentionPolicy().mode_stability() == 1.0
    q = p.copy()
    q.determine_mode(0.1)
    assert p.mode is S and q.mode is F  # independent copies
    p.reset()
    assert p.mode is S and p.history == [] and p.coherence is None and p.needs_update()
    assert T.AttentionPolicy(history_size=2000).history_size > 16  # longer than upstream's 16


@pytest.mark.parametrize("kwargs, arg", [
    ({"stable_threshold": 1.5}, "stable_threshold"), ({"freeze_threshold": -0.1}, "freeze_threshold"),
    ({"stable_threshold": 0.3, "freeze_threshold": 0.6}, "freeze_threshold"), ({"hysteresis": -0.01}, "hysteresis"),
    ({"update_period": 0}, "update_period"), ({"cautious_width_factor": 0.0}, "cautious_width_factor"),
    ({"cautious_sparsity_factor": 0.5}, "cautious_sparsity_factor"), ({"history_size": 0}, "history_size"),
    ({"stable_threshold": float("nan")}, "stable_threshold"), ({"update_period": 2.0}, "update_period"),
])
def test_bad_policy_configuration(kwargs, arg):
    with pytest.raises(ConfigurationError) as e:
        T.AttentionPolicy(**kwargs)
    _check(e, ConfigurationError, arg)


@pytest.mark.parametrize("c, cls", [(float("nan"), NumericalError), (1.5, DataError), (-0.1, DataError),
                                    ("high", DataError)])
def test_bad_coherence(c, cls):
    with pytest.raises(cls) as e:
        T.AttentionPolicy().determine_mode(c)
    _check(e, cls, "coherence")
