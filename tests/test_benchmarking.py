"""The measuring helpers shared by benchmarks/ and the Bench tab."""
from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from workbench import benchmarking as B
from workbench.errors import ConfigurationError


def test_time_calls_counts_warmup_runs_and_cancel():
    calls = []
    t = B.time_calls(lambda: calls.append(1), 4)
    assert len(calls) == 5 and len(t.times) == 4 and t.first_call_s is not None  # one warm-up + 4 timed
    assert t.seconds == pytest.approx(float(np.median(t.times))) and t.best == min(t.times)
    calls.clear()
    t = B.time_calls(lambda: calls.append(1), 2, warmup=False)
    assert len(calls) == 2 and t.first_call_s is None
    ev = threading.Event()
    calls.clear()
    t = B.time_calls(lambda: (calls.append(1), ev.set()), 5, cancel=ev)  # the warm-up sets cancel
    assert len(calls) == 1 and t.times == [] and t.seconds is None
    with pytest.raises(ConfigurationError, match="repeats"):
        B.time_calls(lambda: None, 0)


def test_time_calls_min_seconds_runs_until_the_time_is_spent():
    import time

    t = B.time_calls(lambda: time.sleep(0.01), 1, min_seconds=0.05, max_runs=50)
    assert 4 <= len(t.times) <= 50 and sum(t.times) >= 0.04
    capped = B.time_calls(lambda: time.sleep(0.01), 1, min_seconds=10.0, max_runs=3)
    assert len(capped.times) == 3


def test_traced_peak_sees_a_known_allocation():
    mib = B.traced_peak_mib(lambda: np.ones(4 << 20, dtype=np.uint8))  # 4 MiB
    assert 3.9 <= mib <= 5.0
    assert B.traced_peak_mib(lambda: None) < 0.1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux only")
def test_rss_peak_sees_touched_memory():
    with B.RssPeak() as p:
        a = np.ones(64 << 20, dtype=np.uint8)  # 64 MiB, touched
        del a
    if p.extra_mib is None:
        pytest.skip("this kernel does not let the peak RSS be reset")
    assert 60 <= p.extra_mib <= 200


def test_interleaved_ratios_alternate_and_skip_failures():
    order = []
    ours = iter([1.0, None, 2.0])
    peer = iter([3.0, 5.0, 2.0])
    r = B.interleaved_ratios(lambda: (order.append("o"), next(ours))[1], lambda: (order.append("p"), next(peer))[1], 3)
    assert order == ["o", "p"] * 3 and r == [1.0, 3.0]


def test_append_section_writes_the_command_and_lines(tmp_path):
    path = tmp_path / "R.md"
    path.write_text("# results\n")
    B.append_section(str(path), "Title", "python -m x --y", ["a 1 s", "b 2 s"])
    assert path.read_text() == "# results\n\n## Title\n\nCommand: `python -m x --y`\n\n- a 1 s\n- b 2 s\n"


def test_a_rerun_replaces_its_own_section_and_keeps_the_others(tmp_path):
    path = tmp_path / "R.md"
    path.write_text("# results\n\n## Title\n\n- old\n\n## Other\n\n- kept\n")
    B.append_section(str(path), "Title", "cmd", ["new"])
    text = path.read_text()
    assert text == "# results\n\n## Title\n\nCommand: `cmd`\n\n- new\n\n## Other\n\n- kept\n"
    assert [t for t, _ in B.split_sections(text)] == ["", "Title", "Other"]


def test_bench_lengths_progress_and_cancel():
    calls = []
    np_ = {"backend": "numpy"}
    rows = B.bench_lengths("scaled_dot_product", np_, [16, 32], d=8, repeats=2,
                           progress=lambda i, n: calls.append((i, n)))
    assert calls == [(1, 2), (2, 2)]
    assert [r["length"] for r in rows] == [16, 32]
    for r in rows:
        assert r["error"] is None and len(r["times"]) == 2 and r["seconds"] == pytest.approx(np.median(r["times"]))
        assert r["peak_mib"] >= 0 and r["backend"] == "numpy"
    ev = threading.Event()
    ev.set()
    assert B.bench_lengths("flash", np_, [16, 32], d=8, cancel=ev) == []
    ev2 = threading.Event()
    rows = B.bench_lengths("flash", np_, [16, 32, 64], d=8, repeats=1, progress=lambda i, n: ev2.set(), cancel=ev2)
    assert len(rows) == 1
    slow = B.bench_lengths("flash", np_, [16, 32], d=8, repeats=1, max_seconds=0.0)
    assert slow[1]["error"].startswith("skipped")
    bad = B.bench_lengths("multi_head", {"num_heads": 3, **np_}, [16], d=8, repeats=1)
    assert bad[0]["error"] and bad[0]["seconds"] is None
    graph = B.bench_lengths("edge_featured", np_, [24], d=8, repeats=1)
    assert graph[0]["error"] is None
    with pytest.raises(ConfigurationError, match="lengths"):
        B.bench_lengths("flash", {}, [0])


def test_fast_backend_reads_the_registry():
    assert B.fast_backend("flash") == "numba"
    assert B.fast_backend("centroid_ot") == "numpy"  # BLAS products and a small Sinkhorn: no Numba kernel


def test_script_parser_and_publish_append_the_command(tmp_path, capsys):
    ap = B.script_parser("python -m benchmarks.x", "First line.\n\nMore.")
    ap.add_argument("--n", type=int, default=1)
    path = tmp_path / "R.md"
    argv = ["--n", "3", "--append", str(path)]
    args = ap.parse_args(argv)
    assert ap.description == "First line." and args.n == 3
    assert B.publish(["x 1"], ap, args, argv, "Thing") == 0
    assert capsys.readouterr().out == "x 1\n"
    assert path.read_text() == (f"## Thing (`python -m benchmarks.x`)\n\n"
                                f"Command: `python -m benchmarks.x --n 3 --append {path}`\n\n- x 1\n")
