"""Optimisers against the textbook updates written out here, against ``torch.optim`` on the same
problem (skipped without torch), and the seed system's behavioural tests."""
from __future__ import annotations

import math

import numpy as np
import pytest

from workbench.errors import ConfigurationError, NumericalError, ShapeError
from workbench.training import SGD, Adam, AdamW


def quad_grad(x, A, b):
    """Gradient of ``½xᵀAx − bᵀx`` (a fixed convex problem every optimiser runs on)."""
    return A @ x - b


@pytest.fixture
def problem(rng):
    M = rng.standard_normal((5, 5))
    return M @ M.T / 5 + np.eye(5), rng.standard_normal(5), rng.standard_normal(5)


# -- textbook updates, scalar loops, independent of the library ---------------------------------------------------
def sgd_ref(x0, A, b, steps, lr, mu=0.0, wd=0.0, nesterov=False):
    x, v = list(x0), [0.0] * len(x0)
    for _ in range(steps):
        g = quad_grad(np.array(x), A, b)
        for i in range(len(x)):
            gi = g[i] + wd * x[i]
            v[i] = mu * v[i] + gi
            x[i] -= lr * (gi + mu * v[i] if nesterov else v[i])
    return np.array(x)


def adam_ref(x0, A, b, steps, lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, decoupled=False):
    x, m, v = list(x0), [0.0] * len(x0), [0.0] * len(x0)
    for t in range(1, steps + 1):
        g = quad_grad(np.array(x), A, b)
        for i in range(len(x)):
            gi = g[i]
            if decoupled:
                x[i] *= 1 - lr * wd
            else:
                gi += wd * x[i]
            m[i] = b1 * m[i] + (1 - b1) * gi
            v[i] = b2 * v[i] + (1 - b2) * gi * gi
            mhat, vhat = m[i] / (1 - b1 ** t), v[i] / (1 - b2 ** t)
            x[i] -= lr * mhat / (math.sqrt(vhat) + eps)
    return np.array(x)


def run(opt, x0, A, b, steps):
    x = np.array(x0, dtype=np.float64)
    for _ in range(steps):
        opt.step(x, quad_grad(x, A, b))
    return x


CASES = [
    ("sgd", dict(lr=0.1), dict(lr=0.1)),
    ("sgd", dict(lr=0.05, momentum=0.9), dict(lr=0.05, mu=0.9)),
    ("sgd", dict(lr=0.05, momentum=0.9, nesterov=True), dict(lr=0.05, mu=0.9, nesterov=True)),
    ("sgd", dict(lr=0.05, momentum=0.5, weight_decay=0.1), dict(lr=0.05, mu=0.5, wd=0.1)),
    ("adam", dict(lr=0.05), dict(lr=0.05)),
    ("adam", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
     dict(lr=0.05, b1=0.8, b2=0.99, eps=1e-6, wd=0.1)),
    ("adamw", dict(lr=0.05), dict(lr=0.05, wd=0.01, decoupled=True)),
    ("adamw", dict(lr=0.05, weight_decay=0.3), dict(lr=0.05, wd=0.3, decoupled=True)),
]
MAKE = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


@pytest.mark.parametrize("kind, kwargs, ref", CASES)
def test_matches_textbook_update(problem, kind, kwargs, ref):
    A, b, x0 = problem
    got = run(MAKE[kind](**kwargs), x0, A, b, 25)
    want = (sgd_ref if kind == "sgd" else adam_ref)(x0, A, b, 25, **ref)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("kind, kwargs, ref", CASES)
def test_matches_torch_optim(problem, kind, kwargs, ref):
    torch = pytest.importorskip("torch")
    A, b, x0 = problem
    p = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind]
    topt = cls([p], **kwargs)
    At, bt = torch.tensor(A), torch.tensor(b)
    for _ in range(25):
        topt.zero_grad()
        loss = 0.5 * p @ At @ p - bt @ p
        loss.backward()
        topt.step()
    got = run(MAKE[kind](**kwargs), x0, A, b, 25)
    np.testing.assert_allclose(got, p.detach().numpy(), rtol=1e-11, atol=1e-12)


def test_several_parameters_keep_separate_state(rng):
    x1, x2 = rng.standard_normal(3), rng.standard_normal((2, 2))
    g1, g2 = rng.standard_normal(3), rng.standard_normal((2, 2))
    both = Adam(lr=0.1)
    a1, a2 = x1.copy(), x2.copy()
    s1, s2 = Adam(lr=0.1), Adam(lr=0.1)
    b1, b2 = x1.copy(), x2.copy()
    for k in range(3):
        both.step([a1, a2], [g1 * (k + 1), g2 - k])
        s1.step(b1, g1 * (k + 1))
        s2.step(b2, g2 - k)
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert len(both.state) == 2 and both.state[1]["m"].shape == (2, 2)


def test_float32_parameters_stay_float32(rng):
    x = rng.standard_normal(4).astype(np.float32)
    AdamW(lr=0.01).step(x, np.ones(4))
    assert x.dtype == np.float32


# -- the seed system's behavioural tests --------------------------------------------------------------------------
def test_sgd_decreases_params():
    x = np.ones(4)
    SGD(lr=0.1).step(x, np.ones(4))
    np.testing.assert_allclose(x, 0.9)


def test_sgd_momentum_crosses_zero_within_five_steps():
    x = np.array([1.0])
    opt = SGD(lr=0.1, momentum=0.9)
    for _ in range(5):
        opt.step(x, np.array([1.0]))
    assert x[0] < 0  # 1 − 0.1·(1 + 1.9 + 2.71 + 3.439 + 4.0951) < 0


def test_adam_lowers_param_under_constant_gradient():
    x = np.array([0.5])
    opt = Adam(lr=0.001)
    for _ in range(100):
        opt.step(x, np.array([0.1]))
    assert x[0] < 0.5
    assert x[0] == pytest.approx(0.5 - 100 * 0.001, abs=1e-6)  # m̂/√v̂ = 1 for a constant gradient


def test_adamw_shrinks_with_zero_gradient():
    x = np.array([1.0])
    opt = AdamW(lr=0.1)
    for _ in range(3):
        opt.step(x, np.array([0.0]))
    assert x[0] == pytest.approx((1 - 0.1 * 0.01) ** 3)


def test_learning_rate_and_reset():
    opt = SGD(lr=0.1, momentum=0.9)
    assert opt.learning_rate() == 0.1
    opt.set_learning_rate(0.2)
    assert opt.lr == 0.2
    x = np.zeros(2)
    opt.step(x, np.ones(2))
    assert opt.state[0]["velocity"].any()
    opt.reset()
    assert opt.state == [] and opt.steps == 0
    opt.step(np.zeros(3), np.ones(3))  # other shapes are fine after a reset


# -- bad inputs ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lr", [0.0, -1e-3, float("nan")])
@pytest.mark.parametrize("cls", [SGD, Adam, AdamW])
def test_bad_learning_rate(cls, lr):
    with pytest.raises(ConfigurationError, match="lr"):
        cls(lr=lr)
    with pytest.raises(ConfigurationError, match="lr"):
        cls(lr=0.1).set_learning_rate(lr)


def test_bad_hyperparameters():
    with pytest.raises(ConfigurationError, match="momentum"):
        SGD(lr=0.1, momentum=1.5)
    with pytest.raises(ConfigurationError, match="nesterov"):
        SGD(lr=0.1, nesterov=True)
    with pytest.raises(ConfigurationError, match="weight_decay"):
        AdamW(weight_decay=-0.1)
    with pytest.raises(ConfigurationError, match="betas"):
        Adam(betas=(0.9, 1.0))
    with pytest.raises(ConfigurationError, match="eps"):
        Adam(eps=0.0)


def test_bad_step_arguments():
    opt = Adam()
    with pytest.raises(ShapeError, match="grads"):
        opt.step(np.zeros(3), np.zeros(4))
    with pytest.raises(ConfigurationError, match="params"):
        opt.step([1.0, 2.0], [0.1, 0.2])
    with pytest.raises(ConfigurationError, match="params"):
        opt.step(np.zeros(3, dtype=np.int64), np.zeros(3))
    with pytest.raises(NumericalError, match="grads"):
        opt.step(np.zeros(3), np.array([0.0, np.nan, 0.0]))
    opt.step(np.zeros(3), np.zeros(3))
    with pytest.raises(ShapeError, match="reset"):
        opt.step(np.zeros(4), np.zeros(4))


def test_overflowing_step_is_an_error_and_leaves_params():
    x = np.array([1.0, 2.0])
    with pytest.raises(NumericalError, match="finite"):
        SGD(lr=1e300).step(x, np.array([1e300, 1.0]))
    np.testing.assert_array_equal(x, [1.0, 2.0])
