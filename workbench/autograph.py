"""Graphs for graph mechanisms when the caller gives none: a kNN (or HNSW) graph of the keys.

:func:`call_with_graph` runs ``fn(kw)`` with ``kw = {"graph": g}`` for a mechanism that needs a
graph and ``{}`` for the others; :mod:`workbench.compare` (the dashboard) and
:mod:`workbench.calibration` both use it, so a mechanism sees the same graph everywhere.
"""
from __future__ import annotations

import time

from workbench.errors import ConfigurationError

__all__ = ["GRAPH_CHOICES", "AUTO_HNSW_ABOVE", "auto_graph", "call_with_graph"]

#: ``"auto"``: the exact kNN graph up to :data:`AUTO_HNSW_ABOVE` keys, HNSW above it (and HNSW
#: wherever the mechanism refuses a kNN graph: one that reads HNSW levels); ``"knn"`` / ``"hnsw"``
#: force one kind.
GRAPH_CHOICES = ("auto", "knn", "hnsw")
#: Keys above which "auto" builds an HNSW graph first: the exact kNN graph costs O(n²·d), HNSW about
#: O(n log n · d). Measured on 2 cores, 64-d, k = 8 (benchmarks/RESULTS.md): 50,000 keys kNN 5.0 s,
#: HNSW 7.5 s; 100,000 keys kNN 19.3 s, HNSW 17.2 s — the crossover.
AUTO_HNSW_ABOVE = 100_000


def auto_graph(x, graph_kind: str, graph_k: int, seed: int):
    """``(graph, note)``: a ``graph_kind`` graph on the rows of ``x``, ``k`` capped at ``n − 1``."""
    from workbench.data.prepare import graph_for

    k = max(1, min(int(graph_k), x.shape[0] - 1))
    return graph_for(x, graph_kind, k, seed=seed), f"graph: {graph_kind} on the keys, k={k}"


def call_with_graph(fn, info, keys, graph, graph_kind: str, graph_k: int, seed: int, prefer=None):
    """``fn(kw)`` with ``kw = {"graph": g}`` for a mechanism that needs a graph, else ``{}``.

    Returns ``(result, graph, note, seconds)``: ``note`` is None unless a graph was built here,
    ``seconds`` times the successful call alone (not the graph). ``graph_kind`` is one of
    :data:`GRAPH_CHOICES`. ``prefer``: a graph to try first when ``graph`` is None (e.g. the one
    that came with the data); a mechanism that refuses it (one that needs HNSW levels) gets a
    graph built here instead.
    """
    def timed(kw):
        t0 = time.perf_counter()
        out = fn(kw)
        return out, time.perf_counter() - t0

    if graph is not None or not info.needs_graph:
        out, sec = timed({} if graph is None else {"graph": graph})
        return out, graph, None, sec
    if graph_kind not in GRAPH_CHOICES:
        raise ConfigurationError(f"graph_kind: expected one of {GRAPH_CHOICES}, got {graph_kind!r}")
    if prefer is not None:
        try:
            out, sec = timed({"graph": prefer})
            return out, prefer, f"graph: the data's own ({prefer.num_edges:,} edges)", sec
        except ConfigurationError:
            pass
    if graph_kind != "auto":
        kinds = (graph_kind,)
    else:
        kinds = ("hnsw", "knn") if keys.shape[0] > AUTO_HNSW_ABOVE else ("knn", "hnsw")
    for i, kind in enumerate(kinds):
        g, note = auto_graph(keys, kind, graph_k, seed)
        try:
            out, sec = timed({"graph": g})
            return out, g, note, sec
        except ConfigurationError:
            if i == len(kinds) - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
