"""Normalisation, PCA, query selection, 2-D projection and graphs, each against its definition."""
from __future__ import annotations

import numpy as np
import pytest

from workbench.data import (Dataset, available_projections, graph_for, normalise, pca, project_2d,
                            select_queries, transform)
from workbench.errors import ConfigurationError, DataError


def test_normalise(rng):
    x = rng.standard_normal((20, 6)) * 3 + 1
    x[4] = 0.0
    x[:, 2] = 7.0  # a constant column
    np.testing.assert_array_equal(normalise(x), x.astype(np.float32))
    l2 = normalise(x, "l2").astype(np.float64)
    for i in range(20):
        n = np.sqrt(sum(v * v for v in x[i]))
        np.testing.assert_allclose(l2[i], x[i] / n if n else 0.0, rtol=1e-6, atol=1e-7)
    st = normalise(x, "standard").astype(np.float64)
    for j in range(6):
        col = x[:, j]
        mu = sum(col) / len(col)
        sd = np.sqrt(sum((c - mu) ** 2 for c in col) / len(col))
        np.testing.assert_allclose(st[:, j], (col - mu) / sd if sd > 1e-12 else 0.0, rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigurationError, match="how"):
        normalise(x, "zscore")


def test_normalise_into_the_ball(rng):
    x = rng.standard_normal((30, 5)) * np.geomspace(0.1, 1e4, 30)[:, None]
    x[7] = 0.0
    b = normalise(x, "ball").astype(np.float64)
    norms = [np.sqrt(sum(v * v for v in row)) for row in x]
    s = float(np.median([n for n in norms if n > 0]))
    for i in range(30):  # exp map at the origin of x / s: tanh(‖x‖/s) · x/‖x‖
        want = np.tanh(norms[i] / s) * x[i] / norms[i] if norms[i] else np.zeros(5)
        np.testing.assert_allclose(b[i], want, rtol=1e-5, atol=1e-6)
    bn = np.linalg.norm(b, axis=1)
    assert bn.max() < 1.0 and np.all(np.diff(bn[np.argsort(norms)]) >= -1e-6)  # inside, norm order kept
    # PCA first, then the ball (PCA of ball points would leave it)
    ds = transform(Dataset(x.astype(np.float32)), "ball", pca_dim=3)
    assert ds.x.shape == (30, 3) and np.linalg.norm(ds.x, axis=1).max() < 1.0
    assert ds.notes[-1] == "normalised: ball"


@pytest.mark.parametrize("n, d", [(200, 5), (6, 9)])  # tall (eigh of the scatter) and wide (SVD)
def test_pca_matches_the_covariance_eigenvectors(rng, n, d):
    x = rng.standard_normal((n, d)) @ np.diag(np.arange(d, 0, -1.0))
    dim = min(3, n - 1)
    z = pca(x, dim).astype(np.float64)
    xc = x - x.mean(0)
    cov = np.zeros((d, d))
    for row in xc:
        cov += np.outer(row, row)
    evals, evecs = np.linalg.eigh(cov / (n - 1))
    top = evecs[:, np.argsort(evals)[::-1][:dim]]
    for c in range(dim):
        v = top[:, c] * np.sign(top[np.argmax(np.abs(top[:, c])), c])  # largest loading positive
        np.testing.assert_allclose(z[:, c], xc @ v, rtol=1e-4, atol=1e-4)
    assert np.all(np.diff(z.var(0)) <= 1e-9)  # variance decreasing


def test_pca_and_transform_errors(rng):
    x = rng.standard_normal((10, 4))
    for bad in (0, 5, 2.5, True):
        with pytest.raises(ConfigurationError, match="dim"):
            pca(x, bad)
    ds = Dataset(x, labels=np.arange(10) % 2)
    t = transform(ds, "l2", 3)
    assert t.x.shape == (10, 3)  # checked on its own: "a and b or c" would skip it whenever c holds
    np.testing.assert_array_equal(t.labels, ds.labels)
    assert any("PCA" in n for n in t.notes)
    with pytest.raises(ConfigurationError, match="pca_dim"):
        transform(ds, "none", 1)


def test_select_queries(rng):
    ds = Dataset(rng.standard_normal((50, 3)), labels=np.arange(50) % 5)
    np.testing.assert_array_equal(select_queries(ds), np.arange(50))
    s = select_queries(ds, "subset", n=10, seed=2)
    assert len(s) == 10 == len(set(s.tolist())) and (np.diff(s) > 0).all() and s.max() < 50
    np.testing.assert_array_equal(s, select_queries(ds, "subset", n=10, seed=2))
    assert not np.array_equal(s, select_queries(ds, "subset", n=10, seed=3))
    np.testing.assert_array_equal(select_queries(ds, "subset", n=500), np.arange(50))
    np.testing.assert_array_equal(select_queries(ds, "label", label="3"), np.arange(3, 50, 5))
    np.testing.assert_array_equal(select_queries(ds, "label", label=3), np.arange(3, 50, 5))
    with pytest.raises(DataError, match="no row has label '9'"):
        select_queries(ds, "label", label="9")
    with pytest.raises(ConfigurationError, match="n"):
        select_queries(ds, "subset")
    with pytest.raises(ConfigurationError, match="how"):
        select_queries(ds, "some")
    with pytest.raises(DataError, match="no labels"):
        select_queries(Dataset(ds.x), "label", label=1)


def test_project_2d(rng):
    x = rng.standard_normal((30, 5))
    p = project_2d(x)
    assert p.shape == (30, 2) and p.dtype == np.float32
    np.testing.assert_array_equal(p, pca(x, 2))
    assert "pca" in available_projections()
    if "umap" not in available_projections():
        with pytest.raises(DataError, match="umap-learn"):
            project_2d(x, "umap")
    with pytest.raises(ConfigurationError, match="method"):
        project_2d(x, "tsne")


def test_knn_graph_for_is_the_exact_neighbour_graph(rng):
    x = rng.standard_normal((40, 3))
    g = graph_for(x, "knn", k=4)
    assert g.num_nodes == 40 and g.num_edges == 160
    for i in range(40):
        d = [np.sqrt(sum((x[i, c] - x[j, c]) ** 2 for c in range(3))) if j != i else np.inf for j in range(40)]
        expected = set(np.argsort(d, kind="stable")[:4].tolist())
        assert set(g.src[g.dst == i].tolist()) == expected
    assert graph_for(x, "knn", k=4) is g  # cached by content
    with pytest.raises(ConfigurationError, match="k: expected at most n - 1 = 39"):
        graph_for(x, "knn", k=40)
    with pytest.raises(ConfigurationError, match="kind"):
        graph_for(x, "ball", k=3)


def test_hnsw_graph_for_has_levels(rng):
    x = rng.standard_normal((300, 4))
    g = graph_for(x, "hnsw", k=8, seed=1)
    assert g.layer is not None and g.layer.shape == (300,)
    assert 0 < g.num_edges <= 300 * 8
    assert set(g.dst.tolist()) == set(range(300))
