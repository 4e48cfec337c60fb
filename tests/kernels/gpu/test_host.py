"""via_host: host copies of CuPy arguments, results back on the GPU; without CuPy arrays it is the call."""
from __future__ import annotations

import numpy as np
import pytest

from kernels.gpu.host import via_host


def test_without_cupy_arrays_it_is_the_call():
    a = np.arange(6.0).reshape(2, 3)
    got = via_host(lambda x, y=None, z=2: (x * z, y), a, z=3)
    assert isinstance(got, tuple) and np.array_equal(got[0], 3 * a) and got[1] is None


@pytest.mark.gpu
def test_cupy_arguments_go_to_the_host_and_results_come_back(cp):
    seen = []

    def fn(x, m=None):
        seen.append((type(x), type(m)))
        return x.sum(-1), np.flatnonzero(m)

    s, idx = via_host(fn, cp.arange(6.0).reshape(2, 3), m=cp.asarray([True, False, True]))
    assert seen == [(np.ndarray, np.ndarray)]
    assert isinstance(s, cp.ndarray) and isinstance(idx, cp.ndarray)
    assert cp.asnumpy(s).tolist() == [3.0, 12.0] and cp.asnumpy(idx).tolist() == [0, 2]
