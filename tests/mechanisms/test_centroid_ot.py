"""Centroid OT attention against its definition: the entropic plan to the centroid measure written
out, Sinkhorn marginals of the query-set plan, no mass lost to empty clusters, key filtering."""
from __future__ import annotations

import numpy as np
import pytest

import workbench
from workbench.errors import ConfigurationError


def definition(q, k, mu, labels, s, T, spread):
    """Loops in float64: responsibilities, centroid measure, per-query plan, key weights."""
    n, M = len(k), len(mu)
    cost = lambda x, m: 0.5 * s * np.sum((x - m) ** 2)  # noqa: E731
    if spread == "hard":
        r = np.zeros((n, M))
        r[np.arange(n), labels] = 1.0
    else:
        r = np.array([[np.exp(-cost(k[j], mu[c]) / T) for c in range(M)] for j in range(n)])
        r /= r.sum(1, keepdims=True)
    b = r.sum(0) / n
    rho = r / r.sum(0)
    W = np.zeros((len(q), n))
    for i in range(len(q)):
        pi = np.array([b[c] * np.exp(-cost(q[i], mu[c]) / T) for c in range(M)])
        pi /= pi.sum()
        W[i] = rho @ pi
    return W


@pytest.mark.parametrize("spread", ["soft", "hard"])
def test_per_query_weights_match_definition(rng, spread):
    q, k, v = rng.standard_normal((5, 4)), rng.standard_normal((30, 4)), rng.standard_normal((30, 3))
    mech = workbench.make("centroid_ot", num_centroids=4, temperature=0.7, spread=spread, seed=2)
    mu, labels = mech.clusters(k)
    W = definition(q, k, mu, labels, 1 / np.sqrt(4), 0.7, spread)
    np.testing.assert_allclose(mech.weights(q, k), W, atol=1e-12)
    np.testing.assert_allclose(mech(q, k, v), W @ v, atol=1e-12)
    np.testing.assert_allclose(W.sum(1), 1.0, atol=1e-12)
    if spread == "hard":  # a centroid's mass is shared equally by its members
        for c in range(4):
            members = W[:, labels == c]
            np.testing.assert_allclose(members, members[:, :1].repeat(members.shape[1], 1), atol=1e-14)


def test_one_key_per_centroid_is_gaussian_kernel_attention(rng):
    """``M ≥ n``, hard spread: ``b`` uniform, so ``W_ij ∝ exp(−(s/2)‖q_i − k_j‖²/T)``."""
    q, k = rng.standard_normal((3, 5)), rng.standard_normal((6, 5))
    mech = workbench.make("centroid_ot", num_centroids=10, spread="hard", scale=0.5, temperature=2.0)
    logits = -0.25 * ((q[:, None] - k[None]) ** 2).sum(-1) / 2.0
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(mech.weights(q, k), expected, atol=1e-12)


def test_query_set_plan_is_a_balanced_sinkhorn_plan(rng):
    q, k = rng.standard_normal((12, 3)), rng.standard_normal((40, 3))
    mech = workbench.make("centroid_ot", num_centroids=5, plan="query_set", spread="hard",
                          sinkhorn_iterations=2000)
    mu, labels = mech.clusters(k)
    W = mech.weights(q, k)
    np.testing.assert_allclose(W.sum(1), 1.0, atol=1e-12)
    # the queries' total mass reaches each centroid in proportion to its size: mean_i π_ic = |c|/n
    pi = np.stack([W[:, labels == c].sum(1) for c in range(5)], axis=1)
    np.testing.assert_allclose(pi.mean(0), np.bincount(labels, minlength=5) / 40, atol=1e-8)


def test_no_mass_is_lost_with_duplicate_keys(rng):
    """Fewer distinct keys than centroids (upstream loses the mass of its empty clusters)."""
    k = np.repeat(rng.standard_normal((3, 4)), 5, axis=0)
    q, v = rng.standard_normal((4, 4)), rng.standard_normal((15, 2))
    for spread in ("soft", "hard"):
        mech = workbench.make("centroid_ot", num_centroids=8, spread=spread)
        mu, labels = mech.clusters(k)
        assert np.bincount(labels, minlength=8).min() >= 1
        w = mech.weights(q, k)
        np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-12)
        assert np.isfinite(mech(q, k, v)).all()


def test_clusters_do_not_depend_on_key_order(rng):
    k = rng.standard_normal((25, 3))
    mech = workbench.make("centroid_ot", num_centroids=4, kmeans_iterations=3)
    mu, labels = mech.clusters(k)
    perm = rng.permutation(25)
    mu_p, labels_p = mech.clusters(k[perm])
    np.testing.assert_array_equal(mu_p, mu)
    np.testing.assert_array_equal(labels_p, labels[perm])


def test_masked_keys_take_no_part_in_the_clustering(rng):
    q, k, v = rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 20, 4)), rng.standard_normal((2, 20, 3))
    keep = rng.random((2, 20)) < 0.6
    mech = workbench.make("centroid_ot", num_centroids=3)
    out = mech(q, k, v, mask=keep[:, None, :])
    w = mech.weights(q, k, mask=keep[:, None, :])
    for b in range(2):
        np.testing.assert_allclose(out[b], mech(q[b], k[b, keep[b]], v[b, keep[b]]), atol=1e-12)
        np.testing.assert_allclose(w[b][:, keep[b]], mech.weights(q[b], k[b, keep[b]]), atol=1e-12)
        assert (w[b][:, ~keep[b]] == 0).all()


def test_upstream_shapes(rng):
    k = rng.standard_normal((50, 32))
    mech = workbench.make("centroid_ot", num_centroids=8, kmeans_iterations=5)
    mu, labels = mech.clusters(k)
    assert mu.shape == (8, 32) and labels.shape == (50,)
    masses = np.bincount(labels, minlength=8) / 50
    assert masses.sum() == pytest.approx(1.0)
    for _ in range(10):  # one clustering serves many queries
        assert mech(rng.standard_normal(32), k, rng.standard_normal((50, 32))).shape == (32,)


def test_numba_backend_says_why(rng):
    q, k, v = rng.standard_normal((2, 4)), rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
    with pytest.raises(ConfigurationError, match="no Numba kernel"):
        workbench.make("centroid_ot", backend="numba")(q, k, v)
    np.testing.assert_array_equal(workbench.make("centroid_ot", backend="auto")(q, k, v),
                                  workbench.make("centroid_ot", backend="numpy")(q, k, v))


@pytest.mark.parametrize("params, arg", [
    ({"temperature": -0.5}, "temperature"),
    ({"num_centroids": 0}, "num_centroids"),
    ({"kmeans_iterations": -1}, "kmeans_iterations"),
    ({"plan": "global"}, "plan"),
    ({"spread": "fuzzy"}, "spread"),
    ({"sinkhorn_iterations": 0}, "sinkhorn_iterations"),
    ({"seed": -2}, "seed"),
])
def test_bad_parameters(params, arg):
    with pytest.raises(ConfigurationError, match=rf"\b{arg}\b"):
        workbench.make("centroid_ot", **params)
