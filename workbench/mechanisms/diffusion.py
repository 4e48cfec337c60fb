"""Diffusion attention: attention logits smoothed by the heat equation on a graph of the keys."""
from __future__ import annotations

import numpy as np
import param

from kernels.diffusion import DIFFUSION, INTEGRATORS, LAPLACIANS, MULTISCALE, diffused_keys, diffusion_attention
from kernels.diffusion import diffusion_weights
from kernels.knn import KNN
from workbench.diffusion import gaussian_affinity, knn_affinity, laplacian
from workbench import checks as C
from workbench.mechanisms import params as P
from workbench.mechanisms._key_subsets import key_subsets
from workbench.mechanisms.base import Mechanism
from workbench.registry import register

GRAPHS = ("knn", "dense")

#: Key sets up to this size keep their kNN graph in a dense array (same matrix; sparse bookkeeping
#: costs more than it saves there).
DENSE_BELOW = 256


@register("diffusion")
class Diffusion(Mechanism):
    """Diffusion attention: logits diffused over a Gaussian graph of the keys (heat equation) before the softmax.

    ``x⁰_j = s·⟨q, k_j⟩`` (``s = 1/√d`` by default; upstream uses ``s = 1``), ``x(t) ≈ e^{−tL} x⁰`` —
    the heat equation ``∂x/∂t = −Lx`` on the key graph integrated to time ``t``, which pulls each
    key's logit towards those of similar keys — and ``W(t) = softmax_j(x_j(t)/T)`` over allowed keys,
    ``out = W V``. Graph: Gaussian affinities ``w_ij = exp(−‖k_i − k_j‖²/(2σ²))`` over all pairs
    (``graph='dense'``, upstream's default) or the symmetrised ``k``-nearest-neighbour graph, stored
    sparse (``graph='knn'``, the default here: ``O(k·Lk)`` memory; ``min(k, n − 1)`` exact neighbours);
    ``σ`` the median edge length unless given (upstream: ``σ = 1`` whatever the scale of the keys). ``L``: unnormalised ``D − W``, symmetric
    ``I − D^{−1/2}WD^{−1/2}`` or random-walk ``I − D^{−1}W`` (:func:`workbench.diffusion.laplacian`).
    Integrator: explicit Euler with ``num_steps`` steps of ``t/num_steps`` (upstream's scheme, 5 steps;
    the default) sub-stepped to ``h ≤ 1/max_i L_ii`` where that is larger — provably stable, never
    growing the logits (upstream's fixed step diverges once ``Δt·λ_max > 2``, e.g. for unnormalised
    Laplacians of clustered keys) — or the exact ``e^{−tL}`` by ``scipy.sparse.linalg.expm_multiply``
    (``'expm'``; cost grows with ``t·‖L‖_1``). Multiscale: ``scales = S``
    times ``t_s = s·t/S`` (``s = 1..S``, the last one is ``t``); outputs averaged (``'mean'``, weights
    = the mean map) or concatenated (``'concat'``, output ``(..., Lq, S·dv)``). ``t = 0`` is scaled
    dot-product attention with scale ``s/T``. :meth:`energies` reports the Dirichlet energy of the
    logits (non-increasing in ``t``). Masked keys take no part in the graph (key filtering; queries
    with the same allowed keys share one graph). Shapes ``(..., Lq, d), (..., Lk, d), (..., Lk, dv)
    → (..., Lq, dv)``. The Numba backend diffuses the ``d`` key features instead of the ``Lk × Lq``
    logits (linearity) and runs the fused attention kernel; the CuPy backend does the same on the GPU
    (kNN search, CSR heat steps, flash body; float32), the graph's ``O(k·Lk)`` entries built on the host. Papers: Kondor & Lafferty, *Diffusion
    Kernels on Graphs*, 2002; Chamberlain et al., *GRAND: Graph Neural Diffusion*, 2021.
    """

    family = "theory"
    theory = "PDE / diffusion"
    formula = "softmax((e^{−tL} s·K qᵀ)/T) V,  L = Laplacian of the key graph"
    time_complexity = "O(Lq·Lk·d + kNN(Lk) + d·nnz(L)·steps) (knn); O(Lk²·d·steps) (dense)"
    memory_complexity = "O(k·Lk) graph (knn) or O(Lk²) (dense); O(threads·block²) (Numba); O(Lq·Lk) weights"
    kernels_used = (DIFFUSION, KNN)

    diffusion_time = param.Number(
        default=1.0, bounds=(0, 1e4),
        doc="Diffusion time t >= 0 of the heat equation dx/dt = -Lx on the key graph (0: no diffusion).")
    laplacian = param.Selector(
        default="random_walk", objects=list(LAPLACIANS),
        doc="Graph Laplacian: 'random_walk' I - D^-1 W, 'symmetric' I - D^-1/2 W D^-1/2 or 'unnormalized' D - W.")
    graph = param.Selector(
        default="knn", objects=list(GRAPHS),
        doc="Key graph: 'knn' (symmetrised k-nearest-neighbour graph, sparse) or 'dense' (all pairs).")
    k = param.Integer(
        default=16, bounds=(1, 1024),
        doc="Neighbours per key of the 'knn' graph (min(k, number of keys - 1) are used).")
    sigma = param.Number(
        default=None, allow_None=True, bounds=(0, None), inclusive_bounds=(False, True),
        doc="Gaussian bandwidth of the affinities exp(-|k_i - k_j|^2 / (2 sigma^2)); None: the median edge length.")
    integrator = param.Selector(
        default="euler", objects=list(INTEGRATORS),
        doc="'expm': exact exp(-tL) by scipy's expm_multiply; 'euler': num_steps explicit Euler steps, "
            "sub-stepped to the provably stable step 1/max(diag L) where needed.")
    num_steps = param.Integer(
        default=5, bounds=(1, 10_000),
        doc="Explicit-Euler steps per diffusion interval (integrator='euler'; more are taken if stability needs them).")
    scales = param.Integer(
        default=1, bounds=(1, 64),
        doc="Number S of diffusion times t_s = s t / S (s = 1..S) combined by 'multiscale'.")
    multiscale = param.Selector(
        default="mean", objects=list(MULTISCALE),
        doc="How the S scales combine: 'mean' of the outputs (and weights), or 'concat' of the outputs (S dv wide).")
    temperature = P.temperature("Softmax temperature T in softmax(x(t)/T).")
    scale = P.scale()

    @property
    def times(self) -> np.ndarray:
        """The diffusion times ``t_s = s·t/S``, ``s = 1..S``."""
        return self.diffusion_time * np.arange(1, self.scales + 1) / self.scales

    def key_graph(self, k):
        """``(W, L)`` of one key set ``k (n, d)``: affinities and Laplacian (CSR for a 'knn' graph of more than
        :data:`DENSE_BELOW` keys, dense arrays otherwise)."""
        import scipy.sparse as sp

        from kernels.dispatch import is_cupy_array

        on_gpu = is_cupy_array(k)  # CuPy keys: the kNN search on the GPU, the graph on the host
        k = k if on_gpu else C.key_set("k", k)
        n = k.shape[0]
        if n == 1:
            w = sp.csr_array((1, 1)) if self.graph == "knn" else np.zeros((1, 1))
        elif self.graph == "knn":
            w = knn_affinity(k, min(self.k, n - 1), self.sigma, backend="numpy" if self.backend == "numpy" else "auto",
                             dense=n <= DENSE_BELOW)
        else:
            w = gaussian_affinity(k, self.sigma)  # on the host, for CuPy keys too
        return w, laplacian(w, self.laplacian)

    def _kw(self, d):
        return dict(times=self.times, scale=self._scale(d), temperature=self.temperature, integrator=self.integrator,
                    num_steps=self.num_steps, backend=self.backend)

    def _forward(self, b):
        B, lq = b.q.shape[:2]
        width = b.v.shape[-1] * (self.scales if self.multiscale == "concat" else 1)
        out = np.zeros_like(b.v, shape=(B, lq, width))  # CuPy for CuPy inputs
        for bi, rows, keys in key_subsets(b):
            kk = b.k[bi, keys]
            _, L = self.key_graph(kk)
            out[bi, rows] = diffusion_attention(b.q[bi, rows], kk, b.v[bi, keys], L, multiscale=self.multiscale,
                                                **self._kw(b.dim))
        return out

    def _scale_weights(self, b):
        B, lq = b.q.shape[:2]
        w = np.zeros_like(b.q, shape=(self.scales, B, lq, b.k.shape[1]))
        for bi, rows, keys in key_subsets(b):
            kk = b.k[bi, keys]
            _, L = self.key_graph(kk)
            w[:, bi, rows[:, None], keys[None, :]] = diffusion_weights(b.q[bi, rows], kk, L, **self._kw(b.dim))
        return w

    def _weights(self, b):
        w = self._scale_weights(b)
        return w[0] if self.scales == 1 else w.mean(axis=0, dtype=np.float64).astype(w.dtype)

    def multiscale_weights(self, q, k, *, mask=None):
        """The weight map of every diffusion time, ``(S, ..., Lq, Lk)`` (times in :attr:`times`)."""
        batch = self._prepare(q, k, None, mask, need_v=False)
        w = self._run(self._scale_weights, batch)
        return np.stack([batch.restore(self._finite(ws, "weights")) for ws in w])

    def energies(self, q, k, *, mask=None):
        """Dirichlet energy of each query's logits at ``t = 0`` and at every diffusion time: ``(..., Lq, 1 + S)``.

        ``E(x) = ½ Σ_ij w_ij (x_i − x_j)²`` over the key graph (``x`` the logits ``s·⟨q, k_j⟩`` before
        the temperature), in the quadratic form of the chosen Laplacian (:func:`workbench.diffusion.diffusion_energy`
        with ``kind=laplacian``; the random-walk energy is the unnormalised one). Computed as
        ``s²·qᵀ(K̃ᵀ M K̃)q`` with the diffused keys ``K̃``. Rows with no allowed key are 0.
        """
        from kernels.dispatch import is_cupy_array

        if any(is_cupy_array(x) for x in (q, k, mask)):  # a diagnostic: on the host, CuPy in and out
            from kernels.gpu.host import via_host

            host = self.with_params(backend="auto") if self.backend == "cupy" else self  # host copies: a host backend
            return via_host(lambda q, k, m: host.energies(q, k, mask=m), q, k, mask)
        batch = self._prepare(q, k, None, mask, need_v=False)
        B, lq = batch.q.shape[:2]
        times = np.concatenate([[0.0], self.times])
        out = np.zeros((B, lq, times.size))
        s = self._scale(batch.dim)
        for bi, rows, keys in key_subsets(batch):
            kk = batch.k[bi, keys]
            w, L = self.key_graph(kk)
            form = laplacian(w, "symmetric" if self.laplacian == "symmetric" else "unnormalized")
            kt = diffused_keys(kk, L, times, self.integrator, self.num_steps)  # (1 + S, n, d)
            qq = batch.q[bi, rows].astype(np.float64)
            for ti in range(times.size):
                g = kt[ti].T @ (form @ kt[ti])  # (d, d)
                out[bi, rows, ti] = s * s * np.einsum("id,de,ie->i", qq, g, qq)
        return batch.restore(np.maximum(out, 0.0))
