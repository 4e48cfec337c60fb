"""Hyperbolic attention with the GPU body's Poincaré score, through OpenCL on the CPU (PoCL), against the
NumPy reference. Rule (FlashAttention's): against float64, the kernel errs at most twice as much as
the float32 reference does, plus float32 rounding; points outside the ball, masks, one key, d = 1."""
from __future__ import annotations

import numpy as np
import pytest

from kernels.reference import hyperbolic as R

pytestmark = pytest.mark.opencl


@pytest.fixture(scope="module")
def hyp(opencl):
    from kernels.gpu.hyperbolic import hyperbolic_opencl

    return hyperbolic_opencl


def _check(hyp, q, k, v, c, t, agg, mask=None):
    got = hyp(q, k, v, c, t, agg, mask)
    f64 = [x.astype(np.float64) for x in (q, k, v)]
    want = R.attention(*f64, c, t, agg, mask)
    plain = R.attention(q, k, v, c, t, agg, mask)  # the float32 reference
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.abs(got - want).max() <= 2 * np.abs(plain - want).max() + 2e-6
    return got


@pytest.mark.parametrize("agg", ["einstein", "tangent"])
@pytest.mark.parametrize("spread", [0.05, 0.3, 3.0])  # inside the ball, near it, far outside (projected)
def test_random_points_and_masks(hyp, rng, agg, spread):
    q, k, v = (spread * rng.standard_normal((2, 45, 16)).astype(np.float32) for _ in range(3))
    _check(hyp, q, k, v, 1.0, 0.7, agg)
    mask = rng.random((2, 45, 45)) > 0.3
    mask[1, 7] = False  # a row with no key: the origin
    got = _check(hyp, q, k, v, 1.0, 0.7, agg, mask)
    assert np.all(got[1, 7] == 0)


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (1, 3, 1, 1), (2, 33, 17, 64), (1, 70, 40, 128)])
def test_edge_shapes_and_curvatures(hyp, rng, shape):
    B, lq, lk, d = shape
    q, k, v = (0.2 * rng.standard_normal((B, L, d)).astype(np.float32) for L in (lq, lk, lk))
    for c in (0.1, 1.0, 4.0):
        _check(hyp, q, k, v, c, 1.0, "einstein")


@pytest.mark.parametrize("agg", ["einstein", "tangent"])
def test_sentence_embeddings_take_the_chunked_body(hyp, agg):
    """The shipped real set (unit-norm 384-d sentence embeddings): 385 value columns (Einstein) and 384
    head dimensions, both past the narrow kernel, read by chunks; c = 1 puts the rows on the ball's edge
    (projected), c = 0.25 well inside."""
    from workbench.data import load_demo

    x = load_demo("scipy_api").x[:110].astype(np.float32)
    q, k = x[None, :40], x[None, 40:]
    mask = np.random.default_rng(3).random((1, 40, 70)) > 0.3
    for c in (0.25, 1.0):
        _check(hyp, q, k, k, c, 0.1, agg)
        _check(hyp, q, k, k, c, 0.1, agg, mask)
