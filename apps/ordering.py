"""Row orders for the Inspect map: data order, by label, or a cluster order.

``cluster`` puts similar points next to each other: the leaf order of an average-linkage
dendrogram (``scipy.cluster.hierarchy``, optimal leaf ordering off) up to ``HIERARCHY_MAX``
points; past that (the dendrogram needs O(n²) memory) k-means cells (``scipy.cluster.vq.kmeans2``,
``√n`` clusters capped at 256, seeded) ordered by the leaf order of their centres, points by
distance to their centre. Orders are permutations (``order[i]`` = original index at position i).
"""
from __future__ import annotations

import numpy as np

ORDERS = ("data order", "label", "cluster order")
HIERARCHY_MAX = 3000


def order_for(how: str, x: np.ndarray, labels=None, seed: int = 0) -> np.ndarray:
    """The permutation ``how`` (one of :data:`ORDERS`) of the rows of ``x (n, d)``."""
    n = int(x.shape[0])
    if how == "data order" or n <= 1:
        return np.arange(n)
    if how == "label":
        if labels is None:
            return np.arange(n)
        return np.argsort(np.asarray(labels).astype(str), kind="stable")
    if how != "cluster order":
        from workbench.errors import ConfigurationError

        raise ConfigurationError(f"order: expected one of {ORDERS}, got {how!r}")
    return _cluster_order(np.asarray(x, dtype=np.float64), seed)


def _leaves(points: np.ndarray) -> np.ndarray:
    from scipy.cluster.hierarchy import leaves_list, linkage

    if len(points) < 2:
        return np.arange(len(points))
    return leaves_list(linkage(points, method="average"))


def _cluster_order(x: np.ndarray, seed: int) -> np.ndarray:
    n = x.shape[0]
    if n <= HIERARCHY_MAX:
        return _leaves(x)
    from scipy.cluster.vq import kmeans2

    k = int(min(256, max(2, np.sqrt(n))))
    centres, assign = kmeans2(x, k, seed=np.random.default_rng(seed), minit="++")
    rank = np.empty(k, dtype=np.int64)
    rank[_leaves(centres)] = np.arange(k)
    dist = np.linalg.norm(x - centres[assign], axis=1)
    return np.lexsort((dist, rank[assign]))
