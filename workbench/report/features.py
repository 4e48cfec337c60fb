"""Structure features of a key set that decide the recommendation (beyond the six health metrics).

Each feature is scale-free (unchanged when the keys are scaled) and cheap on 10,000 keys:

* :func:`sequence_locality` — fraction of kNN edges ``(i, j)`` with ``|i − j| ≤ W``,
  ``W = ⌈n/32⌉``: about ``2W/n ≈ 1/16`` when the row order carries no information, near 1 when
  the geometric neighbours of a key are its sequence neighbours (local structure a sliding
  window can use). Unlike upstream's ``boundary_mass`` (window ``n/4``, 0.44 for random order)
  it separates the two cleanly.
* :func:`gromov_delta` — relative Gromov δ-hyperbolicity ``2·max δ(x, y, z, w)/diam`` on 20,000
  sampled quadruples of a random subset of at most 1,000 keys (four-point condition:
  ``δ = (S₁ − S₂)/2`` with ``S₁ ≥ S₂ ≥ S₃`` the three sums ``d(x,y) + d(z,w)``,
  ``d(x,z) + d(y,w)``, ``d(x,w) + d(y,z)``); 0 for a tree metric, about
  0.2–0.4 for Euclidean clouds. (Khrulkov et al., *Hyperbolic Image Embeddings*, 2020.)
  Concentration of distances makes high-dimensional isotropic clouds near-stars — trivially
  tree-like — so the Geometric rule also asks for multi-scale H0 persistence.
* :func:`norm_share` — the share of the dot-product logits' spread over the keys that their
  lengths explain (0 for unit-norm embeddings).
* :func:`dirichlet_ratio` — ``½Σ_ij w_ij‖x_i − x_j‖² / Σ_i d_i‖x_i − x̄‖²`` (``d`` the degrees,
  ``x̄`` the degree-weighted mean): the random-walk Rayleigh quotient, in ``[0, 2]``, 0 for a
  signal constant on neighbourhoods and about 1 for a signal unrelated to the graph.
  * ``key_roughness`` = the ratio of the keys themselves ``x = K`` (evaluated as the quadratic
    form ``tr(K̃ᵀ(D − W)K̃)``, one sparse product, rather than edge by edge). Since
    ``E_q[‖Kq‖²_L] ∝ tr(KᵀLK)`` for isotropic random queries ``q``, it is the diffusion energy
    of the logits averaged over all query directions: the share of the keys' variance that
    changes between graph neighbours (noise), as opposed to varying smoothly along a structure.
  * ``structure_contrast`` = the ratio of the keys' first principal component divided by
    ``key_roughness``: ≈ 1 when no direction is smoother than any other (isotropic noise), ≪ 1
    when the leading direction of variance varies smoothly over the graph (clusters, a
    manifold) — a smooth structure for diffusion to follow.
* :func:`temperature_for_logits` — the logit temperature that brings the mean normalised
  entropy of given logits to a target (temperatures of mechanisms over keys:
  :func:`workbench.calibrate`).

The Gaussian kNN affinity and the energy come from :mod:`workbench.diffusion`
(``knn_affinity``, ``diffusion_energy``).
"""
from __future__ import annotations

import numpy as np

__all__ = ["sequence_locality", "gromov_delta", "norm_share", "dirichlet_ratio", "key_structure",
           "temperature_for_logits"]


def sequence_locality(src: np.ndarray, dst: np.ndarray, n: int) -> tuple[float, int, int]:
    """``(fraction of edges with |i − j| ≤ ⌈n/32⌉, that window W, 90th percentile of |i − j|)``."""
    if n < 2 or src.size == 0:
        return 0.0, 1, 0
    gap = np.abs(np.asarray(src, np.float64) - np.asarray(dst, np.float64))  # (float: sampled positions rescaled)
    w = max(1, int(np.ceil(n / 32)))
    return float(np.mean(gap <= w)), w, int(np.percentile(gap, 90))


def gromov_delta(x: np.ndarray, samples: int = 20000, seed: int = 1, max_points: int = 1000) -> float:
    """Relative Gromov δ ``2·max δ/diam`` over ``samples`` random quadruples of rows of ``x (n, d)``.

    The quadruples are drawn from a random subset of at most ``max_points`` rows (all rows when
    ``n ≤ max_points``) whose distance matrix is computed once; ``diam`` is the largest distance
    in that subset. 0 for fewer than 4 points or a zero diameter.
    """
    n = x.shape[0]
    if n < 4:
        return 0.0
    rng = np.random.default_rng(seed)
    a = np.asarray(x, dtype=np.float64)
    if n > max_points:
        a = a[np.sort(rng.choice(n, size=max_points, replace=False))]
    a = a - a.mean(axis=0)  # (distances are translation invariant; centring helps the Gram form)
    sq = np.einsum("ij,ij->i", a, a)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * (a @ a.T), 0.0))
    np.fill_diagonal(dist, 0.0)
    diam = float(dist.max())
    if diam <= 0:
        return 0.0
    q = rng.integers(0, a.shape[0], size=(int(samples), 4))
    s = np.sort(np.stack([dist[q[:, 0], q[:, 1]] + dist[q[:, 2], q[:, 3]],
                          dist[q[:, 0], q[:, 2]] + dist[q[:, 1], q[:, 3]],
                          dist[q[:, 0], q[:, 3]] + dist[q[:, 1], q[:, 2]]], axis=1), axis=1)
    return float(2 * np.max((s[:, 2] - s[:, 1]) / 2) / diam)


def norm_share(x: np.ndarray, queries: int = 64, seed: int = 1) -> float:
    """Share of the dot-product logits' spread that the keys' lengths explain: ``mean_q var_j(‖k_j‖²/2) / var_j(q·k_j)``.

    ``q·k = (‖q‖² + ‖k‖² − ‖q − k‖²)/2``: over the keys ``j`` a query sees, the logit varies with
    the distance ``‖q − k_j‖`` and with the key's length ``‖k_j‖²/2``. The ratio is 0 for
    unit-norm embeddings (lengths carry nothing) and large when lengths vary as much as the
    dot products do — then dot-product attention ranks keys by length as much as by position,
    which a distance-based softmax (Geometric) does not. Up to ``queries`` sampled keys as
    queries; scale-free; 0 when every dot product is tied.
    """
    a = np.asarray(x, dtype=np.float64)
    n = a.shape[0]
    if n < 2:
        return 0.0
    rng = np.random.default_rng(seed)
    q = a[rng.choice(n, size=min(int(queries), n), replace=False)]
    half_sq = 0.5 * np.einsum("ij,ij->i", a, a)
    spread = np.var(q @ a.T, axis=1)
    ok = spread > 0
    return float(np.mean(np.var(half_sq) / spread[ok])) if ok.any() else 0.0


def dirichlet_ratio(x: np.ndarray, w, degrees: np.ndarray) -> float:
    """``½Σ w_ij‖x_i − x_j‖² / Σ_i d_i‖x_i − x̄_d‖²`` for ``x (n,)`` or ``(n, m)``; 0 if the denominator is 0."""
    from workbench.diffusion import diffusion_energy

    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    tot = degrees.sum()
    if tot <= 0:
        return 0.0
    xc = x - (degrees @ x) / tot
    den = float(np.einsum("i,ij,ij->", degrees, xc, xc))
    if den <= 0:
        return 0.0
    return float(diffusion_energy(xc, w)) / den


def key_structure(keys: np.ndarray, w) -> tuple[float, float, float]:
    """``(key_roughness, roughness of the first principal component, structure_contrast)`` on affinity ``w``."""
    k = np.asarray(keys, dtype=np.float64)
    deg = np.asarray(w.sum(axis=1)).ravel()
    # the keys' ratio as the quadratic form tr(K̃ᵀ(D − W)K̃), K̃ centred by the degree-weighted mean:
    # one sparse product instead of n·k edge differences of width d (equal to dirichlet_ratio(k, w, deg))
    tot = deg.sum()
    kd = k - (deg @ k) / tot if tot > 0 else k
    den = float(np.einsum("i,ij,ij->", deg, kd, kd))
    num = den - float(np.einsum("ij,ij->", kd, w @ kd))
    rough = max(num, 0.0) / den if den > 0 else 0.0
    kc = k - k.mean(axis=0)
    if k.shape[1] == 1:
        pc = kc[:, 0]
    else:
        from kernels.blas_threads import one_blas_thread

        cov = kc.T @ kc
        with one_blas_thread("all"):  # a d × d problem: threads only add (much) overhead
            _, vec = np.linalg.eigh(cov)
        pc = kc @ vec[:, -1]
    pc_rough = dirichlet_ratio(pc, w, deg)
    contrast = pc_rough / rough if rough > 0 else 1.0
    return rough, pc_rough, contrast


def _softmax_entropy_ratio(logits: np.ndarray, t: float) -> float:
    from workbench.entropy import softmax_entropy

    return float(np.mean(softmax_entropy(logits / t)) / np.log(logits.shape[1]))


def temperature_for_logits(logits: np.ndarray, target: float = 0.5) -> float | None:
    """Temperature ``T`` such that the rows of ``softmax(logits/T)`` have mean normalised entropy ``target``.

    ``logits (m, n)``, ``n ≥ 2``. :func:`workbench.calibration.solve_temperature` on ``T`` in
    ``[1e-4, 1e4]`` to a relative precision of about 1e-7; None when no ``T`` in that range
    reaches the target (e.g. logits all but equal, or exactly tied).
    """
    from workbench.calibration import solve_temperature

    logits = np.asarray(logits, dtype=np.float64)
    t, reached, notes = solve_temperature(lambda t: _softmax_entropy_ratio(logits, t), target, 1.0, (1e-4, 1e4),
                                          xtol=1e-7)
    return None if notes else t
