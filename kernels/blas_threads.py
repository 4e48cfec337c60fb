"""One BLAS thread for the length of a ``with`` block, safe when several threads do it at once.

OpenBLAS's thread count is process-wide. A plain save/limit/restore per call (threadpoolctl's
``limit``) breaks when two threads overlap: A saves 2 and limits, B saves 1, A restores 2, B
restores 1, and BLAS stays on one thread for good. Here the count is reference-counted per
library: the first holder saves and limits it, the last one out restores it.

Two scopes: ``"numba"`` limits only the BLAS library that Numba's ``np.dot`` calls (SciPy's, through
``scipy.linalg.cython_blas``), which the parallel kernels call from every worker thread; NumPy's
own BLAS (``@`` outside the kernels) keeps its threads. ``"all"`` limits every BLAS library, for
code that alternates NumPy products with parallel kernels or runs products too small for threads.
Where NumPy and SciPy share one library (conda builds), both scopes limit that library.

OpenBLAS (pthreads) is set through its own ``openblas_set_num_threads``: threadpoolctl ≥ 3.6 lets
one "controlling" Python thread change OpenBLAS's count and silently ignores the others, so a
limit taken from the dashboard's worker threads would often do nothing (measured: after the main
thread set the count once, a worker thread's ``set_num_threads(1)`` left it at 2). The reference
count here is what coordinates the threads. Other libraries go through threadpoolctl.
"""
from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import threading
from collections.abc import Callable, Iterator

_LOCK = threading.Lock()
#: ``filepath → [holders, saved thread count]`` of every library currently limited.
_HELD: dict[str, list[int]] = {}
_LIBS: dict[str, list] = {}
_SETTERS: dict[str, Callable[[int], object]] = {}


def _setter(lib) -> Callable[[int], object]:
    """``set(n)`` for one threadpoolctl library controller (see the module docstring)."""
    if lib.internal_api == "openblas" and getattr(lib, "threading_layer", None) == "pthreads":
        dll = ctypes.CDLL(lib.filepath)
        for prefix, suffix in itertools.product(("", "scipy_"), ("", "64_", "_64")):
            fn = getattr(dll, f"{prefix}openblas_set_num_threads{suffix}", None)
            if fn is not None:
                fn.argtypes, fn.restype = [ctypes.c_int], None
                return fn
    return lib.set_num_threads


def _libraries(scope: str) -> list:
    """threadpoolctl controllers of the BLAS libraries of ``scope`` (found once)."""
    if scope not in ("numba", "all"):
        raise ValueError(f"scope: expected 'numba' or 'all', got {scope!r}")
    with _LOCK:
        if not _LIBS:
            import scipy
            import scipy.linalg.cython_blas  # noqa: F401  (load the BLAS Numba calls)
            from threadpoolctl import ThreadpoolController

            blas = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
            root = os.path.dirname(os.path.realpath(scipy.__file__))
            under = (root + os.sep, root + ".libs" + os.sep)  # scipy/.dylibs (macOS), scipy.libs (Linux, Windows)
            _LIBS["all"] = blas
            _SETTERS.update((c.filepath, _setter(c)) for c in blas)
            _LIBS["numba"] = [c for c in blas if os.path.realpath(c.filepath).startswith(under)] or blas
        return _LIBS[scope]


@contextlib.contextmanager
def one_blas_thread(scope: str = "all") -> Iterator[None]:
    """BLAS on one thread inside the block (``scope`` ``"numba"`` or ``"all"``, see the module)."""
    libs = _libraries(scope)
    with _LOCK:
        for lib in libs:
            held = _HELD.setdefault(lib.filepath, [0, 0])
            if held[0] == 0:
                held[1] = lib.num_threads
                if held[1] != 1:
                    _SETTERS[lib.filepath](1)
            held[0] += 1
    try:
        yield
    finally:
        with _LOCK:
            for lib in libs:
                held = _HELD[lib.filepath]
                held[0] -= 1
                if held[0] == 0 and held[1] != 1:
                    _SETTERS[lib.filepath](held[1])
