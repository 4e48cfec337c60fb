"""Numba top-k selection inside kernels: the one in-kernel helper every Numba kernel that selects calls.

Same tie rule as :mod:`kernels.reference.select`: rank by (score, index), equal scores to the
smaller index. Two forms, both into caller-provided buffers (no allocation per row):

* :func:`insert_sorted` — a bounded ascending ``k``-list fed one candidate at a time (one pass over
  a row, ``O(n + k·#insertions)``; the kNN kernels);
* :func:`top_k_mask_row` — a bool row marking the ``k`` largest allowed scores, threshold found by
  quickselect (``O(n)`` expected; the Lorentz cascade's top-k form).
"""
from __future__ import annotations

from numba import njit


@njit(inline="always", cache=True)
def insert_sorted(vals, idx, m, x, j):
    """Insert ``(x, j)`` into the ascending list ``vals[:m], idx[:m]`` of capacity ``k = len(vals)``.

    Fed in increasing ``j``, an equal ``x`` goes after the entries already there, so ties keep the
    smaller index; when full, ``x`` enters only if ``x < vals[k − 1]`` (the worst is dropped).
    Returns the new length ``min(m + 1, k)``.
    """
    k = vals.shape[0]
    if m == k and not x < vals[k - 1]:
        return m
    p = m if m < k else k - 1
    while p > 0 and vals[p - 1] > x:
        vals[p] = vals[p - 1]
        idx[p] = idx[p - 1]
        p -= 1
    vals[p] = x
    idx[p] = j
    return m + 1 if m < k else m


@njit(error_model="numpy", cache=True)
def kth_smallest(a, n, kk):
    """The ``kk``-th smallest (0-based) of ``a[:n]`` by Hoare quickselect (reorders ``a``)."""
    lo, hi = 0, n - 1
    while lo < hi:
        pivot = a[(lo + hi) // 2]
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if kk <= j:
            hi = j
        elif kk >= i:
            lo = i
        else:
            return a[kk]
    return a[kk]


@njit(error_model="numpy", cache=True)
def top_k_mask_row(s0, allowed, top_k, keep, vals):
    """``keep[j]`` for the ``top_k`` allowed keys of largest ``s0`` (ties: lower index first);
    every allowed key when there are at most ``top_k``. ``vals`` is a work row (length ≥ ``len(s0)``)."""
    lk = s0.shape[0]
    n = 0
    for j in range(lk):
        n += allowed[j]
    if n <= top_k:
        for j in range(lk):
            keep[j] = allowed[j]
        return
    c = 0
    for j in range(lk):
        if allowed[j]:
            vals[c] = s0[j]
            c += 1
    thr = kth_smallest(vals, n, n - top_k)  # the top_k-th largest
    above = 0
    for j in range(lk):
        above += allowed[j] and s0[j] > thr
    ties = top_k - above
    for j in range(lk):
        k = False
        if allowed[j]:
            if s0[j] > thr:
                k = True
            elif s0[j] == thr and ties > 0:
                k = True
                ties -= 1
        keep[j] = k


@njit(cache=True)
def top_k_rows(scores, k, largest, idx, vals):
    """Rows of ``scores (R, n)`` → the ``k`` best ``(idx (R, k), vals (R, k))`` sorted by (score, index),
    by :func:`insert_sorted` (a test and reference-parity entry; kernels call the row helpers)."""
    R, n = scores.shape
    for r in range(R):
        m = 0
        for j in range(n):
            x = scores[r, j] if not largest else -scores[r, j]
            m = insert_sorted(vals[r], idx[r], m, x, j)
        if largest:
            for c in range(m):
                vals[r, c] = -vals[r, c]
