"""Backend selection shared by every kernel entry point, decided by the capability declarations
(:mod:`kernels.capabilities`)."""
from __future__ import annotations

from typing import Iterable

from kernels.capabilities import BACKENDS, BackendError, Inputs, array_library, as_kernels, select

__all__ = ["BACKENDS", "BackendError", "array_module", "is_cupy_array", "resolve_backend"]


def is_cupy_array(x) -> bool:
    """True for a CuPy array, without importing CuPy when the caller has not."""
    return array_library(x) == "cupy"


def array_module(x):
    """The array module of ``x``: CuPy for a CuPy array (never imported otherwise), else NumPy."""
    if is_cupy_array(x):
        import cupy

        return cupy
    import numpy

    return numpy


def resolve_backend(backend: str, arrays: Iterable, supported, *, mask=None, causal=False, graph=False) -> str:
    """Pick the backend for a call on ``arrays`` (with ``mask``, ``causal``, ``graph`` as the call has them).

    ``supported``: a :class:`~kernels.capabilities.Kernel`, several (all must serve), or a map
    ``backend → None | reason`` (a mechanism's ``backends``). ``"auto"`` takes the first backend of
    :data:`~kernels.capabilities.PREFERENCE` (CuPy, Numba, NumPy) whose reasons are empty; an
    explicit backend that cannot serve raises :class:`BackendError` listing its reasons in words.
    """
    return select(backend, Inputs.of(arrays, mask=mask, causal=causal, graph=graph), as_kernels(supported))
