"""``cupy.RawModule`` and ``cupy.RawKernel`` of the stand-in: launches checked as CuPy and CUDA check them
(cupy/cuda/function.pyx), then run through OpenCL on PoCL as the same kernel body.

The project's CUDA sources are ``kernels.gpu.sources.source(body, "cuda", defines)``: one ``#define NAME
VALUE`` line per compile-time constant, the CUDA prelude, then the body. :func:`body_of` reads the body
and the constants back (and checks that they rebuild the source exactly); :func:`run_opencl` builds
the same body with the OpenCL prelude (``kernels.gpu.runtime.opencl_kernel``), copies the CuPy array
arguments into buffers, launches ``grid × block`` work-items and copies back the arrays the kernel
changed. ``runner`` is what a launch calls after its checks (the unit tests replace it).
"""
from __future__ import annotations

import functools
import numbers
import re

import numpy as np

from . import StandInError, _fail, ndarray
from .cuda import H200

_DEFINE = re.compile(r"#define (\w+) (-?\d+)")


@functools.lru_cache(maxsize=128)
def body_of(code: str) -> tuple[str, tuple]:
    """``(body, ((NAME, value), …))`` of a CUDA source that ``kernels.gpu.sources.source`` wrote."""
    from kernels.gpu.sources import PRELUDES, bodies, source

    head, prelude, _ = code.partition(PRELUDES["cuda"].read_text())
    if not prelude:
        raise StandInError("RawModule: the code is not a kernels/gpu body behind the CUDA prelude")
    defines = {}
    for line in head.splitlines():
        match = _DEFINE.fullmatch(line)
        if match is None:
            raise StandInError(f"RawModule: before the CUDA prelude, expected '#define NAME integer', got {line!r}")
        defines[match[1]] = int(match[2])
    for name in bodies():
        if source(name, "cuda", defines) == code:
            return name, tuple(defines.items())
    raise StandInError(f"RawModule: no kernels/gpu body gives this code with the constants {defines}")


def run_opencl(code: str, entry: str, grid: tuple, block: tuple, args, shared_mem: int) -> None:
    """Run kernel ``entry`` of CUDA source ``code`` as its body through OpenCL, on the stand-in arrays in ``args``."""
    import pyopencl as cl

    from kernels.gpu.runtime import opencl_context, opencl_kernel

    name, defines = body_of(code)
    defines = dict(defines)
    if name == "flash_mma":  # emulating the warp (OpenCL), mma.cuh needs scratch, which a CUDA plan has none of
        from kernels.gpu.flash import mma_layout

        layout = mma_layout(defines["HEAD_DIM"], defines["VALUE_DIM"], defines["WARPS"], defines["BK"], "opencl")
        defines = {key: layout.get(key, value) for key, value in defines.items()}
        shared_mem = layout["shared_bytes"]
    kernel = opencl_kernel(name, entry, defines)
    ctx, queue = opencl_context()
    copies, cl_args = [], []
    for a in args:
        if isinstance(a, ndarray):
            host = a._a.copy(order="C")
            buffer = cl.Buffer(ctx, cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR,
                               hostbuf=host if host.size else np.zeros(1, host.dtype))
            copies.append((a, buffer, host))
            cl_args.append(buffer)
        elif isinstance(a, np.ndarray):  # one element, by value
            cl_args.append(a.reshape(-1)[0])
        else:
            cl_args.append(a)
    if kernel.num_args == len(cl_args) + 1:  # DYN_SHARED_ARG: local memory sized at launch, the last parameter
        cl_args.append(cl.LocalMemory(max(int(shared_mem), 4)))
    grid, block = (tuple(grid) + (1, 1))[:3], (tuple(block) + (1, 1))[:3]
    kernel(queue, tuple(g * b for g, b in zip(grid, block)), block, *cl_args)
    for a, buffer, host in copies:
        if host.size:
            after = np.empty_like(host)
            cl.enqueue_copy(queue, after, buffer)
            # only the arrays the kernel wrote: an input copied back could undo a write into the same memory
            if not np.array_equal(after.view(np.uint8), host.view(np.uint8)):
                a._a[...] = after
    queue.finish()


#: What a launch calls after its checks: ``runner(code, entry, grid, block, args, shared_mem)``.
runner = run_opencl


class RawKernel:
    """Kernel ``name`` of a :class:`RawModule` (one per name, like a CUfunction: attributes persist)."""

    def __init__(self, module: "RawModule", name: str):
        self.module, self.name = module, name
        self._max_dynamic_shared = 0

    @property
    def max_dynamic_shared_size_bytes(self) -> int:
        return self._max_dynamic_shared

    @max_dynamic_shared_size_bytes.setter
    def max_dynamic_shared_size_bytes(self, size):
        if not isinstance(size, numbers.Integral):
            _fail(f"RawKernel {self.name}: max_dynamic_shared_size_bytes takes an int, got {type(size).__name__}")
        if size > H200["MaxSharedMemoryPerBlockOptin"]:
            _fail(f"RawKernel {self.name}: max_dynamic_shared_size_bytes={size} is more than the device's opt-in "
                  f"{H200['MaxSharedMemoryPerBlockOptin']} (cudaErrorInvalidValue)")
        self._max_dynamic_shared = int(size)

    def __call__(self, grid, block, args, *, shared_mem=0, stream=None, enable_cooperative_groups=False):
        # cupy/cuda/function.pyx: Function.__call__(tuple grid, tuple block, args, size_t shared_mem=0, stream=None, …)
        where = f"RawKernel {self.name}"
        if not isinstance(grid, tuple) or not isinstance(block, tuple):
            _fail(f"{where}: grid and block must be tuples, got {type(grid).__name__} and {type(block).__name__}")
        sizes_ok = 1 <= len(grid) <= 3 and 1 <= len(block) <= 3
        if not sizes_ok or not all(isinstance(x, numbers.Integral) for x in grid + block):
            _fail(f"{where}: grid {grid} and block {block} must be one to three integers each")
        grid3, block3 = (grid + (1, 1))[:3], (block + (1, 1))[:3]
        limits = [H200[f"MaxGridDim{axis}"] for axis in "XYZ"]
        if any(g > top for g, top in zip(grid3, limits)):
            _fail(f"{where}: grid {grid} past the device's {tuple(limits)} (CUDA_ERROR_INVALID_VALUE)")
        if any(b > H200[f"MaxBlockDim{axis}"] for b, axis in zip(block3, "XYZ")) or (
                block3[0] * block3[1] * block3[2] > H200["MaxThreadsPerBlock"]):
            _fail(f"{where}: block {block} past the device's {H200['MaxThreadsPerBlock']} threads")
        if not isinstance(shared_mem, numbers.Integral) or shared_mem < 0:
            _fail(f"{where}: shared_mem must be a non-negative int, got {shared_mem!r}")
        if shared_mem > H200["MaxSharedMemoryPerBlock"] and shared_mem > self._max_dynamic_shared:
            _fail(f"{where}: shared_mem={shared_mem} over 48 KiB without max_dynamic_shared_size_bytes "
                  f"(now {self._max_dynamic_shared})")
        for i, a in enumerate(args):
            if isinstance(a, ndarray):
                if not a._a.flags.c_contiguous:
                    _fail(f"{where}: argument {i} is a non-contiguous CuPy array (the kernel reads raw memory)")
            elif isinstance(a, np.ndarray):
                if a.size != 1:
                    _fail(f"{where}: argument {i} is a numpy.ndarray of shape {a.shape}; only numpy.ndarrays of size "
                          f"one pass by value (function.pyx)")
            elif isinstance(a, (bool, int, float)):
                _fail(f"{where}: argument {i} is a Python {type(a).__name__} ({a!r}), passed as a 64-bit value: use "
                      f"a NumPy scalar of the kernel parameter's type")
            elif a is not None and not isinstance(a, np.generic):  # None: a null pointer
                _fail(f"{where}: argument {i} of type {type(a).__name__} is not a kernel argument")
        runner(self.module.code, self.name, grid, block, args, int(shared_mem))


class RawModule:
    """A module of CUDA source ``code`` (compiled here only when a kernel of it is launched, through OpenCL)."""

    def __init__(self, *, code=None, path=None, options=(), backend="nvrtc", translate_cucomplex=False,
                 enable_cooperative_groups=False, name_expressions=None, jitify=False):
        if not isinstance(options, tuple):
            _fail(f"RawModule: options must be a tuple, got {type(options).__name__}")
        if code is None:
            _fail("RawModule: the stand-in runs source code only (code=...), not path=")
        self.code = code
        self._kernels = {}

    def get_function(self, name: str) -> RawKernel:
        if name not in self._kernels:
            self._kernels[name] = RawKernel(self, name)
        return self._kernels[name]
