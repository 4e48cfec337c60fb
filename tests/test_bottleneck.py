"""KL divergences, the VIB layer and attention compression against their definitions."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

from workbench import bottleneck as IB
from workbench.errors import ConfigurationError, DataError, NumericalError, ShapeError, WorkbenchError


def gauss_logpdf(x, mu, var):
    return -(x - mu) ** 2 / (2 * var) - 0.5 * math.log(2 * math.pi * var)


def kl_1d_by_integration(mu1, var1, mu2, var2):
    """``∫ p log(p/q)`` by adaptive quadrature over ±12 standard deviations of p."""
    def f(x):
        lp = gauss_logpdf(x, mu1, var1)
        return math.exp(lp) * (lp - gauss_logpdf(x, mu2, var2))
    s = math.sqrt(var1)
    return integrate.quad(f, mu1 - 12 * s, mu1 + 12 * s, limit=200, epsabs=1e-12)[0]


# --- Gaussian KL -----------------------------------------------------------------------------------

def test_gaussian_kl_by_numerical_integration(rng):
    mu1, lv1 = rng.standard_normal(4), rng.uniform(-1.5, 1.5, 4)
    mu2, lv2 = rng.standard_normal(4), rng.uniform(-1.5, 1.5, 4)
    to_unit = sum(kl_1d_by_integration(m, math.exp(v), 0.0, 1.0) for m, v in zip(mu1, lv1))
    assert IB.kl_gaussian_unit(mu1, lv1) == pytest.approx(to_unit, rel=1e-8)
    between = sum(kl_1d_by_integration(a, math.exp(b), c, math.exp(d)) for a, b, c, d in zip(mu1, lv1, mu2, lv2))
    assert IB.kl_diagonal_gaussians(mu1, lv1, mu2, lv2) == pytest.approx(between, rel=1e-8)
    np.testing.assert_allclose(IB.kl_diagonal_gaussians(mu1, lv1, np.zeros(4), np.zeros(4)), IB.kl_gaussian_unit(mu1, lv1),
                               rtol=1e-14)


def test_gaussian_kl_is_batched_and_keeps_precision(rng):
    mu, lv = rng.standard_normal((3, 2, 5)), rng.standard_normal((3, 2, 5))
    kl = IB.kl_gaussian_unit(mu, lv)
    assert kl.shape == (3, 2)
    np.testing.assert_allclose(kl, 0.5 * np.sum(np.exp(lv) + mu**2 - 1 - lv, -1), rtol=1e-12)
    tiny = 1e-9  # e^lv − 1 − lv = lv²/2 + …: the naive form returns 0 or noise
    assert IB.kl_gaussian_unit([0.0], [tiny]) == pytest.approx(0.25 * tiny**2, rel=1e-6)
    assert IB.kl_diagonal_gaussians([0.0], [tiny], [0.0], [0.0]) == pytest.approx(0.25 * tiny**2, rel=1e-6)
    assert IB.kl_gaussian_unit(mu.astype(np.float32), lv.astype(np.float32)).dtype == np.float32
    # upstream cases
    assert IB.kl_gaussian_unit(np.zeros(8), np.zeros(8)) == 0
    assert IB.kl_gaussian_unit([1.0, 0.5, -0.5], [0.5, 0.0, -0.5]) > 0
    dmu, dlv = IB.kl_gaussian_unit_grad([1.0, 0.0], [0.0, 0.0])
    np.testing.assert_array_equal(dmu, [1.0, 0.0])
    np.testing.assert_array_equal(dlv, [0.0, 0.0])


def test_gaussian_kl_gradient_by_finite_differences(rng):
    mu, lv = rng.standard_normal(4), rng.standard_normal(4)
    dmu, dlv = IB.kl_gaussian_unit_grad(mu, lv)
    h = 1e-6
    for i in range(4):
        e = np.zeros(4)
        e[i] = h
        assert dmu[i] == pytest.approx((IB.kl_gaussian_unit(mu + e, lv) - IB.kl_gaussian_unit(mu - e, lv)) / (2 * h),
                                       rel=1e-6)
        assert dlv[i] == pytest.approx((IB.kl_gaussian_unit(mu, lv + e) - IB.kl_gaussian_unit(mu, lv - e)) / (2 * h),
                                       rel=1e-6, abs=1e-9)


# --- categorical KL and Jensen–Shannon ------------------------------------------------------------------

def kl_cat_def(p, q):
    total = 0.0
    for a, b in zip(p, q):
        if a > 0:
            total += math.inf if b == 0 else a * math.log(a / b)
    return total


def random_p(rng, n, zeros=0):
    p = rng.random(n) ** 3
    p[rng.permutation(n)[:zeros]] = 0
    return p / p.sum()


def test_categorical_kl_and_js_match_their_definitions(rng):
    for zeros in (0, 1, 2):
        p, q = random_p(rng, 6, zeros), random_p(rng, 6)
        assert IB.kl_categorical(p, q) == pytest.approx(kl_cat_def(p, q), rel=1e-12)
        m = (p + q) / 2
        assert IB.jensen_shannon(p, q) == pytest.approx(0.5 * kl_cat_def(p, m) + 0.5 * kl_cat_def(q, m), rel=1e-12)
    p, q = random_p(rng, 5), random_p(rng, 5, zeros=2)
    assert IB.kl_categorical(p, q) == math.inf  # the true value, not a clamp artefact
    assert math.isfinite(IB.jensen_shannon(p, q))
    assert IB.jensen_shannon([1.0, 0.0], [0.0, 1.0]) == pytest.approx(math.log(2))
    assert IB.kl_categorical([0.5, 0.5], [0.9, 0.1]) > 0 and IB.kl_categorical([0.3, 0.7], [0.3, 0.7]) == 0
    batch = IB.kl_categorical(np.stack([p, q]), p)
    assert batch.shape == (2,) and batch[0] == 0


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 7))
def test_divergence_invariants(seed, n):
    """Appendix A: non-negative, zero iff equal, JS symmetric and at most ln 2."""
    rng = np.random.default_rng(seed)
    p, q = random_p(rng, n, zeros=int(rng.integers(0, n))), random_p(rng, n)
    kl, js = IB.kl_categorical(p, q), IB.jensen_shannon(p, q)
    assert kl >= 0 and 0 <= js <= math.log(2)
    assert js == pytest.approx(IB.jensen_shannon(q, p), abs=1e-15)
    assert IB.kl_categorical(p, p) == 0 and IB.jensen_shannon(p, p) == 0
    if not np.allclose(p, q, atol=1e-9):
        assert kl > 0 and js > 0


def _check(excinfo, cls, arg):
    assert issubclass(excinfo.type, cls) and issubclass(excinfo.type, WorkbenchError)
    assert arg in str(excinfo.value), str(excinfo.value)


@pytest.mark.parametrize("bad, cls", [([0.5, 0.6], DataError), ([1.5, -0.5], DataError), ([0.2, 0.3], DataError),
                                      ([np.nan, 1.0], NumericalError), ([], ShapeError)])
@pytest.mark.parametrize("fn", [IB.kl_categorical, IB.jensen_shannon])
def test_non_probability_vectors_are_rejected(fn, bad, cls):
    with pytest.raises(cls) as e:
        fn(bad, [0.5, 0.5])
    _check(e, cls, "p")
    with pytest.raises(cls) as e:
        fn([0.5, 0.5], bad)
    _check(e, cls, "q")


def test_bad_gaussian_inputs():
    with pytest.raises(NumericalError) as e:
        IB.kl_gaussian_unit([0.0, np.nan], [0.0, 0.0])
    _check(e, NumericalError, "mu")
    with pytest.raises(ShapeError) as e:
        IB.kl_gaussian_unit(np.zeros(3), np.zeros(4))
    _check(e, ShapeError, "logvar")
    with pytest.raises(NumericalError) as e:
        IB.kl_gaussian_unit([0.0], [800.0])  # e^800 overflows: an error, never inf/NaN silently
    _check(e, NumericalError, "logvar")
    with pytest.raises(NumericalError) as e:
        IB.kl_diagonal_gaussians([1.0], [0.0], [0.0], [-800.0])
    _check(e, NumericalError, "logvar2")


# --- sampling, β, the VIB layer ----------------------------------------------------------------------------

def test_reparameterize(rng):
    mu, lv = np.array([1.0, -2.0, 0.5]), np.array([0.0, 1.0, -2.0])
    np.testing.assert_array_equal(IB.reparameterize(mu, lv, np.zeros(3)), mu)  # ε = 0: the mean (upstream)
    eps = rng.standard_normal((200_000, 3))
    z = IB.reparameterize(mu, lv, eps)
    np.testing.assert_allclose(z.mean(0), mu, atol=0.02)
    np.testing.assert_allclose(z.var(0), np.exp(lv), rtol=0.02)


def test_beta_schedules():
    s = IB.beta_schedule
    assert [s(t, 0.5) for t in (0, 10, 10_000)] == [0.5, 0.5, 0.5]
    assert [s(t, 1.0, schedule="linear", warmup_steps=10) for t in (0, 5, 10, 20)] == [0.0, 0.5, 1.0, 1.0]
    cos = [s(t, 1.0, schedule="cosine", warmup_steps=10, beta_start=0.2) for t in (0, 5, 10, 99)]
    np.testing.assert_allclose(cos, [0.2, 0.6, 1.0, 1.0], atol=1e-15)
    assert s(1, 1.0, schedule="cosine", warmup_steps=10) < s(1, 1.0, schedule="linear", warmup_steps=10)
    for kw, arg in (({"step": -1}, "step"), ({"beta": -0.1}, "beta"), ({"schedule": "exp"}, "schedule"),
                    ({"warmup_steps": 0}, "warmup_steps"), ({"beta_start": -1.0}, "beta_start")):
        args = {"step": 1, "beta": 1.0, **kw}
        with pytest.raises(ConfigurationError) as e:
            s(args.pop("step"), args.pop("beta"), **args)
        _check(e, ConfigurationError, arg)


def test_vib_layer_is_seeded_and_consistent(rng):
    x = rng.standard_normal((2, 5, 12)).astype(np.float32)
    a = IB.VariationalBottleneck(12, 4, beta=0.5, seed=3)
    b = IB.VariationalBottleneck(12, 4, beta=0.5, seed=3)
    c = IB.VariationalBottleneck(12, 4, beta=0.5, seed=4)
    for name in IB.VariationalBottleneck.PARAMETERS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert not np.array_equal(getattr(a, name), getattr(c, name))
    assert np.abs(a.W_mu).max() <= 1 / math.sqrt(12)
    o1, o2 = a(x, step=7), b(x, step=7)
    np.testing.assert_array_equal(o1.z, o2.z)  # same seed and step: same noise
    assert not np.array_equal(a(x, step=8).z, o1.z)  # another step: other noise
    assert o1.z.shape == (2, 5, 4) and o1.z.dtype == np.float32 and o1.kl.shape == (2, 5)
    mu, lv = a.encode(x)
    np.testing.assert_allclose(o1.mu, mu, atol=1e-6)
    np.testing.assert_allclose(o1.z, mu + np.exp(0.5 * lv) * o1.noise, atol=1e-5)
    np.testing.assert_allclose(o1.kl, IB.kl_gaussian_unit(mu, lv), rtol=1e-5)
    assert o1.kl_loss == pytest.approx(0.5 * float(np.mean(o1.kl)), rel=1e-5)
    assert np.array_equal(a(x, sample=False).z, a(x, sample=False).mu)
    np.testing.assert_array_equal(a(x, noise=np.zeros((2, 5, 4))).z, o1.mu)


def test_vib_log_variance_is_clipped_for_sample_and_kl():
    layer = IB.VariationalBottleneck(2, 3, min_var=1e-2, dtype=np.float64)
    layer.W_logvar[:] = 0
    layer.b_logvar[:] = [-50.0, 0.0, 50.0]
    out = layer(np.ones((1, 2)))
    np.testing.assert_allclose(out.logvar[0], [math.log(1e-2), 0.0, 20.0])
    np.testing.assert_allclose(out.kl, IB.kl_gaussian_unit(out.mu, out.logvar))


def test_vib_annealing_follows_the_schedule():
    layer = IB.VariationalBottleneck(3, 2, beta=2.0, schedule="linear", warmup_steps=4)
    x = np.ones((1, 3))
    betas = [layer(x, step=t).beta for t in range(6)]
    assert betas == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0]
    assert layer(x, step=2).kl_loss == pytest.approx(1.0 * float(layer(x, step=2).kl[0]), rel=1e-6)


def test_vib_gradients_by_finite_differences(rng):
    """``loss = Σ ⟨grad_z, z⟩ + β·mean KL`` with the noise of the step held fixed."""
    layer = IB.VariationalBottleneck(5, 3, beta=0.7, dtype=np.float64, seed=1)
    layer.b_logvar[0] = -20.0  # one clipped coordinate: zero gradient there
    x = rng.standard_normal((4, 5))
    gz = rng.standard_normal((4, 3))

    def loss():
        o = layer(x, step=2)
        return float(np.sum(gz * o.z)) + o.kl_loss

    grads = layer.gradients(x, gz, step=2)
    h = 1e-6
    for name, arr in layer.parameters().items():
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + h
            up = loss()
            arr[idx] = old - h
            down = loss()
            arr[idx] = old
            num[idx] = (up - down) / (2 * h)
        np.testing.assert_allclose(grads[name], num, rtol=1e-5, atol=1e-7, err_msg=name)
    assert (grads["b_logvar"][0] == 0) and (grads["W_logvar"][:, 0] == 0).all()


def test_vib_trains_towards_the_prior():
    """Gradient descent on β·KL alone drives the posterior to N(0, I): the layer is trainable."""
    layer = IB.VariationalBottleneck(4, 2, beta=1.0, dtype=np.float64, seed=2)
    x = np.random.default_rng(0).standard_normal((32, 4))
    first = layer(x).kl_loss
    for step in range(300):
        g = layer.gradients(x, np.zeros((32, 2)), step=step)
        for name, arr in layer.parameters().items():
            arr -= 0.5 * g[name]
    assert layer(x).kl_loss < 1e-3 * first


def test_vib_errors():
    for kw, arg in (({"input_dim": 0}, "input_dim"), ({"bottleneck_dim": 0}, "bottleneck_dim"),
                    ({"min_var": 0.0}, "min_var"), ({"beta": -1.0}, "beta"), ({"schedule": "step"}, "schedule"),
                    ({"seed": -1}, "seed"), ({"dtype": np.int32}, "dtype")):
        args = {"input_dim": 3, **kw}
        with pytest.raises(ConfigurationError) as e:
            IB.VariationalBottleneck(args.pop("input_dim"), **args)
        _check(e, ConfigurationError, arg)
    layer = IB.VariationalBottleneck(3, 2)
    with pytest.raises(ShapeError) as e:
        layer(np.ones((2, 4)))
    _check(e, ShapeError, "x")
    with pytest.raises(NumericalError) as e:
        layer(np.array([[1.0, np.nan, 0.0]]))
    _check(e, NumericalError, "x")
    with pytest.raises(ShapeError) as e:
        layer(np.ones((2, 3)), noise=np.ones((2, 3)))
    _check(e, ShapeError, "noise")
    with pytest.raises(ShapeError) as e:
        layer.gradients(np.ones((2, 3)), np.ones((2, 3)))
    _check(e, ShapeError, "grad_z")
    with pytest.raises(ConfigurationError) as e:
        layer(np.ones((2, 3)), step=-1)
    _check(e, ConfigurationError, "step")


# --- attention compression ---------------------------------------------------------------------------------

def objective_def(r, w, beta, n_allowed):
    kl_rw = sum(a * math.log(a / b) for a, b in zip(r, w) if a > 0)
    rate = math.log(n_allowed) + sum(a * math.log(a) for a in r if a > 0)
    return kl_rw + beta * rate, rate, kl_rw


@pytest.mark.parametrize("beta", [0.0, 0.3, 1.0, 5.0])
def test_compression_minimises_the_ib_objective(beta, rng):
    w = random_p(rng, 6, zeros=1)
    out = IB.compress_attention(w, beta)
    expected = w ** (1 / (1 + beta))
    expected /= expected.sum()
    np.testing.assert_allclose(out.weights, expected, atol=1e-14)
    obj, rate, dist = objective_def(out.weights, w, beta, 6)
    assert out.objective == pytest.approx(obj, abs=1e-12)
    assert out.rate == pytest.approx(rate, abs=1e-12) and out.distortion == pytest.approx(dist, abs=1e-12)
    assert out.rate_before == pytest.approx(objective_def(w, w, 0, 6)[1], abs=1e-12)
    sup = w > 0
    for _ in range(200):  # no point of the simplex on the support does better
        r = out.weights * np.exp(0.3 * rng.standard_normal(6)) * sup
        r /= r.sum()
        assert objective_def(r, w, beta, 6)[0] >= obj - 1e-12
    assert out.rate <= out.rate_before + 1e-12  # compression never raises the rate


def test_compression_limits_masks_and_batches(rng):
    w = np.array([[0.7, 0.2, 0.1, 0.0], [0.0, 0.0, 0.0, 0.0], [0.5, 0.25, 0.25, 0.0]])
    mask = np.array([True, True, True, False])
    out = IB.compress_attention(w, 1e6, mask=mask)
    np.testing.assert_allclose(out.weights[0], [1 / 3, 1 / 3, 1 / 3, 0], atol=1e-5)  # uniform on the allowed keys
    assert (out.weights[1] == 0).all() and out.rate[1] == 0 and out.distortion[1] == 0  # nothing to attend
    np.testing.assert_allclose(IB.compress_attention(w, 0.0).weights, w, atol=1e-15)  # β = 0 keeps w
    assert out.rate[0] == pytest.approx(0, abs=1e-9)  # uniform over the 3 allowed keys: rate 0
    up = IB.compress_attention([0.7, 0.2, 0.1], 1.0)  # upstream: 3 weights summing to 1, loss >= 0
    assert up.weights.shape == (3,) and up.weights.sum() == pytest.approx(1) and up.objective >= 0
    assert IB.compress_attention(w.astype(np.float32), 0.5).weights.dtype == np.float32


def test_compression_errors():
    for w, cls, arg in (([0.5, 0.6], DataError, "weights"), ([-0.1, 1.1], DataError, "weights"),
                        ([np.nan, 1.0], NumericalError, "weights")):
        with pytest.raises(cls) as e:
            IB.compress_attention(w, 1.0)
        _check(e, cls, arg)
    for beta in (-0.5, float("nan"), "1"):
        with pytest.raises(ConfigurationError) as e:
            IB.compress_attention([0.5, 0.5], beta)
        _check(e, ConfigurationError, "beta")
    with pytest.raises(DataError) as e:
        IB.compress_attention([0.5, 0.5], 1.0, mask=np.array([True, False]))
    _check(e, DataError, "weights")
    with pytest.raises(ShapeError) as e:
        IB.compress_attention([0.5, 0.5], 1.0, mask=np.array([True, False, True]))
    _check(e, ShapeError, "mask")
