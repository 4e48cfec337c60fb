"""The labelled suite: deterministic, well-formed, and built as documented."""
from __future__ import annotations

import numpy as np
import pytest

from workbench.errors import ConfigurationError
from workbench.geometry import poincare as P
from workbench.report.suite import isotropic_keys, noisy_cluster_keys, sequence_keys, suite, tree_keys


def test_four_cases_with_their_answers():
    cases = suite(seed=1)
    assert [(c.name, c.expected) for c in cases] == [
        ("tree", "Geometric"), ("sequence", "Sparse"), ("noisy_clusters", "Diffusion"), ("isotropic", "Standard")]
    for c in cases:
        assert c.keys.ndim == 2 and c.keys.dtype == np.float32 and np.isfinite(c.keys).all()
        assert c.labels.shape == (len(c.keys),) and c.labels.dtype == np.int64
        assert len(np.unique(c.labels)) >= 2 and c.description


@pytest.mark.parametrize("make", (tree_keys, sequence_keys, noisy_cluster_keys, isotropic_keys))
def test_seeded(make):
    a, b, c = make(seed=4), make(seed=4), make(seed=5)
    np.testing.assert_array_equal(a.keys, b.keys)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.keys, c.keys)
    assert make(seed=4, dtype=np.float64).keys.dtype == np.float64


def test_tree_lives_in_the_ball_and_labels_are_subtrees():
    c = tree_keys(branching=2, depth=3, per_node=5, dim=4, label_depth=2, seed=2)
    assert len(c.keys) == 5 * (4 + 8)  # nodes of depth 2 and 3
    assert np.linalg.norm(c.keys.astype(np.float64), axis=1).max() < 1
    assert set(np.unique(c.labels)) == {0, 1, 2, 3}
    # points of one subtree are hyperbolically closer to each other than to other subtrees, on average
    d = P.pairwise_distance(c.keys.astype(np.float64), c.keys.astype(np.float64))
    same = c.labels[:, None] == c.labels[None, :]
    assert d[same].mean() < d[~same].mean()
    # deeper nodes are further from the origin: depth-3 points beyond depth-2 points on average
    r = P.distance(c.keys.astype(np.float64), np.zeros(4))
    depth = c.info["node_depth"]
    assert r[depth == 3].mean() > r[depth == 2].mean()


def test_sequence_is_a_drifting_walk_in_order():
    c = sequence_keys(length=300, dim=3, segment=100, drift=0.5, noise=0.1, seed=3)
    np.testing.assert_array_equal(c.labels, np.arange(300) // 100)
    step = np.linalg.norm(np.diff(c.keys.astype(np.float64), axis=0), axis=1).mean()
    far = np.linalg.norm(c.keys[200:].astype(np.float64) - c.keys[:100], axis=1).mean()
    assert step < far  # neighbours in the sequence are neighbours in space


def test_noisy_clusters_centres_on_a_circle():
    c = noisy_cluster_keys(clusters=6, per_cluster=400, dim=10, radius=3.0, noise=0.5, seed=2)
    centres = np.stack([c.keys[c.labels == m].astype(np.float64).mean(0) for m in range(6)])
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 3.0, atol=0.1)
    u, s, _ = np.linalg.svd(centres, full_matrices=False)
    assert s[2] < 0.1 * s[1]  # the centres span a plane
    noise = c.keys.astype(np.float64) - centres[c.labels]
    assert noise.std() == pytest.approx(0.5, rel=0.05)


def test_isotropic_labels_are_a_half_space():
    c = isotropic_keys(n=2000, dim=5, seed=2)
    assert 0.4 < c.labels.mean() < 0.6
    assert abs(np.cov(c.keys.astype(np.float64).T) - np.eye(5)).max() < 0.1


@pytest.mark.parametrize("make, kw", [
    (tree_keys, {"branching": 1}), (tree_keys, {"label_depth": 9}), (tree_keys, {"noise": -1.0}),
    (sequence_keys, {"length": 1}), (sequence_keys, {"drift": 0}), (noisy_cluster_keys, {"clusters": 1}),
    (noisy_cluster_keys, {"radius": float("nan")}), (isotropic_keys, {"n": 1}), (isotropic_keys, {"dim": 2.5}),
])
def test_bad_arguments(make, kw):
    with pytest.raises(ConfigurationError, match=next(iter(kw))):
        make(**kw)
