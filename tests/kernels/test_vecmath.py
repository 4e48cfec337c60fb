"""The vectorisable log2 / 2^x / exp rows against NumPy's libm functions, random and adversarial."""
from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from kernels.numba._common import MASKED, exp_shifted
from kernels.numba.vecmath import exp2_row64, exp2_shifted_row64, log2_row64


def test_log2_row64_matches_numpy():
    rng = np.random.default_rng(0)
    x = np.concatenate([
        1.0 + rng.random(2000),  # [1, 2)
        np.exp(rng.uniform(0, 700, 2000)),  # far points: up to 1e304
        np.sqrt(2.0) * (1 + np.array([-1e-16, 0.0, 1e-16, -2e-16, 2e-16])),  # the mantissa switch at √2
        2.0 ** np.arange(-1000, 1000, 37),  # exact powers of two, tiny to huge
        [1.0, np.nextafter(1.0, 2.0), np.finfo(np.float64).max, np.finfo(np.float64).tiny],
    ])
    out = np.empty_like(x)
    log2_row64(x, out, np.empty(len(x), np.int64))
    ref = np.log2(x)
    np.testing.assert_allclose(out, ref, rtol=4e-16, atol=4e-16)
    assert (out[np.log2(x) == np.round(np.log2(x))] == ref[np.log2(x) == np.round(np.log2(x))]).all()
    y = x.copy()
    log2_row64(y, y, np.empty(len(x), np.int64))  # in place
    np.testing.assert_array_equal(y, out)


@pytest.mark.parametrize("shift", [0.0, 3.5, -700.0])
def test_exp2_rows_match_numpy(shift):
    rng = np.random.default_rng(1)
    t = np.concatenate([rng.uniform(-60, 0, 3000), [0.0, -0.5, 0.5 - 1e-16, -1021.5, -1022.0],
                        [-1022.3, -1022.5, -1022.7, -1023.0, -1030.0, -5000.0],  # underflow
                        -np.arange(0, 40, 0.25)]) + shift
    src = np.concatenate([t, [MASKED, MASKED / 2]])  # masked scores give exactly 0
    dst = np.empty_like(src)
    total = exp2_row64(src, shift, dst, np.empty(len(src), np.int64))
    ref = np.exp2(src - shift)
    ref[-2:] = 0.0
    normal = np.concatenate([t - shift >= -1022.0, [True, True]])
    np.testing.assert_allclose(dst[normal], ref[normal], rtol=4e-16, atol=0)
    tiny = np.finfo(np.float64).tiny  # below it: subnormal or 0, never more than tiny off
    assert (np.abs(dst[~normal] - ref[~normal]) <= tiny).all()
    assert (dst[np.concatenate([t - shift < -1022.5, [True, True]])] == 0).all()
    assert total == pytest.approx(ref.sum(), rel=1e-15)
    per = np.empty_like(src)
    exp2_shifted_row64(src, np.full(len(src), shift), per, np.empty(len(src), np.int64))
    np.testing.assert_array_equal(per, dst)
    exp2_row64(src, shift, src, np.empty(len(src), np.int64))  # in place (src read before written)
    np.testing.assert_array_equal(src, dst)


@njit
def _exp_shifted32(src, shift):
    dst = np.empty_like(src)
    total = exp_shifted(src, shift, dst, np.empty(len(src), np.int32))
    return dst, total


@pytest.mark.parametrize("shift", [0.0, 3.5, -60.0])
def test_exp_shifted_float32_matches_exp(shift):
    """The float32 polynomial exp: within its argument's rounding where the result is normal, exactly
    0 once ``e^t`` would be below ``2^−126.5``, 0 for masked scores."""
    rng = np.random.default_rng(2)
    t = np.concatenate([rng.uniform(-80, 0, 3000), [0.0, -0.5, -87.0, -87.3],  # normal: e^t ≥ 2^−126
                        [-87.5, -87.68, -87.8, -88.0, -100.0, -3000.0]])  # 2^−126.2 … : underflow
    src = np.concatenate([t + shift, [MASKED, MASKED / 2]]).astype(np.float32)
    dst, total = _exp_shifted32(src, np.float32(shift))
    ref = np.exp(src.astype(np.float64) - shift)
    ref[-2:] = 0.0
    normal = ref >= np.finfo(np.float32).tiny
    normal[-2:] = True
    # polynomial error (< 2e-7) plus the rounding of the float32 argument ``(src − shift)·log2(e)``,
    # which moves ``e^t`` by up to ``|t|·eps`` relative
    arg = np.abs(src.astype(np.float64) - shift)
    rel = np.abs(dst[normal] - ref[normal]) / ref[normal].clip(min=np.finfo(np.float32).tiny)
    assert (rel <= 3e-7 + 1.5 * np.finfo(np.float32).eps * arg[normal]).all(), rel.max()
    assert (np.abs(dst[~normal] - ref[~normal]) <= np.finfo(np.float32).tiny).all()
    assert (dst[ref < 2.0 ** -126.5] == 0).all()
    assert total == pytest.approx(ref.sum(), rel=1e-6)
