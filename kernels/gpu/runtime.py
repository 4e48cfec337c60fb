"""Compiled kernel bodies, cached per (body, compile-time constants), and the OpenCL plumbing the tests use.

:func:`cuda_function` builds a body with the CUDA prelude as a :class:`cupy.RawModule` (on a GPU);
:func:`opencl_kernel` builds it with the OpenCL prelude on the first OpenCL device (PoCL on the
CPU in the tests), :func:`opencl_input` copies a NumPy array into a read-only buffer. One place
for what every launcher (:mod:`kernels.gpu.flash`, :mod:`kernels.gpu.linear`,
:mod:`kernels.gpu.diffusion`) needs.
"""
from __future__ import annotations

import functools

import numpy as np

from kernels.gpu.sources import source

__all__ = ["MAX_GRID_Y", "batch_slices", "cuda_function", "opencl_context", "opencl_kernel", "opencl_input"]

#: CUDA's limit on a grid's y (and z) dimension, where the launchers put the batch.
MAX_GRID_Y = 65_535


def batch_slices(batch: int, step: int = MAX_GRID_Y):
    """``slice``s of at most ``step`` batch items covering ``0 … batch − 1`` (one launch each on CUDA)."""
    return [slice(b0, min(b0 + step, batch)) for b0 in range(0, max(batch, 1), step)]


@functools.lru_cache(maxsize=64)
def _cuda_module(name: str, defines: tuple):
    import cupy as cp

    return cp.RawModule(code=source(name, "cuda", dict(defines)), options=("--std=c++14",))


def cuda_function(name: str, entry: str, defines: dict):
    """Kernel ``entry`` of body ``name`` compiled for CUDA with ``defines`` (cached per body and constants)."""
    return _cuda_module(name, tuple(defines.items())).get_function(entry)


@functools.lru_cache(maxsize=1)
def opencl_context():
    """``(context, queue)`` on the first OpenCL device (PoCL's CPU device in the tests)."""
    import pyopencl as cl

    platform = cl.get_platforms()[0]
    ctx = cl.Context(platform.get_devices()[:1])
    return ctx, cl.CommandQueue(ctx)


@functools.lru_cache(maxsize=64)
def _opencl_kernels(name: str, defines: tuple) -> dict:
    import pyopencl as cl

    ctx, _ = opencl_context()
    prog = cl.Program(ctx, source(name, "opencl", dict(defines))).build()
    # one kernel object per entry point, reused (each retrieval would build a new one)
    return {k.function_name: k for k in prog.all_kernels()}


def opencl_kernel(name: str, entry: str, defines: dict):
    """Kernel ``entry`` of body ``name`` built for OpenCL with ``defines`` (cached per body and constants)."""
    return _opencl_kernels(name, tuple(defines.items()))[entry]


def opencl_input(a: np.ndarray):
    """A read-only OpenCL buffer holding a copy of ``a`` (one element of its dtype when ``a`` is empty)."""
    import pyopencl as cl

    ctx, _ = opencl_context()
    a = np.ascontiguousarray(a)
    return cl.Buffer(ctx, cl.mem_flags.READ_ONLY | cl.mem_flags.COPY_HOST_PTR,
                     hostbuf=a if a.size else np.zeros(1, a.dtype))
