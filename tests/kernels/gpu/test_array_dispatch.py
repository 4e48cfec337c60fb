"""The hyperbolic launcher's preparation and finish (the reference's own functions), and the Lorentz
heads' inputs, keep a duck array of another library what it is: every step dispatches through NumPy's array-function protocol, which is
what keeps CuPy arrays on the GPU (``kernels.gpu.hyperbolic.hyperbolic_cupy``). Checked with Dask
arrays, which take the same protocol and exist without a GPU."""
from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from kernels.gpu.hyperbolic import _prepare
from kernels.reference import hyperbolic as R


@pytest.mark.parametrize("agg", ["einstein", "tangent"])
@pytest.mark.parametrize("spread", [0.1, 3.0])  # inside the ball; far outside (projected)
def test_preparation_and_finish_stay_in_the_array_library(rng, agg, spread):
    q, k, v = (spread * rng.standard_normal((2, 30, 8)).astype(np.float32) for _ in range(3))
    lazy = _prepare(*(da.from_array(x) for x in (q, k, v)), 1.0, agg)
    assert all(isinstance(p, da.Array) for p in lazy), "a step converted to NumPy (would copy to the host)"
    for got, want in zip(lazy, _prepare(q, k, v, 1.0, agg)):
        np.testing.assert_array_equal(got.compute(), want)
    r = rng.standard_normal((2, 30, lazy[2].shape[-1])) * 0.1
    out = R.FINISH[agg](da.from_array(r), 1.0, np.float32)
    assert isinstance(out, da.Array) and out.dtype == np.float32
    np.testing.assert_array_equal(out.compute(), R.FINISH[agg](r, 1.0, np.float32))


@pytest.mark.parametrize("score", ["distance", "busemann"])
def test_lorentz_head_inputs_stay_in_the_array_library(rng, score):
    from kernels.gpu.lorentz import head_inputs

    q, k, v = (0.3 * rng.standard_normal((2, 30, 8)).astype(np.float32) for _ in range(3))
    lazy = head_inputs(*(da.from_array(x) for x in (q, k, v)), 0.7, score)
    assert all(isinstance(p, da.Array) for p in lazy), "a step converted to NumPy (would copy to the host)"
    for got, want in zip(lazy, head_inputs(q, k, v, 0.7, score)):
        np.testing.assert_array_equal(got.compute(), want)
