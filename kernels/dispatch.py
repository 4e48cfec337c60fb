"""Backend selection shared by every kernel entry point."""
from __future__ import annotations

import sys
from typing import Iterable

BACKENDS = ("auto", "numpy", "numba", "cupy")


class BackendError(ValueError):
    """A backend was asked for that cannot serve this call; the message says why."""


def is_cupy_array(x) -> bool:
    """True for a CuPy array, without importing CuPy when the caller has not."""
    cp = sys.modules.get("cupy")
    return cp is not None and isinstance(x, cp.ndarray)


def resolve_backend(backend: str, arrays: Iterable, supported: dict[str, str | None]) -> str:
    """Pick the backend for ``arrays``.

    ``supported`` maps backend name to ``None`` (available) or a reason why not.
    ``"auto"`` chooses ``"cupy"`` for CuPy arrays and ``"numba"`` (else ``"numpy"``)
    for NumPy arrays.
    """
    if backend not in BACKENDS:
        raise BackendError(f"backend must be one of {BACKENDS}, got {backend!r}")
    on_gpu = any(is_cupy_array(a) for a in arrays if a is not None)
    if backend == "auto":
        if on_gpu:
            backend = "cupy"
        else:
            backend = "numba" if supported.get("numba", "absent") is None else "numpy"
    reason = supported.get(backend, "no such kernel")
    if reason is not None:
        raise BackendError(f"backend {backend!r} cannot serve this kernel: {reason}")
    if on_gpu and backend != "cupy":
        raise BackendError(
            f"backend {backend!r} needs NumPy arrays, got CuPy arrays; use backend='cupy' or 'auto'"
        )
    if backend == "cupy" and not on_gpu:
        raise BackendError("backend 'cupy' needs CuPy arrays, got NumPy arrays")
    return backend
