"""linear_fwd.cu (key statistics, apply, causal prefix) through OpenCL on the CPU against the reference."""
from __future__ import annotations

import numpy as np
import pytest

from kernels.reference.dense import allowed_pattern
from kernels.reference.linear import feature_map, linear_attention, random_features

pytestmark = pytest.mark.opencl


@pytest.fixture(scope="module")
def lin(opencl):
    from kernels.gpu.linear import linear_opencl

    return linear_opencl


def _features(rng, B, L, d, m, kind, spread=1.0):
    w = random_features(m, d, 3)
    x = [spread * rng.standard_normal((B, L, d)).astype(np.float32) for _ in range(2)]
    return feature_map(x[0], w, kind, 1 / np.sqrt(d), True), feature_map(x[1], w, kind, 1 / np.sqrt(d), False)


@pytest.mark.parametrize("kind", ["favor+", "relu", "elu+1"])
@pytest.mark.parametrize("B,L,d,m,dv", [(2, 50, 16, 64, 16), (1, 1, 4, 8, 1), (3, 37, 8, 100, 33), (1, 130, 32, 256, 64)])
def test_equals_the_reference(lin, rng, kind, B, L, d, m, dv):
    qf, kf = _features(rng, B, L, d, m, kind)
    v = rng.standard_normal((B, L, dv)).astype(np.float32)
    for causal in (False, True):
        want = linear_attention(qf.astype(np.float64), kf.astype(np.float64), v.astype(np.float64),
                                allowed_pattern(None, L, L, causal))
        got = lin(qf, kf, v, causal)
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=3e-5, rtol=1e-4)


def test_zero_features_give_zero_rows(lin, rng):
    qf, kf = _features(rng, 1, 20, 8, 16, "relu")
    qf[0, 4] = 0  # a query whose features are all zero: denominator 0
    kf[0, :3] = 0  # the first keys contribute nothing: the causal prefix is empty for rows 0..2
    v = rng.standard_normal((1, 20, 5)).astype(np.float32)
    out = lin(qf, kf, v, True)
    assert np.all(out[0, :3] == 0) and np.all(out[0, 4] == 0)
    assert np.all(lin(qf, kf, v, False)[0, 4] == 0)


def test_different_query_and_key_lengths(lin, rng):
    qf, _ = _features(rng, 2, 11, 8, 32, "favor+")
    _, kf = _features(rng, 2, 29, 8, 32, "favor+")
    v = rng.standard_normal((2, 29, 7)).astype(np.float32)
    np.testing.assert_allclose(lin(qf, kf, v, False), linear_attention(qf, kf, v), atol=3e-5, rtol=1e-4)


@pytest.mark.parametrize("m,dv", [(600, 20), (1024, 17)])
def test_many_features_take_narrower_column_tiles(lin, rng, m, dv):
    """Past 512 features (1,024 threads) the blocks take 8 value columns, so that linear_causal's local
    memory fits CUDA's static 48 KB; value widths not a multiple of the tile."""
    from kernels.gpu.linear import plan

    assert plan(m, dv)["COL_TILE"] == 8 and plan(512, dv)["COL_TILE"] == 16
    qf, kf = _features(rng, 1, 40, 16, m, "favor+")
    v = rng.standard_normal((1, 40, dv)).astype(np.float32)
    for causal in (False, True):
        want = linear_attention(qf.astype(np.float64), kf.astype(np.float64), v.astype(np.float64),
                                allowed_pattern(None, 40, 40, causal))
        np.testing.assert_allclose(lin(qf, kf, v, causal), want, atol=3e-5, rtol=1e-4)


def test_more_features_than_the_kernel_takes_are_refused_by_name(lin, rng):
    from kernels.capabilities import BackendError

    qf = np.ones((1, 2, 1025), np.float32)
    with pytest.raises(BackendError, match="q_feat: .*up to 1024 features"):
        lin(qf, qf, np.ones((1, 2, 3), np.float32))
