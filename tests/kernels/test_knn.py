"""The one exact-kNN kernel (:func:`kernels.knn.knn`), every backend, against a brute force written here. The
CuPy backend's code (:mod:`kernels.gpu.knn`, array expressions on the array's own module) runs here on
NumPy arrays, with small blocks too; on a GPU it runs on CuPy arrays (tests/kernels/gpu)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels import BackendError
from kernels.gpu import knn as gpu_knn
from kernels.knn import knn


def run(x, k, self_loops, backend):
    """``backend`` "numpy", "numba", or "gpu-scheme" (the CuPy backend's code on NumPy arrays)."""
    if backend == "gpu-scheme":
        return gpu_knn.knn(x, k, self_loops)
    return knn(x, k, self_loops=self_loops, backend=backend)


BACKENDS = ["numpy", "numba", "gpu-scheme"]


def brute_force_knn(x, k, self_loops=False):
    """All pairwise squared distances from the differences, the point itself ranked first (−1) or
    never (∞), a stable argsort (ties to the smaller index)."""
    x = np.asarray(x, np.float64)
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, -1.0 if self_loops else np.inf)
    idx = np.argsort(d2, axis=1, kind="stable")[:, :k]
    return idx, np.maximum(np.take_along_axis(d2, idx, axis=1), 0.0)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 200), d=st.integers(1, 70), k=st.integers(1, 20), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from([np.float32, np.float64]), kind=st.sampled_from(["normal", "clustered", "grid"]),
       self_loops=st.booleans())
def test_knn_equals_brute_force(n, d, k, seed, dtype, kind, self_loops):
    k = min(k, n if self_loops else n - 1)
    rng = np.random.default_rng(seed)
    if kind == "normal":
        x = rng.standard_normal((n, d))
    elif kind == "clustered":  # near points far from the origin: the float32 GEMM estimate cancels
        x = 1000.0 + rng.standard_normal((1, d)) + 1e-3 * rng.standard_normal((n, d))
    else:  # integer grid: many exactly tied distances (ties go to the smaller index)
        x = rng.integers(0, 3, size=(n, d)).astype(float)
    x = x.astype(dtype)
    idx, d2 = brute_force_knn(x, k, self_loops)
    for backend in BACKENDS:
        gi, gd = run(x, k, self_loops, backend)
        np.testing.assert_array_equal(gi, idx, err_msg=backend)
        np.testing.assert_allclose(gd, d2, rtol=1e-12, atol=1e-9, err_msg=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("self_loops", [False, True])
def test_duplicates_and_every_k(backend, self_loops):
    """Duplicated points (distance 0 to another index) and k from 1 to its largest value; with
    ``self_loops`` the point comes before its duplicates."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, (60, 3)).astype(np.float32)
    top = len(x) if self_loops else len(x) - 1
    for k in (1, 2, 5, top):
        idx, d2 = run(x, k, self_loops, backend)
        widx, wd2 = brute_force_knn(x, k, self_loops)
        np.testing.assert_array_equal(idx, widx)
        np.testing.assert_allclose(d2, wd2, atol=1e-12)
        if self_loops:
            np.testing.assert_array_equal(idx[:, 0], np.arange(len(x)))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_block_size_does_not_change_the_result(backend):
    x = np.random.default_rng(2).standard_normal((97, 5)).astype(np.float32)
    want = knn(x, 6, block=128, backend=backend)
    for block in (1, 7, 96):
        got = knn(x, 6, block=block, backend=backend)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("k, self_loops", [(0, False), (5, False), (6, True)])
def test_k_out_of_range_is_refused(k, self_loops):
    with pytest.raises(BackendError, match="k: expected"):
        knn(np.zeros((5, 2)), k, self_loops=self_loops)


@pytest.mark.parametrize("self_loops", [False, True])
def test_gpu_scheme_in_small_blocks(monkeypatch, self_loops):
    """Blocks of 7 rows and candidate chunks of fewer rows (c·d > n), as a million points would get."""
    rng = np.random.default_rng(8)
    x = np.concatenate([rng.standard_normal((150, 60)), np.repeat(rng.standard_normal((10, 60)), 6, axis=0)])
    monkeypatch.setattr(gpu_knn, "BLOCK_ELEMENTS", 7 * len(x))
    for k in (1, 9):
        idx, d2 = gpu_knn.knn(x.astype(np.float32), k, self_loops)
        widx, wd2 = brute_force_knn(x.astype(np.float32), k, self_loops)
        np.testing.assert_array_equal(idx, widx)
        np.testing.assert_allclose(d2, wd2, rtol=1e-12, atol=1e-12)
