"""Every kernel body on a CUDA GPU through CuPy (marked gpu; skipped cleanly without one), against the
NumPy references on the adversarial inputs of the OpenCL tests: large logits, fully masked rows,
L not a multiple of the tiles, L = 1, d = 1, dv ≠ d, every tile shape the benchmark tries."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from kernels.reference import hyperbolic as HR
from kernels.reference import sliced_wasserstein as SWR
from kernels.reference.dense import allowed_pattern
from kernels.reference.diffusion import heat, laplacian
from kernels.reference.linear import feature_map, linear_attention, random_features

from tests.kernels.gpu.checks import check_cascade, check_flash

pytestmark = pytest.mark.gpu


KERNELS = [("rows", None), ("rows", (64, 8)), ("tiled", None), ("tiled", (8, 4)), ("tiled", (4, 8)), ("tiled", (2, 2)),
           ("mma", None), ("mma", (2, 16)), ("mma", (8, 32))]


def _flash(cp, q, k, v, mask=None, scale=None, causal=False, offset=0, kernel=None, tiles=None, atol=2e-6):
    from kernels.gpu.flash import flash_cupy

    def run(*args, **kw):
        out, lse = flash_cupy(*(cp.asarray(x) for x in args[:3]), None if args[3] is None else cp.asarray(args[3]),
                              *args[4:], **kw)
        assert isinstance(out, cp.ndarray) and out.dtype == cp.float32
        return cp.asnumpy(out), cp.asnumpy(lse)

    return check_flash(run, q, k, v, mask, scale, causal, offset, atol=atol, kernel=kernel, tiles=tiles)


def _qkv(rng, B, lq, lk, d, dv, scale=1.0):
    return (scale * rng.standard_normal((B, lq, d)).astype(np.float32),
            rng.standard_normal((B, lk, d)).astype(np.float32), rng.standard_normal((B, lk, dv)).astype(np.float32))


@pytest.mark.parametrize("kernel,tiles", KERNELS)
@pytest.mark.parametrize("B,lq,lk,d,dv", [(2, 50, 77, 64, 64), (1, 1, 1, 1, 1), (3, 33, 17, 8, 1),
                                          (1, 165, 230, 128, 128), (2, 31, 16, 64, 8), (1, 70, 40, 128, 129)])
def test_flash_random_masks_causal(cp, rng, kernel, tiles, B, lq, lk, d, dv):
    q, k, v = _qkv(rng, B, lq, lk, d, dv)
    _flash(cp, q, k, v, kernel=kernel, tiles=tiles)
    _flash(cp, q, k, v, mask=rng.random((B, lq, lk)) > 0.4, kernel=kernel, tiles=tiles)
    for off in (0, lk - lq, -3, lk + 5):
        _flash(cp, q, k, v, causal=True, offset=off, kernel=kernel, tiles=tiles)


@pytest.mark.parametrize("kernel", ["rows", "tiled", "mma"])
def test_flash_large_logits_and_fully_masked_rows(cp, rng, kernel):
    q, k, v = _qkv(rng, 2, 40, 70, 64, 64, scale=300.0)
    out, lse = _flash(cp, q, k, v, atol=2e-4, kernel=kernel)
    assert np.isfinite(out).all() and lse.max() > 1000
    q, k, v = _qkv(rng, 2, 37, 45, 16, 16)
    mask = rng.random((2, 37, 45)) > 0.5
    mask[0, 3] = False
    out, lse = _flash(cp, q, k, v, mask=mask, kernel=kernel)
    assert np.all(out[0, 3] == 0) and lse[0, 3] == -np.inf
    out, lse = _flash(cp, q, k, v, causal=True, offset=-5, kernel=kernel)
    assert np.all(out[:, :5] == 0) and np.all(np.isneginf(lse[:, :5]))
    for shape in ((1, 37, 45), (2, 1, 45), (37, 45)):
        _flash(cp, q, k, v, mask=rng.random(shape) > 0.3, kernel=kernel)


@pytest.mark.parametrize("kernel", ["rows", "tiled"])
def test_flash_at_a_benchmark_size(cp, rng, kernel):
    q, k, v = _qkv(rng, 4, 2048, 2048, 64, 64)
    _flash(cp, q, k, v, atol=5e-6, kernel=kernel)
    _flash(cp, q, k, v, causal=True, atol=5e-6, kernel=kernel)
    q, k, v = _qkv(rng, 2, 1500, 1700, 128, 128)
    _flash(cp, q, k, v, atol=5e-6, kernel=kernel)


@pytest.mark.parametrize("B,lq,lk,d,dv,tiles", [(1, 200, 333, 384, 384, None), (2, 65, 129, 1024, 1025, None),
                                                 (1, 300, 170, 384, 385, (8, 4)), (2, 77, 50, 20, 21, (2, 4, 8, 8))])
def test_flash_wide_heads_by_chunks(cp, rng, B, lq, lk, d, dv, tiles):
    """"tiled" reading embedding-width heads by chunks of dimensions and of value columns (grid z)."""
    q, k, v = _qkv(rng, B, lq, lk, d, dv)
    q, k = (x / np.linalg.norm(x, axis=-1, keepdims=True) for x in (q, k))  # unit-norm rows: real embeddings
    _flash(cp, q, k, v, scale=20.0, kernel="tiled", tiles=tiles)
    _flash(cp, q, k, v, mask=rng.random((B, lq, lk)) > 0.4, kernel="tiled", tiles=tiles)
    _flash(cp, q, k, v, causal=True, offset=-3, kernel="tiled", tiles=tiles)


@pytest.mark.parametrize("kind", ["favor+", "relu", "elu+1"])
@pytest.mark.parametrize("B,L,d,m,dv", [(2, 50, 16, 64, 16), (1, 1, 4, 8, 1), (1, 1030, 32, 256, 64)])
def test_linear(cp, rng, kind, B, L, d, m, dv):
    from kernels.gpu.linear import linear_cupy

    w = random_features(m, d, 3)
    x = [rng.standard_normal((B, L, d)).astype(np.float32) for _ in range(2)]
    qf, kf = feature_map(x[0], w, kind, 1 / np.sqrt(d), True), feature_map(x[1], w, kind, 1 / np.sqrt(d), False)
    v = rng.standard_normal((B, L, dv)).astype(np.float32)
    for causal in (False, True):
        want = linear_attention(qf.astype(np.float64), kf.astype(np.float64), v.astype(np.float64),
                                allowed_pattern(None, L, L, causal))
        got = cp.asnumpy(linear_cupy(cp.asarray(qf), cp.asarray(kf), cp.asarray(v), causal))
        np.testing.assert_allclose(got, want, atol=3e-5, rtol=1e-4)


@pytest.mark.parametrize("agg", ["einstein", "tangent"])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 45, 33, 16), (1, 300, 170, 64), (1, 70, 40, 128),
                                   (1, 200, 300, 384)])
def test_hyperbolic(cp, rng, agg, shape):
    from kernels.gpu.hyperbolic import hyperbolic_cupy

    B, lq, lk, d = shape
    q, k, v = (0.3 * rng.standard_normal((B, L, d)).astype(np.float32) for L in (lq, lk, lk))
    mask = rng.random((B, lq, lk)) > 0.3
    for m in (None, mask):
        got = cp.asnumpy(hyperbolic_cupy(*(cp.asarray(x) for x in (q, k, v)), 1.0, 0.7, agg, m))
        want = HR.attention(*(x.astype(np.float64) for x in (q, k, v)), 1.0, 0.7, agg, m)
        plain = HR.attention(q, k, v, 1.0, 0.7, agg, m)
        assert np.abs(got - want).max() <= 2 * np.abs(plain - want).max() + 2e-6


@pytest.mark.parametrize("score", ["distance", "busemann"])
@pytest.mark.parametrize("kernel", ["rows", "tiled"])
@pytest.mark.parametrize("shape,spread", [((1, 1, 1, 1, 1), 0.3), ((2, 45, 33, 16, 8), 30.0),
                                          ((1, 300, 170, 64, 64), 0.25), ((1, 70, 40, 128, 128), 1e-4)])
def test_lorentz_cascade(cp, rng, score, kernel, shape, spread):
    from kernels.gpu.lorentz import cascade_cupy

    def run(q, k, v, cs, t, sc, mask, kern):
        got = cascade_cupy(*(cp.asarray(x) for x in (q, k, v)), cs, t, sc, None if mask is None else cp.asarray(mask),
                           kern)
        assert isinstance(got, cp.ndarray)
        return cp.asnumpy(got)

    check_cascade(run, rng, *shape, spread, score, temperature=0.7, with_mask=True, kernel=kernel)


@pytest.mark.parametrize("score", ["distance", "busemann"])
def test_lorentz_cascade_wide_heads(cp, rng, score):
    from kernels.gpu.lorentz import cascade_cupy

    def run(q, k, v, cs, t, sc, mask, kern):
        return cp.asnumpy(cascade_cupy(*(cp.asarray(x) for x in (q, k, v)), cs, t, sc,
                                       None if mask is None else cp.asarray(mask), kern))

    check_cascade(run, rng, 1, 150, 230, 384, 384, 0.05, score, temperature=0.7, with_mask=True)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.5])
def test_sliced_wasserstein_full_path(cp, rng, p):
    from kernels.gpu.flash import sw_partial

    a, b = (rng.standard_normal((2, L, 64)).astype(np.float32) for L in (140, 97))
    v = rng.standard_normal((2, 97, 16)).astype(np.float32)
    out, lse = sw_partial("cuda", cp.asarray(a), cp.asarray(b), cp.asarray(v), p, 0.8)
    want, want_lse = SWR.partial(a.astype(np.float64), b.astype(np.float64), v.astype(np.float64), p, 0.8)
    np.testing.assert_allclose(cp.asnumpy(out), want, atol=5e-5, rtol=1e-4)
    np.testing.assert_allclose(cp.asnumpy(lse), want_lse, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("kind", ["unnormalized", "symmetric", "random_walk"])
def test_heat_steps(cp, rng, kind):
    from kernels.gpu.diffusion import euler_cupy

    n = 400
    x = rng.standard_normal((n, 3))
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nn = np.argsort(d, axis=1)[:, :6]
    w = sp.csr_matrix((np.exp(-d[np.arange(n)[:, None], nn]).ravel(), (np.repeat(np.arange(n), 6), nn.ravel())),
                      shape=(n, n))
    L = laplacian(w.maximum(w.T).tocsr(), kind)
    f = rng.standard_normal((n, 33)).astype(np.float32)
    for dt, steps in ((0.3, 5), (2.0, 3)):
        got = euler_cupy(L, cp.asarray(f), dt, steps)
        np.testing.assert_allclose(cp.asnumpy(got), heat(L, f, [dt], "euler", steps)[0], atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("integrator", ["euler", "expm"])
def test_diffusion_attention(cp, rng, integrator):
    from kernels.diffusion import diffusion_attention, diffusion_weights
    from kernels.reference.diffusion import attention, weights

    n = 300
    k = rng.standard_normal((n, 64))
    k = (k / np.linalg.norm(k, axis=1, keepdims=True)).astype(np.float32)
    q, v = rng.standard_normal((90, 64)).astype(np.float32), rng.standard_normal((n, 32)).astype(np.float32)
    d = ((k[:, None] - k[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nn = np.argsort(d, axis=1)[:, :8]
    w = sp.csr_matrix((np.exp(-d[np.arange(n)[:, None], nn]).ravel(), (np.repeat(np.arange(n), 8), nn.ravel())),
                      shape=(n, n))
    L = laplacian(w.maximum(w.T).tocsr(), "random_walk")
    times = np.array([0.5, 1.0])
    got = diffusion_attention(*(cp.asarray(x) for x in (q, k, v)), L, times=times, scale=0.125, temperature=0.5,
                              integrator=integrator, multiscale="concat", backend="cupy")
    assert isinstance(got, cp.ndarray) and got.dtype == cp.float32
    np.testing.assert_allclose(cp.asnumpy(got), attention(q, k, v, L, times, 0.125, 0.5, integrator, 5, "concat"),
                               atol=3e-5, rtol=1e-4)
    got_w = diffusion_weights(cp.asarray(q), cp.asarray(k), L, times=times, scale=0.125, temperature=0.5,
                              integrator=integrator, backend="cupy")
    np.testing.assert_allclose(cp.asnumpy(got_w), weights(q, k, L, times, 0.125, 0.5, integrator, 5),
                               atol=2e-6, rtol=1e-4)
