"""Launch ``flash_fwd.cu`` (softmax attention by tiles, float32) on CuPy arrays or through OpenCL.

One block of :data:`BLOCK_Q` threads per (query tile, batch), key tiles of :data:`BLOCK_K`; the
head dimensions and the score are compile-time constants (one compiled module per variant,
cached). The mask is passed as uint8 with a stride per axis (0 where it broadcasts).

* :func:`flash_cupy` / :func:`flash_opencl`: ``(out (B, Lq, dv), lse (B, Lq))`` of
  ``softmax(scale · q kᵀ) v``, equal to :func:`kernels.reference.flash.flash_attention`;
* :func:`poincare_partial`: the Poincaré-ball score with given values (hyperbolic attention's
  aggregation terms), on either API (:mod:`kernels.gpu.hyperbolic`).

The OpenCL path runs the same body on PoCL (the tests' backend, never offered to users).
"""
from __future__ import annotations

import math

import numpy as np

from kernels.gpu.runtime import cuda_function, opencl_context, opencl_input, opencl_kernel

#: Query rows per block (one thread each) and keys per tile; the largest head dimensions served
#: (values one wider: the Einstein midpoint's extra column).
BLOCK_Q, BLOCK_K, MAX_HEAD_DIM, MAX_VALUE_DIM = 32, 16, 128, 129
#: The scores of the body (its ``SCORE`` constant).
SCORES = {"dot": 0, "poincare": 1, "sliced_wasserstein": 2}

__all__ = ["BLOCK_Q", "BLOCK_K", "MAX_HEAD_DIM", "MAX_VALUE_DIM", "SCORES", "flash_cupy", "flash_opencl",
           "launch_plan", "poincare_partial", "sw_partial", "weights_cupy"]


def launch_plan(q_shape, k_shape, v_shape, mask_shape, scale, causal, causal_offset, score: str = "dot") -> dict:
    """Grid, block, compile-time constants and scalar arguments of one call (shapes only)."""
    B, lq, d = q_shape
    lk, dv = k_shape[1], v_shape[2]
    if d > MAX_HEAD_DIM or dv > MAX_VALUE_DIM:
        raise ValueError(f"q, v: the GPU kernel takes head dimensions up to {MAX_HEAD_DIM} (values "
                         f"{MAX_VALUE_DIM}), got d={d}, dv={dv}")
    if mask_shape is None:
        sb = sq = 0
    else:
        if len(mask_shape) != 3 or mask_shape[0] not in (1, B) or mask_shape[1] not in (1, lq) or mask_shape[2] != lk:
            raise ValueError(f"mask: expected a shape broadcastable to ({B}, {lq}, {lk}), got {tuple(mask_shape)}")
        sq = lk if mask_shape[1] == lq and lq > 1 else 0
        sb = mask_shape[1] * lk if mask_shape[0] == B and B > 1 else 0
    return {"grid": (max(1, math.ceil(lq / BLOCK_Q)), B), "block": (BLOCK_Q,),
            "defines": {"HEAD_DIM": d, "VALUE_DIM": dv, "BLOCK_Q": BLOCK_Q, "BLOCK_K": BLOCK_K,
                        "SCORE": SCORES[score]},
            "has_mask": mask_shape is not None, "mask_sb": sb, "mask_sq": sq,
            "scale": float(1.0 / math.sqrt(d) if scale is None else scale), "causal": bool(causal),
            "causal_offset": int(causal_offset), "lq": lq, "lk": lk, "out_shape": (B, lq, dv), "lse_shape": (B, lq)}


def _mask3(mask, xp):
    m = xp.asarray(mask)
    while m.ndim < 3:
        m = m[None]
    return xp.ascontiguousarray(m.astype(xp.uint8))


def _scalars(plan: dict) -> list:
    return [np.int32(plan["has_mask"]), np.int64(plan["mask_sb"]), np.int64(plan["mask_sq"]),
            np.float32(plan["scale"]), np.int32(plan["causal"]), np.int32(plan["causal_offset"]),
            np.int32(plan["lq"]), np.int32(plan["lk"])]


# -- CuPy ---------------------------------------------------------------------------------------


def _run_cuda(q, k, v, mask, scale, causal, causal_offset, score="dot", qden=None, kden=None, curv=0.0):
    import cupy as cp

    q, k, v = (cp.ascontiguousarray(x, dtype=cp.float32) for x in (q, k, v))
    m = None if mask is None else _mask3(mask, cp)
    plan = launch_plan(q.shape, k.shape, v.shape, None if m is None else m.shape, scale, causal, causal_offset, score)
    out = cp.empty(plan["out_shape"], cp.float32)
    lse = cp.empty(plan["lse_shape"], cp.float32)
    if q.size == 0 or k.shape[1] == 0:
        out[...] = 0
        lse[...] = -cp.inf
        return out, lse
    one = cp.ones(1, cp.float32)
    fn = cuda_function("flash_fwd", "flash_fwd", plan["defines"])
    fn(plan["grid"], plan["block"],
       (q, k, v, m if m is not None else cp.zeros(1, cp.uint8), *_scalars(plan), out, lse,
        one if qden is None else cp.ascontiguousarray(qden, dtype=cp.float32),
        one if kden is None else cp.ascontiguousarray(kden, dtype=cp.float32), np.float32(curv)))
    return out, lse


def flash_cupy(q, k, v, mask=None, scale=None, causal=False, causal_offset=0):
    """``(out, lse)`` on CuPy arrays ``q (B, Lq, d), k (B, Lk, d), v (B, Lk, dv)``, float32."""
    return _run_cuda(q, k, v, mask, scale, causal, causal_offset)


def weights_cupy(q, k, mask=None, scale=None, causal=False, causal_offset=0):
    """Weights ``exp(scale · q kᵀ − lse)`` on allowed keys (0 elsewhere), ``(B, Lq, Lk)``: the kernel's
    log-sum-exp and one CuPy array expression (for inspection, not the hot path)."""
    import cupy as cp

    q, k = (cp.ascontiguousarray(x, dtype=cp.float32) for x in (q, k))
    s = float(1.0 / math.sqrt(q.shape[-1]) if scale is None else scale)
    _, lse = flash_cupy(q, k, cp.ones(k.shape[:2] + (1,), cp.float32), mask, s, causal, causal_offset)
    allowed = cp.ones((1, q.shape[1], k.shape[1]), bool)
    if mask is not None:
        allowed = allowed & cp.asarray(mask, bool)
    if causal:
        allowed = allowed & (cp.arange(k.shape[1])[None, :] <= cp.arange(q.shape[1])[:, None] + causal_offset)[None]
    logits = s * cp.matmul(q, cp.swapaxes(k, 1, 2)) - lse[..., None]
    return cp.where(allowed & cp.isfinite(lse)[..., None], cp.exp(logits), 0.0).astype(cp.float32)


# -- OpenCL (tests) ------------------------------------------------------------------------------


def _run_opencl(q, k, v, mask, scale, causal, causal_offset, score="dot", qden=None, kden=None, curv=0.0):
    import pyopencl as cl

    q, k, v = (np.ascontiguousarray(x, dtype=np.float32) for x in (q, k, v))
    m = None if mask is None else _mask3(mask, np)
    plan = launch_plan(q.shape, k.shape, v.shape, None if m is None else m.shape, scale, causal, causal_offset, score)
    out = np.zeros(plan["out_shape"], np.float32)
    lse = np.full(plan["lse_shape"], -np.inf, np.float32)
    if q.size == 0 or k.shape[1] == 0:
        return out, lse
    ctx, queue = opencl_context()
    buf = opencl_input
    one = np.ones(1, np.float32)
    bo, bl = cl.Buffer(ctx, cl.mem_flags.WRITE_ONLY, out.nbytes), cl.Buffer(ctx, cl.mem_flags.WRITE_ONLY, lse.nbytes)
    kern = opencl_kernel("flash_fwd", "flash_fwd", plan["defines"])
    gx, gy = plan["grid"]
    kern(queue, (gx * BLOCK_Q, gy), (BLOCK_Q, 1), buf(q), buf(k), buf(v),
         buf(m if m is not None else np.zeros(1, np.uint8)), *_scalars(plan), bo, bl,
         buf(one if qden is None else np.asarray(qden, np.float32)),
         buf(one if kden is None else np.asarray(kden, np.float32)), np.float32(curv))
    cl.enqueue_copy(queue, out, bo)
    cl.enqueue_copy(queue, lse, bl)
    queue.finish()
    return out, lse


def flash_opencl(q, k, v, mask=None, scale=None, causal=False, causal_offset=0):
    """The same body through OpenCL on NumPy arrays (float32) → NumPy ``(out, lse)``."""
    return _run_opencl(q, k, v, mask, scale, causal, causal_offset)


def poincare_partial(api: str, q, k, u, qden, kden, c: float, temperature: float, mask=None):
    """``(r (B, Lq, m), lse (B, Lq))`` of ``softmax_j(−d_c(q_i, k_j)/T)`` over the values ``u (B, Lk, m)``:
    ``q, k`` already in the ball, ``qden, kden`` their ``max(1 − c‖x‖², eps)`` ``(B, L)``; ``api``
    "cuda" (CuPy arrays) or "opencl" (NumPy arrays)."""
    run = _run_cuda if api == "cuda" else _run_opencl
    return run(q, k, u, mask, 1.0 / (math.sqrt(c) * temperature), False, 0, "poincare", qden, kden, c)


def sw_partial(api: str, a, b, v, p: float, temperature: float, mask=None):
    """``(out, lse)`` of ``softmax_j(−‖a_i − b_j‖_p / T) v`` over projected features ``a (B, Lq, P)``,
    ``b (B, Lk, P)`` (sliced-Wasserstein attention's full path); ``api`` "cuda" or "opencl"."""
    run = _run_cuda if api == "cuda" else _run_opencl
    return run(a, b, v, mask, 1.0 / temperature, False, 0, "sliced_wasserstein", None, None, p)
