"""Benchmark of the unified report: ``analyze_keys`` on 10,000 × 128 keys (target: under 3 s on 2 cores).

Run from the repository root::

    python -m benchmarks.report                  # 10,000 × 128, Gaussian and clustered keys
    python -m benchmarks.report --n 2000 --repeats 1
    python -m benchmarks.report --append PATH    # add the lines to a Markdown file

One warm-up call on the full shape (it also loads the Numba kernels of the kNN graph), then the
median (and the best) of ``--repeats`` timed calls. The same run times the exact kNN graph alone
(:func:`workbench.graph.knn_graph`, ``k = 10``), the expensive part the report cannot avoid, and
reports the report's time as a ratio to it; and it times each stage once (kNN graph, coherence,
H0 persistence, Gaussian kNN affinity, sliced Wasserstein, features) to show where the time goes.
Also prints the CPU time of the calls (all threads; on an idle 2-core machine the wall time lies
between CPU/2 and CPU) and the load average before and after: the machine is shared, so compare
only figures of one run.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from workbench.benchmarking import publish, script_parser, time_calls


def _stages(keys: np.ndarray) -> list[str]:
    from workbench.diffusion import diffusion_energy, knn_affinity
    from workbench.graph import knn_graph
    from workbench.report import features as F
    from workbench.report.persistence import h0_persistence
    from workbench.topology import coherence_scores
    from workbench.transport import sliced_wasserstein_distance
    from workbench.calibration import calibrate

    k64 = keys.astype(np.float64)
    out = []

    def stage(name, fn):
        t0 = time.perf_counter()
        r = fn()
        out.append(f"{name} {time.perf_counter() - t0:.2f} s")
        return r

    g = stage("knn_graph(k=10)", lambda: knn_graph(k64, 10))
    stage("coherence", lambda: coherence_scores(k64, 8, graph=g))
    stage("H0 persistence (kNN + MST)", lambda: h0_persistence(k64, graph=g))
    w = stage("knn_affinity(k=8)", lambda: knn_affinity(k64, 8))
    stage("diffusion_energy", lambda: diffusion_energy(k64 @ k64.mean(0)[:, None], w))
    stage("sliced_wasserstein(64)", lambda: sliced_wasserstein_distance(k64.mean(0)[None], k64))
    stage("features (gromov, structure, norm share)", lambda: (F.gromov_delta(k64), F.key_structure(k64, w),
                                                               F.norm_share(k64)))
    stage("calibrate(scaled_dot_product)", lambda: calibrate("scaled_dot_product", k64))
    return out


def run(n: int, dim: int, repeats: int) -> list[str]:
    from workbench.graph import knn_graph
    from workbench.report import analyze_keys
    from workbench.report.suite import noisy_cluster_keys

    rng = np.random.default_rng(0)
    datasets = {
        "gaussian": rng.standard_normal((n, dim)).astype(np.float32),
        "noisy clusters": noisy_cluster_keys(clusters=10, per_cluster=n // 10, dim=dim, seed=0).keys,
    }
    lines = [f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)"]
    for name, keys in datasets.items():
        # one warm-up call each (Numba kernels, BLAS threads), then the median of `repeats`
        ours = time_calls(lambda: analyze_keys(keys), repeats)
        peer = time_calls(lambda: knn_graph(keys.astype(np.float64), 10), repeats)
        t, best, cpu, kt, kbest = ours.seconds, ours.best, ours.cpu_seconds, peer.seconds, peer.best
        r = analyze_keys(keys)
        ok = "met" if t < 3.0 else "MISSED"
        lines.append(f"analyze_keys {name} {keys.shape[0]} x {keys.shape[1]}: {t:.2f} s median of {repeats} "
                     f"(best {best:.2f} s; target < 3 s: {ok}), CPU {cpu:.2f} s; {t / kt:.1f}x one exact "
                     f"knn_graph(k=10) ({kt:.2f} s median, best {kbest:.2f} s, same run); "
                     f"recommendation {r.recommendation.choice}, health {r.health_score:.2f}, "
                     f"persistence {r.settings['persistence_method']}")
        lines.append("  stages (one call each): " + "; ".join(_stages(keys)))
    lines.append(f"load average after: {os.getloadavg()[0]:.2f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = script_parser("python -m benchmarks.report", __doc__)
    ap.add_argument("--n", type=int, default=10_000, help="number of keys (default 10000)")
    ap.add_argument("--dim", type=int, default=128, help="key dimension (default 128)")
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per case (median; default 3)")
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    lines = run(args.n, args.dim, max(1, args.repeats))
    return publish(lines, ap, args, argv, "Unified report")


if __name__ == "__main__":
    raise SystemExit(main())
