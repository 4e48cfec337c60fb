"""Launch the flash bodies (softmax attention by tiles, float32) on CuPy arrays or through OpenCL:
``flash_fwd.cu`` ("rows"), ``flash_tiled.cu`` ("tiled", the default) and ``flash_mma.cu`` ("mma",
tensor cores), their scores in ``scores.cuh``.

"rows": one block of :data:`BLOCK_Q` threads per (query tile, batch), key tiles of :data:`BLOCK_K`
("tiled", "mma": :func:`tiled_layout`, :func:`mma_layout`). The head dimensions and the score are
compile-time constants (one compiled module per variant, cached). "rows" and "mma" take heads up to
:data:`MAX_HEAD_DIM`; "tiled" reads wider ones (embeddings of 384–1,024 dimensions) by chunks of
dimensions and of value columns (:func:`head_chunks`, up to :data:`WIDE_HEAD_DIM`). The mask is passed
as uint8 with a stride per axis (0 where it broadcasts).

* :func:`flash_cupy` / :func:`flash_opencl`: ``(out (B, Lq, dv), lse (B, Lq))`` of
  ``softmax(scale · q kᵀ) v``, equal to :func:`kernels.reference.flash.flash_attention`;
* :func:`poincare_partial`: the Poincaré-ball score with given values (hyperbolic attention's
  aggregation terms), on either API (:mod:`kernels.gpu.hyperbolic`);
* :func:`scored_partial`: any score of ``scores.cuh`` with its per-row terms (the Lorentz cascade's
  distance and Busemann heads, :mod:`kernels.gpu.lorentz`).

The OpenCL path runs the same body on PoCL (the tests' backend, never offered to users).
"""
from __future__ import annotations

import functools
import math

import numpy as np

from kernels.gpu.runtime import MAX_GRID_Y, batch_slices, cuda_function, opencl_context, opencl_input, opencl_kernel

#: The largest head dimensions read whole (values one wider: the Einstein midpoint's extra column); "rows"
#: and "mma" take no more.
MAX_HEAD_DIM, MAX_VALUE_DIM = 128, 129
#: The largest head dimensions "tiled" takes (wider ones by chunks, :func:`head_chunks`) — bounds that keep a
#: call's time sane; sentence and image embeddings have 384–1,024.
WIDE_HEAD_DIM, WIDE_VALUE_DIM = 8192, 8193
#: "tiled"'s head dimensions per chunk past MAX_HEAD_DIM.
WIDE_DC = 64
#: ``flash_fwd.cu`` ("rows"): query rows per block (one thread each) and keys per tile.
BLOCK_Q, BLOCK_K = 32, 16
#: ``flash_tiled.cu`` ("tiled"): the block's TY × TX threads; per thread TM query rows × TN keys, the
#: largest TM of TILED_TM whose grid still gives every multiprocessor a block (H200: TM = 8 the fastest
#: at L = 4,096, smaller tiles keep short sequences spread over the chip).
TILED_THREADS, TILED_TM, TILED_TN = (16, 16), (8, 4, 2), 4
#: ``flash_mma.cu`` ("mma", tensor cores, 3×TF32; the dot score only): warps per block (16 query rows
#: each) and keys per tile — 64, or 32 where the head dimensions exceed 64 (local memory).
MMA_WARPS, MMA_BK = 4, (64, 32)
#: The kernel the launchers use unless told otherwise (the faster on the GPU: benchmarks/RESULTS.md).
KERNEL = "tiled"
#: The bodies behind the kernel names.
BODIES = {"rows": "flash_fwd", "tiled": "flash_tiled", "mma": "flash_mma"}
#: The scores of the bodies (their ``SCORE`` constant).
SCORES = {"dot": 0, "poincare": 1, "sliced_wasserstein": 2, "lorentz": 3, "busemann": 4}
#: Local memory a block may use without opting in (CUDA's static limit); "tiled" and "mma" opt in above it,
#: up to the device's limit (``shared_limit``; default SHARED_OPT_IN, the H100/H200's: A100 163 KB, sm_86/89 99 KB).
SHARED_LIMIT, SHARED_OPT_IN = 48 * 1024, 227 * 1024

__all__ = ["BLOCK_Q", "BLOCK_K", "KERNEL", "default_tiles", "MAX_HEAD_DIM", "MAX_VALUE_DIM", "SCORES", "flash_cupy",
           "WIDE_HEAD_DIM", "WIDE_VALUE_DIM", "head_chunks", "flash_opencl", "launch_plan", "mma_layout", "poincare_partial", "scored_partial", "sw_partial", "tiled_layout", "weights_cupy"]


def _equal_chunks(n: int, cap: int) -> int:
    """The size of the fewest equal chunks of at most ``cap`` that cover ``n``."""
    return -(-n // -(-n // cap))


def head_chunks(d: int, dv: int) -> tuple[int, int]:
    """``(DC, VC)`` of "tiled": head dimensions per chunk and value columns per block — the whole head up to
    :data:`MAX_HEAD_DIM` / :data:`MAX_VALUE_DIM`, else the fewest equal chunks within :data:`WIDE_DC`
    (a multiple of 8: whole groups of the key load) and :data:`MAX_VALUE_DIM` (the narrow kernel's registers)."""
    dc = d if d <= MAX_HEAD_DIM else -(-_equal_chunks(d, WIDE_DC) // 8) * 8
    vc = dv if dv <= MAX_VALUE_DIM else _equal_chunks(dv, MAX_VALUE_DIM)
    return dc, vc


def tiled_layout(d: int, dv: int, tm: int, tn: int, dc: int | None = None, vc: int | None = None) -> dict:
    """``flash_tiled.cu``'s compile-time constants: thread layout, head-dimension chunk ``DC`` and value
    columns per block ``VC`` (default :func:`head_chunks`), row strides and the offsets (floats) of its
    local-memory arrays, ``shared_bytes`` and ``value_blocks`` (the layout lives here only: the body reads it)."""
    ty, tx = TILED_THREADS
    dc0, vc0 = head_chunks(d, dv)
    dc, vc = dc0 if dc is None else int(dc), vc0 if vc is None else int(vc)
    if tm < 1 or tn < 1 or tn & (tn - 1):
        raise ValueError(f"tiles: (TM, TN) = ({tm}, {tn}); TN must be a power of two (the key swizzle)")
    if not (1 <= dc <= max(d, 1) and 1 <= vc <= max(dv, 1)):
        raise ValueError(f"tiles: chunks (DC, VC) = ({dc}, {vc}) must lie in 1 … d={d} and 1 … dv={dv}")
    bq, bk, tv = ty * tm, tx * tn, -(-vc // tx)
    # +4: rows stay 16-byte aligned and shift by 4 banks; kT needs none (swizzled), only whole 4-key groups
    qs, ks, vs, ps, rs = bq + 4, max(bk, 4), tx * tv + 4, bk + 4, tx + 1
    off_k = dc * qs
    off_v = off_k + dc * ks
    off_p = off_v + bk * vs
    off_r = off_p + bq * ps
    off_m = off_r + bq * rs
    total = off_m + 3 * bq
    return {"TY": ty, "TX": tx, "TM": tm, "TN": tn, "TV": tv, "DC": dc, "VC": vc, "SWZ": min(8, ks // 4) - 1,
            "QS": qs, "KS": ks, "VS": vs, "PS": ps, "RS": rs,
            "OFF_K": off_k, "OFF_V": off_v, "OFF_P": off_p, "OFF_R": off_r, "OFF_M": off_m,
            "OFF_L": off_m + bq, "OFF_A": off_m + 2 * bq, "shared_bytes": 4 * total, "rows": bq,
            "value_blocks": -(-dv // vc)}


def mma_layout(d: int, dv: int, warps: int, bk: int, api: str) -> dict:
    """``flash_mma.cu``'s compile-time constants and ``shared_bytes``: row strides padded to 4 mod 32 (the
    fragment reads' banks), offsets (floats) of the query, key and value tiles and the warps' scratch."""
    if warps < 1 or bk < 8 or bk % 8:
        raise ValueError(f"tiles: (warps, keys per tile) = ({warps}, {bk}); keys per tile a multiple of 8")

    def pad(x):
        return x + (4 - x) % 32

    dk8, dn8 = -(-d // 8) * 8, -(-dv // 8) * 8
    qs = ks = pad(dk8)
    vs = pad(dn8)
    off_k = 16 * warps * qs
    off_v = off_k + bk * ks
    off_s = off_v + bk * vs
    # where mma.cuh emulates the warp (OpenCL): each warp's operands of one product, big and small, + a quad buffer
    scratch = 0 if api == "cuda" else max(2 * 16 * dk8 + 2 * dk8 * bk, 2 * 16 * bk + 2 * bk * dn8) + 32
    return {"WARPS": warps, "BK": bk, "QS": qs, "KS": ks, "VS": vs, "OFF_K": off_k, "OFF_V": off_v, "OFF_S": off_s,
            "WB_SCRATCH": scratch, "shared_bytes": 4 * (off_s + warps * scratch), "rows": 16 * warps}


def default_tiles(lq: int, batch: int, units: int | None) -> tuple[int, int]:
    """``(TM, TN)`` of "tiled" for ``batch`` × ``lq`` queries (``batch`` counts the blocks along the values,
    too) on ``units`` multiprocessors (None: the largest)."""
    for tm in TILED_TM:
        if units is None or math.ceil(lq / (TILED_THREADS[0] * tm)) * batch >= units:
            return tm, TILED_TN
    return TILED_TM[-1], TILED_TN


def _fitting_tiles(d: int, dv: int, lq: int, batch: int, units: int | None, limit: int) -> dict:
    """The "tiled" layout of :func:`default_tiles` or, where its block exceeds ``limit`` bytes of local memory
    (GPUs before Hopper), the first that fits: fewer query rows, then narrower head-dimension chunks, then
    fewer value columns per block (equal chunks)."""
    dc0, vc0 = head_chunks(d, dv)
    tm0, tn = default_tiles(lq, batch * -(-dv // vc0), units)
    first = None
    for cap in sorted({vc0, *(c for c in (64, 32) if c < vc0)}, reverse=True):
        vc = _equal_chunks(dv, cap)
        for dc in sorted({dc0, *(c for c in (64, 32, 16) if c < dc0)}, reverse=True):
            for tm in (t for t in TILED_TM if t <= tm0):
                lay = tiled_layout(d, dv, tm, tn, dc, vc)
                first = first or lay
                if lay["shared_bytes"] <= limit:
                    return lay
    return first  # nothing fits: the caller refuses it with the sizes


def launch_plan(q_shape, k_shape, v_shape, mask_shape, scale, causal, causal_offset, score: str = "dot",
                tiles: tuple[int, int] | None = None, kernel: str | None = None, units: int | None = None,
                api: str = "cuda", shared_limit: int | None = None) -> dict:
    """Body, grid, block, local memory, compile-time constants and scalar arguments of one call (shapes
    only). ``kernel`` "rows" (``flash_fwd.cu``), "tiled" (``flash_tiled.cu``) or "mma" (``flash_mma.cu``,
    the dot score only), default :data:`KERNEL`; ``tiles`` (tuning): "rows" ``(query rows per block, keys
    per tile)``, "tiled" ``(TM, TN)`` or ``(TM, TN, DC, VC)`` (chunks: :func:`head_chunks`), "mma"
    ``(warps, keys per tile)``; "tiled" by default takes :func:`default_tiles` for ``units``
    multiprocessors, stepped down by :func:`_fitting_tiles` until the block fits ``shared_limit`` bytes of
    local memory (default :data:`SHARED_OPT_IN`). ``api`` "cuda" or "opencl": where ``mma.cuh`` emulates
    the warp (OpenCL), "mma" gets its scratch, which the GPU's limit does not count."""
    top = SHARED_OPT_IN if shared_limit is None else int(shared_limit)
    kernel = KERNEL if kernel is None else kernel
    if kernel not in BODIES:
        raise ValueError(f"kernel: expected one of {sorted(BODIES)}, got {kernel!r}")
    if kernel == "mma" and score != "dot":
        raise ValueError(f"kernel: 'mma' computes the dot score only, got score {score!r}")
    B, lq, d = q_shape
    lk, dv = k_shape[1], v_shape[2]
    top_d, top_dv = (WIDE_HEAD_DIM, WIDE_VALUE_DIM) if kernel == "tiled" else (MAX_HEAD_DIM, MAX_VALUE_DIM)
    if d > top_d or dv > top_dv:
        raise ValueError(f"q, v: the GPU kernel {kernel!r} takes head dimensions up to {top_d} (values "
                         f"{top_dv}), got d={d}, dv={dv}")
    if mask_shape is None:
        sb = sq = 0
    else:
        if len(mask_shape) != 3 or mask_shape[0] not in (1, B) or mask_shape[1] not in (1, lq) or mask_shape[2] != lk:
            raise ValueError(f"mask: expected a shape broadcastable to ({B}, {lq}, {lk}), got {tuple(mask_shape)}")
        sq = lk if mask_shape[1] == lq and lq > 1 else 0
        sb = mask_shape[1] * lk if mask_shape[0] == B and B > 1 else 0
    zblocks = 1
    if kernel == "rows":
        bq, bk = (BLOCK_Q, BLOCK_K) if tiles is None else (int(tiles[0]), int(tiles[1]))
        defines = {"HEAD_DIM": d, "VALUE_DIM": dv, "BLOCK_Q": bq, "BLOCK_K": bk, "SCORE": SCORES[score]}
        shared, threads, dynamic = 4 * (bq * (d + 1) + bk * (d + dv)), bq, 0
        limit = SHARED_LIMIT
    elif kernel == "mma":
        warps, bk = (MMA_WARPS, MMA_BK[0] if max(d, dv) <= 64 else MMA_BK[1]) if tiles is None else tiles
        lay = mma_layout(d, dv, int(warps), int(bk), api)
        # the limit is the GPU's: the emulation's scratch (OpenCL, tests only) does not count
        bq, shared, threads, dynamic = lay["rows"], 4 * lay["OFF_S"], 32 * lay["WARPS"], lay["shared_bytes"]
        defines = {"HEAD_DIM": d, "VALUE_DIM": dv, **{key: val for key, val in lay.items()
                                                       if key not in ("shared_bytes", "rows")}}
        limit = top
    else:
        lay = tiled_layout(d, dv, *tiles) if tiles is not None else _fitting_tiles(d, dv, lq, B, units, top)
        bq, shared, threads, dynamic = lay["rows"], lay["shared_bytes"], lay["TX"] * lay["TY"], lay["shared_bytes"]
        defines = {"HEAD_DIM": d, "VALUE_DIM": dv, "SCORE": SCORES[score],
                   **{key: val for key, val in lay.items() if key not in ("shared_bytes", "rows", "value_blocks")}}
        limit, zblocks = top, lay["value_blocks"]
    if shared > limit:
        raise ValueError(f"tiles: {tiles} needs {shared:,} bytes of local memory per block for d={d}, "
                         f"dv={dv} (at most {limit:,})")
    return {"kernel": kernel, "body": BODIES[kernel],
            "grid": (max(1, math.ceil(lq / bq)), B, zblocks), "block": (threads,), "shared_bytes": dynamic,
            "defines": defines, "has_mask": mask_shape is not None, "mask_sb": sb, "mask_sq": sq,
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


def _device(cp) -> tuple[int, int]:
    """``(multiprocessors, local memory a block may opt in to)`` of the current device."""
    return _device_limits(cp.cuda.Device().id)


@functools.lru_cache(maxsize=16)
def _device_limits(device: int) -> tuple[int, int]:
    import cupy as cp

    attrs = cp.cuda.Device(device).attributes
    return int(attrs["MultiProcessorCount"]), int(attrs.get("MaxSharedMemoryPerBlockOptin", SHARED_OPT_IN))


def _rows_of(x, sl, batch: int):
    """``x``'s batch items ``sl`` where ``x`` has one per batch item (a leading axis of ``batch``), else ``x``."""
    return x[sl] if x is not None and x.ndim >= 1 and x.shape[0] == batch and batch > 1 else x


def _run_cuda(q, k, v, mask, scale, causal, causal_offset, score="dot", qden=None, kden=None, curv=0.0, tiles=None,
              kernel=None):
    import cupy as cp

    q, k, v = (cp.ascontiguousarray(x, dtype=cp.float32) for x in (q, k, v))
    m = None if mask is None else _mask3(mask, cp)
    units, optin = _device(cp)
    plan = launch_plan(q.shape, k.shape, v.shape, None if m is None else m.shape, scale, causal, causal_offset, score,
                       tiles, kernel, units, shared_limit=optin)
    out = cp.empty(plan["out_shape"], cp.float32)
    lse = cp.empty(plan["lse_shape"], cp.float32)
    if q.size == 0 or k.shape[1] == 0:
        out[...] = 0
        lse[...] = -cp.inf
        return out, lse
    one = cp.ones(1, cp.float32)
    qden = one if qden is None else cp.ascontiguousarray(qden, dtype=cp.float32)
    kden = one if kden is None else cp.ascontiguousarray(kden, dtype=cp.float32)
    m = cp.zeros(1, cp.uint8) if m is None else m
    fn = cuda_function(plan["body"], plan["body"], plan["defines"])
    if plan["shared_bytes"] > SHARED_LIMIT and fn.max_dynamic_shared_size_bytes < plan["shared_bytes"]:
        fn.max_dynamic_shared_size_bytes = plan["shared_bytes"]  # opt in above the static limit
    B = q.shape[0]
    gx, _, gz = plan["grid"]
    for sl in batch_slices(B, MAX_GRID_Y):  # the batch is the grid's y: at most 65,535 items per launch
        fn((gx, sl.stop - sl.start, gz), plan["block"],
           (q[sl], k[sl], v[sl], _rows_of(m, sl, B), *_scalars(plan), out[sl], lse[sl], _rows_of(qden, sl, B),
            _rows_of(kden, sl, B), np.float32(curv)),
           shared_mem=plan["shared_bytes"])
    return out, lse


def flash_cupy(q, k, v, mask=None, scale=None, causal=False, causal_offset=0, tiles=None, kernel=None):
    """``(out, lse)`` on CuPy arrays ``q (B, Lq, d), k (B, Lk, d), v (B, Lk, dv)``, float32."""
    return _run_cuda(q, k, v, mask, scale, causal, causal_offset, tiles=tiles, kernel=kernel)


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


def _run_opencl(q, k, v, mask, scale, causal, causal_offset, score="dot", qden=None, kden=None, curv=0.0, tiles=None,
                kernel=None):
    import pyopencl as cl

    q, k, v = (np.ascontiguousarray(x, dtype=np.float32) for x in (q, k, v))
    m = None if mask is None else _mask3(mask, np)
    plan = launch_plan(q.shape, k.shape, v.shape, None if m is None else m.shape, scale, causal, causal_offset, score,
                       tiles, kernel, api="opencl")
    out = np.zeros(plan["out_shape"], np.float32)
    lse = np.full(plan["lse_shape"], -np.inf, np.float32)
    if q.size == 0 or k.shape[1] == 0:
        return out, lse
    ctx, queue = opencl_context()
    buf = opencl_input
    one = np.ones(1, np.float32)
    bo, bl = cl.Buffer(ctx, cl.mem_flags.WRITE_ONLY, out.nbytes), cl.Buffer(ctx, cl.mem_flags.WRITE_ONLY, lse.nbytes)
    kern = opencl_kernel(plan["body"], plan["body"], plan["defines"])
    gx, gy, gz = plan["grid"]
    threads = plan["block"][0]
    dynamic = [cl.LocalMemory(plan["shared_bytes"])] if plan["kernel"] != "rows" else []
    kern(queue, (gx * threads, gy, gz), (threads, 1, 1), buf(q), buf(k), buf(v),
         buf(m if m is not None else np.zeros(1, np.uint8)), *_scalars(plan), bo, bl,
         buf(one if qden is None else np.asarray(qden, np.float32)),
         buf(one if kden is None else np.asarray(kden, np.float32)), np.float32(curv), *dynamic)
    cl.enqueue_copy(queue, out, bo)
    cl.enqueue_copy(queue, lse, bl)
    queue.finish()
    return out, lse


def flash_opencl(q, k, v, mask=None, scale=None, causal=False, causal_offset=0, tiles=None, kernel=None):
    """The same body through OpenCL on NumPy arrays (float32) → NumPy ``(out, lse)``."""
    return _run_opencl(q, k, v, mask, scale, causal, causal_offset, tiles=tiles, kernel=kernel)


def poincare_partial(api: str, q, k, u, qden, kden, c: float, temperature: float, mask=None, kernel=None):
    """``(r (B, Lq, m), lse (B, Lq))`` of ``softmax_j(−d_c(q_i, k_j)/T)`` over the values ``u (B, Lk, m)``:
    ``q, k`` already in the ball, ``qden, kden`` their ``max(1 − c‖x‖², eps)`` ``(B, L)``; ``api``
    "cuda" (CuPy arrays) or "opencl" (NumPy arrays)."""
    run = _run_cuda if api == "cuda" else _run_opencl
    return run(q, k, u, mask, 1.0 / (math.sqrt(c) * temperature), False, 0, "poincare", qden, kden, c, kernel=kernel)


def scored_partial(api: str, score: str, q, k, v, qden, kden, curv: float, scale: float, mask=None, kernel=None):
    """``(out, lse)`` of ``softmax_j(s_ij) v`` for score ``score`` of ``scores.cuh`` (a key of :data:`SCORES`)
    with its per-row terms ``qden, kden`` and parameter ``curv``; ``api`` "cuda" or "opencl"."""
    run = _run_cuda if api == "cuda" else _run_opencl
    return run(q, k, v, mask, scale, False, 0, score, qden, kden, curv, kernel=kernel)


def sw_partial(api: str, a, b, v, p: float, temperature: float, mask=None):
    """``(out, lse)`` of ``softmax_j(−‖a_i − b_j‖_p / T) v`` over projected features ``a (B, Lq, P)``,
    ``b (B, Lk, P)`` (sliced-Wasserstein attention's full path); ``api`` "cuda" or "opencl"."""
    run = _run_cuda if api == "cuda" else _run_opencl
    return run(a, b, v, mask, 1.0 / temperature, False, 0, "sliced_wasserstein", None, None, p)
