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


def _host(cp, x):
    return tuple(_host(cp, y) for y in x) if isinstance(x, tuple) else (cp.asnumpy(x) if isinstance(x, cp.ndarray) else x)


@pytest.fixture()
def embeddings():
    rng = np.random.default_rng(9)
    q, k, v = (_unit_rows(rng, (2, n, 16)) for n in (30, 40, 40))
    mask = rng.random((2, 30, 40)) > 0.2
    padding = np.ones((2, 1, 40), bool)
    padding[:, :, -5:] = False
    return q, k, v, mask, padding


@pytest.mark.gpu
@pytest.mark.parametrize("case", ["sw shard_partial", "linear weights", "linear causal weights", "linear key padding",
                                  "hyperbolic frechet on cupy", "hyperbolic mobius on cupy", "diffusion energies on cupy",
                                  "hyperbolic input notes"])
def test_the_other_entry_points_keep_cupy_in_cupy_out(cp, embeddings, case):
    """Weights, shards, diagnostics and host re-entries on CuPy arrays, against the same call on NumPy
    arrays (each once failed on CuPy: an implicit NumPy conversion, a ufunc keyword CuPy lacks, a host
    re-entry that kept backend="cupy")."""
    q, k, v, mask, padding = embeddings
    M = workbench.make
    calls = {
        "sw shard_partial": lambda x: M("sliced_wasserstein").shard_partial(x(q), x(k), x(v)),
        "linear weights": lambda x: M("linear").weights(x(q), x(k), mask=x(mask)),
        "linear causal weights": lambda x: M("linear", causal=True).weights(x(q), x(q)),
        "linear key padding": lambda x: M("linear", kernel="relu")(x(q), x(k), x(v), mask=x(padding)),
        "hyperbolic frechet on cupy": lambda x: M("hyperbolic", aggregation="frechet",
                                                  backend="cupy" if x is cp.asarray else "auto")(
            x(0.3 * q), x(0.3 * k), x(0.3 * v), mask=x(mask)),
        "hyperbolic mobius on cupy": lambda x: M("hyperbolic", aggregation="mobius",
                                                 backend="cupy" if x is cp.asarray else "auto")(
            x(0.3 * q), x(0.3 * k), x(0.3 * v)),
        "diffusion energies on cupy": lambda x: M("diffusion", backend="cupy" if x is cp.asarray else "auto").energies(
            x(q), x(k)),
        "hyperbolic input notes": lambda x: M("hyperbolic", c=4.0).input_notes(x(q), x(k)),
    }
    got, want = calls[case](cp.asarray), calls[case](lambda a: a)
    if isinstance(want, list):
        assert got == want and want  # unit rows reach past the ball of radius 1/2
        return
    for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        assert isinstance(g, cp.ndarray)
        w = np.asarray(w)
        fin = np.isfinite(w)
        np.testing.assert_allclose(cp.asnumpy(g)[fin], w[fin], atol=1e-4, rtol=1e-4)


@pytest.mark.gpu
def test_diffusion_helpers_on_cupy_points_and_laplacians(cp, embeddings):
    import kernels
    from workbench.diffusion import gaussian_affinity, knn_affinity, laplacian
    from workbench.graph import knn_graph

    rng = np.random.default_rng(10)
    x, qd, vd = _unit_rows(rng, (60, 16)), _unit_rows(rng, (20, 16)), _unit_rows(rng, (60, 8))
    np.testing.assert_allclose(_host(cp, knn_affinity(cp.asarray(x), 5, graph=knn_graph(x, 5))).toarray(),
                               knn_affinity(x, 5).toarray(), atol=1e-12)
    np.testing.assert_allclose(_host(cp, gaussian_affinity(cp.asarray(x))), gaussian_affinity(x), atol=1e-12)
    L = laplacian(knn_affinity(x, 5, dense=True))
    kw = dict(times=[0.5, 1.0], scale=0.25, integrator="euler")
    got = kernels.diffusion.diffusion_attention(cp.asarray(qd), cp.asarray(x), cp.asarray(vd), cp.asarray(L), **kw)
    want = kernels.diffusion.diffusion_attention(qd, x, vd, L, **kw)
    np.testing.assert_allclose(cp.asnumpy(got), want, atol=3e-5, rtol=1e-4)


@pytest.mark.gpu
def test_batches_past_the_grid_limit_take_several_launches(cp, monkeypatch):
    """The batch is the grid's y (CUDA: at most 65,535): a smaller limit here makes every launcher split the
    batch, with per-item masks and per-row terms (hyperbolic) following their items."""
    import kernels.gpu.flash as gf
    import kernels.gpu.linear as gl
    from kernels.gpu.hyperbolic import hyperbolic_cupy
    from kernels.gpu.linear import linear_cupy
    from kernels.reference import hyperbolic as HR
    from kernels.reference.linear import linear_attention

    grids = []

    def recording(compile_):
        def get(*args):
            fn = compile_(*args)

            class Launch:  # records each launch's grid, then launches
                def __getattr__(self, name):
                    return getattr(fn, name)

                def __setattr__(self, name, value):
                    setattr(fn, name, value)

                def __call__(self, grid, *rest, **kw):
                    grids.append(grid)
                    return fn(grid, *rest, **kw)

            return Launch()
        return get

    for mod in (gf, gl):
        monkeypatch.setattr(mod, "MAX_GRID_Y", 2)
        monkeypatch.setattr(mod, "cuda_function", recording(mod.cuda_function))
    rng = np.random.default_rng(11)
    q, k, v = (0.3 * rng.standard_normal((5, n, 16)).astype(np.float32) for n in (20, 30, 30))
    mask = rng.random((5, 20, 30)) > 0.3
    out, lse = gf.flash_cupy(cp.asarray(q), cp.asarray(k), cp.asarray(v), cp.asarray(mask))
    want, want_lse = flash_attention(*(x.astype(np.float64) for x in (q, k, v)), mask)
    np.testing.assert_allclose(cp.asnumpy(out), want, atol=2e-6, rtol=2e-5)
    got = cp.asnumpy(hyperbolic_cupy(cp.asarray(q), cp.asarray(k), cp.asarray(v), 1.0, 0.7, "einstein", cp.asarray(mask)))
    want = HR.attention(*(x.astype(np.float64) for x in (q, k, v)), 1.0, 0.7, "einstein", mask)
    assert np.abs(got - want).max() <= 2 * np.abs(HR.attention(q, k, v, 1.0, 0.7, "einstein", mask) - want).max() + 2e-6
    qf, kf = np.abs(q), np.abs(k)
    for causal in (False, True):
        lk = 20 if causal else 30
        got = cp.asnumpy(linear_cupy(cp.asarray(qf), cp.asarray(kf[:, :lk]), cp.asarray(v[:, :lk]), causal))
        np.testing.assert_allclose(got, linear_attention(qf, kf[:, :lk], v[:, :lk], None if not causal else
                                                         np.tril(np.ones((20, 20), bool))), atol=3e-5, rtol=1e-4)
    assert grids and all(g[1] <= 2 for g in grids) and sum(g[1] for g in grids) == 5 * 5  # 5 launches of 5 items
