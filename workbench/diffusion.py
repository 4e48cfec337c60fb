"""Graph Laplacians and heat diffusion on point sets (dense arrays or ``scipy.sparse``).

* :func:`gaussian_affinity` / :func:`knn_affinity` — Gaussian-kernel graphs on points (all pairs, or
  the symmetrised k-nearest-neighbour graph stored sparse);
* :func:`laplacian` — unnormalised ``D − W``, symmetric-normalised ``I − D^{−1/2} W D^{−1/2}`` and
  random-walk ``I − D^{−1} W`` Laplacians;
* :func:`heat_diffuse` — ``x(t) = e^{−tL} x⁰``, the solution of ``∂x/∂t = −Lx``, exactly by
  ``scipy.sparse.linalg.expm_multiply`` or by explicit Euler with a provably stable step
  (upstream's fixed step diverges once ``Δt·λ_max(L) > 2``);
* :func:`diffusion_energy` — the Dirichlet energy ``½ Σ_ij w_ij ‖x_i − x_j‖²`` (``= tr(xᵀLx)``).

Graphs are undirected: ``W`` symmetric, non-negative, finite. A node of degree 0 (isolated) has a
zero Laplacian row in every kind (``1/d := 0``; its value does not diffuse).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from kernels.gpu.host import to_host
from kernels.reference import diffusion as _ref
from workbench import checks as C
from workbench.errors import ConfigurationError, DataError, NumericalError, ShapeError

__all__ = ["LAPLACIANS", "INTEGRATORS", "gaussian_affinity", "knn_affinity", "laplacian", "heat_diffuse",
           "diffusion_energy"]

LAPLACIANS = _ref.LAPLACIANS
INTEGRATORS = _ref.INTEGRATORS


def _issparse(w) -> bool:
    import scipy.sparse as sp

    return sp.issparse(w)


def _points(x, name="x") -> np.ndarray:
    """``x`` checked as ``(n, d)`` points, ``n, d ≥ 1``, as float64 (a CuPy array stays on the GPU)."""
    from kernels.dispatch import is_cupy_array

    check = C.device_float_array if is_cupy_array(x) else C.float_array
    a = check(name, x, min_ndim=0)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ShapeError(f"{name}: expected points of shape (n, d) with n, d >= 1, got shape {a.shape}")
    return a.astype(np.float64)


def _sigma(sigma, distances) -> float:
    """``sigma`` if given (> 0), else the median of the positive distances (1 if there is none)."""
    if sigma is not None:
        try:
            s = float(sigma)
        except (TypeError, ValueError):
            raise ConfigurationError(f"sigma: expected a number > 0 or None, got {sigma!r}") from None
        if not math.isfinite(s) or s <= 0:
            raise ConfigurationError(f"sigma: expected a finite bandwidth > 0 or None, got {sigma!r}")
        return s
    pos = distances[distances > 0]
    return float(np.median(pos)) if pos.size else 1.0


def gaussian_affinity(x, sigma: float | None = None) -> np.ndarray:
    """Dense Gaussian affinities ``W_ij = exp(−‖x_i − x_j‖²/(2σ²))`` for ``i ≠ j``, ``W_ii = 0``.

    ``x (n, d) → W (n, n)`` float64. ``sigma=None``: the median of the pairwise distances
    ``‖x_i − x_j‖`` (``i < j``, positive ones), a scale-free default (upstream: σ = 1).
    """
    x = _points(x)
    x = to_host(x)  # CuPy points: the dense (n, n) matrix is a host one
    d2 = _ref.pairwise_sqdist(x)
    iu = np.triu_indices(x.shape[0], 1)
    s = _sigma(sigma, np.sqrt(d2[iu]))
    w = np.exp(-d2 / (2.0 * s * s))
    np.fill_diagonal(w, 0.0)
    return w


def knn_affinity(x, k: int, sigma: float | None = None, *, backend: str = "auto", dense: bool = False,
                 graph=None):
    """Sparse Gaussian k-nearest-neighbour graph: ``W_ij = exp(−‖x_i − x_j‖²/(2σ²))`` if ``j`` is among
    the ``k`` nearest neighbours of ``i`` or ``i`` among those of ``j`` (union symmetrisation), else 0.

    ``x (n, d)``, ``1 ≤ k ≤ n − 1`` → ``scipy.sparse.csr_array (n, n)`` float64, symmetric, zero
    diagonal, at most ``2kn`` non-zeros. The neighbours are exact (ties to the smaller index; the
    same as :func:`workbench.graph.knn_graph`): :func:`kernels.knn.knn`, a fused
    Numba kernel (blocked GEMM in the dtype of ``x``, one-pass top-k, exact float64 re-ranking — it
    never holds an ``n × n`` block) or the NumPy reference (``backend``). ``sigma=None``: the median
    kNN distance (positive ones). ``dense=True`` returns the same matrix as a dense array (cheaper
    to build and apply for small ``n``). ``graph``: the neighbours already found, a
    :class:`workbench.graph.Graph` in :func:`workbench.graph.knn_graph`'s layout with ``k`` edges
    per node and their ``distance`` (e.g. :func:`workbench.graph.ann_knn_graph`'s), used instead of
    searching again. CuPy points: the neighbours are found on the GPU (:func:`kernels.knn.knn`), the
    graph is built on the host. Paper: von Luxburg, *A Tutorial on Spectral Clustering*,
    2007, §2.2.
    """
    import scipy.sparse as sp

    from kernels import BackendError
    from kernels.knn import knn

    from kernels.dispatch import is_cupy_array

    on_gpu = is_cupy_array(x) and graph is None  # the neighbours on the GPU, the n·k-entry graph on the host
    pts = _points(x)
    n = pts.shape[0]
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral) or not 1 <= k <= n - 1:
        raise ConfigurationError(f"k: expected an integer in [1, n - 1] = [1, {n - 1}] for n={n} points, got {k!r}")
    xa = x if is_cupy_array(x) else np.asarray(x)
    xa = xa if xa.dtype in (np.float32, np.float64) else pts
    if graph is not None:
        if getattr(graph, "num_nodes", None) != n or getattr(graph, "distance", None) is None \
                or graph.num_edges != n * int(k) or not np.array_equal(np.asarray(graph.dst),
                                                                      np.repeat(np.arange(n), int(k))):
            raise ShapeError(f"graph: expected a kNN graph on the n={n} points with k={k} edges per node "
                             f"(knn_graph's layout, with distances)")
        idx = np.asarray(graph.src, np.int64).reshape(n, int(k))
        d2 = np.asarray(graph.distance, np.float64).reshape(n, int(k)) ** 2
    else:
        try:
            idx, d2 = knn(xa, int(k), backend=backend)
        except BackendError as exc:
            raise ConfigurationError(f"backend: {exc}") from None
        if on_gpu:
            idx, d2 = idx.get(), d2.get()
    s = _sigma(sigma, np.sqrt(d2).reshape(-1))
    vals = np.exp(-d2.reshape(-1) / (2.0 * s * s))
    rows = np.repeat(np.arange(n), k)
    if dense:
        w = np.zeros((n, n))
        w[rows, idx.reshape(-1)] = vals
        return np.maximum(w, w.T)
    w = sp.csr_array((vals, (rows, idx.reshape(-1))), shape=(n, n))
    w = w.maximum(w.T).tocsr()
    w.eliminate_zeros()
    w.sort_indices()
    return w


def _square(a, name: str, what: str):
    """``a`` as a float64 dense array or CSR array, square ``(n, n)`` with ``n ≥ 1`` and finite ``what``;
    returns the matrix and its stored values (every entry, or the CSR data)."""
    import scipy.sparse as sp

    if sp.issparse(a):
        m = sp.csr_array(a, dtype=np.float64)
        vals = m.data
    else:
        try:
            m = np.asarray(a, dtype=np.float64)
        except (TypeError, ValueError):
            raise ShapeError(f"{name}: expected a real (n, n) array or scipy.sparse matrix, "
                             f"got {type(a).__name__}") from None
        vals = m.reshape(-1)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ShapeError(f"{name}: expected a square (n, n) matrix with n >= 1, got shape {m.shape}")
    if not np.isfinite(vals).all():
        raise NumericalError(f"{name}: expected finite {what}, got NaN or infinity")
    return m, vals


def _weights(w, name="w"):
    """Validated affinity matrix: dense float64 array or CSR array; square, finite, ≥ 0, symmetric."""
    import scipy.sparse as sp

    m, vals = _square(w, name, "weights")
    if vals.size and vals.min() < 0:
        raise DataError(f"{name}: expected non-negative weights, got {vals.min()}")
    asym = abs(m - m.T)
    asym = asym.max() if sp.issparse(m) else np.max(asym)
    top = vals.max(initial=0.0)
    if asym > 1e-8 * top:
        raise DataError(f"{name}: expected a symmetric matrix (undirected graph), got max |w - w.T| = {asym:.3g}")
    return m


def laplacian(w, kind: str = "unnormalized"):
    """Graph Laplacian of the affinities ``w (n, n)`` (dense array or ``scipy.sparse``), same storage back.

    ``"unnormalized"``: ``L = D − W``; ``"symmetric"``: ``L = I − D^{−1/2} W D^{−1/2}``;
    ``"random_walk"``: ``L = I − D^{−1} W``; ``D = diag(Σ_j W_ij)``. Isolated nodes (``d_i = 0``) get
    a zero row in every kind (``scipy.sparse.csgraph.laplacian``'s convention; upstream gives them
    an identity row in the normalised kinds, which makes their values decay for no reason).
    Properties: ``L·1 = 0`` (unnormalised, random walk), ``L D^{1/2}1 = 0`` (symmetric); the spectrum
    lies in ``[0, 2·max d]`` (unnormalised) and ``[0, 2]`` (normalised kinds, which are similar
    matrices: ``L_rw = D^{−1/2} L_sym D^{1/2}``). Returns float64 (a CSR array for sparse input).
    """
    if kind not in LAPLACIANS:
        raise ConfigurationError(f"kind: expected one of {LAPLACIANS}, got {kind!r}")
    return _ref.laplacian(_weights(w), kind)


def _laplacian_operand(L):
    return _square(L, "L", "entries")[0]


def _signal(x, n: int, source: str) -> np.ndarray:
    """A graph signal ``x (n,)`` or ``(n, c)`` as finite float64; ``n`` nodes read from the matrix ``source``."""
    try:
        xa = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ShapeError(f"x: expected a real array of shape (n,) or (n, c), got {type(x).__name__}") from None
    if xa.ndim not in (1, 2) or xa.shape[0] != n:
        raise ShapeError(f"x: expected shape ({n},) or ({n}, c) (from {source}), got {xa.shape}")
    if not np.isfinite(xa).all():
        raise NumericalError("x: expected finite values, got NaN or infinity")
    return xa


def heat_diffuse(L, x, t, *, integrator: str = "expm", num_steps: int = 5):
    """Heat diffusion ``x(t) = e^{−tL} x`` on a graph: the solution of ``∂x/∂t = −Lx``, ``x(0) = x``.

    ``L (n, n)`` a Laplacian (dense or sparse; :func:`laplacian`), ``x (n,)`` or ``(n, c)``, ``t ≥ 0``
    a time or a 1-D array of times (then the result is stacked: ``(len(t), n[, c])``).
    ``integrator="expm"``: ``scipy.sparse.linalg.expm_multiply`` (truncated Taylor with scaling,
    accurate to double precision, cost ∝ ``t·‖L‖_1``); ``"euler"``: explicit Euler ``x ← x − hLx``,
    ``num_steps`` steps per time interval or more so that ``h ≤ 1/max_i L_ii`` (then ``I − hL`` is
    non-negative: provably stable, first-order accurate; upstream's fixed ``h = t/num_steps``
    diverges for unnormalised Laplacians of clustered points).
    For the Laplacians of :func:`laplacian` both never grow ``x``: ``max|x(t)| ≤ max|x|`` (unnormalised,
    random walk: ``e^{−tL}`` is row-stochastic) and ``‖x(t)‖₂ ≤ ‖x‖₂`` (symmetric).
    """
    Lm = _laplacian_operand(L)
    xa = _signal(x, Lm.shape[0], "L")
    ta = np.asarray(t, dtype=np.float64)
    if ta.ndim > 1 or ta.size == 0 or not np.isfinite(ta).all() or (ta < 0).any():
        raise ConfigurationError(f"t: expected a finite time >= 0 or a 1-D array of them, got {t!r}")
    if integrator not in INTEGRATORS:
        raise ConfigurationError(f"integrator: expected one of {INTEGRATORS}, got {integrator!r}")
    if isinstance(num_steps, (bool, np.bool_)) or not isinstance(num_steps, numbers.Integral) or num_steps < 1:
        raise ConfigurationError(f"num_steps: expected an integer >= 1, got {num_steps!r}")
    cols = xa if xa.ndim == 2 else xa[:, None]
    out = _ref.heat(Lm, cols, np.atleast_1d(ta), integrator, int(num_steps))
    if xa.ndim == 1:
        out = out[..., 0]
    return out if ta.ndim == 1 else out[0]


def diffusion_energy(x, w, kind: str = "unnormalized") -> float:
    """Dirichlet energy of a signal on a graph: ``E(x) = ½ Σ_ij w_ij ‖x_i − x_j‖²``.

    ``x (n,)`` or ``(n, c)`` (rows are nodes), ``w (n, n)`` affinities (dense or sparse). Equals
    ``tr(xᵀ L x)`` for the unnormalised ``L = D − W``; also the energy of the random-walk Laplacian in
    its own (degree-weighted) inner product, ``⟨x, L_rw x⟩_D``. ``kind="symmetric"`` gives
    ``½ Σ_ij w_ij ‖x_i/√d_i − x_j/√d_j‖² = tr(xᵀ L_sym x)`` (isolated nodes contribute 0). Low energy:
    the signal is smooth on the graph. Each is non-increasing under the heat flow of its Laplacian.
    Summed edge by edge from the differences (no cancellation). Returns a float ≥ 0.
    """
    if kind not in LAPLACIANS:
        raise ConfigurationError(f"kind: expected one of {LAPLACIANS}, got {kind!r}")
    m = _weights(w)
    xa = _signal(x, m.shape[0], "w")
    return _ref.dirichlet_energy(m, xa if xa.ndim == 2 else xa[:, None], kind)
