"""Compute kernels for attention: NumPy references, Numba CPU kernels, CuPy GPU kernels.

Every public function takes 3-D arrays ``(B, L, d)`` (the caller flattens leading
dimensions), returns arrays of the same library, and has a ``backend`` argument:
``"auto" | "numpy" | "numba" | "cupy"``. Each entry module declares what its kernel serves on
every backend (:mod:`kernels.capabilities`: dtypes, masks, causal, graph, array library, and in
words why not); ``"auto"`` picks the first of CuPy, Numba, NumPy that serves the call, and an
explicit backend that cannot serve it raises :class:`BackendError` naming the reasons. This package imports nothing from ``workbench``; importing it
imports neither Numba nor CuPy (the Numba kernels load, and compile or load from the
on-disk cache, on first use).
"""
from kernels.capabilities import Inputs, Kernel, KernelSpec
from kernels.dispatch import BACKENDS, BackendError, resolve_backend
from kernels.dense import attention, attention_weights
from kernels.flash import flash_attention, flash_weights
from kernels.linear import linear_attention
from kernels.local_global import local_global_attention
from kernels.reference.local_global import local_global_mask

__all__ = [
    "BACKENDS",
    "BackendError",
    "resolve_backend",
    "Inputs",
    "Kernel",
    "KernelSpec",
    "attention",
    "attention_weights",
    "flash_attention",
    "flash_weights",
    "linear_attention",
    "local_global_attention",
    "local_global_mask",
]
