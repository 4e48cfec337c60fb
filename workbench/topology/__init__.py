"""Topology of a key window: kNN coherence metrics and the three-mode attention policy.

Coherence metrics score a window of keys ``K (n, d)`` in ``[0, 1]`` (higher = more coherent)
from its exact k-nearest-neighbour graph (:func:`workbench.graph.knn_graph`, blocked BLAS and a
Numba top-k, never an ``n × n`` matrix): each key ``i`` gets the ``k = min(k, n − 1)`` nearest
other keys ``j`` by Euclidean distance (ties by the smaller index), one edge ``(i, j)`` each.

* ``boundary_mass``: fraction of edges with ``|i − j| ≤ ⌊n/4⌋``;
* ``cut_proxy``: ``1 −`` fraction of edges with ``i`` and ``j`` on opposite sides of ``⌊n/2⌋``
  (indices ``< ⌊n/2⌋`` versus ``≥ ⌊n/2⌋``);
* ``disagreement``: ``1 − min(1, mean_i Var_j cos(k_i, k_j))``, the population variance over the
  neighbours ``j`` of each key ``i``;
* ``similarity_variance``: ``clip(μ·(1 − min(1, σ)), 0, 1)`` with ``μ, σ`` the mean and population
  standard deviation of ``cos(k_i, k_j)`` over all edges;
* ``spectral_gap`` (ours, order-free): ``min(1, λ₂)``, the Fiedler value of the normalised
  Laplacian ``I − D^{-1/2} A D^{-1/2}`` of the symmetrised kNN graph (0 when the graph falls
  apart into components, larger when the window is one well-connected neighbourhood).

``cos`` is 0 when either norm is below 1e-8 and is clipped to ``[−1, 1]``. A window of one key
scores 1.0 on every metric (as upstream). **Order:** ``boundary_mass`` and ``cut_proxy`` compare
the keys' *sequence positions* with their geometric neighbourhoods, so they only mean something
when the keys come in a meaningful order (tokens of a sequence) and they change when the keys are
permuted; ``disagreement``, ``similarity_variance`` and ``spectral_gap`` do not depend on the order.

:class:`AttentionPolicy` turns coherence into a mode, Stable / Cautious / Freeze, with hysteresis
and a refresh period (docs/upstream.md#topology), and keeps a history for plotting.
Paper (topological gating as in the seed crate): no single paper; the spectral gap is Fiedler,
*Algebraic connectivity of graphs*, 1973, and Chung, *Spectral Graph Theory*, 1997.
"""
from __future__ import annotations

from workbench.topology.coherence import (DEFAULT_METRICS, METRICS, ORDER_FREE_METRICS, boundary_mass,
                                          coherence_scores, cut_proxy, disagreement, metric_names,
                                          similarity_variance, spectral_gap, window_coherence)
from workbench.topology.policy import MODES, AttentionPolicy, Mode, PolicyRecord, mode_names

__all__ = [
    "METRICS", "DEFAULT_METRICS", "ORDER_FREE_METRICS", "MODES", "Mode", "PolicyRecord", "AttentionPolicy",
    "boundary_mass", "cut_proxy", "disagreement", "similarity_variance", "spectral_gap",
    "coherence_scores", "window_coherence", "metric_names", "mode_names",
]
