"""Key filtering for mechanisms whose structure is built from the keys (a graph, clusters).

A boolean mask means "query i may attend key j". Mechanisms that build something from the key set
(the diffusion graph, the k-means centroids) build it from the keys a query may attend, as
upstream's key filtering does (docs/upstream.md#masks): masked keys neither get weight nor shape the
structure. Queries with the same allowed set share one structure.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from workbench.inputs import Batch


def key_subsets(batch: Batch) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """``(b, rows, keys)`` for each batch item ``b`` and each distinct non-empty allowed-key set:
    the query indices ``rows`` that may attend exactly the key indices ``keys`` (both int arrays,
    ascending; CuPy arrays for a batch of CuPy arrays, to index it on the GPU). Queries with no
    allowed key are never yielded (their weights and output stay 0)."""
    from kernels.dispatch import array_module
    from kernels.gpu.host import to_host

    B, lq = batch.q.shape[:2]
    lk = batch.k.shape[1]
    # the sets are found on the host (a boolean mask, read once); the indices go where the arrays are
    mask = to_host(batch.mask)
    index = array_module(batch.q).asarray
    every_row, every_key = index(np.arange(lq)), index(np.arange(lk))
    for b in range(B):
        if mask is None:
            yield b, every_row, every_key
            continue
        m = np.broadcast_to(mask[b if mask.shape[0] > 1 else 0], (lq, lk))
        if m.shape[0] == 1 or (m == m[:1]).all():
            if m[0].any():
                yield b, every_row, index(np.flatnonzero(m[0]))
            continue
        uniq, inverse = np.unique(m, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        for u in range(uniq.shape[0]):
            if uniq[u].any():
                yield b, index(np.flatnonzero(inverse == u)), index(np.flatnonzero(uniq[u]))

