"""Downstream check of a recommendation: does the recommended attention keep labels apart better?

For a labelled key set ``X (n, d)`` with labels ``y (n,)``, each mechanism runs self-attention
with queries = keys = values = ``X`` (the setting of the labelled suite: the output of key ``i``
is its attention-weighted summary of the set), and the output is scored by leave-one-out
``k``-nearest-neighbour label accuracy:

``acc(Z) = mean_i [ mode{y_j : j ∈ kNN_Z(i), j ≠ i} = y_i ]``

with Euclidean neighbours (exact, :func:`workbench.graph.knn_graph`) and ties of the vote going
to the label of the nearest neighbour among the tied labels. The same measure is used for every
mechanism (hyperbolic outputs are compared by their Euclidean coordinates too, which if anything
favours the Euclidean baseline).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.errors import ShapeError
from workbench.report.persistence import points

__all__ = ["knn_label_accuracy", "self_attention", "DownstreamResult", "compare_with_standard"]


def knn_label_accuracy(z, labels, k: int = 5) -> float:
    """Leave-one-out ``k``-NN label accuracy of the rows of ``z (n, m)`` for ``labels (n,)``.

    Majority vote over the ``min(k, n − 1)`` nearest other rows; a tie goes to the tied label
    whose member comes first in distance order.
    """
    from workbench.graph import knn_graph

    a = points(z, "z")
    y = np.asarray(labels)
    if y.shape != (a.shape[0],):
        raise ShapeError(f"labels: expected shape ({a.shape[0]},) (one per row of z), got {y.shape}")
    n = a.shape[0]
    if n < 2:
        raise ShapeError(f"z: expected at least 2 rows for a leave-one-out accuracy, got {n}")
    kk = min(int(k), n - 1)
    g = knn_graph(a.astype(np.float64), kk)
    nb = np.asarray(g.src).reshape(n, kk)  # sorted by distance within each row
    _, codes = np.unique(y, return_inverse=True)
    votes = codes[nb]  # (n, kk)
    counts = np.zeros((n, codes.max() + 1), np.int64)
    np.add.at(counts, (np.repeat(np.arange(n), kk), votes.ravel()), 1)
    best = counts.max(axis=1)
    # first neighbour (in distance order) whose label has the top count
    is_top = counts[np.arange(n)[:, None], votes] == best[:, None]
    pred = votes[np.arange(n), np.argmax(is_top, axis=1)]
    return float(np.mean(pred == codes))


def self_attention(name: str, x, **params) -> np.ndarray:
    """``workbench.make(name, **params)(x, x, x)`` for ``x (n, d)`` → ``(n, d)``."""
    import workbench

    a = points(x, "x")
    return np.asarray(workbench.make(name, **params)(a, a, a))


@dataclass(frozen=True)
class DownstreamResult:
    """kNN label accuracy of the recommended mechanism's output against scaled dot-product's."""

    mechanism: str
    params: dict
    accuracy: float
    standard_accuracy: float
    raw_accuracy: float

    @property
    def margin(self) -> float:
        return self.accuracy - self.standard_accuracy


def compare_with_standard(x, labels, mechanism: str, params: dict | None = None, k: int = 5) -> DownstreamResult:
    """Accuracy of ``mechanism(**params)`` self-attention vs ``scaled_dot_product`` (and the raw keys)."""
    params = dict(params or {})
    acc = knn_label_accuracy(self_attention(mechanism, x, **params), labels, k)
    std = acc if (mechanism == "scaled_dot_product" and not params) else knn_label_accuracy(
        self_attention("scaled_dot_product", x), labels, k)
    return DownstreamResult(mechanism, params, acc, std, knn_label_accuracy(x, labels, k))
