"""Poincaré-ball identities over seeds × dtypes × curvatures, against formulas written out here."""
from __future__ import annotations

import numpy as np
import pytest

from tests._helpers import TOL, ball, dtypes, grid, mobius_add, params
from workbench.errors import ConfigurationError, NumericalError, ShapeError
from workbench.geometry import poincare as P


def dist(x, y, c):
    """d_c(x, y) = 2/√c · artanh(√c‖(−x) ⊕ y‖), the other textbook form."""
    return 2 / np.sqrt(c) * np.arctanh(np.sqrt(c) * np.linalg.norm(mobius_add(-np.asarray(x, np.float64), y, c), axis=-1))


@grid
def test_mobius_add_matches_definition_and_cancels(seed, dtype, c):
    rng = np.random.default_rng(seed)
    x, y = ball(rng, (20, 5), c, dtype), ball(rng, (20, 5), c, dtype)
    s = P.mobius_add(x, y, c=c)
    assert s.dtype == dtype
    scale = 1 / np.sqrt(c)
    np.testing.assert_allclose(s, mobius_add(x, y, c), atol=TOL[dtype] * scale, rtol=TOL[dtype])
    np.testing.assert_allclose(P.mobius_add(-x, s, c=c), y, atol=10 * TOL[dtype] * scale)  # (−x) ⊕ (x ⊕ y) = y
    np.testing.assert_array_equal(P.mobius_add(np.zeros_like(x), x, c=c), x)  # 0 ⊕ x = x
    np.testing.assert_allclose(P.mobius_add(x, np.zeros_like(x), c=c), x, atol=TOL[dtype] * scale)


@grid
def test_exp_log_round_trips(seed, dtype, c):
    rng = np.random.default_rng(seed)
    p, y = ball(rng, (20, 4), c, dtype, 0.7), ball(rng, (20, 4), c, dtype, 0.7)
    tol = 20 * TOL[dtype] / np.sqrt(c)
    np.testing.assert_allclose(P.exp_map(P.log_map(y, p, c=c), p, c=c), y, atol=tol)
    np.testing.assert_allclose(P.exp_map(P.log_map(y, c=c), c=c), y, atol=tol)
    v = (rng.standard_normal((20, 4)) * 0.5 / np.sqrt(c)).astype(dtype)
    lam = 2 / (1 - c * np.sum(np.asarray(p, np.float64) ** 2, -1, keepdims=True))
    np.testing.assert_allclose(P.log_map(P.exp_map(v, p, c=c), p, c=c), v, atol=20 * TOL[dtype] * np.max(np.abs(v)) * lam.max())
    np.testing.assert_allclose(P.log_map(P.exp_map(v, c=c), c=c), v, atol=tol)
    # the standard pair: d(p, exp_p(v)) = λ_p‖v‖ and log_p(y) has length d(p, y)/λ_p
    np.testing.assert_allclose(P.distance(p, P.exp_map(v, p, c=c), c=c),
                               (lam * np.linalg.norm(v, axis=-1, keepdims=True))[..., 0], rtol=50 * TOL[dtype], atol=tol)
    np.testing.assert_allclose(np.linalg.norm(P.log_map(y, p, c=c), axis=-1) * lam[..., 0], dist(p, y, c),
                               rtol=50 * TOL[dtype], atol=tol)


@grid
def test_distance_axioms_and_definition(seed, dtype, c):
    rng = np.random.default_rng(seed)
    x, y, z = (ball(rng, (30, 3), c, dtype) for _ in range(3))
    dxy = P.distance(x, y, c=c)
    assert dxy.dtype == dtype and dxy.shape == (30,)
    np.testing.assert_allclose(dxy, dist(x, y, c), rtol=10 * TOL[dtype], atol=10 * TOL[dtype])
    np.testing.assert_array_equal(dxy, P.distance(y, x, c=c))
    np.testing.assert_array_equal(P.distance(x, x, c=c), 0)
    assert np.all(dxy >= 0)
    assert np.all(P.distance(x, z, c=c) <= dxy + P.distance(y, z, c=c) + 10 * TOL[dtype])
    a = ball(rng, (30, 3), c, dtype, 0.5)  # Möbius translations are isometries
    np.testing.assert_allclose(P.distance(P.mobius_add(a, x, c=c), P.mobius_add(a, y, c=c), c=c), dxy,
                               rtol=100 * TOL[dtype], atol=100 * TOL[dtype])


@params
@dtypes
def test_pairwise_distance_is_the_elementwise_one(seed, dtype):
    rng = np.random.default_rng(seed)
    x, y = ball(rng, (2, 7, 3), 2.0, dtype), ball(rng, (2, 5, 3), 2.0, dtype)
    pw = P.pairwise_distance(x, y, c=2.0)
    assert pw.shape == (2, 7, 5) and pw.dtype == dtype
    np.testing.assert_allclose(pw, P.distance(x[:, :, None], y[:, None], c=2.0), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.diagonal(P.pairwise_distance(x, x, c=2.0), axis1=1, axis2=2), 0)


@grid
def test_mobius_scalar(seed, dtype, c):
    rng = np.random.default_rng(seed)
    x = ball(rng, (10, 3), c, dtype)
    np.testing.assert_allclose(P.mobius_scalar(1.0, x, c=c), x, atol=TOL[dtype] / np.sqrt(c))
    np.testing.assert_allclose(P.mobius_scalar(2.0, x, c=c), P.mobius_add(x, x, c=c), atol=10 * TOL[dtype] / np.sqrt(c))
    np.testing.assert_array_equal(P.mobius_scalar(0.0, x, c=c), 0)
    # d(0, r ⊗ x) = |r| d(0, x)
    np.testing.assert_allclose(P.distance(0 * x, P.mobius_scalar(0.5, x, c=c), c=c),
                               0.5 * P.distance(0 * x, x, c=c), rtol=10 * TOL[dtype], atol=TOL[dtype])


@grid
def test_einstein_midpoint(seed, dtype, c):
    rng = np.random.default_rng(seed)
    x = ball(rng, (6, 1, 4), c, dtype)
    np.testing.assert_allclose(P.einstein_midpoint(x, c=c), x[:, 0], atol=TOL[dtype] / np.sqrt(c))
    pts = ball(rng, (6, 5, 4), c, dtype)
    w = rng.uniform(0, 1, (6, 5))
    # the Klein-model definition, written out in float64
    p64 = pts.astype(np.float64)
    xk = 2 * p64 / (1 + c * np.sum(p64 ** 2, -1, keepdims=True))
    g = 1 / np.sqrt(1 - c * np.sum(xk ** 2, -1, keepdims=True))
    mk = np.sum(w[..., None] * g * xk, 1) / np.sum(w[..., None] * g, 1)
    expected = mk / (1 + np.sqrt(1 - c * np.sum(mk ** 2, -1, keepdims=True)))
    np.testing.assert_allclose(P.einstein_midpoint(pts, w, c=c), expected, atol=10 * TOL[dtype] / np.sqrt(c))
    sym = np.stack([x[:, 0], -x[:, 0]], 1)
    np.testing.assert_allclose(P.einstein_midpoint(sym, c=c), 0, atol=TOL[dtype] / np.sqrt(c))
    np.testing.assert_allclose(P.to_klein(P.from_klein(xk.astype(dtype), c=c), c=c), xk, atol=10 * TOL[dtype] / np.sqrt(c))


@grid
def test_frechet_mean(seed, dtype, c):
    rng = np.random.default_rng(seed)
    x = ball(rng, (4, 3), c, dtype)
    same = np.repeat(x[:, None], 5, 1)
    np.testing.assert_allclose(P.frechet_mean(same, c=c), x, atol=TOL[dtype] / np.sqrt(c))
    sym = np.stack([x, -x], 1)
    np.testing.assert_allclose(P.frechet_mean(sym, c=c), 0, atol=TOL[dtype] / np.sqrt(c))
    pts = ball(rng, (4, 6, 3), c, dtype, 0.95)  # spread out: step 1 alone would overshoot
    w = rng.uniform(0, 1, (4, 6))
    m = P.frechet_mean(pts, w, c=c)
    assert m.dtype == dtype and m.shape == (4, 3)
    g = np.sum(w[..., None] * P.log_map(pts.astype(np.float64), m[:, None].astype(np.float64), c=c), 1)
    lam = 2 / (1 - c * np.sum(m.astype(np.float64) ** 2, -1))
    scale = np.sum(w[..., None] * np.abs(P.log_map(pts.astype(np.float64), m[:, None].astype(np.float64), c=c)), 1)
    assert np.all(lam[:, None] * np.abs(g) <= 50 * TOL[dtype] * (1 + lam[:, None] * scale))
    # it is the minimiser: no nearby point has a smaller weighted sum of squared distances
    f = lambda mm: np.sum(w * dist(mm[:, None], pts, c) ** 2, 1)  # noqa: E731
    for _ in range(5):
        pert = m.astype(np.float64) + rng.standard_normal(m.shape) * 1e-2 / np.sqrt(c)
        assert np.all(f(m.astype(np.float64)) <= f(pert) + 1e-6 * (1 + f(pert)))


def test_frechet_mean_zero_weights_and_errors():
    x = np.array([[0.1, 0.2], [0.3, -0.1]])
    np.testing.assert_array_equal(P.frechet_mean(x, np.zeros(2)), 0)
    np.testing.assert_array_equal(P.einstein_midpoint(x, np.zeros(2)), 0)
    with pytest.raises(ConfigurationError, match="weights"):
        P.frechet_mean(x, np.array([1.0, -1.0]))
    with pytest.raises(ShapeError, match="weights"):
        P.frechet_mean(x, np.ones(3))
    with pytest.raises(ShapeError, match="points"):
        P.frechet_mean(np.zeros((0, 2)))
    with pytest.raises(ConfigurationError, match="max_iter"):
        P.frechet_mean(x, max_iter=-1)


@dtypes
@pytest.mark.parametrize("c", (0.1, 1.0, 5.0, 1e4))
def test_boundary_outside_zero_and_huge_curvature_stay_finite(dtype, c):
    r = 1 / np.sqrt(c)
    x = np.array([[r, 0, 0], [2 * r, 0, 0], [0, -1e6, 0], [0, 0, 0], [1e30, 1e30, 0]], dtype)
    y = np.array([[-r, 0, 0], [0, r, 0], [r, 0, 0], [0, 0, 0], [-1e30, 0, 1e30]], dtype)
    p = P.project(x, c=c)
    assert np.all(np.sqrt(c) * np.linalg.norm(p.astype(np.float64), axis=-1) <= 1 - P.eps(dtype) + 1e-7)
    outs = [P.mobius_add(x, y, c=c), P.distance(x, y, c=c), P.exp_map(x, y, c=c), P.log_map(x, y, c=c),
            P.exp_map(x, c=c), P.log_map(x, c=c), P.conformal_factor(x, c=c), P.mobius_scalar(3.0, x, c=c),
            P.pairwise_distance(x, y, c=c), P.einstein_midpoint(x, c=c), P.frechet_mean(x, c=c, max_iter=20),
            P.to_klein(x, c=c), P.from_klein(x, c=c)]
    for o in outs:
        assert o.dtype == dtype and np.all(np.isfinite(o))
    assert P.distance(x[3], y[3], c=c) == 0
    np.testing.assert_array_equal(P.exp_map(np.zeros(3, dtype), c=c), 0)
    np.testing.assert_array_equal(P.log_map(np.zeros(3, dtype), c=c), 0)


def test_eps_by_dtype():
    assert P.eps(np.float32) == 1e-5
    assert 1e-16 < P.eps(np.float64) <= 1e-5
    x = np.array([3.0, 4.0])  # float32 and float64 project to the same point
    np.testing.assert_allclose(P.project(x.astype(np.float32), c=2.0), P.project(x, c=2.0), rtol=1e-7)


@pytest.mark.parametrize("c", (0, -1.0, float("nan"), float("inf"), "a"))
def test_bad_curvature(c):
    with pytest.raises(ConfigurationError, match=r"\bc\b"):
        P.distance([0.1], [0.2], c=c)


def test_bad_inputs_name_the_argument():
    with pytest.raises(NumericalError, match=r"\by\b"):
        P.mobius_add([0.1, 0.2], [np.nan, 0.0])
    with pytest.raises(ShapeError, match=r"\bx\b"):
        P.project(np.float64(1.0))
    with pytest.raises(ShapeError, match=r"\bx\b"):
        P.project(np.zeros((3, 0)))
    with pytest.raises(ShapeError, match=r"\bx\b"):
        P.project(np.array(["a"]))


def test_array_curvature_broadcasts_over_leading_dims():
    rng = np.random.default_rng(0)
    c = np.array([0.5, 2.0, 7.0])
    x, y = ball(rng, (3, 4), 7.0, np.float64), ball(rng, (3, 4), 7.0, np.float64)
    d = P.distance(x, y, c=c)
    for i in range(3):
        assert d[i] == pytest.approx(float(P.distance(x[i], y[i], c=c[i])), rel=1e-12)


# -- exp_map from a base point travels the whole length (the closed form along a diameter) -----------

def _on_diameter(s, u, c):
    """The point at signed hyperbolic distance ``s`` from the origin along the unit vector ``u``."""
    return np.tanh(np.sqrt(c) * s / 2) / np.sqrt(c) * u


@pytest.mark.parametrize("c", (0.5, 1.0, 2.0))
@pytest.mark.parametrize("start, length", [(6.0, -13.0), (12.0, -24.0), (-11.0, 20.0), (3.0, 5.0), (0.0, 11.0)])
def test_exp_map_along_a_diameter_matches_the_closed_form(c, start, length):
    """Along a geodesic through the origin distances add: exp_p(v) with v along the diameter and
    Riemannian length |L| = λ_p‖v‖ lands at signed distance s_p + L. (It used to stop at 12.2/√c
    from p whatever L: the intermediate point was projected before the Möbius addition.)"""
    u = np.array([0.6, 0.0, -0.8])
    p = _on_diameter(start / np.sqrt(c), u, c)  # distances in units of 1/√c stay representable
    lam = 2 / (1 - c * p @ p)
    v = np.sign(length) * (abs(length) / np.sqrt(c)) / lam * u
    y = P.exp_map(v, p, c=c)
    want = _on_diameter((start + length) / np.sqrt(c), u, c)
    # the limit of float64 itself: the intermediate point tanh(|L|/2)/√c lies 2e^{-|L|} from the
    # boundary, known to 2^-53, so the endpoint's distance is known to about 2^-53·e^{|L|}
    tol = 4 * 2.0 ** -53 * np.exp(abs(length)) + 1e-10
    np.testing.assert_allclose(y, want, rtol=0, atol=tol)
    assert float(P.distance(p, y, c=c)) == pytest.approx(abs(length) / np.sqrt(c), abs=tol / np.sqrt(c))
    np.testing.assert_allclose(P.log_map(y, p, c=c), v, rtol=tol, atol=1e-12)


def test_exp_map_inward_step_longer_than_the_margin_reach():
    """The issue's case: p at distance 6, an inward tangent of Riemannian length 13."""
    rng = np.random.default_rng(0)
    u = rng.standard_normal(5)
    u /= np.linalg.norm(u)
    p = np.tanh(3.0) * u
    lam = 2 / (1 - p @ p)
    side = rng.standard_normal(5)
    side -= (side @ u) * u  # orthogonal to the diameter through p
    w = -u + 0.01 * side / np.linalg.norm(side)  # inward, a little off the diameter (ends ~8 from 0)
    w /= np.linalg.norm(w)
    v = 13.0 / lam * w
    y = P.exp_map(v, p)
    assert float(P.distance(p, y)) == pytest.approx(13.0, rel=1e-9)
    np.testing.assert_allclose(P.log_map(y, p), v, rtol=1e-7, atol=1e-12)


# -- exp_map at large Riemannian lengths: p at distance 6, an inward tangent, lengths up to 30 -----------

#: How far from the origin the ball's float64 margin reaches (in units of 1/√c): 2·artanh(1 − eps).
REACH = 2 * np.arctanh(1 - 1e-5)


@pytest.mark.parametrize("c", (0.5, 1.0, 2.0))
@pytest.mark.parametrize("norm_v", (0.1, 1.0, 3.0, 6.0, 10.0, 15.0))
def test_exp_map_at_the_origin_matches_the_closed_form(c, norm_v):
    """exp_0(v) = tanh(√c‖v‖)·u/√c and d(0, exp_0 v) = λ_0‖v‖ = 2‖v‖ (the conformal factor at the
    origin is 2); beyond the margin's reach the result is that point projected onto the margin."""
    u = np.array([0.0, 0.8, 0.6])
    v = norm_v / np.sqrt(c) * u
    y = P.exp_map(v, c=c)
    if 2 * norm_v < REACH:
        # the point tanh(s)/√c lies 2e^{-2s} from the boundary, known to 2^-53: d is known to ~2^-53·e^{2s}
        tol = 4 * 2.0 ** -53 * np.exp(2 * norm_v) + 1e-12
        np.testing.assert_allclose(y, np.tanh(norm_v) / np.sqrt(c) * u, rtol=1e-14, atol=1e-15)
        assert float(P.distance(np.zeros(3), y, c=c)) == pytest.approx(2 * norm_v / np.sqrt(c), abs=tol / np.sqrt(c))
        np.testing.assert_allclose(P.log_map(y, c=c), v, rtol=tol, atol=1e-15)
    else:
        np.testing.assert_allclose(y, (1 - P.eps(np.float64)) / np.sqrt(c) * u, rtol=1e-13, atol=1e-15)
        assert float(P.distance(np.zeros(3), y, c=c)) == pytest.approx(REACH / np.sqrt(c), rel=1e-9)


@pytest.mark.parametrize("c", (0.5, 1.0, 2.0))
@pytest.mark.parametrize("length", (0.5, 3.0, 6.0, 9.0, 13.0, 16.0, 18.0, 20.0, 25.0, 30.0))
def test_exp_map_inward_from_distance_6_at_lengths_up_to_30(c, length):
    """p at distance 6/√c from the origin on the unit vector u; v = −(L/√c)/λ_p·u points inward with
    Riemannian length λ_p‖v‖ = L/√c. The geodesic is the diameter, so exp_p(v) lies at signed
    distance (6 − L)/√c along u: the closed form tanh(√c·s/2)/√c·u, with d(p, exp_p v) = L/√c and
    log_p(exp_p v) = v, wherever the float64 ball (reach 2·artanh(1 − 1e-5) ≈ 12.2 units) holds that
    point; farther out (L > 6 + 12.2) the result is the closed-form point projected onto the margin."""
    u = np.array([0.6, 0.0, -0.8])
    p = np.tanh(3.0) / np.sqrt(c) * u
    lam = 2 / (1 - c * p @ p)
    v = -(length / np.sqrt(c)) / lam * u
    y = P.exp_map(v, p, c=c)
    end = 6.0 - length  # signed distance of the endpoint from the origin along u (units of 1/√c)
    if abs(end) < REACH:
        tol = 4 * 2.0 ** -53 * np.exp(length) + 1e-10  # the intermediate point lies 2e^{-L} from the boundary
        np.testing.assert_allclose(y, np.tanh(end / 2) / np.sqrt(c) * u, rtol=0, atol=tol / np.sqrt(c))
        assert float(P.distance(p, y, c=c)) == pytest.approx(length / np.sqrt(c), abs=tol / np.sqrt(c))
        np.testing.assert_allclose(P.log_map(y, p, c=c), v, rtol=tol, atol=1e-15)
    else:
        np.testing.assert_allclose(y, -(1 - P.eps(np.float64)) / np.sqrt(c) * u, rtol=1e-13, atol=1e-15)
        assert float(P.distance(p, y, c=c)) == pytest.approx((6.0 + REACH) / np.sqrt(c), rel=1e-9)


@pytest.mark.parametrize("seed", (0, 1))
@pytest.mark.parametrize("theta, length", [(0.01, 1.0), (0.01, 5.0), (0.01, 10.0), (0.01, 13.0), (0.01, 16.0),
                                           (0.3, 1.0), (0.3, 5.0), (0.3, 8.0)])
def test_exp_log_round_trip_inward_off_the_diameter(seed, theta, length):
    """Inward tangents at angle θ to the diameter from p at distance 6: the right triangle (origin O,
    foot F of the geodesic, p) gives sinh d(O,F) = sinh 6·sin θ and tanh d(p,F) = tanh 6·cos θ, and
    the endpoint Y satisfies cosh d(O,Y) = cosh d(O,F)·cosh(L − d(p,F)) (hyperbolic Pythagoras).
    For these (θ, L) Y lies within the margin's reach, so d(p, exp_p v) = λ_p‖v‖ = L and
    log_p(exp_p v) = v hold to float64 precision."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(4)
    u /= np.linalg.norm(u)
    side = rng.standard_normal(4)
    side -= (side @ u) * u
    side /= np.linalg.norm(side)
    p = np.tanh(3.0) * u
    lam = 2 / (1 - p @ p)
    v = length / lam * (-np.cos(theta) * u + np.sin(theta) * side)
    y = P.exp_map(v, p)
    foot, along = np.arcsinh(np.sinh(6.0) * np.sin(theta)), np.arctanh(np.tanh(6.0) * np.cos(theta))
    end = np.arccosh(np.cosh(foot) * np.cosh(length - along))
    assert end < REACH
    assert float(P.distance(np.zeros(4), y)) == pytest.approx(end, rel=1e-8)
    assert float(P.distance(p, y)) == pytest.approx(length, rel=1e-8)
    np.testing.assert_allclose(P.log_map(y, p), v, rtol=1e-7, atol=1e-12)
