"""Centroid optimal-transport attention for one key set, the NumPy definition.

Given k-means centroids ``μ_1..μ_M`` of the keys and their labels, with the cost
``C(x, μ) = (s/2)·‖x − μ‖²`` (``s`` the logit scale, ``1/√d`` by default, so that
``−C(q, μ) = s·q·μ`` up to terms that do not change a softmax over keys but the centroid norm) and
the entropic regularisation ``ε = T`` (the temperature):

* member shares ``ρ_jc`` (each column sums to 1 over the keys): ``"soft"`` — responsibilities
  ``r_jc = softmax_c(−C(k_j, μ_c)/T)`` normalised per centroid, ``ρ_jc = r_jc/Σ_j' r_j'c``;
  ``"hard"`` — ``ρ_jc = 1[c(j) = c]/|c|``; the centroid measure ``b_c = Σ_j r_jc/n`` (soft) or
  ``|c|/n`` (hard), which sums to 1;
* the transport plan from the queries to the centroid measure: ``"per_query"`` — each query a unit
  source, ``π_ic = b_c·exp(−C_ic/T)/Σ_c' b_c'·exp(−C_ic'/T)`` (the entropic plan of one source with
  the target marginal as a prior: one Sinkhorn half-step, exact for the semi-relaxed problem);
  ``"query_set"`` — the balanced Sinkhorn plan between the uniform measure on the queries and ``b``
  (log domain, :mod:`kernels.reference.sinkhorn`), ``π_ic = P_ic/Σ_c P_ic``;
* key weights ``W_ij = Σ_c π_ic·ρ_jc`` (rows sum to 1: no mass is lost), ``out = W V = π·(ρᵀV)``.

Shapes: one key set, ``q (Lq, d)``, ``k (Lk, d)``, ``v (Lk, dv)``, ``centroids (M, d)``,
``labels (Lk,)``; computed in float64.
"""
from __future__ import annotations

import numpy as np

from kernels.reference.sinkhorn import log_sinkhorn
from kernels.reference.softmax import masked_softmax

PLANS = ("per_query", "query_set")
SPREADS = ("soft", "hard")


def cost(x, centroids, scale: float) -> np.ndarray:
    """``C_ic = (s/2)·‖x_i − μ_c‖²`` (float64, by one GEMM; clipped at 0): ``(n, d), (M, d) → (n, M)``.

    The expansion ``‖x‖² + ‖μ‖² − 2x·μ`` has an absolute error of a few ``ε·‖x‖²``, which is what a
    softmax over ``−C/T`` is sensitive to.
    """
    x = np.asarray(x, np.float64)
    mu = np.asarray(centroids, np.float64)
    d2 = np.einsum("nd,nd->n", x, x)[:, None] + np.einsum("md,md->m", mu, mu)[None, :] - 2.0 * (x @ mu.T)
    return 0.5 * float(scale) * np.maximum(d2, 0.0)


def member_shares(k, centroids, labels, scale: float, temperature: float, spread: str = "soft"):
    """``(ρ (Lk, M), b (M,))``: how each centroid's mass is spread over the keys, and the centroid measure."""
    M = centroids.shape[0]
    n = k.shape[0]
    if spread == "hard":
        r = np.zeros((n, M))
        r[np.arange(n), labels] = 1.0
    else:
        r = masked_softmax(-cost(k, centroids, scale) / float(temperature))
    mass = r.sum(axis=0)
    return r / mass[None, :], mass / n


def plan(q, centroids, b, scale: float, temperature: float, kind: str = "per_query", max_iter: int = 100,
         tol: float = 1e-9) -> np.ndarray:
    """Row-normalised transport plan ``π (Lq, M)`` from the queries to the centroid measure ``b``."""
    c = cost(q, centroids, scale)
    T = float(temperature)
    if kind == "query_set":
        lq = c.shape[0]
        P, _ = log_sinkhorn(np.full(lq, 1.0 / lq), b, c, T, max_iter, tol)
        return P / P.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        logb = np.log(b)
    return masked_softmax(logb[None, :] - c / T)


def weights(q, k, centroids, labels, scale, temperature, kind="per_query", spread="soft", max_iter=100, tol=1e-9):
    """Key weights ``W = π ρᵀ``: ``(Lq, Lk)`` float64."""
    rho, b = member_shares(k, centroids, labels, scale, temperature, spread)
    return plan(q, centroids, b, scale, temperature, kind, max_iter, tol) @ rho.T


def attention(q, k, v, centroids, labels, scale, temperature, kind="per_query", spread="soft", max_iter=100,
              tol=1e-9):
    """``out = π·(ρᵀ V)``: ``(Lq, dv)`` float64 (never forms ``Lq × Lk``)."""
    rho, b = member_shares(k, centroids, labels, scale, temperature, spread)
    return plan(q, centroids, b, scale, temperature, kind, max_iter, tol) @ (rho.T @ np.asarray(v, np.float64))
