"""The flash bodies through OpenCL on the CPU (PoCL) against the NumPy reference (float64), on random and
adversarial inputs: large logits, fully masked rows, broadcast masks, causal offsets, L not a
multiple of the tiles, L = 1, d = 1, dv ≠ d. Kernels: "rows" (flash_fwd.cu), "tiled" (flash_tiled.cu) and
"mma" (flash_mma.cu, tensor cores: its warp products emulated by mma.cuh, so what runs here is its
fragment indexing, masks and online softmax against the PTX fragment layout)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


from tests.kernels.gpu.checks import check_flash

pytestmark = pytest.mark.opencl


def _check(gpu, q, k, v, mask=None, scale=None, causal=False, offset=0, atol=2e-6, kernel=None, tiles=None):
    return check_flash(gpu.flash_opencl, q, k, v, mask, scale, causal, offset, atol=atol, kernel=kernel, tiles=tiles)


def _qkv(rng, B, lq, lk, d, dv, scale=1.0):
    return (scale * rng.standard_normal((B, lq, d)).astype(np.float32),
            rng.standard_normal((B, lk, d)).astype(np.float32), rng.standard_normal((B, lk, dv)).astype(np.float32))


@pytest.mark.parametrize("kernel", ["rows", "tiled", "mma"])
@pytest.mark.parametrize("B,lq,lk,d,dv", [(2, 50, 77, 64, 64), (1, 1, 1, 1, 1), (3, 33, 17, 8, 1),
                                          (1, 65, 130, 128, 128), (2, 31, 16, 64, 8), (1, 70, 40, 128, 129)])
def test_random_inputs_masks_and_causal(opencl, rng, kernel, B, lq, lk, d, dv):
    q, k, v = _qkv(rng, B, lq, lk, d, dv)
    _check(opencl, q, k, v, kernel=kernel)
    _check(opencl, q, k, v, mask=rng.random((B, lq, lk)) > 0.4, kernel=kernel)
    for off in (0, lk - lq, -3, lk + 5):
        _check(opencl, q, k, v, causal=True, offset=off, kernel=kernel)


@pytest.mark.parametrize("kernel", ["rows", "tiled", "mma"])
def test_large_logits_do_not_overflow(opencl, rng, kernel):
    q, k, v = _qkv(rng, 2, 40, 70, 64, 64, scale=300.0)  # logits in the thousands
    # float32 dot products of that size round by ~1e-3, which moves the weights by ~0.1%: the tolerance
    # says so; what must not happen is an overflow (inf/NaN) or a lost row
    out, lse = _check(opencl, q, k, v, atol=2e-4, kernel=kernel)
    assert np.isfinite(out).all() and np.isfinite(lse).all() and lse.max() > 1000


@pytest.mark.parametrize("kernel", ["rows", "tiled", "mma"])
def test_fully_masked_rows_give_zero_and_minus_infinity(opencl, rng, kernel):
    q, k, v = _qkv(rng, 2, 37, 45, 16, 16)
    mask = rng.random((2, 37, 45)) > 0.5
    mask[0, 3] = False
    mask[1, 36] = False
    out, lse = _check(opencl, q, k, v, mask=mask, kernel=kernel)
    assert np.all(out[0, 3] == 0) and lse[0, 3] == -np.inf and np.all(out[1, 36] == 0)
    # causal with an offset that leaves the first rows no key at all
    out, lse = _check(opencl, q, k, v, causal=True, offset=-5, kernel=kernel)
    assert np.all(out[:, :5] == 0) and np.all(np.isneginf(lse[:, :5]))


@pytest.mark.parametrize("kernel", ["rows", "tiled", "mma"])
@pytest.mark.parametrize("shape", [(1, 37, 45), (2, 1, 45), (1, 1, 45), (37, 45)])
def test_broadcast_masks(opencl, rng, shape, kernel):
    q, k, v = _qkv(rng, 2, 37, 45, 16, 16)
    _check(opencl, q, k, v, mask=rng.random(shape) > 0.3, kernel=kernel)


def test_a_given_scale(opencl, rng):
    q, k, v = _qkv(rng, 1, 20, 20, 32, 32)
    _check(opencl, q, k, v, scale=0.05)
    _check(opencl, q, k, v, scale=3.0)


def test_head_dimensions_beyond_the_kernel_are_refused(opencl, rng):
    q, k, v = _qkv(rng, 1, 4, 4, 129, 8)
    for kernel in ("rows", "mma"):
        with pytest.raises(ValueError, match="up to 128"):
            opencl.flash_opencl(q, k, v, kernel=kernel)
    big = np.zeros((1, 1, opencl.WIDE_HEAD_DIM + 1), np.float32)
    with pytest.raises(ValueError, match="up to 8192"):
        opencl.flash_opencl(big, big, v[:, :1])


@pytest.mark.parametrize("d,dv,chunks", [(20, 20, (8, 8)), (21, 9, (8, 4)), (13, 30, (8, 7)), (3, 1, (1, 1)),
                                         (64, 65, (24, 33))])
def test_heads_read_by_chunks_of_dimensions_and_of_value_columns(opencl, rng, d, dv, chunks):
    """"tiled" with DC < d (the queries re-read per key tile, the last chunk partly past d) and VC < dv (value
    columns split over the grid's z, every block recomputing the scores; only the first writes the LSE):
    small chunks of small heads run the wide-head code paths at PoCL's speed."""
    q, k, v = _qkv(rng, 2, 37, 45, d, dv)
    tiles = (2, 4, *chunks)
    _check(opencl, q, k, v, kernel="tiled", tiles=tiles)
    _check(opencl, q, k, v, mask=rng.random((2, 37, 45)) > 0.5, kernel="tiled", tiles=tiles)
    out, lse = _check(opencl, q, k, v, causal=True, offset=-4, kernel="tiled", tiles=tiles)
    assert np.all(out[:, :4] == 0) and np.all(np.isneginf(lse[:, :4]))


@pytest.mark.parametrize("d,dv", [(384, 384), (385, 129), (200, 257)])
def test_embedding_width_heads_take_the_default_chunks(opencl, rng, d, dv):
    """Sentence-embedding widths (unit-norm rows, the real-data case) through the default chunks."""
    from kernels.gpu.flash import head_chunks

    dc, vc = head_chunks(d, dv)
    assert dc % 8 == 0 and dc <= 64 and -(-d // dc) * dc - d < 8 * -(-d // dc)  # equal chunks, little padding
    assert vc <= opencl.MAX_VALUE_DIM and -(-dv // vc) == -(-dv // opencl.MAX_VALUE_DIM)
    q, k, v = _qkv(rng, 1, 40, 70, d, dv)
    q, k = (x / np.linalg.norm(x, axis=-1, keepdims=True) for x in (q, k))
    _check(opencl, q, k, v, kernel="tiled", scale=20.0)
    _check(opencl, q, k, v, mask=rng.random((1, 40, 70)) > 0.3, causal=True, offset=10, kernel="tiled")


def test_head_chunks():
    from kernels.gpu.flash import head_chunks

    assert head_chunks(64, 65) == (64, 65) and head_chunks(128, 129) == (128, 129)  # the narrow kernel
    assert head_chunks(384, 384) == (64, 128) and head_chunks(384, 385) == (64, 129)
    assert head_chunks(1024, 1025) == (64, 129)  # 16 chunks of 64; 8 blocks of 129 columns (1,032 ≥ 1,025)
    assert head_chunks(200, 130) == (56, 65)  # 4 × 56 = 224: the fewest chunks of ≤ 64, rounded up to 8


@settings(max_examples=25, deadline=None)
@given(B=st.integers(1, 3), lq=st.integers(1, 70), lk=st.integers(1, 70), d=st.sampled_from([1, 8, 64]),
       dv=st.sampled_from([1, 8, 64]), causal=st.booleans(), offset=st.integers(-10, 10), p=st.floats(0, 1),
       seed=st.integers(0, 2**31 - 1), kernel=st.sampled_from(["rows", "tiled", "mma"]))
def test_any_shape_equals_the_reference(opencl, B, lq, lk, d, dv, causal, offset, p, seed, kernel):
    rng = np.random.default_rng(seed)
    q, k, v = _qkv(rng, B, lq, lk, d, dv)
    mask = rng.random((B, lq, lk)) >= p if p > 0.05 else None
    _check(opencl, q, k, v, mask=mask, causal=causal, offset=offset, kernel=kernel)


@pytest.mark.parametrize("kernel,tiles", [("rows", (64, 16)), ("rows", (128, 8)), ("rows", (64, 32)), ("rows", (16, 4)),
                                          ("tiled", (8, 4)), ("tiled", (4, 8)), ("tiled", (2, 2)), ("tiled", (1, 1)), ("tiled", (3, 2)),
                                          ("mma", (1, 8)), ("mma", (2, 16)), ("mma", (4, 64)), ("mma", (8, 32))])
def test_other_tile_shapes(opencl, rng, kernel, tiles):
    """The tile shapes the GPU benchmark tries compute the same function."""
    q, k, v = _qkv(rng, 2, 150, 97, 32, 24)
    mask = rng.random((2, 150, 97)) > 0.4
    for kw in ({}, {"mask": mask}, {"causal": True, "offset": -3}):
        _check(opencl, q, k, v, kw.get("mask"), None, kw.get("causal", False), kw.get("offset", 0), kernel=kernel,
               tiles=tiles)


def test_tiles_that_do_not_fit_local_memory_are_refused(opencl, rng):
    q, k, v = _qkv(rng, 1, 4, 4, 128, 128)
    with pytest.raises(ValueError, match="local memory"):
        opencl.flash_opencl(q, k, v, kernel="rows", tiles=(128, 16))
    with pytest.raises(ValueError, match="power of two"):
        opencl.flash_opencl(q, k, v, kernel="tiled", tiles=(4, 3))
    with pytest.raises(ValueError, match="kernel"):
        opencl.flash_opencl(q, k, v, kernel="warp")
    with pytest.raises(ValueError, match="multiple of 8"):
        opencl.flash_opencl(q, k, v, kernel="mma", tiles=(4, 12))
    with pytest.raises(ValueError, match="dot score only"):
        opencl.poincare_partial("opencl", q, k, v, np.ones((1, 4)), np.ones((1, 4)), 1.0, 1.0, kernel="mma")


def test_default_tiles_keep_every_multiprocessor_busy():
    from kernels.gpu.flash import default_tiles

    assert default_tiles(4096, 16, 132) == (8, 4)  # 32 × 16 = 512 blocks of 128 rows
    assert default_tiles(16384, 1, 132) == (4, 4)  # 128 blocks of 128 rows would leave 4 idle: 64 rows
    assert default_tiles(512, 16, 132) == (2, 4)
    assert default_tiles(10, 1, 132) == (2, 4)  # too few rows for any: the smallest
    assert default_tiles(10, 1, None) == (8, 4)  # no device to fill (OpenCL): the largest


@pytest.mark.parametrize("limit", [227 * 1024, 163 * 1024, 99 * 1024, 48 * 1024])
@pytest.mark.parametrize("d,dv", [(64, 64), (128, 128), (128, 129), (384, 385)])
def test_default_tiles_fit_the_devices_local_memory(opencl, limit, d, dv):
    """GPUs before Hopper opt in to less local memory per block (A100 163 KB, sm_86/89 99 KB): the default
    "tiled" plan steps down (fewer rows, narrower chunks, fewer value columns) until it fits, rather than
    failing at launch (48 KB: the static limit, no opt-in at all)."""
    from kernels.gpu.flash import launch_plan

    shape = (16, 4096, d), (16, 4096, d), (16, 4096, dv)
    roomy = launch_plan(*shape, None, None, False, 0, kernel="tiled", units=132)
    plan = launch_plan(*shape, None, None, False, 0, kernel="tiled", units=132, shared_limit=limit)
    assert plan["shared_bytes"] <= limit
    if roomy["shared_bytes"] <= limit:
        assert plan == roomy  # nothing changes where the default fits
    else:
        assert any(plan["defines"][key] < roomy["defines"][key] for key in ("TM", "DC", "VC"))
    with pytest.raises(ValueError, match="local memory"):  # explicit tiles are taken as given, or refused
        launch_plan(*shape, None, None, False, 0, kernel="tiled", tiles=(8, 4), shared_limit=8 * 1024)


def test_a_plan_that_fits_no_device_is_refused_with_the_sizes(opencl):
    from kernels.gpu.flash import launch_plan

    with pytest.raises(ValueError, match="bytes of local memory per block"):
        launch_plan((1, 8, 64), (1, 8, 64), (1, 8, 64), None, None, False, 0, kernel="tiled", shared_limit=1024)


def test_batch_slices_cover_the_batch_within_the_grid_limit():
    from kernels.gpu.runtime import MAX_GRID_Y, batch_slices

    assert batch_slices(5, 2) == [slice(0, 2), slice(2, 4), slice(4, 5)]
    assert batch_slices(1) == [slice(0, 1)] and batch_slices(0) == [slice(0, 0)]
    big = batch_slices(200_000)
    assert all(s.stop - s.start <= MAX_GRID_Y for s in big) and big[0].start == 0 and big[-1].stop == 200_000
    assert all(a.stop == b.start for a, b in zip(big, big[1:]))
