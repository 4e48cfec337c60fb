"""Negative mining picks exactly what each definition says, on crafted examples; the random
strategies draw with the probabilities written out here."""
from __future__ import annotations

import math

import numpy as np
import pytest

from workbench.errors import ConfigurationError, NumericalError, ShapeError
from workbench.training import InBatchMiner, NegativeMiner


def test_hard_picks_most_cosine_similar():
    a = np.array([1.0, 0.0])
    cands = np.array([[0.0, 1.0], [5.0, 0.0], [-1.0, 0.0], [1.0, 1.0], [3.0, 0.1]])
    # cosines: 0, 1, −1, 0.707, 0.9994
    np.testing.assert_array_equal(NegativeMiner("hard").mine(a, a, cands, 3), [1, 4, 3])
    assert NegativeMiner("hard").mine(a, a, cands, 0).shape == (0,)


def test_hard_ties_keep_index_order():
    a = np.array([1.0, 0.0])
    cands = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [3.0, 0.0]])
    np.testing.assert_array_equal(NegativeMiner("hard").mine(a, a, cands, 3), [0, 2, 3])


SEMI = dict(a=np.array([1.0, 0.0]), p=np.array([2.0, 0.0]),  # ‖a − p‖ = 1, band (1, 1.5) with margin 0.5
            cands=np.array([[1.0, 1.2],   # 1.2  semi-hard
                            [1.0, 0.5],   # 0.5  harder than the positive
                            [1.0, 3.0],   # 3.0  easy
                            [1.0, 1.4],   # 1.4  semi-hard
                            [1.0, 1.1]]))  # 1.1 semi-hard


def test_semi_hard_picks_band_nearest_first():
    m = NegativeMiner("semi_hard", margin=0.5)
    np.testing.assert_array_equal(m.mine(SEMI["a"], SEMI["p"], SEMI["cands"], 2), [4, 0])
    np.testing.assert_array_equal(m.mine(SEMI["a"], SEMI["p"], SEMI["cands"], 3), [4, 0, 3])


def test_semi_hard_fills_with_hard_negatives_to_exactly_k():
    m = NegativeMiner("semi-hard", margin=0.5)
    got = m.mine(SEMI["a"], SEMI["p"], SEMI["cands"], 5)
    # three in the band, then the hard (cosine) ranking of the rest: cos(a,(1,.5)) = .894 > cos(a,(1,3)) = .316
    np.testing.assert_array_equal(got, [4, 0, 3, 1, 2])
    assert len(set(got.tolist())) == 5


def test_random_is_seeded_distinct_and_uniform(rng):
    cands = rng.standard_normal((10, 3))
    a = rng.standard_normal(3)
    m1, m2 = NegativeMiner("random", seed=7), NegativeMiner("random", seed=7)
    draws = [m1.mine(a, a, cands, 5) for _ in range(400)]
    assert all(len(set(d.tolist())) == 5 and d.min() >= 0 and d.max() < 10 for d in draws)
    np.testing.assert_array_equal(draws[0], m2.mine(a, a, cands, 5))
    m1.reset()
    np.testing.assert_array_equal(m1.mine(a, a, cands, 5), draws[0])
    counts = np.bincount(np.concatenate(draws), minlength=10)
    expected = 400 * 5 / 10
    assert np.all(np.abs(counts - expected) < 5 * math.sqrt(expected))
    other = NegativeMiner("random", seed=8)
    assert any(not np.array_equal(other.mine(a, a, cands, 5), d) for d in draws[:5])


def wu_weights(a, cands, cutoff=0.5, nz_cutoff=1.4):
    """Wu et al.: 1/q(d), q(d) = d^(n−2)(1 − d²/4)^((n−3)/2) on the unit sphere, written out."""
    n = len(a)
    an = a / np.linalg.norm(a)
    w = []
    for c in cands:
        d = max(np.linalg.norm(an - c / np.linalg.norm(c)), cutoff)
        q = d ** (n - 2) * max(1 - d * d / 4, 1e-8) ** ((n - 3) / 2)
        w.append(0.0 if d >= nz_cutoff else 1.0 / q)
    w = np.array(w)
    return w / w.sum()


def frequencies(miner, a, cands, draws=3000):
    picks = [int(miner.mine(a, a, cands, 1)[0]) for _ in range(draws)]
    return np.bincount(picks, minlength=len(cands)) / draws


def test_distance_weighted_draws_inverse_density():
    a = np.array([1.0, 0.0, 0.0, 0.0])
    angles = [0.3, 0.6, 0.9, 1.2, 2.0, 3.0]  # the last two are beyond the non-zero-loss cutoff
    cands = np.array([[math.cos(t), math.sin(t), 0.0, 0.0] for t in angles]) * np.arange(1, 7)[:, None]
    p = wu_weights(a, cands)
    assert p[4] == 0 and p[5] == 0 and p[0] > 0
    f = frequencies(NegativeMiner("distance_weighted", seed=3), a, cands)
    assert np.all(np.abs(f - p) < 4 * np.sqrt(p * (1 - p) / 3000) + 1e-12)
    # asking for more than the weighted ones: those first, then the zero-weight ones
    got = NegativeMiner("distance_weighted", seed=1).mine(a, a, cands, 6)
    assert set(got[:4].tolist()) == {0, 1, 2, 3} and set(got[4:].tolist()) == {4, 5}


def test_similarity_weighted_draws_softmax_of_cosine():
    a = np.array([1.0, 0.0])
    cands = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 1.0]])
    cos = np.array([1.0, 0.0, -1.0, 1 / math.sqrt(2)])
    p = np.exp(cos / 0.5) / np.exp(cos / 0.5).sum()
    f = frequencies(NegativeMiner("similarity_weighted", temperature=0.5, seed=5), a, cands)
    assert np.all(np.abs(f - p) < 4 * np.sqrt(p * (1 - p) / 3000))
    got = NegativeMiner("similarity_weighted", seed=2).mine(a, a, cands, 3)
    assert len(set(got.tolist())) == 3


def test_in_batch_excludes_anchor_and_positive():
    got = InBatchMiner().get_negatives(2, 5, 10)
    assert got.tolist() == [0, 1, 3, 4, 6, 7, 8, 9]
    assert InBatchMiner(include_positive=True).get_negatives(2, 5, 10).tolist() == [0, 1, 3, 4, 5, 6, 7, 8, 9]


def test_bad_inputs(rng):
    a, c = rng.standard_normal(3), rng.standard_normal((4, 3))
    with pytest.raises(ConfigurationError, match="strategy"):
        NegativeMiner("hardest")
    with pytest.raises(ConfigurationError, match="temperature"):
        NegativeMiner("similarity_weighted", temperature=-1.0)
    with pytest.raises(ConfigurationError, match="seed"):
        NegativeMiner("random", seed=-1)
    with pytest.raises(ConfigurationError, match="margin"):
        NegativeMiner("semi_hard", margin=-0.1)
    with pytest.raises(ConfigurationError, match="k"):
        NegativeMiner().mine(a, a, c, 5)
    with pytest.raises(ShapeError, match="candidates"):
        NegativeMiner().mine(a, a, np.zeros((0, 3)), 0)
    with pytest.raises(ShapeError, match="candidates"):
        NegativeMiner().mine(a, a, c[:, :2], 1)
    with pytest.raises(ShapeError, match="positive"):
        NegativeMiner().mine(a, a[:2], c, 1)
    bad = c.copy()
    bad[1, 1] = np.inf
    with pytest.raises(NumericalError, match="candidates"):
        NegativeMiner().mine(a, a, bad, 1)
    with pytest.raises(ConfigurationError, match="positive_idx"):
        InBatchMiner().get_negatives(0, 10, 10)
    with pytest.raises(ConfigurationError, match="batch_size"):
        InBatchMiner().get_negatives(0, 0, 0)
