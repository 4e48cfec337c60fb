"""Command line: ``workbench list|info NAME|matrix [--write README]|warm|calibrate NAME FILE|attend|report FILE``
(also ``python -m workbench``)."""
from __future__ import annotations

import argparse
import sys

from workbench.registry import list_mechanisms, registry


def _list() -> str:
    rows = [("name", "family", "time", "memory", "graph", "backends")]
    for name in list_mechanisms():
        info = registry[name]
        backends = ",".join(b for b, why in info.backends.items() if why is None)
        rows.append((name, info.family, info.time_complexity, info.memory_complexity,
                     "yes" if info.needs_graph else "no", backends))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def feature_matrix() -> str:
    """The README's feature matrix as Markdown, generated from the registry so it cannot drift: one
    row per mechanism (with the kernels it calls), then why a backend cannot serve, per kernel."""
    backends = ("numpy", "numba", "cupy")
    head = ("| mechanism | family | formula | time | memory | graph | kernels | " + " | ".join(backends)
            + " | key shards |")
    rows = [head, "|" + "---|" * (8 + len(backends))]
    why: dict = {}  # kernel name -> {backend: reason}, in order of first use
    for name in list_mechanisms():
        info = registry[name]
        marks = ["✓" if info.backends.get(b) is None else "—" for b in backends]
        cells = [f"`{name}`", info.family, info.formula, info.time_complexity, info.memory_complexity,
                 "yes" if info.needs_graph else "no", ", ".join(info.kernels), *marks,
                 "✓" if info.cls.not_shardable is None else "—"]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        for kernel in info.cls.kernels_used:
            why.setdefault(kernel.name, {b: r for b, r in kernel.backends.items() if r is not None})
    rows += ["", "Why a backend cannot serve (per kernel; a backend serves a mechanism only if it serves each of "
                 "its kernels, and `python -m workbench info NAME` says why per mechanism):", ""]
    rows += [f"- `{kernel}`: " + "; ".join(f"{b}: {r}" for b, r in reasons.items())
             for kernel, reasons in why.items() if reasons]
    rows += ["", "Key shards: runs on a Dask cluster by key shards merged exactly by log-sum-exp "
                 "(`workbench.distributed.attend`); `python -m workbench info NAME` says why not."]
    return "\n".join(rows)


def _info(name: str) -> str:
    info = registry[name]
    lines = [f"{name}: {info.summary}", f"  family: {info.family}", f"  theory: {info.theory or '-'}",
             f"  formula: {info.formula}", f"  time: {info.time_complexity}", f"  memory: {info.memory_complexity}",
             f"  needs a graph: {'yes' if info.needs_graph else 'no'}", f"  kernels: {', '.join(info.kernels)}",
             "  backends (served only where every kernel is):"]
    lines += [f"    {b}: {'yes' if why is None else 'no (' + why + ')'}" for b, why in info.backends.items()]
    shard = info.cls.not_shardable
    lines.append(f"  key shards (workbench.distributed): {'yes' if shard is None else 'no (' + shard + ')'}")
    lines.append("  parameters:")
    for pname, p in info.parameters.items():
        bounds = f" bounds={p.bounds}" if getattr(p, "bounds", None) is not None else ""
        lines.append(f"    {pname} = {p.default!r}{bounds}: {p.doc}")
    return "\n".join(lines)


def _warm(names: list[str], jobs: int = 0) -> int:
    import os
    import time

    from workbench.warm import warm

    for name in names:
        registry[name]  # an unknown name fails here, before any compile
    t0 = time.perf_counter()
    failed = []

    def report(name: str, seconds: float, error: str | None) -> None:
        print(f"  {name:<24} {seconds:6.1f} s" + (f"  error: {error}" if error else ""), flush=True)
        if error:
            failed.append(name)

    print("compiling and caching the Numba kernels (once per install) …", flush=True)
    warm(names or None, jobs=jobs or os.cpu_count() or 1, progress=report)
    print(f"done in {time.perf_counter() - t0:.0f} s", flush=True)
    return 1 if failed else 0


def _dataset(source: str):
    """A shipped data set by name, else the embeddings file at ``source``."""
    from pathlib import Path

    from workbench.data import DEMOS, load_demo, load_embeddings

    return load_demo(source) if source in DEMOS and not Path(source).exists() else load_embeddings(source)


def _calibrate(name: str, source: str, target: float) -> str:
    """Calibrate ``name`` on the embeddings of a file or a shipped data set; the record as text and JSON."""
    import json

    from workbench.calibration import calibrate
    from workbench.report.records import plain

    ds = _dataset(source)
    cal = calibrate(name, ds.x, target_entropy=target).calibration
    lines = [f"{name} on {ds.name} ({ds.n:,} × {ds.dim}): {cal.describe()}",
             *(f"  note: {n}" for n in cal.notes),
             json.dumps(plain(cal.params), sort_keys=True)]
    return "\n".join(lines)


def _attend(name: str, q: str, k: list, v: list, out: str, scheduler: str | None, key_shards: int | None) -> str:
    """``attend`` command: sharded exact attention over ``.npy`` files on a Dask cluster."""
    import numpy as np

    from workbench.distributed import attend

    if len(k) != len(v):
        raise ValueError(f"--k, --v: expected as many value shards as key shards, got {len(k)} and {len(v)}")
    queries = np.load(q, mmap_mode="r", allow_pickle=False)
    if len(k) == 1 and key_shards:  # one file, split into shards here
        keys, values = np.load(k[0], allow_pickle=False), np.load(v[0], allow_pickle=False)
    else:  # one shard per file, each read where its tasks run
        keys, values = k, v
    result = attend(name, np.asarray(queries), keys, values, scheduler=scheduler, key_shards=key_shards)
    np.save(out, result, allow_pickle=False)
    return f"{name}: {result.shape[-2]:,} queries × {result.shape[-1]} → {out}"


def _report(source: str, sample: int | None, json_out: str | None) -> str:
    """``report`` command: the unified report of a key file (``.npy``/``.parquet`` opened lazily) or data set."""
    from pathlib import Path

    from workbench.report import analyze_keys

    if Path(source).suffix.lower() in (".npy", ".parquet"):
        from workbench.data import open_lazy

        keys = open_lazy(source)
    else:
        keys = _dataset(source).x
    rep = analyze_keys(keys, sample="auto" if sample is None else (None if sample == 0 else sample))
    if json_out:
        Path(json_out).write_text(rep.to_json())
    s = rep.settings.get("sample")
    lines = [f"{Path(source).name}: {rep.n_keys:,} keys × {rep.dim}"
             + (f", measured on {s['replicates']} samples of {s['size']:,} keys (values ± standard error)" if s else ""),
             f"recommendation: {rep.recommendation.choice} → {rep.recommendation.mechanism} "
             f"{rep.recommendation.params}", f"  why: {rep.recommendation.rule}",
             f"health score: {rep.health_score:.3f}"]
    for m in rep.metrics:
        err = rep.errors.get(m.name)
        lines.append(f"  {m.name}: {m.value:.4g}" + (f" ± {err:.2g}" if err is not None else "") + f"  {m.status}")
    return "\n".join(lines + ([f"JSON → {json_out}"] if json_out else []))


MATRIX_MARKERS = ("<!-- feature-matrix:start -->", "<!-- feature-matrix:end -->")


def write_matrix(path: str) -> None:
    """Replace the text between :data:`MATRIX_MARKERS` in ``path`` (the README) by :func:`feature_matrix`,
    so that registering a mechanism needs no hand edit of the README."""
    from pathlib import Path

    start, end = MATRIX_MARKERS
    text = Path(path).read_text()
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"README: {path} must hold the markers {start} … {end} once each, in that order")
    head, rest = text.split(start)
    tail = rest.split(end)[1]
    Path(path).write_text(f"{head}{start}\n{feature_matrix().strip()}\n{end}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="workbench", description="Attention Workbench mechanisms.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the registered mechanisms")
    info = sub.add_parser("info", help="describe one mechanism and its parameters")
    info.add_argument("name")
    mx = sub.add_parser("matrix", help="print the feature matrix (Markdown) that the README embeds")
    mx.add_argument("--write", metavar="README", help="replace the matrix between the markers of this file instead")
    warm = sub.add_parser("warm", help="compile and cache the Numba kernels of the mechanisms (once per install)")
    warm.add_argument("names", nargs="*", help="mechanisms to warm (default: all)")
    warm.add_argument("--jobs", type=int, default=0, help="processes (default: the number of cores)")
    cal = sub.add_parser("calibrate", help="fit a mechanism's temperature to embeddings; print its parameters")
    cal.add_argument("name")
    cal.add_argument("source", help="an embeddings file (.npy, .npz, .csv, …) or a shipped data set's name")
    cal.add_argument("--target", type=float, default=0.5, help="mean H/ln n of self-attention (default 0.5)")
    att = sub.add_parser("attend", help="exact attention over .npy files on a Dask cluster (key shards merged "
                                        "by log-sum-exp); writes the output as .npy")
    att.add_argument("name", help="a mechanism that runs by key shards (see 'info NAME')")
    att.add_argument("--q", required=True, help="queries (.npy, (..., Lq, d))")
    att.add_argument("--k", required=True, nargs="+", help="key shards (.npy files, read where each task runs)")
    att.add_argument("--v", required=True, nargs="+", help="value shards, one per key shard")
    att.add_argument("--out", required=True, help="where to write the output (.npy)")
    att.add_argument("--scheduler", help="tcp://host:8786 (default: $WORKBENCH_DASK_SCHEDULER, else a local cluster)")
    att.add_argument("--key-shards", type=int, help="split a single key/value file into this many shards")
    rp = sub.add_parser("report", help="the unified report of a key file (.npy and .parquet opened lazily: files "
                                       "larger than memory work) or a shipped data set")
    rp.add_argument("source", help="an embeddings file or a shipped data set's name")
    rp.add_argument("--sample", type=int, help="keys per sample (default: the report's; 0: measure every key)")
    rp.add_argument("--json", metavar="PATH", help="also write the whole report as JSON")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            print(_list())
        elif args.command == "matrix":
            if args.write:
                write_matrix(args.write)
            else:
                print(feature_matrix())
        elif args.command == "warm":
            return _warm(args.names, args.jobs)
        elif args.command == "calibrate":
            print(_calibrate(args.name, args.source, args.target))
        elif args.command == "report":
            print(_report(args.source, args.sample, args.json))
        elif args.command == "attend":
            print(_attend(args.name, args.q, args.k, args.v, args.out, args.scheduler, args.key_shards))
        else:
            print(_info(args.name))
    except Exception as exc:  # a clear message, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
