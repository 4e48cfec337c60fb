"""κ-stereographic model against Poincaré (κ = −c), Euclidean (κ = 0) and the sphere (κ > 0);
sphere identities."""
from __future__ import annotations

import numpy as np
import pytest

from tests._helpers import TOL, ball, dtypes, grid, mobius_add, params
from workbench.errors import ConfigurationError
from workbench.geometry import sphere as S
from workbench.geometry import stereographic as K


@grid
def test_negative_kappa_is_the_poincare_ball(seed, dtype, c):
    """κ = −c against the Poincaré-ball formulas written out here (float64)."""
    rng = np.random.default_rng(seed)
    x, y = ball(rng, (20, 4), c, dtype), ball(rng, (20, 4), c, dtype)
    tol = TOL[dtype] / np.sqrt(c)
    x64, rc = x.astype(np.float64), np.sqrt(c)
    nx = np.linalg.norm(x64, axis=-1, keepdims=True)
    np.testing.assert_allclose(K.mobius_add(x, y, -c), mobius_add(x, y, c), atol=tol)
    dist = 2 / rc * np.arctanh(rc * np.linalg.norm(mobius_add(-x64, y, c), axis=-1))
    np.testing.assert_allclose(K.distance(x, y, -c), dist, rtol=TOL[dtype])
    np.testing.assert_allclose(K.exp_map0(x, -c), np.tanh(rc * nx) * x64 / (rc * nx), atol=tol)
    np.testing.assert_allclose(K.log_map0(x, -c), np.arctanh(rc * nx) * x64 / (rc * nx), atol=tol)
    far = (10 * x / np.sqrt(c)).astype(dtype)
    nf = np.linalg.norm(far.astype(np.float64), axis=-1, keepdims=True)
    np.testing.assert_allclose(K.project(far, -c), far * np.minimum(1.0, (1 - 1e-5) / (rc * nf)), atol=tol)
    assert K.distance(x, y, -c).dtype == dtype


@params
@dtypes
def test_zero_kappa_is_euclidean(seed, dtype):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((2, 10, 3)).astype(dtype)
    np.testing.assert_allclose(K.mobius_add(x, y, 0.0), x + y, rtol=1e-6)
    np.testing.assert_allclose(K.distance(x, y, 0.0), 2 * np.linalg.norm(x - y, axis=-1), rtol=1e-5)
    np.testing.assert_allclose(K.exp_map0(x, 0.0), x, rtol=1e-6)
    np.testing.assert_allclose(K.log_map0(x, 0.0), x, rtol=1e-6)
    np.testing.assert_array_equal(K.project(x * 1e6, 0.0), x * 1e6)
    for k in (-1e-9, 1e-9):  # continuous through κ = 0
        np.testing.assert_allclose(K.distance(0.1 * x, 0.1 * y, k), K.distance(0.1 * x, 0.1 * y, 0.0), rtol=1e-5)


@grid
def test_positive_kappa_is_the_sphere(seed, dtype, c):
    rng = np.random.default_rng(seed)
    x, y = (rng.standard_normal((2, 20, 3)) / np.sqrt(c)).astype(dtype)

    def lift(z):  # inverse stereographic projection onto the sphere of radius 1/√κ
        z = z.astype(np.float64)
        a = c * np.sum(z ** 2, -1, keepdims=True)
        return np.concatenate([(1 - a) / np.sqrt(c), 2 * z], -1) / (1 + a)

    np.testing.assert_allclose(K.distance(x, y, c), S.distance(lift(x), lift(y), c=c), rtol=50 * TOL[dtype],
                               atol=50 * TOL[dtype])
    v = rng.standard_normal((20, 3))
    v = (v / np.linalg.norm(v, axis=-1, keepdims=True) * rng.uniform(0, 1.5, (20, 1)) / np.sqrt(c)).astype(dtype)
    np.testing.assert_allclose(K.log_map0(K.exp_map0(v, c), c), v, rtol=10 * TOL[dtype], atol=10 * TOL[dtype])
    np.testing.assert_allclose(K.mobius_add(-x, K.mobius_add(x, y, c), c), y, rtol=100 * TOL[dtype],
                               atol=100 * TOL[dtype] / np.sqrt(c))


@dtypes
def test_tan_artan_are_inverse(dtype):
    x = np.linspace(-0.9, 0.9, 21).astype(dtype)
    for k in (-5.0, -1.0, 0.0, 1.0, 5.0):  # √|κ|·x within (−π/2, π/2), the chart of artan_κ
        xs = (x / np.sqrt(max(abs(k), 1.0))).astype(dtype)
        np.testing.assert_allclose(K.artan_k(K.tan_k(xs, k), k), xs, rtol=10 * TOL[dtype], atol=10 * TOL[dtype])
    np.testing.assert_allclose(K.tan_k(x, -1.0), np.tanh(x.astype(np.float64)), rtol=1e-6)
    np.testing.assert_allclose(K.tan_k(x, 4.0), np.tan(2 * x.astype(np.float64)) / 2, rtol=1e-5)
    assert K.tan_k(x, 1.0).dtype == dtype
    assert np.isfinite(K.artan_k(np.array([10.0], dtype), -1.0)).all()  # clamped, not NaN


def test_curvature_arrays_and_errors():
    x = np.array([[0.1, 0.2], [0.3, -0.1], [0.2, 0.2]])
    k = np.array([-1.0, 0.0, 2.0])
    d = K.distance(x, x[::-1], k)
    for i in range(3):
        assert d[i] == pytest.approx(float(K.distance(x[i], x[::-1][i], float(k[i]))), rel=1e-12)
    with pytest.raises(ConfigurationError, match=r"\bk\b"):
        K.distance(x, x, float("nan"))


@grid
def test_sphere_identities(seed, dtype, c):
    rng = np.random.default_rng(seed)
    p, y = S.project(rng.standard_normal((2, 20, 4)).astype(dtype), c=c)
    np.testing.assert_allclose(np.linalg.norm(p, axis=-1), 1 / np.sqrt(c), rtol=TOL[dtype])
    v = S.log_map(y, p, c=c)
    np.testing.assert_allclose(np.sum(v * p, -1), 0, atol=20 * TOL[dtype] / c)  # tangent at p
    np.testing.assert_allclose(np.linalg.norm(v, axis=-1), S.distance(p, y, c=c), rtol=10 * TOL[dtype])
    np.testing.assert_allclose(S.exp_map(v, p, c=c), y, atol=50 * TOL[dtype] / np.sqrt(c))
    cosang = np.sum(p.astype(np.float64) * y, -1) * c
    np.testing.assert_allclose(S.distance(p, y, c=c), np.arccos(np.clip(cosang, -1, 1)) / np.sqrt(c),
                               rtol=50 * TOL[dtype], atol=50 * TOL[dtype])
    np.testing.assert_array_equal(S.distance(p, p, c=c), 0)
    np.testing.assert_allclose(S.distance(p, -p, c=c), np.pi / np.sqrt(c), rtol=1e-6)
    np.testing.assert_array_equal(S.project(np.zeros(3, dtype), c=c), [1 / np.sqrt(dtype(c)), 0, 0])
