"""Graphs built for graph mechanisms: "auto" takes the exact kNN graph up to AUTO_HNSW_ABOVE keys
and HNSW above it; an explicit kind is kept."""
from __future__ import annotations

import numpy as np

import workbench
from workbench import autograph


def _note(n, kind="auto"):
    x = np.random.default_rng(n).standard_normal((n, 8)).astype(np.float32)
    info = workbench.registry["edge_featured"]
    mech = workbench.make("edge_featured", num_heads=2)
    _, graph, note, _ = autograph.call_with_graph(lambda kw: mech(x, x, x, **kw), info, x, None, kind, 4, 0)
    return note, graph


def test_auto_switches_to_hnsw_above_the_documented_size(monkeypatch):
    monkeypatch.setattr(autograph, "AUTO_HNSW_ABOVE", 50)
    note, g = _note(40)
    assert note.startswith("graph: knn") and g.layer is None
    note, g = _note(60)
    assert note.startswith("graph: hnsw") and g.layer is not None
    note, _ = _note(60, "knn")  # an explicit kind is kept whatever the size
    assert note.startswith("graph: knn")

