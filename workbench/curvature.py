"""Product-space helpers of mixed-curvature attention: the tangent-space mapper and the component quantiser.

A vector ``x = [x_E | x_H | x_S]`` of a product space ``E × H × S`` is split into a Euclidean
block (first ``E`` features), a hyperbolic block (next ``H``, a point of the Poincaré ball of
curvature ``−c_h``) and a spherical block (the rest).

* :class:`TangentSpaceMapper` maps the H and S blocks to the tangent space at the origin and back,
  with the standard maps at any curvature (``exp_0 ∘ log_0 = id`` for every ``c``; upstream's
  origin fast path is twice its general path, docs/upstream.md#mixed-curvature).
* :class:`ComponentQuantizer` quantises each block with its own symmetric absmax scale (8-bit E,
  5-bit H and S by default): ``scale = max|x_c|/L_b``, ``L_b = 2^{b−1} − 1``,
  ``code = round_half_away(x/scale)`` in ``[−L_b, L_b]``; the round-trip error is at most
  ``scale/2`` per element. :meth:`ComponentQuantizer.quantization_error` reports it per block.
  Codes are stored bit-packed (``b`` bits each, :func:`pack_codes`) with float32 scales, so
  :meth:`QuantizedVector.nbytes_packed` and :meth:`ComponentQuantizer.compression_ratio` are
  byte counts of the stored arrays.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from workbench import checks as C
from workbench.errors import ConfigurationError, NumericalError, ShapeError

COMPONENTS = ("euclidean", "hyperbolic", "spherical")


def _as_vectors(x, name="x") -> np.ndarray:
    return C.float_array(name, x, min_ndim=1, shape="(..., d)")


def component_dims(d: int, euclidean_dim=None, hyperbolic_dim=None) -> tuple[int, int, int]:
    """``(E, H, S)`` for a vector of width ``d``: ``E`` = ``euclidean_dim`` or ``⌊d/2⌋``, ``H`` =
    ``hyperbolic_dim`` or ``⌊d/4⌋``, ``S`` = the rest; raises :class:`ConfigurationError` if they exceed ``d``."""
    e = d // 2 if euclidean_dim is None else int(euclidean_dim)
    h = d // 4 if hyperbolic_dim is None else int(hyperbolic_dim)
    if e < 0 or h < 0:
        raise ConfigurationError(f"euclidean_dim, hyperbolic_dim: expected widths >= 0, got {e}, {h}")
    if e + h > d:
        raise ConfigurationError(
            f"euclidean_dim, hyperbolic_dim: expected E + H <= d = {d} (the rest is spherical), got E={e}, H={h}")
    return e, h, d - e - h


def _positive(name, value):
    return C.positive(name, value)


class TangentSpaceMapper:
    """Maps the H and S blocks of product-space vectors to the tangent space at the origin and back.

    ``log(x) = [x_E | log_0^{−c_h}(π x_H) | log_0^{+c_s}(x_S)]`` and ``exp`` its inverse, with the
    Poincaré-ball maps ``log_0(y) = artanh(√c‖y‖)·y/(√c‖y‖)`` (H) and the κ-stereographic maps at
    ``κ = +c_s`` (S: the spherical block in stereographic coordinates; ``tan_κ``/``artan_κ``).
    Consistent at every curvature: ``exp(log(x)) = x`` for points of the manifolds.
    ``tangent_similarity(a, b) = ⟨log a, log b⟩``. Shapes ``(..., d) → (..., d)``.
    """

    def __init__(self, euclidean_dim=None, hyperbolic_dim=None, hyperbolic_curvature=1.0,
                 spherical_curvature=1.0):
        self.euclidean_dim = euclidean_dim
        self.hyperbolic_dim = hyperbolic_dim
        self.c_h = _positive("hyperbolic_curvature", hyperbolic_curvature)
        self.c_s = _positive("spherical_curvature", spherical_curvature)

    def dims(self, d: int) -> tuple[int, int, int]:
        return component_dims(d, self.euclidean_dim, self.hyperbolic_dim)

    def _apply(self, x, hyp, sph):
        x = _as_vectors(x)
        e, h, s = self.dims(x.shape[-1])
        out = x.copy()
        if h:
            out[..., e:e + h] = hyp(x[..., e:e + h])
        if s:
            out[..., e + h:] = sph(x[..., e + h:])
        return out

    def log_map(self, x):
        """Points → tangent vectors at the origin (E block unchanged)."""
        from workbench.geometry import poincare, stereographic

        return self._apply(x, lambda y: poincare.log_map(poincare.project(y, c=self.c_h), None, c=self.c_h),
                           lambda y: stereographic.log_map0(y, k=self.c_s))

    def exp_map(self, v):
        """Tangent vectors at the origin → points (E block unchanged); inverse of :meth:`log_map`."""
        from workbench.geometry import poincare, stereographic

        return self._apply(v, lambda t: poincare.exp_map(t, None, c=self.c_h),
                           lambda t: stereographic.exp_map0(t, k=self.c_s))

    def tangent_similarity(self, a, b):
        """``⟨log a, log b⟩`` over the last axis: ``(..., d), (..., d) → (...)``."""
        return np.sum(self.log_map(a) * self.log_map(b), axis=-1)


def pack_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    """Bit-pack signed ``bits``-bit codes (``|code| ≤ 2^{bits−1} − 1``): ``(…) int → (⌈size·bits/8⌉,) uint8``.

    Each code is stored as ``u = code + L`` (``0 ≤ u ≤ 2L < 2^bits``) in ``bits`` bits, least
    significant first, the elements in C order one after the other (``np.packbits`` of the bit
    planes, ``bitorder='little'``); :func:`unpack_codes` inverts it.
    """
    lev = 2 ** (bits - 1) - 1
    u = (np.asarray(codes).astype(np.int16) + lev).astype(np.uint8).reshape(-1, 1)
    planes = np.unpackbits(u, axis=1, count=bits, bitorder="little")  # (size, bits)
    return np.packbits(planes.reshape(-1), bitorder="little")


def unpack_codes(packed: np.ndarray, bits: int, shape: tuple) -> np.ndarray:
    """Inverse of :func:`pack_codes`: ``int8`` codes of ``shape``."""
    size = int(np.prod(shape, dtype=np.int64))
    lev = 2 ** (bits - 1) - 1
    planes = np.unpackbits(packed, count=size * bits, bitorder="little").reshape(size, bits)
    u = planes.astype(np.int16) @ (1 << np.arange(bits, dtype=np.int16))
    return (u - lev).astype(np.int8).reshape(shape)


@dataclass(frozen=True, eq=False)
class QuantizedVector:
    """Bit-packed codes of one or many vectors and their float32 scales, as stored.

    ``packed``: one ``uint8`` array per block (E, H, S) holding the ``bits``-bit codes of every
    vector (:func:`pack_codes`, ``⌈N·n_c·b_c/8⌉`` bytes for ``N`` vectors of block width ``n_c``);
    ``scales (..., 3)`` float32; ``shape`` the leading shape ``(...)``; ``codes`` unpacks them
    (``int8``, ``(..., n_c)`` per block). ``nbytes_packed()`` is the bytes of the stored arrays.
    """

    packed: tuple
    scales: np.ndarray
    dims: tuple
    dtype: np.dtype
    bits: tuple = (8, 5, 5)
    shape: tuple = ()

    @cached_property
    def codes(self) -> tuple:
        """The codes per block, ``int8`` arrays ``(..., n_c)`` (unpacked once, then cached)."""
        return tuple(unpack_codes(p, b, self.shape + (n,)) for p, b, n in zip(self.packed, self.bits, self.dims))

    def nbytes_packed(self) -> int:
        """Bytes actually stored: the packed code arrays plus the float32 scales."""
        return int(sum(p.nbytes for p in self.packed) + self.scales.nbytes)

    @property
    def nbytes_original(self) -> int:
        """Bytes of the vectors in their original dtype."""
        return int(np.prod(self.shape, dtype=np.int64)) * sum(self.dims) * np.dtype(self.dtype).itemsize


class ComponentQuantizer:
    """Symmetric absmax quantisation per product-space block: 8-bit E, 5-bit H and S by default.

    ``L_b = 2^{b−1} − 1`` levels each side; per vector and block ``scale = max(max|x_c|, 1e-8)/L_b``
    (rounded to float32, as stored), ``code = clip(round_half_away(x_c/scale), −L_b, L_b)``, stored
    in ``b`` bits (bit-packed: ``⌈N·n_c·b/8⌉`` bytes per block for ``N`` vectors). ``dequantize``
    gives ``code·scale``; the error is at most ``scale/2`` per element. Bits must be in ``[2, 8]``
    (upstream silently clips ``bits > 8`` to int8 and stores one code per byte; ``bits = 1`` has no
    level). An empty block has no codes and scale 1.
    """

    def __init__(self, euclidean_bits: int = 8, hyperbolic_bits: int = 5, spherical_bits: int = 5):
        bits = []
        for name, b in (("euclidean_bits", euclidean_bits), ("hyperbolic_bits", hyperbolic_bits),
                        ("spherical_bits", spherical_bits)):
            if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or not 2 <= b <= 8:
                raise ConfigurationError(f"{name}: expected an integer number of bits in [2, 8], got {b!r}")
            bits.append(int(b))
        self.bits = tuple(bits)

    @property
    def levels(self) -> tuple[int, int, int]:
        return tuple(2 ** (b - 1) - 1 for b in self.bits)

    def _split(self, x, dims):
        x = _as_vectors(x)
        if dims is None:
            dims = component_dims(x.shape[-1])
        dims = tuple(int(n) for n in dims)
        if len(dims) != 3 or min(dims) < 0 or sum(dims) != x.shape[-1]:
            raise ShapeError(f"dims: expected (E, H, S) >= 0 summing to the vector width {x.shape[-1]}, got {dims}")
        e, h, _ = dims
        return x, dims, (x[..., :e], x[..., e:e + h], x[..., e + h:])

    def quantize(self, x, dims=None) -> QuantizedVector:
        """``x (..., E+H+S)`` → bit-packed codes per block and float32 scales ``(..., 3)``;
        ``dims=None`` uses ⌊d/2⌋, ⌊d/4⌋, rest. The scale is rounded to float32 first and the codes
        are computed with the stored scale, so the round-trip bound ``scale/2`` holds exactly."""
        x, dims, parts = self._split(x, dims)
        packed, scales = [], []
        for part, lev, b in zip(parts, self.levels, self.bits):
            p = part.astype(np.float64)
            if p.shape[-1] == 0:
                packed.append(np.zeros(0, np.uint8))
                scales.append(np.ones(p.shape[:-1], np.float32))
                continue
            with np.errstate(over="ignore"):
                scale = (np.maximum(np.abs(p).max(axis=-1), 1e-8) / lev).astype(np.float32)
            if not np.isfinite(scale).all():
                raise NumericalError(
                    f"x: a block's absmax exceeds the float32 range of the stored scales "
                    f"(max |x| = {float(np.abs(p).max()):.4g}); rescale the inputs")
            r = p / scale.astype(np.float64)[..., None]
            code = np.clip(np.sign(r) * np.floor(np.abs(r) + 0.5), -lev, lev)
            packed.append(pack_codes(code, b))
            scales.append(scale)
        return QuantizedVector(tuple(packed), np.stack(scales, axis=-1), dims, x.dtype, self.bits, x.shape[:-1])

    def dequantize(self, qv: QuantizedVector) -> np.ndarray:
        """Codes → ``(..., E+H+S)`` in the original dtype: ``code·scale`` per block."""
        parts = [c.astype(np.float64) * qv.scales[..., i, None].astype(np.float64) for i, c in enumerate(qv.codes)]
        return np.concatenate(parts, axis=-1).astype(qv.dtype)

    def round_trip(self, x, dims=None) -> np.ndarray:
        """``dequantize(quantize(x))``."""
        return self.dequantize(self.quantize(x, dims))

    def quantization_error(self, x, dims=None) -> dict:
        """Per block: ``max_abs`` and ``rms`` round-trip error and the bound ``max scale/2``."""
        x, dims, parts = self._split(x, dims)
        qv = self.quantize(x, dims)
        err = np.abs(self.dequantize(qv).astype(np.float64) - x.astype(np.float64))
        out, start = {}, 0
        for i, (name, n) in enumerate(zip(COMPONENTS, dims)):
            e = err[..., start:start + n]
            start += n
            out[name] = {
                "bits": self.bits[i],
                "max_abs": float(e.max(initial=0.0)),
                "rms": float(np.sqrt(np.mean(e ** 2))) if e.size else 0.0,
                "bound": float(qv.scales[..., i].max(initial=0.0) / 2) if n else 0.0,
            }
        return out

    def quantized_dot_product(self, a: QuantizedVector, b: QuantizedVector, weights=(1.0, 1.0, 1.0)) -> np.ndarray:
        """``Σ_c w_c·(Σ a_c·b_c in integers)·s_{a,c}·s_{b,c}``, ``→ (...)``."""
        if a.dims != b.dims:
            raise ShapeError(f"b: expected blocks {a.dims} (from a), got {b.dims}")
        total = 0.0
        for i, w in enumerate(weights):
            dots = np.sum(a.codes[i].astype(np.int32) * b.codes[i].astype(np.int32), axis=-1)
            total = total + float(w) * dots * a.scales[..., i] * b.scales[..., i]
        return total

    def compression_ratio(self, dims_or_quantized) -> float:
        """Storage ratio. For a :class:`QuantizedVector`: the real one, ``nbytes_original / nbytes_packed()``
        (the bytes of the stored arrays). For ``dims (E, H, S)``: the per-vector figure for float32
        vectors, ``32·d / (Σ bits_c·n_c + 96)`` (codes plus three float32 scales), which the real
        ratio of many float32 vectors approaches (it is exact when every block's ``N·n_c·b_c`` is a
        multiple of 8)."""
        if isinstance(dims_or_quantized, QuantizedVector):
            qv = dims_or_quantized
            return qv.nbytes_original / qv.nbytes_packed()
        e, h, s = (int(n) for n in dims_or_quantized)
        return 32.0 * (e + h + s) / (self.bits[0] * e + self.bits[1] * h + self.bits[2] * s + 96)
