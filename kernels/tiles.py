"""Screen-sized tiles of attention maps: pooling a region of a dense map, and the exact tile of a
softmax dot-product map that is never materialised. Compute only (NumPy and the flash kernel);
:mod:`workbench.compare` validates the regions and chooses the method.

* :func:`max_pool` — rows and columns of a dense map max-pooled over given bins;
* :func:`pool_columns` — the columns of some rows pooled by ``"max"``, ``"sum"`` or ``"mean"``;
* :func:`softmax_tile` — ``w_ij = exp(s·q_i·k_j − lse_i)`` for sampled rows, ``lse_i`` over all
  allowed keys by the flash kernel (honouring ``causal`` at each query's true position), the
  visible scores computed block by block: a 100,000 × 100,000 map costs one tile.
"""
from __future__ import annotations

import numpy as np

__all__ = ["max_pool", "pool_columns", "softmax_tile"]


def max_pool(w: np.ndarray, row_starts: np.ndarray, r1: int, col_edges: np.ndarray) -> np.ndarray:
    """``max w[i, j]`` over rows ``[row_starts[a], row_starts[a+1])`` (the last up to ``r1``) and
    columns ``[col_edges[b], col_edges[b+1])``: float32 ``(len(row_starts), len(col_edges) − 1)``."""
    r0 = int(row_starts[0])
    c0, c1 = int(col_edges[0]), int(col_edges[-1])
    part = np.maximum.reduceat(w[r0:r1, c0:c1], row_starts - r0, axis=0)
    return np.maximum.reduceat(part, col_edges[:-1] - c0, axis=1).astype(np.float32, copy=False)


def pool_columns(w_rows: np.ndarray, edges: np.ndarray, reduce: str) -> np.ndarray:
    """Pool the columns ``[edges[b], edges[b+1])`` of ``w_rows`` (all ``Lk`` columns)."""
    part = w_rows[:, edges[0]:edges[-1]]
    starts = edges[:-1] - edges[0]
    if reduce == "max":
        return np.maximum.reduceat(part, starts, axis=1)
    s = np.add.reduceat(part.astype(np.float64), starts, axis=1)
    if reduce == "mean":
        s /= np.diff(edges)[None, :]
    return s


def softmax_tile(q, k, ridx, edges, *, scale: float, causal: bool = False, causal_offset: int = 0,
                 reduce: str = "max", backend: str = "auto") -> np.ndarray:
    """Exact softmax-dot-product tile of rows ``ridx`` (sorted) and column bins ``edges``, ``(h, w)``
    float64: ``lse_i`` over all allowed keys by the flash kernel, then the visible scores block by
    block, ``w = exp(s − lse)``, pooled per column bin by ``reduce``. Raises
    :class:`kernels.BackendError` when ``backend`` cannot serve."""
    import kernels

    dtype = np.float64 if (q.dtype == np.float64 and k.dtype == np.float64) else np.float32
    qs = np.ascontiguousarray(q[ridx], dtype=dtype)
    kk = np.ascontiguousarray(k, dtype=dtype)
    lk = kk.shape[0]
    offset = int(causal_offset)
    limit = ridx + offset  # causal: query ridx[i] may attend keys j <= limit[i]
    h, w = len(ridx), len(edges) - 1
    mask = None
    kmax = lk
    if causal:  # only keys up to the last sampled query's limit matter; the mask handles the rest
        kmax = int(min(lk, max(limit[-1] + 1, 0)))
        if kmax == 0:
            return np.zeros((h, w))
        mask = (np.arange(kmax)[None, :] <= limit[:, None])[None]
    zeros_v = np.zeros((1, kmax, 1), dtype)
    # read-only q, k, v (as the mechanisms' validated inputs are) and a writeable mask (as the
    # kernel's no-mask placeholder is): Numba types the write flag, so this reuses the kernel
    # compiled and cached for ordinary calls instead of compiling another specialisation
    args = [_readonly(a) for a in (qs[None], kk[None, :kmax], zeros_v)]
    _, lse = kernels.flash_attention(*args, mask=mask, scale=scale, backend=backend)
    lse = lse[0].astype(np.float64)
    c0, c1 = int(edges[0]), int(edges[-1])
    finite = np.isfinite(lse)
    out = np.full((h, w), -np.inf, dtype) if reduce == "max" else np.zeros((h, w))
    qsc = qs * dtype(scale)
    lse_t = np.where(finite, lse, 0.0).astype(dtype)[:, None]
    block = max(256, (1 << 22) // max(h, 1))  # ~4M scores (16 MiB in float32) per block
    for j0 in range(c0, c1, block):
        j1 = min(c1, j0 + block)
        if causal and j0 > limit[-1]:
            break  # every sampled query is masked from here on (rows are sorted)
        s = qsc @ kk[j0:j1].T  # (h, j1 - j0), BLAS
        if causal:  # rows are sorted, so only those with j0 <= limit < j1 - 1 need a partial mask
            s[limit < j0] = -np.inf
            for r in np.flatnonzero((limit >= j0) & (limit < j1 - 1)):
                s[r, limit[r] - j0 + 1:] = -np.inf
        lo = int(np.searchsorted(edges, j0, side="right")) - 1
        hi = int(np.searchsorted(edges, j1, side="left"))
        starts = np.maximum(edges[lo:hi], j0) - j0
        if reduce == "max":
            np.maximum(out[:, lo:hi], np.maximum.reduceat(s, starts, axis=1), out=out[:, lo:hi])
        else:
            p = np.exp(s - lse_t)  # exp(-inf) = 0 for masked keys
            p[~finite] = 0.0
            out[:, lo:hi] += np.add.reduceat(p.astype(np.float64), starts, axis=1)
    if reduce == "max":
        out = out.astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            out = np.where(finite[:, None] & np.isfinite(out), np.exp(out - lse[:, None]), 0.0)
        out = np.minimum(out, 1.0)
    elif reduce == "mean":
        out /= np.diff(edges)[None, :]
    return out


def _readonly(a: np.ndarray) -> np.ndarray:
    view = a.view()
    view.setflags(write=False)
    return view
