"""Demo data sets: shapes, labels, determinism, and the structure each one promises."""
from __future__ import annotations

import numpy as np
import pytest

from workbench.data import DEFAULT_DEMO, DEMOS, load_demo
from workbench.errors import DataError


@pytest.mark.parametrize("name, shape, n_labels", [
    ("clusters", (1200, 32), 6), ("tree", (1365, 10), 5), ("sequence", (2048, 32), 16), ("digits", (1797, 64), 10),
])
def test_shapes_and_labels(name, shape, n_labels):
    ds = load_demo(name)
    assert ds.x.shape == shape and ds.x.dtype == np.float32 and np.isfinite(ds.x).all()
    assert ds.labels.shape == (shape[0],) and len(np.unique(ds.labels)) == n_labels
    assert 500 <= ds.n <= 2500  # small enough for maps in seconds
    assert ds.source.startswith(f"demo:{name}")


def test_names_default_and_errors():
    assert DEMOS == ("clusters", "tree", "sequence", "digits") and DEFAULT_DEMO in DEMOS
    with pytest.raises(DataError, match="no demo 'nope'"):
        load_demo("nope")
    with pytest.raises(DataError, match="fixed size"):
        load_demo("digits", n=10)
    with pytest.raises(DataError, match="seed"):
        load_demo("clusters", seed=-1)
    assert load_demo("sequence", n=300).n == 300


@pytest.mark.parametrize("name", ["clusters", "tree", "sequence"])
def test_same_seed_same_data(name):
    a, b, c = load_demo(name, seed=3), load_demo(name, seed=3), load_demo(name, seed=4)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)


def _poincare_distance(x, y):
    """``arcosh(1 + 2‖x − y‖² / ((1 − ‖x‖²)(1 − ‖y‖²)))``, curvature −1, float64, written out here."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    num = 2 * np.sum((x - y) ** 2, axis=-1)
    den = (1 - np.sum(x * x, axis=-1)) * (1 - np.sum(y * y, axis=-1))
    return np.arccosh(1 + num / den)


def test_tree_is_a_hierarchy_in_the_poincare_ball():
    ds = load_demo("tree")
    x = ds.x.astype(np.float64)
    norms = np.linalg.norm(x, axis=1)
    assert norms.max() < 1 and norms[0] == 0
    paths = ds.texts
    index = {p: i for i, p in enumerate(paths)}
    parent = np.array([index[p.rsplit(".", 1)[0]] if "." in p else 0 for p in paths[1:]])
    child = np.arange(1, ds.n)
    # each edge has the hyperbolic length the builder promises (float32 storage: loose near the rim)
    np.testing.assert_allclose(_poincare_distance(x[child], x[parent]), 1.2, rtol=2e-2)
    depth = np.array([0] + [p.count(".") + 1 for p in paths[1:]])
    assert all(norms[depth == t].mean() < norms[depth == t + 1].mean() for t in range(5))
    # labels = the root's subtree, read from the path
    assert ds.labels[0] == -1
    assert all(ds.labels[i] == int(p.split(".")[0]) for i, p in enumerate(paths) if i)
    # nodes of one subtree are closer to each other than to other subtrees (hyperbolic distance)
    leaves = np.flatnonzero(depth == 5)[::7]
    d = _poincare_distance(x[leaves][:, None], x[leaves][None])
    same = ds.labels[leaves][:, None] == ds.labels[leaves][None]
    off = ~np.eye(len(leaves), dtype=bool)
    assert d[same & off].mean() < d[~same].mean()


def test_clusters_are_separated():
    ds = load_demo("clusters")
    cent = np.stack([ds.x[ds.labels == c].mean(0) for c in range(6)])
    nearest = np.argmin(((ds.x[:, None] - cent[None]) ** 2).sum(-1), axis=1)
    assert np.mean(nearest == ds.labels) > 0.99
    assert np.all(np.diff(ds.labels) >= 0)  # ordered by cluster: blocks on the diagonal of a map


def test_sequence_has_local_structure():
    ds = load_demo("sequence")
    x = ds.x.astype(np.float64)
    adjacent = np.linalg.norm(x[1:] - x[:-1], axis=1).mean()
    far = np.linalg.norm(x[500:] - x[:-500], axis=1).mean()
    assert adjacent < 0.5 * far
    assert (np.diff(ds.labels) >= 0).all() and np.bincount(ds.labels).tolist() == [128] * 16


def test_digits_are_scikit_learns():
    from sklearn.datasets import load_digits

    ref = load_digits()
    ds = load_demo("digits")
    np.testing.assert_array_equal(ds.x, ref.data.astype(np.float32))
    np.testing.assert_array_equal(ds.labels, ref.target)
