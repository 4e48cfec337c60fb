"""Scale benchmark: exact attention sharded on a Dask LocalCluster against the single-process kernel.

Run: ``python -m benchmarks.scale`` (``--length L``, ``--dim d``, ``--workers N``, ``--shards S``,
``--append PATH`` to add the result to a Markdown file such as benchmarks/RESULTS.md).

Both sides compute ``flash(q, k, v)`` with ``Lq = Lk = L`` in float32 on the same cores: the
single-process Numba kernel with all of this machine's threads, and
:func:`workbench.distributed.attend` on a LocalCluster of ``N`` worker processes over TCP (each
worker's Numba threads = cores / N, so the cluster uses the cores once). Each side is warmed up on
a small input first (Numba compiles or loads its cache in each process); times are one call each,
the median of ``--repeats``. Memory per worker is the growth of its peak RSS during the sharded run
(``resource.getrusage``), the memory the peer column reports is the single process's growth.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import numpy as np


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(length: int, dim: int, workers: int, shards: int, repeats: int, query_block: int) -> dict:
    import distributed

    import workbench
    from workbench.distributed import attend
    from workbench.distributed.cluster import worker_env

    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((length, dim), dtype=np.float32) for _ in range(3))
    flash = workbench.make("flash")
    small = (q[:256], k[:256], v[:256])
    flash(*small)
    base = _peak_mib()
    single = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        want = flash(q, k, v)
        single.append(time.perf_counter() - t0)
    single_mib = _peak_mib() - base

    cores = os.cpu_count() or 1
    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, protocol="tcp",
                                       host="127.0.0.1", dashboard_address=None,
                                       env=worker_env(max(1, cores // workers)))
    client = distributed.Client(cluster)
    try:
        attend("flash", *small, client=client, key_shards=workers)  # compile or load the cache in every worker
        before = client.run(_peak_mib)
        sharded = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            got = attend("flash", q, k, v, client=client, key_shards=shards, query_block=query_block)
            sharded.append(time.perf_counter() - t0)
        after = client.run(_peak_mib)
    finally:
        client.close()
        cluster.close()
    per_worker = [after[w] - before[w] for w in after if w in before]
    return {"length": length, "dim": dim, "workers": workers, "shards": shards, "query_block": query_block,
            "cores": cores, "single_s": statistics.median(single), "sharded_s": statistics.median(sharded),
            "throughput_ratio": statistics.median(single) / statistics.median(sharded),
            "single_extra_mib": single_mib, "worker_extra_mib": per_worker,
            "max_abs_diff": float(np.abs(got - want).max())}


def markdown(r: dict) -> str:
    workers = ", ".join(f"{m:.0f}" for m in r["worker_extra_mib"])
    return "\n".join([
        f"\n### Sharded exact attention (`python -m benchmarks.scale --length {r['length']}`, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n",
        "| L = Lq = Lk | d | workers × shards (query block) | single-process flash s | sharded s | "
        "throughput ratio (single / sharded) | extra MiB per worker | single-process extra MiB | max abs diff |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {r['length']:,} | {r['dim']} | {r['workers']} × {r['shards']} ({r['query_block']}) | {r['single_s']:.2f} | "
        f"{r['sharded_s']:.2f} | {r['throughput_ratio']:.2f} | {workers} | {r['single_extra_mib']:.0f} | "
        f"{r['max_abs_diff']:.1e} |",
        f"\n{r['cores']} cores; each worker's Numba/BLAS threads = cores / workers.\n"])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--length", type=int, default=131_072)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--query-block", type=int, default=16_384)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--append", metavar="PATH")
    a = ap.parse_args(argv)
    r = run(a.length, a.dim, a.workers, a.shards, a.repeats, a.query_block)
    text = markdown(r)
    print(text)
    if a.append:
        with open(a.append, "a", encoding="utf-8") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
