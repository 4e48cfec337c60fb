"""Top-k selection, the one NumPy reference every kernel's selection is checked against.

Tie rule (everywhere in ``kernels``): rows are ranked by (score, index) — best score first, equal
scores by the smaller index first — i.e. exactly a stable sort of the scores. Masked-out entries
are never selected; a row with fewer than ``k`` allowed entries returns its allowed ones first and
then padding ``(-1, ±inf)``.
"""
from __future__ import annotations

import numpy as np


def top_k(scores, k: int, *, mask=None, largest: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best entries of every row of ``scores (..., n)``: ``(idx (..., k) int64, vals (..., k))``.

    ``largest``: best = largest, else smallest. Sorted by (score, index) (ties to the smaller index).
    ``mask (..., n)`` bool (broadcast): only ``True`` entries are candidates; missing ones are padded
    with index −1 and value ``−inf`` (``largest``) or ``+inf``. ``0 ≤ k``; ``k > n`` pads too.
    Cost ``O(n + k log k)`` per row (argpartition, then a stable sort of the ``k + 1`` kept).
    """
    s = np.asarray(scores)
    n = s.shape[-1]
    k = int(k)
    if k < 0:
        raise ValueError(f"k: expected an integer >= 0, got {k}")
    # rank by the key "smaller is better"; masked entries get +inf and an out-of-range index
    key = s.astype(np.float64) if largest is False else -s.astype(np.float64)
    if mask is not None:
        allowed = np.broadcast_to(np.asarray(mask, bool), s.shape)
        key = np.where(allowed, key, np.inf)
    else:
        allowed = None
    lead = s.shape[:-1]
    key2 = key.reshape(-1, n)
    # masked entries rank after every allowed one, even an allowed score of ∓inf
    tier = np.zeros(key2.shape, np.int8) if allowed is None else (~allowed).reshape(-1, n).astype(np.int8)
    rows = key2.shape[0]
    kk = min(k + 1, n)  # one more than needed: a tie across the k-th shows as sel[k] == sel[k-1]
    if kk <= 0:
        part = np.zeros((rows, 0), np.int64)
    elif kk < n:
        part = np.argpartition(key2, kk - 1, axis=1)[:, :kk]
    else:
        part = np.tile(np.arange(n), (rows, 1))
    sel = np.take_along_axis(key2, part, 1)
    order = np.lexsort((part, sel, np.take_along_axis(tier, part, 1)), axis=1)
    part = np.take_along_axis(part, order, 1)
    sel = np.take_along_axis(sel, order, 1)
    m = min(k, n)
    idx = part[:, :m].astype(np.int64)
    kv = sel[:, :m].copy()
    if kk > m and m > 0:  # argpartition may have kept any of the tied k-th entries: redo those rows
        for r in np.flatnonzero(sel[:, m] == sel[:, m - 1]):
            cand = np.flatnonzero(key2[r] <= sel[r, m - 1])
            o = np.lexsort((cand, key2[r, cand], tier[r, cand]))[:m]
            idx[r], kv[r] = cand[o], key2[r, cand[o]]
    if allowed is not None:
        ok = np.take_along_axis(allowed.reshape(-1, n), idx, 1)
        idx[~ok] = -1
    vals = np.take_along_axis(s.reshape(-1, n), np.maximum(idx, 0), 1).astype(np.result_type(s.dtype, np.float32))
    pad = -np.inf if largest else np.inf
    vals[idx < 0] = pad
    if k > m:
        idx = np.concatenate([idx, np.full((rows, k - m), -1, np.int64)], 1)
        vals = np.concatenate([vals, np.full((rows, k - m), pad, vals.dtype)], 1)
    return idx.reshape(lead + (k,)), vals.reshape(lead + (k,))


def top_k_mask(scores, k: int, *, mask=None, largest: bool = True) -> np.ndarray:
    """Bool ``(..., n)``: ``True`` at the entries :func:`top_k` selects (at most ``k`` per row)."""
    s = np.asarray(scores)
    idx, _ = top_k(s, k, mask=mask, largest=largest)
    keep = np.zeros(s.shape, bool)
    ok = idx >= 0
    np.put_along_axis(keep, np.where(ok, idx, 0), ok, axis=-1)
    # a padded slot wrote False at index 0: restore index 0 where it was really selected
    keep[..., 0] |= (idx == 0).any(-1)
    return keep
