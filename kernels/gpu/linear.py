"""Launch ``linear_fwd.cu``: linear attention from feature maps, float32, on CuPy arrays or through OpenCL.

Non-causal: ``linear_stats`` (the key statistics ``S = φ(K)ᵀV``, ``z = Σ_j φ(k_j)``) then
``linear_apply``; causal: ``linear_causal``, the prefix form in one pass over the positions. The
feature count and value width are compile-time constants (one module per variant, cached).
Equal to :func:`kernels.reference.linear.linear_attention` (a key-padding mask is applied by
zeroing ``φ(k_j)`` first; general masks are not served here).
"""
from __future__ import annotations

import math

import numpy as np

from kernels.capabilities import BackendError
from kernels.gpu.runtime import MAX_GRID_Y, batch_slices, cuda_function, opencl_context, opencl_input, opencl_kernel

#: Value columns per block (half as many at 1,024 threads: linear_causal's static local memory, THREADS ×
#: (COL_TILE + 1) floats, stays within CUDA's 48 KB); the largest feature count served (one thread per feature).
COL_TILE, MAX_FEATURES = 16, 1024

__all__ = ["COL_TILE", "MAX_FEATURES", "linear_cupy", "linear_opencl", "plan"]


def plan(m: int, dv: int) -> dict:
    """Compile-time constants of a call: ``THREADS`` the power of two ≥ ``m`` (the reduction's width) and
    ``COL_TILE``, the value columns per block."""
    if m > MAX_FEATURES:
        raise BackendError(f"q_feat: the GPU linear kernel takes up to {MAX_FEATURES} features, got {m} "
                           f"(num_features ≤ {MAX_FEATURES} on CuPy arrays)")
    threads = 1 << max(0, math.ceil(math.log2(max(m, COL_TILE))))
    return {"FEATURES": m, "VALUE_DIM": dv, "COL_TILE": COL_TILE if threads <= 512 else COL_TILE // 2,
            "THREADS": threads}


def linear_cupy(q_feat, k_feat, v, causal: bool = False):
    """``(B, Lq, m), (B, Lk, m), (B, Lk, dv)`` CuPy float32 → ``(B, Lq, dv)``."""
    import cupy as cp

    qf, kf, v = (cp.ascontiguousarray(x, dtype=cp.float32) for x in (q_feat, k_feat, v))
    B, lq, m = qf.shape
    lk, dv = kf.shape[1], v.shape[2]
    d = plan(m, dv)
    out = cp.zeros((B, lq, dv), cp.float32)
    if out.size == 0:
        return out
    t, gx = d["THREADS"], math.ceil(dv / d["COL_TILE"])
    for sl in batch_slices(B, MAX_GRID_Y):  # the batch is the grid's y: at most 65,535 items per launch
        nb = sl.stop - sl.start
        if causal:
            cuda_function("linear_fwd", "linear_causal", d)((gx, nb), (t,), (qf[sl], kf[sl], v[sl], np.int32(lq), out[sl]))
            continue
        s = cp.empty((nb, m, dv), cp.float32)
        z = cp.empty((nb, m), cp.float32)
        cuda_function("linear_fwd", "linear_stats", d)((gx, nb), (t,), (kf[sl], v[sl], np.int32(lk), s, z))
        cuda_function("linear_fwd", "linear_apply", d)((math.ceil(lq * dv / t), nb), (t,),
                                                        (qf[sl], s, z, np.int32(lq), out[sl]))
    return out


def linear_opencl(q_feat, k_feat, v, causal: bool = False):
    """The same body through OpenCL on NumPy arrays (the tests' backend)."""
    import pyopencl as cl

    qf, kf, v = (np.ascontiguousarray(x, dtype=np.float32) for x in (q_feat, k_feat, v))
    B, lq, m = qf.shape
    lk, dv = kf.shape[1], v.shape[2]
    d = plan(m, dv)
    out = np.zeros((B, lq, dv), np.float32)
    if out.size == 0:
        return out
    ctx, queue = opencl_context()
    mf = cl.mem_flags
    t = d["THREADS"]
    buf = opencl_input

    def prog(entry):
        return opencl_kernel("linear_fwd", entry, d)

    bo = cl.Buffer(ctx, mf.READ_WRITE, out.nbytes)
    gx = math.ceil(dv / d["COL_TILE"])
    if causal:
        prog("linear_causal")(queue, (gx * t, B), (t, 1), buf(qf), buf(kf), buf(v), np.int32(lq), bo)
    else:
        bs = cl.Buffer(ctx, mf.READ_WRITE, B * m * dv * 4)
        bz = cl.Buffer(ctx, mf.READ_WRITE, B * m * 4)
        prog("linear_stats")(queue, (gx * t, B), (t, 1), buf(kf), buf(v), np.int32(lk), bs, bz)
        ga = math.ceil(lq * dv / t)
        prog("linear_apply")(queue, (ga * t, B), (t, 1), buf(qf), bs, bz, np.int32(lq), bo)
    cl.enqueue_copy(queue, out, bo)
    queue.finish()
    return out
