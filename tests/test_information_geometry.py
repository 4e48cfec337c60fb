"""Fisher metric of the softmax, natural gradient and Fisher–Rao distance against their definitions."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench import information_geometry as G
from workbench.errors import ConfigurationError, DataError, NumericalError, ShapeError, WorkbenchError


def softmax_def(th):
    m = max(th)
    e = [math.exp(t - m) for t in th]
    return np.array([x / sum(e) for x in e])


def log_partition(th):
    m = max(th)
    return m + math.log(sum(math.exp(t - m) for t in th))


def random_p(rng, shape, spread=1.0):
    th = spread * rng.standard_normal(shape)
    e = np.exp(th - th.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# --- the Fisher metric ------------------------------------------------------------------------------

def test_fisher_is_the_hessian_of_the_log_partition(rng):
    """``F = ∇²A(θ)``, ``A = log Σ exp θ``, by central finite differences in float64."""
    th = rng.standard_normal(5)
    h = 1e-4
    n = len(th)
    hess = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            def a(si, sj):
                t = th.copy()
                t[i] += si * h
                t[j] += sj * h
                return log_partition(t)
            hess[i, j] = (a(1, 1) - a(1, -1) - a(-1, 1) + a(-1, -1)) / (4 * h * h)
    p = softmax_def(th)
    np.testing.assert_allclose(G.fisher_matrix(p), hess, atol=1e-6)
    np.testing.assert_allclose(G.softmax(th), p, atol=1e-15)


def test_fisher_vector_product_matches_the_definition(rng):
    p = random_p(rng, (3, 4, 6))
    v = rng.standard_normal((3, 4, 6))
    fv = G.fisher_vector_product(p, v)
    for idx in np.ndindex(3, 4):
        pi, vi = p[idx], v[idx]
        expected = [sum(((i == j) * pi[i] - pi[i] * pi[j]) * vi[j] for j in range(6)) for i in range(6)]
        np.testing.assert_allclose(fv[idx], expected, atol=1e-15)
    np.testing.assert_allclose(fv.sum(-1), 0, atol=1e-15)  # range: sum-zero vectors
    np.testing.assert_allclose(G.fisher_vector_product(p, np.ones(6)), 0, atol=1e-15)  # F·1 = 0
    f = G.fisher_matrix(p)
    assert (np.linalg.eigvalsh(f) > -1e-15).all()  # PSD
    np.testing.assert_allclose(G.fisher_vector_product(p, v), np.einsum("...ij,...j->...i", f, v), atol=1e-15)
    assert G.fisher_vector_product(p.astype(np.float32), v.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(G.fisher_vector_product(np.full(4, 0.25), [0.1, -0.1, 0.05, -0.05]).sum(), 0,
                               atol=1e-5)  # upstream


# --- natural gradient ---------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 3, 5, 8])
@pytest.mark.parametrize("method", ["exact", "cg"])
def test_natural_gradient_equals_the_pseudo_inverse(n, method, rng):
    """``F⁺ g`` by numpy.linalg.pinv; ``g`` need not be sum-zero (its component along 1 is dropped,
    which is what F⁺ does too since 1 spans the null space)."""
    th = 2 * rng.standard_normal((4, n))
    g = rng.standard_normal((4, n))
    x = G.natural_gradient(th, g, method=method)
    for b in range(4):
        f = G.fisher_matrix(softmax_def(th[b]))
        np.testing.assert_allclose(x[b], np.linalg.pinv(f, rcond=1e-13) @ g[b], rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(f @ x[b], g[b] - g[b].mean(), atol=1e-9)  # F·CG(F, b) = b on sum-zero b
    assert np.allclose(x.sum(-1), 0)


def test_natural_gradient_with_underflowing_probabilities(rng):
    """Some p_i are exactly 0: F's null space grows; the result is still F⁺ g."""
    th = np.array([[0.0, 1.0, -2000.0, 0.5, -3000.0], [3.0, -1e4, 2.0, 1.0, 0.0]])
    g = rng.standard_normal((2, 5))
    for method in ("exact", "cg"):
        x = G.natural_gradient(th, g, method=method)
        for b in range(2):
            p = G.softmax(th[b])
            assert (p == 0).any()
            np.testing.assert_allclose(x[b], np.linalg.pinv(G.fisher_matrix(p), rcond=1e-13) @ g[b], atol=1e-9)


@pytest.mark.parametrize("damping", [1e-3, 0.1, 2.0])
def test_damped_natural_gradient(damping, rng):
    th = rng.standard_normal((3, 6))
    g = rng.standard_normal((3, 6))
    ex = G.natural_gradient(th, g, method="exact", damping=damping)
    cg = G.natural_gradient(th, g, method="cg", damping=damping)
    for b in range(3):
        f = G.fisher_matrix(softmax_def(th[b]))
        ref = np.linalg.solve(f + damping * np.eye(6), g[b] - g[b].mean())
        np.testing.assert_allclose(ex[b], ref, atol=1e-10)
        np.testing.assert_allclose(cg[b], ref, atol=1e-9)
    # λ → 0 recovers F⁺ g
    np.testing.assert_allclose(G.natural_gradient(th, g, damping=1e-9), G.natural_gradient(th, g), rtol=1e-5)


def test_diagonal_approximation(rng):
    th = rng.standard_normal((2, 5))
    g = rng.standard_normal((2, 5))
    x = G.natural_gradient(th, g, method="diagonal", damping=0.01)
    for b in range(2):
        p = softmax_def(th[b])
        h = g[b] - g[b].mean()
        y = h / (p * (1 - p) + 0.01)
        np.testing.assert_allclose(x[b], y - y.mean(), atol=1e-12)
    # equal gradients: the class with the larger Fisher diagonal p(1-p) takes the smaller step (upstream)
    th1 = np.log(np.array([0.5, 0.3, 0.2]))
    gg = np.array([1.0, 1.0, -2.0])
    d = G.natural_gradient(th1, gg, method="diagonal")
    assert abs(d[0] - d[2]) < abs(d[1] - d[2])  # p(1-p): 0.25 > 0.21
    sat = G.natural_gradient([50.0, 0.0, 0.0], [0.1, -0.05, -0.05], method="diagonal")
    assert np.isfinite(sat).all()  # saturated class: eps keeps it finite


def test_natural_step_moves_probabilities_straight_to_the_target(rng):
    """For cross-entropy ``g = p − t``: ``softmax(θ − lr·F⁺g) = p + lr (t − p) + O(lr²)``."""
    th = rng.standard_normal(6)
    p = softmax_def(th)
    t = random_p(rng, 6)
    errs = []
    for lr in (1e-2, 1e-3):
        new = G.natural_gradient_step(th, p - t, lr=lr)
        errs.append(np.abs(softmax_def(new) - (p + lr * (t - p))).max())
    assert errs[1] < errs[0] / 50  # second order
    ordinary = softmax_def(th - 1e-3 * (p - t)) - p  # plain gradient: not towards t
    cosine = ordinary @ (t - p) / np.linalg.norm(ordinary) / np.linalg.norm(t - p)
    assert cosine < 0.999


def test_upstream_cases():
    p = np.array([0.4, 0.3, 0.2, 0.1])
    b = np.array([0.1, -0.05, -0.02, -0.03])
    x = G.natural_gradient(np.log(p), b, method="cg")
    np.testing.assert_allclose(G.fisher_vector_product(p, x), b, atol=1e-10)  # upstream: < 0.1
    th = np.arange(10.0) / 10
    new = G.natural_gradient_step(th, np.linspace(-1, 1, 10), lr=0.1, method="cg")
    assert new.shape == (10,) and not np.allclose(new, th)


def test_conjugate_gradient_on_spd_batches(rng):
    a = rng.standard_normal((3, 7, 7))
    spd = a @ a.transpose(0, 2, 1) + 0.5 * np.eye(7)
    b = rng.standard_normal((3, 7))
    res = G.conjugate_gradient(lambda x: np.einsum("bij,bj->bi", spd, x), b, tol=1e-12)
    np.testing.assert_allclose(res.x, np.linalg.solve(spd, b[..., None])[..., 0], atol=1e-9)
    assert res.converged.all() and (res.residual < 1e-10).all() and (res.iterations <= 14).all()
    zero = G.conjugate_gradient(lambda x: x, np.zeros((2, 3)))
    assert (zero.x == 0).all() and zero.converged.all() and (zero.iterations == 0).all()


def test_cg_that_cannot_converge_says_so(rng):
    th = rng.standard_normal(12) * 4
    with pytest.raises(NumericalError) as e:
        G.natural_gradient(th, rng.standard_normal(12), method="cg", max_iter=1)
    assert "max_iter" in str(e.value)


# --- Fisher–Rao distance ---------------------------------------------------------------------------------

def fr_def(p, q):
    bc = sum(math.sqrt(a * b) for a, b in zip(p, q))
    return 2 * math.acos(min(1.0, max(0.0, bc)))


def test_fisher_rao_matches_the_definition(rng):
    p, q = random_p(rng, (5, 7)), random_p(rng, (5, 7), spread=2)
    d = G.fisher_rao_distance(p, q)
    assert d.shape == (5,)
    for i in range(5):
        assert d[i] == pytest.approx(fr_def(p[i], q[i]), abs=1e-12)
    assert G.fisher_rao_distance([1.0, 0.0], [0.0, 1.0]) == pytest.approx(math.pi)  # disjoint supports
    assert G.fisher_rao_distance([0.5, 0.5], [0.9, 0.1]) > 0  # upstream
    assert G.fisher_rao_distance([0.3, 0.7], [0.3, 0.7]) == 0


def test_fisher_rao_is_accurate_for_nearby_distributions(rng):
    """Locally ``d(p, p + δ) ≈ √(Σ δ_i²/p_i)`` (the Fisher metric); the arccos form loses it."""
    p = random_p(rng, 6)
    delta = rng.standard_normal(6)
    delta -= delta.mean()
    for eps in (1e-4, 1e-7, 1e-10):
        q = p + eps * delta
        local = math.sqrt(sum(x * x / y for x, y in zip(eps * delta, p)))
        assert G.fisher_rao_distance(p, q) == pytest.approx(local, rel=1e-3)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 6), st.floats(0.1, 4))
def test_fisher_rao_is_a_metric(seed, n, spread):
    rng = np.random.default_rng(seed)
    p, q, r = (random_p(rng, n, spread) for _ in range(3))
    d = G.fisher_rao_distance
    assert d(p, q) == pytest.approx(d(q, p), abs=1e-12)
    assert d(p, r) <= d(p, q) + d(q, r) + 1e-12
    assert d(p, p) == 0 and (d(p, q) > 0) == (not np.array_equal(p, q))
    assert 0 <= d(p, q) <= math.pi


# --- errors ---------------------------------------------------------------------------------------------

def _check(excinfo, cls, arg):
    assert issubclass(excinfo.type, cls) and issubclass(excinfo.type, WorkbenchError)
    assert arg in str(excinfo.value), str(excinfo.value)


@pytest.mark.parametrize("bad, cls", [([0.5, 0.6], DataError), ([1.2, -0.2], DataError), ([0.5, np.nan], NumericalError),
                                      ([], ShapeError), (0.5, ShapeError), ("p", ShapeError)])
def test_non_probability_vectors(bad, cls):
    with pytest.raises(cls) as e:
        G.fisher_rao_distance(bad, [0.5, 0.5])
    _check(e, cls, "p")
    with pytest.raises(cls) as e:
        G.fisher_rao_distance([0.5, 0.5], bad)
    _check(e, cls, "q")
    with pytest.raises(cls) as e:
        G.fisher_vector_product(bad, [1.0, 2.0])
    _check(e, cls, "p")


def test_bad_arguments():
    with pytest.raises(ShapeError) as e:
        G.fisher_rao_distance([[0.5, 0.5]] * 2, [[0.2, 0.3, 0.5]])
    _check(e, ShapeError, "q")
    with pytest.raises(NumericalError) as e:
        G.natural_gradient([0.0, np.inf], [1.0, 0.0])
    _check(e, NumericalError, "logits")
    with pytest.raises(NumericalError) as e:
        G.natural_gradient([0.0, 1.0], [np.nan, 0.0])
    _check(e, NumericalError, "grad")
    for kw, arg in (({"method": "newton"}, "method"), ({"damping": -1.0}, "damping"), ({"eps": 0.0}, "eps"),
                    ({"method": "cg", "tol": -1.0}, "tol"), ({"method": "cg", "max_iter": 0}, "max_iter")):
        with pytest.raises(ConfigurationError) as e:
            G.natural_gradient([0.0, 1.0], [1.0, 0.0], **kw)
        _check(e, ConfigurationError, arg)
    with pytest.raises(ConfigurationError) as e:
        G.natural_gradient_step([0.0, 1.0], [1.0, 0.0], lr=-0.1)
    _check(e, ConfigurationError, "lr")
    with pytest.raises(ConfigurationError) as e:
        G.natural_gradient_step([0.0, 1.0], [1.0, 0.0], bogus=1)
    _check(e, ConfigurationError, "bogus")


def test_dtypes_follow_the_inputs(rng):
    th = rng.standard_normal((2, 4))
    for dt in (np.float32, np.float64):
        assert G.natural_gradient(th.astype(dt), th.astype(dt)).dtype == dt
        assert G.natural_gradient_step(th.astype(dt), th.astype(dt)).dtype == dt
        p = random_p(rng, 4).astype(dt)
        assert G.fisher_rao_distance(p, p).dtype == dt
