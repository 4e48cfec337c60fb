"""workbench.diffusion against definitions: Laplacians written out, spectra, heat diffusion against
scipy.linalg.expm, the Dirichlet-energy identity, kNN graphs against a brute-force search."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp

from workbench.diffusion import (
    LAPLACIANS,
    diffusion_energy,
    gaussian_affinity,
    heat_diffuse,
    knn_affinity,
    laplacian,
)
from workbench.errors import ConfigurationError, DataError, NumericalError, ShapeError


def random_graph(rng, n=7, density=0.6, isolated=True):
    w = rng.random((n, n)) * (rng.random((n, n)) < density)
    w = np.triu(w, 1)
    w = w + w.T
    if isolated:
        w[-1, :] = w[:, -1] = 0.0  # one isolated node
    return w


def laplacian_by_definition(w, kind):
    """Entry by entry: ``L_ij = [i = j]·(d_i > 0) − w_ij/norm_ij`` as written in the docs."""
    n = len(w)
    d = np.array([sum(w[i, j] for j in range(n) if j != i) for i in range(n)])
    L = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i == j:
                if kind == "unnormalized":
                    L[i, j] = d[i]
                else:
                    L[i, j] = 1.0 if d[i] > 0 else 0.0
            elif kind == "unnormalized":
                L[i, j] = -w[i, j]
            elif kind == "symmetric":
                L[i, j] = -w[i, j] / np.sqrt(d[i] * d[j]) if d[i] > 0 and d[j] > 0 else 0.0
            else:
                L[i, j] = -w[i, j] / d[i] if d[i] > 0 else 0.0
    return L


@pytest.mark.parametrize("kind", LAPLACIANS)
@pytest.mark.parametrize("sparse", [False, True])
def test_laplacian_matches_definition(rng, kind, sparse):
    w = random_graph(rng)
    L = laplacian(sp.csr_array(w) if sparse else w, kind)
    assert sp.issparse(L) == sparse
    dense = L.toarray() if sparse else L
    np.testing.assert_allclose(dense, laplacian_by_definition(w, kind), atol=1e-14)


@pytest.mark.parametrize("kind", LAPLACIANS)
def test_laplacian_null_vectors_and_spectrum(rng, kind):
    w = random_graph(rng, n=9, isolated=False)
    L = laplacian(w, kind)
    d = w.sum(1)
    if kind == "symmetric":
        np.testing.assert_allclose(L @ np.sqrt(d), 0.0, atol=1e-12)
    else:
        np.testing.assert_allclose(L @ np.ones(9), 0.0, atol=1e-12)
    ev = np.linalg.eigvals(L)
    assert np.abs(ev.imag).max() < 1e-10  # random walk: similar to the symmetric one
    ev = np.sort(ev.real)
    assert ev[0] == pytest.approx(0.0, abs=1e-10)
    upper = 2 * d.max() if kind == "unnormalized" else 2.0
    assert ev[-1] <= upper + 1e-10
    if kind == "random_walk":
        np.testing.assert_allclose(ev, np.sort(np.linalg.eigvalsh(laplacian(w, "symmetric"))), atol=1e-10)


@pytest.mark.parametrize("kind", LAPLACIANS)
@pytest.mark.parametrize("sparse", [False, True])
def test_heat_diffuse_equals_matrix_exponential(rng, kind, sparse):
    w = random_graph(rng)
    L = laplacian(w, kind)
    x = rng.standard_normal((7, 3))
    expected = scipy.linalg.expm(-0.7 * L) @ x
    got = heat_diffuse(sp.csr_array(L) if sparse else L, x, 0.7)
    np.testing.assert_allclose(got, expected, atol=1e-12)
    # a vector, several times at once (any order), t = 0 is the identity
    times = np.array([1.3, 0.0, 0.4])
    stacked = heat_diffuse(L, x[:, 0], times)
    assert stacked.shape == (3, 7)
    for t, row in zip(times, stacked):
        np.testing.assert_allclose(row, scipy.linalg.expm(-t * L) @ x[:, 0], atol=1e-12)


@pytest.mark.parametrize("kind", LAPLACIANS)
def test_euler_converges_to_the_exponential_and_never_grows(rng, kind):
    w = random_graph(rng, isolated=False) * 5.0  # large degrees: a fixed step of t/5 would be unstable
    L = laplacian(w, kind)
    x = rng.standard_normal((7, 2))
    exact = scipy.linalg.expm(-1.0 * L) @ x
    errors = [np.abs(heat_diffuse(L, x, 1.0, integrator="euler", num_steps=n) - exact).max() for n in (5, 50, 500)]
    assert errors[2] < errors[1] < errors[0] < 1.0
    assert errors[2] < 2e-2 * max(1.0, float(np.abs(exact).max()))
    y = heat_diffuse(L, x, 50.0, integrator="euler", num_steps=5)
    if kind == "symmetric":
        assert np.linalg.norm(y, axis=0).max() <= np.linalg.norm(x, axis=0).max() * (1 + 1e-12)
    else:
        assert np.abs(y).max() <= np.abs(x).max() * (1 + 1e-12)


def test_upstream_fixed_step_diverges_where_ours_does_not(rng):
    """The case upstream gets wrong: unnormalised Laplacian of a tight cluster, 5 steps of 0.2."""
    pts = 0.01 * rng.standard_normal((40, 3))
    w = gaussian_affinity(pts, sigma=1.0)
    L = laplacian(w, "unnormalized")
    x = rng.standard_normal(40)
    naive = x.copy()
    for _ in range(5):
        naive = naive - 0.2 * (L @ naive)
    assert np.abs(naive).max() > 1e3 * np.abs(x).max()
    ours = heat_diffuse(L, x, 1.0, integrator="euler", num_steps=5)
    assert np.abs(ours).max() <= np.abs(x).max()
    np.testing.assert_allclose(ours, np.full(40, x.mean()), atol=1e-6)  # consensus reached
    np.testing.assert_allclose(heat_diffuse(L, x, 1.0), np.full(40, x.mean()), atol=1e-6)


@pytest.mark.parametrize("integrator", ["expm", "euler"])
def test_random_walk_diffusion_conserves_the_degree_weighted_mean(rng, integrator):
    """Appendix A: ``d/dt Σ_i d_i x_i = −dᵀD⁻¹Lx = −1ᵀLx = 0``; the unnormalised flow keeps the plain mean."""
    w = random_graph(rng, n=9, isolated=False)
    d = w.sum(1)
    x = rng.standard_normal((9, 2))
    for kind, weight in (("random_walk", d), ("unnormalized", np.ones(9))):
        y = heat_diffuse(laplacian(w, kind), x, [0.3, 2.0], integrator=integrator)
        for yt in y:
            np.testing.assert_allclose(weight @ yt, weight @ x, rtol=1e-12, atol=1e-12)
    # and tends to consensus at that mean
    y = heat_diffuse(laplacian(w, "random_walk"), x, 200.0)
    np.testing.assert_allclose(y, np.broadcast_to(d @ x / d.sum(), x.shape), atol=1e-8)


@pytest.mark.parametrize("sparse", [False, True])
def test_energy_identity(rng, sparse):
    w = random_graph(rng)
    x = rng.standard_normal((7, 3))
    loops = 0.5 * sum(w[i, j] * np.sum((x[i] - x[j]) ** 2) for i in range(7) for j in range(7))
    W = sp.csr_array(w) if sparse else w
    assert diffusion_energy(x, W) == pytest.approx(loops, rel=1e-12)
    assert diffusion_energy(x, W) == pytest.approx(np.trace(x.T @ laplacian(w, "unnormalized") @ x), rel=1e-12)
    assert diffusion_energy(x, W, "random_walk") == pytest.approx(loops, rel=1e-12)
    assert diffusion_energy(x, W, "symmetric") == pytest.approx(np.trace(x.T @ laplacian(w, "symmetric") @ x),
                                                                 rel=1e-12)
    assert diffusion_energy(x[:, 0], W) == pytest.approx(
        0.5 * sum(w[i, j] * (x[i, 0] - x[j, 0]) ** 2 for i in range(7) for j in range(7)), rel=1e-12)


@pytest.mark.parametrize("kind", LAPLACIANS)
def test_energy_decreases_under_the_heat_flow(rng, kind):
    w = random_graph(rng, isolated=False)
    L = laplacian(w, kind)
    x = rng.standard_normal(7)
    traj = heat_diffuse(L, x, np.linspace(0, 3, 7))
    e = [diffusion_energy(y, w, kind) for y in traj]
    assert all(a >= b - 1e-12 for a, b in zip(e, e[1:]))
    assert e[-1] < e[0]


def test_gaussian_affinity_matches_definition(rng):
    x = rng.standard_normal((6, 3))
    w = gaussian_affinity(x, sigma=0.8)
    for i in range(6):
        for j in range(6):
            expected = 0.0 if i == j else np.exp(-np.sum((x[i] - x[j]) ** 2) / (2 * 0.8 ** 2))
            assert w[i, j] == pytest.approx(expected, rel=1e-12, abs=1e-300)
    dist = [np.linalg.norm(x[i] - x[j]) for i in range(6) for j in range(i + 1, 6)]
    sigma = np.median(dist)
    np.testing.assert_allclose(gaussian_affinity(x), np.where(np.eye(6, dtype=bool), 0.0,
                               np.exp(-((x[:, None] - x[None]) ** 2).sum(-1) / (2 * sigma ** 2))), atol=1e-12)


def test_knn_affinity_is_the_symmetrised_knn_graph(rng):
    x = rng.standard_normal((30, 4))
    k = 4
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    nbrs = np.argsort(d, axis=1, kind="stable")[:, :k]
    knn_dist = np.take_along_axis(d, nbrs, axis=1)
    sigma = np.median(knn_dist)
    expected = np.zeros((30, 30))
    for i in range(30):
        for j in nbrs[i]:
            expected[i, j] = expected[j, i] = np.exp(-d[i, j] ** 2 / (2 * sigma ** 2))
    w = knn_affinity(x, k)
    assert sp.issparse(w) and w.shape == (30, 30)
    np.testing.assert_allclose(w.toarray(), expected, atol=1e-12)
    np.testing.assert_allclose(knn_affinity(x, k, sigma=0.5, backend="numpy").toarray(),
                               np.where(expected > 0, np.exp(-d ** 2 / (2 * 0.25)), 0.0), atol=1e-12)


@pytest.mark.parametrize("call, exc, arg", [
    (lambda x: knn_affinity(x, 5), ConfigurationError, "k"),
    (lambda x: knn_affinity(x, 0), ConfigurationError, "k"),
    (lambda x: knn_affinity(x, 2, sigma=-1.0), ConfigurationError, "sigma"),
    (lambda x: gaussian_affinity(x, sigma=0.0), ConfigurationError, "sigma"),
    (lambda x: knn_affinity(np.full((5, 2), np.nan), 2), NumericalError, "x"),
    (lambda x: gaussian_affinity(x[:0]), ShapeError, "x"),
    (lambda x: laplacian(np.array([[0.0, 1.0], [0.0, 0.0]])), DataError, "w"),
    (lambda x: laplacian(np.array([[0.0, -1.0], [-1.0, 0.0]])), DataError, "w"),
    (lambda x: laplacian(np.zeros((2, 3))), ShapeError, "w"),
    (lambda x: laplacian(np.eye(2), kind="bogus"), ConfigurationError, "kind"),
    (lambda x: heat_diffuse(np.eye(5), x, -1.0), ConfigurationError, "t"),
    (lambda x: heat_diffuse(np.eye(5), x[:4], 1.0), ShapeError, "x"),
    (lambda x: heat_diffuse(np.eye(5), x, 1.0, integrator="rk4"), ConfigurationError, "integrator"),
    (lambda x: heat_diffuse(np.eye(5), x, 1.0, integrator="euler", num_steps=0), ConfigurationError, "num_steps"),
    (lambda x: heat_diffuse(np.full((5, 5), np.nan), x, 1.0), NumericalError, "L"),
    (lambda x: diffusion_energy(x[:3], np.eye(5)), ShapeError, "x"),
])
def test_bad_input(call, exc, arg):
    x = np.random.default_rng(0).standard_normal((5, 2))
    with pytest.raises(exc, match=rf"\b{arg}\b"):
        call(x)


def test_knn_affinity_from_a_given_graph_equals_the_searched_one(rng):
    from workbench.errors import ShapeError
    from workbench.graph import knn_graph

    x = rng.standard_normal((300, 7))
    a = knn_affinity(x, 6)
    b = knn_affinity(x, 6, graph=knn_graph(x, 6))
    assert abs(a - b).max() < 1e-12
    with pytest.raises(ShapeError, match="graph"):
        knn_affinity(x, 5, graph=knn_graph(x, 6))
