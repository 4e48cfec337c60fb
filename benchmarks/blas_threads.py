"""Benchmark of the BLAS thread limit around the parallel Numba kernels, one and two calling threads.

Run: ``python -m benchmarks.blas_threads`` (``--calls N`` per job, ``--rounds N``).

The Numba flash kernel (float32, (4, 1024, 64), no mask) runs under either limiter, in alternating
rounds in one process: ``threadpoolctl`` — ``ThreadpoolController().limit(limits=1,
user_api="blas")`` per call, as the kernels did before — or :func:`kernels.blas_threads.one_blas_thread`
(reference-counted, OpenBLAS set directly). The calls run on a pool of two long-lived worker
threads, as the dashboard's background jobs do. Reported per limiter: the wall time of two jobs
of ``--calls`` calls each at once, then the median call with one job at a time, and the ratios
old/new. threadpoolctl ≥ 3.6 lets one "controlling"
thread change OpenBLAS's count and ignores the others, so overlapping calls can run their
parallel kernel on multi-threaded BLAS.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from concurrent.futures import ThreadPoolExecutor


def _limiters() -> dict:
    from threadpoolctl import ThreadpoolController

    import kernels.numba._common as common

    ctl = ThreadpoolController()

    @contextlib.contextmanager
    def threadpoolctl_limit():
        with ctl.limit(limits=1, user_api="blas"):
            yield

    return {"threadpoolctl": threadpoolctl_limit, "blas_threads": common.single_threaded_blas}


def _measure(limit, q, calls: int, pool) -> tuple[float, float]:
    """``(median call s with one job at a time, wall s of two jobs × calls at once)`` on ``pool``
    (two long-lived worker threads, as the dashboard's), ``limit`` around the kernel."""
    import kernels
    import kernels.numba._common as common
    import kernels.numba.flash as flash

    def call():
        t0 = time.perf_counter()
        kernels.flash_attention(q, q, q, backend="numba")
        return time.perf_counter() - t0

    def job():
        for _ in range(calls):
            call()

    flash.single_threaded_blas = limit
    try:
        t0 = time.perf_counter()
        for f in [pool.submit(job) for _ in range(2)]:
            f.result()
        two = time.perf_counter() - t0
        one = statistics.median(pool.submit(call).result() for _ in range(calls))
        return one, two
    finally:
        flash.single_threaded_blas = common.single_threaded_blas


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=15, help="calls per job and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per limiter")
    args = parser.parse_args(argv)

    import numpy as np

    import kernels

    q = np.random.default_rng(0).standard_normal((4, 1024, 64), dtype=np.float32)
    kernels.flash_attention(q, q, q, backend="numba")  # compile / load the cache
    limiters = _limiters()
    results: dict = {name: ([], []) for name in limiters}
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in range(args.rounds):
            for name, limit in limiters.items():
                one, two = _measure(limit, q, args.calls, pool)
                results[name][0].append(one)
                results[name][1].append(two)
    rows = {name: (statistics.median(a), statistics.median(b)) for name, (a, b) in results.items()}
    print(f"flash (4, 1024, 64) float32, Numba; {args.rounds} rounds, {args.calls} calls per job")
    print("| limiter | one job at a time: median call | two jobs at once: wall |")
    print("|---|---|---|")
    for name, (one, two) in rows.items():
        print(f"| {name} | {one * 1e3:.1f} ms | {two:.2f} s |")
    old, new = rows["threadpoolctl"], rows["blas_threads"]
    print(f"ratio threadpoolctl / blas_threads: one job {old[0] / new[0]:.2f}x, two jobs at once {old[1] / new[1]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
