"""Host fallbacks for CuPy calls: a NumPy/Numba function on host copies, its arrays back on the GPU.

Where a GPU kernel does not exist for one form of a call (inspection weights, a per-query top-k
selection, a log-sum-exp the fused kernel does not return), the entry points keep "CuPy in, CuPy
out" by running the host implementation on copies: :func:`via_host`. One place for the copies, so
that each such fallback is visible (grep ``via_host``) and none is written twice.
"""
from __future__ import annotations

__all__ = ["to_host", "via_host"]


def to_host(x):
    """A host copy of a CuPy array or ``cupyx.scipy.sparse`` matrix; anything else unchanged."""
    if type(x).__module__.split(".")[0] in ("cupy", "cupyx"):
        return x.get()
    return x


def _to_device(x):
    import cupy as cp
    import numpy as np

    if isinstance(x, tuple):
        return tuple(_to_device(y) for y in x)
    return cp.asarray(x) if isinstance(x, np.ndarray) else x


def via_host(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with every CuPy array argument copied to the host and, when there was one,
    the NumPy array results (one, or a tuple of them) copied to the GPU. Other arguments and results
    pass unchanged (without CuPy arguments this is the call itself)."""
    from kernels.dispatch import is_cupy_array

    on_gpu = any(is_cupy_array(a) for a in (*args, *kwargs.values()))
    out = fn(*(to_host(a) for a in args), **{k: to_host(v) for k, v in kwargs.items()})
    return _to_device(out) if on_gpu else out
