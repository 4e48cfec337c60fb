"""Which Dask cluster the workbench uses: a given client, a configured scheduler, or an embedded one.

* ``client=`` given: that :class:`distributed.Client`.
* ``WORKBENCH_DASK_SCHEDULER=tcp://host:8786`` (or ``scheduler=``): that cluster. Start one on
  several machines with ``dask scheduler`` on one host and ``dask worker tcp://host:8786
  --nworkers auto --nthreads 1`` on each (one task per worker process: a task's Numba kernel uses
  the process's threads itself, and two kernels in threads of one process would contend).
* Otherwise an embedded :class:`distributed.LocalCluster` of worker processes, one per core
  (one task at a time each, its Numba and BLAS threads limited so the workers together use the
  cores once), created once per process.

A scheduler that does not answer within ``timeout`` seconds raises ConfigurationError naming it.
"""
from __future__ import annotations

import os

from workbench.errors import ConfigurationError

ENV = "WORKBENCH_DASK_SCHEDULER"
#: Seconds to wait for a configured scheduler before giving up.
CONNECT_TIMEOUT_S = 10.0

_LOCAL = None  # (cluster, client) of the embedded cluster, made on first use


def local_client(n_workers: int | None = None):
    """The embedded LocalCluster's client (worker processes over TCP on loopback), made once."""
    global _LOCAL
    from distributed import Client, LocalCluster

    if _LOCAL is None or _LOCAL[1].status not in ("running", "connecting"):
        cores = max(1, os.cpu_count() or 1)
        n = n_workers or cores
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, protocol="tcp",
                               host="127.0.0.1", dashboard_address=None, env=worker_env(max(1, cores // n)))
        _LOCAL = (cluster, Client(cluster))
    return _LOCAL[1]


def worker_env(threads: int) -> dict:
    """Environment of a worker process whose kernels may use ``threads`` threads: Numba's and the
    BLAS pools sized so that workers sharing a machine do not oversubscribe its cores."""
    t = str(int(threads))
    return {"NUMBA_NUM_THREADS": t, "OMP_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": t, "MKL_NUM_THREADS": t}


def connect(scheduler: str, timeout: float = CONNECT_TIMEOUT_S):
    """A client of the scheduler at ``scheduler`` (``tcp://host:port``); ConfigurationError if it
    does not answer within ``timeout`` seconds."""
    from distributed import Client

    if not isinstance(scheduler, str) or "://" not in scheduler:
        raise ConfigurationError(f"scheduler: expected an address like tcp://host:8786, got {scheduler!r}")
    try:
        return Client(scheduler, timeout=f"{float(timeout)}s")
    except (OSError, TimeoutError) as exc:
        raise ConfigurationError(f"scheduler: {scheduler} did not answer within {timeout:g} s ({type(exc).__name__}); "
                                 f"is `dask scheduler` running there? (set by {ENV} or scheduler=)") from None


def get_client(client=None, scheduler: str | None = None):
    """The client to use: ``client``, else ``scheduler`` or ``$WORKBENCH_DASK_SCHEDULER``, else the
    embedded cluster."""
    if client is not None:
        if not hasattr(client, "compute") or not hasattr(client, "scheduler_info"):
            raise ConfigurationError(f"client: expected a distributed.Client, got {type(client).__name__}")
        return client
    address = scheduler or os.environ.get(ENV)
    if address:
        return connect(address)
    return local_client()


__all__ = ["ENV", "CONNECT_TIMEOUT_S", "connect", "get_client", "local_client", "worker_env"]
