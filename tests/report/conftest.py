"""Shared helpers of the report tests: brute-force definitions written out in float64."""
from __future__ import annotations

import numpy as np
import pytest


def _kruskal_deaths(x) -> np.ndarray:
    """Merge lengths of Kruskal's algorithm over all pairs (float64 loops, union-find)."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    edges = sorted((float(np.sqrt(np.sum((x[i] - x[j]) ** 2))), i, j) for i in range(n) for j in range(i + 1, n))
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    deaths = []
    for length, i, j in edges:
        a, b = find(i), find(j)
        if a != b:
            parent[a] = b
            deaths.append(length)
    return np.array(deaths)


@pytest.fixture
def kruskal_deaths():
    """``kruskal_deaths(x)``: the H0 deaths of ``x`` by brute force."""
    return _kruskal_deaths
