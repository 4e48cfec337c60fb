"""csr_step.cu: explicit-Euler heat steps on a CSR Laplacian through OpenCL, against the reference's
Euler scheme (the same step sizes), on kNN-graph Laplacians of every kind, an empty row, one node; and
diffusion attention's whole GPU path (heat steps, then the flash body) against its definition."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from kernels.reference.diffusion import heat, laplacian

pytestmark = pytest.mark.opencl


@pytest.fixture(scope="module")
def euler(opencl):
    from kernels.gpu.diffusion import euler_opencl

    return euler_opencl


def _graph(rng, n, k=5):
    x = rng.standard_normal((n, 3))
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nn = np.argsort(d, axis=1)[:, :k]
    w = sp.csr_matrix((np.exp(-d[np.arange(n)[:, None], nn]).ravel(), (np.repeat(np.arange(n), k), nn.ravel())),
                      shape=(n, n))
    return w.maximum(w.T).tocsr()


@pytest.mark.parametrize("kind", ["unnormalized", "symmetric", "random_walk"])
@pytest.mark.parametrize("cols", [1, 7, 64])
def test_steps_equal_the_reference(euler, rng, kind, cols):
    L = laplacian(_graph(rng, 150), kind)
    x = rng.standard_normal((150, cols)).astype(np.float32)
    for dt, steps in ((0.3, 5), (2.0, 3), (0.0, 5)):
        got = euler(L, x, dt, steps)
        want = heat(L, x, [dt], "euler", steps)[0]
        np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-4)


def test_an_isolated_node_and_a_single_node(euler, rng):
    w = _graph(rng, 40).tolil()
    w[7, :] = 0
    w[:, 7] = 0
    L = laplacian(w.tocsr(), "unnormalized")
    x = rng.standard_normal((40, 4)).astype(np.float32)
    got = euler(L, x, 1.0, 5)
    np.testing.assert_allclose(got[7], x[7], atol=0)  # no edges: nothing diffuses in or out
    np.testing.assert_allclose(got, heat(L, x, [1.0], "euler", 5)[0], atol=2e-5, rtol=1e-4)
    one = sp.csr_matrix((1, 1))
    np.testing.assert_array_equal(euler(one, np.ones((1, 3), np.float32), 1.0, 5), np.ones((1, 3), np.float32))


@pytest.mark.parametrize("integrator", ["euler", "expm"])
@pytest.mark.parametrize("multiscale,times", [("mean", [1.0]), ("mean", [0.5, 2.0, 0.0]), ("concat", [2.0, 1.0])])
def test_diffusion_attention_on_the_gpu_bodies(opencl, rng, integrator, multiscale, times):
    """The whole GPU path (heat steps by the body, then the flash body on the diffused keys) against the
    reference's definition (every query's logits diffused, float64), on unit-norm keys of a kNN graph,
    a dense Laplacian (small key sets) and times given out of order."""
    from kernels.gpu.diffusion import attention
    from kernels.reference.diffusion import attention as reference

    k = rng.standard_normal((120, 16))
    k = (k / np.linalg.norm(k, axis=1, keepdims=True)).astype(np.float32)
    q = rng.standard_normal((50, 16)).astype(np.float32)
    v = rng.standard_normal((120, 8)).astype(np.float32)
    for L in (laplacian(_graph(rng, 120), "random_walk"), laplacian(_graph(rng, 120), "unnormalized").toarray()):
        got = attention("opencl", q, k, v, L, np.array(times), 0.25, 0.5, integrator, 5, multiscale)
        want = reference(q, k, v, L, np.array(times), 0.25, 0.5, integrator, 5, multiscale)
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=3e-5, rtol=1e-4)


def test_the_heat_visits_times_in_order_from_the_previous_one(opencl, rng):
    from kernels.gpu.diffusion import heat as gpu_heat

    L = laplacian(_graph(rng, 80), "symmetric")
    x = rng.standard_normal((80, 5)).astype(np.float32)
    times = np.array([2.0, 0.0, 0.7, 2.0])
    np.testing.assert_allclose(gpu_heat("opencl", L, x, times, "euler", 3), heat(L, x, times, "euler", 3),
                               atol=2e-5, rtol=1e-4)
