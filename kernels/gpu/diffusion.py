"""Launch ``csr_step.cu``: explicit-Euler heat steps ``x ← x − h·L x`` on a CSR Laplacian, float32.

:func:`euler_opencl` runs the body through OpenCL (the tests); :func:`euler_cupy` on CuPy arrays,
with ``L`` a ``cupyx.scipy.sparse.csr_matrix`` or a SciPy CSR matrix (moved to the GPU once). The
step size follows the reference (:func:`kernels.reference.diffusion.euler_steps`,
``h ≤ stable_step(L)``), so the GPU diffuses exactly as :func:`kernels.reference.diffusion.heat`
with ``integrator="euler"`` does, in float32. The diffusion mechanism builds its graph and
Laplacian on the host; wiring this step into it is the next step (its CuPy column says so).
"""
from __future__ import annotations

import math

import numpy as np

from kernels.gpu.runtime import cuda_function, opencl_context, opencl_input, opencl_kernel

THREADS = 128

__all__ = ["THREADS", "euler_cupy", "euler_opencl", "steps_for"]


def steps_for(L, dt: float, num_steps: int) -> tuple[int, float]:
    """``(number of steps, h)`` of the reference's Euler scheme over ``dt``."""
    from kernels.reference.diffusion import euler_steps, stable_step

    n = euler_steps(float(dt), int(num_steps), stable_step(L))
    return n, float(dt) / n


def _csr(L):
    import scipy.sparse as sp

    m = sp.csr_matrix(L)
    m.sort_indices()
    return (np.ascontiguousarray(m.indptr, np.int32), np.ascontiguousarray(m.indices, np.int32),
            np.ascontiguousarray(m.data, np.float32))


def euler_opencl(L, x, dt: float, num_steps: int = 5) -> np.ndarray:
    """``x(dt)`` by the reference's Euler steps, each one run of the body through OpenCL: ``(n, c)`` float32."""
    import pyopencl as cl

    x = np.ascontiguousarray(x, np.float32)
    n, cols = x.shape
    steps, h = steps_for(L, dt, num_steps)
    indptr, indices, data = _csr(L)
    ctx, queue = opencl_context()
    mf = cl.mem_flags
    bi, bj, bd = opencl_input(indptr), opencl_input(indices), opencl_input(data)
    cur = cl.Buffer(ctx, mf.READ_WRITE | mf.COPY_HOST_PTR, hostbuf=x)
    nxt = cl.Buffer(ctx, mf.READ_WRITE, x.nbytes)
    kern = opencl_kernel("csr_step", "csr_step", {"COLS": cols, "THREADS": THREADS})
    blocks = math.ceil(n * cols / THREADS)
    for _ in range(steps if dt > 0 else 0):
        kern(queue, (blocks * THREADS,), (THREADS,), bi, bj, bd, cur, np.float32(h), np.int32(n), nxt)
        cur, nxt = nxt, cur
    out = np.empty_like(x)
    cl.enqueue_copy(queue, out, cur)
    queue.finish()
    return out


def euler_cupy(L, x, dt: float, num_steps: int = 5):
    """The same on the GPU: ``x`` a CuPy ``(n, c)`` array → CuPy float32."""
    import cupy as cp

    x = cp.ascontiguousarray(x, dtype=cp.float32)
    n, cols = x.shape
    host = L.get() if hasattr(L, "get") else L  # a cupyx matrix: its step size is read on the host
    steps, h = steps_for(host, dt, num_steps)
    indptr, indices, data = (cp.asarray(a) for a in _csr(host))
    fn = cuda_function("csr_step", "csr_step", {"COLS": cols, "THREADS": THREADS})
    cur, nxt = x.copy(), cp.empty_like(x)
    blocks = math.ceil(n * cols / THREADS)
    for _ in range(steps if dt > 0 else 0):
        fn((blocks,), (THREADS,), (indptr, indices, data, cur, np.float32(h), np.int32(n), nxt))
        cur, nxt = nxt, cur
    return cur
