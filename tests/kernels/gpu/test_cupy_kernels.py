"""The CuPy backend of the GPU kernels (flash, hyperbolic): capabilities everywhere; on a GPU (marked
gpu, skipped cleanly without one) the kernels and the mechanisms on CuPy arrays against NumPy."""
from __future__ import annotations

import numpy as np
import pytest

import workbench
from kernels.capabilities import Inputs, not_supported_reasons
from kernels.flash import FLASH
from kernels.reference.flash import flash_attention


def test_the_registry_serves_flash_on_cupy_within_its_limits():
    assert workbench.registry["flash"].backends["cupy"] is None
    ok = Inputs(dtypes=("float32",), shapes=((2, 8, 64),), libraries=("cupy",))
    assert not_supported_reasons("cupy", ok, (FLASH,)) == []
    f64 = Inputs(dtypes=("float64",), shapes=((2, 8, 64),), libraries=("cupy",))
    assert any("float32" in r for r in not_supported_reasons("cupy", f64, (FLASH,)))
    embeddings = Inputs(dtypes=("float32",), shapes=((2, 8, 1024),), libraries=("cupy",))
    assert not_supported_reasons("cupy", embeddings, (FLASH,)) == []  # wide heads: by chunks
    wide = Inputs(dtypes=("float32",), shapes=((2, 8, 8193),), libraries=("cupy",))
    assert any("up to 8192" in r for r in not_supported_reasons("cupy", wide, (FLASH,)))
    numpy_in = Inputs(dtypes=("float32",), shapes=((2, 8, 64),), libraries=("numpy",))
    assert any("needs CuPy arrays" in r for r in not_supported_reasons("cupy", numpy_in, (FLASH,)))


@pytest.mark.gpu
@pytest.mark.parametrize("B,lq,lk,d", [(2, 300, 517, 64), (1, 1, 1, 1), (3, 77, 33, 128), (1, 200, 333, 384),
                                      (2, 65, 129, 1024)])
def test_the_cuda_kernel_equals_the_reference(cp, B, lq, lk, d):
    from kernels.gpu.flash import flash_cupy

    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in ((B, lq, d), (B, lk, d), (B, lk, d)))
    mask = rng.random((B, lq, lk)) > 0.3
    for kw in ({}, {"mask": mask}, {"causal": True, "causal_offset": lk - lq}):
        out, lse = flash_cupy(cp.asarray(q), cp.asarray(k), cp.asarray(v), None if "mask" not in kw else
                              cp.asarray(mask), None, kw.get("causal", False), kw.get("causal_offset", 0))
        want, want_lse = flash_attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
                                         kw.get("mask"), None, kw.get("causal", False), kw.get("causal_offset", 0))
        np.testing.assert_allclose(cp.asnumpy(out), want, atol=2e-6, rtol=2e-5)
        fin = np.isfinite(want_lse)
        np.testing.assert_allclose(cp.asnumpy(lse)[fin], want_lse[fin], atol=2e-5)


@pytest.mark.gpu
def test_cupy_in_cupy_out_through_the_mechanism(cp):
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((2, 4, 100, 64)).astype(np.float32) for _ in range(3))
    m = workbench.make("flash", causal=True)
    got = m(cp.asarray(q), cp.asarray(k), cp.asarray(v))
    assert isinstance(got, cp.ndarray) and got.shape == (2, 4, 100, 64)
    assert m.backend_for(cp.asarray(q)) == "cupy"
    np.testing.assert_allclose(cp.asnumpy(got), m(q, k, v), atol=2e-6)
    w = m.weights(cp.asarray(q), cp.asarray(k))
    np.testing.assert_allclose(cp.asnumpy(w), m.weights(q, k), atol=2e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("agg", ["einstein", "tangent", "frechet"])
def test_hyperbolic_cupy_in_cupy_out(cp, agg):
    rng = np.random.default_rng(2)
    q, k, v = (0.3 * rng.standard_normal((2, 200, 64)).astype(np.float32) for _ in range(3))
    m = workbench.make("hyperbolic", aggregation=agg)
    got = m(cp.asarray(q), cp.asarray(k), cp.asarray(v))
    assert isinstance(got, cp.ndarray)
    # FlashAttention's rule against float64: at most twice the float32 NumPy path's own error (the tangent
    # mean's float32 path errs by ~1e-3 here, so a fixed tolerance against it would test its rounding)
    want = m(*(x.astype(np.float64) for x in (q, k, v)))
    plain = m(q, k, v)
    assert np.abs(cp.asnumpy(got) - want).max() <= 2 * np.abs(plain - want).max() + 2e-6


@pytest.mark.gpu
@pytest.mark.parametrize("name,params,atol", [("linear", {}, 3e-5), ("linear", {"causal": True}, 3e-5),
                                              ("sliced_wasserstein", {}, 5e-5),
                                              ("sliced_wasserstein", {"num_candidates": 16}, 5e-5)])
def test_cupy_in_cupy_out(cp, name, params, atol):
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((2, 300, 64)).astype(np.float32) for _ in range(3))
    m = workbench.make(name, **params)
    got = m(cp.asarray(q), cp.asarray(k), cp.asarray(v))
    assert isinstance(got, cp.ndarray)
    np.testing.assert_allclose(cp.asnumpy(got), m(q, k, v), atol=atol, rtol=1e-4)


def _unit_rows(rng, shape, norm=1.0):
    x = rng.standard_normal(shape)
    return (norm * x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.mark.gpu
@pytest.mark.parametrize("params", [{}, {"score": "busemann"}, {"top_k": 16}, {"num_heads": 1}])
def test_lorentz_cascade_cupy_in_cupy_out(cp, params):
    """Unit-norm embeddings (the real case): the float32 GPU heads against the float64 Numba mechanism."""
    rng = np.random.default_rng(4)
    q, k, v = (_unit_rows(rng, (2, 300, 64)) for _ in range(3))
    m = workbench.make("lorentz_cascade", **params)
    mask = rng.random((2, 300, 300)) > 0.2
    got = m(cp.asarray(q), cp.asarray(k), cp.asarray(v), mask=cp.asarray(mask))
    assert isinstance(got, cp.ndarray) and got.dtype == cp.float32
    np.testing.assert_allclose(cp.asnumpy(got), m(q, k, v, mask=mask), atol=2e-5, rtol=1e-4)


@pytest.mark.gpu
def test_lorentz_cascade_refuses_values_past_the_float32_reach(cp):
    rng = np.random.default_rng(5)
    q, k, v = (rng.standard_normal((1, 50, 64)).astype(np.float32) for _ in range(3))  # ‖v‖ ≈ 8
    with pytest.raises(workbench.errors.ConfigurationError, match="v: .*float32 GPU heads"):
        workbench.make("lorentz_cascade")(cp.asarray(q), cp.asarray(k), cp.asarray(v))


@pytest.mark.gpu
@pytest.mark.parametrize("params", [{}, {"graph": "dense"}, {"integrator": "expm", "scales": 3},
                                    {"scales": 2, "multiscale": "concat", "laplacian": "unnormalized"}])
def test_diffusion_cupy_in_cupy_out(cp, params):
    """Unit-norm keys, a mask with two allowed-key sets per item and an empty row: the kNN search, heat
    steps and attention on the GPU against the NumPy mechanism (Numba kernels)."""
    rng = np.random.default_rng(6)
    q, k, v = (_unit_rows(rng, (2, 400, 64)) for _ in range(3))
    mask = np.ones((2, 400, 400), bool)
    mask[0, :100, 300:] = False
    mask[1, 5] = False
    m = workbench.make("diffusion", **params)
    got = m(cp.asarray(q), cp.asarray(k), cp.asarray(v), mask=cp.asarray(mask))
    assert isinstance(got, cp.ndarray) and got.dtype == cp.float32
    np.testing.assert_allclose(cp.asnumpy(got), m(q, k, v, mask=mask), atol=3e-5, rtol=1e-4)
    w = m.weights(cp.asarray(q), cp.asarray(k), mask=cp.asarray(mask))
    np.testing.assert_allclose(cp.asnumpy(w), m.weights(q, k, mask=mask), atol=2e-6, rtol=1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("self_loops", [False, True])
def test_knn_on_cupy_arrays(cp, self_loops):
    from kernels.knn import knn

    rng = np.random.default_rng(7)
    x = np.concatenate([rng.standard_normal((3000, 384)), np.repeat(rng.standard_normal((20, 384)), 5, axis=0)])
    x = x.astype(np.float32)
    idx, d2 = knn(cp.asarray(x), 16, self_loops=self_loops)
    assert isinstance(idx, cp.ndarray)
    widx, wd2 = knn(x, 16, self_loops=self_loops, backend="numba")
    np.testing.assert_array_equal(cp.asnumpy(idx), widx)
    np.testing.assert_allclose(cp.asnumpy(d2), wd2, rtol=1e-12, atol=1e-9)


@pytest.mark.gpu
@pytest.mark.parametrize("num_candidates", [None, 8])
def test_sliced_wasserstein_point_clouds_on_cupy(cp, num_candidates):
    """Clouds projected and sorted on the GPU (CuPy in, CuPy out), against the NumPy mechanism."""
    rng = np.random.default_rng(8)
    q = rng.standard_normal((2, 40, 5, 32)).astype(np.float32)
    k = rng.standard_normal((2, 60, 7, 32)).astype(np.float32)
    v = rng.standard_normal((2, 60, 16)).astype(np.float32)
    m = workbench.make("sliced_wasserstein", num_candidates=num_candidates)
    cache = m.cache_keys(cp.asarray(k))
    assert isinstance(cache.sorted_projections, cp.ndarray)
    got = m.attend_cached(cp.asarray(q), cache, cp.asarray(v))
    assert isinstance(got, cp.ndarray)
    np.testing.assert_allclose(cp.asnumpy(got), m.cloud_attention(q, k, v), atol=5e-5, rtol=1e-4)
