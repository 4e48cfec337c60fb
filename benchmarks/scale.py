"""Scale benchmarks: sharded attention on a Dask LocalCluster, and the report at a million keys.

Run: ``python -m benchmarks.scale`` (``--length L``, ``--dim d``, ``--workers N``, ``--shards S``,
``--append PATH`` to add the result to a Markdown file such as benchmarks/RESULTS.md).

``python -m benchmarks.scale --report`` (``--n``, ``--subset``, ``--seeds``): ``analyze_keys`` on
``n`` real-derived 384-d unit keys (:func:`real_derived`) read from a memory-mapped ``.npy`` in a
fresh process (time and peak RSS), and, for each seed, its recommendation against the exact
report's (``sample=None``) on a ``subset``-key random subset.

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

from workbench.benchmarking import print_and_append


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


def real_derived(n: int, seed: int = 0, out=None) -> np.ndarray:
    """``n`` unit-norm 384-d keys spread over the manifold of the shipped sentence embeddings.

    Each key is a random point on the segment between a shipped MiniLM embedding (both real sets,
    3,300 sentences) and one of its 10 nearest neighbours, plus Gaussian noise of norm about 0.2,
    normalised: a continuous cloud with the real sets' topics and local geometry, at any size.
    ``out``: an ``(n, 384)`` float32 array (e.g. a memory-mapped ``.npy``) to fill by chunks.
    """
    from workbench.data.demos import REAL_SETS, load_demo
    from workbench.graph import knn_graph

    c = np.concatenate([np.asarray(load_demo(name).x, np.float32) for name in REAL_SETS])
    near = np.asarray(knn_graph(c, 10).src).reshape(len(c), 10)
    rng = np.random.default_rng(seed)
    out = np.empty((n, c.shape[1]), np.float32) if out is None else out
    for i0 in range(0, n, 65_536):
        m = min(n, i0 + 65_536) - i0
        i = rng.integers(0, len(c), m)
        j = near[i, rng.integers(0, 10, m)]
        t = rng.random((m, 1), dtype=np.float32)
        x = (1 - t) * c[i] + t * c[j] + (0.2 / np.sqrt(c.shape[1])) * rng.standard_normal((m, c.shape[1]),
                                                                                         dtype=np.float32)
        out[i0:i0 + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def _report_child(path: str, seed: int, sample, conn) -> None:
    """In a fresh process: analyze_keys on the memory-mapped keys; sends (seconds, peak MiB, choice, report dict)."""
    from workbench.report import analyze_keys

    keys = np.load(path, mmap_mode="r")
    t0 = time.perf_counter()
    rep = analyze_keys(keys, seed=seed, sample=sample)
    conn.send((time.perf_counter() - t0, _peak_mib(), rep.recommendation.choice, rep.to_dict()))
    conn.close()


def _in_child(path: str, seed: int, sample):
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_report_child, args=(path, seed, sample, child))
    p.start()
    out = parent.recv()
    p.join()
    return out


#: The features the recommendation rules read (workbench.report.rules).
_DECIDING = ("sequence_locality", "gromov_delta", "h0_ratio", "norm_share", "key_roughness", "structure_contrast")


def report_run(n: int, subset: int, seeds: int, path: str, sample="auto") -> dict:
    """Time and peak memory of ``analyze_keys`` at ``n`` keys; its recommendation against exact reports on subsets."""
    if not os.path.exists(path) or np.load(path, mmap_mode="r").shape[0] != n:
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, 384))
        real_derived(n, 0, out)
        out.flush()
        del out
    rows = []
    for seed in range(1, seeds + 1):
        sec, peak, choice, rep = _in_child(path, seed, sample)
        keys = np.load(path, mmap_mode="r")
        pick = np.sort(np.random.default_rng(seed).choice(n, size=subset, replace=False))
        sub = os.path.join(os.path.dirname(path) or ".", f"subset_{seed}.npy")
        np.save(sub, np.asarray(keys[pick]))
        sec_x, peak_x, choice_x, rep_x = _in_child(sub, seed, None)
        sec_s, _, choice_s, _ = _in_child(sub, seed, sample)
        os.remove(sub)
        rows.append({"seed": seed, "seconds": sec, "peak_mib": peak, "choice": choice,
                     "errors": rep["errors"], "sample": rep["settings"]["sample"],
                     "exact_subset_seconds": sec_x, "exact_subset_choice": choice_x,
                     "sampled_subset_seconds": sec_s, "sampled_subset_choice": choice_s,
                     "features": {f: rep["features"][f] for f in _DECIDING},
                     "exact_features": {f: rep_x["features"][f] for f in _DECIDING}})
        print(rows[-1], flush=True)
    return {"n": n, "subset": subset, "rows": rows, "cores": os.cpu_count(), "sample": sample}


def report_markdown(r: dict) -> str:
    rows = r["rows"]
    agree = sum(x["choice"] == x["exact_subset_choice"] for x in rows)
    agree_s = sum(x["sampled_subset_choice"] == x["exact_subset_choice"] for x in rows)
    opt = "" if r.get("sample", "auto") == "auto" else f" --sample {r['sample']}"
    lines = [f"\n### `analyze_keys` at {r['n']:,} × 384 (`python -m benchmarks.scale --report --n {r['n']} "
             f"--subset {r['subset']} --seeds {len(rows)}{opt}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n",
             f"| seed | all {r['n']:,} keys: seconds | peak RSS MiB | recommendation | exact on a random subset: seconds | "
             "its recommendation | sampled on that subset: seconds | its recommendation |",
             "|---|---|---|---|---|---|---|---|"]
    for x in rows:
        lines.append(f"| {x['seed']} | {x['seconds']:.1f} | {x['peak_mib']:.0f} | {x['choice']} | "
                     f"{x['exact_subset_seconds']:.1f} | {x['exact_subset_choice']} | "
                     f"{x['sampled_subset_seconds']:.1f} | {x['sampled_subset_choice']} |")
    s = rows[0]["sample"]
    lines.append(f"\nThe {r['n']:,}-key report equals the exact report on the {r['subset']:,}-key subset in "
                 f"{agree} of {len(rows)} seeds (the sampled report of the subset itself: {agree_s} of {len(rows)}). "
                 f"Sampling: {s['replicates']} samples of {s['size']:,} keys; standard errors at seed 1: "
                 + ", ".join(f"{m} {e:.2g}" for m, e in rows[0]["errors"].items())
                 + f". {r['cores']} cores; keys memory-mapped from a float32 `.npy` (the peak includes the "
                 f"pages of the keys read).\n")
    lines += ["| feature the rules read | " + " | ".join(f"seed {x['seed']}: all keys sampled / exact subset" for x in rows[:3])
              + " |", "|---|" + "---|" * min(3, len(rows))]
    for f in _DECIDING:
        lines.append(f"| {f} | " + " | ".join(f"{x['features'][f]:.3f} / {x['exact_features'][f]:.3f}"
                                            for x in rows[:3]) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--length", type=int, default=131_072)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--query-block", type=int, default=16_384)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--append", metavar="PATH")
    ap.add_argument("--report", action="store_true", help="the report at scale instead of sharded attention")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--subset", type=int, default=100_000)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--sample", type=int, help="keys per sample of the report (default: the report's own)")
    ap.add_argument("--keys", default="/tmp/workbench_scale_keys.npy", help="where the generated keys are kept")
    a = ap.parse_args(argv)
    if a.report:
        text = report_markdown(report_run(a.n, a.subset, a.seeds, a.keys, "auto" if a.sample is None else a.sample))
    else:
        text = markdown(run(a.length, a.dim, a.workers, a.shards, a.repeats, a.query_block))
    print_and_append(text, a.append)


if __name__ == "__main__":
    main()
