"""workbench.transport against definitions: exact 1-D Wasserstein, Sinkhorn marginals and its
ε → 0 limit (an assignment problem solved by SciPy), k-means without empty clusters."""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.stats import wasserstein_distance

from workbench.errors import ConfigurationError, DataError, NumericalError, ShapeError
from workbench.transport import kmeans, random_directions, sinkhorn, sliced_wasserstein_distance


def exact_wp_1d(x, y, p):
    """``W_p`` of two 1-D samples by the definition: replicate every atom so that both samples have
    ``n·m`` equally weighted atoms, then compare sorted values (the monotone coupling is optimal)."""
    n, m = len(x), len(y)
    xs = np.sort(np.repeat(np.asarray(x, np.float64), m))
    ys = np.sort(np.repeat(np.asarray(y, np.float64), n))
    return float(np.mean(np.abs(xs - ys) ** p) ** (1.0 / p))


# -- sliced Wasserstein -------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("n, m", [(7, 7), (5, 8), (1, 6), (12, 1)])
def test_sw_in_one_dimension_is_the_exact_wasserstein_distance(rng, p, n, m):
    x = rng.standard_normal((n, 1))
    y = 2.0 + 0.5 * rng.standard_normal((m, 1))
    sw = sliced_wasserstein_distance(x, y, p=p, num_projections=5)
    assert sw == pytest.approx(exact_wp_1d(x[:, 0], y[:, 0], p), rel=1e-12)
    if p == 1.0:
        assert sw == pytest.approx(wasserstein_distance(x[:, 0], y[:, 0]), rel=1e-12)


def test_sw_equal_sizes_against_sorted_projections_written_out(rng):
    x, y = rng.standard_normal((9, 4)), rng.standard_normal((9, 4)) + 1.0
    theta = random_directions(16, 4, seed=7)
    per_dir = [np.mean((np.sort(x @ t) - np.sort(y @ t)) ** 2) for t in theta]
    expected = np.sqrt(np.mean(per_dir))
    assert sliced_wasserstein_distance(x, y, num_projections=16, seed=7) == pytest.approx(expected, rel=1e-12)


def test_sw_unequal_sizes_against_replication(rng):
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((6, 3))
    theta = random_directions(10, 3, seed=2)
    per_dir = [exact_wp_1d(x @ t, y @ t, 1.5) ** 1.5 for t in theta]
    expected = np.mean(per_dir) ** (1 / 1.5)
    got = sliced_wasserstein_distance(x, y, p=1.5, num_projections=10, seed=2)
    assert got == pytest.approx(expected, rel=1e-12)


def test_sw_metric_properties(rng):
    x, y, z = rng.standard_normal((10, 5)), rng.standard_normal((7, 5)) + 0.5, rng.standard_normal((12, 5))
    assert sliced_wasserstein_distance(x, x) == 0.0
    assert sliced_wasserstein_distance(x, y) == pytest.approx(sliced_wasserstein_distance(y, x), rel=1e-12)
    assert sliced_wasserstein_distance(x, z) <= sliced_wasserstein_distance(x, y) + sliced_wasserstein_distance(y, z)
    perm = rng.permutation(10)
    assert sliced_wasserstein_distance(x[perm], y) == pytest.approx(sliced_wasserstein_distance(x, y), rel=1e-12)
    # a cloud and the same cloud with every point duplicated are the same measure
    assert sliced_wasserstein_distance(x, np.concatenate([x, x])) == pytest.approx(0.0, abs=1e-12)


def test_sw_of_a_translation(rng):
    """``SW_2(x, x + c)² = mean_θ (θ·c)²``; with many directions ≈ ``‖c‖²/d``."""
    x = rng.standard_normal((20, 6))
    c = rng.standard_normal(6)
    theta = random_directions(32, 6, seed=1)
    exact = np.sqrt(np.mean((theta @ c) ** 2))
    assert sliced_wasserstein_distance(x, x + c, num_projections=32) == pytest.approx(exact, rel=1e-10)
    many = sliced_wasserstein_distance(x, x + c, num_projections=20000)
    assert many == pytest.approx(np.linalg.norm(c) / np.sqrt(6), rel=0.03)


def test_sw_batched_equals_loop(rng):
    x = rng.standard_normal((3, 8, 4))
    y = rng.standard_normal((5, 4))
    got = sliced_wasserstein_distance(x, y, num_projections=12)
    assert got.shape == (3,)
    for b in range(3):
        assert got[b] == pytest.approx(sliced_wasserstein_distance(x[b], y, num_projections=12), rel=1e-12)


def test_random_directions_are_unit_seeded_and_isotropic():
    t = random_directions(4000, 5, seed=3)
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(t, random_directions(4000, 5, seed=3))
    assert not np.array_equal(t, random_directions(4000, 5, seed=4))
    # uniform on the sphere: E[θθᵀ] = I/d (cube-normalised samples would fail this)
    np.testing.assert_allclose(t.T @ t / len(t), np.eye(5) / 5, atol=0.02)


@pytest.mark.parametrize("kwargs, exc, arg", [
    ({"p": 0.5}, ConfigurationError, "p"),
    ({"p": np.inf}, ConfigurationError, "p"),
    ({"num_projections": 0}, ConfigurationError, "num_projections"),
    ({"seed": -1}, ConfigurationError, "seed"),
    ({"seed": 1.5}, ConfigurationError, "seed"),
])
def test_sw_bad_parameters(kwargs, exc, arg):
    with pytest.raises(exc, match=rf"\b{arg}\b"):
        sliced_wasserstein_distance(np.zeros((3, 2)), np.ones((3, 2)), **kwargs)


def test_sw_bad_inputs():
    x = np.zeros((3, 2))
    with pytest.raises(ShapeError, match=r"\bx\b"):
        sliced_wasserstein_distance(np.zeros((0, 2)), x)
    with pytest.raises(ShapeError, match=r"\by\b"):
        sliced_wasserstein_distance(x, np.zeros((3, 3)))
    with pytest.raises(ShapeError, match=r"\bx\b"):
        sliced_wasserstein_distance(np.zeros(3), x)
    bad = x.copy()
    bad[1, 1] = np.nan
    with pytest.raises(NumericalError, match=r"\by\b"):
        sliced_wasserstein_distance(x, bad)


# -- Sinkhorn -------------------------------------------------------------------------------------------

def test_sinkhorn_marginals_and_gibbs_form(rng):
    a = rng.random(6) + 0.1
    a /= a.sum()
    b = rng.random(4) + 0.1
    b /= b.sum()
    c = rng.random((6, 4))
    eps = 0.1
    plan, info = sinkhorn(a, b, c, epsilon=eps, tol=1e-12, return_info=True)
    assert info["converged"]
    np.testing.assert_allclose(plan.sum(1), a, atol=1e-12)
    np.testing.assert_allclose(plan.sum(0), b, atol=1e-12)
    # P = diag(u) exp(−C/ε) diag(v): log P + C/ε is a sum of a row term and a column term
    m = np.log(plan) + c / eps
    np.testing.assert_allclose(m - m[:, :1] - m[:1, :] + m[0, 0], 0.0, atol=1e-9)


def test_sinkhorn_tends_to_exact_ot_as_epsilon_goes_to_zero(rng):
    n = 5
    c = rng.random((n, n))
    rows, cols = linear_sum_assignment(c)
    exact = c[rows, cols].sum() / n
    u = np.full(n, 1.0 / n)
    costs = []
    for eps in (0.1, 1e-3, 1e-4):  # ε-scaling keeps small ε fast
        plan = sinkhorn(u, u, c, epsilon=eps, max_iter=5000, tol=1e-10)
        costs.append(float((plan * c).sum()))
    assert costs[0] >= costs[1] >= costs[2] - 1e-9
    assert costs[-1] == pytest.approx(exact, abs=1e-5)
    perm = np.zeros((n, n))
    perm[rows, cols] = 1.0 / n
    np.testing.assert_allclose(plan, perm, atol=1e-4)


def test_sinkhorn_is_stable_for_tiny_epsilon(rng):
    """The scaling form exp(−C/ε) underflows to 0 here; the log domain does not."""
    c = 100.0 * rng.random((4, 3))
    a, b = np.full(4, 0.25), np.full(3, 1 / 3)
    plan, info = sinkhorn(a, b, c, epsilon=1e-3, max_iter=5000, tol=1e-9, return_info=True)
    assert info["converged"] and np.isfinite(plan).all()
    np.testing.assert_allclose(plan.sum(0), b, atol=1e-9)
    np.testing.assert_allclose(plan.sum(1), a, atol=1e-9)


def test_sinkhorn_batched_and_zero_mass(rng):
    a = rng.random((3, 5)) + 0.1
    a[:, 2] = 0.0
    a /= a.sum(-1, keepdims=True)
    b = np.full(4, 0.25)
    c = rng.random((3, 5, 4))
    plan = sinkhorn(a, b, c, epsilon=0.2)
    assert plan.shape == (3, 5, 4)
    assert (plan[:, 2] == 0).all()
    for i in range(3):
        np.testing.assert_allclose(plan[i], sinkhorn(a[i], b, c[i], epsilon=0.2), atol=1e-12)


def test_sinkhorn_warns_when_not_converged(rng):
    c = rng.random((5, 5))
    u = np.full(5, 0.2)
    with pytest.warns(RuntimeWarning, match="max_iter"):
        _, info = sinkhorn(u, u, c, epsilon=1e-3, max_iter=2, tol=1e-14, return_info=True)
    assert not info["converged"] and info["iterations"] == 2


@pytest.mark.parametrize("a, b, cost, kwargs, exc, arg", [
    ([0.5, -0.5, 1.0], [0.5, 0.5], np.zeros((3, 2)), {}, DataError, "a"),
    ([0.5, 0.5], [0.2, 0.2], np.zeros((2, 2)), {}, DataError, "b"),
    ([0.5, 0.5], [0.5, 0.5], np.zeros((2, 3)), {}, ShapeError, "cost"),
    ([0.5, 0.5], [0.5, 0.5], [[0.0, np.nan], [1.0, 0.0]], {}, NumericalError, "cost"),
    ([0.5, 0.5], [0.5, 0.5], np.zeros((2, 2)), {"epsilon": 0.0}, ConfigurationError, "epsilon"),
    ([0.5, 0.5], [0.5, 0.5], np.zeros((2, 2)), {"epsilon": -1.0}, ConfigurationError, "epsilon"),
    ([0.5, 0.5], [0.5, 0.5], np.zeros((2, 2)), {"max_iter": 0}, ConfigurationError, "max_iter"),
    ([0.0, 0.0], [0.0, 0.0], np.zeros((2, 2)), {}, DataError, "a"),
    ([], [0.5, 0.5], np.zeros((0, 2)), {}, ShapeError, "a"),
])
def test_sinkhorn_bad_input(a, b, cost, kwargs, exc, arg):
    with pytest.raises(exc, match=rf"\b{arg}\b"):
        sinkhorn(a, b, cost, **kwargs)


# -- k-means --------------------------------------------------------------------------------------------

def inertia(x, centroids, labels):
    return float(((x - centroids[labels]) ** 2).sum())


def test_kmeans_recovers_separated_blobs(rng):
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    truth = np.repeat(np.arange(3), 30)
    x = centres[truth] + 0.3 * rng.standard_normal((90, 2))
    mu, labels = kmeans(x, 3, seed=0)
    # the same partition up to renaming
    pairs = set(zip(truth.tolist(), labels.tolist()))
    assert len(pairs) == 3
    for c in range(3):
        np.testing.assert_allclose(mu[c], x[labels == c].mean(0), atol=1e-12)


def test_kmeans_reaches_the_brute_force_optimum_on_a_tiny_problem(rng):
    x = np.concatenate([rng.standard_normal((4, 2)), rng.standard_normal((4, 2)) + 4.0])
    best = np.inf
    for assign in itertools.product([0, 1], repeat=len(x)):
        lab = np.array(assign)
        if lab.min() == lab.max():
            continue
        best = min(best, sum(((x[lab == c] - x[lab == c].mean(0)) ** 2).sum() for c in (0, 1)))
    mu, labels = kmeans(x, 2, seed=1)
    assert inertia(x, mu, labels) == pytest.approx(best, rel=1e-12)


def test_kmeans_never_leaves_a_cluster_empty(rng):
    """Three distinct points repeated, five clusters: re-seeding moves points into empty clusters."""
    x = np.repeat(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), 4, axis=0)
    for seed in range(5):
        mu, labels = kmeans(x, 5, seed=seed, iters=10)
        assert np.bincount(labels, minlength=5).min() >= 1
        # every point is at a nearest centroid (ties allowed)
        d2 = ((x[:, None, :] - mu[None]) ** 2).sum(-1)
        np.testing.assert_allclose(d2[np.arange(len(x)), labels], d2.min(1), atol=1e-12)


def test_kmeans_labels_are_nearest_centroids_and_seeded(rng):
    x = rng.standard_normal((60, 3))
    mu, labels = kmeans(x, 6, seed=4, iters=2)  # not converged: labels follow the last update
    d2 = ((x[:, None, :] - mu[None]) ** 2).sum(-1)
    np.testing.assert_allclose(d2[np.arange(60), labels], d2.min(1), atol=1e-12)
    mu2, labels2 = kmeans(x, 6, seed=4, iters=2)
    np.testing.assert_array_equal(mu, mu2)
    np.testing.assert_array_equal(labels, labels2)


def test_kmeans_k_equals_n(rng):
    x = rng.standard_normal((7, 2))
    mu, labels = kmeans(x, 7)
    assert sorted(labels.tolist()) == list(range(7))
    assert inertia(x, mu, labels) == pytest.approx(0.0, abs=1e-20)


def test_kmeans_bad_input():
    x = np.zeros((4, 2))
    with pytest.raises(ConfigurationError, match=r"\bk\b"):
        kmeans(x, 5)
    with pytest.raises(ConfigurationError, match=r"\bk\b"):
        kmeans(x, 0)
    with pytest.raises(ConfigurationError, match=r"\bseed\b"):
        kmeans(x, 2, seed=-3)
    with pytest.raises(ShapeError, match=r"\bx\b"):
        kmeans(np.zeros((0, 2)), 1)
    bad = x.copy()
    bad[0, 0] = np.inf
    with pytest.raises(NumericalError, match=r"\bx\b"):
        kmeans(bad, 2)


def test_no_warning_on_a_converging_sinkhorn(rng):
    u = np.full(3, 1 / 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sinkhorn(u, u, rng.random((3, 3)), epsilon=0.5)
