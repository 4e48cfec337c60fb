"""Losses against their definitions written out here (float64 loops) and gradients against
central finite differences."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.errors import ConfigurationError, NumericalError, ShapeError
from workbench.training import InfoNCELoss, LocalContrastiveLoss, SpectralRegularization


# -- independent definitions --------------------------------------------------------------------------------------
def cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / (max(math.sqrt(sum(x * x for x in a)), 1e-8)
                                               * max(math.sqrt(sum(y * y for y in b)), 1e-8))


def infonce_def(a, p, negs, tau):
    s = [cos(a, p) / tau] + [cos(a, n) / tau for n in negs]
    return math.log(sum(math.exp(x) for x in s)) - s[0]


def dist(a, b):
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))


def triplet_terms(a, p, negs, margin):
    return [max(0.0, dist(a, p) - dist(a, n) + margin) for n in negs]


def spectral_def(rows, w):
    n, D = len(rows), len(rows[0])
    var = []
    for d in range(D):
        mu = sum(r[d] for r in rows) / n
        var.append(sum((r[d] - mu) ** 2 for r in rows) / n)
    m = sum(var) / D
    return w * sum((v - m) ** 2 for v in var) / D


def fd_grad(f, x, h=1e-6):
    """Central finite differences of a scalar function of an array."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        g[idx] = (f(xp) - f(xm)) / (2 * h)
    return g


@pytest.fixture
def data(rng):
    return rng.standard_normal(6), rng.standard_normal(6), rng.standard_normal((5, 6))


# -- InfoNCE ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tau", [0.05, 0.5, 2.0])
def test_infonce_equals_definition(data, tau):
    a, p, n = data
    assert InfoNCELoss(tau).compute(a, p, n) == pytest.approx(infonce_def(a, p, n, tau), rel=1e-12)


def test_infonce_is_nonnegative_and_gradient_has_dim(data):
    a, p, n = data
    loss, g = InfoNCELoss(0.1).compute_with_gradients(a, p, n)
    assert loss >= 0 and g.shape == (6,)


def test_infonce_gradients_match_finite_differences(data):
    a, p, n = data
    L = InfoNCELoss(0.3)
    loss, ga = L.compute_with_gradients(a, p, n)
    assert loss == L.compute(a, p, n)
    g = L.gradients(a, p, n)
    np.testing.assert_allclose(ga, g.anchor)
    np.testing.assert_allclose(g.anchor, fd_grad(lambda x: infonce_def(x, p, n, 0.3), a), atol=1e-7)
    np.testing.assert_allclose(g.positive, fd_grad(lambda x: infonce_def(a, x, n, 0.3), p), atol=1e-7)
    np.testing.assert_allclose(g.negatives, fd_grad(lambda x: infonce_def(a, p, x, 0.3), n), atol=1e-7)


def test_infonce_batched_reductions(rng):
    a, p, n = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.standard_normal((3, 2, 4))
    per = [infonce_def(a[i], p[i], n[i], 0.2) for i in range(3)]
    np.testing.assert_allclose(InfoNCELoss(0.2, reduction="none").compute(a, p, n), per, rtol=1e-12)
    assert InfoNCELoss(0.2, reduction="sum").compute(a, p, n) == pytest.approx(sum(per), rel=1e-12)
    loss, g = InfoNCELoss(0.2).compute_with_gradients(a, p, n)
    assert loss == pytest.approx(sum(per) / 3, rel=1e-12)
    mean_def = lambda x: sum(infonce_def(x[i], p[i], n[i], 0.2) for i in range(3)) / 3  # noqa: E731
    np.testing.assert_allclose(g, fd_grad(mean_def, a), atol=1e-7)


def test_infonce_prefers_aligned_positive(rng):
    a = rng.standard_normal(8)
    n = rng.standard_normal((10, 8))
    L = InfoNCELoss(0.1)
    assert L.compute(a, a * 3.0, n) < L.compute(a, -a, n)


def test_infonce_extreme_temperature_is_finite(data):
    a, p, n = data
    loss, g = InfoNCELoss(1e-4).compute_with_gradients(a, p, n)
    assert np.isfinite(loss) and np.isfinite(g).all()


def test_infonce_zero_anchor_uses_floored_norm_consistently(data):
    _, p, n = data
    a = np.zeros(6)
    L = InfoNCELoss(0.5)
    loss, g = L.compute_with_gradients(a, p, n)
    assert loss == pytest.approx(math.log(6.0))  # every similarity is 0
    # the exact gradient of the floored function: finite differences far below the floor
    np.testing.assert_allclose(g, fd_grad(lambda x: infonce_def(x, p, n, 0.5), a, h=1e-12), rtol=1e-4)


def test_infonce_no_negatives_is_zero(rng):
    loss, g = InfoNCELoss(0.1).compute_with_gradients(rng.standard_normal(3), rng.standard_normal(3), np.zeros((0, 3)))
    assert loss == 0.0 and not g.any()


def test_infonce_keeps_float32(data):
    a, p, n = (x.astype(np.float32) for x in data)
    _, g = InfoNCELoss(0.1).compute_with_gradients(a, p, n)
    assert g.dtype == np.float32


# -- local contrastive --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_local_contrastive_equals_definition(data, reduction):
    a, p, n = data
    terms = triplet_terms(a, p, n, 2.0)
    got = LocalContrastiveLoss(2.0, reduction=reduction).compute(a, p, n)
    want = {"mean": sum(terms) / len(terms), "sum": sum(terms), "none": terms}[reduction]
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_local_contrastive_gradient_agrees_with_loss(data, reduction):
    """Upstream divides the mean's gradient by the active count only: ours is the loss's gradient."""
    a, p, n = data
    n = n.copy()
    n[[0, 3]] += 20.0  # far away: inactive terms
    L = LocalContrastiveLoss(2.0, reduction=reduction)
    red = (lambda t: sum(t) / len(t)) if reduction == "mean" else sum
    loss, ga = L.compute_with_gradients(a, p, n)
    assert loss == L.compute(a, p, n)
    assert 0 < sum(t > 0 for t in triplet_terms(a, p, n, 2.0)) < len(n)  # some terms are inactive
    g = L.gradients(a, p, n)
    np.testing.assert_allclose(ga, fd_grad(lambda x: red(triplet_terms(x, p, n, 2.0)), a), atol=1e-7)
    np.testing.assert_allclose(g.positive, fd_grad(lambda x: red(triplet_terms(a, x, n, 2.0)), p), atol=1e-7)
    np.testing.assert_allclose(g.negatives, fd_grad(lambda x: red(triplet_terms(a, p, x, 2.0)), n), atol=1e-7)


def test_local_contrastive_none_gives_jacobian(data):
    a, p, n = data
    loss, jac = LocalContrastiveLoss(2.0, reduction="none").compute_with_gradients(a, p, n)
    assert loss.shape == (5,) and jac.shape == (5, 6)
    for j in range(5):
        np.testing.assert_allclose(jac[j], fd_grad(lambda x: triplet_terms(x, p, n, 2.0)[j], a), atol=1e-7)


def test_local_contrastive_nonnegative_and_zero_when_separated(rng):
    a = rng.standard_normal(4)
    far = a + 100.0
    assert LocalContrastiveLoss(1.0).compute(a, a + 0.01, far[None]) == 0.0
    assert LocalContrastiveLoss(1.0).compute(a, far, a[None] + 0.01) > 0


def test_local_contrastive_zero_distance_subgradient(rng):
    a = rng.standard_normal(4)
    n = a[None] + rng.standard_normal((2, 4))
    loss, g = LocalContrastiveLoss(5.0).compute_with_gradients(a, a, n)  # ‖a − p‖ = 0
    assert np.isfinite(g).all() and loss > 0


# -- spectral -----------------------------------------------------------------------------------------------------
def test_spectral_equals_definition_and_gradient(data):
    a, p, n = data
    rows = [a, p] + list(n)
    S = SpectralRegularization(0.7)
    loss, ga = S.compute_with_gradients(a, p, n)
    assert loss == pytest.approx(spectral_def(rows, 0.7), rel=1e-12) and loss >= 0
    np.testing.assert_allclose(ga, fd_grad(lambda x: spectral_def([x, p] + list(n), 0.7), a), atol=1e-8)
    x = np.stack(rows)
    lx, gx = S.of_embeddings(x, with_gradient=True)
    assert lx == pytest.approx(loss)
    np.testing.assert_allclose(gx, fd_grad(lambda y: spectral_def(list(y), 0.7), x), atol=1e-8)
    g = S.gradients(a, p, n)
    np.testing.assert_allclose(g.negatives, gx[2:], atol=1e-15)


def test_spectral_zero_for_equal_variances():
    x = np.array([[1.0, -1.0], [-1.0, 1.0]])  # both columns have variance 1
    assert SpectralRegularization(1.0).of_embeddings(x) == 0.0


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.05, 5.0))
def test_gradients_match_finite_differences_random(seed, tau):
    r = np.random.default_rng(seed)
    a, p, n = r.standard_normal(3) * r.uniform(0.1, 10), r.standard_normal(3), r.standard_normal((3, 3))
    g = InfoNCELoss(tau).gradients(a, p, n)
    np.testing.assert_allclose(g.anchor, fd_grad(lambda x: infonce_def(x, p, n, tau), a),
                               atol=1e-6 * (1 + np.abs(g.anchor).max()))


# -- bad inputs ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tau", [0.0, -0.1, float("nan"), float("inf")])
def test_bad_temperature(tau):
    with pytest.raises(ConfigurationError, match="temperature"):
        InfoNCELoss(tau)


def test_bad_configuration():
    with pytest.raises(ConfigurationError, match="margin"):
        LocalContrastiveLoss(-1.0)
    with pytest.raises(ConfigurationError, match="reduction"):
        InfoNCELoss(0.1, reduction="avg")
    with pytest.raises(ConfigurationError, match="weight"):
        SpectralRegularization(-0.1)
    L = InfoNCELoss(0.1)
    with pytest.raises(ConfigurationError, match="temperature"):
        L.temperature = -1.0


def test_bad_inputs(data):
    a, p, n = data
    L = InfoNCELoss(0.1)
    with pytest.raises(ShapeError, match="positive"):
        L.compute(a, p[:3], n)
    with pytest.raises(ShapeError, match="negatives"):
        L.compute(a, p, n[:, :3])
    with pytest.raises(ShapeError, match="negatives"):
        L.compute(a, p, n[0])
    bad = a.copy()
    bad[2] = np.nan
    with pytest.raises(NumericalError, match="anchor"):
        L.compute(bad, p, n)
    with pytest.raises(ShapeError, match="anchor"):
        L.compute(np.zeros((0, 6)), np.zeros((0, 6)), np.zeros((0, 2, 6)))
    with pytest.raises(ShapeError, match="x"):
        SpectralRegularization().of_embeddings(np.zeros(4))


def test_infonce_gradients_drive_adam(rng):
    """The seed system's integration test: Adam on InfoNCE gradients lowers the loss."""
    from workbench.training import Adam

    a, p, n = rng.standard_normal(16), rng.standard_normal(16), rng.standard_normal((8, 16))
    L, opt = InfoNCELoss(0.1), Adam(lr=0.05)
    start = L.compute(a, p, n)
    for _ in range(50):
        _, g = L.compute_with_gradients(a, p, n)
        opt.step(a, g)
    assert L.compute(a, p, n) < 0.1 * start


def test_overflow_is_an_error_not_nan():
    huge = np.full(4, 1e200)
    with pytest.raises(NumericalError, match="finite"):
        LocalContrastiveLoss(1.0).compute(huge, -huge, huge[None])
    with pytest.raises(NumericalError, match="finite"):
        InfoNCELoss(0.1).compute(huge, huge, huge[None])
