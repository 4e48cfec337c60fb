"""Hyperboloid identities over seeds × dtypes × curvatures, against formulas written out here."""
from __future__ import annotations

import numpy as np
import pytest

from tests._helpers import TOL, ball, curvs, dtypes, grid, params
from workbench.errors import ConfigurationError, NumericalError, ShapeError
from workbench.geometry import lorentz as L
from workbench.geometry import poincare as P


def mink(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return -x[..., 0] * y[..., 0] + np.sum(x[..., 1:] * y[..., 1:], -1)


@grid
def test_points_lie_on_the_hyperboloid(seed, dtype, c):
    rng = np.random.default_rng(seed)
    x = L.project(rng.standard_normal((20, 4)).astype(dtype), c=c)
    assert x.dtype == dtype
    np.testing.assert_allclose(mink(x, x), -1 / c, rtol=TOL[dtype], atol=TOL[dtype] * np.max(x[:, 0] ** 2))
    assert np.all(x[:, 0] > 0)
    np.testing.assert_allclose(L.minkowski_dot(x, x), mink(x, x), rtol=1e-5)
    assert L.minkowski_dot(x, x, keepdims=True).shape == (20, 1)
    e = L.exp_map0((rng.standard_normal((20, 3)) / np.sqrt(c)).astype(dtype), c=c)
    np.testing.assert_allclose(mink(e, e), -1 / c, rtol=TOL[dtype], atol=TOL[dtype] * np.max(e[:, 0] ** 2))


@grid
def test_poincare_round_trip_and_distance_agreement(seed, dtype, c):
    rng = np.random.default_rng(seed)
    p, q = ball(rng, (20, 3), c, dtype), ball(rng, (20, 3), c, dtype)
    x, y = L.from_poincare(p, c=c), L.from_poincare(q, c=c)
    assert x.shape == (20, 4) and x.dtype == dtype
    p64 = p.astype(np.float64)
    a = c * np.sum(p64 ** 2, -1, keepdims=True)  # written-out map
    np.testing.assert_allclose(x, np.concatenate([(1 + a) / np.sqrt(c), 2 * p64], -1) / (1 - a),
                               rtol=10 * TOL[dtype], atol=10 * TOL[dtype] / np.sqrt(c))
    np.testing.assert_allclose(L.to_poincare(x, c=c), p, atol=TOL[dtype] / np.sqrt(c))
    d_l = L.distance(x, y, c=c)
    expected = np.arccosh(np.maximum(-c * mink(x, y), 1)) / np.sqrt(c)
    np.testing.assert_allclose(d_l, P.distance(p, q, c=c), rtol=20 * TOL[dtype], atol=20 * TOL[dtype])
    if dtype == np.float64:
        np.testing.assert_allclose(d_l, expected, rtol=1e-7, atol=1e-7)
    np.testing.assert_array_equal(L.distance(x, x, c=c), 0)
    np.testing.assert_array_equal(d_l, L.distance(y, x, c=c))
    pw = L.pairwise_distance(x[None], y[None], c=c)
    np.testing.assert_allclose(pw[0], L.distance(x[:, None], y[None], c=c), rtol=1e-6)


@params
@dtypes
@pytest.mark.parametrize("c", (0.1, 0.5, 2.0, 5.0))
def test_origin_maps_are_inverse_for_every_curvature(seed, dtype, c):
    rng = np.random.default_rng(seed)
    v = (rng.standard_normal((20, 3)) / np.sqrt(c)).astype(dtype)
    x = L.exp_map0(v, c=c)
    np.testing.assert_allclose(L.log_map0(x, c=c), v, rtol=TOL[dtype], atol=TOL[dtype] / np.sqrt(c))
    origin = L.project(np.zeros(4, dtype), c=c)
    np.testing.assert_allclose(origin, [1 / np.sqrt(c), 0, 0, 0], rtol=1e-6)
    # d(o, exp_0(v)) = ‖v‖ and exp_0 agrees with the Poincaré exponential map at the origin
    np.testing.assert_allclose(L.distance(origin, x, c=c), np.linalg.norm(v, axis=-1), rtol=20 * TOL[dtype],
                               atol=TOL[dtype])
    np.testing.assert_allclose(L.to_poincare(x, c=c), P.exp_map(v / 2, c=c), atol=10 * TOL[dtype] / np.sqrt(c))


@grid
def test_centroid(seed, dtype, c):
    rng = np.random.default_rng(seed)
    x = L.from_poincare(ball(rng, (5, 3), c, dtype), c=c)
    np.testing.assert_allclose(L.centroid(x[:, None], c=c), x, rtol=10 * TOL[dtype], atol=10 * TOL[dtype])
    mirror = x.copy()
    mirror[:, 1:] *= -1
    m = L.centroid(np.stack([x, mirror], 1), c=c)
    np.testing.assert_allclose(m, np.broadcast_to([1 / np.sqrt(c), 0, 0, 0], m.shape), atol=10 * TOL[dtype])
    pts = L.from_poincare(ball(rng, (5, 6, 3), c, dtype), c=c)
    w = rng.uniform(0, 1, (5, 6))
    m = L.centroid(pts, w, c=c)
    s = np.sum(w[..., None] * pts.astype(np.float64), 1)
    expected = s / np.sqrt(c * np.abs(mink(s, s)))[:, None]
    np.testing.assert_allclose(m, expected, rtol=20 * TOL[dtype], atol=20 * TOL[dtype])
    np.testing.assert_allclose(mink(m, m), -1 / c, rtol=10 * TOL[dtype])
    np.testing.assert_allclose(L.centroid(pts, np.zeros((5, 6)), c=c)[:, 0], 1 / np.sqrt(c), rtol=1e-6)


@dtypes
@curvs
def test_busemann(dtype, c):
    xi = np.array([1.0, 1.0, 0.0, 0.0], dtype)
    origin = L.project(np.zeros(4, dtype), c=c)
    assert abs(L.busemann(origin, xi, c=c)) < 1e-6
    t = np.linspace(0, 5, 11) / np.sqrt(c)
    along = L.exp_map0(t[:, None] * np.array([1.0, 0, 0], dtype), c=c)  # the geodesic towards ξ
    np.testing.assert_allclose(L.busemann(along, xi, c=c), -t, atol=50 * TOL[dtype] / np.sqrt(c))
    np.testing.assert_allclose(L.busemann(along, 3 * xi, c=c), -t, atol=50 * TOL[dtype] / np.sqrt(c))
    away = L.exp_map0(t[:, None] * np.array([-1.0, 0, 0], dtype), c=c)
    np.testing.assert_allclose(L.busemann(away, xi, c=c), t, rtol=50 * TOL[dtype], atol=50 * TOL[dtype])
    far = L.exp_map0(np.array([[30.0, 0, 0]]) / np.sqrt(c), c=c).astype(np.float64)
    assert np.isfinite(L.busemann(far, xi.astype(np.float64), c=c)).all()
    with pytest.raises(ConfigurationError, match="xi"):
        L.busemann(origin, np.array([1.0, 0.5, 0, 0], dtype), c=c)


@pytest.mark.parametrize("c", (1e-3, 1.0, 1e4))
def test_extremes_finite_or_clear_error(c):
    x = np.array([[0, 0, 0], [1e3, 0, 0], [0, -2e3, 5]], np.float64)
    for f in (lambda: L.project(x, c=c), lambda: L.distance(x, x[::-1], c=c), lambda: L.log_map0(x, c=c),
              lambda: L.to_poincare(x, c=c), lambda: L.centroid(x, c=c), lambda: L.from_poincare(x, c=c)):
        assert np.isfinite(f()).all()
    with pytest.raises(NumericalError, match=r"\bv\b"):
        L.exp_map0(np.array([100 / np.sqrt(c), 0.0], np.float32), c=c)
    with pytest.raises(ConfigurationError, match=r"\bc\b"):
        L.project(x, c=0.0)
    with pytest.raises(ShapeError, match=r"\bx\b"):
        L.project(np.zeros((2, 1)))
