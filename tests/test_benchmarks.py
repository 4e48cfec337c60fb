"""Smoke test of the benchmark script: ``python -m benchmarks.core --quick`` runs and lists every mechanism.

Needs no PyTorch: without it the torch rows and the ratios show "—".
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import workbench

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_runs_and_lists_every_mechanism():
    p = subprocess.run(
        [sys.executable, "-m", "benchmarks.core", "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    out = p.stdout
    header = next(line for line in out.splitlines() if line.startswith("mechanism"))
    for column in ("backend", "shape (B,H,L,d)", "median ms", "GFLOP/s", "peak extra MiB", "ratio to torch"):
        assert column in header
    row_names = {line.split()[0] for line in out.splitlines() if line.strip()}
    for name in workbench.list_mechanisms():
        if not workbench.registry[name].needs_graph:
            assert name in row_names, f"{name} missing from the benchmark table:\n{out}"
    assert "Targets:" in out
    assert "import workbench:" in out
