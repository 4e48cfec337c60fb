"""Optimal transport between point clouds: sliced-Wasserstein distances, log-domain Sinkhorn, k-means.

* :func:`sliced_wasserstein_distance` — the true ``SW_p`` between two empirical measures (sorted
  projections compared quantile by quantile, exact for unequal sizes), batched.
* :func:`sinkhorn` — the entropic transport plan in the log domain (stable for small ``ε``), batched.
* :func:`kmeans` — Lloyd's algorithm with seeded k-means++ initialisation and no empty clusters.

These are the building blocks of the ``sliced_wasserstein`` and ``centroid_ot`` mechanisms and of
the report's OT distance.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from kernels.reference import sinkhorn as _sk
from kernels.reference import sliced_wasserstein as _sw
from workbench import checks as C
from workbench.errors import ConfigurationError, DataError, ShapeError

__all__ = ["random_directions", "sliced_wasserstein_distance", "sinkhorn", "kmeans"]


# -- validation -----------------------------------------------------------------------------------

def _array(name: str, x, min_ndim: int, what: str) -> np.ndarray:
    return C.float_array(name, x, min_ndim=min_ndim, shape=what)


def _int(name: str, value, low: int, high: int | None = None) -> int:
    return C.integer(name, value, minimum=low, maximum=high)


def _positive(name: str, value, allow_zero: bool = False) -> float:
    return C.real(name, value, low=0.0, low_open=not allow_zero)


def _power(p) -> float:
    try:
        v = float(p)
    except (TypeError, ValueError):
        raise ConfigurationError(f"p: expected a number >= 1, got {p!r}") from None
    if not math.isfinite(v) or v < 1:
        raise ConfigurationError(f"p: expected a finite Wasserstein power >= 1, got {p!r}")
    return v


# -- sliced Wasserstein ---------------------------------------------------------------------------

def random_directions(num_projections: int, d: int, seed: int = 1) -> np.ndarray:
    """Seeded unit directions, uniform on the sphere ``S^{d−1}`` (normalised Gaussians): ``(P, d)`` float64.

    ``θ_p = g_p/‖g_p‖``, ``g_p ~ N(0, I_d)`` (upstream normalises uniform-cube samples, which are not
    uniform on the sphere). Same ``seed``, same directions.
    """
    P = _int("num_projections", num_projections, 1)
    d = _int("d", d, 1)
    s = _int("seed", seed, 0)
    return _sw.directions(P, d, s)


def sliced_wasserstein_distance(x, y, *, num_projections: int = 64, p: float = 2, seed: int = 1):
    """Sliced-Wasserstein distance ``SW_p`` between the empirical measures of two point clouds.

    ``SW_p(μ, ν) = (mean_θ W_p^p(θ#μ, θ#ν))^{1/p}`` over ``num_projections`` seeded directions
    (:func:`random_directions`), with the 1-D distance exact from the sorted projections:
    ``W_p^p = ∫_0^1 |F_x^{-1}(t) − F_y^{-1}(t)|^p dt``, a finite sum over the merged quantile
    breakpoints ``{i/n} ∪ {j/m}`` (so unequal sizes are exact, not resampled). Every point has mass
    ``1/n`` (``1/m``). For ``d = 1`` the directions are ``±1`` and ``SW_p = W_p`` exactly.

    Shapes: ``x (..., n, d)``, ``y (..., m, d)`` with broadcastable leading dimensions → a float
    (no leading dimensions) or an array of the broadcast leading shape. Computed in float64.
    Paper: Rabin, Peyré, Delon & Bernot, *Wasserstein Barycenter and its Application to Texture
    Mixing*, 2011; Bonneel, Rabin, Peyré & Pfister, *Sliced and Radon Wasserstein Barycenters*, 2015.
    """
    x = _array("x", x, 2, "(..., n, d)")
    y = _array("y", y, 2, "(..., m, d)")
    if x.shape[-1] != y.shape[-1]:
        raise ShapeError(f"y: expected point dimension d={x.shape[-1]} (from x), got shape {y.shape}")
    if x.shape[-1] == 0:
        raise ShapeError(f"x: expected points of dimension d >= 1, got shape {x.shape}")
    for name, a in (("x", x), ("y", y)):
        if a.shape[-2] == 0:
            raise ShapeError(f"{name}: expected at least one point, got shape {a.shape}")
    try:
        lead = np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    except ValueError:
        raise ShapeError(f"x, y: leading dimensions must broadcast, got {x.shape[:-2]} and {y.shape[:-2]}") from None
    p = _power(p)
    theta = random_directions(num_projections, x.shape[-1], seed)
    xs = _sw.sorted_projections(x, theta)  # (..., n, P)
    ys = _sw.sorted_projections(y, theta)
    ia, ib, dt = _sw.quantile_grid(x.shape[-2], y.shape[-2])
    diff = np.abs(xs[..., ia, :] - ys[..., ib, :])  # (..., A, P)
    wp = np.einsum("a,...ap->...p", dt, diff ** p if p != 1 else diff)  # W_p^p per direction
    out = np.broadcast_to(wp.mean(-1) ** (1.0 / p), lead)
    return float(out) if out.ndim == 0 else np.array(out)


# -- Sinkhorn ----------------------------------------------------------------------------------------

def _marginal(name: str, x) -> np.ndarray:
    a = _array(name, x, 1, "(..., n)").astype(np.float64)
    if a.shape[-1] == 0:
        raise ShapeError(f"{name}: expected at least one atom, got shape {a.shape}")
    if (a < 0).any():
        raise DataError(f"{name}: expected non-negative masses, got minimum {a.min()}")
    total = a.sum(-1)
    if (total <= 0).any():
        raise DataError(f"{name}: expected a positive total mass, got {total.min()}")
    return a


def sinkhorn(a, b, cost, *, epsilon: float = 0.05, max_iter: int = 1000, tol: float = 1e-9,
             return_info: bool = False):
    """Entropic optimal-transport plan by log-domain Sinkhorn iterations.

    ``P = argmin_{P ≥ 0, P1 = a, Pᵀ1 = b} ⟨P, C⟩ − ε H(P)``, ``P_ij = exp((f_i + g_j − C_ij)/ε)``
    with the dual potentials updated by log-sum-exp (stable for any ``ε > 0``) until the row
    marginal error ``‖P1 − a‖_1 ≤ tol`` (columns are exact after every update) or ``max_iter``
    iterations. ``ε`` is in the units of the cost (take e.g. ``0.05·median(C)``); as ``ε → 0`` the
    plan tends to an optimal plan of the unregularised problem.

    Shapes: ``a (..., n)``, ``b (..., m)``, ``cost (..., n, m)`` (leading dimensions broadcast);
    returns ``plan (..., n, m)`` float64 (and with ``return_info`` a dict: ``iterations``,
    ``marginal_error``, ``converged``, potentials ``f``, ``g``). ``a`` and ``b`` must be
    non-negative with equal totals (relative 1e-6). A run that stops at ``max_iter`` above ``tol``
    warns (``RuntimeWarning``). Paper: Cuturi, *Sinkhorn Distances*, 2013.
    """
    a = _marginal("a", a)
    b = _marginal("b", b)
    c = _array("cost", cost, 2, "(..., n, m)").astype(np.float64)
    if c.shape[-2:] != (a.shape[-1], b.shape[-1]):
        raise ShapeError(f"cost: expected shape (..., {a.shape[-1]}, {b.shape[-1]}) (from a and b), got {c.shape}")
    try:
        np.broadcast_shapes(a.shape[:-1], b.shape[:-1], c.shape[:-2])
    except ValueError:
        raise ShapeError(f"a, b, cost: leading dimensions must broadcast, got {a.shape[:-1]}, {b.shape[:-1]}, "
                         f"{c.shape[:-2]}") from None
    ta, tb = a.sum(-1), b.sum(-1)
    if not np.allclose(ta, tb, rtol=1e-6, atol=0):
        raise DataError(f"a, b: expected equal total masses, got {np.ravel(ta)[0]} and {np.ravel(tb)[0]}")
    eps = _positive("epsilon", epsilon)
    it = _int("max_iter", max_iter, 1)
    tol = _positive("tol", tol, allow_zero=True)
    plan, info = _sk.log_sinkhorn(a, b, c, eps, it, tol)
    if not info["converged"]:
        warnings.warn(f"sinkhorn: max_iter={it} iterations left a marginal error {info['marginal_error']:.3g} "
                      f"> tol={tol:g}; raise max_iter or epsilon", RuntimeWarning, stacklevel=2)
    return (plan, info) if return_info else plan


# -- k-means -----------------------------------------------------------------------------------------

def _sqdist(x, c, xn2):
    """``‖x_i − c_k‖²`` (clipped at 0): ``(n, d), (k, d) → (n, k)``."""
    d2 = xn2[:, None] + np.einsum("kd,kd->k", c, c)[None, :] - 2.0 * (x @ c.T)
    return np.maximum(d2, 0.0)


def _kmeans_pp(x, k, rng, xn2):
    """k-means++ seeding (Arthur & Vassilvitskii 2007): each next centre drawn with probability ∝ D²."""
    n = x.shape[0]
    idx = [int(rng.integers(n))]
    d2 = _sqdist(x, x[idx], xn2)[:, 0]
    for _ in range(1, k):
        total = d2.sum()
        if total > 0:
            j = int(rng.choice(n, p=d2 / total))
        else:  # every point coincides with a centre already: any point not chosen yet
            rest = np.setdiff1d(np.arange(n), idx)
            j = int(rest[rng.integers(rest.size)])
        idx.append(j)
        d2 = np.minimum(d2, _sqdist(x, x[j:j + 1], xn2)[:, 0])
    return x[idx].copy()


def _fill_empty(x, centroids, labels, d2):
    """Re-seed every empty cluster with the point farthest from its centroid among clusters of ≥ 2
    points (the point moves to the empty cluster, whose centroid becomes that point)."""
    k = centroids.shape[0]
    counts = np.bincount(labels, minlength=k)
    own = d2[np.arange(len(labels)), labels].copy()
    for c in np.flatnonzero(counts == 0):
        movable = counts[labels] > 1
        j = int(np.argmax(np.where(movable, own, -1.0)))
        counts[labels[j]] -= 1
        labels[j] = c
        counts[c] = 1
        centroids[c] = x[j]
        own[j] = -1.0  # never moved again
    return labels


def kmeans(x, k: int, *, seed: int = 0, iters: int = 50):
    """k-means clustering by Lloyd's algorithm; returns ``(centroids (k, d), labels (n,))``.

    Minimises ``Σ_i ‖x_i − μ_{c(i)}‖²``. Seeded k-means++ initialisation, then at most ``iters``
    rounds of (assign every point to its nearest centroid, ties to the lowest index; move each
    centroid to its cluster mean), stopping early once the assignment no longer changes; a final
    assignment to the returned centroids follows the last update (upstream keeps assignments that
    predate it), so ``labels`` is a nearest-centroid assignment for the returned centroids (which
    are also the means of their clusters once the loop has converged). No cluster is ever empty:
    an empty one is re-seeded with the point farthest from its centroid (taken from a cluster of
    at least two points), so ``labels`` takes every value in ``0..k−1``.

    ``x (n, d)``, ``1 ≤ k ≤ n``; computed in float64, centroids returned in the dtype of ``x``.
    Paper: Lloyd, *Least squares quantization in PCM*, 1982; Arthur & Vassilvitskii, *k-means++*, 2007.
    """
    x = _array("x", x, 2, "(n, d)")
    if x.ndim != 2:
        raise ShapeError(f"x: expected shape (n, d), got shape {x.shape}")
    n = x.shape[0]
    if n == 0 or x.shape[1] == 0:
        raise ShapeError(f"x: expected at least one point of dimension >= 1, got shape {x.shape}")
    k = _int("k", k, 1, n)
    s = _int("seed", seed, 0)
    iters = _int("iters", iters, 0)
    dtype = x.dtype
    x = x.astype(np.float64)
    xn2 = np.einsum("nd,nd->n", x, x)
    rng = np.random.default_rng([s, 0x6B6D])
    centroids = _kmeans_pp(x, k, rng, xn2)
    d2 = _sqdist(x, centroids, xn2)
    labels = _fill_empty(x, centroids, np.argmin(d2, axis=1), d2)
    for _ in range(iters):
        order = np.argsort(labels, kind="stable")
        starts = np.searchsorted(labels[order], np.arange(k))  # no cluster is empty
        centroids = np.add.reduceat(x[order], starts, axis=0) / np.diff(np.append(starts, n))[:, None]
        d2 = _sqdist(x, centroids, xn2)
        new = _fill_empty(x, centroids, np.argmin(d2, axis=1), d2)
        if np.array_equal(new, labels):
            labels = new
            break
        labels = new
    return centroids.astype(dtype), labels
