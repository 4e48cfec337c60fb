"""Recommendation features against their definitions (float64 loops and hand-computed cases)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from workbench.report import features as F


def test_gromov_delta_of_a_line_is_zero(rng):
    x = np.outer(rng.uniform(0, 5, 40), rng.standard_normal(3))  # points on a line: a tree metric
    assert F.gromov_delta(x, samples=3000) == pytest.approx(0.0, abs=1e-12)


def test_gromov_delta_of_a_square():
    """Unit square: pair sums 2, 2, 2√2 → δ = √2 − 1, diameter √2, relative 2δ/diam = 2 − √2."""
    x = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    assert F.gromov_delta(x, samples=5000) == pytest.approx(2 - math.sqrt(2), rel=1e-12)
    assert F.gromov_delta(x[:3]) == 0.0  # fewer than 4 points


def test_gromov_delta_four_point_condition_by_loops(rng):
    x = rng.standard_normal((6, 3))
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    worst = 0.0
    for a in range(6):
        for b in range(6):
            for c in range(6):
                for e in range(6):
                    s = sorted([d[a, b] + d[c, e], d[a, c] + d[b, e], d[a, e] + d[b, c]])
                    worst = max(worst, (s[2] - s[1]) / 2)
    got = F.gromov_delta(x, samples=200000, seed=3)  # enough samples to hit every quadruple
    assert got == pytest.approx(2 * worst / d.max(), rel=1e-9)


def test_sequence_locality():
    n = 64  # window ⌈64/32⌉ = 2
    src = np.array([0, 1, 5, 10, 63, 30])
    dst = np.array([1, 3, 60, 9, 62, 31])
    frac, w, p90 = F.sequence_locality(src, dst, n)
    assert w == 2 and frac == pytest.approx(5 / 6)
    assert p90 == int(np.percentile([1, 2, 55, 1, 1, 1], 90))


def dense_ratio(x, w):
    x = np.asarray(x, float).reshape(len(w), -1)
    d = w.sum(1)
    num = 0.5 * sum(w[i, j] * np.sum((x[i] - x[j]) ** 2) for i in range(len(w)) for j in range(len(w)))
    mean = (d[:, None] * x).sum(0) / d.sum()
    return num / sum(d[i] * np.sum((x[i] - mean) ** 2) for i in range(len(w)))


def random_affinity(rng, n):
    w = rng.uniform(0, 1, (n, n)) * (rng.uniform(0, 1, (n, n)) < 0.3)
    w = np.triu(w, 1)
    return w + w.T


def test_dirichlet_ratio_matches_its_definition(rng):
    w = random_affinity(rng, 25)
    x = rng.standard_normal((25, 3))
    deg = w.sum(1)
    r = F.dirichlet_ratio(x, sp.csr_array(w), deg)
    assert r == pytest.approx(dense_ratio(x, w), rel=1e-10)
    assert F.dirichlet_ratio(5 * x + 3, sp.csr_array(w), deg) == pytest.approx(r, rel=1e-10)  # scale/shift free
    assert F.dirichlet_ratio(np.full(25, 2.0), sp.csr_array(w), deg) == 0.0  # constants are smooth
    assert 0.0 <= r <= 2.0  # the random-walk spectrum


def test_key_structure_separates_noise_from_structure(rng):
    from workbench.diffusion import knn_affinity

    iso = rng.standard_normal((300, 20))
    rough, pc, contrast = F.key_structure(iso, knn_affinity(iso, 8))
    assert contrast > 0.6  # no direction is smoother than another
    line = np.outer(np.repeat(np.arange(6), 50), np.ones(20)) * 3 + rng.standard_normal((300, 20))
    rough2, pc2, contrast2 = F.key_structure(line, knn_affinity(line, 8))
    assert contrast2 < 0.3 and pc2 < pc
    assert rough == pytest.approx(F.dirichlet_ratio(iso, knn_affinity(iso, 8), np.asarray(knn_affinity(iso, 8).sum(1))))


def test_temperature_for_logits(rng):
    k = rng.standard_normal((30, 4))
    logits = k @ k.T / 2.0

    def ratio(t):  # the mean normalised entropy of softmax(logits / t), written out
        h = []
        for row in logits / t:
            p = np.exp(row - row.max())
            p /= p.sum()
            h.append(-np.sum(p * np.log(p)) / math.log(30))
        return np.mean(h)

    for target in (0.3, 0.5, 0.8):
        t = F.temperature_for_logits(logits, target)
        assert ratio(t) == pytest.approx(target, abs=1e-6)
    assert F.temperature_for_logits(np.zeros((2, 5)), 0.5) is None  # tied logits: out of reach


def test_norm_share_against_its_definition(rng):
    x = rng.standard_normal((50, 6)) * rng.uniform(0.5, 3.0, size=(50, 1))  # lengths vary
    q = x[np.sort(np.random.default_rng(1).choice(50, size=50, replace=False))]
    half = 0.5 * (x ** 2).sum(1)
    want = np.mean([np.var(half) / np.var(x @ qi) for qi in q])
    assert F.norm_share(x, queries=64, seed=1) == pytest.approx(want, rel=1e-10)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert F.norm_share(unit) == pytest.approx(0.0, abs=1e-12)  # unit-norm keys: lengths carry nothing
    assert F.norm_share(3.0 * x) == pytest.approx(F.norm_share(x), rel=1e-10)  # scale-free
