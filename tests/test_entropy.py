"""Attention entropy: against its definition, normalised by the support, and estimated from a key sample."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.entropy import (mean_ratio, normalised_entropy, replicated_entropy, row_entropy, softmax_entropy,
                               support)


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_row_entropy_and_normalisation_against_the_definition():
    w = np.array([[0.6, 0.3, 0.1, 0.0], [1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    want = [-(0.6 * math.log(0.6) + 0.3 * math.log(0.3) + 0.1 * math.log(0.1)), 0.0, math.log(4)]
    np.testing.assert_allclose(row_entropy(w), want, rtol=1e-14, atol=0)
    np.testing.assert_allclose(normalised_entropy(w), np.array(want) / math.log(4), rtol=1e-14)
    np.testing.assert_array_equal(support(w), [3, 1, 4])
    per_row = normalised_entropy(w, n=[3, 4, 4])  # the first row may attend 3 keys only
    assert per_row[0] == pytest.approx(want[0] / math.log(3))
    assert np.isnan(normalised_entropy(w, n=[1, 1, 1])).all()  # nothing to choose: no entropy
    assert mean_ratio([math.log(2), 0.0], [2, 1]) == 1.0  # rows with one key are left out


def test_softmax_entropy_from_logits():
    # uniform logits: ln n; two logits a, b: the binary entropy of p = 1/(1+e^(b−a)), by hand
    assert softmax_entropy(np.full((1, 5), 3.0))[0] == pytest.approx(math.log(5), rel=1e-14)
    p = 1 / (1 + math.exp(-2.0))
    assert softmax_entropy([[2.0, 0.0]])[0] == pytest.approx(-(p * math.log(p) + (1 - p) * math.log(1 - p)), rel=1e-13)
    # weights that underflow to 0 give no NaN (no 0·ln 0 is formed): a one-hot row has entropy 0
    assert softmax_entropy(np.array([[0.0, -800.0, -800.0]]))[0] == 0.0
    # batched over leading dimensions, and equal to −Σ p ln p where nothing underflows
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 3, 7)) * 3
    np.testing.assert_allclose(softmax_entropy(logits), row_entropy(softmax(logits)), rtol=1e-12)


def test_replicated_entropy_is_exact_on_the_whole_set(rng):
    w = softmax(rng.standard_normal((7, 30)))
    np.testing.assert_allclose(replicated_entropy(w, 30, own=np.arange(7)), row_entropy(w), rtol=1e-14)


def test_replicated_entropy_equals_the_entropy_of_a_set_made_of_copies(rng):
    """When each sampled key stands for exactly c copies (and the own key for itself), the
    estimate is the exact entropy of that bigger set."""
    m, c = 12, 5
    z = rng.standard_normal(m)
    own = 3
    full = np.concatenate([[z[own]], np.repeat(np.delete(z, own), c)])  # own once, every other c times
    want = row_entropy(softmax(full))
    got = replicated_entropy(softmax(z)[None], total=1 + (m - 1) * c, own=np.array([own]))
    assert got[0] == pytest.approx(want, rel=1e-12)


def test_replicated_entropy_estimates_a_large_softmax_from_a_sample(rng):
    """Unit vectors in 32-d, 40,000 keys, a sharp softmax: 2,000 sampled keys give the entropy over
    all keys within a few per cent (mean over 16 queries)."""
    n, m, d = 40_000, 2_000, 32
    k = rng.standard_normal((n, d))
    k /= np.linalg.norm(k, axis=1, keepdims=True)
    q = k[:16]
    exact = row_entropy(softmax(12.0 * q @ k.T))
    idx = np.concatenate([np.arange(16), rng.choice(np.arange(16, n), size=m - 16, replace=False)])
    est = replicated_entropy(softmax(12.0 * q @ k[idx].T), total=n, own=np.arange(16))
    assert np.mean(est) == pytest.approx(np.mean(exact), rel=0.03)
    naive = row_entropy(softmax(12.0 * q @ k[idx].T))  # the sample's own entropy is far lower
    assert np.mean(naive) < 0.8 * np.mean(exact)


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 40), st.integers(0, 10_000), st.floats(0.01, 30.0))
def test_normalised_entropy_lies_in_0_1(n, seed, scale):
    w = softmax(scale * np.random.default_rng(seed).standard_normal((3, n)))
    r = normalised_entropy(w)
    assert np.all((r >= -1e-12) & (r <= 1 + 1e-12))
