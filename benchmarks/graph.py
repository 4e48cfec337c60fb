"""Graph benchmark: edge-featured GAT on a 100k-node kNN graph, against PyG's GATv2Conv if present.

Run: ``python -m benchmarks.graph`` (``--nodes``, ``--k``, ``--dim`` to change the workload,
``--append PATH`` to add the result to a Markdown file such as benchmarks/RESULTS.md).
Each timing is the median of ``--repeats`` calls after one warm-up call.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import time

import numpy as np

from workbench.benchmarking import publish, script_parser, time_calls


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
            t = time_calls(lambda: mech.propagate(x, graph.edge_index, edge_attr), repeats).seconds
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
            t = time_calls(lambda: conv(xt, ei), repeats).seconds
        lines.append(f"PyG GATv2Conv, {heads} heads, no edge features: one forward {t:.3f} s (same process)")
    else:
        lines.append("PyG (torch_geometric) not installed: no peer figure")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = script_parser("python -m benchmarks.graph", __doc__)
    ap.add_argument("--nodes", type=int, default=100_000)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    lines = run(args.nodes, args.k, args.dim, args.heads, args.repeats)
    return publish(lines, ap, args, argv, "Graph attention")


if __name__ == "__main__":
    raise SystemExit(main())
