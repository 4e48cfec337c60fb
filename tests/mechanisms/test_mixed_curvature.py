"""Mixed-curvature attention against its definition written out here (float64 loops)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import workbench
from tests._helpers import assert_matches_per_batch, softmax_allowed
from workbench.errors import ConfigurationError


def pdist(x, y, c):
    nx, ny = float(x @ x), float(y @ y)
    return math.acosh(1 + 2 * c * float((x - y) @ (x - y)) / ((1 - c * nx) * (1 - c * ny))) / math.sqrt(c)


def einstein(points, w, c):
    """Weighted Einstein midpoint through the Klein model, written out."""
    num, den = np.zeros(points.shape[1]), 0.0
    for x, wi in zip(points, w):
        xk = 2 * x / (1 + c * float(x @ x))
        g = 1 / math.sqrt(1 - c * float(xk @ xk))
        num += wi * g * xk
        den += wi * g
    if den == 0:
        return np.zeros(points.shape[1])
    mk = num / den
    return mk / (1 + math.sqrt(1 - c * float(mk @ mk)))


def definition(q, k, v, e, ev, c, alpha, t, allowed):
    """``(Lq, d), (Lk, d), (Lk, dv)`` with every H block inside the ball → ``(Lq, dv), (Lq, Lk)``."""
    outs, ws = [], []
    for i in range(len(q)):
        le = [float(q[i, :e] @ k[j, :e]) / t for j in range(len(k))]
        lh = [-pdist(q[i, e:], k[j, e:], c) / t for j in range(len(k))]
        w = (1 - alpha) * softmax_allowed(le, allowed[i]) + alpha * softmax_allowed(lh, allowed[i])
        outs.append(np.concatenate([w @ v[:, :ev], einstein(v[:, ev:], w, c)]))
        ws.append(w)
    return np.array(outs), np.array(ws)


def data(rng, b=2, lq=6, lk=7, d=6, dv=5, c=1.0):
    """q, k, v whose hyperbolic blocks (the second half) lie well inside the ball."""
    q, k, v = rng.standard_normal((b, lq, d)), rng.standard_normal((b, lk, d)), rng.standard_normal((b, lk, dv))
    for x, start in ((q, d // 2), (k, d // 2), (v, (dv * (d // 2)) // d)):
        x[..., start:] *= 0.25 / math.sqrt(c)
    return q, k, v


@pytest.mark.parametrize("c, alpha, t", [(1.0, 0.5, 1.0), (0.5, 0.2, 0.7), (2.0, 1.0, 2.0), (1.0, 0.0, 1.5)])
def test_matches_definition(c, alpha, t, backend, rng):
    q, k, v = data(rng, c=c)
    mask = rng.random((2, 6, 7)) < 0.7
    mask[1, 2] = False
    mech = workbench.make("mixed_curvature", c=c, mixing_weight=alpha, temperature=t, backend=backend)
    out, w = mech(q, k, v, mask=mask), mech.weights(q, k, mask=mask)
    assert_matches_per_batch(out, w, [definition(q[b], k[b], v[b], 3, 2, c, alpha, t, mask[b]) for b in range(2)], mask)
    assert (out[1, 2] == 0).all() and (w[1, 2] == 0).all()


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-5), (np.float32, 1e-4)])
def test_euclidean_block_reduces_to_scaled_dot_product(dtype, tol, backend, rng):
    """Appendix A: mixing_weight 0 and T = √E give scaled dot-product attention on the E block."""
    E = 4
    q, k, v = (rng.standard_normal(s).astype(dtype) for s in ((2, 9, 10), (2, 11, 10), (2, 11, 3)))
    mask = rng.random((9, 11)) < 0.8
    mech = workbench.make("mixed_curvature", euclidean_dim=E, value_euclidean_dim=3, mixing_weight=0.0,
                          temperature=math.sqrt(E), backend=backend)
    sdpa = workbench.make("scaled_dot_product", backend="numpy")
    expected = sdpa(q[..., :E].astype(np.float64), k[..., :E].astype(np.float64), v.astype(np.float64), mask=mask)
    out = mech(q, k, v, mask=mask)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, expected, atol=tol)
    np.testing.assert_allclose(mech.weights(q, k, mask=mask),
                               sdpa.weights(q[..., :E].astype(np.float64), k[..., :E].astype(np.float64), mask=mask),
                               atol=tol)


def mobius_add(x, y, c):
    xy, x2, y2 = float(x @ y), float(x @ x), float(y @ y)
    return ((1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y) / (1 + 2 * c * xy + c * c * x2 * y2)


def log_map(m, y, c):
    """Standard logarithmic map at m (Ganea et al.), written out."""
    w = mobius_add(-m, y, c)
    n = float(np.linalg.norm(w))
    lam = 2 / (1 - c * float(m @ m))
    return np.zeros_like(w) if n == 0 else 2 / (math.sqrt(c) * lam) * math.atanh(math.sqrt(c) * n) * w / n


def test_frechet_aggregation_is_a_critical_point(backend, rng):
    """The Fréchet output block satisfies Σ_j w_ij log_m(v_j) = 0 (first-order condition)."""
    c = 0.8
    q, k, v = data(rng, d=6, dv=6, c=c)
    mech = workbench.make("mixed_curvature", c=c, aggregation="frechet", backend=backend)
    out, w = mech(q, k, v), mech.weights(q, k)
    einstein_out = workbench.make("mixed_curvature", c=c, backend=backend)(q, k, v)
    np.testing.assert_allclose(out[..., :3], einstein_out[..., :3], atol=1e-12)  # same E block
    for b in range(2):
        for i in range(6):
            m = out[b, i, 3:]
            g = sum(w[b, i, j] * log_map(m, v[b, j, 3:], c) for j in range(7))
            assert np.linalg.norm(g) < 1e-6


def test_backends_agree(rng):
    q, k, v = (rng.standard_normal(s) for s in ((3, 20, 8), (3, 25, 8), (3, 25, 8)))
    a = workbench.make("mixed_curvature", c=0.5, backend="numpy")(q, k, v)
    b = workbench.make("mixed_curvature", c=0.5, backend="numba")(q, k, v)
    np.testing.assert_allclose(a, b, atol=1e-10)
    # The Fréchet mean is iterative: weights that differ in the last bit (summation order) move
    # the stopping point within the convergence tolerance.
    q, k, v = data(rng, b=3, lq=20, lk=25, d=8, dv=8, c=0.5)
    a = workbench.make("mixed_curvature", aggregation="frechet", c=0.5, backend="numpy")(q, k, v)
    b = workbench.make("mixed_curvature", aggregation="frechet", c=0.5, backend="numba")(q, k, v)
    np.testing.assert_allclose(a, b, atol=1e-8)


def test_value_split_follows_the_query_split_fraction(rng):
    """dv ≠ d: v is split at ⌊dv·E/d⌋ (here 6·2/8 = 1)."""
    q, k, v = data(rng, d=8, dv=6)
    mech = workbench.make("mixed_curvature", euclidean_dim=2, mixing_weight=0.3)
    w, out = mech.weights(q, k), mech(q, k, v)
    np.testing.assert_allclose(out[..., :1], w @ v[..., :1], atol=1e-12)


def test_bad_dimensions_name_the_parameter(rng):
    q, k, v = data(rng)
    with pytest.raises(ConfigurationError, match="euclidean_dim"):
        workbench.make("mixed_curvature", euclidean_dim=7)(q, k, v)
    with pytest.raises(ConfigurationError, match="value_euclidean_dim"):
        workbench.make("mixed_curvature", value_euclidean_dim=9)(q, k, v)
    for bad in ({"mixing_weight": 1.5}, {"c": 0.0}, {"temperature": -1.0}, {"aggregation": "mean"}):
        with pytest.raises(ConfigurationError, match=next(iter(bad))):
            workbench.make("mixed_curvature", **bad)
