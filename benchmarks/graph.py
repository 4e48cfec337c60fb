"""Graph benchmark: edge-featured GAT on a 100k-node kNN graph, against PyG's GATv2Conv if present.

Run: ``python -m benchmarks.graph`` (``--nodes``, ``--k``, ``--dim`` to change the workload,
``--append PATH`` to add the result to a Markdown file such as benchmarks/RESULTS.md).
Each timing is the median of ``--repeats`` calls after one warm-up call.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time

import numpy as np


def _median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(nodes: int, k: int, dim: int, heads: int, repeats: int) -> list[str]:
    import workbench
    from workbench.graph import knn_graph

    rng = np.random.default_rng(0)
    x = rng.standard_normal((nodes, dim), dtype=np.float32)
    t0 = time.perf_counter()
    graph = knn_graph(x, k)
    build = time.perf_counter() - t0
    lines = [f"exact kNN graph: {nodes} nodes, k={k}, d={dim}: {graph.num_edges} edges, built in {build:.1f} s"]
    dist = graph.distance[:, None].astype(np.float32)
    for variant in ("gatv2", "gatv1"):
        for edge_attr in (None, dist):
            mech = workbench.make("edge_featured", num_heads=heads, variant=variant)
            t = _median_time(lambda: mech.propagate(x, graph.edge_index, edge_attr), repeats)
            feats = "distance edge features" if edge_attr is not None else "no edge features"
            lines.append(f"edge_featured {variant}, {heads} heads, {feats}: one propagate {t:.3f} s (target < 2 s)"
                         + ("  [met]" if t < 2 else "  [MISSED]"))
    if importlib.util.find_spec("torch_geometric") is not None:
        import torch
        from torch_geometric.nn import GATv2Conv

        torch.set_num_threads(os.cpu_count() or 1)
        conv = GATv2Conv(dim, dim // heads, heads=heads, add_self_loops=True)
        xt, ei = torch.from_numpy(x), torch.from_numpy(graph.edge_index.astype(np.int64))
        with torch.no_grad():
            t = _median_time(lambda: conv(xt, ei), repeats)
        lines.append(f"PyG GATv2Conv, {heads} heads, no edge features: one forward {t:.3f} s (same process)")
    else:
        lines.append("PyG (torch_geometric) not installed: no peer figure")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.graph", description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=100_000)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--append", metavar="PATH", help="append the result as a Markdown section to PATH")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    lines = run(args.nodes, args.k, args.dim, args.heads, args.repeats)
    print("\n".join(lines))
    if args.append:
        with open(args.append, "a") as fh:
            fh.write("\n## Graph attention (`python -m benchmarks.graph`)\n\n")
            fh.write(f"Command: `python -m benchmarks.graph {' '.join(sys.argv[1:] if argv is None else argv)}`\n\n")
            fh.writelines(f"- {line}\n" for line in lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
