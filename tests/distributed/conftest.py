"""The cluster of the distributed tests: a LocalCluster of 2 worker processes talking TCP on loopback
(one per test module, so that a module that kills a worker leaves the others theirs)."""
from __future__ import annotations

import pytest

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, protocol="tcp",
                                       host="127.0.0.1", dashboard_address=None)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()
