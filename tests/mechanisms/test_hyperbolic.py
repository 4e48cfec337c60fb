"""The ``hyperbolic`` mechanism: weights, aggregations and limits, against written-out definitions."""
from __future__ import annotations

import math

import numpy as np
import pytest

import workbench
from workbench.errors import ConfigurationError

AGGS = ("einstein", "frechet", "tangent", "mobius")
DTYPES = (np.float32, np.float64)


def pts(rng, shape, c, radius=0.8, dtype=np.float64):
    x = rng.standard_normal(shape)
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    return (x * rng.uniform(0, radius, shape[:-1] + (1,)) / math.sqrt(c)).astype(dtype)


def dist(x, y, c):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    a = 1 + 2 * c * np.sum((x - y) ** 2, -1) / ((1 - c * np.sum(x * x, -1)) * (1 - c * np.sum(y * y, -1)))
    return np.arccosh(np.maximum(a, 1)) / math.sqrt(c)


def test_registered_with_metadata():
    info = workbench.registry["hyperbolic"]
    assert info.family and info.formula and info.time_complexity.startswith("O(")
    assert info.backends["numpy"] is None and info.backends["numba"] is None
    assert set(info.parameters) >= {"c", "temperature", "aggregation", "tol", "max_iter", "backend"}
    for p in info.parameters.values():
        assert len(p.doc or "") >= 16



def mobius_add_ref(x, y, c):
    """``x ⊕_c y`` as Ganea et al. (2018) write it, in float64."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    xy, x2, y2 = x @ y, x @ x, y @ y
    return ((1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y) / (1 + 2 * c * xy + c * c * x2 * y2)


def mobius_scalar_ref(r, x, c):
    """``r ⊗_c x = tanh(r·artanh(√c‖x‖))·x/(√c‖x‖)`` (0 at the origin)."""
    x = np.asarray(x, np.float64)
    n = np.linalg.norm(x)
    if n == 0:
        return x
    return np.tanh(r * np.arctanh(np.sqrt(c) * n)) * x / (np.sqrt(c) * n)


def project_ref(x, c, margin=1e-5):
    """Rescale rows longer than ``(1 − margin)/√c`` to that norm (the ball's documented margin)."""
    x = np.asarray(x, np.float64)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    r = (1 - margin) / math.sqrt(c)
    return np.where(n > r, x * r / np.maximum(n, 1e-300), x)


def einstein_ref(points, w, c):
    """Weighted Einstein midpoint through the Klein model: ``x_K = 2x/(1 + c‖x‖²)``,
    ``γ = 1/√(1 − c‖x_K‖²)``, ``m_K = Σ wγx_K / Σ wγ``, back ``m = m_K/(1 + √(1 − c‖m_K‖²))``."""
    num, den = np.zeros(points.shape[1]), 0.0
    for x, wi in zip(np.asarray(points, np.float64), w):
        xk = 2 * x / (1 + c * (x @ x))
        g = 1 / math.sqrt(1 - c * (xk @ xk))
        num, den = num + wi * g * xk, den + wi * g
    mk = num / den
    return mk / (1 + math.sqrt(1 - c * (mk @ mk)))


def log_ref(y, x, c):
    """``log_x(y) = 2/(√c λ_x) · artanh(√c‖u‖) u/‖u‖`` with ``u = (−x) ⊕ y``, ``λ_x = 2/(1 − c‖x‖²)``;
    ``x = 0`` gives ``log_0(y) = artanh(√c‖y‖) y/(√c‖y‖)``."""
    u = mobius_add_ref(-np.asarray(x, np.float64), y, c)
    n = np.linalg.norm(u)
    lam = 2 / (1 - c * float(np.asarray(x, np.float64) @ np.asarray(x, np.float64)))
    return np.zeros_like(u) if n == 0 else 2 / (math.sqrt(c) * lam) * np.arctanh(math.sqrt(c) * n) * u / n


def exp0_ref(v, c):
    """``exp_0(v) = tanh(√c‖v‖) v/(√c‖v‖)``."""
    n = np.linalg.norm(v)
    return np.zeros_like(v) if n == 0 else np.tanh(math.sqrt(c) * n) * v / (math.sqrt(c) * n)

@pytest.mark.parametrize("backend", ("numpy", "numba"))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", (0.1, 1.0, 5.0))
def test_weights_are_softmax_of_negative_distances(backend, dtype, c):
    rng = np.random.default_rng(0)
    q, k = pts(rng, (2, 6, 3), c, dtype=dtype), pts(rng, (2, 9, 3), c, dtype=dtype)
    m = workbench.make("hyperbolic", c=c, temperature=0.5, backend=backend)
    w = m.weights(q, k)
    d = dist(q[:, :, None], k[:, None], c)
    e = np.exp(-(d - d.min(-1, keepdims=True)) / 0.5)
    np.testing.assert_allclose(w, e / e.sum(-1, keepdims=True), atol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(w.sum(-1), 1, atol=1e-5)
    assert np.array_equal(np.argmax(w, -1), np.argmin(d, -1))  # nearest key gets the largest weight


@pytest.mark.parametrize("aggregation", AGGS)
@pytest.mark.parametrize("backend", ("numpy", "numba"))
@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_temperature_selects_the_nearest_value(aggregation, backend, dtype):
    rng = np.random.default_rng(1)
    c = 2.0
    q, k, v = pts(rng, (2, 5, 4), c, dtype=dtype), pts(rng, (2, 8, 4), c, dtype=dtype), pts(rng, (2, 8, 3), c, dtype=dtype)
    out = workbench.make("hyperbolic", c=c, temperature=1e-6, aggregation=aggregation, backend=backend)(q, k, v)
    nearest = np.argmin(dist(q[:, :, None], k[:, None], c), -1)
    expected = np.take_along_axis(v, nearest[..., None], 1)
    np.testing.assert_allclose(out, expected, atol=1e-5 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("aggregation", AGGS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_one_key_gives_its_projected_value_and_outputs_stay_in_the_ball(aggregation, dtype):
    rng = np.random.default_rng(2)
    c = 0.5
    q = rng.standard_normal((3, 4, 5)).astype(dtype)  # far outside the ball: projected
    k = rng.standard_normal((3, 1, 5)).astype(dtype)
    v = 10 * rng.standard_normal((3, 1, 2)).astype(dtype)
    m = workbench.make("hyperbolic", c=c, aggregation=aggregation)
    out = m(q, k, v)
    expected = np.broadcast_to(project_ref(v, c), out.shape)
    np.testing.assert_allclose(out, expected, rtol=1e-4 if dtype == np.float32 else 1e-9)
    big = m(q, rng.standard_normal((3, 7, 5)).astype(dtype), 10 * rng.standard_normal((3, 7, 2)).astype(dtype))
    assert big.dtype == dtype and np.all(math.sqrt(c) * np.linalg.norm(big.astype(np.float64), axis=-1) < 1)


@pytest.mark.parametrize("aggregation", AGGS)
def test_aggregations_match_their_definitions(aggregation):
    rng = np.random.default_rng(3)
    c = 1.5
    q, k, v = pts(rng, (2, 4, 3), c), pts(rng, (2, 6, 3), c), pts(rng, (2, 6, 2), c)
    m = workbench.make("hyperbolic", c=c, aggregation=aggregation)
    out = m(q, k, v)
    d = dist(q[:, :, None], k[:, None], c)  # weights softmax(−d) at the default temperature 1
    w = np.exp(-(d - d.min(-1, keepdims=True)))
    w /= w.sum(-1, keepdims=True)
    for b in range(2):
        for i in range(4):
            wi = w[b, i]
            # every aggregation's formula written out here (not the library's geometry)
            if aggregation == "einstein":
                exp = einstein_ref(v[b], wi, c)
            elif aggregation == "frechet":
                exp = out[b, i]
                g = sum(wi[j] * log_ref(v[b, j], exp, c) for j in range(6))  # stationarity
                assert np.max(np.abs(g)) < 1e-9
            elif aggregation == "tangent":
                exp = exp0_ref(sum(wi[j] * log_ref(v[b, j], np.zeros(2), c) for j in range(6)), c)
            else:  # the Möbius sum of the scaled values
                exp = np.zeros(2)
                for j in range(6):
                    exp = mobius_add_ref(exp, mobius_scalar_ref(wi[j], v[b, j], c), c)
            np.testing.assert_allclose(out[b, i], exp, atol=1e-10)


@pytest.mark.parametrize("aggregation", AGGS)
@pytest.mark.parametrize("backend", ("numpy", "numba"))
def test_masks_and_permutation(aggregation, backend):
    rng = np.random.default_rng(4)
    c = 1.0
    q, k, v = pts(rng, (2, 5, 3), c), pts(rng, (2, 7, 3), c), pts(rng, (2, 7, 4), c)
    mask = rng.random((2, 5, 7)) < 0.6
    mask[1, 3] = False
    mask[0, 1] = [True] + [False] * 6
    m = workbench.make("hyperbolic", c=c, aggregation=aggregation, backend=backend)
    out, w = m(q, k, v, mask=mask), m.weights(q, k, mask=mask)
    assert np.all(out[1, 3] == 0) and np.all(w[1, 3] == 0)
    assert np.all(w[~mask] == 0)
    np.testing.assert_allclose(out[0, 1], v[0, 0], atol=1e-12)  # one allowed key
    if aggregation != "mobius":  # the Möbius sum depends on the key order (gyro-non-commutative)
        perm = rng.permutation(7)
        np.testing.assert_allclose(m(q, k[:, perm], v[:, perm], mask=mask[:, :, perm]), out, atol=1e-10)


def test_numba_and_numpy_agree_on_near_boundary_inputs():
    rng = np.random.default_rng(5)
    q, k, v = pts(rng, (2, 40, 6), 3.0, 0.99999, np.float32), pts(rng, (2, 50, 6), 3.0, 0.99999, np.float32), \
        pts(rng, (2, 50, 5), 3.0, 0.99999, np.float32)
    a = workbench.make("hyperbolic", c=3.0, backend="numpy")(q, k, v)
    b = workbench.make("hyperbolic", c=3.0, backend="numba")(q, k, v)
    exact = workbench.make("hyperbolic", c=3.0, backend="numpy")(*(x.astype(np.float64) for x in (q, k, v)))
    assert np.max(np.abs(b - exact)) <= 2 * np.max(np.abs(a - exact)) + 1e-5


def test_bad_parameters():
    for bad in ({"c": 0.0}, {"c": -1.0}, {"temperature": 0.0}, {"aggregation": "mean"}, {"max_iter": -1}):
        with pytest.raises(ConfigurationError) as e:
            workbench.make("hyperbolic", **bad)
        assert next(iter(bad)) in str(e.value)


def test_points_outside_the_ball_are_noted_and_the_ball_normalisation_removes_the_note():
    from workbench import compare
    from workbench.data import load_demo, normalise

    x = load_demo("clusters", n=60).x  # raw Gaussian clusters: norms ~ 20, far outside the unit ball
    mech = workbench.make("hyperbolic", backend="numpy")
    (note,) = mech.input_notes(x, x)
    assert "outside the Poincaré ball" in note and "normalisation 'ball'" in note
    w = mech.weights(x, x)
    assert np.mean(np.diag(w)) > 0.99  # what the note warns about: each query attends to itself
    xb = normalise(x, "ball")
    assert mech.input_notes(xb, xb) == [] and workbench.make("hyperbolic", c=4.0).input_notes(xb, xb) != []
    res = compare.run("hyperbolic", {"backend": "numpy"}, x, x, x)
    assert any("outside the Poincaré ball" in n for n in res.notes)
    wb = mech.weights(xb, xb)
    assert np.mean(np.diag(wb)) < 0.5  # inside the ball the map is no longer the identity
    assert workbench.make("scaled_dot_product").input_notes(x, x) == []
