"""Report values against their definitions (written out here in float64), both profiles, JSON, bad input."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from workbench.errors import ConfigurationError, DataError, NumericalError, ShapeError, WorkbenchError
from workbench.report import METRIC_NAMES, Report, analyze_keys, build_report
from workbench.transport import random_directions


def knn_affinity_dense(x, k, sigma):
    """Union-symmetrised Gaussian kNN affinity (ties by the smaller index), dense float64."""
    x = np.asarray(x, np.float64)
    n = len(x)
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    w = np.zeros((n, n))
    for i in range(n):
        order = sorted((d[i, j], j) for j in range(n) if j != i)[:k]
        for dist, j in order:
            w[i, j] = w[j, i] = math.exp(-dist * dist / (2 * sigma * sigma))
    return w


def median_knn_distance(x, k):
    x = np.asarray(x, np.float64)
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    dist = np.sort(d, axis=1)[:, :k].ravel()
    return float(np.median(dist[dist > 0]))  # positive kNN distances


def dirichlet(x, w):
    """½ Σ_ij w_ij ‖x_i − x_j‖² by loops."""
    x = np.asarray(x, np.float64).reshape(len(w), -1)
    n = len(w)
    return 0.5 * sum(w[i, j] * float(np.sum((x[i] - x[j]) ** 2)) for i in range(n) for j in range(n))


def entropy(w):
    return -sum(float(p) * math.log(float(p)) for p in w if p > 1e-10)


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


@pytest.fixture
def data(rng):
    K = rng.standard_normal((40, 6)) + 0.5
    q = rng.standard_normal(6)
    return q, K


# -- each value against its definition -------------------------------------------------------------

def test_ot_distance_default_and_compat(data):
    q, K = data
    d = K - q
    th2 = random_directions(64, 6, seed=3)
    sw2 = math.sqrt(np.mean((d @ th2.T) ** 2))  # SW_2 between the Dirac at q and the keys
    r = build_report(q, K, seed=3)
    assert r.metric("ot_distance").value == pytest.approx(sw2 / np.linalg.norm(K, axis=1).mean(), rel=1e-9)
    th1 = random_directions(8, 6, seed=3)
    upstream = np.mean(np.abs(d @ th1.T))  # mean_j mean_p |<θ_p, q − k_j>|
    c = build_report(q, K, profile="compat", seed=3)
    assert c.metric("ot_distance").value == pytest.approx(upstream, rel=1e-9)
    assert c.values["ot_mean_distance"] == pytest.approx(upstream, rel=1e-9)


def test_h0_persistence_values(data, kruskal_deaths):
    q, K = data
    deaths = kruskal_deaths(K)
    assert len(deaths) == len(K) - 1
    r = build_report(q, K)
    assert r.metric("h0_persistence").value == pytest.approx(deaths.mean() / np.median(deaths), rel=1e-9)
    assert r.values["h0_death_sum"] == pytest.approx(deaths.sum(), rel=1e-9)
    assert build_report(q, K, profile="compat").metric("h0_persistence").value == pytest.approx(deaths.sum(), rel=1e-9)


def test_diffusion_energy_default_and_compat(data):
    q, K = data
    x = K @ q  # raw logits
    sigma = median_knn_distance(K, 8)
    w = knn_affinity_dense(K, 8, sigma)
    xc = x - x.mean()
    r = build_report(q, K)
    assert r.metric("diffusion_energy").value == pytest.approx(dirichlet(xc, w) / float(xc @ xc), rel=1e-9)
    assert r.settings["affinity_sigma"] == pytest.approx(sigma, rel=1e-12)
    # the energy identity: ½Σ w (x_i − x_j)² = xᵀ(D − W)x
    w1 = knn_affinity_dense(K, 8, 1.0)
    lap = np.diag(w1.sum(1)) - w1
    c = build_report(q, K, profile="compat")
    assert c.metric("diffusion_energy").value == pytest.approx(dirichlet(x, w1), rel=1e-9)
    assert c.metric("diffusion_energy").value == pytest.approx(float(x @ lap @ x), rel=1e-9)


def test_attention_entropy_of_given_weights():
    K = np.eye(3)
    r = build_report(np.ones(3), K, weights=[0.6, 0.3, 0.1], profile="compat")
    h = entropy([0.6, 0.3, 0.1])
    assert h > 0
    assert r.metric("attention_entropy").value == pytest.approx(h, rel=1e-12)
    r2 = build_report(np.ones(3), K, weights=[0.6, 0.3, 0.1])
    assert r2.metric("attention_entropy").value == pytest.approx(h / math.log(3), rel=1e-12)


def test_attention_entropy_defaults_to_scaled_dot_product(data):
    q, K = data
    w = softmax(K @ q / math.sqrt(6))
    r = build_report(q, K, profile="compat")
    assert r.metric("attention_entropy").value == pytest.approx(entropy(w), rel=1e-9)
    assert r.settings["entropy_from"] == "scaled_dot_product"


def test_several_queries(data, rng):
    q, K = data
    Q = rng.standard_normal((3, 6))
    w = np.stack([softmax(K @ qq / math.sqrt(6)) for qq in Q])
    r = build_report(Q, K, weights=w, profile="compat")
    assert r.n_queries == 3
    assert r.metric("attention_entropy").value == pytest.approx(np.mean([entropy(row) for row in w]), rel=1e-9)
    x = K @ Q.T  # (n, 3): the energy sums over the three logit vectors
    assert r.metric("diffusion_energy").value == pytest.approx(dirichlet(x, knn_affinity_dense(K, 8, 1.0)), rel=1e-9)


def test_ib_kl(data, rng):
    q, K = data
    mu, lv = rng.standard_normal(5), 0.5 * rng.standard_normal(5)
    kl = 0.5 * sum(math.exp(b) + a * a - 1 - b for a, b in zip(mu, lv))
    c = build_report(q, K, ib_mean=mu, ib_logvar=lv, profile="compat")
    assert c.metric("ib_kl").value == pytest.approx(kl, rel=1e-9)
    r = build_report(q, K, ib_mean=mu, ib_logvar=lv)
    assert r.metric("ib_kl").value == pytest.approx(kl / 5, rel=1e-9)
    assert build_report(q, K, ib_mean=np.zeros(4), ib_logvar=np.zeros(4)).metric("ib_kl").value == 0.0
    batch = build_report(q, K, ib_mean=np.stack([mu, 0 * mu]), ib_logvar=np.stack([lv, 0 * lv]), profile="compat")
    assert batch.metric("ib_kl").value == pytest.approx(kl / 2, rel=1e-9)  # mean over samples


def test_coherence_is_window_coherence(data):
    from workbench.topology import window_coherence

    q, K = data
    r = build_report(q, K, k=5)
    assert r.metric("topology_coherence").value == pytest.approx(window_coherence(K, 5), rel=1e-12)


def test_health_is_the_mean_score(data):
    q, K = data
    for profile in ("default", "compat"):
        r = build_report(q, K, profile=profile)
        assert r.health_score == pytest.approx(np.mean([m.score for m in r.metrics]))
        assert 0.0 <= r.health_score <= 1.0
        assert [m.name for m in r.metrics] == [n for n in METRIC_NAMES if n != "ib_kl"]


# -- analyze_keys ----------------------------------------------------------------------------------

def test_analyze_keys_is_the_centroid_report_with_self_attention_entropy(data):
    _, K = data
    a = analyze_keys(K, seed=2)
    b = build_report(K.mean(axis=0), K, seed=2)
    same = [n for n in METRIC_NAMES if n not in ("attention_entropy", "ib_kl")]
    assert [(m.name, m.value) for m in a.metrics if m.name in same] == \
        [(m.name, m.value) for m in b.metrics if m.name in same]
    assert "ib_kl" not in [m.name for m in a.metrics]
    assert a.recommendation.choice == b.recommendation.choice
    # the entropy is that of the keys attending each other (all 40 < 64 keys are queries), not the centroid's
    want = np.mean([entropy(softmax(K @ K[i] / math.sqrt(6))) for i in range(len(K))])
    assert a.values["attention_entropy"] == pytest.approx(want, rel=1e-9)
    assert a.metric("attention_entropy").value == pytest.approx(want / math.log(len(K)), rel=1e-9)


def test_scale_free_default_profile(rng):
    K = rng.standard_normal((60, 5)) @ rng.standard_normal((5, 5))
    a, b = analyze_keys(K), analyze_keys(37.5 * K)
    for ma, mb in zip(a.metrics, b.metrics):
        if ma.name != "attention_entropy":  # the logits' scale is what the entropy measures
            assert mb.value == pytest.approx(ma.value, rel=1e-6, abs=1e-9), ma.name
    for f in ("sequence_locality", "gromov_delta", "key_roughness", "structure_contrast", "h0_ratio"):
        assert b.features[f] == pytest.approx(a.features[f], rel=1e-6, abs=1e-9), f


# -- upstream's tests (compat) and the empty report -------------------------------------------------

def test_upstream_ramp_keys():
    K = np.outer(0.1 * np.arange(10), np.ones(16))  # 10 ramp keys, 16-d
    r = build_report(np.ones(16), K, profile="compat")
    assert 0.0 <= r.metric("topology_coherence").value <= 1.0
    assert 0.0 <= r.health_score <= 1.0
    assert r.metric("topology_coherence").status == "OK"  # upstream would say CRITICAL


def test_empty_report_is_healthy_and_standard():
    e = Report.empty()
    assert e.health_score == 1.0 and e.is_healthy and e.metrics == []
    assert e.recommendation.choice == "Standard" and e.recommendation.mechanism == "scaled_dot_product"
    assert Report.from_json(e.to_json()) == e


def test_one_and_two_keys():
    one = analyze_keys([[1.0, 2.0, 3.0]])
    assert one.recommendation.choice == "Standard" and "too few" in one.recommendation.rule
    assert one.metric("h0_persistence").value == 1.0 and one.metric("topology_coherence").value == 1.0
    two = analyze_keys([[1.0, 0.0], [0.0, 1.0]])
    assert two.n_keys == 2 and 0 <= two.health_score <= 1


# -- JSON ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", ("default", "compat"))
def test_json_round_trip(data, profile, rng):
    q, K = data
    r = build_report(q, K, ib_mean=rng.standard_normal(3), ib_logvar=rng.standard_normal(3), profile=profile)
    text = r.to_json()
    d = json.loads(text)
    assert {m["name"] for m in d["metrics"]} == set(METRIC_NAMES)
    assert all({"status", "score", "direction", "healthy", "warning", "critical"} <= set(m) for m in d["metrics"])
    assert {"choice", "mechanism", "rule", "numbers", "temperature_advice", "explanation"} <= set(d["recommendation"])
    back = Report.from_json(text)
    assert back == r
    assert back.to_json() == text
    assert back.metric("ot_distance").status == r.metric("ot_distance").status


# -- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("K, err", [
    (np.zeros((0, 4)), ShapeError),
    (np.zeros(4), ShapeError),
    (np.zeros((3, 0)), ShapeError),
    (np.array([[0.0, 1.0], [np.nan, 0.0]]), NumericalError),
    (np.array([[0.0, 1.0], [np.inf, 0.0]]), NumericalError),
    (np.array([["a", "b"]]), DataError),
])
def test_bad_keys(K, err):
    with pytest.raises(err, match="K"):
        analyze_keys(K)


def test_bad_arguments(data):
    q, K = data
    cases = [
        (dict(seed=0), ConfigurationError, "seed"),
        (dict(seed=-1), ConfigurationError, "seed"),
        (dict(k=0), ConfigurationError, "k"),
        (dict(profile="strict"), ConfigurationError, "profile"),
        (dict(weights=np.full(40, 0.5)), DataError, "weights"),
        (dict(weights=np.r_[-0.1, 1.1, np.zeros(38)]), DataError, "weights"),
        (dict(weights=np.ones(39) / 39), ShapeError, "weights"),
        (dict(weights=np.r_[np.nan, np.ones(39) / 39]), NumericalError, "weights"),
        (dict(ib_mean=np.zeros(3)), ConfigurationError, "ib_"),
        (dict(ib_mean=np.zeros(3), ib_logvar=np.zeros(4)), ShapeError, "ib_logvar"),
        (dict(ib_mean=np.r_[np.nan, 0.0], ib_logvar=np.zeros(2)), NumericalError, "ib_mean"),
    ]
    for kw, err, name in cases:
        with pytest.raises(err, match=name):
            build_report(q, K, **kw)
    with pytest.raises(ShapeError, match="q"):
        build_report(np.ones(5), K)
    with pytest.raises(NumericalError, match="q"):
        build_report(np.full(6, np.nan), K)
    with pytest.raises(ConfigurationError, match="seed"):
        analyze_keys(K, seed=0)
    for bad in (dict(seed=0), dict(profile=None), dict(k=-3)):
        with pytest.raises(WorkbenchError):
            analyze_keys(K, **bad)


# -- degenerate key sets ----------------------------------------------------------------------------

@pytest.mark.parametrize("K", [
    np.ones((50, 4)),  # all identical
    np.zeros((30, 3)),  # all zero
    np.repeat(np.eye(3), 15, axis=0),  # three points, each 15 times
    np.linspace(0, 1, 40)[:, None],  # d = 1
])
@pytest.mark.parametrize("exact_max", (1024, 8))  # exact and kNN persistence
def test_degenerate_keys_give_finite_reports(K, exact_max, kruskal_deaths):
    for profile in ("default", "compat"):
        r = analyze_keys(K, profile=profile, exact_max=exact_max)
        assert all(math.isfinite(m.value) for m in r.metrics)
        assert 0.0 <= r.health_score <= 1.0
        assert r.recommendation.choice in ("Standard", "Sparse", "Geometric", "Diffusion")
        json.loads(r.to_json())
        assert r.values["h0_death_sum"] == pytest.approx(kruskal_deaths(K).sum(), rel=1e-9, abs=1e-12)
