"""Smoke tests of the benchmark scripts: ``python -m benchmarks.core --quick`` runs and lists every
mechanism; ``benchmarks.blas_threads`` runs both limiters.

Needs no PyTorch: without it the torch rows and the ratios show "—" (and the port-equality check skips).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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


def test_blas_threads_benchmark_runs_both_limiters():
    p = subprocess.run([sys.executable, "-m", "benchmarks.blas_threads", "--calls", "2", "--rounds", "1"],
                       cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr[-2000:]
    rows = [line for line in p.stdout.splitlines() if line.startswith("| ") and " ms | " in line]
    assert [r.split("|")[1].strip() for r in rows] == ["threadpoolctl", "blas_threads"], p.stdout
    assert "ratio threadpoolctl / blas_threads" in p.stdout


def test_port_equality_script_measures_the_originals():
    pytest.importorskip("torch_geometric")
    import numpy as np

    from benchmarks import port_equality

    diffs = {**port_equality.gat(np.random.default_rng(0)), **port_equality.mha(np.random.default_rng(1))}
    assert set(diffs) == {"PyG GATv2Conv", "PyG GATConv", "torch.nn.MultiheadAttention"}
    assert all(0 <= d <= 1e-5 for d in diffs.values())


def test_scale_benchmark_compares_sharded_with_single_process():
    from benchmarks import scale

    r = scale.run(length=2048, dim=16, workers=2, shards=3, repeats=1, query_block=700)
    assert r["max_abs_diff"] < 1e-5 and r["single_s"] > 0 and r["sharded_s"] > 0
    assert len(r["worker_extra_mib"]) == 2
    assert "| 2,048 | 16 | 2 × 3 (700) |" in scale.markdown(r)


def test_the_report_at_scale_benchmark_compares_with_exact_subsets(tmp_path):
    from benchmarks import scale

    r = scale.report_run(n=4000, subset=2000, seeds=1, path=str(tmp_path / "keys.npy"), sample=600)
    (row,) = r["rows"]
    assert row["sample"] == {"size": 600, "replicates": 3, "of": 4000, "disjoint": True}
    assert row["peak_mib"] > 0 and row["seconds"] > 0 and set(row["errors"]) >= {"ot_distance", "h0_persistence"}
    assert row["exact_subset_choice"] in ("Standard", "Sparse", "Geometric", "Diffusion")
    text = scale.report_markdown(r)
    assert "equals the exact report" in text and "--sample 600" in text


def test_real_derived_keys_are_unit_norm_and_seeded():
    import numpy as np

    from benchmarks import scale

    a, b = scale.real_derived(500, seed=3), scale.real_derived(500, seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (500, 384) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)


def test_core_benchmark_cases_run_as_a_dask_grid():
    p = subprocess.run([sys.executable, "-m", "benchmarks.core", "--quick", "--only", "flash", "--dask"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "cases measured on the cluster" in p.stderr
    rows = [line for line in p.stdout.splitlines() if line.startswith("flash")]
    assert rows and all("error" not in line for line in rows), p.stdout


def test_the_gpu_benchmark_says_when_there_is_no_gpu():
    pytest.importorskip("numpy")
    import importlib.util

    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed: the benchmark would measure (run it on the GPU machine)")
    p = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--quick"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0 and "nothing measured" in p.stdout

