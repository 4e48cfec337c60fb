"""Past one machine, on Dask (``dask.distributed``): exact attention by key shards merged by
log-sum-exp (:func:`attend`), task grids of independent cells (:func:`run_grid`, :func:`bench_grid`;
:func:`workbench.report.evaluate` with ``client=``), on a given client, a configured scheduler
(``WORKBENCH_DASK_SCHEDULER``) or an embedded LocalCluster (:mod:`~workbench.distributed.cluster`).

Mechanisms say whether they can run this way (:attr:`workbench.Mechanism.not_shardable`: None, or
the reason they cannot); :func:`shardable` lists those that can.
"""
from workbench.distributed.attend import QUERY_BLOCK, attend
from workbench.distributed.cluster import ENV, connect, get_client, local_client
from workbench.distributed.grid import GridFailure, bench_grid, configured_client, run_grid
from workbench.distributed.merge import merge_all, merge_partials


def shardable() -> dict:
    """``name → None`` (runs by key shards) or the reason it cannot, for every registered mechanism."""
    import workbench

    return {name: info.cls.not_shardable for name, info in workbench.registry.items()}


__all__ = ["attend", "QUERY_BLOCK", "ENV", "connect", "get_client", "local_client", "merge_partials", "merge_all",
           "shardable", "GridFailure", "bench_grid", "configured_client", "run_grid"]
