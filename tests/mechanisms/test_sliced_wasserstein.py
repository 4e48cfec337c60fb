"""Sliced-Wasserstein attention against its definition: per-direction projections written out,
the two-stage form, point clouds against workbench.transport, the cache, upstream's tests."""
from __future__ import annotations

import numpy as np
import pytest

import workbench
from workbench.errors import ConfigurationError, NumericalError, ShapeError
from workbench.transport import random_directions, sliced_wasserstein_distance


def softmax(s, allowed=None):
    s = np.where(allowed, s, -np.inf) if allowed is not None else s
    if not np.isfinite(s).any():
        return np.zeros_like(s)
    e = np.exp(s - s[np.isfinite(s)].max())
    return e / e.sum()


def definition_weights(q, k, theta, p, T, mask=None):
    """Loops: ``D_ij = (mean_θ |θ·q_i − θ·k_j|^p)^{1/p}``, ``W_i = softmax(−D_i/T)``."""
    lq, lk = len(q), len(k)
    W = np.zeros((lq, lk))
    for i in range(lq):
        D = np.array([np.mean([abs(t @ q[i] - t @ k[j]) ** p for t in theta]) ** (1 / p) for j in range(lk)])
        W[i] = softmax(-D / T, None if mask is None else mask[i])
    return W


@pytest.mark.parametrize("p", [1.0, 2.0, 2.5])
def test_weights_and_output_match_definition(rng, backend, p):
    q, k, v = rng.standard_normal((6, 5)), rng.standard_normal((9, 5)), rng.standard_normal((9, 3))
    mask = rng.random((6, 9)) < 0.7
    mask[2] = False
    mech = workbench.make("sliced_wasserstein", num_projections=7, wasserstein_power=p, temperature=0.6, seed=5,
                          backend=backend)
    theta = random_directions(7, 5, seed=5)
    np.testing.assert_array_equal(mech.directions(5), theta)
    W = definition_weights(q, k, theta, p, 0.6, mask)
    np.testing.assert_allclose(mech.weights(q, k, mask=mask), W, atol=1e-12)
    np.testing.assert_allclose(mech(q, k, v, mask=mask), W @ v, atol=1e-12)


def test_many_projections_estimate_the_scaled_euclidean_distance(rng):
    """For ``p = 2``, ``SW_2(δ_q, δ_k)² = mean_θ (θ·(q − k))² → ‖q − k‖²/d``."""
    q, k = rng.standard_normal((3, 8)), rng.standard_normal((5, 8))
    mech = workbench.make("sliced_wasserstein", num_projections=4096, temperature=1.0, backend="numpy")  # the bound
    w = mech.weights(q, k)
    D = np.linalg.norm(q[:, None] - k[None], axis=-1) / np.sqrt(8)
    expected = np.exp(-D) / np.exp(-D).sum(-1, keepdims=True)
    np.testing.assert_allclose(w, expected, atol=0.02)


def test_two_stage_restricts_the_softmax_to_the_top_dot_product_keys(rng, backend):
    q, k, v = rng.standard_normal((4, 6)), rng.standard_normal((50, 6)), rng.standard_normal((50, 32))
    mask = rng.random((4, 50)) < 0.8
    full = workbench.make("sliced_wasserstein", num_projections=8, backend=backend)
    two = workbench.make("sliced_wasserstein", num_projections=8, num_candidates=8, backend=backend)
    theta = random_directions(8, 6, seed=0)
    w = two.weights(q, k, mask=mask)
    for i in range(4):
        s = np.where(mask[i], k @ q[i], -np.inf)
        top = np.argsort(-s, kind="stable")[:8]
        allowed = np.zeros(50, bool)
        allowed[top] = True
        np.testing.assert_allclose(w[i], definition_weights(q[i:i + 1], k, theta, 2.0, 1.0, allowed[None])[0],
                                   atol=1e-12)
        assert (w[i] > 0).sum() == 8
    out = two(q, k, v, mask=mask)
    assert out.shape == (4, 32)  # upstream: two-stage with C = 8 over 50 keys -> length 32
    np.testing.assert_allclose(out, w @ v, atol=1e-12)
    # C >= number of keys: the full path
    wide = workbench.make("sliced_wasserstein", num_projections=8, num_candidates=50, backend=backend)
    np.testing.assert_allclose(wide.weights(q, k, mask=mask), full.weights(q, k, mask=mask), atol=1e-12)


def test_two_stage_ties_go_to_the_smaller_index(backend):
    q = np.array([[1.0, 0.0]])
    k = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, -1.0], [0.0, 1.0]])  # three keys tie on q·k = 1
    two = workbench.make("sliced_wasserstein", num_candidates=2, backend=backend)
    w = two.weights(q, k)
    assert (w[0, :2] > 0).all() and (w[0, 2:] == 0).all()


def test_point_clouds_use_the_true_sliced_wasserstein_distance(rng, backend):
    q = rng.standard_normal((3, 4, 5))  # 3 query clouds of 4 points
    k = rng.standard_normal((6, 7, 5)) + rng.standard_normal((6, 1, 5))  # 6 key clouds of 7 points
    v = rng.standard_normal((6, 2))
    mech = workbench.make("sliced_wasserstein", num_projections=9, wasserstein_power=1.5, temperature=0.4, seed=2,
                          backend=backend)
    sw = np.array([[sliced_wasserstein_distance(q[i], k[j], num_projections=9, p=1.5, seed=2) for j in range(6)]
                   for i in range(3)])
    W = np.stack([softmax(-sw[i] / 0.4) for i in range(3)])
    np.testing.assert_allclose(mech.cloud_weights(q, k), W, atol=1e-12)
    np.testing.assert_allclose(mech.cloud_attention(q, k, v), W @ v, atol=1e-12)
    # one point per cloud is the ordinary call
    qp, kp = q[:, 0], k[:, 0]
    np.testing.assert_allclose(mech.cloud_attention(qp[:, None], kp[:, None], v), mech(qp, kp, v), atol=1e-12)


def test_cloud_distances_see_the_distribution_not_the_mean(rng):
    """Two key clouds with the same mean, one spread out: a point query prefers the tight one; the
    point-wise (mean) distance cannot tell them apart."""
    centre = np.zeros((1, 3))
    tight = 0.05 * rng.standard_normal((20, 3))
    wide = 3.0 * rng.standard_normal((20, 3))
    tight -= tight.mean(0)
    wide -= wide.mean(0)
    k = np.stack([tight, wide])
    mech = workbench.make("sliced_wasserstein", num_projections=16, backend="numpy")
    w = mech.cloud_weights(centre[None], k)
    assert w.shape == (1, 2) and w[0, 0] > 0.9
    np.testing.assert_allclose(mech.weights(centre[0], k.mean(1)), [0.5, 0.5], atol=1e-12)


def test_cache_is_reused_across_queries(rng, backend):
    k = rng.standard_normal((2, 10, 3, 4))  # batch 2, 10 key clouds of 3 points
    v = rng.standard_normal((2, 10, 32))
    mech = workbench.make("sliced_wasserstein", num_projections=6, backend=backend)
    cache = mech.cache_keys(k)
    assert cache.sorted_projections.shape == (2, 10, 3, 6)
    assert (np.diff(cache.sorted_projections, axis=-2) >= 0).all()
    for _ in range(5):  # upstream: one cache reused for 5 queries
        q = rng.standard_normal((2, 4, 2, 4))
        out = mech.attend_cached(q, cache, v)
        assert out.shape == (2, 4, 32)
        np.testing.assert_allclose(out, mech.cloud_attention(q, k, v), atol=1e-12)
    other = workbench.make("sliced_wasserstein", num_projections=7)
    with pytest.raises(ShapeError, match="cache"):
        other.attend_cached(q, cache, v)


def test_upstream_shapes(rng, backend):
    mech = workbench.make("sliced_wasserstein", backend=backend)
    q, k, v = rng.standard_normal(32), rng.standard_normal((10, 32)), rng.standard_normal((10, 32))
    assert mech(q, k, v).shape == (32,)
    assert mech(q.astype(np.float32), k.astype(np.float32), v.astype(np.float32)).dtype == np.float32


def test_seeded_and_reproducible(rng):
    q, k, v = rng.standard_normal((4, 6)), rng.standard_normal((8, 6)), rng.standard_normal((8, 2))
    a = workbench.make("sliced_wasserstein", num_projections=4, seed=1)(q, k, v)
    np.testing.assert_array_equal(a, workbench.make("sliced_wasserstein", num_projections=4, seed=1)(q, k, v))
    assert not np.allclose(a, workbench.make("sliced_wasserstein", num_projections=4, seed=2)(q, k, v))


@pytest.mark.parametrize("params, arg", [
    ({"temperature": -1.0}, "temperature"),
    ({"temperature": 0.0}, "temperature"),
    ({"wasserstein_power": 0.5}, "wasserstein_power"),
    ({"num_projections": 0}, "num_projections"),
    ({"num_candidates": 0}, "num_candidates"),
    ({"seed": -1}, "seed"),
])
def test_bad_parameters(params, arg):
    with pytest.raises(ConfigurationError, match=rf"\b{arg}\b"):
        workbench.make("sliced_wasserstein", **params)


def test_bad_clouds(rng):
    mech = workbench.make("sliced_wasserstein")
    q, k, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((5, 3, 4)), rng.standard_normal((5, 2))
    with pytest.raises(ShapeError, match=r"\bk\b"):
        mech.cloud_attention(q, k[:, 0], v)
    with pytest.raises(ShapeError, match=r"\bk\b"):
        mech.cloud_attention(q, k[:, :0], v)
    with pytest.raises(ShapeError, match=r"\bk\b"):
        mech.cloud_attention(q, k[..., :3], v)
    with pytest.raises(ShapeError, match=r"\bv\b"):
        mech.cloud_attention(q, k, v[:4])
    bad = k.copy()
    bad[0, 1, 2] = np.nan
    with pytest.raises(NumericalError, match=r"\bk\b"):
        mech.cloud_attention(q, bad, v)
    with pytest.raises(ShapeError, match=r"\bmask\b"):
        mech.cloud_attention(q, k, v, mask=np.ones((2, 4), bool))
