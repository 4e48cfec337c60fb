"""Benchmark of the optimal-transport and diffusion mechanisms against scaled dot-product attention.

Run: ``python -m benchmarks.theories`` (``--shape B H L d``, ``--rounds N``, ``--quick`` for a smoke
run at L=256 and one round, ``--append PATH`` to add the result to a Markdown file such as
benchmarks/RESULTS.md).

Each case runs in its own fresh process exactly as in :mod:`benchmarks.core` (seeded N(0,1)
float32 inputs, one warm-up call, then timed calls until ≥5 runs and ≥1 s; median; peak extra
memory = VmHWM − VmRSS around the timed calls). Every mechanism is measured in ``--rounds``
interleaved pairs with ``scaled_dot_product`` (Numba) — ours, then the peer, in alternation — and
the reported slowdown is the median of the per-pair ratios ``time(ours)/time(scaled_dot_product)``,
which cancels most of the machine's drift. Targets (issue 4): sliced Wasserstein ≤ 2×, diffusion
(5 Euler steps, kNN graph) ≤ 4×.
"""
from __future__ import annotations

import statistics
import sys

from workbench.benchmarking import fast_backend, publish, script_parser

#: (label, mechanism, parameters, target slowdown or None). Backends: Numba where the mechanism has a
#: Numba kernel, else the NumPy reference (centroid_ot).
CASES = [
    ("sliced_wasserstein (32 projections, full)", "sliced_wasserstein", {}, 2.0),
    ("sliced_wasserstein (two-stage, 48 candidates)", "sliced_wasserstein", {"num_candidates": 48}, None),
    ("centroid_ot (16 centroids, per-query plan)", "centroid_ot", {}, None),
    ("diffusion (kNN k=16, random walk, 5 Euler steps)", "diffusion", {}, 4.0),
    ("diffusion (kNN k=16, random walk, exact expm)", "diffusion", {"integrator": "expm"}, None),
]

PEER = "scaled_dot_product"


def run(shape: tuple, rounds: int) -> list[str]:
    from benchmarks.core import Case, measure

    peer_case = Case("mech", shape, PEER, "numba", {})
    lines = []
    peer_times = []
    for label, name, params, target in CASES:
        ours_case = Case("mech", shape, name, fast_backend(name), dict(params))
        ratios, mems, times = [], [], []
        error = None
        for _ in range(rounds):
            ours, peer = measure(ours_case), measure(peer_case)
            if not (ours.get("ok") and peer.get("ok")):
                error = (ours if not ours.get("ok") else peer).get("error", "failed")
                continue
            ratios.append(ours["median_s"] / peer["median_s"])
            times.append(ours["median_s"])
            peer_times.append(peer["median_s"])
            if ours.get("extra_mib") is not None:
                mems.append(ours["extra_mib"])
        if not ratios:
            lines.append(f"{label} [{ours_case.backend}]: not measured ({error})")
            continue
        ratios.sort()
        x = statistics.median(ratios)
        mem = f"{statistics.median(mems):.1f} MiB" if mems else "—"
        verdict = ""
        if target is not None:
            verdict = f" (target ≤ {target:g}×)" + ("  [met]" if x <= target else "  [MISSED]")
        lines.append(f"{label} [{ours_case.backend}] at {shape}: {statistics.median(times) * 1e3:.1f} ms, "
                     f"{x:.2f}× scaled_dot_product, median of {len(ratios)} interleaved pairs "
                     f"(range {ratios[0]:.2f}–{ratios[-1]:.2f}); peak extra memory {mem}{verdict}")
    if peer_times:
        lines.append(f"scaled_dot_product [numba] at {shape}: median {statistics.median(peer_times) * 1e3:.1f} ms "
                     f"over the {len(peer_times)} peer runs")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = script_parser("python -m benchmarks.theories", __doc__)
    ap.add_argument("--shape", type=int, nargs=4, metavar=("B", "H", "L", "d"), default=[1, 1, 4096, 64])
    ap.add_argument("--rounds", type=int, default=3, help="interleaved (ours, scaled_dot_product) pairs per case")
    ap.add_argument("--quick", action="store_true", help="smoke run: shape (1, 1, 256, 64), one round")
    args = ap.parse_args(argv)
    shape = (1, 1, 256, 64) if args.quick else tuple(args.shape)
    rounds = 1 if args.quick else max(1, args.rounds)
    lines = run(shape, rounds)
    return publish(lines, ap, args, argv, "Optimal transport and diffusion")


if __name__ == "__main__":
    raise SystemExit(main())
