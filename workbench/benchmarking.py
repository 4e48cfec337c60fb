"""Measuring calls: the timing loop, peak memory, interleaved ratios and result sections.

One module for everything that times or weighs a call, shared by the scripts in ``benchmarks/``
and the dashboard's Bench tab (through :func:`bench_lengths`), so that a figure in
``benchmarks/RESULTS.md`` and a point on the Bench plot are measured the same way:

* :func:`time_calls` — one untimed warm-up call (Numba compiles or loads its cache), then timed
  calls until at least ``repeats`` runs and ``min_seconds``; the median is the figure (the machine's
  speed drifts, and the median ignores a stray slow run);
* :func:`traced_peak_mib` — the peak of NumPy's allocations during a call (``tracemalloc``; works in
  any process, thread-safe enough for the dashboard);
* :class:`RssPeak` — the peak resident memory a block adds (``/proc``: Linux only, a fresh process
  per case, as ``benchmarks.core`` runs them);
* :func:`interleaved_ratios` — ours/peer ratios over alternating rounds, which cancels most drift;
* :func:`bench_lengths` — time and memory of a mechanism against sequence length, with progress
  and cancel (the Bench tab);
* :func:`script_parser`, :func:`publish`, :func:`append_section` — a script's arguments, and its
  result lines printed and written as one section of a Markdown file with the command that made
  them (a rerun replaces that section; :func:`split_sections` keeps the others).
"""
from __future__ import annotations

import argparse
import gc
import re
import statistics
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from workbench.errors import ConfigurationError, DataError, WorkbenchError

__all__ = ["Timing", "time_calls", "traced_peak_mib", "RssPeak", "interleaved_ratios", "random_inputs",
           "fast_backend", "bench_lengths", "script_parser", "publish", "append_section", "split_sections"]


@dataclass
class Timing:
    """Seconds of the timed calls of :func:`time_calls`; ``seconds`` is their median."""

    times: list[float] = field(default_factory=list)
    cpu_times: list[float] = field(default_factory=list)
    first_call_s: float | None = None

    @property
    def seconds(self) -> float | None:
        return statistics.median(self.times) if self.times else None

    @property
    def best(self) -> float | None:
        return min(self.times) if self.times else None

    @property
    def cpu_seconds(self) -> float | None:
        """Median CPU seconds of the process (all threads) per call."""
        return statistics.median(self.cpu_times) if self.cpu_times else None


def time_calls(fn: Callable[[], object], repeats: int = 5, *, min_seconds: float = 0.0, max_runs: int | None = None,
               warmup: bool = True, cancel: threading.Event | None = None) -> Timing:
    """Time ``fn()``: one untimed warm-up call (unless ``warmup=False``; its seconds are
    ``first_call_s``), then calls until at least ``repeats`` runs and ``min_seconds`` of timed
    calls, at most ``max_runs`` (default ``repeats``, or 20 with ``min_seconds``). ``cancel`` is
    checked before every call; a cancelled run keeps the times measured so far."""
    repeats = int(repeats)
    if repeats < 1:
        raise ConfigurationError(f"repeats: expected an integer >= 1, got {repeats!r}")
    most = max(repeats, int(max_runs) if max_runs is not None else (20 if min_seconds > 0 else repeats))
    out = Timing()
    if warmup:
        t0 = time.perf_counter()
        fn()
        out.first_call_s = time.perf_counter() - t0
    start = time.perf_counter()
    while len(out.times) < most and (len(out.times) < repeats or time.perf_counter() - start < min_seconds):
        if cancel is not None and cancel.is_set():
            break
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        out.times.append(time.perf_counter() - t0)
        out.cpu_times.append(time.process_time() - c0)
    return out


def traced_peak_mib(fn: Callable[[], object]) -> float:
    """Peak MiB that NumPy (and Python) allocate during ``fn()`` above what was allocated before,
    by ``tracemalloc``. Memory that Numba's kernels allocate internally is not traced."""
    was = tracemalloc.is_tracing()
    if not was:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        if not was:
            tracemalloc.stop()
    return max(0.0, (peak - base) / (1 << 20))


def _status_kib(field_name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field_name} not in /proc/self/status")


class RssPeak:
    """``with RssPeak() as p: ...`` — ``p.extra_mib`` is the peak resident memory the block added
    (``VmHWM`` after minus ``VmRSS`` before), everything it allocated and touched, Numba's scratch
    included; ``None`` where the kernel does not let the peak be reset (``/proc/self/clear_refs``).

    Before the reset, freed buffers go back to the OS (``malloc_trim(0)``), so that the block's
    allocations, which would otherwise silently reuse them, show in the peak. Measure one case
    per fresh process: the peak of a long-lived process says little.
    """

    extra_mib: float | None = None
    rss_mib: float = 0.0

    def __enter__(self) -> "RssPeak":
        gc.collect()
        try:
            import ctypes

            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self._reset = True
        except OSError:
            self._reset = False
        self._rss = _status_kib("VmRSS")
        self.rss_mib = self._rss / 1024
        return self

    def __exit__(self, *exc) -> None:
        if self._reset:
            self.extra_mib = (_status_kib("VmHWM") - self._rss) / 1024


def interleaved_ratios(ours: Callable[[], float | None], peer: Callable[[], float | None],
                       rounds: int) -> list[float]:
    """Sorted ratios ``peer() / ours()`` over ``rounds`` alternating rounds (each callable returns
    seconds, or ``None`` when it failed). The machine's speed drifts by ±20 % over minutes;
    alternating and taking the median of per-round ratios cancels most of that drift."""
    ratios = []
    for _ in range(int(rounds)):
        a, b = ours(), peer()
        if a and b:
            ratios.append(b / a)
    return sorted(ratios)


def random_inputs(shape: Sequence[int], seed: int | Sequence[int] = 0, count: int = 3) -> list[np.ndarray]:
    """``count`` arrays of standard normal float32 of ``shape`` from ``seed`` (benchmark inputs:
    only speed is measured on them, never quality)."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(tuple(shape), dtype=np.float32) for _ in range(count)]


def fast_backend(name: str) -> str:
    """The fastest CPU backend of mechanism ``name``: ``"numba"`` where it has a Numba kernel,
    else ``"numpy"``."""
    from workbench.registry import registry

    return "numba" if registry[name].backends.get("numba", "absent") is None else "numpy"


def script_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """The argument parser of a benchmark script ``prog`` (``python -m benchmarks.x``): its
    description is the first line of ``doc``; ``--append PATH`` is already declared."""
    ap = argparse.ArgumentParser(prog=prog, description=(doc or "").strip().split("\n")[0])
    ap.add_argument("--append", metavar="PATH", help="append the result as a Markdown section to PATH")
    return ap


def publish(lines: Sequence[str], ap: argparse.ArgumentParser, args: argparse.Namespace, argv: Sequence[str],
            title: str) -> int:
    """Print a script's result lines and, with ``--append PATH``, add them to PATH as a section
    titled ``title`` that names the command. Returns the exit status 0."""
    print("\n".join(lines))
    if args.append:
        append_section(args.append, f"{title} (`{ap.prog}`)", " ".join([ap.prog, *argv]), lines)
    return 0


def print_and_append(text: str, path: str | None) -> None:
    """Print a script's Markdown result and, with a ``path`` (``--append``), add it at the end of that file."""
    print(text)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)


def split_sections(text: str) -> list[tuple[str, str]]:
    """``[(title, block), …]`` of a Markdown text cut before each ``## `` heading; ``title`` is the
    heading without ``## `` ("" for the part before the first one), ``block`` the heading and its body."""
    parts: list[tuple[str, str]] = []
    for block in re.split(r"(?m)^(?=## )", text):
        if block:
            first = block.splitlines()[0]
            parts.append((first[3:].strip() if first.startswith("## ") else "", block))
    return parts


def append_section(path: str, title: str, command: str, lines: Sequence[str]) -> None:
    """Write ``## title``, the command that produced the lines, and the lines as a list into the
    Markdown file at ``path``: in place of an earlier section of that title, else at the end (so a
    rerun replaces its own figures and keeps every other section)."""
    block = f"## {title}\n\nCommand: `{command}`\n\n" + "".join(f"- {line}\n" for line in lines)
    try:
        with open(path) as fh:
            parts = split_sections(fh.read())
    except FileNotFoundError:
        parts = []
    if any(t == title for t, _ in parts):
        text = "".join(block + "\n" if t == title else b for t, b in parts)
    else:
        head = "".join(b for _, b in parts).rstrip("\n")
        text = head + "\n\n" + block if head else block
    with open(path, "w") as fh:
        fh.write(text.rstrip("\n") + "\n")


# -- the Bench tab's sweep -----------------------------------------------------------------------

def bench_lengths(name: str, params: Mapping | None, lengths: Sequence[int], d: int = 64, *,
                  progress: Callable[[int, int], None] | None = None, cancel: threading.Event | None = None,
                  repeats: int = 3, seed: int = 0, max_seconds: float = 20.0, graph_k: int = 8) -> list[dict]:
    """Time and peak memory of mechanism ``name`` against sequence length (self-attention, ``Lq = Lk = L``).

    For each ``L`` in ``lengths``: random ``q = k = v (L, d)`` float32 from ``seed`` (a graph from
    :func:`~workbench.data.prepare.graph_for` where the mechanism needs one, built outside the
    timing), then :func:`time_calls` (one untimed warm-up call, ``repeats`` timed calls; the median
    is ``seconds``) and one call under :func:`traced_peak_mib` (``peak_mib``). ``progress(i, n)``
    is called after each length; ``cancel`` (a ``threading.Event``) is checked between calls and
    stops the run (the rows measured so far are returned). Once a length takes longer than
    ``max_seconds`` the longer ones are skipped. Errors become the row's ``error``. Rows:
    ``{"mechanism", "length", "d", "seconds", "times", "peak_mib", "backend", "error"}``.
    """
    from workbench.autograph import call_with_graph
    from workbench.registry import registry
    import workbench.mechanisms  # noqa: F401  (registers every mechanism)

    params = dict(params or {})
    lengths = [int(x) for x in lengths]
    if not lengths or min(lengths) < 1:
        raise ConfigurationError(f"lengths: expected positive sequence lengths, got {lengths!r}")
    if int(repeats) < 1:
        raise ConfigurationError(f"repeats: expected an integer >= 1, got {repeats!r}")
    info = registry[name]
    rows: list[dict] = []
    too_slow: float | None = None
    for i, L in enumerate(lengths):
        if cancel is not None and cancel.is_set():
            break
        row = {"mechanism": name, "length": L, "d": int(d), "seconds": None, "times": [], "peak_mib": None,
               "backend": "", "error": None}
        if too_slow is not None:
            row["error"] = f"skipped: a shorter length took {too_slow:.1f} s > max_seconds={max_seconds}"
        else:
            try:
                mech = info.cls(**params)
                (x,) = random_inputs((L, int(d)), [int(seed), L], count=1)
                if info.needs_graph and L < 2:
                    raise DataError(f"length: {name} needs a graph of at least 2 nodes, got L={L}")
                row["backend"] = mech.backend_for(x)
                # the warm-up call also builds and checks the graph, outside the timing
                _, graph, _, _ = call_with_graph(lambda kw: mech(x, x, x, **kw), info, x, None, "auto", graph_k,
                                                 int(seed))
                kw = {} if graph is None else {"graph": graph}
                timing = time_calls(lambda: mech(x, x, x, **kw), repeats, warmup=False, cancel=cancel)
                row["times"] = timing.times
                row["seconds"] = timing.seconds
                if timing.times:
                    if not (cancel is not None and cancel.is_set()):
                        row["peak_mib"] = traced_peak_mib(lambda: mech(x, x, x, **kw))
                    if row["seconds"] > max_seconds:
                        too_slow = row["seconds"]
            except WorkbenchError as exc:
                row["error"] = str(exc)
            except MemoryError:
                row["error"] = f"out of memory at L={L}"
                too_slow = float("inf")
        rows.append(row)
        if progress is not None:
            progress(i + 1, len(lengths))
    return rows
