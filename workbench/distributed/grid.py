"""Task grids on Dask: independent cells (mechanism × parameters × data set) run as tasks and
gathered into one table, in the order of the cells.

:func:`run_grid` is the engine (one Dask task per cell, progress as tasks finish, cancel between
them); :func:`bench_grid` times mechanisms × parameters × lengths with
:func:`workbench.benchmarking.bench_lengths`; :func:`workbench.report.evaluate` and
:func:`workbench.report.evaluate_grid` score candidates × data sets this way when given a client.
:func:`configured_client` is the cluster the dashboard uses: only one that is configured
(``WORKBENCH_DASK_SCHEDULER``), never an embedded one started behind the user's back.

Timings measured on a cluster are per worker: each worker runs one task at a time with its own
threads (:func:`~workbench.distributed.cluster.worker_env`), so cells measured side by side on
one machine share its memory bandwidth — compare rows of one grid with each other, not with a
single-process run.
"""
from __future__ import annotations

import os
import threading
from typing import Callable, Sequence

from workbench.distributed.cluster import ENV, connect, get_client
from workbench.errors import ConfigurationError

__all__ = ["GridFailure", "configured_client", "run_grid", "bench_grid"]

_CONFIGURED: dict = {}  # address -> client, one connection per configured scheduler


class GridFailure:
    """What a cell's task raised (its row then carries ``error``): the exception's type and message."""

    def __init__(self, exc: BaseException):
        self.kind, self.message = type(exc).__name__, str(exc)

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


def configured_client():
    """The client of ``$WORKBENCH_DASK_SCHEDULER`` (connected once), or None when it is not set.

    ConfigurationError naming the address when the scheduler does not answer."""
    address = os.environ.get(ENV)
    if not address:
        return None
    c = _CONFIGURED.get(address)
    if c is None or c.status not in ("running", "connecting"):
        c = _CONFIGURED[address] = connect(address)
    return c


def run_grid(fn: Callable, cells: Sequence[dict], *, client=None, scheduler: str | None = None,
             progress: Callable[[int, int], None] | None = None, cancel: threading.Event | None = None) -> list:
    """``[fn(**cell) for cell in cells]``, each cell one Dask task, in the order of ``cells``.

    ``client``/``scheduler``: see :func:`~workbench.distributed.cluster.get_client`. ``progress(done,
    total)`` is called as tasks finish; setting ``cancel`` cancels the tasks not yet finished
    (their entries are None). A task that raises gives a :class:`GridFailure` in its place, so one
    bad cell never loses the others. ``fn`` and the cells must pickle (a module-level function).
    """
    from distributed import as_completed

    cells = list(cells)
    if not all(isinstance(c, dict) for c in cells):
        raise ConfigurationError("cells: expected a list of dicts of keyword arguments")
    if not cells:
        return []
    cl = get_client(client, scheduler)
    futures = [cl.submit(fn, pure=False, **c) for c in cells]
    index = {f.key: i for i, f in enumerate(futures)}
    out: list = [None] * len(cells)
    done = 0
    ac = as_completed(futures)
    for fut in ac:
        if cancel is not None and cancel.is_set():
            cl.cancel([f for f in futures if not f.done()])
            break
        i = index[fut.key]
        try:
            out[i] = fut.result()
        except Exception as exc:  # the cell's failure, kept in its row
            out[i] = GridFailure(exc)
        done += 1
        if progress is not None:
            progress(done, len(cells))
    return out


def _bench_cell(name: str, params: dict, length: int, d: int, repeats: int, seed: int, graph_k: int) -> dict:
    from workbench.benchmarking import bench_lengths

    return bench_lengths(name, params, [length], d=d, repeats=repeats, seed=seed, graph_k=graph_k)[0]


def bench_grid(mechanisms: Sequence, lengths: Sequence[int], d: int = 64, *, repeats: int = 3, seed: int = 0,
               graph_k: int = 8, client=None, scheduler: str | None = None,
               progress: Callable[[int, int], None] | None = None,
               cancel: threading.Event | None = None) -> list[dict]:
    """:func:`~workbench.benchmarking.bench_lengths` rows for every mechanism × length, one task each.

    ``mechanisms``: registry names or ``(name, params)`` pairs. Rows in the order mechanisms ×
    lengths, each with ``params``; a cancelled cell is left out, a failed one has ``error``.
    """
    pairs = [(m, {}) if isinstance(m, str) else (m[0], dict(m[1])) for m in mechanisms]
    cells = [{"name": n, "params": p, "length": int(L), "d": int(d), "repeats": int(repeats), "seed": int(seed),
              "graph_k": int(graph_k)} for n, p in pairs for L in lengths]
    results = run_grid(_bench_cell, cells, client=client, scheduler=scheduler, progress=progress, cancel=cancel)
    rows = []
    for cell, r in zip(cells, results):
        if r is None:
            continue
        if isinstance(r, GridFailure):
            r = {"mechanism": cell["name"], "length": cell["length"], "d": cell["d"], "seconds": None, "times": [],
                 "peak_mib": None, "backend": "", "error": str(r)}
        rows.append({**r, "params": cell["params"]})
    return rows
