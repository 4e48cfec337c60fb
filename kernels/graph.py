"""Attention over an edge list (graph attention): segment softmax per destination + aggregation.

Edges follow PyG: ``src`` (row 0 of ``edge_index``) is attended by ``dst`` (row 1). Every function
takes edges already sorted by destination with ``indptr`` (see :func:`csr_by_destination`).
"""
from __future__ import annotations

import numpy as np

from kernels.capabilities import declare
from kernels.dispatch import resolve_backend
from kernels.reference import graph as _ref
from kernels.reference.graph import csr_by_destination

#: What the kernel serves on each backend (:mod:`kernels.capabilities`).
GRAPH = declare("graph", graph=True)

VARIANTS = ("gatv1", "gatv2")

__all__ = ["GRAPH", "csr_by_destination", "edge_softmax_aggregate", "gat_attention", "rope_edge_scores"]


def edge_softmax_aggregate(scores, src, indptr, values, *, backend="auto"):
    """``α = softmax per destination of scores``, ``out_i = Σ_{e→i} α_e values[src_e]``.

    ``scores (E, H), src (E,), indptr (Nd+1,), values (Ns, H, F) → (out (Nd, H, F), α (E, H))``.
    A destination without incoming edges gets output 0.
    """
    be = resolve_backend(backend, (scores, values), GRAPH, graph=True)
    if be == "numpy":
        return _ref.softmax_aggregate(scores, src, indptr, values)
    from kernels.numba import graph as _nb

    return _nb.softmax_aggregate(scores, src, indptr, values)


def gat_attention(zq, zk, zv, src, indptr, *, edge_attr=None, w_edge=None, att, variant="gatv2",
                  negative_slope=0.2, backend="auto"):
    """GAT attention over the sorted edge list: ``(out (Nd, H, F), α (E, H))``.

    ``zq (Nd, H, C)`` projected queries (destinations), ``zk (Ns, H, C)`` projected keys and
    ``zv (Ns, H, F)`` projected values (sources), ``edge_attr (E, De)`` with ``w_edge (H, C, De)``
    (``None`` = no edge features), ``att``: ``(a_q, a_k, a_e)`` each ``(H, C)`` for ``"gatv1"``,
    ``a (H, C)`` for ``"gatv2"``. See :mod:`kernels.reference.graph` for the formulas.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    be = resolve_backend(backend, (zq, zk, zv), GRAPH, graph=True)
    E = len(src)
    H, C = zq.shape[1], zq.shape[2]
    if edge_attr is None or w_edge is None:
        edge_attr = np.zeros((E, 0), zq.dtype)
        w_edge = np.zeros((H, C, 0), zq.dtype)
    if be == "numpy":
        return _ref.gat_attention(zq, zk, zv, src, indptr, edge_attr, w_edge, att, variant, negative_slope)
    from kernels.numba import graph as _nb

    if variant == "gatv2":
        return _nb.gatv2_attention(zq, zk, zv, src, indptr, edge_attr, w_edge, att, negative_slope)
    # GATv1 scores separate into per-node and per-edge terms: three small GEMMs, then the kernel
    a_q, a_k, a_e = att
    dst = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    lin = np.einsum("nhc,hc->nh", zq, a_q)[dst] + np.einsum("nhc,hc->nh", zk, a_k)[np.asarray(src)]
    if edge_attr.shape[1]:
        lin += edge_attr @ np.einsum("hct,hc->th", w_edge, a_e)
    scores = np.where(lin >= 0, lin, lin * lin.dtype.type(negative_slope))
    return _nb.softmax_aggregate(scores, src, indptr, zv)


def rope_edge_scores(q, k, src, indptr, positions, freqs, *, backend="auto"):
    """Relative rotary scores ``⟨q_i, rot(k_j, p_e)⟩`` per edge ``e = (j → i)``, edges sorted by destination.

    ``q (Nd, d), k (Ns, d), src (E,), indptr (Nd+1,), positions (E,), freqs (⌊d/2⌋,)`` (the angle is
    ``p_e · freqs``; half-split rotation, coordinates beyond ``2⌊d/2⌋`` unrotated) ``→ (E,)``.
    """
    be = resolve_backend(backend, (q, k), GRAPH, graph=True)
    if be == "numpy":
        return _ref.rope_edge_scores(q, k, src, indptr, positions, freqs)
    from kernels.numba import graph as _nb

    return _nb.rope_edge_scores(q, k, src, indptr, positions, freqs)
