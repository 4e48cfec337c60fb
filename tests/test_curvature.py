"""TangentSpaceMapper and ComponentQuantizer: explicit formulas, round trips, bounds, ranges."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.curvature import ComponentQuantizer, TangentSpaceMapper, component_dims
from workbench.errors import ConfigurationError, ShapeError
from workbench.geometry import poincare

SETTINGS = settings(max_examples=25, deadline=None)
CURVATURES = [0.3, 1.0, 2.5]


def points(rng, n, e, h, s, ch, cs, dtype=np.float64):
    """Product-space points: H block inside the ball, S block inside the stereographic chart's
    injectivity radius (‖y‖ < 1/√c_s)."""
    x = rng.standard_normal((n, e + h + s))
    for lo, hi, c in ((e, e + h, ch), (e + h, e + h + s, cs)):
        blk = x[:, lo:hi]
        nrm = np.linalg.norm(blk, axis=-1, keepdims=True)
        x[:, lo:hi] = blk / np.maximum(nrm, 1e-12) * 0.8 * rng.random((n, 1)) / math.sqrt(c)
    return x.astype(dtype)


@pytest.mark.parametrize("ch", CURVATURES)
@pytest.mark.parametrize("cs", CURVATURES)
def test_mapper_log_matches_standard_formulas(ch, cs, rng):
    x = points(rng, 6, 3, 4, 2, ch, cs)
    m = TangentSpaceMapper(euclidean_dim=3, hyperbolic_dim=4, hyperbolic_curvature=ch, spherical_curvature=cs)
    t = m.log_map(x)
    for i in range(6):
        np.testing.assert_array_equal(t[i, :3], x[i, :3])
        y = x[i, 3:7]
        n = np.linalg.norm(y)
        np.testing.assert_allclose(t[i, 3:7], math.atanh(math.sqrt(ch) * n) / (math.sqrt(ch) * n) * y, atol=1e-12)
        z = x[i, 7:]
        nz = np.linalg.norm(z)
        np.testing.assert_allclose(t[i, 7:], math.atan(math.sqrt(cs) * nz) / (math.sqrt(cs) * nz) * z, atol=1e-12)
    # consistent metric at every curvature: d_c(0, y) = 2‖log_0 y‖ (conformal factor 2 at the origin)
    d0 = poincare.distance(np.zeros_like(x[:, 3:7]), x[:, 3:7], c=ch)
    np.testing.assert_allclose(d0, 2 * np.linalg.norm(t[:, 3:7], axis=-1), rtol=1e-10)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 2e-4)])
@pytest.mark.parametrize("ch", CURVATURES)
@pytest.mark.parametrize("cs", CURVATURES)
def test_mapper_round_trip(dtype, tol, ch, cs, rng):
    x = points(rng, 20, 4, 3, 3, ch, cs, dtype)
    m = TangentSpaceMapper(euclidean_dim=4, hyperbolic_dim=3, hyperbolic_curvature=ch, spherical_curvature=cs)
    t = m.log_map(x)
    assert t.dtype == dtype
    np.testing.assert_allclose(m.exp_map(t), x, atol=tol / math.sqrt(min(ch, cs)))
    np.testing.assert_allclose(m.log_map(m.exp_map(t)), t, atol=tol * 10)


def test_mapper_origin_and_similarity(rng):
    m = TangentSpaceMapper(hyperbolic_curvature=0.5, spherical_curvature=2.0)
    np.testing.assert_array_equal(m.log_map(np.zeros((3, 8))), 0.0)
    x = points(rng, 5, 4, 2, 2, 0.5, 2.0)
    assert (m.tangent_similarity(x, x) > 0).all()
    assert m.dims(8) == (4, 2, 2)
    with pytest.raises(ConfigurationError, match="hyperbolic_curvature"):
        TangentSpaceMapper(hyperbolic_curvature=-1.0)
    with pytest.raises(ConfigurationError, match="spherical_curvature"):
        TangentSpaceMapper(spherical_curvature=0.0)


# --- quantiser -----------------------------------------------------------------------------------

@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), e=st.integers(0, 40), h=st.integers(0, 20), s=st.integers(0, 20),
       amp=st.sampled_from([1e-6, 1.0, 1e3]), dtype=st.sampled_from([np.float32, np.float64]),
       bits=st.sampled_from([(8, 5, 5), (2, 3, 4), (6, 8, 2)]))
def test_round_trip_error_at_most_half_a_step_and_codes_in_range(seed, e, h, s, amp, dtype, bits):
    rng = np.random.default_rng(seed)
    x = (amp * rng.standard_normal((3, e + h + s))).astype(dtype)
    if e:
        x[0, :e] = 0.0  # an all-zero block
    qz = ComponentQuantizer(*bits)
    qv = qz.quantize(x, (e, h, s))
    back = qz.dequantize(qv)
    assert back.shape == x.shape and back.dtype == dtype
    start = 0
    for i, n in enumerate((e, h, s)):
        lev = 2 ** (bits[i] - 1) - 1
        codes = qv.codes[i]
        assert codes.shape == (3, n) and codes.dtype == np.int8
        assert (np.abs(codes.astype(int)) <= lev).all()
        blk = x[:, start:start + n].astype(np.float64)
        if n:
            scale = np.maximum(np.abs(blk).max(-1), 1e-8) / lev  # absmax scale, written out
            assert qv.scales.dtype == np.float32  # stored as float32 (rounded once)
            np.testing.assert_allclose(qv.scales[:, i], scale, rtol=2 ** -24)
            scale = qv.scales[:, i].astype(np.float64)  # the bound holds for the stored scale
            err = np.abs(back[:, start:start + n].astype(np.float64) - blk)
            slack = 4 * np.finfo(dtype).eps * np.abs(blk).max(-1, keepdims=True)  # dtype rounding of the result
            assert (err <= scale[:, None] / 2 * (1 + 1e-12) + slack).all()
            # the absmax entry of each block is exact up to rounding: code ±L
            assert (np.abs(codes).max(-1)[np.abs(blk).max(-1) > 1e-8] == lev).all()
        start += n
    report = qz.quantization_error(x, (e, h, s))
    for i, name in enumerate(("euclidean", "hyperbolic", "spherical")):
        r = report[name]
        assert r["bits"] == bits[i]
        assert 0 <= r["rms"] <= r["max_abs"] + 1e-30
        assert r["max_abs"] <= r["bound"] * (1 + 1e-12) + 4 * np.finfo(dtype).eps * max(1.0, amp) * 10


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), bits=st.integers(2, 8), shape=st.sampled_from([(0,), (1,), (7,), (3, 5), (2, 3, 9)]))
def test_pack_codes_round_trip_and_size(seed, bits, shape):
    """Bit packing is lossless for every code in range and takes ⌈size·bits/8⌉ bytes."""
    from workbench.curvature import pack_codes, unpack_codes

    lev = 2 ** (bits - 1) - 1
    codes = np.random.default_rng(seed).integers(-lev, lev + 1, size=shape).astype(np.int8)
    if codes.size:
        codes.flat[0] = -lev  # both extremes present
        codes.flat[-1] = lev
    packed = pack_codes(codes, bits)
    assert packed.dtype == np.uint8 and packed.shape == (-(-codes.size * bits // 8),)
    np.testing.assert_array_equal(unpack_codes(packed, bits, shape), codes)
    # the stream holds code + L in `bits` bits, least significant bit first, element after element
    stream = [(int(c) + lev) >> t & 1 for c in codes.ravel() for t in range(bits)]
    np.testing.assert_array_equal(np.unpackbits(packed, bitorder="little")[:len(stream)], stream)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, dims", [(1, (32, 16, 16)), (1000, (32, 16, 16)), (3, (5, 3, 1)), (10, (0, 7, 0))])
def test_stored_bytes_are_bit_packed(dtype, n, dims):
    """``nbytes_packed`` counts the stored arrays: ⌈N·n_c·b_c/8⌉ bytes per block plus 3 float32 scales
    per vector; ``compression_ratio`` of a quantised array is original bytes over those."""
    x = np.random.default_rng(n).standard_normal((n, sum(dims))).astype(dtype)
    qz = ComponentQuantizer()
    qv = qz.quantize(x, dims)
    expected = sum(-(-n * w * b // 8) for w, b in zip(dims, qz.bits)) + 4 * 3 * n
    assert sum(p.nbytes for p in qv.packed) + qv.scales.nbytes == expected == qv.nbytes_packed()
    assert all(p.dtype == np.uint8 for p in qv.packed)
    assert qv.nbytes_original == x.nbytes
    assert qz.compression_ratio(qv) == pytest.approx(x.nbytes / expected)
    if dtype == np.float32 and n == 1000:  # every block a whole number of bytes: the per-vector formula
        assert qz.compression_ratio(qv) == pytest.approx(qz.compression_ratio(dims))
    # round trip through the packed storage: codes and values as computed from the formula
    for i, (lo, hi) in enumerate(((0, dims[0]), (dims[0], dims[0] + dims[1]), (dims[0] + dims[1], sum(dims)))):
        lev = 2 ** (qz.bits[i] - 1) - 1
        blk = x[:, lo:hi].astype(np.float64)
        r = blk / qv.scales[:, i, None].astype(np.float64)
        code = np.clip(np.sign(r) * np.floor(np.abs(r) + 0.5), -lev, lev)
        np.testing.assert_array_equal(qv.codes[i], code)
    back = qz.dequantize(qv)
    assert back.dtype == dtype and back.shape == x.shape


def test_quantization_error_figures():
    """The 8/5/5-bit error on standard normal vectors: relative RMS ~1% (E) and ~15% (H, S)."""
    x = np.random.default_rng(0).standard_normal((4096, 64))
    rep = ComponentQuantizer().quantization_error(x, (32, 16, 16))
    for name, lo, hi in (("euclidean", 0.002, 0.02), ("hyperbolic", 0.02, 0.2), ("spherical", 0.02, 0.2)):
        assert lo < rep[name]["rms"] < hi, (name, rep[name])
        assert rep[name]["max_abs"] <= rep[name]["bound"]


def test_scales_beyond_float32_are_refused():
    from workbench.errors import NumericalError

    with pytest.raises(NumericalError, match="x"):
        ComponentQuantizer().quantize(np.full(8, 1e300), (4, 2, 2))


def test_upstream_cases():
    qz = ComponentQuantizer()
    x = np.full(64, 0.5)
    qv = qz.quantize(x, (32, 16, 16))
    assert [c.shape[-1] for c in qv.codes] == [32, 16, 16]
    np.testing.assert_allclose(qz.dequantize(qv), x, atol=0.1)
    ones = qz.quantize(np.ones(64), (32, 16, 16))
    dot = qz.quantized_dot_product(ones, ones, (0.5, 0.3, 0.2))
    assert dot == pytest.approx(0.5 * 32 + 0.3 * 16 + 0.2 * 16)
    assert qz.compression_ratio((256, 192, 64)) == pytest.approx(16384 / 3424)
    assert 3 < qz.compression_ratio((256, 192, 64)) < 7


def test_quantized_dot_product_approximates_the_weighted_dot(rng):
    qz = ComponentQuantizer()
    a, b = rng.standard_normal((10, 16)), rng.standard_normal((10, 16))
    dims = (8, 4, 4)
    w = (0.5, 0.3, 0.2)
    exact = sum(wc * np.sum(a[:, lo:hi] * b[:, lo:hi], -1) for wc, (lo, hi) in zip(w, ((0, 8), (8, 12), (12, 16))))
    approx = qz.quantized_dot_product(qz.quantize(a, dims), qz.quantize(b, dims), w)
    ra, rb = qz.round_trip(a, dims), qz.round_trip(b, dims)
    via_round_trip = sum(wc * np.sum(ra[:, lo:hi] * rb[:, lo:hi], -1)
                         for wc, (lo, hi) in zip(w, ((0, 8), (8, 12), (12, 16))))
    np.testing.assert_allclose(approx, via_round_trip, rtol=1e-12)
    assert np.abs(approx - exact).max() < 0.5


@pytest.mark.parametrize("kw, arg", [({"euclidean_bits": 0}, "euclidean_bits"), ({"hyperbolic_bits": 9}, "hyperbolic_bits"),
                                      ({"spherical_bits": 1}, "spherical_bits"), ({"euclidean_bits": 4.0}, "euclidean_bits")])
def test_bad_bits(kw, arg):
    with pytest.raises(ConfigurationError, match=arg):
        ComponentQuantizer(**kw)


def test_bad_dims():
    with pytest.raises(ShapeError, match="dims"):
        ComponentQuantizer().quantize(np.ones(10), (4, 4, 4))
    with pytest.raises(ConfigurationError, match="euclidean_dim"):
        component_dims(8, 6, 4)
    assert component_dims(9) == (4, 2, 3)
