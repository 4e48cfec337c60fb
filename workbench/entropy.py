"""Attention entropy: per row, normalised by what the row may attend, and estimated from a key sample.

One definition serves calibration (:mod:`workbench.calibration`), the report and the dashboard's
diagnostics:

* :func:`row_entropy` — ``H_i = −Σ_j w_ij ln w_ij`` (nats, ``0 ln 0 = 0``) of each row of
  ``w (..., Lk)``.
* :func:`normalised_entropy` — ``H_i / ln n_i`` with ``n_i`` the number of keys row ``i`` may
  attend (its *support*: every key for dense attention, the neighbours for graph attention, the
  window for windowed attention): 0 for one-hot, 1 for uniform over the support. Rows with
  ``n_i ≤ 1`` have no choice to make and give NaN (left out of means).
* :func:`replicated_entropy` — the entropy the row would have over all ``N`` keys when ``w`` is
  its softmax over a uniform sample of ``m`` of them: each sampled key stands for ``c_j`` keys
  with similar scores (``c_j = 1`` for the query's own key when it is in the sample, else
  ``c = (N − 1)/(m − 1)``, or ``N/m`` without an own key), so the full row gives the group of key
  ``j`` the mass ``P_j = c_j w_j / Σ_l c_l w_l``, spread evenly over its ``c_j`` keys:
  ``H = −Σ_j P_j ln P_j + Σ_j P_j ln c_j``. Exact when the sample is all keys; a consistent
  (self-normalised importance) estimate otherwise.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["row_entropy", "softmax_entropy", "normalised_entropy", "replicated_entropy", "support"]


def row_entropy(w) -> np.ndarray:
    """``−Σ_j w_ij ln w_ij`` of each row of ``w (..., Lk)`` in nats, float64, ``0 ln 0 = 0``."""
    w = np.asarray(w, dtype=np.float64)
    pos = w > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(pos, w * np.log(np.where(pos, w, 1.0)), 0.0)
    return np.maximum(-terms.sum(axis=-1), 0.0)


def softmax_entropy(logits) -> np.ndarray:
    """Entropy in nats of each row of ``softmax(logits)``, ``logits (..., Lk)`` finite, from the
    logits themselves: ``H = ln Σ_j e^{z_j} − Σ_j p_j z_j`` with ``z = logits − max``, so that no
    weight underflows to a ``0 ln 0`` cut-off (float64)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=-1, keepdims=True)
    return np.maximum(np.log(s[..., 0]) - np.sum(e / s * z, axis=-1), 0.0)


def support(w) -> np.ndarray:
    """Number of keys with a positive weight in each row of ``w (..., Lk)`` (int64)."""
    return np.count_nonzero(np.asarray(w) > 0, axis=-1)


def normalised_entropy(w, n=None) -> np.ndarray:
    """``H_i / ln n_i`` per row of ``w (..., Lk)``; ``n`` (scalar or per row) defaults to ``Lk``.

    NaN where ``n_i ≤ 1`` (a row with at most one attendable key has no entropy to normalise).
    """
    w = np.asarray(w, dtype=np.float64)
    h = row_entropy(w)
    n = np.broadcast_to(np.asarray(w.shape[-1] if n is None else n, dtype=np.float64), h.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 1, h / np.log(np.where(n > 1, n, 2.0)), np.nan)


def replicated_entropy(w, total, own=None, sampled=None) -> np.ndarray:
    """Estimated entropy (nats) of each row over ``total`` keys from its softmax ``w (m, k)`` over a sample.

    ``total``: the keys each row attends in the full set (a number, or one per row);
    ``sampled``: the keys it attends in the sample (default: all ``k`` columns); ``own (m,)``: the
    column of each row's own key in the sample, or -1 / None when the row's query is not among the
    sampled keys. See the module docstring for the estimator.
    """
    w = np.asarray(w, dtype=np.float64)
    m, k = w.shape
    total = np.broadcast_to(np.asarray(total, dtype=np.float64), (m,))
    sampled = np.broadcast_to(np.asarray(k if sampled is None else sampled, dtype=np.float64), (m,))
    rows = np.arange(m)
    own = np.full(m, -1) if own is None else np.asarray(own)
    has_own = own >= 0
    # every sampled key but the row's own one stands for c keys of the full set (c ≥ 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(has_own, (total - 1) / np.maximum(sampled - 1, 1), total / np.maximum(sampled, 1))
    c = np.maximum(c, 1.0)[:, None]
    if np.all(c == 1.0):
        return row_entropy(w)
    mult = np.broadcast_to(c, w.shape).copy()
    mult[rows[has_own], own[has_own]] = 1.0
    u = mult * w  # the mass of each sampled key's group in the full row
    tot = u.sum(axis=-1, keepdims=True)
    p = np.divide(u, tot, out=np.zeros_like(u), where=tot > 0)
    return row_entropy(p) + np.sum(p * np.log(mult), axis=-1)


def mean_ratio(h, n) -> float:
    """``mean_i h_i / ln n_i`` over rows with ``n_i > 1`` (NaN if none)."""
    h = np.asarray(h, dtype=np.float64)
    n = np.broadcast_to(np.asarray(n, dtype=np.float64), h.shape)
    ok = n > 1
    if not ok.any():
        return math.nan
    return float(np.mean(h[ok] / np.log(n[ok])))
