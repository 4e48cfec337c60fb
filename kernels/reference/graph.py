"""Attention over an edge list, the definition: softmax per destination over its incoming edges.

PyG conventions: an edge ``e = (src_e → dst_e)`` lets destination ``i = dst_e`` attend source
``j = src_e``. Edges are grouped by destination in CSR form: ``perm`` sorts edges by destination
(stable), ``indptr[i]:indptr[i+1]`` are the (sorted) incoming edges of ``i``.

* segment softmax: ``α_e = exp(s_e − m_i) / Σ_{e' → i} exp(s_e' − m_i)``, ``m_i = max_{e' → i} s_e'``
  per head; a destination without incoming edges has no weights and output 0 (never NaN);
* aggregation: ``out_i = Σ_{e → i} α_e x_{src_e}`` (per head);
* GAT scores for one edge ``j → i`` with node projections ``z^q_i, z^k_j`` and edge features ``ε_e``:
  GATv1 ``LeakyReLU(⟨a_q, z^q_i⟩ + ⟨a_k, z^k_j⟩ + ⟨a_e, W_e ε_e⟩)``;
  GATv2 ``⟨a, LeakyReLU(z^q_i + z^k_j + W_e ε_e)⟩`` (Brody et al. 2022).
"""
from __future__ import annotations

import numpy as np



def csr_by_destination(dst, num_dst: int):
    """``(perm, indptr)``: ``dst[perm]`` is sorted (stable), ``indptr`` has ``num_dst + 1`` entries."""
    dst = np.asarray(dst, dtype=np.int64)
    perm = np.argsort(dst, kind="stable")
    counts = np.bincount(dst, minlength=num_dst)
    indptr = np.zeros(num_dst + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return perm, indptr


def _segment_ids(indptr):
    return np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))


def segment_softmax(scores, indptr):
    """Weights ``(E, H)`` (or ``(E,)``) of scores grouped by destination (edges sorted by ``indptr``)."""
    s = np.asarray(scores)
    squeeze = s.ndim == 1
    s2 = s[:, None] if squeeze else s
    E, H = s2.shape
    n = len(indptr) - 1
    seg = _segment_ids(indptr)
    m = np.full((n, H), -np.inf, dtype=s2.dtype)
    np.maximum.at(m, seg, s2)
    e = np.exp(s2 - m[seg]) if E else np.zeros_like(s2)
    total = np.zeros((n, H), dtype=s2.dtype)
    np.add.at(total, seg, e)
    w = e / total[seg] if E else e
    return w[:, 0] if squeeze else w


def segment_aggregate(weights, src, indptr, values):
    """``out[i, h] = Σ_{e → i} w[e, h] · values[src_e, h]``: ``(E, H), (E,), (Nd+1,), (Ns, H, F) → (Nd, H, F)``."""
    w = np.asarray(weights)
    n = len(indptr) - 1
    out = np.zeros((n,) + values.shape[1:], dtype=values.dtype)
    if len(w):
        np.add.at(out, _segment_ids(indptr), w[:, :, None] * values[np.asarray(src)])
    return out


def _leaky(x, slope):
    return np.where(x >= 0, x, x * slope)


def gat_scores(zq, zk, src, indptr, edge_attr, w_edge, att, variant, negative_slope):
    """Edge scores ``(E, H)`` for edges sorted by destination.

    ``zq (Nd, H, C)`` projected queries, ``zk (Ns, H, C)`` projected keys, ``edge_attr (E, De)``
    (``De`` may be 0), ``w_edge (H, C, De)``; ``att`` is ``(a_q, a_k, a_e)`` each ``(H, C)`` for
    ``"gatv1"`` and ``a (H, C)`` for ``"gatv2"``.
    """
    dst = _segment_ids(indptr)
    src = np.asarray(src)
    if edge_attr.shape[1]:
        ze = np.einsum("hct,et->ehc", w_edge, edge_attr)
    else:
        ze = np.zeros((len(src),) + zq.shape[1:], dtype=zq.dtype)
    if variant == "gatv1":
        a_q, a_k, a_e = att
        lin = (np.einsum("nhc,hc->nh", zq, a_q)[dst] + np.einsum("nhc,hc->nh", zk, a_k)[src]
               + np.einsum("ehc,hc->eh", ze, a_e))
        return _leaky(lin, negative_slope)
    z = zq[dst] + zk[src] + ze
    return np.einsum("ehc,hc->eh", _leaky(z, negative_slope), att)


def gat_attention(zq, zk, zv, src, indptr, edge_attr, w_edge, att, variant, negative_slope):
    """``(out (Nd, H, F), weights (E, H))`` of GAT attention over the sorted edge list."""
    s = gat_scores(zq, zk, src, indptr, edge_attr, w_edge, att, variant, negative_slope)
    w = segment_softmax(s, indptr)
    return segment_aggregate(w, src, indptr, zv), w


def softmax_aggregate(scores, src, indptr, values):
    """``(out (Nd, H, F), weights (E, H))`` for precomputed scores ``(E, H)``."""
    w = segment_softmax(scores, indptr)
    return segment_aggregate(w, src, indptr, values), w


def rope_edge_scores(q, k, src, indptr, positions, freqs):
    """``s_e = ⟨q_i, rot(k_j, p_e)⟩`` for every edge ``e = (j → i)`` (half-split RoPE, ``D = len(freqs)``).

    ``= Σ_{c<D} cos θ_c (q_c k_c + q_{c+D} k_{c+D}) + sin θ_c (q_{c+D} k_c − q_c k_{c+D})`` plus the
    unrotated coordinates beyond ``2D``, with ``θ_c = p_e · freqs_c``.
    """
    dst = _segment_ids(indptr)
    D = len(freqs)
    qi, kj = q[dst], k[np.asarray(src)]
    th = np.asarray(positions, np.float64)[:, None] * freqs[None, :]
    c, s = np.cos(th), np.sin(th)
    a, b = qi[:, :D], qi[:, D:2 * D]
    x, y = kj[:, :D], kj[:, D:2 * D]
    out = (c * (a * x + b * y) + s * (b * x - a * y)).sum(1) + (qi[:, 2 * D:] * kj[:, 2 * D:]).sum(1)
    return out.astype(q.dtype)
