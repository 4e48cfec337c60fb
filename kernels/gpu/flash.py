"""Launch ``flash_fwd.cu``: float32 flash attention forward, ``(out (B, Lq, dv), lse (B, Lq))``.

One block of :data:`BLOCK_Q` threads per (query tile, batch), key tiles of :data:`BLOCK_K`; the
head dimensions are compile-time constants (one compiled module per ``(d, dv)``, cached). The mask
is passed as uint8 with a stride per axis (0 where it broadcasts). :func:`flash_cupy` runs on CuPy
arrays; :func:`flash_opencl` runs the same body through OpenCL (PoCL on the CPU: the tests'
backend, never offered to users). Both equal :func:`kernels.reference.flash.flash_attention`.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from kernels.gpu.sources import source

#: Query rows per block (one thread each) and keys per tile; the largest head dimension served.
BLOCK_Q, BLOCK_K, MAX_HEAD_DIM = 32, 16, 128

__all__ = ["BLOCK_Q", "BLOCK_K", "MAX_HEAD_DIM", "flash_cupy", "flash_opencl", "launch_plan", "weights_cupy"]


def launch_plan(q_shape, k_shape, v_shape, mask_shape, scale, causal, causal_offset) -> dict:
    """Grid, block, compile-time constants and scalar arguments of one call (shapes only)."""
    B, lq, d = q_shape
    lk, dv = k_shape[1], v_shape[2]
    if d > MAX_HEAD_DIM or dv > MAX_HEAD_DIM:
        raise ValueError(f"q, v: the GPU flash kernel takes head dimensions up to {MAX_HEAD_DIM}, got d={d}, dv={dv}")
    if mask_shape is None:
        sb = sq = 0
    else:
        if len(mask_shape) != 3 or mask_shape[0] not in (1, B) or mask_shape[1] not in (1, lq) or mask_shape[2] != lk:
            raise ValueError(f"mask: expected a shape broadcastable to ({B}, {lq}, {lk}), got {tuple(mask_shape)}")
        sq = lk if mask_shape[1] == lq and lq > 1 else 0
        sb = mask_shape[1] * lk if mask_shape[0] == B and B > 1 else 0
    return {"grid": (max(1, math.ceil(lq / BLOCK_Q)), B), "block": (BLOCK_Q,),
            "defines": {"HEAD_DIM": d, "VALUE_DIM": dv, "BLOCK_Q": BLOCK_Q, "BLOCK_K": BLOCK_K},
            "has_mask": mask_shape is not None, "mask_sb": sb, "mask_sq": sq,
            "scale": float(1.0 / math.sqrt(d) if scale is None else scale), "causal": bool(causal),
            "causal_offset": int(causal_offset), "lq": lq, "lk": lk, "out_shape": (B, lq, dv), "lse_shape": (B, lq)}


def _mask3(mask, xp):
    m = xp.asarray(mask)
    while m.ndim < 3:
        m = m[None]
    return xp.ascontiguousarray(m.astype(xp.uint8))


# -- CuPy ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _cuda_function(defines: tuple):
    import cupy as cp

    module = cp.RawModule(code=source("flash_fwd", "cuda", dict(defines)), options=("--std=c++14",))
    return module.get_function("flash_fwd")


def flash_cupy(q, k, v, mask=None, scale=None, causal=False, causal_offset=0):
    """The kernel on CuPy arrays ``q (B, Lq, d), k (B, Lk, d), v (B, Lk, dv)`` float32 → CuPy ``(out, lse)``."""
    import cupy as cp

    q, k, v = (cp.ascontiguousarray(x, dtype=cp.float32) for x in (q, k, v))
    m = None if mask is None else _mask3(mask, cp)
    plan = launch_plan(q.shape, k.shape, v.shape, None if m is None else m.shape, scale, causal, causal_offset)
    out = cp.empty(plan["out_shape"], cp.float32)
    lse = cp.empty(plan["lse_shape"], cp.float32)
    if q.shape[1] == 0 or q.shape[0] == 0:
        return out, lse
    fn = _cuda_function(tuple(plan["defines"].items()))
    fn(plan["grid"], plan["block"],
       (q, k, v, m if m is not None else cp.zeros(1, cp.uint8), np.int32(plan["has_mask"]), np.int64(plan["mask_sb"]),
        np.int64(plan["mask_sq"]), np.float32(plan["scale"]), np.int32(plan["causal"]),
        np.int32(plan["causal_offset"]), np.int32(plan["lq"]), np.int32(plan["lk"]), out, lse))
    return out, lse


def weights_cupy(q, k, mask=None, scale=None, causal=False, causal_offset=0):
    """Weights ``exp(scale · q kᵀ − lse)`` on allowed keys (0 elsewhere), ``(B, Lq, Lk)``: the kernel's
    log-sum-exp and one CuPy array expression (for inspection, not the hot path)."""
    import cupy as cp

    q, k = (cp.ascontiguousarray(x, dtype=cp.float32) for x in (q, k))
    d = q.shape[-1]
    s = float(1.0 / math.sqrt(d) if scale is None else scale)
    ones = cp.ones(k.shape[:2] + (1,), cp.float32)
    _, lse = flash_cupy(q, k, ones, mask, s, causal, causal_offset)
    allowed = cp.ones((1, q.shape[1], k.shape[1]), bool)
    if mask is not None:
        allowed = allowed & cp.asarray(mask, bool)
    if causal:
        allowed = allowed & (cp.arange(k.shape[1])[None, :] <= cp.arange(q.shape[1])[:, None] + causal_offset)[None]
    logits = s * cp.matmul(q, cp.swapaxes(k, 1, 2)) - lse[..., None]
    return cp.where(allowed & cp.isfinite(lse)[..., None], cp.exp(logits), 0.0).astype(cp.float32)


# -- OpenCL (tests) ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def opencl_context():
    """``(context, queue)`` on the first OpenCL device (PoCL's CPU device in the tests)."""
    import pyopencl as cl

    platform = cl.get_platforms()[0]
    ctx = cl.Context(platform.get_devices()[:1])
    return ctx, cl.CommandQueue(ctx)


@functools.lru_cache(maxsize=16)
def _opencl_kernel(defines: tuple):
    import pyopencl as cl

    ctx, _ = opencl_context()
    return cl.Program(ctx, source("flash_fwd", "opencl", dict(defines))).build().flash_fwd


def flash_opencl(q, k, v, mask=None, scale=None, causal=False, causal_offset=0):
    """The same body through OpenCL on NumPy arrays (float32) → NumPy ``(out, lse)``."""
    import pyopencl as cl

    q, k, v = (np.ascontiguousarray(x, dtype=np.float32) for x in (q, k, v))
    m = None if mask is None else _mask3(mask, np)
    plan = launch_plan(q.shape, k.shape, v.shape, None if m is None else m.shape, scale, causal, causal_offset)
    out = np.empty(plan["out_shape"], np.float32)
    lse = np.empty(plan["lse_shape"], np.float32)
    if q.shape[1] == 0 or q.shape[0] == 0:
        return out, lse
    ctx, queue = opencl_context()
    mf = cl.mem_flags

    def buf(a):
        return cl.Buffer(ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=a if a.size else np.zeros(1, a.dtype))

    bo = cl.Buffer(ctx, mf.WRITE_ONLY, out.nbytes or 4)
    bl = cl.Buffer(ctx, mf.WRITE_ONLY, lse.nbytes or 4)
    kern = _opencl_kernel(tuple(plan["defines"].items()))
    gx, gy = plan["grid"]
    kern(queue, (gx * BLOCK_Q, gy), (BLOCK_Q, 1), buf(q), buf(k), buf(v),
         buf(m if m is not None else np.zeros(1, np.uint8)), np.int32(plan["has_mask"]), np.int64(plan["mask_sb"]),
         np.int64(plan["mask_sq"]), np.float32(plan["scale"]), np.int32(plan["causal"]),
         np.int32(plan["causal_offset"]), np.int32(plan["lq"]), np.int32(plan["lk"]), bo, bl)
    cl.enqueue_copy(queue, out, bo)
    cl.enqueue_copy(queue, lse, bl)
    queue.finish()
    return out, lse
