"""The downstream measure: leave-one-out kNN label accuracy, against a brute-force vote."""
from __future__ import annotations

import numpy as np
import pytest

import workbench
from workbench.errors import ShapeError
from workbench.report.downstream import compare_with_standard, knn_label_accuracy, self_attention


def brute_accuracy(z, y, k):
    z = np.asarray(z, np.float64)
    hits = 0
    for i in range(len(z)):
        d = [(float(np.sum((z[i] - z[j]) ** 2)), j) for j in range(len(z)) if j != i]
        nb = [j for _, j in sorted(d)[:k]]
        counts = {}
        for j in nb:
            counts[y[j]] = counts.get(y[j], 0) + 1
        top = max(counts.values())
        pred = next(y[j] for j in nb if counts[y[j]] == top)  # tie: label met first by distance
        hits += pred == y[i]
    return hits / len(z)


@pytest.mark.parametrize("k", (1, 4, 5))
def test_accuracy_matches_brute_force(rng, k):
    z = rng.standard_normal((60, 3))
    y = rng.integers(0, 3, 60) * 7 + 2  # arbitrary label values
    assert knn_label_accuracy(z, y, k) == pytest.approx(brute_accuracy(z, y, k))


def test_perfectly_separated_labels_and_errors(rng):
    z = np.concatenate([rng.standard_normal((20, 2)), 100 + rng.standard_normal((20, 2))])
    y = np.repeat([0, 1], 20)
    assert knn_label_accuracy(z, y) == 1.0
    with pytest.raises(ShapeError, match="labels"):
        knn_label_accuracy(z, y[:-1])
    with pytest.raises(ShapeError, match="z"):
        knn_label_accuracy(z[:1], y[:1])


def test_self_attention_and_comparison(rng):
    x = rng.standard_normal((30, 4))
    np.testing.assert_allclose(self_attention("scaled_dot_product", x), workbench.make("scaled_dot_product")(x, x, x))
    y = (x[:, 0] > 0).astype(int)
    res = compare_with_standard(x, y, "scaled_dot_product")
    assert res.accuracy == res.standard_accuracy and res.margin == 0.0
    assert res.raw_accuracy == pytest.approx(brute_accuracy(x, y, 5))
