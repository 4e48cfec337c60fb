"""Lorentz cascade heads with the GPU body's Lorentz-distance and Busemann scores (``scores.cuh``), through
OpenCL on the CPU (PoCL), against the float64 reference: points near the origin and far from it (the
log-domain branch), masks with an empty row, L = 1, d = 1, dv = 128 (129 value columns), both bodies,
a sharp temperature, equal queries and keys (distance 0), and values past the float32 reach refused by name."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.capabilities import BackendError
from kernels.reference.lorentz import SCORES
from tests.kernels.gpu.checks import check_cascade

pytestmark = pytest.mark.opencl


@pytest.fixture(scope="module")
def run(opencl):
    from kernels.gpu.lorentz import cascade_opencl

    return cascade_opencl


@pytest.mark.parametrize("score", ["distance", "busemann"])
@pytest.mark.parametrize("spread", [1e-4, 0.25, 30.0])  # at the origin, unit-norm-like, far (ln X >= 30)
def test_random_points_and_masks(run, rng, score, spread):
    check_cascade(run, rng, 2, 37, 29, 16, 8, spread, score, temperature=0.7)
    check_cascade(run, rng, 2, 37, 29, 16, 8, spread, score, temperature=0.7, with_mask=True)


@pytest.mark.parametrize("score", ["distance", "busemann"])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1, 1), (1, 3, 1, 1, 1), (2, 33, 17, 64, 64), (1, 40, 20, 128, 128)])
def test_edge_shapes(run, rng, score, shape):
    check_cascade(run, rng, *shape, 0.2, score)


@pytest.mark.parametrize("score", ["distance", "busemann"])
def test_rows_body_and_sharp_temperature(run, rng, score):
    check_cascade(run, rng, 2, 33, 17, 8, 8, 0.5, score, kernel="rows", with_mask=True)
    check_cascade(run, rng, 1, 20, 20, 4, 4, 0.5, score, curvatures=(1.0,), temperature=0.01)


@pytest.mark.parametrize("score", ["distance", "busemann"])
def test_values_at_the_reach(run, rng, score):
    from kernels.gpu.lorentz import MAX_REACH

    check_cascade(run, rng, 2, 30, 40, 16, 16, 0.5, score, curvatures=(0.1, 2.0), vnorm=0.999 * MAX_REACH / 2 ** 0.5)


def test_equal_queries_and_keys(run, rng):
    from kernels.reference.lorentz import cascade_attention

    x = 0.3 * rng.standard_normal((1, 10, 8)).astype(np.float32)
    got = run(x, x, x, np.array([1.0]), 0.05, "distance", None, None)
    want = cascade_attention(*(a.astype(np.float64) for a in (x, x, x)), np.array([1.0]), 0.05, "distance", 0, None)
    assert (np.abs(got - want) <= 3e-5 * want[..., :1]).all()


def test_values_past_the_float32_reach_are_refused_by_name(run, rng):
    from kernels.gpu.lorentz import MAX_REACH

    q = rng.standard_normal((1, 4, 3)).astype(np.float32)
    v = q / np.linalg.norm(q, axis=-1, keepdims=True)
    run(q, q, 0.99 * MAX_REACH * v, np.array([1.0]), 1.0, "distance", None, None)  # within reach: served
    with pytest.raises(BackendError, match="^v: .*float32 GPU heads"):
        run(q, q, 0.99 * MAX_REACH * v, np.array([1.0, 1.1]), 1.0, "distance", None, None)


def test_distances_across_the_log_domain_switch(run, rng):
    """Keys at distances 28…34 from a query at the origin: the body switches to ``arcosh(1 + X) = ln 2X`` at
    ``ln X = 30`` (distance ≈ 30.7), and the weights on both sides must agree with the reference."""
    from kernels.reference.lorentz import cascade_attention

    q = np.zeros((1, 1, 8), np.float32)
    k = rng.standard_normal((1, 60, 8))
    k = (k / np.linalg.norm(k, axis=-1, keepdims=True) * np.linspace(28, 34, 60)[None, :, None]).astype(np.float32)
    v = (0.5 * rng.standard_normal((1, 60, 4))).astype(np.float32)
    got = run(q, k, v, np.array([1.0]), 1.0, "distance", None, None)
    want = cascade_attention(*(a.astype(np.float64) for a in (q, k, v)), np.array([1.0]), 1.0, "distance", 0, None)
    assert (np.abs(got - want) <= 3e-5 * want[..., :1]).all()


@settings(max_examples=15, deadline=None)
@given(B=st.integers(1, 2), lq=st.integers(1, 40), lk=st.integers(1, 40), d=st.sampled_from([1, 16]),
       dv=st.sampled_from([1, 8]), spread=st.sampled_from([1e-3, 0.3, 20.0]), score=st.sampled_from(SCORES),
       masked=st.booleans(), kernel=st.sampled_from(["rows", "tiled"]), seed=st.integers(0, 2**31 - 1))
def test_any_shape_equals_the_reference(opencl, B, lq, lk, d, dv, spread, score, masked, kernel, seed):
    from kernels.gpu.lorentz import cascade_opencl

    check_cascade(cascade_opencl, np.random.default_rng(seed), B, lq, lk, d, dv, spread, score, with_mask=masked,
                  kernel=kernel, temperature=0.5)


@pytest.mark.parametrize("score", ["distance", "busemann"])
def test_embedding_width_heads_take_the_chunked_body(run, rng, score):
    """384 head dimensions and 257 value columns (two value blocks): the chunked "tiled" body."""
    check_cascade(run, rng, 1, 30, 45, 384, 256, 0.05, score, curvatures=(0.5, 2.0), with_mask=True)
