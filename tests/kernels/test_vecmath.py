"""The vectorisable float64 log2 / 2^x rows against NumPy's libm functions, random and adversarial."""
from __future__ import annotations

import numpy as np
import pytest

from kernels.numba._common import MASKED
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
    t = np.concatenate([rng.uniform(-60, 0, 3000), [0.0, -0.5, 0.5 - 1e-16, -1021.5, -1022.0, -1030.0, -5000.0],
                        -np.arange(0, 40, 0.25)]) + shift
    src = np.concatenate([t, [MASKED, MASKED / 2]])  # masked scores give exactly 0
    dst = np.empty_like(src)
    total = exp2_row64(src, shift, dst, np.empty(len(src), np.int64))
    ref = np.exp2(np.maximum(src - shift, -1022.0))
    ref[-2:] = 0.0
    np.testing.assert_allclose(dst, ref, rtol=4e-16, atol=0)
    assert total == pytest.approx(ref.sum(), rel=1e-15)
    assert (dst[-2:] == 0).all()
    per = np.empty_like(src)
    exp2_shifted_row64(src, np.full(len(src), shift), per, np.empty(len(src), np.int64))
    np.testing.assert_array_equal(per, dst)
    exp2_row64(src, shift, src, np.empty(len(src), np.int64))  # in place (src read before written)
    np.testing.assert_array_equal(src, dst)
