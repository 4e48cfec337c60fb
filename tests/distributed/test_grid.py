"""Task grids on a LocalCluster of 2 worker processes over TCP: run_grid, bench_grid, evaluate(client=)
and evaluate_grid gather the same table as one process, keep failures in their rows, and cancel."""
from __future__ import annotations

import threading
import time

import pytest

from workbench.data.demos import load_demo
from workbench.distributed import GridFailure, bench_grid, configured_client, run_grid
from workbench.errors import ConfigurationError
from workbench.report import evaluate, evaluate_grid, grid_table

distributed = pytest.importorskip("distributed")


def _square_or_fail(x: int, delay: float = 0.0) -> int:
    time.sleep(delay)
    if x == 3:
        raise ValueError("three is refused")
    return x * x


def test_run_grid_keeps_the_cells_order_and_failures(client):
    seen = []
    got = run_grid(_square_or_fail, [{"x": i} for i in range(6)], client=client,
                   progress=lambda done, total: seen.append((done, total)))
    assert got[:3] == [0, 1, 4] and got[4:] == [16, 25]
    assert isinstance(got[3], GridFailure) and "three is refused" in str(got[3])
    assert seen[-1] == (6, 6) and len(seen) == 6
    assert run_grid(_square_or_fail, [], client=client) == []
    with pytest.raises(ConfigurationError, match="cells"):
        run_grid(_square_or_fail, [1, 2], client=client)


def test_run_grid_cancel_drops_the_pending_cells(client):
    cancel = threading.Event()
    got = run_grid(_square_or_fail, [{"x": i, "delay": 0.4} for i in (0, 1, 2, 4, 5, 6, 7, 8)], client=client,
                   progress=lambda done, total: cancel.set(), cancel=cancel)
    assert 1 <= sum(r is not None for r in got) < 8
    assert any(r is None for r in got)


def test_evaluate_on_the_cluster_equals_one_process(client):
    ds = load_demo("python_stdlib")
    want = evaluate(ds.x, ds.labels, sample=300)
    progress = []
    got = evaluate(ds.x, ds.labels, sample=300, client=client, progress=lambda i, n: progress.append((i, n)))
    assert [r["choice"] for r in got.table()] == [r["choice"] for r in want.table()]
    for a, b in zip(got.rows, want.rows):
        assert a["error"] == b["error"]
        assert a["score"] == pytest.approx(b["score"], abs=1e-9) if b["score"] is not None else a["score"] is None
    assert got.best == want.best and got.recommended == want.recommended
    assert progress[-1] == (len(got.rows) - 1, len(got.rows) - 1)


def test_evaluate_grid_joins_data_sets_into_one_table(client):
    a, b = load_demo("python_stdlib"), load_demo("clusters", n=400)
    evs = evaluate_grid({"stdlib": (a.x, a.labels), "clusters": b.x}, sample=200, client=client)
    assert set(evs) == {"stdlib", "clusters"}
    assert evs["stdlib"].measure == "knn_accuracy" and evs["clusters"].measure == "denoising_recall"
    rows = grid_table(evs)
    assert {r["dataset"] for r in rows} == {"stdlib", "clusters"}
    alone = evaluate(b.x, sample=200)
    for x, y in zip(evs["clusters"].rows, alone.rows):
        assert x["choice"] == y["choice"]
        assert x["score"] == pytest.approx(y["score"], abs=1e-9) if y["score"] is not None else x["score"] is None


def test_bench_grid_times_every_cell(client):
    rows = bench_grid(["scaled_dot_product", ("hyperbolic", {"c": 0.5}), ("local_global", {"window": 8})],
                      [64, 200], d=16, repeats=2, client=client)
    assert [(r["mechanism"], r["length"]) for r in rows] == [
        (n, L) for n in ("scaled_dot_product", "hyperbolic", "local_global") for L in (64, 200)]
    assert all(r["error"] is None and r["seconds"] > 0 and r["peak_mib"] is not None for r in rows)
    assert rows[2]["params"] == {"c": 0.5}


def test_the_dashboard_uses_a_cluster_only_when_one_is_configured(monkeypatch, client):
    import workbench.distributed.grid as grid

    monkeypatch.setattr(grid, "_CONFIGURED", {})
    monkeypatch.delenv("WORKBENCH_DASK_SCHEDULER", raising=False)
    assert configured_client() is None
    monkeypatch.setenv("WORKBENCH_DASK_SCHEDULER", client.scheduler.address)
    c = configured_client()
    try:
        assert c is not None and c.scheduler.address == client.scheduler.address
        assert configured_client() is c  # connected once
    finally:
        c.close()
