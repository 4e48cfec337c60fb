"""kernels.geometry over the sign of κ, against formulas written out here (flat: plain vector algebra;
spherical: the inverse stereographic projection onto the sphere; hyperbolic: the arcosh form)."""
from __future__ import annotations

import numpy as np
import pytest

from kernels.geometry import lorentz as L
from kernels.geometry import sphere as S
from kernels.geometry import stereographic as K
from kernels.geometry.numerics import eps

SEEDS = (0, 1)


def points(rng, shape, k, rmax=0.8):
    """Random points with √|κ|‖x‖ ≤ rmax (any norm ≤ rmax for κ = 0)."""
    x = rng.standard_normal(shape)
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    return x * rng.uniform(0, rmax, shape[:-1] + (1,)) / np.sqrt(max(abs(k), 1e-300) if k else 1.0)


def lift(z, k):
    """Inverse stereographic projection onto the sphere of radius 1/√κ (κ > 0)."""
    a = k * np.sum(z ** 2, -1, keepdims=True)
    return np.concatenate([(1 - a) / np.sqrt(k), 2 * z], -1) / (1 + a)


def written_distance(x, y, k):
    """d_κ from outside the stereographic formulas: 2‖x − y‖ (κ = 0), the arcosh form (κ < 0), the
    great-circle angle of the lifted points (κ > 0)."""
    if k == 0:
        return 2 * np.linalg.norm(x - y, axis=-1)
    if k < 0:
        c = -k
        x2, y2 = np.sum(x * x, -1), np.sum(y * y, -1)
        return np.arccosh(1 + 2 * c * np.sum((x - y) ** 2, -1) / ((1 - c * x2) * (1 - c * y2))) / np.sqrt(c)
    cos = k * np.sum(lift(x, k) * lift(y, k), -1)
    return np.arccos(np.clip(cos, -1, 1)) / np.sqrt(k)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", (-2.0, -0.5, 0.0, 0.5, 2.0))
def test_distance_mobius_and_maps_over_the_sign_of_kappa(seed, k):
    rng = np.random.default_rng(seed)
    x, y, p = (points(rng, (12, 3), k) for _ in range(3))
    np.testing.assert_allclose(K.distance(x, y, k)[..., 0], written_distance(x, y, k), rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(K.mobius_add(-x, K.mobius_add(x, y, k), k), y, atol=1e-12)  # left cancellation
    pw = K.pairwise_distance(x[None], y[None], k)[0]
    np.testing.assert_allclose(pw, written_distance(x[:, None], y[None], k), rtol=1e-7, atol=1e-7)
    # exp_p / log_p: inverse, and d(p, exp_p v) = λ_p‖v‖ with λ_p = 2/(1 + κ‖p‖²)
    lam = 2 / (1 + k * np.sum(p * p, -1, keepdims=True))
    v = points(rng, (12, 3), k, 1.2) / lam
    e = K.expmap(v, p, k)
    np.testing.assert_allclose(K.logmap(e, p, k), v, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(written_distance(p, e, k), (lam * np.linalg.norm(v, axis=-1, keepdims=True))[..., 0],
                               rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(K.logmap0(K.expmap0(v, k), k), v, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(K.mobius_scalar(np.float64(2.0), x, k), K.mobius_add(x, x, k), atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_flat_kappa_is_vector_algebra(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((2, 7, 3))
    w = rng.uniform(0, 1, 7)
    np.testing.assert_allclose(K.expmap(y, x, 0.0), x + y, rtol=1e-14)
    np.testing.assert_allclose(K.logmap(y, x, 0.0), y - x, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(K.weighted_midpoint(x, w, 0.0), w @ x / w.sum(), rtol=1e-12)
    np.testing.assert_allclose(K.tan_k(x, 0.0), x)


def test_array_kappa_mixes_signs_per_leading_index():
    rng = np.random.default_rng(3)
    k = np.array([-1.0, 0.0, 1.0])[:, None]  # (3, 1): one curvature per row
    x, y = points(rng, (3, 4), 1.0), points(rng, (3, 4), 1.0)
    d = K.distance(x, y, k)[..., 0]
    for i, ki in enumerate(k[:, 0]):
        assert d[i] == pytest.approx(written_distance(x[i], y[i], ki), rel=1e-9)
    xs, ys = points(rng, (3, 5, 4), 1.0), points(rng, (3, 6, 4), 1.0)
    pw = K.pairwise_distance(xs, ys, k[:, None])  # (3, 1, 1) against (3, 5, 6)
    for i, ki in enumerate(k[:, 0]):
        np.testing.assert_allclose(pw[i], written_distance(xs[i][:, None], ys[i][None], ki), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_guards_keep_dtype_and_finiteness(dtype):
    x = np.array([[3.0, 4.0], [0.0, 0.0], [1e30, -1e30]], dtype)
    p = K.project(x, -2.0)
    assert p.dtype == dtype
    assert np.all(np.sqrt(2.0) * np.linalg.norm(p.astype(np.float64), axis=-1) <= 1 - eps(dtype) + 1e-7)
    for out in (K.distance(p, p[::-1], -2.0), K.logmap0(p, -2.0), K.artan_k(np.array([10.0], dtype), -1.0),
                S.pairwise_distance(x[None], x[None], 1.0), L.to_poincare(L.from_poincare(p, 2.0), 2.0)):
        assert np.isfinite(out).all() and out.dtype == dtype
    np.testing.assert_array_equal(K.distance(p, p, -2.0), 0)


def test_lorentz_chart_matches_the_hyperboloid():
    rng = np.random.default_rng(4)
    u, w = rng.standard_normal((2, 1, 5, 3))
    c = 0.7
    a, uh = L.origin_chart(u, c)
    b, wh = L.origin_chart(w, c)
    x, y = L.expmap0(u, c), L.expmap0(w, c)
    mink = -np.outer(x[0, :, 0], y[0, :, 0]) + x[0, :, 1:] @ y[0, :, 1:].T  # ⟨x_i, y_j⟩_L
    np.testing.assert_allclose(L.distance_from_chart(a, uh, b, wh, c)[0],
                               np.arccosh(np.maximum(-c * mink, 1)) / np.sqrt(c), rtol=1e-9, atol=1e-7)
