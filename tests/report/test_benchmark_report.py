"""Smoke test of ``python -m benchmarks.report`` on a tiny key set (speed is measured there, never asserted)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_report_benchmark_runs():
    p = subprocess.run([sys.executable, "-m", "benchmarks.report", "--n", "400", "--dim", "16", "--repeats", "1"],
                       cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr[-2000:]
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("analyze_keys")]
    assert len(lines) == 2 and all("x one exact knn_graph" in ln and "recommendation" in ln for ln in lines)
    assert "stages" in p.stdout and "load average" in p.stdout
