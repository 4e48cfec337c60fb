"""H0 persistence: all n − 1 finite deaths, against a brute-force Kruskal written out here."""
from __future__ import annotations

import numpy as np
import pytest

from workbench.errors import ConfigurationError, NumericalError, ShapeError
from workbench.graph import knn_graph
from workbench.report.persistence import h0_persistence


def clusters(rng, sizes, d, sep):
    return np.concatenate([rng.standard_normal((s, d)) + sep * i for i, s in enumerate(sizes)])


CASES = {
    "gaussian": lambda rng: rng.standard_normal((120, 5)),
    "far clusters": lambda rng: clusters(rng, (40, 40, 3, 1), 6, 30.0),
    "duplicates": lambda rng: np.repeat(rng.standard_normal((30, 3)), 3, axis=0),
    "collinear": lambda rng: np.outer(np.sort(rng.uniform(0, 10, 60)), np.ones(4)),
    "integer grid": lambda rng: np.stack(np.meshgrid(np.arange(8), np.arange(8)), -1).reshape(-1, 2),
    "tiny and huge scales": lambda rng: np.concatenate([1e-6 * rng.standard_normal((30, 3)),
                                                        1e6 + rng.standard_normal((30, 3))]),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("method", ("exact", "knn"))
def test_deaths_equal_kruskal(case, method, rng, kruskal_deaths):
    x = CASES[case](rng)
    ph = h0_persistence(x, method=method, k=10)
    want = kruskal_deaths(x)
    assert ph.deaths.shape == (len(x) - 1,)  # all n − 1 finite deaths, none dropped
    assert np.all(np.diff(ph.deaths) >= 0)
    np.testing.assert_allclose(ph.deaths, want, rtol=1e-9, atol=1e-9 * max(1.0, want.max()))
    assert ph.total == pytest.approx(want.sum(), rel=1e-9, abs=1e-12)
    # the edges realise the deaths and span the points
    d = np.linalg.norm(np.asarray(x, float)[ph.edges[:, 0]] - np.asarray(x, float)[ph.edges[:, 1]], axis=1)
    np.testing.assert_allclose(d, ph.deaths, rtol=1e-12, atol=1e-12)
    assert len(np.unique(ph.edges)) == len(x)


def test_knn_bridges_disconnected_components(rng, kruskal_deaths):
    x = clusters(rng, (50, 50, 50), 4, 100.0)
    ph = h0_persistence(x, method="knn", k=5)
    assert ph.method == "knn" and ph.bridges >= 2
    np.testing.assert_allclose(ph.deaths, kruskal_deaths(x), rtol=1e-9)


@pytest.mark.parametrize("exact", (True, False))
def test_knn_bridges_many_small_components(rng, kruskal_deaths, exact):
    # 40 tight clusters of 6 points at random centres: k = 3 leaves each cluster its own component, so
    # every Borůvka round must find the exact shortest edge out of dozens of components, whether
    # it trusts the kNN radii (exact lists) or searches every member (approximate lists)
    centres = rng.standard_normal((40, 8)) * 20
    x = np.repeat(centres, 6, axis=0) + 0.3 * rng.standard_normal((240, 8))
    ph = h0_persistence(x, method="knn", graph=knn_graph(x, 3), graph_exact=exact)
    assert ph.bridges >= 39
    np.testing.assert_allclose(ph.deaths, kruskal_deaths(x), rtol=1e-9)


def test_knn_bridges_chain_of_components(rng, kruskal_deaths):
    # clusters on a line at growing gaps: the nearest other component of each is its neighbour on the
    # line, and a list of 2 neighbours always stays inside (the pruning by kNN radius is exercised)
    x = np.concatenate([rng.standard_normal((5, 3)) * 0.1 + np.array([3.0 * i + 0.1 * i * i, 0, 0])
                        for i in range(25)])
    ph = h0_persistence(x, method="knn", graph=knn_graph(x, 2))
    np.testing.assert_allclose(ph.deaths, kruskal_deaths(x), rtol=1e-9)


def test_knn_with_a_precomputed_graph(rng, kruskal_deaths):
    x = rng.standard_normal((90, 3))
    ph = h0_persistence(x, method="knn", graph=knn_graph(x, 12))
    np.testing.assert_allclose(ph.deaths, kruskal_deaths(x), rtol=1e-9)
    with pytest.raises(ShapeError, match="graph"):
        h0_persistence(x, method="knn", graph=knn_graph(x[:50], 5))


def test_auto_switches_at_exact_max(rng):
    x = rng.standard_normal((40, 3))
    assert h0_persistence(x, exact_max=40).method == "exact"
    assert h0_persistence(x, exact_max=39).method == "knn"


def test_small_inputs():
    one = h0_persistence([[1.0, 2.0]])
    assert one.deaths.shape == (0,) and one.total == 0.0
    two = h0_persistence([[0.0, 0.0], [3.0, 4.0]])
    np.testing.assert_allclose(two.deaths, [5.0])


@pytest.mark.parametrize("bad, err", [
    (np.zeros((0, 3)), ShapeError), (np.zeros(5), ShapeError), (np.zeros((3, 0)), ShapeError),
    (np.array([[0.0, np.nan], [1.0, 1.0]]), NumericalError),
])
def test_bad_points(bad, err):
    with pytest.raises(err, match="x"):
        h0_persistence(bad)


@pytest.mark.parametrize("kw", [{"method": "rips"}, {"k": 0}, {"exact_max": 0}, {"k": 2.5}])
def test_bad_options(kw):
    with pytest.raises(ConfigurationError):
        h0_persistence(np.eye(4), **kw)
