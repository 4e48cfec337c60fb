"""Map tiles against their definitions: pooled blocks of a dense map, the exact softmax tile."""
from __future__ import annotations

import numpy as np
import pytest

from kernels.tiles import max_pool, pool_columns, softmax_tile


def softmax_rows(s):
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_max_pool_is_the_max_of_each_block(rng):
    w = rng.random((9, 11))
    rows, edges = np.array([1, 3, 6]), np.array([2, 5, 7, 11])
    got = max_pool(w, rows, 8, edges)
    want = [[w[a:b, c:e].max() for c, e in zip(edges[:-1], edges[1:])] for a, b in zip(rows, [3, 6, 8])]
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("reduce", ("max", "sum", "mean"))
def test_pool_columns(rng, reduce):
    w = rng.random((3, 10))
    edges = np.array([0, 3, 4, 10])
    fn = {"max": np.max, "sum": np.sum, "mean": np.mean}[reduce]
    want = [[fn(row[a:b]) for a, b in zip(edges[:-1], edges[1:])] for row in w]
    np.testing.assert_allclose(pool_columns(w, edges, reduce), want, rtol=1e-12)


@pytest.mark.parametrize("causal", (False, True))
@pytest.mark.parametrize("reduce", ("max", "sum"))
def test_softmax_tile_equals_the_pooled_dense_softmax(rng, causal, reduce):
    q, k = rng.standard_normal((40, 8)), rng.standard_normal((40, 8))
    s = 0.7 * q @ k.T
    if causal:
        s = np.where(np.arange(40)[None, :] <= np.arange(40)[:, None] + 2, s, -np.inf)
    dense = softmax_rows(s)
    ridx, edges = np.array([0, 5, 17, 39]), np.array([0, 10, 13, 40])
    got = softmax_tile(q, k, ridx, edges, scale=0.7, causal=causal, causal_offset=2, reduce=reduce, backend="numpy")
    want = pool_columns(dense[ridx], edges, reduce)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
