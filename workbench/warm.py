"""Fill Numba's on-disk cache for the registered mechanisms, so a first call is not a compile.

Numba compiles a kernel at its first call and caches the machine code next to its source; later
processes load it in well under a second. ``warm()`` runs each mechanism (forward pass and
attention weights, through :func:`workbench.compare.run`, the path the dashboard takes) once on
a small float32 data set, which compiles and caches the kernels of exactly those signatures.
``make serve`` and ``make test`` run it once after installing (``python -m workbench warm``).
"""
from __future__ import annotations

import multiprocessing
import time
from typing import Callable, Sequence

import numpy as np

from workbench.registry import list_mechanisms


def warm(names: Sequence[str] | None = None, *, jobs: int = 1,
         progress: Callable[[str, float, str | None], None] | None = None) -> dict[str, float]:
    """Run each of ``names`` (default: every registered mechanism) once on 64 random float32
    points of dimension 16, in ``jobs`` processes; returns ``{name: seconds}``.
    ``progress(name, seconds, error)`` is called after each; an error (a mechanism refusing the
    toy data) is reported, never raised.
    """
    import kernels.numba  # noqa: F401  (drops a stale cache here, before the worker processes load it)

    names = list(names or list_mechanisms())
    seconds: dict[str, float] = {}
    if jobs > 1 and len(names) > 1:
        with multiprocessing.get_context("spawn").Pool(min(jobs, len(names))) as pool:
            results = pool.imap_unordered(warm_one, names)
            for name, sec, error in results:
                seconds[name] = sec
                if progress is not None:
                    progress(name, sec, error)
        return seconds
    for name in names:
        _, seconds[name], error = warm_one(name)
        if progress is not None:
            progress(name, seconds[name], error)
    return seconds


def warm_one(name: str) -> tuple[str, float, str | None]:
    """``(name, seconds, error or None)`` of one warming call (a picklable unit for the pool)."""
    from workbench import compare

    x = np.random.default_rng(0).standard_normal((64, 16)).astype(np.float32)
    x /= 2 * np.linalg.norm(x, axis=1, keepdims=True)  # inside the unit ball: valid for every geometry
    t0 = time.perf_counter()
    res = compare.run(name, {}, x, x, x, warm=False)
    return name, time.perf_counter() - t0, None if res.error is None else str(res.error)
