"""CPU benchmark of every registered mechanism against PyTorch's SDPA.

Run from the repository root::

    python -m benchmarks.core                      # full run, prints the table and the targets
    python -m benchmarks.core --write benchmarks/RESULTS.md
    python -m benchmarks.core --quick              # tiny shapes only (smoke test)
    python -m benchmarks.core --only flash         # one mechanism (and its torch references)

Every case (one mechanism, backend and shape, or one torch SDPA shape) runs in its own fresh
subprocess (``python -m benchmarks.core --case JSON``), so PyTorch's OpenMP threads and
Numba's threads never compete and the peak memory of each case can be read from
``/proc/self/status``. In the subprocess: allocate seeded normal inputs, make one warm-up
call on the full shape (this also loads or compiles the Numba kernels), reset the peak RSS
(``echo 5 > /proc/self/clear_refs``), read ``VmRSS``, run the timed calls (until at least
5 runs and 1 s, at most 20 runs; the median is reported), read ``VmHWM``. The extra peak
memory is ``VmHWM − VmRSS`` before the timed calls: everything a call allocates and touches
(its output included), not the inputs. Before the reset, ``malloc_trim(0)`` hands the
buffers freed by the warm-up back to the OS, so that the timed calls' allocations (which
would otherwise reuse them silently) show in the peak.

PyTorch is optional: without it the torch rows and the ratios show "—".

``--scheduler tcp://host:8786`` (or ``--dask`` for an embedded LocalCluster) runs the cases as a
Dask task grid (:func:`workbench.distributed.run_grid`): each task still runs its case in a fresh
subprocess of the worker, so each row is what one machine measured alone only when each worker
has a machine to itself (``dask worker --nworkers 1`` per host, the repository at the same path
everywhere); the table gathers them in the usual order.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from workbench.benchmarking import fast_backend, interleaved_ratios, random_inputs, split_sections

ROOT = Path(__file__).resolve().parents[1]
DASH = "—"

# -- what is measured ---------------------------------------------------------------------------
SEED = 0
MIN_RUNS, MIN_SECONDS, MAX_RUNS = 5, 1.0, 20
CASE_TIMEOUT_S = 400

#: Shapes (B, H, L, d) every mechanism runs at (numba backend).
STANDARD_SHAPES = [(1, 1, 4096, 64), (1, 1, 16384, 64), (32, 12, 512, 64)]
#: The NumPy reference only runs (as an informative row) at shapes with L at most this.
NUMPY_MAX_L = 4096
#: Length sweep (B = H = 1, d = 64) for these mechanisms.
SWEEP_MECHANISMS = ("flash", "linear")
SWEEP_LENGTHS = [1024, 2048, 4096, 8192, 16384, 32768, 65536]
#: Torch SDPA is skipped above this length (it would be far too slow); 65536 takes ~8 s/call.
TORCH_MAX_L = 65536

QUICK_SHAPES = [(1, 1, 256, 64)]
QUICK_NUMPY_SHAPES = [(1, 1, 256, 64)]

#: Mechanism parameters used by the benchmark (others run with their defaults).
MECH_PARAMS = {"local_global": {"window": 256, "num_global_tokens": 2}}
#: Mechanisms whose work is exact attention: 4·B·H·Lq·Lk·d flops (two matmuls).
EXACT = {"scaled_dot_product", "multi_head", "flash"}


# -- the work of one call, in flops -------------------------------------------------------------
def flops(name: str, shape, params: dict) -> float | None:
    """Floating-point operations of one call (multiply and add counted separately), or None."""
    B, H, L, d = shape
    dv = d
    if name in EXACT:
        return 4.0 * B * H * L * L * d
    if name == "linear":
        # feature maps of q and k (2·L·m·d each), φ(K)ᵀV and φ(Q)(φ(K)ᵀV) (2·L·m·dv each)
        m = params.get("num_features", 256)
        return 2.0 * B * H * m * (2 * L) * (d + dv)
    if name == "local_global":
        w, g = params.get("window", 32), params.get("num_global_tokens", 2)
        half = w // 2
        # keys per local query ≈ 2·⌊w/2⌋+1 (ends not clipped) plus g globals; the g global queries see all L
        keys = min(L, 2 * half + 1) + g
        per_head = (L - g) * keys + g * L
        return 2.0 * B * H * per_head * (d + dv)
    return None


# -- the subprocess side ------------------------------------------------------------------------
def _timed(fn, quick: bool = False) -> dict:
    """Median of at least MIN_RUNS runs and MIN_SECONDS (a smoke test, ``quick``: of 2 runs), with
    the extra peak RSS of the timed calls (:class:`workbench.benchmarking.RssPeak`)."""
    from workbench.benchmarking import RssPeak, time_calls

    min_runs, min_seconds = (2, 0.0) if quick else (MIN_RUNS, MIN_SECONDS)
    t0 = time.perf_counter()
    fn()  # warm-up on the full shape (loads or compiles the Numba kernels)
    first = time.perf_counter() - t0
    with RssPeak() as peak:
        t = time_calls(fn, min_runs, min_seconds=min_seconds, max_runs=MAX_RUNS, warmup=False)
    return {
        "ok": True,
        "median_s": t.seconds,
        "runs": len(t.times),
        "times": t.times,
        "first_call_s": first,
        "extra_mib": peak.extra_mib,
        "rss_mib": peak.rss_mib,
    }


def run_case(spec: dict) -> dict:
    """Time one case in this process (called in the fresh subprocess)."""
    shape = tuple(spec["shape"])
    B, H, L, d = shape
    if spec["kind"] == "torch":
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        q, k, v = (torch.from_numpy(a) for a in random_inputs(shape, SEED))
        sdpa = torch.nn.functional.scaled_dot_product_attention

        def fn():
            with torch.no_grad():
                sdpa(q, k, v)

        out = _timed(fn, spec.get("quick", False))
        out["threads"] = torch.get_num_threads()
        return out

    import workbench

    name = spec["name"]
    params = dict(spec.get("params", {}))
    q, k, v = random_inputs(shape, SEED)
    if name == "multi_head":  # (B, H, L, d) -> (B, L, H·d) with H heads: same per-head work as SDPA
        q, k, v = (a.transpose(0, 2, 1, 3).reshape(B, L, H * d).copy() for a in (q, k, v))
        params["num_heads"] = H
    mech = workbench.make(name, backend=spec["backend"], **params)

    def fn():
        mech(q, k, v)

    return _timed(fn, spec.get("quick", False))


# -- the parent side ----------------------------------------------------------------------------
@dataclass
class Case:
    kind: str  # "mech" or "torch"
    shape: tuple
    name: str = "torch sdpa"
    backend: str = "torch"
    params: dict = field(default_factory=dict)
    result: dict | None = None
    quick: bool = False  # a smoke test: 2 timed runs instead of MIN_RUNS and MIN_SECONDS

    @property
    def spec(self) -> dict:
        return {"kind": self.kind, "shape": list(self.shape), "name": self.name, "backend": self.backend,
                "params": self.params, "quick": self.quick}


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def _subprocess(args: list[str], timeout: float, env: dict | None = None) -> dict:
    try:
        p = subprocess.run([sys.executable, *args], cwd=ROOT, env=env or _env(), capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timeout after {timeout:.0f} s"}
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        err = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
        return {"ok": False, "error": err[:200]}
    return json.loads(lines[-1])


def measure(case: Case, timeout: float = CASE_TIMEOUT_S) -> dict:
    case.result = _subprocess(["-m", "benchmarks.core", "--case", json.dumps(case.spec)], timeout)
    return case.result


def _measure_spec(spec: dict, timeout: float = CASE_TIMEOUT_S) -> dict:
    """One case in a fresh subprocess, as a Dask task (see the module docstring)."""
    return _subprocess(["-m", "benchmarks.core", "--case", json.dumps(spec)], timeout)


def measure_grid(cases: list[Case], scheduler: str | None) -> None:
    """Measure ``cases`` as a Dask task grid on ``scheduler`` (None: the embedded cluster)."""
    from workbench.distributed import GridFailure, run_grid

    todo = [c for c in cases if c.result is None]

    def progress(done, total):
        print(f"[{done}/{total}] cases measured on the cluster", file=sys.stderr, flush=True)

    got = run_grid(_measure_spec, [{"spec": c.spec} for c in todo], scheduler=scheduler, progress=progress)
    for c, r in zip(todo, got):
        c.result = {"ok": False, "error": str(r)} if isinstance(r, GridFailure) or r is None else r


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def plan(quick: bool, only: str | None) -> list[Case]:
    """The cases to run, mechanisms taken from the registry (never a fixed list)."""
    import workbench

    names = [n for n in workbench.list_mechanisms() if only is None or n == only]
    cases: list[Case] = []
    seen: set = set()

    def add(name, backend, shape):
        key = (name, backend, shape)
        if key not in seen:
            seen.add(key)
            cases.append(Case("mech", shape, name, backend, dict(MECH_PARAMS.get(name, {})), quick=quick))

    for name in names:
        info = workbench.registry[name]
        if info.needs_graph:  # needs a graph input: listed, not part of this SDPA-shaped benchmark
            skip = Case("mech", (QUICK_SHAPES if quick else STANDARD_SHAPES)[0], name, DASH)
            skip.result = {"ok": False, "error": "needs a graph input: not benchmarked"}
            cases.append(skip)
            continue
        fast = fast_backend(name)
        for shape in QUICK_SHAPES if quick else STANDARD_SHAPES:
            if fast == "numba" or shape[2] <= NUMPY_MAX_L:
                add(name, fast, shape)
        if fast == "numba" and info.backends.get("numpy", "absent") is None:
            for shape in QUICK_NUMPY_SHAPES if quick else [s for s in STANDARD_SHAPES if s[2] <= NUMPY_MAX_L]:
                add(name, "numpy", shape)
        if not quick and name in SWEEP_MECHANISMS:
            for L in SWEEP_LENGTHS:
                add(name, fast, (1, 1, L, 64))
    shapes = sorted({c.shape for c in cases}, key=lambda s: (s[2] * s[0] * s[1], s))
    torch_cases = [Case("torch", s, quick=quick) for s in shapes if s[2] <= TORCH_MAX_L]
    order = {s: i for i, s in enumerate(shapes)}
    allc = cases + torch_cases
    allc.sort(key=lambda c: (order[c.shape], c.kind == "torch", names.index(c.name) if c.name in names else 0,
                             c.backend != "numba"))
    return allc


def import_time(repeats: int = 3) -> float:
    """Median seconds of ``import workbench`` in a fresh interpreter."""
    code = "import time; t=time.perf_counter(); import workbench; print(time.perf_counter()-t)"
    vals = []
    for _ in range(repeats):
        p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True,
                           timeout=120)
        vals.append(float(p.stdout.strip().splitlines()[-1]))
    return statistics.median(vals)


def first_calls() -> dict:
    """In this (fresh) process: seconds of the first numba call of every mechanism at L=256."""
    import workbench

    q, k, v = random_inputs((1, 1, 256, 64), SEED)
    out = {}
    for name in workbench.list_mechanisms():
        info = workbench.registry[name]
        if info.needs_graph or info.backends.get("numba", "absent") is not None:
            continue
        params = dict(MECH_PARAMS.get(name, {}))
        mech = workbench.make(name, backend="numba", **params)
        t0 = time.perf_counter()
        mech(q, k, v)
        out[name] = time.perf_counter() - t0
    return {"ok": True, "first_call_s": out}


def numba_first_call_times() -> dict:
    """First-call seconds in fresh processes: cold (empty NUMBA_CACHE_DIR) and warm (the cache)."""
    res = {}
    with tempfile.TemporaryDirectory(prefix="wb-numba-cold-") as tmp:
        env = _env()
        env["NUMBA_CACHE_DIR"] = tmp
        res["cold"] = _subprocess(["-m", "benchmarks.core", "--first-calls"], 600, env)
    res["warm"] = _subprocess(["-m", "benchmarks.core", "--first-calls"], 300)
    return res


# -- formatting ---------------------------------------------------------------------------------
HEADER = ["mechanism", "backend", "shape (B,H,L,d)", "median ms", "GFLOP/s", "peak extra MiB", "ratio to torch",
          "runs", "note"]


def _shape(s) -> str:
    return "(" + ",".join(str(x) for x in s) + ")"


def _torch_time(cases: list[Case], shape) -> float | None:
    for c in cases:
        if c.kind == "torch" and c.shape == shape and c.result and c.result.get("ok"):
            return c.result["median_s"]
    return None


def rows(cases: list[Case]) -> list[list[str]]:
    out = []
    for c in cases:
        r = c.result or {"ok": False, "error": "not run"}
        if not r.get("ok"):
            out.append([c.name, c.backend, _shape(c.shape), DASH, DASH, DASH, DASH, "0", r.get("error", "")])
            continue
        t = r["median_s"]
        f = flops(c.name, c.shape, c.params) if c.kind == "mech" else flops("scaled_dot_product", c.shape, {})
        gf = f"{f / t / 1e9:.1f}" if f else DASH
        mem = DASH if r.get("extra_mib") is None else f"{r['extra_mib']:.1f}"
        tt = _torch_time(cases, c.shape)
        if c.kind == "torch":
            ratio = "1 (ref)"
        else:
            ratio = f"{tt / t:.2f}" if tt else DASH
        note = ""
        if c.kind == "mech" and c.name not in EXACT and f:
            note = "own-work flops"
        if c.params:
            note = (note + "; " if note else "") + ", ".join(f"{k}={v}" for k, v in c.params.items())
        out.append([c.name, c.backend, _shape(c.shape), f"{t * 1e3:.2f}", gf, mem, ratio, str(r["runs"]), note])
    return out


def text_table(table: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in table)) if table else len(h) for i, h in enumerate(HEADER)]
    line = lambda r: "  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(HEADER), line(["-" * w for w in widths]), *map(line, table)])


def md_table(table: list[list[str]]) -> str:
    esc = lambda x: x.replace("|", "\\|")  # noqa: E731
    out = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    out += ["| " + " | ".join(esc(x) for x in r) + " |" for r in table]
    return "\n".join(out)


def _find(cases, name, shape) -> dict | None:
    for c in cases:
        if c.kind == "mech" and c.name == name and c.shape == shape and c.backend != "numpy":
            return c.result if c.result and c.result.get("ok") else None
    return None


def _verdict(value: float | None, ok: bool) -> str:
    return "" if value is None else ("  [met]" if ok else "  [MISSED]")


TARGET_SHAPES = [(1, 1, 4096, 64), (32, 12, 512, 64)]


def _mech_case(name: str, shape) -> Case:
    return Case("mech", shape, name, "numba", dict(MECH_PARAMS.get(name, {})))


def paired_ratios(rounds: int) -> dict:
    """Target ratios measured in ``rounds`` interleaved pairs of fresh processes.

    The machine's speed drifts by ±20 % over minutes; alternating the two processes and taking
    the median of the per-pair ratios cancels most of that drift. Keys: ``("flash", shape)`` →
    torch time / flash time; ``("hyperbolic", shape)`` → scaled_dot_product time / hyperbolic time.
    """
    import workbench

    plans = [(("flash", s), _mech_case("flash", s), Case("torch", s)) for s in TARGET_SHAPES]
    if "hyperbolic" in workbench.list_mechanisms():
        s = (1, 1, 4096, 64)
        plans.append((("hyperbolic", s), _mech_case("hyperbolic", s), _mech_case("scaled_dot_product", s)))
    out = {}
    for key, ours_case, peer_case in plans:
        ratios = interleaved_ratios(lambda: measure(ours_case).get("median_s"),
                                    lambda: measure(peer_case).get("median_s"), rounds)
        if ratios:
            out[key] = ratios
    return out


def summary(cases: list[Case], imp: float | None, pairs: dict | None = None) -> list[str]:
    lines = []
    for shape in TARGET_SHAPES:
        r, tt = _find(cases, "flash", shape), _torch_time(cases, shape)
        x = tt / r["median_s"] if r and tt else None
        if pairs and ("flash", shape) in pairs:
            rs = pairs[("flash", shape)]
            x = statistics.median(rs)
            lines.append(f"flash {_shape(shape)} ratio to torch: {x:.2f}, median of {len(rs)} interleaved pairs "
                         f"(range {rs[0]:.2f}–{rs[-1]:.2f}) (target ≥ 1.0)" + _verdict(x, x >= 1.0))
            continue
        lines.append(f"flash {_shape(shape)} ratio to torch: {DASH if x is None else f'{x:.2f}'} (target ≥ 1.0)"
                     + _verdict(x, x is not None and x >= 1.0))
    r = _find(cases, "flash", (1, 1, 65536, 64))
    m = r.get("extra_mib") if r else None
    lines.append(f"flash L=65536 extra peak memory: {DASH if m is None else f'{m:.1f}'} MiB (target ≤ 64)"
                 + _verdict(m, m is not None and m <= 64))
    a, b = _find(cases, "linear", (1, 1, 65536, 64)), _find(cases, "linear", (1, 1, 16384, 64))
    x = a["median_s"] / b["median_s"] if a and b else None
    lines.append(f"linear time(65536)/time(16384): {DASH if x is None else f'{x:.2f}'} (target ≤ 4.4)"
                 + _verdict(x, x is not None and x <= 4.4))
    a, b = _find(cases, "hyperbolic", (1, 1, 4096, 64)), _find(cases, "scaled_dot_product", (1, 1, 4096, 64))
    hyp_pairs = (pairs or {}).get(("hyperbolic", (1, 1, 4096, 64)))
    if hyp_pairs:
        x = statistics.median(hyp_pairs)
        lines.append(f"hyperbolic (Einstein midpoint) throughput / scaled_dot_product at (1,1,4096,64): {x:.2f}, "
                     f"median of {len(hyp_pairs)} interleaved pairs (range {hyp_pairs[0]:.2f}–{hyp_pairs[-1]:.2f}) "
                     f"(target ≥ 0.33)" + _verdict(x, x >= 1 / 3))
    elif a is not None or b is not None:
        x = b["median_s"] / a["median_s"] if a and b else None
        lines.append(f"hyperbolic (Einstein midpoint) throughput / scaled_dot_product at (1,1,4096,64): "
                     f"{DASH if x is None else f'{x:.2f}'} (target ≥ 0.33)" + _verdict(x, x is not None and x >= 1 / 3))
    lines.append(f"import workbench: {DASH if imp is None else f'{imp:.3f}'} s (target < 1)"
                 + _verdict(imp, imp is not None and imp < 1))
    return lines


def first_call_lines(fc: dict | None) -> list[str]:
    if not fc:
        return []
    out = []
    for which in ("cold", "warm"):
        r = fc.get(which) or {}
        if not r.get("ok"):
            out.append(f"numba first calls ({which} cache): {DASH} ({r.get('error', 'not run')})")
            continue
        per = r["first_call_s"]
        out.append(f"numba first calls ({which} cache), L=256, fresh process: total {sum(per.values()):.2f} s; "
                   + ", ".join(f"{k} {v:.2f} s" for k, v in per.items()))
    return out


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return DASH


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass

    def ver(pkg):
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "numpy": ver("numpy"),
            "numba": ver("numba"), "torch": ver("torch")}


def write_markdown(path: Path, argv: list[str], table, summ, fc_lines, mach, elapsed, load) -> None:
    cmd = "python -m benchmarks.core" + ("" if not argv else " " + " ".join(argv))
    text = [
        "# Benchmark results",
        "",
        f"- Machine: {mach['cpu']}, {mach['cores']} cores; Python {mach['python']}, NumPy {mach['numpy']}, "
        f"Numba {mach['numba']}, PyTorch {mach['torch']} (CPU, float32, {mach['cores']} threads)",
        f"- Date: {_dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"- Command: `{cmd}` (total {elapsed:.0f} s; {load}; other processes on the machine perturb the timings)",
        "- Each case runs in its own fresh process: inputs (seeded N(0,1) float32), one warm-up call, then timed "
        f"calls until ≥{MIN_RUNS} runs and ≥{MIN_SECONDS:g} s (at most {MAX_RUNS}); median reported. Peak extra "
        "memory = VmHWM − VmRSS before the timed calls (clear_refs reset after the warm-up).",
        "- GFLOP/s: 4·B·H·L²·d for exact attention (scaled_dot_product, multi_head, flash, torch SDPA); linear: "
        "2·B·H·m·2L·(d+dv) with m = num_features; local_global: 2·B·H·(d+dv)·(keys attended) — their own work, "
        "not comparable with the exact rows. Ratio to torch = torch time / our time (> 1: faster than torch).",
        "- multi_head at (B,H,L,d) takes inputs (B, L, H·d) with num_heads=H (same per-head work as SDPA).",
        "",
        md_table(table),
        "",
        "## Targets",
        "",
        *[f"- {s}" for s in summ],
    ]
    if fc_lines:
        text += ["", "## Numba first call", "", *[f"- {s}" for s in fc_lines]]
    # the sections other scripts wrote (graph, theories, dashboard…) stay, after this one's
    own = {"", "Targets", "Numba first call"}
    kept = [b for t, b in (split_sections(path.read_text(encoding="utf-8")) if path.exists() else []) if t not in own]
    path.write_text("\n".join(text) + "\n" + "".join("\n" + b.rstrip("\n") + "\n" for b in kept), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m benchmarks.core", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny shapes only (smoke test)")
    ap.add_argument("--only", metavar="NAME", help="only this mechanism (and the torch references)")
    ap.add_argument("--write", metavar="PATH", help="also write the results as Markdown to PATH")
    ap.add_argument("--no-first-call", action="store_true", help="skip the cold/warm Numba first-call measurement")
    ap.add_argument("--pairs", type=int, default=5, metavar="N",
                    help="interleaved flash/torch pairs per target shape for the summary ratios (default 5; 0 = off)")
    ap.add_argument("--targets-only", action="store_true",
                    help="only the interleaved target pairs; with --append PATH, add them to a Markdown file")
    ap.add_argument("--append", metavar="PATH", help="with --targets-only: append the lines to PATH")
    ap.add_argument("--scheduler", metavar="ADDRESS", help="run the cases as a Dask task grid on this scheduler")
    ap.add_argument("--dask", action="store_true", help="run the cases as a Dask task grid on an embedded LocalCluster")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--first-calls", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.case:
        try:
            res = run_case(json.loads(args.case))
        except Exception as exc:  # reported as a row, not a crash of the whole run
            res = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
        print(json.dumps(res), flush=True)
        return 0
    if args.first_calls:
        print(json.dumps(first_calls()), flush=True)
        return 0

    if args.targets_only:
        load_start = loadavg()
        pairs = paired_ratios(max(1, args.pairs))
        lines = [ln for ln in summary([], None, pairs) if "interleaved" in ln]
        lines.append(f"load average (1, 5, 15 min) at start {load_start}, at end {loadavg()}")
        print("\n".join(lines))
        if args.append:
            with open(args.append, "a") as fh:
                fh.write("\n## Target ratios in interleaved pairs (`python -m benchmarks.core --targets-only`)\n\n")
                fh.write(f"Run on {_dt.datetime.now().isoformat(timespec='minutes')}.\n\n")
                fh.writelines(f"- {ln}\n" for ln in lines)
        return 0

    t_start = time.perf_counter()
    load_start = loadavg()
    cases = plan(args.quick, args.only)
    if args.only and not any(c.kind == "mech" for c in cases):
        import workbench

        print(f"no mechanism {args.only!r}; registered: {', '.join(workbench.list_mechanisms())}", file=sys.stderr)
        return 2
    have_torch = torch_available()
    if not have_torch:
        for c in cases:
            if c.kind == "torch":
                c.result = {"ok": False, "error": "torch not installed"}
    if args.scheduler or args.dask:
        measure_grid(cases, args.scheduler)
    for i, c in enumerate(cases, 1):
        label = f"[{i}/{len(cases)}] {c.name} {c.backend} {_shape(c.shape)}"
        if c.result is not None:  # decided without running (e.g. graph mechanisms)
            continue
        if c.kind == "torch" and not have_torch:
            c.result = {"ok": False, "error": "torch not installed"}
        else:
            t0 = time.perf_counter()
            measure(c)
            r = c.result
            info = f"{r['median_s'] * 1e3:.2f} ms" if r.get("ok") else r.get("error")
            print(f"{label}: {info} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
    imp = import_time()
    fc = None if (args.quick or args.no_first_call) else numba_first_call_times()
    pairs = None
    if have_torch and not args.quick and args.pairs > 0 and args.only is None:
        print(f"interleaved flash/torch pairs ({args.pairs} per target shape) ...", file=sys.stderr, flush=True)
        pairs = paired_ratios(args.pairs)
    table = rows(cases)
    summ = summary(cases, imp, pairs)
    fc_lines = first_call_lines(fc)
    elapsed = time.perf_counter() - t_start
    load = f"load average (1, 5, 15 min) at start {load_start}, at end {loadavg()} ({os.cpu_count()} cores)"

    print(text_table(table))
    print()
    print("Targets:")
    for s in summ:
        print("  " + s)
    for s in fc_lines:
        print("  " + s)
    if not have_torch:
        print("  (torch is not installed: torch rows and ratios show —)")
    print(f"total {elapsed:.0f} s; {load}")
    if args.write:
        path = Path(args.write)
        if not path.is_absolute():
            path = Path.cwd() / path
        write_markdown(path, argv, table, summ, fc_lines, machine(), elapsed, load)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
