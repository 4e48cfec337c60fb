"""Diffusion (heat-equation) attention over a key graph, the NumPy definition.

For one key set with graph Laplacian ``L (Lk × Lk)``: initial logits ``x⁰_j = s·⟨q, k_j⟩``,
diffused logits ``x(t) = e^{−tL} x⁰`` (the heat equation ``∂x/∂t = −Lx`` on the key graph),
weights ``W(t) = softmax_j(x_j(t)/T)``, output ``W V``; several times ``t_1..t_S`` give several
weight maps (averaged, or their outputs concatenated). The reference diffuses every query's logit
vector (``Lk × Lq`` columns). Because diffusion is linear and acts on the key axis,
``e^{−tL}(s·K qᵀ) = s·(e^{−tL}K) qᵀ``: the fast path diffuses the ``d`` key features once and
runs exact attention with the diffused keys (see :mod:`kernels.diffusion`).

Laplacians (``D`` the degrees without self-loops; isolated nodes get zero rows):
``"unnormalized"`` ``D − W``, ``"symmetric"`` ``I − D^{−1/2}WD^{−1/2}``, ``"random_walk"`` ``I − D^{−1}W``.
Integrators: ``"expm"`` (``scipy.sparse.linalg.expm_multiply``, exact) or ``"euler"`` (explicit
Euler with ``num_steps`` steps per time interval, sub-stepped to a provably stable step size).
"""
from __future__ import annotations

import numpy as np

from kernels.reference.softmax import masked_softmax

LAPLACIANS = ("unnormalized", "symmetric", "random_walk")
INTEGRATORS = ("expm", "euler")
MULTISCALE = ("mean", "concat")

#: Edges per chunk of the Dirichlet-energy sum.
_EDGE_CHUNK = 1 << 20


def pairwise_sqdist(x) -> np.ndarray:
    """``‖x_i − x_j‖²`` (float64, clipped at 0, exactly symmetric, zero diagonal): ``(n, d) → (n, n)``."""
    x = np.asarray(x, np.float64)
    n2 = np.einsum("nd,nd->n", x, x)
    d2 = n2[:, None] + n2[None, :] - 2.0 * (x @ x.T)
    d2 = np.maximum(0.5 * (d2 + d2.T), 0.0)
    np.fill_diagonal(d2, 0.0)
    return d2


def _degrees(w) -> np.ndarray:
    """Row sums without the diagonal (self-loops do not count)."""
    import scipy.sparse as sp

    if sp.issparse(w):
        return np.asarray(w.sum(axis=1)).ravel() - w.diagonal()
    return w.sum(axis=1) - np.diag(w)


def laplacian(w, kind: str):
    """``L`` of kind ``kind`` from validated affinities ``w`` (float64 dense array or sparse; CSR back)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import laplacian as _csgraph_laplacian

    sparse = sp.issparse(w)
    L = _csgraph_laplacian(w, normed=(kind == "symmetric"))
    if kind == "random_walk":
        deg = _degrees(w)
        inv = np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)
        L = sp.diags_array(inv) @ L if sparse else inv[:, None] * L
    if sparse:
        L = sp.csr_array(L)
        L.eliminate_zeros()
        L.sort_indices()
        return L
    return np.asarray(L, np.float64)


def stable_step(L) -> float:
    """Largest explicit-Euler step that keeps ``I − hL`` entrywise non-negative: ``1/max_i L_ii``.

    Every Laplacian here has ``L_ii ≥ 0`` and non-positive off-diagonal entries, so for
    ``h ≤ 1/max_i L_ii`` the step matrix ``I − hL`` is non-negative; with ``L·1 = 0`` (unnormalised,
    random walk) it is then row-stochastic (``max|x|`` never grows: the discrete maximum principle),
    and for the symmetric kind its eigenvalues lie in ``[1 − 2h, 1] ⊂ [−1, 1]`` (``‖x‖₂`` never grows).
    ``inf`` for a graph without edges.
    """
    import scipy.sparse as sp

    diag = L.diagonal() if sp.issparse(L) else np.diag(L)
    top = float(np.max(diag, initial=0.0))
    return 1.0 / top if top > 0 else np.inf


def euler_steps(dt: float, num_steps: int, h_max: float) -> int:
    """Number of explicit steps over ``dt``: ``num_steps``, or more so that each is at most ``h_max``."""
    return max(int(num_steps), int(np.ceil(dt / h_max - 1e-12)) if np.isfinite(h_max) else 0)


#: Most matrix-vector products one diffusion may take (explicit Euler steps, or ``t·‖L‖_1`` for
#: ``expm_multiply``, whose cost grows like it): past this a call would run for minutes.
MAX_PRODUCTS = 100_000


def check_cost(L, times, integrator: str, num_steps: int, h_max: float) -> None:
    """Refuse, before any work, a diffusion that would need more than :data:`MAX_PRODUCTS` products."""
    from kernels.dispatch import BackendError

    t = float(np.max(times, initial=0.0))
    if integrator == "euler":
        steps, prev = 0, 0.0
        for s in np.sort(np.asarray(times, np.float64)):
            steps += euler_steps(float(s) - prev, num_steps, h_max) if s > prev else 0
            prev = float(s)
        if steps > MAX_PRODUCTS:
            raise BackendError(f"diffusion_time: t = {t:g} needs {steps:,} explicit Euler steps on this graph "
                               f"(num_steps = {num_steps}, stable step {h_max:.3g}); at most {MAX_PRODUCTS:,}: lower "
                               "diffusion_time or num_steps")
    else:
        import scipy.sparse as sp

        norm1 = float(abs(L).sum(axis=0).max()) if sp.issparse(L) else float(np.abs(L).sum(axis=0).max())
        if t * norm1 > MAX_PRODUCTS:
            raise BackendError(f"diffusion_time: t·‖L‖₁ = {t * norm1:.3g} exceeds {MAX_PRODUCTS:,} (expm_multiply's "
                               "cost grows with it); lower diffusion_time")


def heat(L, x, times, integrator: str = "expm", num_steps: int = 5) -> np.ndarray:
    """``x(t_s) = e^{−t_s L} x`` for each time: ``L (n, n), x (n, c), times (S,) → (S, n, c)`` float64.

    Times are visited in increasing order, each from the previous one (``x(t) = e^{−(t − t')L} x(t')``).
    ``"expm"``: ``scipy.sparse.linalg.expm_multiply`` (exact to double precision; cost grows with
    ``t·‖L‖_1``). ``"euler"``: explicit Euler ``x ← x − hLx`` with ``num_steps`` steps per interval,
    or more so that ``h ≤`` :func:`stable_step` (upstream's scheme — 5 steps of ``t/5`` — whenever
    that is stable; sub-stepped where upstream diverges); first-order accurate, never growing.
    """
    from scipy.sparse.linalg import expm_multiply

    x = np.asarray(x, np.float64)
    times = np.asarray(times, np.float64).reshape(-1)
    out = np.empty((times.size,) + x.shape)
    cur, prev = x, 0.0
    h_max = stable_step(L) if integrator == "euler" else np.inf
    check_cost(L, times, integrator, num_steps, h_max)
    for s in np.argsort(times, kind="stable"):
        dt = float(times[s]) - prev
        if dt > 0:
            if integrator == "expm":
                cur = expm_multiply(-dt * L, cur)
            else:
                n = euler_steps(dt, num_steps, h_max)
                h = dt / n
                for _ in range(n):
                    cur = cur - h * (L @ cur)
            prev = float(times[s])
        out[s] = cur
    return out


def dirichlet_energy(w, x, kind: str = "unnormalized") -> float:
    """``½ Σ_ij w_ij ‖y_i − y_j‖²`` with ``y = x`` (or ``x_i/√d_i`` for ``"symmetric"``), summed over the
    stored edges by chunks, from the differences: ``w (n, n)`` dense or sparse, ``x (n, c)``."""
    import scipy.sparse as sp

    x = np.asarray(x, np.float64)
    if kind == "symmetric":
        deg = _degrees(w)
        x = x * np.divide(1.0, np.sqrt(deg), out=np.zeros_like(deg), where=deg > 0)[:, None]
    if sp.issparse(w):
        coo = sp.coo_array(w)
        rows, cols, vals = coo.row, coo.col, coo.data
    else:
        rows, cols = np.nonzero(w)
        vals = w[rows, cols]
    total = 0.0
    for e0 in range(0, vals.size, _EDGE_CHUNK):
        e1 = min(vals.size, e0 + _EDGE_CHUNK)
        diff = x[rows[e0:e1]] - x[cols[e0:e1]]
        total += float(vals[e0:e1] @ np.einsum("ec,ec->e", diff, diff))
    return 0.5 * total


def logits(q, k, scale: float) -> np.ndarray:
    """Initial logits, keys along the rows: ``x⁰ = s·K qᵀ``, ``(Lq, d), (Lk, d) → (Lk, Lq)`` float64."""
    return float(scale) * (np.asarray(k, np.float64) @ np.asarray(q, np.float64).T)


def weights(q, k, L, times, scale, temperature, integrator="expm", num_steps=5) -> np.ndarray:
    """``W(t_s) = softmax_j(x_j(t_s)/T)`` for each query: ``→ (S, Lq, Lk)`` float64 (the definition:
    every query's logit vector diffused over the key graph)."""
    x = heat(L, logits(q, k, scale), times, integrator, num_steps)  # (S, Lk, Lq)
    return masked_softmax(np.swapaxes(x, 1, 2) / float(temperature))


def combine(outs, multiscale: str) -> np.ndarray:
    """``(S, Lq, dv) → (Lq, dv)`` (mean over the times) or ``(Lq, S·dv)`` (concatenated, time-major)."""
    if multiscale == "concat":
        return np.concatenate(list(outs), axis=-1)
    return np.mean(outs, axis=0)


def attention(q, k, v, L, times, scale, temperature, integrator="expm", num_steps=5, multiscale="mean"):
    """``W(t_s) V`` combined over the times: ``→ (Lq, dv)`` or ``(Lq, S·dv)`` float64."""
    w = weights(q, k, L, times, scale, temperature, integrator, num_steps)
    return combine(np.matmul(w, np.asarray(v, np.float64)), multiscale)
