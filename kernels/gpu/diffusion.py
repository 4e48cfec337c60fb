"""Diffusion attention on the GPU: heat steps ``x ← x − h·L x`` by ``csr_step.cu`` on a CSR Laplacian,
then the flash body with the diffused keys. Float32.

The maths is the reference's (:mod:`kernels.reference.diffusion`): by linearity
``e^{−tL}(s·K qᵀ) = s·(e^{−tL}K) qᵀ``, so the ``d`` key features are diffused once per time and the
attention runs on the diffused keys (as the Numba path does). :func:`heat` visits the times in
increasing order, each from the previous one, with the reference's Euler scheme
(:func:`kernels.reference.diffusion.euler_steps`, ``h ≤ stable_step(L)``; the same cost check), the
CSR matrix uploaded once; ``integrator="expm"`` has no GPU form (SciPy's ``expm_multiply``): its
``O(d·nnz(L)·t‖L‖₁)`` products run on the host and the diffused keys move to the GPU. The Laplacian is a
SciPy matrix or a dense array (the mechanism builds the key graph on the host).

``api`` is ``"cuda"`` (CuPy arrays in and out) or ``"opencl"`` (NumPy arrays: the tests run the same
body and the same steps through PoCL).
"""
from __future__ import annotations

import math

import numpy as np

from kernels.gpu.host import to_host
from kernels.gpu.runtime import cuda_function, opencl_context, opencl_input, opencl_kernel
from kernels.reference import diffusion as _ref

THREADS = 128

__all__ = ["THREADS", "attention", "euler_cupy", "euler_opencl", "heat", "steps_for"]


def steps_for(L, dt: float, num_steps: int) -> tuple[int, float]:
    """``(number of steps, h)`` of the reference's Euler scheme over ``dt``."""
    n = _ref.euler_steps(float(dt), int(num_steps), _ref.stable_step(L))
    return n, float(dt) / n


def _csr(L):
    import scipy.sparse as sp

    m = sp.csr_matrix(L)
    m.sort_indices()
    return (np.ascontiguousarray(m.indptr, np.int32), np.ascontiguousarray(m.indices, np.int32),
            np.ascontiguousarray(m.data, np.float32))


class _Stepper:
    """The CSR matrix on the device once; :meth:`run` takes ``steps`` Euler steps of size ``h``."""

    def __init__(self, api: str, L):
        self.api = api
        self.csr = _csr(L)
        if api == "cuda":
            import cupy as cp

            self.dev = [cp.asarray(a) for a in self.csr]
        else:
            self.dev = [opencl_input(a) for a in self.csr]

    def run(self, x, steps: int, h: float):
        n, cols = x.shape
        blocks = math.ceil(n * cols / THREADS)
        defines = {"COLS": cols, "THREADS": THREADS}
        if self.api == "cuda":
            import cupy as cp

            fn = cuda_function("csr_step", "csr_step", defines)
            cur, nxt = cp.ascontiguousarray(x, dtype=cp.float32).copy(), cp.empty(x.shape, cp.float32)
            for _ in range(steps):
                fn((blocks,), (THREADS,), (*self.dev, cur, np.float32(h), np.int32(n), nxt))
                cur, nxt = nxt, cur
            return cur
        import pyopencl as cl

        x = np.ascontiguousarray(x, np.float32)
        ctx, queue = opencl_context()
        cur = cl.Buffer(ctx, cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR, hostbuf=x)
        nxt = cl.Buffer(ctx, cl.mem_flags.READ_WRITE, x.nbytes)
        kern = opencl_kernel("csr_step", "csr_step", defines)
        for _ in range(steps):
            kern(queue, (blocks * THREADS,), (THREADS,), *self.dev, cur, np.float32(h), np.int32(n), nxt)
            cur, nxt = nxt, cur
        out = np.empty_like(x)
        cl.enqueue_copy(queue, out, cur)
        queue.finish()
        return out


def euler_opencl(L, x, dt: float, num_steps: int = 5) -> np.ndarray:
    """``x(dt)`` by the reference's Euler steps, each one run of the body through OpenCL: ``(n, c)`` float32."""
    steps, h = steps_for(L, dt, num_steps)
    return _Stepper("opencl", L).run(x, steps if dt > 0 else 0, h)


def euler_cupy(L, x, dt: float, num_steps: int = 5):
    """The same on the GPU: ``x`` a CuPy ``(n, c)`` array → CuPy float32 (``L`` SciPy, dense or cupyx)."""
    host = to_host(L)  # its step size and CSR are built on the host
    steps, h = steps_for(host, dt, num_steps)
    return _Stepper("cuda", host).run(x, steps if dt > 0 else 0, h)


def _xp(api: str):
    if api == "cuda":
        import cupy

        return cupy
    return np


def heat(api: str, L, x, times, integrator: str = "euler", num_steps: int = 5):
    """``x(t_s) = e^{−t_s L} x`` for each time, ``(S, n, c)`` float32 on ``api``'s arrays (see the module doc)."""
    xp = _xp(api)
    L = to_host(L)  # its step size and CSR are built on the host
    times = np.asarray(times, np.float64).reshape(-1)
    if integrator == "expm":  # no GPU form: SciPy on the host, the result to the device
        return xp.asarray(_ref.heat(L, np.asarray(to_host(x)), times, "expm", int(num_steps)).astype(np.float32))
    h_max = _ref.stable_step(L)
    _ref.check_cost(L, times, "euler", int(num_steps), h_max)
    stepper = _Stepper(api, L)
    cur, prev = xp.asarray(x, dtype=xp.float32), 0.0
    out = [None] * times.size
    for s in np.argsort(times, kind="stable"):
        dt = float(times[s]) - prev
        if dt > 0:
            n = _ref.euler_steps(dt, int(num_steps), h_max)
            cur = stepper.run(cur, n, dt / n)
            prev = float(times[s])
        out[s] = cur
    return xp.stack(out)


def attention(api: str, q, k, v, L, times, scale: float, temperature: float, integrator: str = "euler",
              num_steps: int = 5, multiscale: str = "mean"):
    """``softmax_j((e^{−t_s L} s·K qᵀ)_j / T) V`` per time, combined as the reference does: ``q (Lq, d),
    k (Lk, d), v (Lk, dv) → (Lq, dv)`` (``(Lq, S·dv)`` for ``"concat"``) float32."""
    from kernels.gpu.flash import flash_cupy, flash_opencl

    run = flash_cupy if api == "cuda" else flash_opencl
    kt = heat(api, L, k, times, integrator, num_steps)
    s = float(scale) / float(temperature)
    outs = [run(q[None], kt[i][None], v[None], scale=s)[0][0] for i in range(kt.shape[0])]
    if len(outs) == 1:
        return outs[0]
    xp = _xp(api)
    return _ref.combine(xp.stack(outs).astype(xp.float64), multiscale).astype(xp.float32)
